"""Fault injection with real processes: start `hybridmd`, kill or signal it, find what is left.

Used by tests/test_reliability.py and benchmarks/reliability.py. A started command writes its
output to files (no pipe that could fill and block it); ``descendants`` lists its process tree
(the interpolator worker, monitors, multiprocessing's resource tracker), taken before a kill
because a killed parent's children are re-parented.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from ase.io import read
from ase.io.trajectory import Trajectory

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
#: how long the children of a killed run may take to go (they poll their parent every second)
GONE_WITHIN_S = 15.0

#: the hybrid run the process tests kill, signal and resume: 60 segments of 10 fs with the
#: shipped forecaster, a monitor process and the interpolator worker in its own process
RUN = {
    "system": {"molecule": "ethanol"},
    "calculator": {"type": "sgdml", "model": "ethanol"},
    "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "duration_fs": 600,
                 "temperature_K": 300, "seed": 3},
    "hybrid": {"stride": 20, "interpolator": "quintic", "forecaster": "ethanol-forecaster-10fs",
               "transport": "process", "switch": {"verified_segments": 2},
               "monitor": {"fraction": 0.25, "workers": 1}},
    "output": {"checkpoint_interval_s": 0},
}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hybridmd.cli", "-q", *args]


@dataclass
class Command:
    """A running `hybridmd` command, its output in ``log`` (stdout and stderr together)."""

    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 300.0) -> int:
        return self.proc.wait(timeout=timeout)


def start(args: list[str], log: Path, cwd: Path, new_session: bool = False) -> Command:
    """``hybridmd -q ARGS`` in its own process (``new_session``: its own process group)."""
    fh = open(log, "w")  # noqa: SIM115 (the child keeps it; closed when the process ends)
    try:
        proc = subprocess.Popen(cli(*args), cwd=cwd, env=ENV, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=new_session)
    finally:
        fh.close()
    return Command(proc, log)


def run(args: list[str], cwd: Path, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """``hybridmd -q ARGS`` to the end: exit code and output."""
    return subprocess.run(cli(*args), cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def descendants(pid: int) -> list[psutil.Process]:
    """Every process below ``pid`` (empty once it is gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def is_alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a dead child waiting for whoever adopted it to reap it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def left_after(processes: list[psutil.Process], timeout: float = GONE_WITHIN_S
               ) -> list[psutil.Process]:
    """The processes still alive after waiting up to ``timeout`` seconds for them to end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(is_alive(p) for p in processes):
        time.sleep(0.1)
    return [p for p in processes if is_alive(p)]


def cmdline(process: psutil.Process) -> str:
    """The command line of a process ("" once it is gone or a zombie)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def describe(processes: list[psutil.Process]) -> list[str]:
    return [f"{p.pid}: {cmdline(p)[-90:] or '(gone)'}" for p in processes]


def kill_all(processes: list[psutil.Process]) -> None:
    """Clean-up after a failed test: SIGKILL what is left."""
    for p in processes:
        with contextlib.suppress(psutil.Error):
            p.kill()


def wait_until(condition: Callable[[], bool], command: Command, timeout: float = 120.0) -> None:
    """Poll ``condition`` while ``command`` runs; fail if it ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if command.proc.poll() is not None:
            raise AssertionError(f"the command ended (code {command.proc.returncode}) before "
                                 f"the awaited point:\n{command.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s:\n{command.output()[-3000:]}")
        time.sleep(0.05)


def frames_in(path: Path) -> int:
    """Frames in an ASE trajectory being written (0 while it does not exist or is empty)."""
    try:
        with Trajectory(str(path)) as traj:
            return len(traj)
    except Exception:  # noqa: BLE001 (a file being created)
        return 0


def signal_group(command: Command, signum: int) -> None:
    """Send ``signum`` to the command's whole process group, as a terminal's Ctrl-C does."""
    os.killpg(command.pid, signum)


def kill(command: Command) -> list[psutil.Process]:
    """SIGKILL the command itself; its descendants as they were just before."""
    tree = descendants(command.pid)
    command.proc.send_signal(signal.SIGKILL)
    command.wait(30)
    return tree


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def positions(path: Path) -> np.ndarray:
    return np.array([atoms.positions for atoms in read(path, ":")])


def frames_lost(reference: Path, resumed: Path) -> int:
    """Frames of ``reference`` that ``resumed`` lacks or holds differently (exact equality)."""
    ref, got = positions(reference), positions(resumed)
    common = min(len(ref), len(got))
    differ = int(np.sum(np.any(ref[:common] != got[:common], axis=(1, 2))))
    return differ + len(ref) - common + max(0, len(got) - len(ref))
