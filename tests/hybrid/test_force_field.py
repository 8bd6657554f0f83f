"""The learned force field: a real sGDML fit to frames of real ethanol dynamics."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.md.verlet import VelocityVerlet

from hybridmd.calculators import build_calculator
from hybridmd.config import SGDMLConfig
from hybridmd.hybrid.dataset import ExpensiveFrames
from hybridmd.hybrid.force_field import (
    FitSettings,
    ForceFieldCalculator,
    export_sgdml_model,
    fit_force_field,
    learned_atoms,
)
from hybridmd.hybrid.predictors import ErrorCalibration
from hybridmd.hybrid.segments import SegmentSimulator, simulate_segment
from hybridmd.simulate import run_simulation
from hybridmd.units import FS

from conftest import make_config


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """300 fs of Bussi ethanol with the shipped sGDML model: positions, forces, energies."""
    from ase.io import read

    tmp = tmp_path_factory.mktemp("sur")
    cfg = make_config(tmp, {"dynamics": {"integrator": "bussi", "steps": 600, "seed": 4}})
    traj = read(run_simulation(cfg, progress=False).trajectory, ":")
    data = ExpensiveFrames(9)
    data.add([a.positions for a in traj], [a.get_forces() for a in traj],
             [a.get_potential_energy() for a in traj], "simulation")
    return data, traj


@pytest.fixture(scope="module")
def model(frames):
    data, _ = frames
    r, f, e = data.arrays(400)
    return fit_force_field(r, f, e, np.array([6, 6, 8, 1, 1, 1, 1, 1, 1]),
                           FitSettings(max_frames=60), version=1)


def test_a_fit_is_a_deterministic_function_of_the_frames(frames, model):
    data, _ = frames
    r, f, e = data.arrays(400)
    again = fit_force_field(r, f, e, np.array([6, 6, 8, 1, 1, 1, 1, 1, 1]),
                            FitSettings(max_frames=60), version=1)
    for a, b in zip(model.models, again.models, strict=True):
        assert all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]))
                   for k in a if isinstance(a[k], np.ndarray))
    assert len(model.trained) == 60 and model.frames == 400
    assert model.validation_force_mae < 0.1  # eV/Å, on the 340 frames it did not see


def test_the_learned_model_integrates_as_the_exported_model_file(frames, model, tmp_path):
    """The learned force field as an ASE calculator gives the segment the exported sGDML file
    gives through ``calculator: {type: sgdml}``."""
    _, traj = frames
    path = tmp_path / "ff.npz"
    export_sgdml_model(model.models[0], path)
    atoms = Atoms(numbers=traj[0].numbers, positions=traj[100].positions)
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model=str(path)), atoms)
    ase_seg = simulate_segment(atoms, VelocityVerlet(atoms, timestep=0.5 * FS),
                               traj[100].positions, traj[100].get_momenta(), 20)
    learned = learned_atoms(ForceFieldCalculator(model.force_fields[0]), atoms.numbers,
                            atoms.get_masses())
    ours = SegmentSimulator(learned, 20, 0.5).segment(traj[100].positions,
                                                      traj[100].get_momenta())
    assert np.abs(ours.positions - ase_seg.positions).max() < 1e-9
    assert np.abs(ours.energies - ase_seg.energies).max() < 1e-9


def test_the_committee_disagrees_where_the_data_do_not_reach(frames, model):
    """The half-models agree with the main model on the frames it saw and part from it on
    frames beyond them (the last 200 of the trajectory, never fitted)."""
    data, _ = frames
    r, _, _ = data.arrays()
    main, a, b = model.force_fields

    def spread(x):
        f0, fa, fb = (ff(x)[1] for ff in (main, a, b))
        return np.maximum(np.abs(fa - f0), np.abs(fb - f0)).max(axis=(1, 2))

    seen = spread(r[model.trained[:20]])
    unseen = spread(r[-20:])
    assert np.median(unseen) > 1.5 * np.median(seen)


def test_labeled_frames_keep_their_order_source_and_length():
    data = ExpensiveFrames(2)
    data.add(np.zeros((3, 2, 3)), np.ones((3, 2, 3)), [1, 2, 3], "simulation")
    data.add(np.ones((2, 2, 3)), np.zeros((2, 2, 3)), [4, 5], "monitor")
    assert len(data) == 5 and data.count("monitor") == 2 and data.count("simulation", 2) == 2
    head = data.head(4)
    assert len(head) == 4 and list(head.arrays()[2]) == [1, 2, 3, 4]
    assert len(data) == 5  # the original is untouched


def test_the_calibration_ratio_follows_the_recent_segments():
    cal = ErrorCalibration(window=4, quantile=0.5)
    assert cal(0.01) == pytest.approx(0.01)  # nothing seen yet: the spread itself
    for spread, error in [(0.01, 0.08)] * 4:
        cal.observe(spread, error)
    assert cal.ratio == pytest.approx(8)
    for spread, error in [(0.01, 0.02)] * 4:  # the model got better than its spread says
        cal.observe(spread, error)
    assert cal.ratio == pytest.approx(2)
    cal.observe(0.0, 1.0)
    assert cal.ratio <= cal.high
