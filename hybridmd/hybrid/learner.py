"""The background learner of ``forecaster: learn``: new force-field versions while the run goes on.

The driver asks for a fit when enough new expensive frames are in (``first_fit_frames``, then
every ``refit_frames``, or ``refit_growth`` times the frames of the last request where that
is more), hands the learner the frames labeled so far, and takes the version
up ``lag_segments`` segments later (counted in segments made), waiting there if the learner
is late. Versions are taken up only at those boundaries, never inside a segment, and a fit is
a deterministic function of the frames, so the trajectory does not depend on how fast the
learner is: one seed gives one trajectory, and a resumed run, which hands the learner the
same frames again, continues it exactly.

The learner runs in a spawned process (default), in a thread of the driver's process, or on an
MPI rank (``hybridmd.hybrid.mpi`` passes its executor); see ``hybridmd.background``. A learner
that raises or dies ends the run with its message; the frames committed so far are on disk and
``--resume`` continues.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hybridmd.background import process_ids, stop_processes
from hybridmd.hybrid.dataset import CHECKS, ExpensiveFrames
from hybridmd.signals import raise_if_stopped, spawning_children

log = logging.getLogger(__name__)


class LearnerError(RuntimeError):
    """The learner failed or died."""


@dataclass
class FitRequest:
    version: int
    requested_at: int  #: the driver's segment count when it asked
    frames: int  #: frames handed over (the first ``frames`` of the run's set)


@dataclass
class FitFailure:
    """A fit that failed numerically (an ill-conditioned kernel): the run keeps its version."""

    version: int
    message: str


#: a fit: (positions, forces, energies, numbers, version=) -> a version of the force field,
#: picklable (a module-level function with its settings bound: ``functools.partial``)
Fit = Callable[..., Any]


def run_fit(fit: Fit, threads: int, positions: np.ndarray, forces: np.ndarray,
            energies: np.ndarray, numbers: np.ndarray, version: int,
            start_from: Any = None, preferred: np.ndarray | None = None) -> Any:
    """One fit, with the BLAS threads fixed (the same sums in the same order every time);
    a ``FitFailure`` where its linear algebra failed. ``start_from``: the version in use, to
    go on training (given only to fits that continue one); ``preferred``: the frames a fit
    that cannot take them all takes first (given only where there are some)."""
    from threadpoolctl import threadpool_limits

    warm = {} if start_from is None else {"start_from": start_from}
    if preferred is not None and preferred.any():
        warm["preferred"] = preferred
    with threadpool_limits(limits=threads):
        try:
            return fit(positions, forces, energies, numbers, version=version, **warm)
        except np.linalg.LinAlgError as exc:
            return FitFailure(version, f"{type(exc).__name__}: {exc}")


class Learner:
    """Asks for fits and hands back versions at fixed points of the run.

    ``continues``: each fit goes on training the version in use (``start_from``; MACE's
    networks keep what they learned), rather than starting afresh (sGDML's closed form).
    ``refit_growth``: the next fit waits for at least this share of new frames (0: for
    ``refit_frames`` only), so fits of every frame cost a geometric series, not a sum of
    ever larger fits at a fixed pace."""

    def __init__(self, fit: Fit, threads: int, numbers: np.ndarray, first_fit_frames: int,
                 refit_frames: int, lag_segments: int, executor: Executor,
                 owns_executor: bool = True, continues: bool = False,
                 refit_growth: float = 0.0):
        self.fit, self.threads, self.continues = fit, threads, continues
        self.numbers = np.asarray(numbers, dtype=int)
        self.first_fit_frames, self.refit_frames = first_fit_frames, refit_frames
        self.refit_growth = refit_growth
        self.lag = lag_segments
        self._executor, self._owns = executor, owns_executor
        self.next_version = 1
        self.last_request_frames = 0  #: frames handed over at the last request
        self.pending: FitRequest | None = None
        self._future: Future | None = None
        self.fit_seconds = 0.0  #: the learner's time on the versions taken up
        self.wait_seconds = 0.0  #: the driver's time waiting for late versions

    def request_due(self, frames: int) -> bool:
        last = self.last_request_frames
        threshold = (self.first_fit_frames if last == 0 else
                     last + max(self.refit_frames, math.ceil(self.refit_growth * last)))
        return self.pending is None and frames >= threshold

    def request(self, step: int, dataset: ExpensiveFrames, in_use: Any = None) -> None:
        """Hand the frames so far to the learner (``step``: the driver's segment count;
        ``in_use``: the version the run uses now, which a continuing fit starts from)."""
        self.pending = FitRequest(self.next_version, step, len(dataset))
        self.last_request_frames = len(dataset)
        self.next_version += 1
        self._submit(dataset, in_use)

    def _submit(self, dataset: ExpensiveFrames, in_use: Any) -> None:
        r, f, e = dataset.arrays(self.pending.frames)
        start_from = in_use if self.continues else None
        # the frames single-point checks labeled: where the model was unsure
        preferred = np.isin(dataset.arrays_sources()[:self.pending.frames], CHECKS)
        try:
            with spawning_children():  # a process pool starts its process on the first one
                self._future = self._executor.submit(run_fit, self.fit, self.threads, r, f, e,
                                                     self.numbers, self.pending.version,
                                                     start_from, preferred)
        except BrokenProcessPool as exc:  # it died after its last fit was taken up
            raise LearnerError(f"the learner process died ({exc})") from None

    def take_up_due(self, step: int) -> bool:
        return self.pending is not None and step >= self.pending.requested_at + self.lag

    def take_up(self) -> Any:
        """The pending version, or why its fit failed (waits for it)."""
        t0 = time.perf_counter()
        try:
            model = self._wait()
        except BrokenProcessPool as exc:
            raise LearnerError(f"the learner process died ({exc})") from None
        except Exception as exc:  # noqa: BLE001 (any error of a fit ends the run, with its text)
            raise LearnerError(f"the learner failed fitting version {self.pending.version}: "
                               f"{type(exc).__name__}: {exc}") from exc
        self.wait_seconds += time.perf_counter() - t0
        if not isinstance(model, FitFailure):
            self.fit_seconds += model.fit_seconds
        self.pending, self._future = None, None
        return model

    def _wait(self, poll_s: float = 0.2) -> Any:
        """The pending fit's result; a stop signal meanwhile ends the wait (a fit can take
        minutes: the run then stops at its last checkpoint, and a resume asks again)."""
        while True:
            try:
                return self._future.result(timeout=poll_s)
            except FutureTimeout:
                raise_if_stopped()

    def state_dict(self) -> dict[str, Any]:
        return {"next_version": self.next_version,
                "last_request_frames": self.last_request_frames,
                "pending": None if self.pending is None else asdict(self.pending),
                "fit_seconds": self.fit_seconds, "wait_seconds": self.wait_seconds}

    def load_state_dict(self, state: dict[str, Any], dataset: ExpensiveFrames,
                        in_use: Any = None) -> None:
        """Back to a checkpointed state; a fit that was pending is asked for again (from
        ``in_use``, the version in use then and now: none is taken up while one is pending)."""
        self.next_version = state["next_version"]
        self.last_request_frames = state["last_request_frames"]
        self.fit_seconds, self.wait_seconds = state["fit_seconds"], state["wait_seconds"]
        self.pending = None if state["pending"] is None else FitRequest(**state["pending"])
        if self.pending is not None:
            self._submit(dataset, in_use)

    def process_ids(self) -> list[int]:
        """The learner's processes (none for a thread or an MPI rank)."""
        return process_ids(self._executor)

    def close(self) -> None:
        """Stop the learner: a fit in progress is abandoned (a resume asks for it again)."""
        if self._future is not None:
            self._future.cancel()
        if self._owns:
            stop_processes(self._executor)
