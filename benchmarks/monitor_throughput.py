"""Monitor throughput: force calls per second that M monitors deliver to the hybrid driver.

Each monitor task re-simulates one ethanol segment (20 velocity-Verlet steps of 0.5 fs with the
shipped sGDML model, 20 force calls) from a different start state. The driver submits the
tasks at once and waits for all results; throughput = force calls / wall time, the calculator
already built on every monitor (its start-up is not counted).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitor_throughput.py --workers 1 2
    OMP_NUM_THREADS=1 .venv/bin/mpiexec -n 3 .venv/bin/python benchmarks/monitor_throughput.py

Without mpiexec it uses monitor processes (``monitor.workers``); under ``mpiexec -n N`` the
N - 1 ranks besides rank 0 are the monitors (as ranks 2.. are in ``mpiexec hybridmd run``,
whose rank 1 is the interpolator).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hybridmd.config import RunConfig, parse_config
from hybridmd.hybrid.monitor import MonitorPool, MonitorTask
from hybridmd.parallel import mpi_world
from hybridmd.structures import build_structure

INPUT = {
    "system": {"molecule": "ethanol"},
    "calculator": {"type": "sgdml", "model": "ethanol"},
    "dynamics": {"timestep_fs": 0.5, "duration_fs": 10},
    "hybrid": {"stride": 20, "interpolator": "quintic"},
}


def tasks(count: int, seed: int = 0) -> list[MonitorTask]:
    cfg = parse_config(INPUT, RunConfig, "bench.yaml")
    atoms = build_structure(cfg.system)
    rng = np.random.default_rng(seed)
    masses = atoms.get_masses()[:, None]
    out = []
    for k in range(count):
        r = atoms.positions + 0.02 * rng.standard_normal(atoms.positions.shape)
        p = np.sqrt(masses * 0.0259) * rng.standard_normal(r.shape) * 0.1
        out.append(MonitorTask(k, r, p))
    return out


def measure(pool: MonitorPool, count: int) -> tuple[float, int]:
    """Warm every monitor up, then time ``count`` tasks: (seconds, force calls)."""
    for task in tasks(2 * max(pool.workers, 1), seed=99):
        pool.submit(task, 0)
    pool.drain()
    start = time.perf_counter()
    for task in tasks(count):
        pool.submit(task, 0)
    calls = sum(r.force_calls for r in pool.drain())
    return time.perf_counter() - start, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="monitor processes to try (without MPI)")
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    cfg = parse_config(INPUT, RunConfig, "bench.yaml").model_dump(mode="json")
    context = {"base_dir": ".", "input_name": "bench"}
    comm = mpi_world()
    if comm is not None and comm.Get_size() > 1:
        from mpi4py.futures import MPICommExecutor

        with MPICommExecutor(comm, root=0) as executor:
            if executor is None:
                return
            monitors = comm.Get_size() - 1
            pool = MonitorPool(monitors, cfg, context, executor)
            seconds, calls = measure(pool, args.tasks)
            print(f"| MPI ranks | {monitors} | {args.tasks} | {calls} | {seconds:.2f} | "
                  f"{calls / seconds:.0f} |")
        return
    print("| monitors | count | tasks | force calls | wall s | force calls / s |")
    print("|---|---|---|---|---|---|")
    for workers in args.workers:
        pool = MonitorPool(workers, cfg, context)
        try:
            seconds, calls = measure(pool, args.tasks)
        finally:
            pool.close()
        kind = "in the driver" if workers == 0 else "processes"
        print(f"| {kind} | {workers} | {args.tasks} | {calls} | {seconds:.2f} | "
              f"{calls / seconds:.0f} |")


if __name__ == "__main__":
    main()
