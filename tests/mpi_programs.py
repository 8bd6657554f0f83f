"""Programs that tests/test_parallel.py starts under ``mpiexec -n 3``: ``python mpi_programs.py
<name> [args]``. Every rank runs under ``abort_on_error``, so a failed check ends the job."""

from __future__ import annotations

import logging
import queue
import sys
import time
from typing import Any

import numpy as np
from ase.io import read

from hybridmd.parallel import abort_on_error
from hybridmd.streaming import (
    END_OF_STREAM,
    CoarseFrame,
    MPITransport,
    StreamingInterpolation,
    serve_interpolator,
)

STRIDE, DT_FS = 20, 0.5
INTERPOLATOR = "ethanol-bilstm-10fs"


def coarse_frames(path: str) -> list[CoarseFrame]:
    """Every STRIDE-th frame of a fine MD trajectory, as a driver would send them."""
    fine = read(path, index=f"::{STRIDE}")
    return [CoarseFrame(index=k, time_fs=a.info["time_fs"], positions=a.positions,
                        momenta=a.get_momenta(), forces=a.get_forces(),
                        energy=a.get_potential_energy()) for k, a in enumerate(fine)]


def stream(fine: str, frames: list[CoarseFrame], output: str, transport: str) -> int:
    """Interpolate ``frames`` of the MD in ``fine`` to ``output``; the fine frame count."""
    atoms = read(fine, index=0)
    with StreamingInterpolation(INTERPOLATOR, output, atoms.numbers, STRIDE, DT_FS,
                                masses=atoms.get_masses(), transport=transport, maxsize=2,
                                threads=1) as interpolation:
        for frame in frames:
            interpolation.submit(frame)
    return interpolation.close()


def observe(output: str) -> int:
    """80 steps of NVE ethanol (sGDML) in ASE, the observer streaming to the worker rank."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from hybridmd.ase_interface import InterpolatingObserver
    from hybridmd.calculators import build_calculator
    from hybridmd.config import SGDMLConfig
    from hybridmd.data import geometry_path

    atoms = read(geometry_path("ethanol"))
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), atoms)
    atoms.set_momenta(np.random.default_rng(0).normal(0, 0.5, (len(atoms), 3)))
    dyn = VelocityVerlet(atoms, timestep=DT_FS * units.fs)
    with InterpolatingObserver(atoms, dyn, INTERPOLATOR, output, transport="mpi") as observer:
        dyn.attach(observer, interval=STRIDE)
        dyn.run(4 * STRIDE)
    return observer.frames_written


def check_transport(comm: Any) -> None:
    """Ranks 0 -> 2: at most ``maxsize`` items on their way, Full/Empty after the timeout."""
    go = 8
    if comm.rank == 0:
        channel = MPITransport(comm, 2, maxsize=2, tag=7)
        channel.put({"n": 1})
        channel.put(np.arange(3))
        start = time.monotonic()
        try:
            channel.put("third", timeout=0.2)
        except queue.Full:
            assert time.monotonic() - start >= 0.2
        else:
            raise AssertionError("a third put went through while the peer took nothing")
        comm.send("go", dest=2, tag=go)
        channel.put("third", timeout=30)
        channel.put(END_OF_STREAM)
        channel.close()
        assert channel.pending == 0
    elif comm.rank == 2:
        comm.recv(source=0, tag=go)
        channel = MPITransport(comm, 0, tag=7)
        assert channel.get() == {"n": 1}
        assert channel.get().tolist() == [0, 1, 2]
        assert channel.get(timeout=30) == "third"
        assert channel.get() is END_OF_STREAM
        try:
            channel.get(timeout=0.1)
        except queue.Empty:
            print("transport ok", flush=True)
        else:
            raise AssertionError("get returned an item nobody sent")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    name = sys.argv[1]
    with abort_on_error() as comm:
        rank = comm.rank
        if name == "stream":  # stream <fine.traj> <output> <observer output>: driver 0, worker 1
            check_transport(comm)
            if rank == 0:
                written = stream(sys.argv[2], coarse_frames(sys.argv[2]), sys.argv[3], "mpi")
                print(f"driver wrote {written} fine frames", flush=True)
                print(f"observer wrote {observe(sys.argv[4])} fine frames", flush=True)
            elif rank == 1:
                for _ in range(2):
                    print(f"worker wrote {serve_interpolator(comm, 0)} fine frames", flush=True)
        elif name == "raise":  # rank 2 fails while the others wait for it
            if rank == 2:
                time.sleep(0.5)
                raise RuntimeError("rank 2 gives up on purpose")
            comm.recv(source=2, tag=99)
        elif name == "worker-fails":  # stream <fine.traj> <output>, frame 3 without forces
            if rank == 0:
                frames = coarse_frames(sys.argv[2])
                frames[3].forces = None
                stream(sys.argv[2], frames, sys.argv[3], "mpi")
            elif rank == 1:
                serve_interpolator(comm, 0)
            comm.recv(source=0, tag=99)  # rank 2, and the worker after its report: wait for rank 0
        elif name == "driver-stops":  # driver-stops <fine.traj> <output>: rank 0 gives up
            if rank == 0:
                atoms = read(sys.argv[2], index=0)
                interpolation = StreamingInterpolation(
                    INTERPOLATOR, sys.argv[3], atoms.numbers, STRIDE, DT_FS, transport="mpi",
                    maxsize=2, interval_delay_s=0.2).start()
                for frame in coarse_frames(sys.argv[2]):
                    interpolation.submit(frame)
                interpolation.abort()
                print("driver stopped the stream", flush=True)
            elif rank == 1:
                print(f"worker returned {serve_interpolator(comm, 0)}", flush=True)
        else:
            raise ValueError(f"unknown program {name!r}")


if __name__ == "__main__":
    main()
