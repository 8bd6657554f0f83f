"""ASE trajectory files (``.traj``) and extended xyz (``.extxyz``): read through ``ase.io``;
extxyz written at full double precision."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms

from hybridmd.errors import InputError
from hybridmd.readers.frame_times import check_dt_agrees, frame_spacing, require_dt
from hybridmd.trajectory import Trajectory

logger = logging.getLogger("hybridmd.readers")


def _calc_result(atoms: Atoms, key: str) -> Any:
    """A stored calculator result (energy, forces) or None; never triggers a calculation."""
    results = getattr(atoms.calc, "results", None) or {}
    return results.get(key)


def read_ase(path: Path, fmt: str, dt_fs: float | None) -> dict[str, Any]:
    """The whole file (``fmt``: ``traj`` or ``extxyz``) as a reader's arrays."""
    frames: list[Atoms] = ase.io.read(path, index=":", format=fmt)
    if not frames:
        raise InputError(f"{path}: no frames")
    numbers = frames[0].numbers
    for i, atoms in enumerate(frames):
        if not np.array_equal(atoms.numbers, numbers):
            raise InputError(f"{path}: frame {i} has different atoms than frame 0")
    positions = np.stack([atoms.positions for atoms in frames])

    has_time = ["time_fs" in atoms.info for atoms in frames]
    if all(has_time):
        times = np.array([float(atoms.info["time_fs"]) for atoms in frames])
        if len(frames) > 1:
            check_dt_agrees(frame_spacing(times, path), dt_fs, path)
        else:
            require_dt(dt_fs, path, "a single frame")
    else:
        if any(has_time):
            logger.warning("%s: only some frames carry time_fs; ignoring it", path)
        dt = require_dt(dt_fs, path, f"this {fmt} file (no 'time_fs' in the frames' info)")
        times = dt * np.arange(len(frames))

    momenta = None
    if all(atoms.has("momenta") for atoms in frames):
        momenta = np.stack([atoms.get_momenta() for atoms in frames])

    def stacked(key: str) -> np.ndarray | None:
        values = [_calc_result(atoms, key) for atoms in frames]
        if all(v is not None for v in values):
            return np.array(values, dtype=float)
        known = [i for i, v in enumerate(values) if v is not None]
        if known:
            _partial_results(path, key, known, frames)
        return None

    infos = [atoms.info for atoms in frames]
    cell, pbc = _cell(frames, path)
    return {
        "numbers": numbers,
        "positions": positions,
        "momenta": momenta,
        "masses": frames[0].get_masses(),
        "times_fs": times,
        "dt_fs": dt_fs if len(frames) == 1 else None,
        "energies": stacked("energy"),
        "forces": stacked("forces"),
        "cell": cell,
        "pbc": pbc,
        # MD step numbers (hybridmd simulate) and whether these are a hybrid run's coarse frames
        "steps": np.array([i["step"] for i in infos]) if all("step" in i for i in infos)
        else None,
        "metadata": {"coarse_frames": True} if all("coarse_index" in i and "fine_index" not in i
                                                    for i in infos) else {},
    }


def _cell(frames: list[Atoms], path: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """The frames' cell ((T, 3, 3) Å, None where no frame has one) and their pbc."""
    pbc = frames[0].pbc
    for i, atoms in enumerate(frames):
        if not np.array_equal(atoms.pbc, pbc):
            raise InputError(f"{path}: frame {i} has pbc {atoms.pbc.tolist()}, frame 0 "
                             f"{pbc.tolist()}")
    cells = np.stack([atoms.cell.array for atoms in frames])
    if not cells.any() and not pbc.any():
        return None, pbc
    return cells, pbc


def _partial_results(path: Path, key: str, known: list[int], frames: list[Atoms]) -> None:
    """Say which frames carry ``key`` when only some do (the trajectory is read without it).

    A hybrid run's ``fine.traj`` has energy and forces on every frame that was computed (the
    segment ends, the frames of simulated segments, those the learned force field integrated),
    not on the frames an interpolator filled in: expected, and said as such.
    """
    have = set(known)
    missing = [i for i in range(len(frames)) if i not in have]
    if all("fine_index" in atoms.info for atoms in frames):
        methods = sorted({str(frames[i].info.get("method")) for i in missing})
        logger.info("%s: %s is stored at the %d frames that were computed (segment ends, "
                    "simulated segments, the learned force field's), not at the %d that %s "
                    "filled in; read without %s (ase.io.read gives each frame's, with its "
                    "energy_source)", path, key, len(known), len(missing),
                    " and ".join(methods), key)
        return
    shown = ", ".join(map(str, known[:5])) + (", ..." if len(known) > 5 else "")
    logger.warning("%s: only %d of %d frames have %s (frames %s); read without %s", path,
                   len(known), len(frames), key, shown, key)


def write_traj(traj: Trajectory, path: Path) -> None:
    """An ASE trajectory file, through ``ase.io.write``."""
    ase.io.write(path, traj.to_atoms_list(), format="traj")


def write_extxyz(traj: Trajectory, path: Path) -> None:
    """Extended xyz at full double precision (``repr`` of each float), readable by ASE."""
    from ase.io.extxyz import key_val_dict_to_str

    with open(path, "w") as fd:
        for atoms in traj.to_atoms_list():
            forces = _calc_result(atoms, "forces")
            energy = _calc_result(atoms, "energy")
            props = "species:S:1:pos:R:3:masses:R:1:momenta:R:3"
            columns = [atoms.positions, atoms.get_masses()[:, None], atoms.get_momenta()]
            if forces is not None:
                props += ":forces:R:3"
                columns.append(np.asarray(forces))
            info = dict(atoms.info)
            if energy is not None:
                info["energy"] = float(energy)
            if atoms.cell.any():
                info["Lattice"] = atoms.cell.array.T
            info["pbc"] = atoms.pbc
            fd.write(f"{len(atoms)}\nProperties={props} {key_val_dict_to_str(info)}\n")
            table = np.hstack(columns)
            for symbol, row in zip(atoms.get_chemical_symbols(), table, strict=True):
                fd.write(f"{symbol:2s} " + " ".join(repr(float(x)) for x in row) + "\n")
