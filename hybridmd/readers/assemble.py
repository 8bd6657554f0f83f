"""From a reader's full-file arrays to the :class:`Trajectory`: momenta, then frame selection."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from ase.io.formats import string2index

from hybridmd.errors import InputError
from hybridmd.periodic import unwrap
from hybridmd.readers.frame_times import frame_spacing
from hybridmd.trajectory import Trajectory, finite_difference_momenta

logger = logging.getLogger("hybridmd.readers")

Index = int | slice | str


def select_frames(index: Index, n_frames: int, path: Path) -> np.ndarray:
    """Indices of the frames ``index`` picks, checked to be increasing and equally spaced."""
    if isinstance(index, str):
        index = string2index(index)
    frames = np.atleast_1d(np.arange(n_frames)[index])
    if frames.size == 0:
        raise InputError(f"{path}: index {index!r} selects no frames out of {n_frames}")
    if frames.size > 1:
        steps = np.diff(frames)
        if steps[0] <= 0 or np.any(steps != steps[0]):
            raise InputError(
                f"index {index!r} must select equally spaced frames in increasing order"
            )
    return frames


def check_finite(array: Any, what: str, path: Path) -> None:
    """Every frame of ``array`` (frames first) finite; else an ``InputError`` naming the file
    and the first bad frame (a NaN would surface later as a failed SVD or fit, file unknown)."""
    if array is None:
        return
    values = np.asarray(array, dtype=float)
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    if bad.size:
        more = f" (and {bad.size - 1} more frame{'s' * (bad.size > 2)})" if bad.size > 1 else ""
        raise InputError(f"{path}: frame {bad[0]} (counting from 0) has non-finite {what} "
                         f"(nan or inf){more}; remove or repair it")


def assemble(raw: dict[str, Any], index: Index, path: Path) -> Trajectory:
    """Build the :class:`Trajectory` from a reader's full-file arrays, then select frames."""
    positions = raw["positions"]
    check_finite(positions, "positions", path)
    check_finite(raw["momenta"], "velocities", path)
    masses = np.asarray(raw["masses"], dtype=float)
    times = np.asarray(raw["times_fs"], dtype=float)
    n_frames = len(positions)
    dt = raw.get("dt_fs") or frame_spacing(times, path)
    metadata = raw["metadata"]
    momenta = raw["momenta"]
    cell, pbc = raw.get("cell"), raw.get("pbc")
    if cell is not None:
        cell = np.asarray(cell, dtype=float)
    if momenta is None:
        if n_frames < 3:
            raise InputError(
                f"{path}: has no velocities and only {n_frames} frame(s); finite-difference "
                f"velocities need at least 3"
            )
        continuous = positions if pbc is None or not np.any(pbc) else unwrap(positions, cell, pbc)
        momenta = finite_difference_momenta(continuous, dt, masses)
        metadata["velocities"] = "finite-difference"
        logger.info("%s: momenta from finite differences of positions (dt %g fs)", path, dt)
    else:
        metadata["velocities"] = "file"

    frames = select_frames(index, n_frames, path)
    stride = int(frames[1] - frames[0]) if frames.size > 1 else 1
    steps = raw.get("steps")
    if steps is not None and frames.size > 1:
        gaps = np.diff(steps[frames])
        if np.all(gaps == gaps[0]):
            metadata["md_steps_between_frames"] = int(gaps[0])
    energies, forces = raw.get("energies"), raw.get("forces")
    return Trajectory(
        numbers=raw["numbers"],
        positions=positions[frames],
        momenta=momenta[frames],
        dt_fs=dt * stride,
        masses=masses,
        energies=None if energies is None else np.asarray(energies, dtype=float)[frames],
        forces=None if forces is None else np.asarray(forces, dtype=float)[frames],
        t0_fs=float(times[frames[0]]),
        metadata=metadata,
        cell=cell if cell is None or cell.ndim == 2 else cell[frames],
        pbc=pbc,
    )
