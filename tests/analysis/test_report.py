"""`analyze` and `hybridmd analyze` on a real water-hexamer MD trajectory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridmd.analysis.baseline import classical_reconstruction
from hybridmd.analysis.report import FIGURES, SCORE_KEYS, analyze
from hybridmd.cli import main
from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.metrics import reconstruction_errors
from hybridmd.interpolation.windows import make_windows
from hybridmd.readers import read_trajectory, write_trajectory
from hybridmd.trajectory import Trajectory

from conftest import DATA

WATER = DATA / "6h2o_orca_mp2_md_300k.npz"


@pytest.fixture(scope="module")
def reference() -> Trajectory:
    return read_trajectory(WATER, dt_fs=1.0)


@pytest.fixture(scope="module")
def cubic_report(reference: Trajectory, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cubic")
    prediction = classical_reconstruction(reference, 5, "cubic")
    return out, analyze(reference, prediction, out)


def test_report_writes_every_figure_and_score(cubic_report) -> None:
    out, scores = cubic_report
    assert set(scores) == set(SCORE_KEYS)
    assert json.loads((out / "scores.json").read_text()) == scores
    report = (out / "report.md").read_text()
    for name in FIGURES.values():
        assert (out / name).stat().st_size > 10_000
        assert f"]({name})" in report
    assert set(scores["figures"].values()) == set(FIGURES.values())
    assert scores["interpolated_stride"] == 5  # from the prediction's metadata
    assert len(scores["dihedrals"]) == 2 and len(scores["coordinates"]) <= 4
    assert not scores["trimmed"] and scores["frames"] == 301
    assert f"| VDOS overlap | {scores['vdos_overlap']:.4f} |" in report
    assert f"| {scores['pair_distance_js']:.3e} | bit |" in report
    assert f"| {scores['position_mae_interior']:.3e} | Å |" in report
    assert f"| {scores['fes_rmsd']:.3f} | kJ/mol |" in report


def test_the_estimated_temperature_counts_internal_degrees_of_freedom(reference,
                                                                      cubic_report) -> None:
    """The free-energy surface's temperature is the reference's over 3N-6 degrees of freedom
    (the summary's and md.log's convention), and the report says so."""
    from hybridmd.engines.ase_md import internal_degrees_of_freedom

    out, scores = cubic_report
    atoms = reference.to_atoms_list()
    ndof = internal_degrees_of_freedom(atoms[0])
    assert scores["temperature_dof"] == ndof == 3 * 18 - 6
    ase_3n = np.mean([a.get_temperature() for a in atoms])  # ASE: over 3N
    assert scores["temperature_K"] == pytest.approx(ase_3n * 3 * 18 / ndof)
    assert ("over 3N-6 = 48 degrees of freedom, as a run's summary counts them"
            in (out / "report.md").read_text())


def test_report_scores_agree_with_evaluate_and_are_imperfect(reference, cubic_report) -> None:
    _, scores = cubic_report
    windows = make_windows(reference, 5)
    errors = reconstruction_errors(*ClassicalInterpolator("cubic").interpolate(windows),
                                   windows.target_r, windows.target_v)
    assert scores["position_mae_interior"] == pytest.approx(errors["position_mae"])
    assert scores["velocity_mae_interior"] == pytest.approx(errors["velocity_mae"])
    assert scores["position_mae"] < scores["position_mae_interior"]  # coarse frames are exact
    assert 0.9 < scores["vdos_overlap"] < 1.0
    assert 0 < scores["pair_distance_js"] < 0.01 and 0 < scores["speed_js"] < 0.01
    assert scores["fes_rmsd"] > 0


def test_identical_trajectories_score_perfectly(reference, tmp_path) -> None:
    scores = analyze(reference, reference, tmp_path, interpolated_stride=5,
                     dihedrals=[(8, 6, 3, 12), (8, 6, 15, 17)],
                     coordinates=[(0, 1), (1, 0, 2)], temperature_K=300.0)
    assert scores["position_mae"] == 0 and scores["velocity_mae"] == 0
    assert scores["vdos_overlap"] == pytest.approx(1.0)
    assert scores["pair_distance_js"] == pytest.approx(0.0, abs=1e-12)
    assert scores["speed_js"] == pytest.approx(0.0, abs=1e-12)
    assert scores["fes_rmsd"] == pytest.approx(0.0, abs=1e-12)
    assert scores["temperature_K"] == 300.0 and scores["temperature_dof"] is None
    assert "T = 300.0 K (given)" in (tmp_path / "report.md").read_text()
    assert scores["coordinates"] == [[0, 1], [1, 0, 2]]


def test_a_floor_puts_what_a_second_reference_scores_beside_each_score(
        reference, cubic_report, tmp_path) -> None:
    """--floor: the reference scored against a second reference on the same frames, each
    score beside the prediction's; a floor identical to the reference scores perfectly."""
    _, cubic = cubic_report
    linear = classical_reconstruction(reference, 5, "linear")
    scores = analyze(reference, linear, tmp_path, floor=classical_reconstruction(
        reference, 5, "cubic"))
    floor = scores["floor"]
    for key in ("position_mae", "velocity_mae", "vdos_overlap", "fes_rmsd"):
        assert floor[key] == pytest.approx(cubic[key]), key  # the cubic report's own scores
    assert 0 < floor["pair_distance_js"] < 0.01 and floor["frames"] == 301
    report = (tmp_path / "report.md").read_text()
    assert "| score | value | floor | unit | meaning |" in report
    assert (f"| VDOS overlap | {scores['vdos_overlap']:.4f} | {floor['vdos_overlap']:.4f} |"
            in report)
    assert "What to expect over 0.3 ps" in report and "(a second reference)" in report

    same = analyze(reference, linear, tmp_path / "same", floor=reference.slice(0, 200))
    assert same["floor"]["frames"] == 200 and same["floor"]["position_mae"] == 0
    assert same["floor"]["vdos_overlap"] == pytest.approx(1.0)
    assert any("floor" in note and "common range" in note for note in same["notes"])


def test_the_figures_say_what_the_windows_are_for_each_kind_of_prediction(
        reference, cubic_report, tmp_path) -> None:
    """A reconstruction (exact at the reference's coarse frames) has interpolated windows;
    another run on the same grid has segments, and a hybrid run's ML segments are shaded,
    its simulated ones not."""
    from hybridmd.analysis.figures import Windows

    _, cubic = cubic_report
    assert cubic["windows"] == "interpolated"
    other = Trajectory(numbers=reference.numbers, positions=reference.positions + 0.01,
                       momenta=reference.momenta, dt_fs=1.0, metadata={"stride": 5})
    scores = analyze(reference, other, tmp_path)
    assert scores["windows"] == "segments"
    report = (tmp_path / "report.md").read_text()
    assert "the prediction's segments (another run, not a reconstruction" in report
    assert "interpolated windows" not in report

    run = Windows(20, 10.0, 0.0, reconstruction=False, ml=[False, True, True, False])
    assert run.shaded(0.0, 40.0) == [(10.0, 20.0), (20.0, 30.0)]
    assert run.label == "ML segment (10 fs; unshaded: simulated)"
    recon = Windows(20, 10.0, 0.0, reconstruction=True)
    assert recon.shaded(0.0, 40.0) == [(0.0, 10.0), (20.0, 30.0)]
    assert recon.label == "interpolated window (10 fs), every other one"
    assert Windows(20, 10.0, 0.0, reconstruction=False).label == "segment (10 fs), every other one"


def test_without_a_floor_the_report_says_how_to_get_one(cubic_report) -> None:
    out, scores = cubic_report
    assert scores["floor"] is None
    report = (out / "report.md").read_text()
    assert "No floor was given" in report and "`--floor`" in report
    assert "2 ps: VDOS overlap 0.76" in report


def test_different_lengths_use_the_common_range(reference, tmp_path) -> None:
    prediction = classical_reconstruction(reference, 5, "quintic").slice(10, 200)
    scores = analyze(reference, prediction, tmp_path)
    assert scores["trimmed"] and scores["frames"] == 190
    assert scores["t_start_fs"] == 10.0 and scores["t_end_fs"] == 199.0
    assert "common range" in (tmp_path / "report.md").read_text()
    # the windows still count from the prediction's first frame, a coarse frame
    assert scores["position_mae_interior"] > scores["position_mae"]


def test_mismatched_trajectories_are_refused(reference, tmp_path) -> None:
    other = Trajectory(numbers=reference.numbers[::-1], positions=reference.positions,
                       momenta=reference.momenta, dt_fs=1.0)
    with pytest.raises(ValueError, match="different molecules"):
        analyze(reference, other, tmp_path)
    with pytest.raises(ValueError, match="fs apart"):
        analyze(reference, reference.subsample(2), tmp_path)
    shifted = Trajectory(numbers=reference.numbers, positions=reference.positions,
                         momenta=reference.momenta, dt_fs=1.0, t0_fs=0.5)
    with pytest.raises(ValueError, match="time grid"):
        analyze(reference, shifted, tmp_path)
    with pytest.raises(ValueError, match="atom indices"):
        analyze(reference, reference, tmp_path, dihedrals=[(0, 1, 2, 99), (0, 1, 2, 3)])


def test_cli_analyze_and_evaluate_plot(reference, tmp_path, capsys) -> None:
    pred_path = tmp_path / "pred.npz"
    prediction = classical_reconstruction(reference, 5, "linear")
    write_trajectory(prediction, pred_path)
    out = tmp_path / "report"
    rc = main(["analyze", "--reference", str(WATER), "--prediction", str(pred_path),
               "--dt-fs", "1", "--out", str(out), "--stride", "5",
               "--dihedral", "8", "6", "3", "12", "--dihedral", "8", "6", "15", "17"])
    assert rc == 0
    assert "VDOS overlap" in capsys.readouterr().out
    scores = json.loads((out / "scores.json").read_text())
    assert scores["dihedrals"] == [[8, 6, 3, 12], [8, 6, 15, 17]]
    assert scores["interpolated_stride"] == 5
    assert all((out / name).is_file() for name in FIGURES.values())

    rc = main(["analyze", "--reference", str(WATER), "--prediction", str(pred_path),
               "--floor", str(WATER), "--dt-fs", "1", "--out", str(tmp_path / "floored")])
    assert rc == 0
    assert f"floor (reference against {WATER}): position MAE 0.00e+00 Å, VDOS overlap 1.0000" \
        in capsys.readouterr().out

    rc = main(["analyze", "--reference", str(WATER), "--prediction", str(WATER),
               "--dt-fs", "1", "--out", str(out), "--dihedral", "0", "1", "2", "3"])
    assert rc == 0  # one dihedral: no free-energy surface, said so
    scores = json.loads((out / "scores.json").read_text())
    assert scores["fes_rmsd"] is None and "fes" not in scores["figures"]
    assert any("fewer than two dihedrals" in note for note in scores["notes"])

    plot = tmp_path / "error_vs_dt.png"
    rc = main(["evaluate", "--reference", str(WATER), "--dt-fs", "1", "--stride", "5",
               "--stride", "10", "--plot", str(plot)])
    assert rc == 0 and plot.stat().st_size > 10_000
    assert np.isfinite(scores["position_mae"])
