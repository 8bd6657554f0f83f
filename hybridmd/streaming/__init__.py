"""Streaming time super-resolution: the interpolator worker fed by a running simulation.

The driver hands each coarse frame (``CoarseFrame``) to ``StreamingInterpolation.submit``; a
worker (thread, spawned process or another MPI rank, behind a bounded ``transport``)
reconstructs the fine frames between them with ``IncrementalReconstructor`` as soon as each
interval has its context, and writes them in time order to an ASE trajectory.

Modules: ``frames`` (coarse frames in, fine frames out), ``transport`` (the bounded queues),
``interpolators`` (a spline or network by name), ``reconstructor`` (the incremental
reconstruction), ``worker`` (the worker loop, and its MPI rank's ``serve_interpolator``),
``launchers`` (thread, process or MPI rank) and ``stream`` (the driver's handle).
"""

from hybridmd.streaming.frames import CoarseFrame, FineFrame
from hybridmd.streaming.interpolators import make_interpolator
from hybridmd.streaming.reconstructor import IncrementalReconstructor
from hybridmd.streaming.stream import StreamingInterpolation, WorkerDiedError
from hybridmd.streaming.transport import (
    END_OF_STREAM,
    MPITransport,
    ProcessTransport,
    ThreadTransport,
    Transport,
    make_transport,
)
from hybridmd.streaming.worker import run_worker, serve_interpolator

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
