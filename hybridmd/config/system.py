"""The ``system:`` section: the molecule and its start geometry."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator, model_validator

from hybridmd.config.base import Strict, existing_file
from hybridmd.data import geometry_names


class SystemConfig(Strict):
    """The molecule: a shipped geometry by name, or a frame of any file ASE reads or an MD17 npz."""

    molecule: str | None = Field(None, description="name of a shipped geometry, e.g. ethanol")
    file: Path | None = Field(None, description="structure file (xyz, traj, pdb, MD17 npz, ...)")
    index: int = Field(0, description="frame index in `file` (negative counts from the end)")

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

    @model_validator(mode="after")
    def _exactly_one(self) -> SystemConfig:
        if (self.molecule is None) == (self.file is None):
            raise ValueError("give exactly one of `molecule:` (a shipped name) or `file:`")
        return self
