"""The interpolator worker: coarse frames from a transport in, fine frames out.

- ``run_worker`` is the worker loop: coarse frames in, reconstructed by
  ``IncrementalReconstructor``, fine frames to an ASE trajectory out, flushed frame by frame.
- ``worker_main`` runs it in a thread or spawned process and reports the outcome to the driver.
- ``serve_interpolator`` is the worker on another MPI rank, serving the
  ``StreamingInterpolation(transport="mpi")`` of a driver rank.
"""

from __future__ import annotations

import logging
import queue
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_masses

from hybridmd.output import FrameWriter
from hybridmd.periodic import Cell
from hybridmd.streaming.frames import CoarseFrame, FineFrame
from hybridmd.streaming.interpolators import CLASSICAL, make_interpolator
from hybridmd.streaming.reconstructor import IncrementalReconstructor
from hybridmd.streaming.transport import (
    END_OF_STREAM,
    FRAMES_TAG,
    RESULTS_TAG,
    STOP_TAG,
    MPITransport,
    Transport,
)

log = logging.getLogger(__name__)


def fine_atoms(frame: FineFrame, numbers: np.ndarray, masses: np.ndarray,
               cell: Cell | None = None) -> Atoms:
    """A fine frame as ASE ``Atoms``, in ``cell`` when the system is periodic: energy and
    forces (and ``energy_source`` in its info) on every frame that has them, the coarse frames
    and the interior frames of simulated or learned segments; none on interpolated frames."""
    atoms = Atoms(numbers=numbers, positions=frame.positions, masses=masses)
    if cell is not None and cell.periodic:
        atoms.cell, atoms.pbc = cell.vectors, cell.pbc
    atoms.set_momenta(frame.momenta)
    atoms.info.update(time_fs=float(frame.time_fs), origin=frame.origin,
                      fine_index=int(frame.index), method=frame.method)
    c = frame.coarse
    if c is not None:
        atoms.info["coarse_index"] = int(c.index)
        if c.arrival_momenta is not None and not np.array_equal(c.arrival_momenta, c.momenta):
            atoms.info["arrival_momenta"] = c.arrival_momenta
    if frame.energy is not None or frame.forces is not None:
        atoms.info["energy_source"] = frame.energy_source
        atoms.calc = SinglePointCalculator(atoms, energy=frame.energy, forces=frame.forces)
    return atoms


def run_worker(transport: Transport, spec: str, stride: int, dt_fs: float,
               output_path: str | Path, numbers: np.ndarray, masses: np.ndarray | None = None,
               interval_delay_s: float = 0.0, device: str = "cpu", threads: int | None = None,
               should_stop: Callable[[], bool] | None = None, poll_s: float = 0.5,
               resume_frames: list[CoarseFrame] | None = None, cell: Cell | None = None) -> int:
    """Read coarse frames from ``transport`` until ``END_OF_STREAM``; write the fine frames.

    The output (``.traj`` or ``.extxyz``) is started afresh and flushed after every frame;
    with ``resume_frames`` (see ``IncrementalReconstructor.resume``) it is appended to instead.
    ``should_stop`` is polled before each frame and while the queue is empty (the driver gave
    up, or went away): the worker then stops without finishing the stream. ``threads``: torch
    threads for a network (process-wide). ``cell``: written with every frame of a periodic
    system. Returns the number of fine frames written.
    """
    numbers = np.asarray(numbers, dtype=int)
    masses = atomic_masses[numbers] if masses is None else np.asarray(masses, dtype=float)
    if threads and spec not in CLASSICAL:
        import torch

        torch.set_num_threads(threads)
    model = make_interpolator(spec, device)
    recon = IncrementalReconstructor(model, numbers, masses, stride, dt_fs, interval_delay_s)
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if resume_frames:
        recon.resume(resume_frames)
    else:
        path.unlink(missing_ok=True)
    writer = FrameWriter(path)
    written = 0
    log.info("interpolator worker: %s, n = %d, Δτ = %g fs -> %s", model.name, stride, dt_fs, path)
    try:
        while True:
            try:
                item = transport.get(timeout=poll_s)
            except queue.Empty:
                item = None
            if should_stop is not None and should_stop():
                log.info("interpolator worker stopped before the end of the stream")
                break
            if item is None:
                continue
            if item is END_OF_STREAM:
                fine = recon.finish()
            elif isinstance(item, CoarseFrame):
                fine = recon.feed(item)
            else:
                raise TypeError(f"the worker expects CoarseFrame items, got {type(item).__name__}")
            for frame in fine:
                writer.write(fine_atoms(frame, numbers, masses, cell))
                written += 1
            if item is END_OF_STREAM:
                break
    finally:
        writer.close()
    log.info("interpolator worker: %d fine frames written to %s", written, path)
    return written


def worker_main(transport: Transport, results: Transport, options: dict[str, Any],
                should_stop: Callable[[], bool] | None = None) -> bool:
    """Run the worker; report ("done", frames) or ("error", text) on ``results``."""
    try:
        written = run_worker(transport, should_stop=should_stop, **options)
    except BaseException as exc:  # noqa: BLE001 (reported to the driver, whatever it is)
        log.debug("interpolator worker failed", exc_info=True)
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        results.put(("error", text, traceback.format_exc()))
        return False
    results.put(("done", written, ""))
    return True


def serve_interpolator(comm: Any, driver_rank: int = 0) -> int | None:
    """Be the interpolator worker of the ``StreamingInterpolation(transport="mpi")`` on
    ``driver_rank``: run ``run_worker`` on the frames it sends until the end of its stream.

    Reports ("done", frames) or ("error", text) back to the driver, which raises
    ``WorkerDiedError`` on an error, and returns the number of fine frames written, or None
    when the worker failed (the error is also logged here) or the driver stopped the stream.
    Serves one stream per call.
    """
    frames = MPITransport(comm, driver_rank, tag=FRAMES_TAG)
    results = MPITransport(comm, driver_rank, tag=RESULTS_TAG)
    options = frames.get()
    stopped = False

    def stop_requested() -> bool:
        nonlocal stopped
        stopped = stopped or comm.iprobe(source=driver_rank, tag=STOP_TAG)
        return stopped

    written: int | None = None
    try:
        written = run_worker(frames, should_stop=stop_requested, **options)
    except Exception as exc:  # noqa: BLE001 (reported to the driver, which raises it)
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.error("interpolator worker on rank %d failed: %s", comm.Get_rank(), text)
        report = ("error", text, traceback.format_exc())
    else:
        report = ("done", written, "")
    if not stopped:
        results.put(report)
        while results.pending and not stop_requested():  # taken by the driver, or given up
            time.sleep(0.001)
    results.close(discard=True)
    if stopped:
        comm.recv(source=driver_rank, tag=STOP_TAG)
        while comm.iprobe(source=driver_rank, tag=FRAMES_TAG):  # complete the driver's sends
            frames.get()
        log.warning("interpolator worker on rank %d: the driver stopped the stream",
                    comm.Get_rank())
        return None
    return written


__all__ = ["CLASSICAL", "IncrementalReconstructor", "fine_atoms", "make_interpolator",
           "run_worker", "serve_interpolator", "worker_main"]
