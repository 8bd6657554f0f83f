"""``replicas: N`` of a ``hybridmd simulate`` or ``run`` input: N independent runs, replica k
with seed ``dynamics.seed + k`` writing to ``<output.directory>/replica-<k>``; under
``mpiexec -n P`` rank r runs replicas r, r + P, ... (P must divide N: one replica a rank when
P = N), without MPI all of them one after another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hybridmd.errors import InputError
from hybridmd.parallel import mpi_world
from hybridmd.simulate import Simulation

if TYPE_CHECKING:
    from hybridmd.config import RunConfig, SimulationConfig

    Input = SimulationConfig | RunConfig

#: replica messages under the logger of hybridmd's MPI modes
log = logging.getLogger("hybridmd.parallel")


def replica_indices(replicas: int, rank: int, size: int) -> list[int]:
    """The replicas rank ``rank`` of ``size`` runs: rank, rank + size, ... (size divides N)."""
    if replicas % size:
        raise InputError(
            f"replicas: {replicas} cannot be shared evenly by {size} MPI ranks: start "
            f"mpiexec -n {replicas} (one replica a rank) or a number of ranks that divides "
            f"{replicas}, or set replicas: {size}")
    return list(range(rank, replicas, size))


def this_rank_replicas(replicas: int) -> list[int]:
    """The replicas this process runs: its rank's share under MPI, all of them without."""
    comm = mpi_world()
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    return replica_indices(replicas, rank, size)


def replica_config(cfg: Input, k: int) -> Input:
    """Replica ``k`` of ``cfg``: one run, seed + k, output in ``<directory>/replica-<k>``."""
    dynamics = cfg.dynamics.model_copy(update={"seed": cfg.dynamics.seed + k})
    output = cfg.output.model_copy(update={"directory": cfg.output.directory / f"replica-{k}"})
    return cfg.model_copy(update={"dynamics": dynamics, "output": output, "replicas": 1})


def run_replicas(cfg: Input, resume: bool = False, overwrite: bool = False,
                 progress: bool = True,
                 runner: Callable[[Input], Any] | None = None) -> list[tuple[int, Any]]:
    """Run this rank's replicas of ``cfg`` (all of them without MPI); (k, result) pairs.

    ``cfg``: a ``simulate`` or ``run`` input; ``runner(replica_cfg)`` runs one replica (default:
    ``Simulation(replica_cfg).run(...)``).
    """
    comm = mpi_world()
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    show = progress and size == 1
    if runner is None:
        def runner(replica: Input) -> Any:
            return Simulation(replica).run(resume=resume, overwrite=overwrite, progress=show)
    results: list[tuple[int, Any]] = []
    for k in replica_indices(cfg.replicas, rank, size):
        replica = replica_config(cfg, k)
        log.info("replica %d of %d (seed %d) on rank %d -> %s", k, cfg.replicas,
                 replica.dynamics.seed, rank, replica.output.directory)
        results.append((k, runner(replica)))
    return results
