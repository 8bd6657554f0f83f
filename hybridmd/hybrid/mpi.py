"""`mpiexec -n N hybridmd run`: the hybrid loop spread over the ranks of an MPI job."""

from __future__ import annotations

import logging
from typing import Any

from hybridmd.config import RunConfig
from hybridmd.hybrid.driver import HybridResult, HybridRun, run_hybrid
from hybridmd.signals import ignoring_stop_signals

log = logging.getLogger(__name__)


def run_hybrid_mpi(cfg: RunConfig, comm: Any, resume: bool = False, overwrite: bool = False,
                   progress: bool = True,
                   context: dict[str, Any] | None = None) -> HybridResult | None:
    """The hybrid loop over the ranks of ``comm`` (``mpiexec -n N hybridmd run``).

    Rank 0 drives, rank 1 is the interpolator worker, ranks 2 .. N-1 are the monitors
    (``mpi4py.futures.MPICommExecutor``; with N = 2 the driver monitors itself, and with N = 1
    the run is the usual one). Returns the result on rank 0, None on the other ranks. The
    other ranks ignore SIGINT/SIGTERM: the launcher passes a Ctrl-C to every rank, and the
    driver's rank stops the job at a clean point (its checkpoint written, the stream closed).
    """
    from mpi4py import MPI
    from mpi4py.futures import MPICommExecutor

    from hybridmd.streaming.worker import serve_interpolator

    rank, size = comm.Get_rank(), comm.Get_size()
    if size == 1:
        return run_hybrid(cfg, resume, overwrite, progress, context)
    monitors = comm.Split(MPI.UNDEFINED if rank == 1 else 0, rank)
    if rank == 1:
        with ignoring_stop_signals():  # a Ctrl-C reaches every rank; the driver's stops the job
            serve_interpolator(comm, 0)
        return None
    try:
        if size == 2:
            cfg = cfg.model_copy(update={"hybrid": cfg.hybrid.model_copy(update={
                "monitor": cfg.hybrid.monitor.model_copy(update={"workers": 0})})})
            return HybridRun(cfg, context=context).run(resume, overwrite, progress, comm=comm)
        if rank > 1:
            with ignoring_stop_signals(), MPICommExecutor(monitors, root=0):
                return None  # a monitor rank: served tasks until the driver finished
        with MPICommExecutor(monitors, root=0) as executor:
            log.info("MPI: driver on rank 0, interpolator on rank 1, %d monitor ranks", size - 2)
            return HybridRun(cfg, context=context).run(resume, overwrite, progress, comm=comm,
                                                       monitor_executor=executor)
    finally:
        monitors.Free()
