"""npz trajectories: MD17/sGDML data sets (R, z, E, F), MD runs with velocities (R, V, ...)
and hybridmd's own files, in the units the file declares (``r_unit``, ``v_unit``, ``e_unit``);
a periodic one has its cell in ``lattice`` (sGDML's key) or ``cell``, in ``r_unit``.

``npz_length_factor`` and ``npz_velocity_factor`` are the one place that reads those units;
``hybridmd.structures`` uses them for a start frame and its velocities too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import atomic_masses

from hybridmd.errors import InputError
from hybridmd.readers.file_units import (
    ENERGY_UNITS,
    LENGTH_UNITS,
    unit_factor,
    velocity_factor,
)
from hybridmd.readers.frame_times import check_dt_agrees, require_dt
from hybridmd.trajectory import Trajectory
from hybridmd.units import FS

logger = logging.getLogger("hybridmd.readers")


def npz_length_factor(data: Mapping[str, Any], path: Path) -> float:
    """Factor from the file's ``r_unit`` (Å when absent) to Å."""
    return unit_factor("length", data.get("r_unit", "Angstrom"), LENGTH_UNITS, path)


def npz_velocity_factor(data: Mapping[str, Any], path: Path) -> float:
    """Factor from the file's ``v_unit`` to Å/fs; without one, (``r_unit``)/fs, with a warning."""
    if "v_unit" in data:
        return velocity_factor(data["v_unit"], path)
    logger.warning("%s: V has no v_unit; assuming (r_unit)/fs", path)
    return npz_length_factor(data, path)


def read_npz(path: Path, dt_fs: float | None) -> dict[str, Any]:
    """The whole file as a reader's arrays (ASE units), its layout in the metadata."""
    with np.load(path, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    for key in ("R", "z"):
        if key not in data:
            raise InputError(
                f"{path}: no {key!r} array; expected an MD17/sGDML-style npz with R (positions) "
                f"and z (atomic numbers); keys present: {', '.join(sorted(data))}"
            )
    numbers = np.asarray(data["z"], dtype=int).ravel()
    r_factor = npz_length_factor(data, path)
    e_factor = unit_factor("energy", data.get("e_unit", "kcal/mol"), ENERGY_UNITS, path)
    positions = np.asarray(data["R"], dtype=float) * r_factor
    if positions.ndim != 3 or positions.shape[1:] != (len(numbers), 3):
        raise InputError(f"{path}: R has shape {positions.shape}, z has {len(numbers)} atoms")
    n_frames = len(positions)
    masses = np.asarray(data["masses"], dtype=float) if "masses" in data else atomic_masses[numbers]

    if "dt_fs" in data:
        dt = float(data["dt_fs"])
        check_dt_agrees(dt, dt_fs, path)
        layout = "hybridmd"
    else:
        what = "this npz file (e.g. an MD17/sGDML data set)"
        dt = require_dt(dt_fs, path, what)
        layout = "md-with-velocities" if "V" in data else "md17/sgdml"
    t0 = float(data["t0_fs"]) if "t0_fs" in data else 0.0

    momenta = None
    metadata: dict[str, Any] = {"npz_layout": layout}
    if "V" in data:
        v_factor = npz_velocity_factor(data, path)
        velocities = np.asarray(data["V"], dtype=float) * v_factor
        if velocities.shape != positions.shape:
            raise InputError(f"{path}: V has shape {velocities.shape}, R has {positions.shape}")
        momenta = velocities / FS * masses[None, :, None]

    energies = None
    for key in ("E", "E_potential"):
        if key in data:
            energies = np.asarray(data[key], dtype=float) * e_factor
            if energies.size != n_frames:
                raise InputError(f"{path}: {key} has {energies.size} values for {n_frames} frames")
            energies = energies.reshape(n_frames)
            metadata["energy_key"] = key
            break
    forces = None
    if "F" in data:
        forces = np.asarray(data["F"], dtype=float) * (e_factor / r_factor)
    cell, pbc = _npz_cell(data, path, n_frames, r_factor)
    for key in ("name", "theory", "type"):
        if key in data and data[key].dtype.kind == "U":
            metadata[f"npz_{key}"] = str(data[key])
    return {
        "numbers": numbers,
        "positions": positions,
        "momenta": momenta,
        "masses": masses,
        "times_fs": t0 + dt * np.arange(n_frames),
        "dt_fs": dt,
        "energies": energies,
        "forces": forces,
        "cell": cell,
        "pbc": pbc,
        "metadata": metadata,
    }


def _npz_cell(data: Mapping[str, Any], path: Path, n_frames: int,
              r_factor: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The cell in Å (``lattice`` or ``cell``: (3, 3) or one per frame) and ``pbc``: periodic
    in all three directions unless the file says otherwise."""
    key = next((k for k in ("lattice", "cell") if k in data), None)
    if key is None:
        return None, None
    cell = np.asarray(data[key], dtype=float) * r_factor
    if cell.shape not in ((3, 3), (n_frames, 3, 3)):
        raise InputError(f"{path}: {key} has shape {cell.shape}, expected (3, 3) or "
                         f"({n_frames}, 3, 3)")
    pbc = np.asarray(data["pbc"], dtype=bool) if "pbc" in data else np.ones(3, dtype=bool)
    if pbc.shape != (3,):
        raise InputError(f"{path}: pbc has shape {pbc.shape}, expected (3,)")
    return cell, pbc


def write_npz(traj: Trajectory, path: Path) -> None:
    """``z``, ``R`` (Å), ``V`` (Å/fs), ``dt_fs``, ``t0_fs``, ``masses`` (amu), ``E`` (eV) and
    ``F`` (eV/Å) when known, ``lattice`` (Å) and ``pbc`` when there is a cell, and the unit
    strings."""
    data: dict[str, Any] = {
        "z": traj.numbers,
        "R": traj.positions,
        "V": traj.velocities,
        "dt_fs": np.float64(traj.dt_fs),
        "t0_fs": np.float64(traj.t0_fs),
        "masses": traj.masses,
        "r_unit": "Angstrom",
        "v_unit": "Angstrom/fs",
        "e_unit": "eV",
        "type": "hybridmd",
    }
    if traj.energies is not None:
        data["E"] = traj.energies
    if traj.forces is not None:
        data["F"] = traj.forces
    if traj.cell is not None:
        data["lattice"] = traj.cell
        data["pbc"] = traj.pbc
    with open(path, "wb") as fd:  # a file object keeps numpy from appending ".npz"
        np.savez(fd, **data)
