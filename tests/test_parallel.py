"""MPI under a real ``mpiexec -n 3``: the interpolator on its own rank, a failing rank ending the
job, and replicas; plus the rules that need no MPI. Each mpiexec has a timeout, so a hang fails
the test instead of blocking the suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

from hybridmd.cli import main
from hybridmd.config import ConfigError
from hybridmd.parallel import abort_on_error
from hybridmd.replicas import replica_indices
from hybridmd.simulate import run_simulation

from conftest import ETHANOL_SGDML, REPO, make_config
from mpi_programs import STRIDE, coarse_frames, stream

MPIEXEC = Path(sys.executable).parent / "mpiexec"
PROGRAMS = Path(__file__).resolve().parent / "mpi_programs.py"


# found, not imported: importing mpi4py would start MPI in the test process
needs_mpi = pytest.mark.skipif(not (MPIEXEC.exists() and find_spec("mpi4py")),
                               reason=f"needs mpi4py and {MPIEXEC}")


def mpiexec(*args: str | Path, cwd: Path, timeout: float = 120) -> tuple[int, str, float]:
    """Run ``mpiexec -n 3 python ARGS``: exit code, output, seconds; killed after ``timeout``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    start = time.monotonic()
    proc = subprocess.Popen([str(MPIEXEC), "-n", "3", sys.executable, *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # mpiexec and every rank it started
        out, _ = proc.communicate()
        pytest.fail(f"mpiexec hung for {timeout} s:\n{out}")
    return proc.returncode, out, time.monotonic() - start


@pytest.fixture(scope="module")
def md(tmp_path_factory) -> Path:
    """60 fs of NVE ethanol with the shipped sGDML model, every 0.5 fs step."""
    tmp = tmp_path_factory.mktemp("md")
    cfg = make_config(tmp, {"dynamics": {"integrator": "nve", "steps": 6 * STRIDE}})
    return run_simulation(cfg, progress=False).trajectory


@needs_mpi
def test_worker_rank_streams_the_same_fine_trajectory_as_a_thread(md, tmp_path):
    """Rank 0 streams the coarse frames to the Bi-LSTM on rank 1, then runs ASE MD with the
    observer on that worker; ranks 0 and 2 first check the bounded transport (Full while 2
    sends are untaken, Empty, END_OF_STREAM)."""
    code, out, _ = mpiexec(PROGRAMS, "stream", md, tmp_path / "mpi.traj",
                           tmp_path / "observer.traj", cwd=tmp_path)
    assert code == 0, out
    assert "transport ok" in out
    assert "driver wrote 121 fine frames" in out and "worker wrote 121 fine frames" in out
    # then an ASE VelocityVerlet run on rank 0 with InterpolatingObserver(transport="mpi")
    assert "observer wrote 81 fine frames" in out and "worker wrote 81 fine frames" in out
    observed = read(tmp_path / "observer.traj", ":")
    assert [a.info["fine_index"] for a in observed] == list(range(81))
    frames = coarse_frames(str(md))
    assert stream(str(md), frames, str(tmp_path / "thread.traj"), "thread") == 121
    by_mpi, by_thread = read(tmp_path / "mpi.traj", ":"), read(tmp_path / "thread.traj", ":")
    assert [a.info["fine_index"] for a in by_mpi] == list(range(121))
    assert [a.info["method"] for a in by_mpi] == [a.info["method"] for a in by_thread]
    # the same code on the same windows; float32 GEMMs may round apart across processes
    np.testing.assert_allclose([a.positions for a in by_mpi], [a.positions for a in by_thread],
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose([a.get_momenta() for a in by_mpi],
                               [a.get_momenta() for a in by_thread], rtol=0, atol=1e-6)
    for frame in frames:  # the coarse frames bit for bit
        np.testing.assert_array_equal(by_mpi[frame.index * STRIDE].positions, frame.positions)
    reference = read(md, ":")  # and the interpolated frames follow the MD
    error = np.abs(np.array([a.positions for a in by_mpi])
                   - np.array([a.positions for a in reference])).mean()
    assert error < 0.01


@needs_mpi
@pytest.mark.parametrize("program, messages", [
    ("raise", ["rank 2 of 3 failed", "RuntimeError: rank 2 gives up on purpose"]),
    ("worker-fails", ["interpolator worker on rank 1 failed", "coarse frame 3 (t = 30 fs) has "
                      "no forces", "rank 0 of 3 failed", "WorkerDiedError"]),
])
def test_a_failing_rank_ends_the_job_with_its_message(program, messages, md, tmp_path):
    """The other ranks wait for a message that never comes; Abort ends them all the same."""
    code, out, seconds = mpiexec(PROGRAMS, program, md, tmp_path / "fine.traj", cwd=tmp_path,
                                 timeout=60)
    assert code != 0
    for message in messages:
        assert message in out, out
    assert "Traceback" in out
    assert seconds < 60


@needs_mpi
def test_a_driver_that_gives_up_stops_the_worker_rank(md, tmp_path):
    """``abort`` on rank 0 with frames still on their way: the worker stops, all ranks exit."""
    code, out, _ = mpiexec(PROGRAMS, "driver-stops", md, tmp_path / "fine.traj", cwd=tmp_path,
                           timeout=60)
    assert code == 0, out
    assert "driver stopped the stream" in out and "worker returned None" in out
    assert "the driver stopped the stream" in out  # the worker's warning
    assert len(read(tmp_path / "fine.traj", ":")) < 121


@needs_mpi
def test_replicas_one_per_rank(tmp_path):
    data = {**ETHANOL_SGDML, "replicas": 3,
            "dynamics": {**ETHANOL_SGDML["dynamics"], "steps": 10},
            "output": {"directory": str(tmp_path / "run"), "stride": 5}}
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(data))
    code, out, _ = mpiexec("-m", "hybridmd.cli", "-q", "simulate", "input.yaml", cwd=tmp_path)
    assert code == 0, out
    finals = []
    for k in range(3):
        folder = tmp_path / "run" / f"replica-{k}"
        assert f"replica {k}: finished: 10 steps, 3 frames in {folder / 'trajectory.traj'}" in out
        assert json.loads((folder / "run.json").read_text())["input"]["dynamics"]["seed"] == 7 + k
        frames = read(folder / "trajectory.traj", ":")
        assert len(frames) == 3
        finals.append(frames[-1].positions)
    assert not any(np.allclose(finals[i], finals[j]) for i, j in ((0, 1), (0, 2), (1, 2)))


@needs_mpi
def test_replicas_must_fit_the_ranks(tmp_path):
    data = {**ETHANOL_SGDML, "replicas": 2, "output": {"directory": str(tmp_path / "run")}}
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(data))
    code, out, _ = mpiexec("-m", "hybridmd.cli", "-q", "simulate", "input.yaml", cwd=tmp_path,
                           timeout=60)
    assert code != 0
    assert "replicas: 2 cannot be shared evenly by 3 MPI ranks" in out, out
    assert not (tmp_path / "run").exists()


def test_replicas_run_one_after_another_without_mpi(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = {**ETHANOL_SGDML, "replicas": 2,
            "dynamics": {**ETHANOL_SGDML["dynamics"], "steps": 4},
            "output": {"directory": "run", "stride": 2}}
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(data))
    assert main(["-q", "simulate", "input.yaml"]) == 0
    out = capsys.readouterr().out
    runs = [read(tmp_path / "run" / f"replica-{k}" / "trajectory.traj", ":") for k in range(2)]
    assert "replica 0: finished" in out and "replica 1: finished" in out
    assert [len(r) for r in runs] == [3, 3]
    assert not np.allclose(runs[0][0].get_momenta(), runs[1][0].get_momenta())  # seeds 7, 8
    assert main(["-q", "simulate", "input.yaml", "--resume"]) == 0  # each replica resumes


def test_replica_rules(tmp_path):
    assert replica_indices(3, 1, 3) == [1]
    assert replica_indices(6, 1, 3) == [1, 4]
    assert replica_indices(2, 0, 1) == [0, 1]  # no MPI: all of them
    with pytest.raises(ValueError, match="mpiexec -n 4 .* or set replicas: 3"):
        replica_indices(4, 0, 3)
    with pytest.raises(ConfigError, match="replicas: .*greater than or equal to 1"):
        make_config(tmp_path, {"replicas": 0})


def test_abort_on_error_without_mpi_lets_the_exception_through():
    with pytest.raises(KeyError, match="plain"), abort_on_error() as comm:
        assert comm is None
        raise KeyError("plain")


@needs_mpi
def test_hybrid_run_over_three_ranks_equals_the_local_run(tmp_path: Path) -> None:
    """mpiexec -n 3 hybridmd run: driver, interpolator rank, monitor rank; same trajectory."""
    data = {
        "system": {"molecule": "ethanol"},
        "calculator": {"type": "sgdml", "model": "ethanol"},
        "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "duration_fs": 200,
                     "temperature_K": 300, "seed": 5},
        "hybrid": {"stride": 20, "interpolator": "quintic",
                   "forecaster": "ethanol-forecaster-10fs",
                   "switch": {"verified_segments": 2},
                   "monitor": {"fraction": 0.5, "workers": 0, "lag_segments": 2}},
    }
    for name in ("mpi", "local"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(
            {**data, "output": {"directory": str(tmp_path / name)}}))
    code, out, _ = mpiexec("-m", "hybridmd.cli", "-q", "run", tmp_path / "mpi.yaml",
                           cwd=tmp_path)
    assert code == 0, out
    assert "expensive calls" in out  # the summary, from the driver's rank
    assert main(["-q", "run", str(tmp_path / "local.yaml")]) == 0
    mpi = json.loads((tmp_path / "mpi" / "summary.json").read_text())
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert mpi["ml_segments"] > 0 and mpi["force_calls"] == local["force_calls"]
    a, b = (read(tmp_path / name / "coarse.traj", ":") for name in ("mpi", "local"))
    assert np.array_equal(np.array([x.positions for x in a]), np.array([x.positions for x in b]))
    fine = read(tmp_path / "mpi" / "fine.traj", ":")
    assert len(fine) == 401


@needs_mpi
def test_learning_run_with_the_learner_on_its_own_rank_equals_the_local_run(tmp_path: Path):
    """mpiexec -n 3 with forecaster: learn: driver, interpolator rank, learner rank."""
    data = {
        "system": {"molecule": "ethanol"},
        "calculator": {"type": "sgdml", "model": "ethanol"},
        "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "duration_fs": 300,
                     "temperature_K": 300, "seed": 5},
        "hybrid": {"stride": 20, "interpolator": "learn", "forecaster": "learn",
                   "learn": {"first_fit_frames": 60, "refit_frames": 80, "lag_segments": 1,
                             "max_frames": 40},
                   "switch": {"tolerance_A": 0.3, "disagreement_A": 0.3,
                              "verified_segments": 2, "max_ml_segments": 6},
                   "monitor": {"fraction": 0.3, "workers": 0, "lag_segments": 2}},
    }
    for name in ("mpi", "local"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(
            {**data, "output": {"directory": str(tmp_path / name)}}))
    code, out, _ = mpiexec("-m", "hybridmd.cli", "run", tmp_path / "mpi.yaml", cwd=tmp_path)
    assert code == 0, out
    assert "learner on rank 2" in out
    assert main(["-q", "run", str(tmp_path / "local.yaml")]) == 0
    mpi = json.loads((tmp_path / "mpi" / "summary.json").read_text())
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert mpi["ml_segments"] > 0 and mpi["learning"]["version"] >= 2
    assert mpi["force_calls"] == local["force_calls"]
    a, b = (read(tmp_path / name / "coarse.traj", ":") for name in ("mpi", "local"))
    assert np.array_equal(np.array([x.positions for x in a]), np.array([x.positions for x in b]))
