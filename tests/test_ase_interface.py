"""`hybridmd.ase_interface.InterpolatingObserver` on plain ASE dynamics of ethanol with the
shipped sGDML model, and the worked example workflows/ase_observer.py."""

from __future__ import annotations

import json
import os
import runpy

import numpy as np
import pytest
from ase import Atoms, units
from ase.io import read
from ase.md.bussi import Bussi
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from hybridmd.ase_interface import InterpolatingObserver
from hybridmd.calculators import build_calculator
from hybridmd.config import SGDMLConfig
from hybridmd.data import geometry_path

from conftest import REPO


def ethanol(seed: int = 3) -> Atoms:
    atoms = read(geometry_path("ethanol"))
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), atoms)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    Stationary(atoms)
    ZeroRotation(atoms)
    return atoms


def test_worked_example(tmp_path, capsys):
    """200 NVE steps, the 10 fs Bi-LSTM every 20 steps: close to every step the MD computed."""
    main = runpy.run_path(str(REPO / "workflows" / "ase_observer.py"))["main"]
    fine, ref = tmp_path / "fine.traj", tmp_path / "md.traj"
    assert main(["--steps", "200", "--output", str(fine), "--reference", str(ref)]) == 0
    out = capsys.readouterr().out
    assert f"200 MD steps of 0.5 fs (NVE): 11 coarse frames -> 201 fine frames in {fine}" in out
    frames, md = read(fine, ":"), read(ref, ":")
    assert len(frames) == len(md) == 201
    assert [a.info["fine_index"] for a in frames] == list(range(201))
    np.testing.assert_allclose([a.info["time_fs"] for a in frames], 0.5 * np.arange(201))
    for step in range(0, 201, 20):  # the coarse frames are the MD's, forces and energy too
        np.testing.assert_array_equal(frames[step].positions, md[step].positions)
        np.testing.assert_array_equal(frames[step].get_momenta(), md[step].get_momenta())
        np.testing.assert_array_equal(frames[step].get_forces(), md[step].get_forces())
        assert frames[step].get_potential_energy() == md[step].get_potential_energy()
    assert {a.info["method"] for a in frames} == {
        "coarse", "quintic Hermite", "bilstm-residual (ethanol-bilstm-10fs.pt)"}
    error = np.abs(np.array([a.positions for a in frames]) - [a.positions for a in md])
    assert error.mean() < 2e-3 and error.max() < 0.05  # Å


def test_thermostat_every_step_and_a_process_worker(tmp_path):
    """Bussi rescales at every step; the interpolant still meets every coarse frame exactly."""
    atoms = ethanol()
    dyn = Bussi(atoms, 0.5 * units.fs, temperature_K=300, taut=50 * units.fs,
                rng=np.random.default_rng(0))
    seen = []
    dyn.attach(lambda: seen.append((atoms.positions.copy(), atoms.get_momenta())), interval=10)
    path = tmp_path / "fine.traj"
    with InterpolatingObserver(atoms, dyn, "quintic", path, transport="process",
                               maxsize=2, threads=1) as observer:
        dyn.attach(observer, interval=10)
        dyn.run(60)
    assert observer.stride == 10 and observer.coarse_frames == 7
    assert observer.frames_written == 61 == len(read(path, ":"))
    frames = read(path, ":")
    for k, (positions, momenta) in enumerate(seen):
        np.testing.assert_array_equal(frames[10 * k].positions, positions)
        np.testing.assert_array_equal(frames[10 * k].get_momenta(), momenta)
    assert observer.close() == 61  # closing again is harmless


def test_interval_time_step_and_molecule_are_checked(tmp_path):
    atoms = ethanol()
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    observer = InterpolatingObserver(atoms, dyn, "ethanol-bilstm-10fs", tmp_path / "x.traj")
    dyn.attach(observer, interval=10)
    with pytest.raises(ValueError, match=r"ethanol-bilstm-10fs.pt interpolates Δt = 10 fs = 20 "
                       r"steps of 0.5 fs; the observer is called every 10 MD steps of 0.5 fs "
                       r"\(Δt = 5 fs\): attach it with dyn.attach\(observer, interval=20\)"):
        dyn.run(10)  # at the first call, before any MD step
    assert dyn.nsteps == 0
    with pytest.raises(ValueError, match=r"Δτ = 0.5 fs; the dynamics steps dt = 1 fs"):
        InterpolatingObserver(atoms, VelocityVerlet(atoms, timestep=1.0 * units.fs))
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    with pytest.raises(ValueError, match="interpolates C2H6O .* the dynamics moves H2O"):
        InterpolatingObserver(water, VelocityVerlet(water, timestep=0.5 * units.fs))
    every_step = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    every_step.attach(InterpolatingObserver(atoms, every_step, "quintic", tmp_path / "y.traj"))
    with pytest.raises(ValueError, match="every 1 MD step of 0.5 fs: nothing to interpolate"):
        every_step.run(1)


def test_called_by_hand_the_stride_comes_from_the_steps_between_calls(tmp_path):
    atoms = ethanol()
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    path = tmp_path / "fine.traj"
    with pytest.raises(ValueError, match="called at MD step 23, expected step 25: it must be "
                       "called every 5 steps"), InterpolatingObserver(
                           atoms, dyn, "quintic", path) as observer:
        observer()
        for _ in range(4):
            dyn.run(5)
            observer()
        assert observer.stride == 5
        dyn.run(3)
        observer()
    frames = read(path, ":")  # the worker stopped; what it wrote stays
    assert 1 <= len(frames) <= 4 * 5 + 1
    assert [a.info["fine_index"] for a in frames] == list(range(len(frames)))
    with pytest.raises(RuntimeError, match="is closed"):
        observer()


def test_hybrid_dynamics_runs_the_loop_with_the_users_calculator(tmp_path):
    """HybridDynamics: ASE run/attach/trajectory; a second run() continues the same run."""
    from hybridmd.ase_interface import HybridDynamics

    atoms = ethanol()
    seen: list[tuple[int, float]] = []
    dyn = HybridDynamics(atoms, timestep_fs=0.5, stride=20, directory=tmp_path / "run",
                         forecaster="ethanol-forecaster-10fs", seed=2,
                         switch={"verified_segments": 2}, monitor_fraction=0.5,
                         trajectory=str(tmp_path / "coarse-copy.traj"))
    dyn.attach(lambda: seen.append((dyn.nsteps, atoms.get_potential_energy())), interval=5)
    dyn.run(20)
    assert dyn.summary["segments"] == 20 and dyn.summary["ml_segments"] > 0
    dyn.run(10)
    assert dyn.summary["segments"] == 30
    assert [k for k, _ in seen] == [0, 5, 10, 15, 20, 25, 30]
    coarse = read(tmp_path / "run" / "coarse.traj", ":")
    copy = read(tmp_path / "coarse-copy.traj", ":")
    assert len(coarse) == len(copy) == 31
    assert np.array_equal(coarse[-1].positions, atoms.positions)
    assert np.allclose([a.get_potential_energy() for a in copy],
                       [a.get_potential_energy() for a in coarse])
    assert len(read(tmp_path / "run" / "fine.traj", ":")) == 601


def test_hybrid_dynamics_example(tmp_path, capsys):
    main = runpy.run_path(str(REPO / "workflows" / "ase_hybrid_dynamics.py"))["main"]
    assert main(["--segments", "30", "--directory", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "30 segments" in out and "force calls against 601" in out
    assert len(read(tmp_path / "run" / "fine.traj", ":")) == 601


def test_hybrid_dynamics_holds_its_folder(tmp_path):
    """Issue 28, class 4: a second HybridDynamics on the folder of one still open is refused
    (it would replace the first's outputs); after close() the folder is free."""
    from hybridmd.ase_interface import HybridDynamics
    from hybridmd.run_lock import FolderInUseError

    def make() -> HybridDynamics:
        return HybridDynamics(ethanol(), timestep_fs=0.5, stride=20, directory=tmp_path / "run",
                              forecaster="ethanol-forecaster-10fs")

    first = make()
    first.run(1)
    with pytest.raises(FolderInUseError, match=rf"directory: another run \(pid {os.getpid()}\) "
                       "holds the run folder"):
        make()
    assert len(read(tmp_path / "run" / "coarse.traj", ":")) == 2  # the first's, untouched
    first.close()
    make().close()


def _learned_file(folder, calculator) -> str:
    """An earlier learning run's force field (a real sGDML fit to 8 ethanol frames), as if
    learned with ``calculator``."""
    from hybridmd.ase_interface import calculator_record
    from hybridmd.hybrid.dataset import ExpensiveFrames
    from hybridmd.hybrid.force_field import FitSettings, fit_force_field
    from hybridmd.hybrid.learned_file import save_learned

    atoms, rng = ethanol(), np.random.default_rng(0)
    start, frames = atoms.positions.copy(), []
    for _ in range(8):
        atoms.positions = start + 0.03 * rng.standard_normal(start.shape)
        frames.append((atoms.positions.copy(), atoms.get_forces(), atoms.get_potential_energy()))
    r, f, e = (np.array(x) for x in zip(*frames, strict=True))
    settings = FitSettings(max_frames=8)
    model = fit_force_field(r, f, e, atoms.numbers, settings, version=1)
    dataset = ExpensiveFrames(len(atoms))
    dataset.add(r, f, e, "simulation")
    folder.mkdir()
    record = calculator_record(calculator)
    return str(save_learned(folder, model, dataset, atoms.numbers, atoms.get_masses(), 0.5, 20,
                            settings, {"calculator": record, "calculator_config": record,
                                       "run": str(folder)}))


def test_a_force_field_learned_with_other_calculator_settings_is_refused(tmp_path):
    """Issue 28, class 6: HybridDynamics records the calculator's class and settings, so a
    force field learned with GFN2-xTB is not taken up by a GFN1-xTB run (the command line
    refuses the same); with the same settings it is."""
    tblite = pytest.importorskip("tblite.ase")
    from hybridmd.ase_interface import HybridDynamics
    from hybridmd.errors import RunInputError

    learned = _learned_file(tmp_path / "learned", tblite.TBLite(method="GFN2-xTB"))

    def dynamics(name: str, method: str) -> HybridDynamics:
        atoms = read(geometry_path("ethanol"))
        atoms.calc = tblite.TBLite(method=method, verbosity=0)
        return HybridDynamics(atoms, timestep_fs=0.5, stride=20, directory=tmp_path / name,
                              forecaster=learned)

    gfn1 = dynamics("gfn1", "GFN1-xTB")
    with pytest.raises(RunInputError, match="learned from another calculator.*GFN2-xTB.*"
                       "this run's is .*GFN1-xTB"):
        gfn1.run(1)
    gfn1.close()
    assert not (tmp_path / "gfn1" / "run.json").exists()  # refused before the run wrote
    gfn2 = dynamics("gfn2", "GFN2-xTB")
    gfn2.run(1)
    gfn2.close()
    calculator = json.loads((tmp_path / "gfn2" / "run.json").read_text())["input"]["calculator"]
    # recorded as the input section it equals (verbosity says how it runs, not what)
    assert calculator == {"type": "xtb", "method": "GFN2-xTB", "charge": 0,
                          "multiplicity": 1, "accuracy": 1.0}


def test_tblite_is_recorded_as_the_xtb_section_it_equals() -> None:
    """The same level of theory is recorded alike from Python and from an input, so a force
    field learned by `hybridmd run` with `type: xtb` is taken up by HybridDynamics with
    tblite's calculator (the check compares these records); other settings stay apart."""
    from tblite.ase import TBLite

    from hybridmd.ase_interface import calculator_record
    from hybridmd.config import XTBConfig

    section = XTBConfig(type="xtb", method="GFN1-xTB", accuracy=0.5).model_dump(mode="json")
    assert calculator_record(TBLite(method="GFN1-xTB", accuracy=0.5, verbosity=0)) == section
    assert calculator_record(TBLite(method="GFN2-xTB")) != section
    hotter = calculator_record(TBLite(method="GFN1-xTB", electronic_temperature=1000.0))
    assert hotter["type"] == "ase" and hotter["kwargs"]["electronic_temperature"] == 1000.0
