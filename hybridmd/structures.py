"""Build the starting structure and initial momenta from the `system:` section of an input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from hybridmd.config import MomentaFile, SystemConfig
from hybridmd.data import geometry_path
from hybridmd.units import FS


def _frame(n_frames: int, index: int, source: Path) -> int:
    if not -n_frames <= index < n_frames:
        raise ValueError(f"frame index {index} is out of range for {source} ({n_frames} frames)")
    return index % n_frames


def build_structure(cfg: SystemConfig) -> Atoms:
    """The molecule named or read by ``cfg`` (a shipped name, an MD17 npz frame, any ASE file)."""
    if cfg.molecule is not None:
        atoms = read(geometry_path(cfg.molecule))
    elif cfg.file.suffix == ".npz":
        with np.load(cfg.file) as data:
            if "R" not in data or "z" not in data:
                raise ValueError(
                    f"{cfg.file} has no 'R' and 'z' arrays; an MD17/sGDML data set is expected"
                )
            i = _frame(len(data["R"]), cfg.index, cfg.file)
            atoms = Atoms(numbers=data["z"], positions=data["R"][i])
    else:
        atoms = read(cfg.file, index=cfg.index)
    if len(atoms) < 2:
        raise ValueError(f"the structure has {len(atoms)} atom(s); molecular dynamics needs two")
    atoms.pbc = False
    atoms.cell = None
    return atoms


def load_momenta(cfg: MomentaFile, atoms: Atoms) -> np.ndarray:
    """Momenta (ASE units) for ``atoms`` from a frame of a file; species must match."""
    if cfg.file.suffix == ".npz":
        with np.load(cfg.file) as data:
            if "V" not in data:
                raise ValueError(f"{cfg.file} has no 'V' array (velocities in Å/fs)")
            i = _frame(len(data["V"]), cfg.index, cfg.file)
            numbers = data.get("z", atoms.numbers)
            momenta = data["V"][i] / FS * atoms.get_masses()[:, None]
    else:
        frame = read(cfg.file, index=cfg.index)
        if not frame.has("momenta"):
            raise ValueError(f"frame {cfg.index} of {cfg.file} carries no momenta")
        numbers, momenta = frame.numbers, frame.get_momenta()
    if not np.array_equal(numbers, atoms.numbers):
        raise ValueError(
            f"the momenta in {cfg.file} are for atoms {list(numbers)}, the structure has "
            f"{list(atoms.numbers)}; give momenta of the same molecule in the same atom order"
        )
    return np.asarray(momenta, dtype=float)
