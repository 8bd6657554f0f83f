"""Monitors: re-simulate ML segments with the real calculator, in parallel with the driver.

A monitor task is the start state of an ML segment (positions, departure momenta); the monitor
runs the same n NVE steps the simulation would have run and returns the end state, which the
driver compares with the forecast. Monitors run in an executor of ``hybridmd.background``:
spawned processes that each build the calculator once, MPI ranks (``mpi4py.futures``) under
mpiexec, or, with 0 workers, in the driver itself. The driver applies results at fixed points
of the loop (``lag_segments`` after submission), so the trajectory does not depend on how fast
the monitors are.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import BrokenExecutor, Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from hybridmd.background import make_executor
from hybridmd.hybrid.segments import CallCounter, SegmentResult, SegmentSimulator
from hybridmd.signals import child_process_setup, spawning_children

log = logging.getLogger(__name__)


_DIED = "a monitor process ended abruptly (killed, or it crashed)"


class MonitorDiedError(RuntimeError):
    """A monitor process died or failed; the run stops with its committed frames on disk."""


@dataclass
class MonitorTask:
    segment: int  #: coarse index of the segment's start frame
    positions: np.ndarray
    momenta: np.ndarray  #: departure momenta
    #: forces and potential energy at the start, where the real calculator gave them
    start: tuple[np.ndarray, float] | None = None
    reason: str = "random"  #: why it is monitored: "random" | "uncertain"


@dataclass
class MonitorResult:
    segment: int
    frames: SegmentResult  #: the re-simulated segment, every frame with forces and energy
    force_calls: int
    reason: str = "random"
    labeled_start: bool = True  #: the start frame's forces are this monitor's (not given)

    @property
    def positions(self) -> np.ndarray:
        """Reference end positions."""
        return self.frames.positions[-1]


class _Resimulator:
    """A segment simulator with its own calculator, its calls counted."""

    def __init__(self, atoms: Atoms, stride: int, dt_fs: float):
        self.counter = CallCounter.of(atoms.calc)
        self.simulator = SegmentSimulator(atoms, stride, dt_fs)

    def __call__(self, task: MonitorTask) -> MonitorResult:
        before = self.counter.calls
        seg = self.simulator.segment(task.positions, task.momenta, task.start)
        return MonitorResult(task.segment, seg, self.counter.calls - before, task.reason,
                             task.start is None)


_WORKER: _Resimulator | None = None


def _init_worker(spec: dict[str, Any]) -> None:
    """Build the calculator in a monitor process (once)."""
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from hybridmd.calculators import build_calculator
    from hybridmd.config import RunConfig
    from hybridmd.structures import build_structure

    cfg = RunConfig.model_validate(spec["config"], context=spec["context"])
    atoms = build_structure(cfg.system)
    atoms.calc = build_calculator(cfg.calculator, atoms)
    _WORKER = _Resimulator(atoms, cfg.hybrid.stride, cfg.dynamics.timestep_fs)


def _init_monitor_process(spec: dict[str, Any]) -> None:
    """A monitor process: ignores SIGINT/SIGTERM (the driver stops it), ends with the driver."""
    child_process_setup()
    _init_worker(spec)


def _run_task(task: MonitorTask) -> MonitorResult:
    assert _WORKER is not None, "monitor process not initialised"
    return _WORKER(task)


def _run_task_initialising(spec: dict[str, Any], task: MonitorTask) -> MonitorResult:
    """A task on an MPI monitor rank: the calculator is built at the first one."""
    if _WORKER is None:
        _init_worker(spec)
    return _run_task(task)


@dataclass
class _Pending:
    submitted: int  #: the segment at which the task was submitted
    future: Future
    attached: bool = True  #: its ML segment is still pending in the driver


class MonitorPool:
    """Submits monitor tasks and hands back their results in submission order."""

    def __init__(self, workers: int, config: dict[str, Any], context: dict[str, Any],
                 executor: Executor | None = None, atoms: Atoms | None = None):
        """``atoms``: a molecule with its own calculator for monitors in the driver (else
        the calculator is built from ``config``). Monitors start with the first task: a run
        that never forecasts (or never samples a forecast) starts none."""
        self.workers = workers
        self._spec = {"config": config, "context": context}
        self._atoms = atoms
        self._initialising = executor is not None  # MPI ranks (mpi4py MPICommExecutor)
        self._executor: Executor | None = executor
        self._pending: list[_Pending] = []
        self._own_worker = False  #: the inline monitors' calculator was built here

    def _start(self) -> Executor:
        global _WORKER
        if self._atoms is not None:
            config = self._spec["config"]
            _WORKER = _Resimulator(self._atoms, config["hybrid"]["stride"],
                                   config["dynamics"]["timestep_fs"])
            return make_executor("inline")
        if self.workers == 0:
            # a calculator of its own, so the driver's force-call count stays its own
            _init_worker(self._spec)
            self._own_worker = True
            return make_executor("inline")
        return make_executor("process", self.workers, initializer=_init_monitor_process,
                             initargs=(self._spec,))

    def submit(self, task: MonitorTask, now: int) -> None:
        if self._executor is None:
            self._executor = self._start()
        try:
            if self._initialising:
                future = self._executor.submit(_run_task_initialising, self._spec, task)
            else:
                with spawning_children():  # the pool starts its processes on submission
                    future = self._executor.submit(_run_task, task)
        except BrokenExecutor as exc:  # a monitor died since the last submission
            raise MonitorDiedError(_DIED) from exc
        self._pending.append(_Pending(now, future))

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    @property
    def attached(self) -> int:
        """Outstanding tasks whose ML segment is still pending in the driver."""
        return sum(p.attached for p in self._pending)

    def due(self, now: int, lag: int) -> list[tuple[MonitorResult, bool]]:
        """Results of tasks submitted at least ``lag`` segments before ``now`` (waits for
        them), each with whether its ML segment is still pending (see ``detach``)."""
        out = []
        while self._pending and self._pending[0].submitted + lag <= now:
            pending = self._pending.pop(0)
            out.append((self._result(pending.future), pending.attached))
        return out

    def drain(self) -> list[tuple[MonitorResult, bool]]:
        """All outstanding results, in order (waits for them)."""
        out = [(self._result(p.future), p.attached) for p in self._pending]
        self._pending.clear()
        return out

    def detach(self) -> None:
        """After a rollback: the outstanding tasks' ML segments are gone, but the tasks run on.

        Their results still arrive at their fixed points, so the calls they made are counted
        and their frames can be learned from, whatever the monitors' speed; they are no
        longer compared with anything.
        """
        for pending in self._pending:
            pending.attached = False

    def _result(self, future: Future) -> MonitorResult:
        try:
            return future.result()
        except BrokenExecutor as exc:
            raise MonitorDiedError(_DIED) from exc
        except Exception as exc:
            raise MonitorDiedError(f"a monitor failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Stop the monitors (an MPI executor is shut down by its owner)."""
        for pending in self._pending:
            pending.future.cancel()
        self._pending.clear()
        if self._executor is not None and not self._initialising:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if self._own_worker and _WORKER is not None:
            from hybridmd.calculators import close_calculator

            # a calculator built for the monitors here, with its client process
            close_calculator(_WORKER.simulator.atoms.calc)
        self._own_worker = False
