"""Bounded queues between the MD driver (producer) and the interpolator worker (consumer).

One small interface, ``Transport``: ``put(item, timeout)`` (raises ``queue.Full`` when the
queue stays full for ``timeout`` seconds), ``get(timeout)`` (raises ``queue.Empty``) and
``close()``. Three implementations: ``ThreadTransport`` (a ``queue.Queue``, worker in a thread),
``ProcessTransport`` (a ``multiprocessing`` queue of the spawn context, worker in a
process) and ``MPITransport`` (pickled messages to a peer rank of an MPI communicator: ``put``
a synchronous ``issend`` with at most ``maxsize`` requests in flight, ``get`` a matched
probe and receive; ``mpi4py`` is imported only when one is made).

The end of the stream is the sentinel ``END_OF_STREAM``; it survives pickling as the same
object, so ``item is END_OF_STREAM`` holds in the worker process too.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

TransportKind = Literal["thread", "process", "mpi"]

#: message tags of the streaming channels between a driver rank and its worker rank
FRAMES_TAG, RESULTS_TAG, STOP_TAG = 0x4D50, 0x4D51, 0x4D52


class _EndOfStream:
    """Type of the end-of-stream sentinel: a singleton, also after pickling."""

    def __reduce__(self) -> str:
        return "END_OF_STREAM"

    def __repr__(self) -> str:
        return "END_OF_STREAM"


END_OF_STREAM = _EndOfStream()


class Transport(Protocol):
    """A bounded FIFO from one producer to one consumer."""

    kind: str
    maxsize: int

    def put(self, item: Any, timeout: float | None = None) -> None:
        """Enqueue ``item``; block while full (at most ``timeout`` s, then ``queue.Full``)."""

    def get(self, timeout: float | None = None) -> Any:
        """Dequeue the next item; block while empty (``timeout`` s at most, then ``Empty``)."""

    def close(self, discard: bool = False) -> None:
        """Release this side's resources; ``discard``: the other side is gone, drop unsent items."""


class ThreadTransport:
    """A ``queue.Queue`` between threads of one process (``maxsize`` 0: unbounded)."""

    kind = "thread"

    def __init__(self, maxsize: int = 0):
        self.maxsize = maxsize
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)

    def put(self, item: Any, timeout: float | None = None) -> None:
        self._queue.put(item, timeout=timeout)

    def get(self, timeout: float | None = None) -> Any:
        return self._queue.get(timeout=timeout)

    def close(self, discard: bool = False) -> None:
        """Nothing to release; ``discard`` is accepted for symmetry with the process queue."""


class ProcessTransport:
    """A ``multiprocessing`` queue (spawn context) that can be handed to a spawned worker.

    Items are pickled; ``maxsize`` counts items not yet taken by the consumer, including those
    still on their way through the pipe.
    """

    kind = "process"

    def __init__(self, maxsize: int = 0):
        self.maxsize = maxsize
        self._queue = mp.get_context("spawn").Queue(maxsize)

    def put(self, item: Any, timeout: float | None = None) -> None:
        self._queue.put(item, timeout=timeout)

    def get(self, timeout: float | None = None) -> Any:
        return self._queue.get(timeout=timeout)

    def close(self, discard: bool = False) -> None:
        """Close this side; ``discard``: do not wait at exit for unsent items (dead consumer)."""
        if discard:
            self._queue.cancel_join_thread()
        self._queue.close()


class MPITransport:
    """Pickled objects to (``put``) or from (``get``) one peer rank of an MPI communicator.

    ``put`` is a synchronous-mode ``issend``: its request completes only once the peer has
    taken the message, so at most ``maxsize`` items (0: unbounded) are on their way or waiting
    at any time. A plain ``isend`` would complete as soon as MPI buffered the message, which
    for frames of a molecule (a few kB, sent eagerly) bounds nothing. ``get`` polls a matched
    probe (``improbe``), so a timeout never leaves a half-received message behind. One
    transport per direction and ``tag``.
    """

    kind = "mpi"

    def __init__(self, comm: Any, peer: int, maxsize: int = 0, tag: int = FRAMES_TAG):
        from hybridmd.parallel import independent_ase_io

        if not 0 <= peer < comm.Get_size():
            raise ValueError(f"no rank {peer} in a communicator of {comm.Get_size()} ranks")
        independent_ase_io()  # the worker rank writes its own trajectory
        self.comm, self.peer, self.maxsize, self.tag = comm, peer, maxsize, tag
        self._pending: list[Any] = []  #: send requests not yet matched by the peer

    @property
    def pending(self) -> int:
        """Items put but not yet taken by the peer."""
        self._pending = [r for r in self._pending if not r.Test()]
        return len(self._pending)

    def put(self, item: Any, timeout: float | None = None) -> None:
        if self.maxsize > 0:
            _poll(lambda: self.pending < self.maxsize, timeout, queue.Full)
        self._pending.append(self.comm.issend(item, dest=self.peer, tag=self.tag))

    def get(self, timeout: float | None = None) -> Any:
        found: list[Any] = []

        def arrived() -> bool:
            message = self.comm.improbe(source=self.peer, tag=self.tag)
            found.append(message)
            return message is not None

        _poll(arrived, timeout, queue.Empty)
        return found[-1].recv()

    def close(self, discard: bool = False) -> None:
        """Wait until the peer took every item; ``discard``: the peer is gone, forget them."""
        if not discard:
            while self.pending:
                time.sleep(0.001)
        self._pending = []


def _poll(ready: Callable[[], bool], timeout: float | None, error: type[Exception]) -> None:
    """Wait until ``ready()`` (backing off from 0.1 to 10 ms); ``error`` after ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 1e-4
    while not ready():
        if deadline is not None and time.monotonic() >= deadline:
            raise error
        time.sleep(pause)
        pause = min(2 * pause, 0.01)


def make_transport(kind: str, maxsize: int = 0, comm: Any = None, peer: int | None = None,
                   tag: int = FRAMES_TAG) -> Transport:
    """A transport by name: ``thread``, ``process`` or ``mpi`` (to rank ``peer`` of ``comm``,
    default ``MPI.COMM_WORLD``, on message ``tag``)."""
    if kind == "thread":
        return ThreadTransport(maxsize)
    if kind == "process":
        return ProcessTransport(maxsize)
    if kind == "mpi":
        if peer is None:
            raise ValueError("the MPI transport needs the peer rank")
        if comm is None:
            from mpi4py import MPI

            comm = MPI.COMM_WORLD
        return MPITransport(comm, peer, maxsize, tag)
    raise ValueError(f"unknown transport {kind!r}: 'thread', 'process' or 'mpi'")
