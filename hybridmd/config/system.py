"""The ``system:`` section: the molecule and its start geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from hybridmd.config.base import MAX_COUNT, MAX_LENGTH_A, Strict, existing_file
from hybridmd.data import geometry_names


class SystemConfig(Strict):
    """The molecule: a shipped geometry by name, or a frame of any file ASE reads or an MD17 npz."""

    molecule: str | None = Field(None, description="name of a shipped geometry, e.g. ethanol")
    file: Path | None = Field(None, description="structure file (xyz, traj, pdb, MD17 npz, ...)")
    index: int = Field(0, ge=-MAX_COUNT, le=MAX_COUNT,
                       description="frame index in `file` (negative counts from the end)")
    cell: list[float] | list[list[float]] | None = Field(
        None, description="periodic cell, Å: [a, b, c] (orthorhombic) or three cell vectors; "
        "default: the file's (an extxyz Lattice, cif, POSCAR), else none (a cluster)")
    pbc: bool | None = Field(
        None, description="periodic in all three directions (default: true with a cell, "
        "else as the file says)")

    @field_validator("molecule")
    @classmethod
    def _known_molecule(cls, name: str | None) -> str | None:
        if name is not None and name not in geometry_names():
            raise ValueError(
                f"no shipped geometry named {name!r}; known: {', '.join(geometry_names())}. "
                "Give a structure file with `file:` instead"
            )
        return name

    @field_validator("file")
    @classmethod
    def _file_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else existing_file(path, info)

    @field_validator("cell")
    @classmethod
    def _cell_shape(cls, cell: list | None) -> list | None:
        if cell is None:
            return None
        shape = np.shape(cell)
        if shape not in ((3,), (3, 3)):
            raise ValueError(f"cell has shape {shape}; give [a, b, c] or three vectors")
        values = np.asarray(cell, dtype=float)
        if not np.isfinite(values).all():
            raise ValueError("cell has non-finite entries")
        if np.abs(values).max() > MAX_LENGTH_A:
            raise ValueError(f"cell has an entry beyond {MAX_LENGTH_A:g} Å; give the cell in Å")
        volume = abs(np.linalg.det(np.diag(values) if values.ndim == 1 else values))
        if volume < 1e-6:
            raise ValueError("cell has no volume; give positive lengths or independent vectors")
        return cell

    @model_validator(mode="after")
    def _exactly_one(self) -> SystemConfig:
        if (self.molecule is None) == (self.file is None):
            raise ValueError("give exactly one of `molecule:` (a shipped name) or `file:`")
        return self
