"""`hybridmd simulate`: outputs, metadata, resume after a kill, and runs that blow up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

from hybridmd.calculators import CalculatorMismatchError
from hybridmd.config import ConfigError
from hybridmd.errors import InputError, SimulationError
from hybridmd.simulate import Simulation, run_simulation

from conftest import ETHANOL_SGDML, make_config


def test_outputs_and_metadata(config_factory) -> None:
    cfg = config_factory({"dynamics": {"steps": 20}, "output": {"stride": 5}})
    result = run_simulation(cfg, progress=False)
    frames = read(result.trajectory, index=":")
    assert len(frames) == result.frames == 5
    assert [f.info["step"] for f in frames] == [0, 5, 10, 15, 20]
    assert [f.info["time_fs"] for f in frames] == [0.0, 2.5, 5.0, 7.5, 10.0]
    for frame in frames:
        assert frame.has("momenta") and np.abs(frame.get_momenta()).sum() > 0
        assert np.isfinite(frame.get_potential_energy())
        assert frame.get_forces().shape == (9, 3)
    meta = json.loads((result.directory / "run.json").read_text())
    assert meta["input"]["dynamics"]["steps"] == 20
    assert meta["calculator"]["type"] == "sgdml"
    assert meta["versions"]["ase"] and meta["versions"]["sgdml"]
    log = np.loadtxt(result.directory / "md.log")
    assert log.shape == (5, 6)


def test_extxyz_output(config_factory) -> None:
    cfg = config_factory({"dynamics": {"steps": 6}, "output": {"stride": 3, "format": "extxyz"}})
    result = run_simulation(cfg, progress=False)
    assert result.trajectory.suffix == ".extxyz"
    frames = read(result.trajectory, index=":")
    assert len(frames) == 3 and frames[-1].has("momenta")
    assert frames[-1].info["step"] == 6


def test_existing_output_is_not_overwritten_silently(config_factory) -> None:
    cfg = config_factory({"dynamics": {"steps": 2}})
    run_simulation(cfg, progress=False)
    with pytest.raises(SimulationError, match="--resume.*--overwrite"):
        run_simulation(cfg, progress=False)
    run_simulation(cfg, overwrite=True, progress=False)


def test_resume_without_checkpoint(config_factory) -> None:
    with pytest.raises(SimulationError, match="nothing to resume"):
        run_simulation(config_factory(), resume=True, progress=False)


@pytest.mark.parametrize("integrator", ["bussi", "langevin", "nose-hoover"])
def test_resume_continues_the_same_trajectory(config_factory, integrator: str) -> None:
    """Run 30 steps; separately run 12 and extend to 30 with --resume: identical frames."""
    full = config_factory({"dynamics": {"integrator": integrator, "steps": 30},
                           "output": {"stride": 3, "directory": str(Path(
                               config_factory().output.directory).parent / "full")}})
    run_simulation(full, progress=False)
    part = config_factory({"dynamics": {"integrator": integrator, "steps": 12},
                           "output": {"stride": 3}})
    run_simulation(part, progress=False)
    part.dynamics.steps = 30
    result = run_simulation(part, resume=True, progress=False)
    a, b = read(full.output.directory / "trajectory.traj", ":"), read(result.trajectory, ":")
    assert len(a) == len(b) == 11
    for x, y in zip(a, b, strict=True):
        assert x.info["step"] == y.info["step"]
        np.testing.assert_allclose(y.positions, x.positions, rtol=0, atol=1e-12)
        np.testing.assert_allclose(y.get_momenta(), x.get_momenta(), rtol=0, atol=1e-12)


def test_resume_refuses_a_changed_input(config_factory) -> None:
    cfg = config_factory({"dynamics": {"steps": 4}})
    run_simulation(cfg, progress=False)
    cfg.dynamics.temperature_K = 350
    with pytest.raises(SimulationError, match="dynamics.temperature_K"):
        run_simulation(cfg, resume=True, progress=False)


def _frames_on_disk(path: Path) -> int:
    """Frames a running simulation has written so far (0 while the file is being created)."""
    try:
        return len(read(path, ":"))
    except Exception:
        return 0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hybridmd.cli", "-q", *args]


@contextmanager
def _running(*args: str, **popen) -> Iterator[subprocess.Popen]:
    """A `hybridmd` process that is killed on the way out, whatever the test did."""
    proc = subprocess.Popen(_cli(*args), **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_run_resumes_without_gaps_or_duplicates(tmp_path: Path) -> None:
    """SIGKILL a real `hybridmd simulate` process mid-run, then --resume it."""
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    data["dynamics"].update(steps=1500, integrator="bussi")
    data["output"] = {"stride": 5, "checkpoint_interval_s": 0, "directory": str(tmp_path / "k")}
    killed_input = tmp_path / "killed.yaml"
    killed_input.write_text(yaml.safe_dump(data))
    data["output"]["directory"] = str(tmp_path / "ref")
    ref_input = tmp_path / "ref.yaml"
    ref_input.write_text(yaml.safe_dump(data))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    traj = tmp_path / "k" / "trajectory.traj"
    with _running("simulate", str(killed_input), env=env, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL) as proc:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _frames_on_disk(traj) >= 40:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    n_before = len(read(traj, ":"))
    assert 40 <= n_before < 301

    done = subprocess.run(_cli("simulate", str(killed_input), "--resume"), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    subprocess.run(_cli("simulate", str(ref_input)), env=env, check=True, timeout=300,
                   capture_output=True)
    resumed, reference = read(traj, ":"), read(tmp_path / "ref" / "trajectory.traj", ":")
    assert [f.info["step"] for f in resumed] == list(range(0, 1501, 5))
    for x, y in zip(reference, resumed, strict=True):
        np.testing.assert_allclose(y.positions, x.positions, rtol=0, atol=1e-10)
    steps = np.loadtxt(tmp_path / "k" / "md.log")[:, 1]
    assert list(steps) == list(range(0, 1501, 5))


def test_sigterm_checkpoints_and_exits_143(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    data["dynamics"]["steps"] = 100000
    data["output"] = {"stride": 10, "directory": str(tmp_path / "t")}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    traj = tmp_path / "t" / "trajectory.traj"
    with _running("simulate", str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True) as proc:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _frames_on_disk(traj) <= 5:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # 128 + SIGTERM, what batch systems read
    ckpt = json.loads((tmp_path / "t" / "checkpoint.json").read_text())
    assert not ckpt["finished"] and ckpt["step"] > 50
    assert "--resume" in err


def test_model_structure_mismatch_stops_before_any_output(config_factory) -> None:
    cfg = config_factory({"system": {"molecule": "malonaldehyde"}})
    with pytest.raises(CalculatorMismatchError, match="atom"):
        Simulation(cfg)
    assert not cfg.output.directory.exists()


def test_exploding_temperature_stops_with_frames_on_disk(config_factory) -> None:
    """Lennard-Jones with a huge sigma pushes the atoms apart violently."""
    cfg = config_factory({
        "calculator": {"type": "ase", "import_path": "ase.calculators.lj:LennardJones",
                       "kwargs": {"sigma": 2.5, "epsilon": 1.0, "rc": 10.0}},
        "dynamics": {"integrator": "nve", "steps": 200},
        "output": {"stride": 1},
        "safety": {"max_temperature_K": 5000},
    })
    with pytest.raises(SimulationError, match="max_temperature_K") as err:
        run_simulation(cfg, progress=False)
    frames = read(cfg.output.directory / "trajectory.traj", ":")
    assert len(frames) >= 1 and str(len(frames)) in str(err.value)
    failed = read(cfg.output.directory / "failure.extxyz")
    assert failed.info["step"] == len(frames)


def test_nan_forces_stop_the_run(config_factory) -> None:
    cfg = config_factory({
        "calculator": {"type": "ase", "import_path": "faulty_calculators:NaNAfter",
                       "kwargs": {"good_calls": 4}},
        "dynamics": {"integrator": "nve", "steps": 50},
    })
    with pytest.raises(SimulationError, match="non-finite forces"):
        run_simulation(cfg, progress=False)
    assert len(read(cfg.output.directory / "trajectory.traj", ":")) == 4


def test_atoms_too_close_stop_the_run(config_factory) -> None:
    """The O-H bond starts at 0.979 Å and shortens to 0.95 Å within five steps."""
    cfg = config_factory({"dynamics": {"steps": 5}, "safety": {"min_distance_A": 0.96}})
    with pytest.raises(SimulationError, match="min_distance_A"):
        run_simulation(cfg, progress=False)


def test_atoms_too_close_at_the_start_are_refused_before_the_calculator(config_factory) -> None:
    cfg = config_factory({"safety": {"min_distance_A": 1.2}})
    with pytest.raises(InputError, match=r"atoms 2 and 8 .* 0.979 Å apart.*min_distance_A"):
        Simulation(cfg, calculator=None)
    assert not cfg.output.directory.exists()


def test_interpolation_streams_fine_frames_and_survives_a_resume(tmp_path: Path) -> None:
    """output.stride 10 with interpolation: fine.traj between the written frames; a run
    stopped halfway and resumed gives the same fine trajectory as one that ran through."""
    def config(name: str, steps: int):
        return make_config(tmp_path / name, {
            "dynamics": {"steps": steps}, "output": {"stride": 10, "checkpoint_interval_s": 0},
            "interpolation": {"interpolator": "quintic"}})

    run_simulation(config("through", 100), progress=False)
    Simulation(config("split", 50)).run(progress=False)
    Simulation(config("split", 100)).run(resume=True, progress=False)
    a = read(tmp_path / "through" / "run" / "fine.traj", ":")
    b = read(tmp_path / "split" / "run" / "fine.traj", ":")
    assert len(a) == len(b) == 101
    assert np.allclose([x.positions for x in a], [x.positions for x in b], atol=1e-12)


def test_interpolation_needs_a_coarse_output_stride(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="output.stride to 2 or more"):
        make_config(tmp_path, {"interpolation": {"interpolator": "quintic"}})


def test_quiet_prints_no_info_lines(tmp_path: Path) -> None:
    """-q: no progress bar and no INFO line, only the result; without it, INFO lines say
    what is going on."""
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outputs = {}
    for flags in ((), ("-q",)):
        data["output"]["directory"] = str(tmp_path / f"run{len(flags)}")
        path = tmp_path / f"in{len(flags)}.yaml"
        path.write_text(yaml.safe_dump(data))
        done = subprocess.run([sys.executable, "-m", "hybridmd.cli", *flags, "simulate",
                               str(path)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outputs[flags] = done.stdout + done.stderr
    assert "INFO " in outputs[()]
    assert "INFO " not in outputs[("-q",)] and "it/s" not in outputs[("-q",)]
    assert outputs[("-q",)].strip()  # the result is still printed
