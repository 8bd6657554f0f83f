"""Where the interpolator worker runs: a daemon thread, a spawned daemon process, or another
MPI rank; each behind the same small handle (``alive``, ``describe_exit``, ``join``, ``stop``)
that ``StreamingInterpolation`` drives."""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import threading
from typing import Any

from hybridmd.signals import child_process_setup, spawning_children
from hybridmd.streaming.transport import STOP_TAG, MPITransport, Transport
from hybridmd.streaming.worker import worker_main


def _parent_gone() -> bool:
    """Whether the driver's process, which spawned this one, has died."""
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
    ok = worker_main(transport, results, options,
                     should_stop=lambda: stop.is_set() or _parent_gone())
    results.close()  # the report is flushed to the pipe before the process exits
    if not ok:
        raise SystemExit(1)


class ThreadWorker:
    """The worker in a daemon thread of the driver's process."""

    def __init__(self, transport: Transport, results: Transport, options: dict[str, Any]):
        self._stop = threading.Event()
        self.pid: int | None = None
        self._thread = threading.Thread(
            target=worker_main, args=(transport, results, options, self._stop.is_set),
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


class ProcessWorker:
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


class MPIWorker:
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
