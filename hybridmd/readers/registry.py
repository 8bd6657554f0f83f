"""The trajectory formats by name: the reader and the writer of each, and how a file's name
(and, for ``.xyz``, its first comment line) tells its format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridmd.errors import InputError
from hybridmd.formats import KNOWN_FORMATS
from hybridmd.readers.ase_formats import read_ase, write_extxyz, write_traj
from hybridmd.readers.ipi import is_ipi_comment, read_ipi
from hybridmd.readers.npz import read_npz, write_npz
from hybridmd.readers.xyz import first_comment_line, read_plain_xyz
from hybridmd.trajectory import Trajectory


@dataclass(frozen=True)
class ReadRequest:
    """What a format's reader is given: the file and the options that apply to it."""

    path: Path
    dt_fs: float | None
    velocities: Path | None = None  #: i-PI only: the velocities (or momenta) file
    energy_unit: str | None = None  #: plain xyz only: the unit of comment-line energies


#: a reader returns the whole file's arrays (ASE units, times in fs) for ``assemble``
Reader = Callable[[ReadRequest], dict[str, Any]]
Writer = Callable[[Trajectory, Path], None]

READERS: dict[str, Reader] = {
    "traj": lambda request: read_ase(request.path, "traj", request.dt_fs),
    "extxyz": lambda request: read_ase(request.path, "extxyz", request.dt_fs),
    "xyz": lambda request: read_plain_xyz(request.path, request.dt_fs, request.energy_unit),
    "ipi": lambda request: read_ipi(request.path, request.dt_fs, request.velocities),
    "npz": lambda request: read_npz(request.path, request.dt_fs),
}
WRITERS: dict[str, Writer] = {"traj": write_traj, "extxyz": write_extxyz, "npz": write_npz}

#: formats :func:`write_trajectory` writes
WRITE_FORMATS = tuple(WRITERS)
_EXTENSIONS = {".traj": "traj", ".extxyz": "extxyz", ".xyz": "xyz", ".npz": "npz"}


def read_format(path: Path, format: str | None) -> str:
    """The reader to use for ``path``: ``format``, else told by the extension and, for
    ``.xyz``, the first comment line (extxyz, i-PI or plain xyz)."""
    if format is not None:
        if format not in KNOWN_FORMATS:
            raise InputError(
                f"unknown format {format!r}; known formats: {', '.join(KNOWN_FORMATS)}"
            )
        return format
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot tell the format of {path} from its extension {path.suffix!r}; known "
            f"extensions: {', '.join(_EXTENSIONS)}; or pass format= one of "
            f"{', '.join(KNOWN_FORMATS)}"
        )
    if fmt == "xyz":
        comment = first_comment_line(path)
        if "Properties=" in comment:
            return "extxyz"
        if is_ipi_comment(comment):
            return "ipi"
    return fmt


def write_format(path: Path, format: str | None) -> str:
    """The writer to use for ``path``: ``format``, else told by the extension (``.xyz`` is
    written as extxyz)."""
    if format is None:
        suffix = path.suffix.lower()
        format = "extxyz" if suffix == ".xyz" else _EXTENSIONS.get(suffix)
        if format is None:
            raise InputError(
                f"cannot tell the format of {path} from its extension; pass format= one of "
                f"{', '.join(WRITE_FORMATS)}"
            )
    if format not in WRITE_FORMATS:
        raise InputError(f"unknown output format {format!r}; known: {', '.join(WRITE_FORMATS)}")
    return format
