"""The driver's side of the stream: ``StreamingInterpolation`` starts the worker in a thread or
a spawned process, or hands the stream to a worker on another MPI rank (which runs
``serve_interpolator``), passes it frames through a bounded queue (``submit`` blocks only
while the queue is full) and turns a dead worker into ``WorkerDiedError`` within a bounded
time."""

from __future__ import annotations

import logging
import queue
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from ase.data import atomic_masses

from hybridmd.periodic import Cell
from hybridmd.streaming.frames import CoarseFrame
from hybridmd.streaming.launchers import MPIWorker, ProcessWorker, ThreadWorker
from hybridmd.streaming.transport import END_OF_STREAM, RESULTS_TAG, Transport, make_transport

#: the stream's messages, from each of its modules, under the worker's one logger name
log = logging.getLogger("hybridmd.streaming.worker")


class WorkerDiedError(RuntimeError):
    """The interpolator worker stopped before the end of the stream."""

    def __init__(self, message: str, cause: str, output_path: Path, worker_traceback: str = ""):
        super().__init__(message)
        self.cause = cause  #: the worker's exception text, or how it ended
        self.output_path = output_path  #: the fine frames written before it died
        self.worker_traceback = worker_traceback  #: the worker's traceback, when it raised


def _count_frames(path: Path) -> int | None:
    """Frames readable from an ASE trajectory (None when unknown)."""
    if path.suffix != ".traj" or not path.exists():
        return 0 if not path.exists() else None
    try:
        from ase.io.trajectory import Trajectory as AseTrajectory

        with AseTrajectory(str(path)) as traj:
            return len(traj)
    except Exception:  # noqa: BLE001 (a best-effort count for a message)
        return None


class StreamingInterpolation:
    """The driver's handle on a running interpolator worker (a context manager).

    ``submit`` hands a coarse frame to the worker through a queue of ``maxsize`` frames and
    blocks only while that queue is full; ``close`` ends the stream, waits for the worker and
    returns the number of fine frames written to ``output_path``. A worker that died (raised,
    or was killed) raises ``WorkerDiedError`` on the next ``submit``/``close`` after at most
    about ``poll_s`` seconds of waiting.

    ``transport``: ``thread`` (shares the driver's interpreter: fine for classical splines and
    small networks), ``process`` (a spawned process, frames pickled; a script that uses it
    needs the usual ``if __name__ == "__main__":`` guard) or ``mpi`` (rank ``worker_rank`` of
    ``comm``, default ``MPI.COMM_WORLD``, calls ``serve_interpolator(comm, this rank)``).
    At most ``maxsize`` frames wait in the queue, so the driver runs ahead of the fine output
    by at most ``maxsize`` + C frames (one in the worker's hands, C-1 held back as right-hand
    context). ``interval_delay_s`` slows the worker down on purpose (tests of backpressure).
    ``resume_frames``: continue the fine output of an earlier stream (see
    ``IncrementalReconstructor.resume``).
    """

    def __init__(self, spec: str, output_path: str | Path, numbers: np.ndarray, stride: int,
                 dt_fs: float, masses: np.ndarray | None = None, transport: str = "thread",
                 maxsize: int = 4, interval_delay_s: float = 0.0, device: str = "cpu",
                 threads: int | None = None, poll_s: float = 0.1,
                 close_timeout_s: float = 300.0, comm: Any = None, worker_rank: int = 1,
                 resume_frames: list[CoarseFrame] | None = None, cell: Cell | None = None):
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1 (got {maxsize}): the queue is bounded")
        self.output_path = Path(output_path)
        self.transport_kind = transport
        self.maxsize = maxsize
        self._comm, self.worker_rank = comm, worker_rank
        self.poll_s, self.close_timeout_s = poll_s, close_timeout_s
        numbers = np.asarray(numbers, dtype=int)
        self._options: dict[str, Any] = {
            "spec": spec, "stride": stride, "dt_fs": dt_fs, "output_path": str(output_path),
            "numbers": numbers,
            "masses": atomic_masses[numbers] if masses is None else np.asarray(masses, float),
            "interval_delay_s": interval_delay_s, "device": device,
            "resume_frames": resume_frames, "cell": cell,
            # torch's thread count is process-wide: a thread worker leaves the driver's alone
            "threads": threads if transport != "thread" else None}
        self._frames: Transport | None = None
        self._results: Transport | None = None
        self._worker: ThreadWorker | ProcessWorker | MPIWorker | None = None
        self._state = "new"  #: new | running | closed | failed | aborted
        self._error: WorkerDiedError | None = None
        self._written = 0
        self.submitted = 0  #: frames handed to the queue so far

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> StreamingInterpolation:
        """Start the worker (done by ``with``)."""
        if self._state != "new":
            raise RuntimeError(f"the stream is {self._state}: a stream starts once")
        kind = self.transport_kind
        peer = {"comm": self._comm, "peer": self.worker_rank} if kind == "mpi" else {}
        self._frames = make_transport(kind, self.maxsize, **peer)
        self._results = make_transport(kind, **peer, tag=RESULTS_TAG)
        cls = {"thread": ThreadWorker, "process": ProcessWorker, "mpi": MPIWorker}[kind]
        self._worker = cls(self._frames, self._results, self._options)
        self._state = "running"
        where = (f", pid {self._worker.pid}" if self._worker.pid else
                 f", rank {self.worker_rank}" if kind == "mpi" else "")
        log.info("interpolator worker started (%s%s), queue of %d frames", kind, where,
                 self.maxsize)
        return self

    def __enter__(self) -> StreamingInterpolation:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id (None for a thread worker or before ``start``)."""
        return None if self._worker is None else self._worker.pid

    @property
    def worker_alive(self) -> bool:
        return self._worker is not None and self._worker.alive

    # -- driver side --------------------------------------------------------------------------
    def submit(self, frame: CoarseFrame) -> None:
        """Hand ``frame`` to the worker; block while the queue is full."""
        self._put(frame)
        self.submitted += 1

    def close(self) -> int:
        """End the stream, wait for the worker; the number of fine frames written."""
        if self._state == "closed":
            return self._written
        self._put(END_OF_STREAM)
        deadline = time.monotonic() + self.close_timeout_s
        while True:
            alive = self._worker.alive
            try:
                status, value, detail = self._results.get(timeout=self.poll_s)
            except queue.Empty:
                if not alive:
                    self._died(self._worker.describe_exit())
                if time.monotonic() > deadline:
                    self.abort()
                    raise TimeoutError(
                        f"the interpolator worker did not finish within {self.close_timeout_s:g}"
                        f" s after the end of the stream; the fine frames written so far are in "
                        f"{self.output_path}") from None
                continue
            if status == "error":
                self._died(value, detail)
            break
        self._worker.join(self.close_timeout_s)
        self._written, self._state = int(value), "closed"
        self._release(discard=False)
        log.info("interpolator worker finished: %d fine frames in %s", self._written,
                 self.output_path)
        return self._written

    def abort(self) -> None:
        """Stop the worker without finishing the stream (the frames written so far stay)."""
        if self._state == "running":
            self._worker.stop()
            self._release(discard=True)
            self._state = "aborted"

    # -- internals ----------------------------------------------------------------------------
    def _put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        if self._state != "running":
            raise RuntimeError(f"the stream is {self._state}: submit frames between start "
                               "(or entering the with block) and close")
        while True:
            self._check_worker()
            try:
                self._frames.put(item, timeout=self.poll_s)
                return
            except queue.Full:
                continue

    def _check_worker(self) -> None:
        """Raise ``WorkerDiedError`` when the worker reported a failure or is gone."""
        alive = self._worker.alive
        try:
            status, value, detail = self._results.get(timeout=0 if alive else self.poll_s)
        except queue.Empty:
            if not alive:
                self._died(self._worker.describe_exit())
            return
        if status == "error":
            self._died(value, detail)
        self._died(f"the worker ended early, after {value} fine frames")

    def _died(self, cause: str, worker_traceback: str = "") -> NoReturn:
        self._worker.stop()
        self._release(discard=True)
        self._state = "failed"
        count = _count_frames(self.output_path)
        written = "" if count is None else f"{count} "
        self._error = WorkerDiedError(
            f"the interpolator worker died: {cause}; the {written}fine frames written before "
            f"are in {self.output_path}", cause, self.output_path, worker_traceback)
        if worker_traceback:
            log.debug("interpolator worker traceback:\n%s", worker_traceback)
        raise self._error

    def _release(self, discard: bool) -> None:
        for transport in (self._frames, self._results):
            if transport is not None:
                transport.close(discard=discard)
        self._frames = self._results = None
