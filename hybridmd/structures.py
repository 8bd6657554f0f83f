"""Build the starting structure and initial momenta from the `system:` section of an input.

Files are read through ``hybridmd.errors.reading``: an unreadable, empty, truncated or corrupt
file, or a frame index past its end, is an ``InputError`` that names the key and the file. A
start geometry with non-finite coordinates or atoms closer than ``safety.min_distance_A`` is
refused here, before any calculator is built. An npz frame is read in the units the file
declares (``r_unit``, ``v_unit``; Å and Å/fs when absent), by the npz reader's own rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.io import read

from hybridmd.config import MomentaFile, SafetyConfig, SystemConfig
from hybridmd.data import geometry_path
from hybridmd.errors import InputError, reading
from hybridmd.periodic import Cell
from hybridmd.readers.npz import npz_length_factor, npz_velocity_factor
from hybridmd.units import FS


def _frame(n_frames: int, index: int, source: Path) -> int:
    if not -n_frames <= index < n_frames:
        raise InputError(f"frame index {index} is out of range for {source} ({n_frames} "
                         f"frame{'s' if n_frames != 1 else ''}); give an index from "
                         f"{-n_frames} to {n_frames - 1}")
    return index % n_frames


def _read_frame(path: Path, index: int, what: str) -> Atoms:
    """Frame ``index`` of any file ASE reads (all frames are read, so the range is checked)."""
    frames = read(path, index=":")
    if not frames:
        raise InputError(f"{path} holds no frames; give a file with {what}")
    return frames[_frame(len(frames), index, path)]


def _symbols(numbers: np.ndarray) -> str:
    return " ".join(chemical_symbols[int(z)] for z in numbers)


def _finite(array: np.ndarray, what: str, source: Path | str, key: str) -> None:
    bad = sorted({int(i) for i in np.argwhere(~np.isfinite(array))[:, 0]})
    if bad:
        raise InputError(f"{key}: {source} has non-finite {what} (nan or inf) for atoms "
                         f"{bad}; fix the file")


def build_structure(cfg: SystemConfig) -> Atoms:
    """The molecule named or read by ``cfg`` (a shipped name, an MD17 npz frame, any ASE file)."""
    if cfg.molecule is not None:
        atoms = read(geometry_path(cfg.molecule))
    else:
        with reading(cfg.file, "a structure", key="system.file"):
            if cfg.file.suffix == ".npz":
                with np.load(cfg.file) as data:
                    if "R" not in data or "z" not in data:
                        raise InputError(f"{cfg.file} has no 'R' and 'z' arrays; an MD17/sGDML "
                                         "data set is expected")
                    i = _frame(len(data["R"]), cfg.index, cfg.file)
                    positions = data["R"][i] * npz_length_factor(data, cfg.file)
                    atoms = Atoms(numbers=data["z"], positions=positions)
            else:
                atoms = _read_frame(cfg.file, cfg.index, "a structure")
    source = cfg.file or cfg.molecule
    if len(atoms) < 2:
        raise InputError(f"system: the structure in {source} has {len(atoms)} atom(s); "
                         "molecular dynamics needs two")
    _finite(atoms.positions, "coordinates", source, "system.file")
    _set_cell(atoms, cfg, source)
    return atoms


def _set_cell(atoms: Atoms, cfg: SystemConfig, source: Path | str) -> None:
    """The cell of ``system.cell``/``system.pbc``, else the file's: periodic in all three
    directions, or a cluster in vacuum (no cell)."""
    if cfg.cell is not None:
        atoms.cell = cfg.cell
        atoms.pbc = True if cfg.pbc is None else cfg.pbc
    elif cfg.pbc is not None:
        atoms.pbc = cfg.pbc
    pbc = [bool(p) for p in atoms.pbc]
    if not any(pbc):
        atoms.cell = None
        return
    if not all(pbc):
        raise InputError(f"system: {source} is periodic in some directions only (pbc {pbc}); "
                         "hybridmd runs clusters and 3D-periodic cells: set pbc to all true "
                         "(a slab: with vacuum of at least 10 Å along its open direction) or "
                         "all false")
    if atoms.cell.volume < 1e-6:
        raise InputError(f"system: {source} is periodic but has no cell (volume 0); give "
                         "the cell in the file (e.g. an extxyz Lattice) or as system.cell")


def check_start_geometry(atoms: Atoms, safety: SafetyConfig, source: Path | str) -> None:
    """Refuse atoms closer than ``safety.min_distance_A`` (before a calculator sees them),
    across the boundary too in a periodic cell."""
    if safety.min_distance_A <= 0:
        return
    pair = Cell.of(atoms).closest(atoms.positions, safety.min_distance_A)
    if pair is not None:
        i, j, d = pair
        across = " (across the periodic boundary)" if d < np.linalg.norm(
            atoms.positions[i] - atoms.positions[j]) - 1e-9 else ""
        raise InputError(
            f"system: atoms {i} and {j} of the start geometry ({source}) are "
            f"{d:.3f} Å apart{across}, below safety.min_distance_A = "
            f"{safety.min_distance_A:g} Å; fix the geometry (overlapping atoms?) or lower "
            "safety.min_distance_A")


def load_momenta(cfg: MomentaFile, atoms: Atoms) -> np.ndarray:
    """Momenta (ASE units) for ``atoms`` from a frame of a file; species must match."""
    key = "dynamics.initial_momenta.file"
    with reading(cfg.file, "momenta", key=key):
        if cfg.file.suffix == ".npz":
            with np.load(cfg.file) as data:
                if "V" not in data:
                    raise InputError(f"{cfg.file} has no 'V' array (velocities in Å/fs)")
                i = _frame(len(data["V"]), cfg.index, cfg.file)
                numbers = data.get("z", atoms.numbers)
                velocities = (np.asarray(data["V"][i], dtype=float)
                              * npz_velocity_factor(data, cfg.file))
                if velocities.shape != atoms.positions.shape:
                    raise InputError(f"{cfg.file}: V holds {velocities.shape[0]} atoms, the "
                                     f"structure {len(atoms)}")
                momenta = velocities / FS * atoms.get_masses()[:, None]
        else:
            frame = _read_frame(cfg.file, cfg.index, "momenta")
            if not frame.has("momenta"):
                raise InputError(f"frame {cfg.index} of {cfg.file} carries no momenta; give "
                                 "a trajectory written with momenta (e.g. a run's .traj)")
            numbers, momenta = frame.numbers, frame.get_momenta()
    if not np.array_equal(numbers, atoms.numbers):
        raise InputError(
            f"{key}: the momenta in {cfg.file} are for atoms {_symbols(numbers)}, the "
            f"structure has {_symbols(atoms.numbers)}; give momenta of the same molecule in "
            "the same atom order")
    _finite(momenta, "momenta", cfg.file, key)
    return np.asarray(momenta, dtype=float)
