"""Bounded queues between the MD driver (producer) and the interpolator worker (consumer).

One small interface, ``Transport``: ``put(item, timeout)`` (raises ``queue.Full`` when the
queue stays full for ``timeout`` seconds), ``get(timeout)`` (raises ``queue.Empty``) and
``close()``. Two implementations: ``ThreadTransport`` (a ``queue.Queue``, worker in a thread)
and ``ProcessTransport`` (a ``multiprocessing`` queue of the spawn context, worker in a
process). An MPI transport (rank 0 driver, rank 1 worker; issue 5) fits the same interface:
``put`` an ``isend`` with at most ``maxsize`` requests in flight, ``get`` a ``recv``.

The end of the stream is the sentinel ``END_OF_STREAM``; it survives pickling as the same
object, so ``item is END_OF_STREAM`` holds in the worker process too.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
from typing import Any, Literal, Protocol

TransportKind = Literal["thread", "process"]


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


def make_transport(kind: str, maxsize: int = 0) -> ThreadTransport | ProcessTransport:
    """A transport by name: ``thread`` or ``process`` (``mpi`` is planned, issue 5)."""
    if kind == "thread":
        return ThreadTransport(maxsize)
    if kind == "process":
        return ProcessTransport(maxsize)
    if kind == "mpi":
        raise NotImplementedError("the MPI transport is not implemented yet (issue 5): "
                                  "use 'thread' or 'process'")
    raise ValueError(f"unknown transport {kind!r}: 'thread' or 'process'")
