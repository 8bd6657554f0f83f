"""Periodic cells end to end: a box of 8 waters with GFN1-xTB (tblite, periodic) through
`simulate` and the hybrid loop; what cannot handle a cell refuses it in one line."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import read

from hybridmd.config import RunConfig, SimulationConfig, parse_config
from hybridmd.errors import InputError
from hybridmd.hybrid.session import HybridRun
from hybridmd.simulate import run_simulation

BOX_A = 6.21  #: Å: 8 waters at about 1 g/cm³


@pytest.fixture(scope="module")
def water_box(tmp_path_factory) -> Path:
    """8 randomly turned waters on a grid, four of them straddling the face x = 0."""
    rng = np.random.default_rng(1)
    water = molecule("H2O")
    water.positions -= water.get_center_of_mass()
    box = Atoms(cell=[BOX_A] * 3, pbc=True)
    grid = (np.arange(2) + 0.5) * BOX_A / 2
    for x in grid:
        for y in grid:
            for z in grid:
                w = water.copy()
                w.rotate(rng.uniform(0, 360), rng.normal(size=3))
                w.positions += [x, y, z]
                box += w
    box.positions -= [BOX_A / 4, 0, 0]  # a layer of centres at x = 0, across the face
    path = tmp_path_factory.mktemp("box") / "water8-box.extxyz"
    box.write(path)
    return path


def _run_input(box: Path, out: Path, **hybrid) -> dict:
    return {"system": {"file": str(box)},
            "calculator": {"type": "xtb", "method": "GFN1-xTB"},
            "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "steps": 60,
                         "temperature_K": 300, "seed": 4},
            "hybrid": {"stride": 10, "interpolator": "quintic", "forecaster": None,
                       "transport": "thread", **hybrid},
            "output": {"directory": str(out), "checkpoint_interval_s": 0}}


def _cells(path: Path) -> set[tuple]:
    return {(tuple(a.cell.array.round(9).ravel()), tuple(a.pbc)) for a in read(path, ":")}


def test_a_periodic_run_keeps_the_cell_in_every_output_and_resumes_bit_for_bit(water_box,
                                                                             tmp_path):
    whole = HybridRun(parse_config(_run_input(water_box, tmp_path / "whole"), RunConfig,
                                   "t.yaml")).run(progress=False)
    assert whole.summary["segments"] == 6
    expected = {((BOX_A, 0, 0, 0, BOX_A, 0, 0, 0, BOX_A)), (True, True, True)}
    for name in ("coarse.traj", "fine.traj"):
        assert _cells(tmp_path / "whole" / name) == {tuple(expected)}

    part_cfg = parse_config(_run_input(water_box, tmp_path / "part"), RunConfig, "t.yaml")
    part = HybridRun(part_cfg)
    part.loop.attach(lambda: part.loop.current.index == 3 and os.kill(os.getpid(),
                                                                       signal.SIGINT))
    assert part.run(progress=False).interrupted
    HybridRun(part_cfg).run(resume=True, progress=False)
    for name in ("coarse.traj", "fine.traj"):
        a, b = read(tmp_path / "whole" / name, ":"), read(tmp_path / "part" / name, ":")
        assert len(a) == len(b)
        assert np.array_equal(np.array([x.positions for x in a]),
                              np.array([x.positions for x in b]))
        assert _cells(tmp_path / "part" / name) == {tuple(expected)}


def test_a_molecule_crossing_the_boundary_is_interpolated_on_its_unwrapped_path(water_box,
                                                                                tmp_path):
    """`simulate` writes every 10th step and the quintic spline fills in the rest; the atoms
    that leave the cell are interpolated on their continuous paths, as close to the full-
    resolution reference as atoms that stay inside, measured directly and under the minimum
    image alike."""
    def simulate(out: Path, stride: int, interpolate: bool) -> Path:
        data = {"system": {"file": str(water_box)},
                "calculator": {"type": "xtb", "method": "GFN1-xTB"},
                "dynamics": {"integrator": "nve", "timestep_fs": 0.5, "steps": 40, "seed": 2,
                             "temperature_K": 300},
                "output": {"directory": str(out), "stride": stride}}
        if interpolate:
            data["interpolation"] = {"interpolator": "quintic"}
        run_simulation(parse_config(data, SimulationConfig, "t.yaml"), progress=False)
        return out

    reference = read(simulate(tmp_path / "ref", 1, False) / "trajectory.traj", ":")
    fine = read(simulate(tmp_path / "coarse", 10, True) / "fine.traj", ":")
    r_ref = np.array([a.positions for a in reference])
    r_fine = np.array([a.positions for a in fine])
    assert r_fine.shape == r_ref.shape
    outside = ((r_ref < 0) | (r_ref >= BOX_A)).any(axis=(0, 2))
    assert outside.any()  # atoms of the straddling waters are beyond the face
    error = np.linalg.norm(r_fine - r_ref, axis=-1)
    assert error[:, outside].max() < 0.01
    delta = r_fine - r_ref
    mic = delta - BOX_A * np.round(delta / BOX_A)
    assert np.array_equal(np.linalg.norm(mic, axis=-1), error)
    assert {tuple(a.pbc) for a in fine} == {(True, True, True)}


@pytest.mark.parametrize(("section", "words"), [
    ({"calculator": {"type": "sgdml", "model": "ethanol"}}, "one molecule in vacuum"),
    ({"calculator": {"type": "dft", "functional": "PBE", "basis": "STO-3G"}},
     "calculator.basis 'STO-3G' is not a GTH basis"),
    ({"hybrid": {"stride": 20, "interpolator": "ethanol-bilstm-10fs", "forecaster": None}},
     "network for one molecule in vacuum"),
    ({"hybrid": {"stride": 20, "interpolator": "quintic",
                 "forecaster": "ethanol-forecaster-10fs"}}, "forecaster network"),
    ({"hybrid": {"stride": 20, "interpolator": "quintic", "forecaster": "learn",
                 "learn": {"force_field": "sgdml"}}}, "sgdml describes one molecule in vacuum"),
])
def test_parts_for_one_molecule_refuse_a_periodic_system(water_box, tmp_path, section, words):
    data = {**_run_input(water_box, tmp_path / "refused"), **section}
    with pytest.raises(InputError, match="periodic cell of 6.21 x 6.21 x 6.21") as info:
        HybridRun(parse_config(data, RunConfig, "t.yaml"))
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "refused").exists()


def test_auto_learns_sgdml_for_one_molecule_and_mace_otherwise(water_box):
    from hybridmd.data import geometry_path
    from hybridmd.hybrid.build import learned_kind, molecules

    ethanol = read(geometry_path("ethanol"))
    box = read(water_box)
    cluster = box.copy()
    cluster.pbc = False
    assert molecules(ethanol) == 1 and molecules(cluster) == 8
    assert learned_kind("auto", ethanol) == "sgdml"
    assert learned_kind("auto", cluster) == "mace"
    assert learned_kind("auto", box) == "mace"
    assert learned_kind("sgdml", cluster) == "sgdml"


def test_the_run_fits_mace_with_the_passes_the_input_asks_for(water_box, tmp_path):
    """`hybrid.learn.epochs` reaches the learner's MACE fits (default 5)."""
    def epochs(**learn) -> int:
        data = _run_input(water_box, tmp_path / "out", forecaster="learn", interpolator="learn",
                          learn={"transport": "thread", **learn}, monitor={"workers": 0})
        run = HybridRun(parse_config(data, RunConfig, "t.yaml", base_dir=tmp_path))
        try:
            return run.loop.predictor.learner.fit.keywords["settings"].epochs
        finally:
            run.loop.predictor.close()

    assert epochs() == 5
    assert epochs(epochs=12) == 12


def test_the_beyond_reach_guard_is_kept_where_a_water_has_room_to_leave(water_box, tmp_path):
    """The filled box has no space beyond MACE's 4.5 Å cutoff (no guard); the same waters in
    a 20 Å cube have vacuum around them (the guard is kept)."""
    roomy = read(water_box)
    roomy.set_cell([20.0] * 3)
    roomy.write(tmp_path / "roomy.extxyz")

    def space(box: Path) -> float:
        data = _run_input(box, tmp_path / "out", forecaster="learn", interpolator="learn",
                          learn={"transport": "thread"}, monitor={"workers": 0})
        run = HybridRun(parse_config(data, RunConfig, "t.yaml", base_dir=tmp_path))
        try:
            return run.loop.predictor.space_A
        finally:
            run.loop.predictor.close()

    assert space(water_box) < 4.5 < space(tmp_path / "roomy.extxyz")


def test_a_periodic_run_learns_mace_from_a_model_file_and_resumes_bit_for_bit(water_box,
                                                                            tmp_path):
    """`forecaster: learn` in a box: a MACE version fine-tuned from a model file (a model of
    8 channels where the run's own would have 16, so it is seen to be the file's), taken up
    in the run; a run stopped after taking it up resumes to the same trajectory."""
    import torch

    from hybridmd.hybrid.learned_file import read_learned
    from hybridmd.hybrid.mace_force_field import MaceSettings, fit_mace
    from hybridmd.units import KCAL_MOL

    from conftest import DATA

    with np.load(DATA / "6h2o_orca_mp2_md_300k.npz") as d:
        r, f, e, z = d["R"][:6], d["F"][:6] * KCAL_MOL, d["E_potential"][:6] * KCAL_MOL, d["z"]
    file_model = fit_mace(r, f, e, z, MaceSettings(channels=8, epochs=1, committee=1),
                          version=1)
    torch.save(file_model.modules[0], tmp_path / "mine.model")

    def learning(out: Path) -> RunConfig:
        data = _run_input(water_box, out, forecaster="learn", interpolator="learn",
                          learn={"first_fit_frames": 20, "refit_frames": 1000, "lag_segments": 1,
                                 "transport": "thread", "start_from": "mine.model"},
                          switch={"verified_segments": 1}, monitor={"workers": 0})
        return parse_config(data, RunConfig, "t.yaml", base_dir=tmp_path)

    whole = HybridRun(learning(tmp_path / "whole")).run(progress=False)
    assert whole.summary["learning"]["version"] == 1
    model, _, data = read_learned(tmp_path / "whole" / "forecaster.pt")
    assert data["kind"] == "mace"
    assert str(model.config["hidden_irreps"]).startswith("8x")  # the file's 8 channels

    part = HybridRun(learning(tmp_path / "part"))
    part.loop.attach(lambda: part.loop.current.index == 4 and os.kill(os.getpid(),
                                                                       signal.SIGINT))
    assert part.run(progress=False).interrupted
    HybridRun(learning(tmp_path / "part")).run(resume=True, progress=False)
    a, b = (read(tmp_path / name / "coarse.traj", ":") for name in ("whole", "part"))
    assert np.array_equal(np.array([x.positions for x in a]), np.array([x.positions for x in b]))
    assert _cells(tmp_path / "part" / "fine.traj") == _cells(tmp_path / "whole" / "fine.traj")


def test_learn_max_L_and_r_max_reach_the_runs_fits(water_box, tmp_path):
    """`learn.max_L: 1` and `learn.r_max` reach the run's MACE fits: the learned version's
    hidden features carry vectors (1o) beside the scalars (0e), where the default has scalars
    only, and its cutoff is the input's."""
    from hybridmd.hybrid.learned_file import read_learned

    data = _run_input(water_box, tmp_path / "run", forecaster="learn", interpolator="learn",
                      learn={"first_fit_frames": 20, "refit_frames": 1000, "lag_segments": 1,
                             "transport": "thread", "epochs": 1, "max_L": 1, "r_max": 3.5},
                      switch={"verified_segments": 1}, monitor={"workers": 0})
    HybridRun(parse_config(data, RunConfig, "t.yaml", base_dir=tmp_path)).run(progress=False)
    model, _, _ = read_learned(tmp_path / "run" / "forecaster.pt")
    assert str(model.config["hidden_irreps"]) == "16x0e+16x1o"
    assert model.reach == 3.5
