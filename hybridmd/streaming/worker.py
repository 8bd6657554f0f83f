"""The interpolator worker: fine frames between the coarse frames of a running simulation.

- ``IncrementalReconstructor`` turns coarse frames, fed in order, into fine frames in time
  order as soon as each interval has the context the interpolator needs (C coarse frames on
  each side); at the end of the stream the last intervals, which never get their right-hand
  context, are filled by the quintic Hermite interpolant, as offline ``reconstruct`` does.
- ``run_worker`` is the worker loop: coarse frames from a transport in, fine frames to an ASE
  trajectory out, flushed frame by frame.
- ``StreamingInterpolation`` is the driver's side: it starts the worker in a thread or a
  spawned process, or hands the stream to a worker on another MPI rank (which runs
  ``serve_interpolator``), passes it frames through a bounded queue (``submit`` blocks only
  while the queue is full) and turns a dead worker into ``WorkerDiedError`` within a bounded
  time.

Velocities at the interval ends: interval k runs from the *departure* momenta of frame k (after
the boundary thermostat) to the *arrival* momenta of frame k+1 (before it), so the interpolant
follows the deterministic NVE segment between the two O-steps. Context frames left of the
interval use departure momenta, those right of it arrival momenta, which keeps the window
symmetric under time reversal.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Union

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_masses

from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.temperature import check_range, context_temperatures
from hybridmd.interpolation.windows import Windows
from hybridmd.output import FrameWriter
from hybridmd.signals import child_process_setup, spawning_children
from hybridmd.streaming.frames import CoarseFrame
from hybridmd.streaming.transport import (
    END_OF_STREAM,
    FRAMES_TAG,
    RESULTS_TAG,
    STOP_TAG,
    MPITransport,
    Transport,
    make_transport,
)
from hybridmd.trajectory import SPACING_RTOL, Trajectory
from hybridmd.units import FS

if TYPE_CHECKING:
    from hybridmd.interpolation.neural import NeuralInterpolator

log = logging.getLogger(__name__)

Interpolator = Union[ClassicalInterpolator, "NeuralInterpolator"]
CLASSICAL = ("linear", "cubic", "quintic")


class WorkerDiedError(RuntimeError):
    """The interpolator worker stopped before the end of the stream."""

    def __init__(self, message: str, cause: str, output_path: Path, worker_traceback: str = ""):
        super().__init__(message)
        self.cause = cause  #: the worker's exception text, or how it ended
        self.output_path = output_path  #: the fine frames written before it died
        self.worker_traceback = worker_traceback  #: the worker's traceback, when it raised


def make_interpolator(spec: str, device: str = "cpu") -> Interpolator:
    """``linear`` | ``cubic`` | ``quintic``, or a checkpoint path (or shipped model name)."""
    if spec in CLASSICAL:
        return ClassicalInterpolator(spec)
    from hybridmd.checkpoint import load_interpolator  # torch only when a network is used

    return load_interpolator(spec, device=device)


@dataclass
class FineFrame:
    """One frame of the fine trajectory (ASE units; times in fs)."""

    index: int  #: fine step: coarse index · n + j
    time_fs: float
    positions: np.ndarray  #: (N, 3) Å
    momenta: np.ndarray  #: (N, 3)
    origin: str  #: origin of the coarse frame, or of the segment an interior frame lies in
    method: str  #: "coarse" for a coarse frame, else the interpolant's name
    coarse: CoarseFrame | None = None  #: the coarse frame itself, for coarse frames


class IncrementalReconstructor:
    """Fine frames from coarse frames fed one at a time, emitted strictly in time order.

    Interval k (coarse frames k to k+1) is reconstructed as soon as frame k + C has arrived,
    with frames k-C+1 .. k+C as context; the first C-1 and (at ``finish``) the last C-1
    intervals lack context and are filled by the quintic Hermite interpolant.
    ``interval_delay_s`` sleeps before each interval (to test backpressure).
    """

    def __init__(self, interpolator: Interpolator, numbers: np.ndarray, masses: np.ndarray,
                 stride: int, dt_fs: float, interval_delay_s: float = 0.0):
        if stride < 2:
            raise ValueError(f"stride must be at least 2 (got {stride}): nothing to interpolate")
        if not dt_fs > 0:
            raise ValueError(f"dt_fs must be positive, got {dt_fs}")
        self.model = interpolator
        self.numbers = np.asarray(numbers, dtype=int)
        self.masses = np.asarray(masses, dtype=float)
        self.stride, self.dt_fs = stride, float(dt_fs)
        self.context = interpolator.context
        self.interval_delay_s = interval_delay_s
        self._edge = ClassicalInterpolator("quintic")
        if not isinstance(interpolator, ClassicalInterpolator):
            self._check_model()
        self._buffer: list[CoarseFrame] = []  #: frames next-C+1 .. last, in order
        self._start: int | None = None  #: index of the stream's first frame
        self._next = 0  #: the next interval to reconstruct (coarse index of its left end)
        self._finished = False
        self._outside = 0  #: intervals whose window lay outside the model's temperature range
        self._checked = 0

    def _check_model(self) -> None:
        from hybridmd.checkpoint import check_compatible

        model = self.model
        if model.stride != self.stride:
            raise ValueError(f"{model.metadata.get('checkpoint')} interpolates {model.stride} "
                             f"fine steps per coarse step, the stream {self.stride}")
        n = len(self.numbers)
        probe = Trajectory(self.numbers, np.zeros((1, n, 3)), np.zeros((1, n, 3)),
                           dt_fs=self.stride * self.dt_fs, masses=self.masses,
                           metadata={"source": "the coarse frame stream"})
        check_compatible(model, probe, coarse=True)

    @property
    def buffered(self) -> int:
        """Coarse frames held back (context of the intervals still to do)."""
        return len(self._buffer)

    def _validate(self, frame: CoarseFrame) -> None:
        where = f"coarse frame {frame.index} (t = {frame.time_fs:g} fs)"
        if frame.forces is None:
            raise ValueError(f"{where} has no forces: the interpolator needs the accelerations "
                             "F/m at every coarse frame; send the forces of each segment end")
        if frame.positions.shape != (len(self.numbers), 3):
            raise ValueError(f"{where} has {frame.positions.shape[0]} atoms, the stream "
                             f"{len(self.numbers)}")
        interior = frame.interior_positions
        if interior is not None and interior.shape[0] != self.stride - 1:
            raise ValueError(f"{where} carries {interior.shape[0]} interior frames, the stream "
                             f"has {self.stride - 1} per segment")
        if not self._buffer:
            return
        last = self._buffer[-1]
        if frame.index != last.index + 1:
            raise ValueError(f"{where} follows coarse frame {last.index}: frames must come in "
                             "order without gaps")
        step, expected = frame.time_fs - last.time_fs, self.stride * self.dt_fs
        if not np.isclose(step, expected, rtol=SPACING_RTOL, atol=1e-9):
            raise ValueError(f"{where} is {step:g} fs after the previous one, expected "
                             f"{expected:g} fs (n = {self.stride} steps of {self.dt_fs:g} fs)")

    def feed(self, frame: CoarseFrame) -> list[FineFrame]:
        """Take the next coarse frame; return the fine frames that became final."""
        if self._finished:
            raise RuntimeError("the stream has ended: no more frames can be fed")
        self._validate(frame)
        out: list[FineFrame] = []
        if self._start is None:
            self._start = self._next = frame.index
            out.append(self._coarse(frame))
        self._buffer.append(frame)
        while self._ready():
            out.extend(self._interval(edge=self._next - self._start < self.context - 1))
        return out

    def finish(self) -> list[FineFrame]:
        """The end of the stream: the intervals still waiting for context, by quintic Hermite."""
        out: list[FineFrame] = []
        if self._start is not None:
            while self._next < self._buffer[-1].index:
                out.extend(self._interval(edge=True))
        self._finished = True
        if self._outside:
            log.warning("%d of %d intervals lay outside the temperatures %s was trained on",
                        self._outside, self._checked, self.model.name)
        return out

    def _check_range(self, windows: Windows, time_fs: float) -> None:
        """Count the interval if its window leaves the model's training temperatures; warn at
        the first one (the network's error there is not measured)."""
        check = check_range(getattr(self.model, "metadata", {}),
                            context_temperatures(windows.v, self.masses))
        if check is None:
            return
        self._checked += 1
        if check.outside:
            if not self._outside:
                log.warning(check.message(self.model.name,
                                          f"the interval from t = {time_fs:g} fs"))
            self._outside += 1

    def resume(self, frames: list[CoarseFrame], stream_start: int = 0) -> None:
        """Continue a stream whose fine frames up to ``frames[-1]`` are already written.

        ``frames``: the last coarse frames already streamed, in order (at least C of them,
        fewer only at the stream's start), the last one being where the fine output ends.
        """
        if self._start is not None:
            raise RuntimeError("resume() continues a stream: call it before any feed()")
        need = min(self.context, frames[-1].index - stream_start + 1)
        if len(frames) < need:
            raise ValueError(f"resuming at coarse frame {frames[-1].index} needs the last {need} "
                             f"coarse frames as context, got {len(frames)}")
        for frame in frames:
            self._validate(frame)
            self._buffer.append(frame)
        self._start, self._next = stream_start, frames[-1].index

    def _ready(self) -> bool:
        last = self._buffer[-1].index
        if self._next + 1 <= last and self._frame(self._next + 1).interior_positions is not None:
            return True  # a simulated segment: its frames are known, no context needed
        if self._next - self._start < self.context - 1:  # an edge interval at the start
            return self._next + 1 <= last
        return self._next + self.context <= last

    def _frame(self, index: int) -> CoarseFrame:
        return self._buffer[index - self._buffer[0].index]

    def _coarse(self, frame: CoarseFrame) -> FineFrame:
        return FineFrame(frame.index * self.stride, frame.time_fs, frame.positions,
                         frame.momenta, frame.origin, "coarse", frame)

    def _interval(self, edge: bool) -> list[FineFrame]:
        """The interior frames of interval ``self._next`` and the coarse frame that ends it."""
        if self.interval_delay_s > 0:
            time.sleep(self.interval_delay_s)
        k, model = self._next, (self._edge if edge else self.model)
        m = self.masses[:, None]
        right = self._frame(k + 1)
        if right.interior_positions is not None:
            return self._emit(k, self._frame(k), right, right.interior_positions,
                              right.interior_momenta, right.interior_method)
        c = 1 if edge else self.context
        frames = [self._frame(i) for i in range(k - c + 1, k + c + 1)]
        momenta = [f.momenta if i < c else f.arrival for i, f in enumerate(frames)]
        windows = Windows(
            r=np.stack([f.positions for f in frames])[None],
            v=np.stack([p / m * FS for p in momenta])[None],
            a=np.stack([f.forces / m * FS**2 for f in frames])[None],
            stride=self.stride, dt_fs=self.dt_fs, masses=self.masses, numbers=self.numbers)
        if not edge:
            self._check_range(windows, frames[c - 1].time_fs)
        r, v = model.interpolate(windows)
        return self._emit(k, frames[c - 1], frames[c], r[0, 1:-1], v[0, 1:-1] * m / FS,
                          model.name)

    def _emit(self, k: int, left: CoarseFrame, right: CoarseFrame, positions: np.ndarray,
              momenta: np.ndarray, method: str) -> list[FineFrame]:
        """The n-1 interior frames of interval k and its right coarse frame; advance."""
        out = []
        for j in range(1, self.stride):
            t = left.time_fs + (right.time_fs - left.time_fs) * j / self.stride
            out.append(FineFrame(k * self.stride + j, t, positions[j - 1], momenta[j - 1],
                                 right.origin, method))
        out.append(self._coarse(right))
        self._next = k + 1
        keep = self._next - max(self.context - 1, 0)  # the next interval's first context frame
        self._buffer = [f for f in self._buffer if f.index >= keep]
        return out


def fine_atoms(frame: FineFrame, numbers: np.ndarray, masses: np.ndarray) -> Atoms:
    """A fine frame as ASE ``Atoms`` (energy and forces on the coarse frames, where known)."""
    atoms = Atoms(numbers=numbers, positions=frame.positions, masses=masses)
    atoms.set_momenta(frame.momenta)
    atoms.info.update(time_fs=float(frame.time_fs), origin=frame.origin,
                      fine_index=int(frame.index), method=frame.method)
    c = frame.coarse
    if c is not None:
        atoms.info["coarse_index"] = int(c.index)
        if c.arrival_momenta is not None and not np.array_equal(c.arrival_momenta, c.momenta):
            atoms.info["arrival_momenta"] = c.arrival_momenta
        if c.energy is not None or c.forces is not None:
            atoms.calc = SinglePointCalculator(atoms, energy=c.energy, forces=c.forces)
    return atoms


def run_worker(transport: Transport, spec: str, stride: int, dt_fs: float,
               output_path: str | Path, numbers: np.ndarray, masses: np.ndarray | None = None,
               interval_delay_s: float = 0.0, device: str = "cpu", threads: int | None = None,
               should_stop: Callable[[], bool] | None = None, poll_s: float = 0.5,
               resume_frames: list[CoarseFrame] | None = None) -> int:
    """Read coarse frames from ``transport`` until ``END_OF_STREAM``; write the fine frames.

    The output (``.traj`` or ``.extxyz``) is started afresh and flushed after every frame;
    with ``resume_frames`` (see ``IncrementalReconstructor.resume``) it is appended to instead.
    ``should_stop`` is polled before each frame and while the queue is empty (the driver gave
    up, or went away): the worker then stops without finishing the stream. ``threads``: torch
    threads for a network (process-wide). Returns the number of fine frames written.
    """
    numbers = np.asarray(numbers, dtype=int)
    masses = atomic_masses[numbers] if masses is None else np.asarray(masses, dtype=float)
    if threads and spec not in CLASSICAL:
        import torch

        torch.set_num_threads(threads)
    model = make_interpolator(spec, device)
    recon = IncrementalReconstructor(model, numbers, masses, stride, dt_fs, interval_delay_s)
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if resume_frames:
        recon.resume(resume_frames)
    else:
        path.unlink(missing_ok=True)
    writer = FrameWriter(path)
    written = 0
    log.info("interpolator worker: %s, n = %d, Δτ = %g fs -> %s", model.name, stride, dt_fs, path)
    try:
        while True:
            try:
                item = transport.get(timeout=poll_s)
            except queue.Empty:
                item = None
            if should_stop is not None and should_stop():
                log.info("interpolator worker stopped before the end of the stream")
                break
            if item is None:
                continue
            if item is END_OF_STREAM:
                fine = recon.finish()
            elif isinstance(item, CoarseFrame):
                fine = recon.feed(item)
            else:
                raise TypeError(f"the worker expects CoarseFrame items, got {type(item).__name__}")
            for frame in fine:
                writer.write(fine_atoms(frame, numbers, masses))
                written += 1
            if item is END_OF_STREAM:
                break
    finally:
        writer.close()
    log.info("interpolator worker: %d fine frames written to %s", written, path)
    return written


def _worker_main(transport: Transport, results: Transport, options: dict[str, Any],
                 should_stop: Callable[[], bool] | None = None) -> bool:
    """Run the worker; report ("done", frames) or ("error", text) on ``results``."""
    try:
        written = run_worker(transport, should_stop=should_stop, **options)
    except BaseException as exc:  # noqa: BLE001 (reported to the driver, whatever it is)
        log.debug("interpolator worker failed", exc_info=True)
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        results.put(("error", text, traceback.format_exc()))
        return False
    results.put(("done", written, ""))
    return True


def _parent_gone() -> bool:
    parent = mp.parent_process()
    return parent is not None and not parent.is_alive()


def _process_main(transport: Transport, results: Transport, options: dict[str, Any],
                  stop: Any) -> None:
    """Entry point of the spawned worker process: exit code 1 when the worker failed.

    It ignores SIGINT/SIGTERM (a Ctrl-C reaches the whole process group; the driver stops
    the worker through ``stop``, an event) and ends by itself when the driver dies.
    """
    child_process_setup()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ok = _worker_main(transport, results, options,
                      should_stop=lambda: stop.is_set() or _parent_gone())
    results.close()  # the report is flushed to the pipe before the process exits
    if not ok:
        raise SystemExit(1)


class _ThreadWorker:
    """The worker in a daemon thread of the driver's process."""

    def __init__(self, transport: Transport, results: Transport, options: dict[str, Any]):
        self._stop = threading.Event()
        self.pid: int | None = None
        self._thread = threading.Thread(
            target=_worker_main, args=(transport, results, options, self._stop.is_set),
            name="hybridmd-interpolator", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def describe_exit(self) -> str:
        return "the worker thread ended without a report"

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


class _ProcessWorker:
    """The worker in a spawned daemon process."""

    def __init__(self, transport: Transport, results: Transport, options: dict[str, Any]):
        context = mp.get_context("spawn")
        self._stop = context.Event()
        self._process = context.Process(
            target=_process_main, args=(transport, results, options, self._stop),
            name="hybridmd-interpolator", daemon=True)
        with spawning_children():
            self._process.start()
        self.pid: int | None = self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def describe_exit(self) -> str:
        code = self._process.exitcode
        if code is not None and code < 0:
            try:
                name = f" ({signal.Signals(-code).name})"
            except ValueError:
                name = ""
            return f"the worker process (pid {self.pid}) was killed by signal {-code}{name}"
        return f"the worker process (pid {self.pid}) exited with code {code} without a report"

    def join(self, timeout: float) -> None:
        self._process.join(timeout)

    def stop(self) -> None:
        """Ask the worker to stop (it checks between frames), then kill it if it does not."""
        self._stop.set()
        self._process.join(3.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)


class _MPIWorker:
    """The worker on another rank of an MPI communicator, running ``serve_interpolator``.

    The stream's first message tells it what to run. A rank that dies takes the whole MPI job
    with it, so the worker counts as alive until it reports; ``stop`` asks it to give up.
    """

    def __init__(self, transport: MPITransport, results: MPITransport, options: dict[str, Any]):
        self._comm, self.rank, self.pid = transport.comm, transport.peer, None
        transport.put(options)

    @property
    def alive(self) -> bool:
        return True

    def describe_exit(self) -> str:
        return f"the worker on rank {self.rank} ended without a report"

    def join(self, timeout: float) -> None:
        """Nothing to wait for: the report was the worker's last message."""

    def stop(self) -> None:
        self._comm.send(None, dest=self.rank, tag=STOP_TAG)


def serve_interpolator(comm: Any, driver_rank: int = 0) -> int | None:
    """Be the interpolator worker of the ``StreamingInterpolation(transport="mpi")`` on
    ``driver_rank``: run ``run_worker`` on the frames it sends until the end of its stream.

    Reports ("done", frames) or ("error", text) back to the driver, which raises
    ``WorkerDiedError`` on an error, and returns the number of fine frames written, or None
    when the worker failed (the error is also logged here) or the driver stopped the stream.
    Serves one stream per call.
    """
    frames = MPITransport(comm, driver_rank, tag=FRAMES_TAG)
    results = MPITransport(comm, driver_rank, tag=RESULTS_TAG)
    options = frames.get()
    stopped = False

    def stop_requested() -> bool:
        nonlocal stopped
        stopped = stopped or comm.iprobe(source=driver_rank, tag=STOP_TAG)
        return stopped

    written: int | None = None
    try:
        written = run_worker(frames, should_stop=stop_requested, **options)
    except Exception as exc:  # noqa: BLE001 (reported to the driver, which raises it)
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.error("interpolator worker on rank %d failed: %s", comm.Get_rank(), text)
        report = ("error", text, traceback.format_exc())
    else:
        report = ("done", written, "")
    if not stopped:
        results.put(report)
        while results.pending and not stop_requested():  # taken by the driver, or given up
            time.sleep(0.001)
    results.close(discard=True)
    if stopped:
        comm.recv(source=driver_rank, tag=STOP_TAG)
        while comm.iprobe(source=driver_rank, tag=FRAMES_TAG):  # complete the driver's sends
            frames.get()
        log.warning("interpolator worker on rank %d: the driver stopped the stream",
                    comm.Get_rank())
        return None
    return written


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
                 resume_frames: list[CoarseFrame] | None = None):
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
            "resume_frames": resume_frames,
            # torch's thread count is process-wide: a thread worker leaves the driver's alone
            "threads": threads if transport != "thread" else None}
        self._frames: Transport | None = None
        self._results: Transport | None = None
        self._worker: _ThreadWorker | _ProcessWorker | _MPIWorker | None = None
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
        cls = {"thread": _ThreadWorker, "process": _ProcessWorker, "mpi": _MPIWorker}[kind]
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
