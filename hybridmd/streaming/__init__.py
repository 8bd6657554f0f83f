"""Streaming time super-resolution: the interpolator worker fed by a running simulation.

The driver hands each coarse frame (``CoarseFrame``) to ``StreamingInterpolation.submit``; a
worker (thread, spawned process or another MPI rank, behind a bounded ``transport``)
reconstructs the fine frames between them with ``IncrementalReconstructor`` as soon as each
interval has its context, and writes them in time order to an ASE trajectory.
"""

from hybridmd.streaming.frames import CoarseFrame
from hybridmd.streaming.transport import (
    END_OF_STREAM,
    MPITransport,
    ProcessTransport,
    ThreadTransport,
    Transport,
    make_transport,
)
from hybridmd.streaming.worker import (
    FineFrame,
    IncrementalReconstructor,
    StreamingInterpolation,
    WorkerDiedError,
    make_interpolator,
    run_worker,
    serve_interpolator,
)

__all__ = [
    "END_OF_STREAM",
    "CoarseFrame",
    "FineFrame",
    "IncrementalReconstructor",
    "MPITransport",
    "ProcessTransport",
    "StreamingInterpolation",
    "ThreadTransport",
    "Transport",
    "WorkerDiedError",
    "make_interpolator",
    "make_transport",
    "run_worker",
    "serve_interpolator",
]
