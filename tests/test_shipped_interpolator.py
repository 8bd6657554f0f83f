"""The shipped interpolators on ethanol dynamics they have never seen."""

from __future__ import annotations

from pathlib import Path

from hybridmd.canonical_segments import canonical_nve_segments
from hybridmd.interpolation.evaluate import evaluate
from hybridmd.interpolator_file import load_interpolator
from hybridmd.readers import read_trajectory
from hybridmd.simulate import run_simulation


def test_shipped_bilstm_beats_quintic_on_fresh_ethanol_md(config_factory, tmp_path: Path) -> None:
    """1 ps of new sGDML ethanol at 300 K (seed 11); the model's data came from seeds 1 and 3.

    Measured on the 10 ps held-out Bussi trajectory: 3.3e-4 Å against 1.8e-3 Å for quintic
    Hermite (the model was trained on NVE segments; on Newtonian data 1.2e-4 Å).
    """
    cfg = config_factory({"dynamics": {"steps": 2000, "seed": 11, "tau_fs": 100},
                          "output": {"stride": 1, "log_stride": 100}})
    result = run_simulation(cfg, progress=False)
    model = load_interpolator("ethanol-bilstm-10fs")
    assert model.stride == 20 and model.metadata["dt_fs"] == 0.5
    scores = {s.model: s.position_mae
              for s in evaluate([model], read_trajectory(result.trajectory))}
    ours = scores[model.name]
    assert ours < 0.4 * scores["quintic Hermite"], scores


WIDE = ("ethanol-bilstm-5fs-100-600K", "ethanol-bilstm-10fs-100-600K",
        "ethanol-bilstm-20fs-100-600K")


def test_shipped_100_600K_models_hold_on_a_hot_segment(tmp_path: Path) -> None:
    """A new 0.5 ps NVE segment from a 500 K canonical state (seed 11500; the models' data
    came from seeds 8100-8800): each 100-600 K model records a training range that spans
    150-550 K and beats the quintic spline by far (measured on 20 such segments: about a
    tenth of its error)."""
    segment = canonical_nve_segments(500, 1, tmp_path, seed=11500, equilibration_ps=0.5)
    models = [load_interpolator(name) for name in WIDE]
    for model in models:
        low, high = model.metadata["temperature_range_K"]
        assert low < 150 and high > 550, model.metadata["temperature_range_K"]
    scores = {(s.model, s.dt_fs): s.position_mae for s in evaluate(models, segment)}
    for model in models:
        dt = model.metadata["dt_fs"] * model.stride
        assert scores[model.name, dt] < 0.3 * scores["quintic Hermite", dt], scores
