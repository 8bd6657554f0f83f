"""The i-PI engine and `hybridmd serve`, with the real i-PI server and ASE's real socket client.

Ethanol with the shipped sGDML model, a few tens of steps per test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

from hybridmd.calculators import build_calculator
from hybridmd.cli import main
from hybridmd.config import ConfigError, IPIEngineConfig, SimulationConfig, parse_config
from hybridmd.engines.ipi import IPIClientError, IPIEngine, unique_socket_name
from hybridmd.errors import SimulationError
from hybridmd.simulate import Simulation, run_simulation
from hybridmd.structures import build_structure

from conftest import ETHANOL_SGDML, make_config


def _ipi_config(tmp_path: Path, engine: dict, dynamics: dict | None = None) -> SimulationConfig:
    base = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    del base["dynamics"]["integrator"]  # the ASE engine's; i-PI's thermostat is in `engine`
    return make_config(tmp_path, {"engine": {"type": "ipi", **engine},
                                  "dynamics": dynamics or {}}, base=base)


def _fresh_calculator(cfg: SimulationConfig):
    return build_calculator(cfg.calculator, build_structure(cfg.system))


def test_nve_conserves_energy(tmp_path: Path) -> None:
    """i-PI's velocity Verlet at 0.5 fs, 100 steps: measured E_cons std 7e-4 eV, spread 2.5e-3.

    The bounds are those of the ASE engine's test (as its integrator is the same).
    """
    cfg = _ipi_config(tmp_path, {"thermostat": "nve"}, {"steps": 100})
    sim = Simulation(cfg)
    sim.run(progress=False)
    log = np.loadtxt(sim.paths["log"])
    econs, epot = log[:, 5], log[:, 3]
    assert econs.std() < 3e-3 and np.ptp(econs) < 1e-2
    assert econs.std() < 0.1 * epot.std()
    assert np.allclose(log[:, 3] + log[:, 4], econs)  # NVE: no thermostat account
    # started without rotation, the molecule keeps none
    assert np.allclose(sim.atoms.get_angular_momentum(), 0, atol=1e-8)


@pytest.mark.parametrize(("thermostat", "socket"),
                         [("svr", "unix"), ("langevin", "unix"), ("pile_l", "inet")])
def test_thermostated_run_writes_the_ase_engine_outputs(tmp_path: Path, thermostat: str,
                                                        socket: str) -> None:
    cfg = _ipi_config(tmp_path, {"thermostat": thermostat, "socket": socket},
                      {"steps": 20, "tau_fs": 10, "friction_per_fs": 0.1})
    result = run_simulation(cfg, progress=False)
    frames = read(result.trajectory, index=":")
    assert len(frames) == result.frames == 21
    assert [f.info["step"] for f in frames] == list(range(21))
    for frame in frames:
        assert np.isfinite(frame.get_potential_energy())
        assert np.all(np.isfinite(frame.get_forces())) and frame.get_forces().shape == (9, 3)
        assert np.abs(frame.get_momenta()).sum() > 0
    log = np.loadtxt(result.directory / "md.log")
    assert log.shape == (21, 6) and np.all(np.isfinite(log))
    # the thermostat's account keeps E_cons steady while it exchanges energy
    assert np.ptp(log[:, 5]) < 5e-3
    meta = json.loads((result.directory / "run.json").read_text())
    assert meta["input"]["engine"]["thermostat"] == thermostat
    ckpt = json.loads((result.directory / "checkpoint.json").read_text())
    restart = result.directory / "RESTART"
    assert ckpt["engine"]["ipi_restart"] == str(restart) and ckpt["finished"]
    assert "<step>20</step>" in restart.read_text()
    assert not list(Path("/tmp").glob(f"ipi_hybridmd-{os.getpid()}-*"))  # socket file removed


def test_state_is_in_ase_units(tmp_path: Path) -> None:
    """Momenta in = momenta out; forces and energy equal a direct calculator call."""
    cfg = _ipi_config(tmp_path, {"thermostat": "langevin"})
    sim = Simulation(cfg)
    p0 = sim.atoms.get_momenta().copy()
    calc = _fresh_calculator(cfg)
    with IPIEngine(sim.atoms, cfg.dynamics, cfg.engine, tmp_path / "ipi") as engine:
        assert np.allclose(engine.momenta, p0, rtol=1e-12, atol=1e-14)
        engine.advance(7)
        probe = sim.atoms.copy()
        probe.calc = calc
        assert np.allclose(engine.positions, sim.atoms.positions)
        assert np.allclose(engine.momenta, sim.atoms.get_momenta())
        assert np.allclose(engine.forces, probe.get_forces(), rtol=1e-10, atol=1e-10)
        assert engine.energy == pytest.approx(probe.get_potential_energy(), abs=1e-8)
        # the kinetic energy i-PI reports, in Hartree, is the one of the converted momenta
        kinetic_ha = engine._system.properties["kinetic_md"][0]
        assert kinetic_ha * 27.211386024367243 == pytest.approx(
            sim.atoms.get_kinetic_energy(), rel=1e-8)


def test_written_frames_match_the_calculator(tmp_path: Path) -> None:
    cfg = _ipi_config(tmp_path, {"thermostat": "svr"}, {"steps": 10})
    result = run_simulation(cfg, progress=False)
    calc = _fresh_calculator(cfg)
    for frame in read(result.trajectory, index="::5"):
        probe = frame.copy()
        probe.calc = calc
        assert np.allclose(frame.get_forces(), probe.get_forces(), rtol=1e-10, atol=1e-10)
        assert frame.get_potential_energy() == pytest.approx(probe.get_potential_energy(),
                                                             abs=1e-8)


def test_client_that_never_connects_fails_in_time(tmp_path: Path) -> None:
    cfg = _ipi_config(tmp_path, {"connect_timeout_s": 2})
    atoms = build_structure(cfg.system)
    start = time.monotonic()
    with pytest.raises(IPIClientError, match=r"no force client connected .* /tmp/ipi_hybridmd-"
                       r".* within 2 s \(engine.connect_timeout_s\); check that"):
        IPIEngine(atoms, cfg.dynamics, cfg.engine, tmp_path / "ipi", start_client=False)
    assert time.monotonic() - start < 6
    assert (tmp_path / "ipi" / "RESTART").exists()
    # i-PI's process-wide state was cleaned up: the next engine runs
    atoms.calc = _fresh_calculator(cfg)
    with IPIEngine(atoms, cfg.dynamics, cfg.engine, tmp_path / "ipi") as engine:
        engine.advance(2)


def test_dying_client_ends_the_run_with_its_error(tmp_path: Path, monkeypatch) -> None:
    """The calculator raises in the client thread: the run stops at once, saying why, and no
    thread of i-PI's ends with a traceback (a reset connection is a disconnection)."""
    crashed = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    cfg = _ipi_config(tmp_path, {"connect_timeout_s": 30})
    atoms = build_structure(cfg.system)
    atoms.calc = _fresh_calculator(cfg)
    atoms.calc.calculate = _raise_after(atoms.calc.calculate, calls=3)
    start = time.monotonic()
    with pytest.raises(IPIClientError, match="force client .* stopped: .*calculator exploded"), \
            IPIEngine(atoms, cfg.dynamics, cfg.engine, tmp_path / "ipi") as engine:
        engine.advance(10)
    assert time.monotonic() - start < 10
    time.sleep(0.5)  # i-PI's polling thread sees the closed socket within its latency
    assert [f"{c.thread.name}: {c.exc_type.__name__}" for c in crashed] == []


def _raise_after(calculate, calls: int):
    count = [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] >= calls:
            raise RuntimeError("calculator exploded")
        return calculate(*args, **kwargs)

    return wrapped


def test_resume_is_refused_with_the_restart_file(tmp_path: Path) -> None:
    cfg = _ipi_config(tmp_path, {}, {"steps": 3})
    run_simulation(cfg, progress=False)
    with pytest.raises(SimulationError, match=r"--resume is not supported with engine: ipi; "
                       r"i-PI's restart file is in .*RESTART"):
        run_simulation(cfg, resume=True, progress=False)


def test_serve_answers_a_real_ipi_server(tmp_path: Path) -> None:
    """`hybridmd serve` in its own process as the force client of i-PI run here."""
    cfg = _ipi_config(tmp_path, {"address": unique_socket_name(), "connect_timeout_s": 30})
    source = tmp_path / "serve.yaml"
    source.write_text(yaml.safe_dump({"system": {"molecule": "ethanol"},
                                      "calculator": {"type": "sgdml", "model": "ethanol"},
                                      "dynamics": {"timestep_fs": 0.5, "steps": 10}}))
    client = subprocess.Popen(
        [sys.executable, "-m", "hybridmd.cli", "-q", "serve", str(source), "--address",
         cfg.engine.address, "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sim = Simulation(cfg)  # initial momenta and the calculator, for the comparison
        calc = sim.atoms.calc
        with IPIEngine(sim.atoms, cfg.dynamics, cfg.engine, tmp_path / "ipi",
                       start_client=False) as engine:
            engine.advance(5)
            probe = sim.atoms.copy()
            probe.calc = calc
            assert np.allclose(engine.forces, probe.get_forces(), rtol=1e-10, atol=1e-10)
            assert engine.energy == pytest.approx(probe.get_potential_energy(), abs=1e-8)
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 0, err
    assert "after 6 force evaluations" in out  # the start and 5 steps


def test_serve_without_server_fails_clearly(tmp_path: Path, capsys) -> None:
    source = tmp_path / "serve.yaml"
    source.write_text(yaml.safe_dump({"system": {"molecule": "ethanol"},
                                      "calculator": {"type": "sgdml", "model": "ethanol"}}))
    name = unique_socket_name()
    assert main(["-q", "serve", str(source), "--address", name, "--timeout", "0.3"]) == 1
    err = capsys.readouterr().err
    assert f"no i-PI server on unix socket /tmp/ipi_{name} after 0.3 s" in err
    assert "<address>" in err


@pytest.mark.parametrize(("engine", "where", "message"), [
    ({"type": "ipi", "port": 31415}, "engine", "`port:` needs `socket: inet`"),
    ({"type": "ipi", "thermostat": "bussi"}, "engine.thermostat", "allowed: 'nve', 'svr'"),
    ({"type": "ipi", "adress": "x"}, "engine.adress", "did you mean 'address'?"),
    ({"thermostat": "svr"}, "engine", "missing `type:`; say which kind, e.g. type: ase | ipi"),
])
def test_engine_section_is_validated(tmp_path: Path, engine: dict, where: str,
                                     message: str) -> None:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    del data["dynamics"]["integrator"]
    data["engine"] = engine
    with pytest.raises(ConfigError) as err:
        parse_config(data, SimulationConfig, "bad.yaml", base_dir=tmp_path)
    assert any(w == where and message in m for w, m in err.value.problems), err.value


def test_ase_engine_options_are_refused_with_ipi(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))  # has dynamics.integrator: bussi
    data["engine"] = {"type": "ipi"}
    with pytest.raises(ConfigError, match="dynamics.integrator is for the ASE engine; with "
                       "engine: ipi the thermostat is engine.thermostat"):
        parse_config(data, SimulationConfig, "bad.yaml", base_dir=tmp_path)
    del data["engine"]
    assert parse_config(data, SimulationConfig, "ok.yaml").engine.type == "ase"
    assert isinstance(_ipi_config(tmp_path, {}).engine, IPIEngineConfig)


def test_coarse_frames_of_ipi_stream_to_the_interpolator(tmp_path: Path) -> None:
    """engine: ipi with interpolation: every 20th step written and streamed; fine.traj fills in
    the 0.5 fs frames, and under NVE its quintic frames are close to i-PI's own."""
    base = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    del base["dynamics"]["integrator"]
    cfg = make_config(tmp_path / "coarse", {
        "engine": {"type": "ipi", "thermostat": "nve"}, "dynamics": {"steps": 200},
        "output": {"stride": 20}, "interpolation": {"interpolator": "quintic"}}, base=base)
    run_simulation(cfg, progress=False)
    out = cfg.output.directory
    coarse, fine = read(out / "trajectory.traj", ":"), read(out / "fine.traj", ":")
    assert len(coarse) == 11 and len(fine) == 201
    assert np.array_equal(fine[40].positions, coarse[2].positions)
    every = _ipi_config(tmp_path / "every", {"thermostat": "nve"}, {"steps": 200})
    run_simulation(every, progress=False)
    ref = read(every.output.directory / "trajectory.traj", ":")
    error = np.abs(np.array([a.positions for a in fine]) - [a.positions for a in ref]).mean()
    assert error < 0.01  # quintic Hermite at 10 fs: ~2e-3 Å


def _water_box(tmp_path: Path, cell) -> Path:
    """Two waters in a periodic cell (a cube, or a tilted cell), as an extxyz file."""
    from ase import Atoms
    from ase.build import molecule

    box = Atoms(cell=cell, pbc=True)
    for shift in ([0.3, 1.5, 1.5], [3.0, 3.2, 3.4]):  # the first across the face x = 0
        water = molecule("H2O")
        water.positions += shift
        box += water
    path = tmp_path / "water2-box.extxyz"
    box.write(path)
    return path


def test_a_periodic_system_runs_in_its_cell_under_ipi(tmp_path: Path) -> None:
    """Two waters in a 5 Å cube with GFN1-xTB through i-PI: the forces i-PI reports are
    tblite's periodic ones at the same positions (not those of the waters in vacuum), and
    the trajectory carries the cell."""
    box = _water_box(tmp_path, [5.0, 5.0, 5.0])
    cfg = make_config(tmp_path, {
        "system": {"molecule": None, "file": str(box)},
        "calculator": {"type": "xtb", "method": "GFN1-xTB"},
        "engine": {"type": "ipi", "thermostat": "svr"},
        "dynamics": {"steps": 6, "temperature_K": 300, "timestep_fs": 0.5, "seed": 2}},
        base={k: v for k, v in ETHANOL_SGDML.items() if k != "dynamics"})
    sim = Simulation(cfg)
    sim.run(progress=False)
    frames = read(sim.paths["trajectory"], ":")
    assert {tuple(a.pbc) for a in frames} == {(True, True, True)}
    assert all(np.allclose(a.cell.array, np.eye(3) * 5.0) for a in frames)
    last = frames[-1]
    calc = _fresh_calculator(cfg)
    periodic = last.copy()
    periodic.calc = calc
    assert np.allclose(last.get_forces(), periodic.get_forces(), atol=1e-4)
    vacuum = last.copy()
    vacuum.pbc = False
    vacuum.calc = _fresh_calculator(cfg)
    assert not np.allclose(last.get_forces(), vacuum.get_forces(), atol=1e-2)


def test_a_cell_ipi_cannot_hold_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    box = _water_box(tmp_path, [[5.0, 0, 0], [0, 5.0, 0.5], [0.3, 0, 5.0]])
    data = {**{k: v for k, v in ETHANOL_SGDML.items() if k != "dynamics"},
            "system": {"file": str(box)},
            "calculator": {"type": "xtb", "method": "GFN1-xTB"},
            "engine": {"type": "ipi"},
            "dynamics": {"steps": 4, "temperature_K": 300, "timestep_fs": 0.5, "seed": 2},
            "output": {"directory": str(tmp_path / "refused")}}
    (tmp_path / "in.yaml").write_text(yaml.safe_dump(data))
    assert main(["simulate", str(tmp_path / "in.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: engine: ipi:") and "xy plane" in err and "\n" not in err
    assert not (tmp_path / "refused").exists()
