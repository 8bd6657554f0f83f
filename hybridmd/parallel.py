"""Running under MPI: one rank's error ends the whole job, each rank its own file I/O.

- ``mpi_world`` is ``MPI.COMM_WORLD`` when the process was started by an MPI launcher
  (``mpiexec``, ``srun``), else None; ``mpi4py`` is imported only then, so hybridmd imports and
  runs without it.
- ``independent_ase_io``: every rank reads and writes its own files (a replica's trajectory,
  the worker rank's fine trajectory). ASE, once ``mpi4py`` is imported, would write only on
  rank 0 and turn every read into a broadcast from rank 0 (a collective all ranks must join);
  ``mpi_world`` and the MPI transport switch that off.
- ``abort_on_error`` (a context manager and decorator): a rank that raises logs its message and
  traceback with its rank and calls ``comm.Abort(1)``, so the other ranks, which may be waiting
  for a message from it, end too instead of hanging; bad input (``InputError``) and SIGINT or
  SIGTERM log the message alone and abort with 2, 130 or 143, the codes of the command line;
  without an exception it does nothing and MPI shuts down as usual at exit.

``replicas: N`` runs spread over the ranks are in ``hybridmd.replicas``.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

#: set by MPI launchers in each rank's environment: MPICH/Hydra and Intel MPI (PMI), Open MPI,
#: PMIx (srun --mpi=pmix), MVAPICH
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                       "MV2_COMM_WORLD_SIZE")


def under_mpi_launcher() -> bool:
    """Whether an MPI launcher started this process (no MPI import needed to tell)."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def independent_ase_io() -> None:
    """Make ASE treat this process as serial: its own reads and writes, no collectives.

    hybridmd's ranks do different work on different files; ASE's default under mpi4py (write
    on rank 0 only, read on rank 0 and broadcast) would lose their files or hang. This does not
    suit a calculator that is itself parallel over the ranks (GPAW), which hybridmd's MPI modes
    do not use.
    """
    from ase import parallel

    if not isinstance(parallel.world.comm, parallel.DummyMPI):
        parallel.world.comm = parallel.DummyMPI()
        log.debug("ASE file I/O set to per-rank (no rank-0-only writes or broadcast reads)")


def mpi_world() -> Any | None:
    """``MPI.COMM_WORLD`` under an MPI launcher (ASE I/O made per-rank), else None."""
    if not under_mpi_launcher():
        return None
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError("hybridmd runs under an MPI launcher but mpi4py is not installed: "
                           "pip install mpi4py (built against the MPI of your mpiexec)") from exc
    independent_ase_io()
    return MPI.COMM_WORLD


def mpi_size() -> int:
    """Ranks in ``MPI.COMM_WORLD`` (1 without an MPI launcher)."""
    comm = mpi_world()
    return 1 if comm is None else comm.Get_size()


@contextmanager
def abort_on_error(comm: Any = None) -> Iterator[Any]:
    """Abort the whole MPI job when the block raises (``comm``: default ``mpi_world()``).

    The exception's message and traceback are logged with this rank's number before
    ``comm.Abort(1)`` (bad input, SIGINT, SIGTERM: the message, then ``Abort(2/130/143)``); a
    ``SystemExit`` with code 0 or None passes. Without MPI the exception
    propagates as usual. Yields the communicator (None without MPI).
    """
    comm = mpi_world() if comm is None else comm
    try:
        yield comm
    except BaseException as exc:
        if comm is None or (isinstance(exc, SystemExit) and not exc.code):
            raise
        from hybridmd.errors import InputError
        from hybridmd.signals import Terminated

        rank, size = comm.Get_rank(), comm.Get_size()
        code = (2 if isinstance(exc, InputError) else 130 if isinstance(exc, KeyboardInterrupt)
                else 143 if isinstance(exc, Terminated) else 1)
        if code == 1:
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            log.critical("rank %d of %d failed, aborting all ranks: %s\n%s", rank, size, text,
                         "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        else:  # bad input or a signal: the message alone (the traceback at debug level)
            log.critical("rank %d of %d stopped, aborting all ranks: %s", rank, size,
                         str(exc) or type(exc).__name__)
            log.debug("traceback", exc_info=exc)
        comm.Abort(code)
