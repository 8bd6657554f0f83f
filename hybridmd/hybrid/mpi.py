"""`mpiexec -n N hybridmd run`: the hybrid loop spread over the ranks of an MPI job."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

from hybridmd.config import RunConfig
from hybridmd.hybrid.build import learns
from hybridmd.hybrid.session import HybridResult, HybridRun, run_hybrid
from hybridmd.signals import ignoring_stop_signals

log = logging.getLogger(__name__)


def run_hybrid_mpi(cfg: RunConfig, comm: Any, resume: bool = False, overwrite: bool = False,
                   progress: bool = True,
                   context: dict[str, Any] | None = None) -> HybridResult | None:
    """The hybrid loop over the ranks of ``comm`` (``mpiexec -n N hybridmd run``).

    Rank 0 drives, rank 1 is the interpolator worker; a learning run (``forecaster: learn``)
    has its learner on rank 2; the remaining ranks are the monitors
    (``mpi4py.futures.MPICommExecutor``). Without monitor ranks the driver monitors itself,
    without a rank for the learner it fits in a process of its own, and with N = 1 the run is
    the usual one. Returns the result on rank 0, None on the other ranks. The other ranks
    ignore SIGINT/SIGTERM: the launcher passes a Ctrl-C to every rank, and the driver's rank
    stops the job at a clean point (its checkpoint written, the stream closed).
    """
    from mpi4py import MPI
    from mpi4py.futures import MPICommExecutor

    from hybridmd.streaming.worker import serve_interpolator

    rank, size = comm.Get_rank(), comm.Get_size()
    if size == 1:
        return run_hybrid(cfg, resume, overwrite, progress, context)
    learner_rank = 2 if learns(cfg) and size >= 3 else None
    monitor_ranks = [r for r in range(2, size) if r != learner_rank]
    monitors = comm.Split(0 if rank == 0 or rank in monitor_ranks else MPI.UNDEFINED, rank)
    learner = comm.Split(0 if rank in (0, learner_rank) else MPI.UNDEFINED, rank)
    if rank == 1:
        with ignoring_stop_signals():  # a Ctrl-C reaches every rank; the driver's stops the job
            serve_interpolator(comm, 0)
        return None
    try:
        with ExitStack() as stack:
            learner_executor = monitor_executor = None
            if rank > 1:  # a Ctrl-C reaches every rank; the driver's stops the job
                stack.enter_context(ignoring_stop_signals())
            if learner_rank is not None and rank in (0, learner_rank):
                learner_executor = stack.enter_context(MPICommExecutor(learner, root=0))
                if learner_executor is None:  # the learner rank: fitted until the driver ended
                    return None
            if monitor_ranks and rank != learner_rank:
                monitor_executor = stack.enter_context(MPICommExecutor(monitors, root=0))
                if monitor_executor is None:  # a monitor rank: served until the driver ended
                    return None
            run_cfg = cfg
            if not monitor_ranks:  # the layout, not the input: run.json keeps the user's
                run_cfg = cfg.model_copy(update={"hybrid": cfg.hybrid.model_copy(update={
                    "monitor": cfg.hybrid.monitor.model_copy(update={"workers": 0})})})
            log.info("MPI: driver on rank 0, interpolator on rank 1, %s, %d monitor ranks",
                     "learner on rank 2" if learner_rank else "no learner rank",
                     len(monitor_ranks))
            return HybridRun(run_cfg, context=context, monitor_executor=monitor_executor,
                             learner_executor=learner_executor, recorded=cfg).run(
                                 resume, overwrite, progress, comm=comm)
    finally:
        for sub in (monitors, learner):
            if sub != MPI.COMM_NULL:
                sub.Free()
