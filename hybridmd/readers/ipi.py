"""i-PI xyz trajectory outputs: a positions file and, optionally, its velocities (or momenta)
file, in the units their comment lines declare, at the MD steps their ``Step:`` tags give; the
positions file's ``CELL(...)`` header gives the periodic cell."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import IO, Any

import numpy as np
from ase.data import atomic_masses

from hybridmd.errors import InputError, MissingFileError
from hybridmd.readers.frame_times import frame_spacing, require_dt
from hybridmd.readers.xyz import numbers_from_symbols

logger = logging.getLogger("hybridmd.readers")

_IPI_CELL_RE = re.compile(r"CELL[\(\[\{](abcABC|H|GENH)[\)\]\}]")
_IPI_TAG_RE = re.compile(
    r"\b(positions|x_centroid|velocities|v_centroid|momenta|p_centroid|forces|f_centroid)"
    r"\{[A-Za-z_]*\}"
)
_IPI_STEP_RE = re.compile(r"Step:\s*(\d+)")


def is_ipi_comment(comment: str) -> bool:
    """Whether an xyz comment line is i-PI's: a ``CELL(abcABC):`` header or a property tag
    such as ``x_centroid{angstrom}``."""
    return bool(_IPI_CELL_RE.search(comment) or _IPI_TAG_RE.search(comment))


class _CountingLines:
    """Iterator over a file's lines that counts them (to spot a truncated last frame)."""

    def __init__(self, fd: IO[str]) -> None:
        self._fd = fd
        self.count = 0

    def __iter__(self) -> _CountingLines:
        return self

    def __next__(self) -> str:
        line = next(self._fd)
        self.count += 1
        return line


def _length_factor(units: str) -> float:
    """From an i-PI length unit to Å."""
    from ipi.utils.units import unit_to_internal, unit_to_user

    if units.lower() == "angstrom":
        return 1.0  # i-PI's 8-digit Bohr would otherwise rescale Å by 1 - 1.3e-8
    return unit_to_user("length", "ase", unit_to_internal("length", units, 1.0))


def _cells(frames: list[dict[str, Any]], cell_units: str) -> np.ndarray | None:
    """(T, 3, 3) cells in Å, rows the lattice vectors, from i-PI's column-vector ``h``; None
    where there is none: no header, or i-PI's own stand-in for one, a cube of 1 Bohr."""
    if not all(_IPI_CELL_RE.search(raw["comment"]) for raw in frames):
        return None
    h = np.stack([np.asarray(raw["cell"], dtype=float) for raw in frames])
    factor = _length_factor(cell_units)
    if np.allclose(np.abs(h) * factor / _length_factor("atomic_unit"), np.eye(3)):
        return None
    return np.transpose(h, (0, 2, 1)) * factor


def _read_ipi_file(path: Path, expected: tuple[str, ...]) -> dict[str, Any]:
    """One i-PI xyz output: names, data in ASE units, Step numbers, the dimension read, and
    the cells of its ``CELL`` headers in Å (None without).

    Units come from the comment line's ``key{unit}`` tag through i-PI's own parsing
    (``ipi.utils.io.io_units.auto_units``) and conversion (``ipi.utils.units``): data go to
    i-PI's atomic units and from there to ASE units (Å, Å/ASE-time, amu·Å/ASE-time).
    """
    from ipi.utils.io import iter_file_raw
    from ipi.utils.io.io_units import auto_units

    frames: list[dict[str, Any]] = []
    with open(path) as fd:
        lines = _CountingLines(fd)
        before = 0
        try:
            for raw in iter_file_raw("xyz", lines):
                if lines.count - before != 2 + raw["natoms"]:
                    logger.warning("%s: dropping the incomplete last frame", path)
                    break
                before = lines.count
                frames.append(raw)
        except RuntimeError:  # i-PI's reader hit the end of the file inside a frame header
            logger.warning("%s: dropping the incomplete last frame", path)
        except (IndexError, ValueError) as err:
            raise InputError(
                f"{path}, near line {lines.count}: not a readable i-PI xyz file ({err})"
            ) from None
    if not frames:
        raise InputError(f"{path}: no frames")

    names = [str(n) for n in frames[0]["names"]]
    dimension, units, cell_units = auto_units(comment=frames[0]["comment"], mode="xyz")
    data, steps = [], []
    for k, raw in enumerate(frames):
        if k and auto_units(comment=raw["comment"], mode="xyz")[:2] != (dimension, units):
            raise InputError(f"{path}: frame {k} has other units than frame 0")
        if [str(n) for n in raw["names"]] != names:
            raise InputError(f"{path}: frame {k} has different atoms than frame 0")
        data.append(np.array(raw["data"], dtype=float).reshape(-1, 3))
        step = _IPI_STEP_RE.search(raw["comment"])
        steps.append(None if step is None else int(step.group(1)))
    if dimension == "undefined":
        dimension = expected[0]
        logger.warning(
            "%s: no i-PI unit tag on the comment line; taking the data as %s in atomic units "
            "(i-PI's default)",
            path,
            dimension,
        )
    if dimension not in expected:
        raise InputError(f"{path}: holds {dimension} data, expected {' or '.join(expected)}")
    if dimension == "length":
        factor = _length_factor(units)
    else:
        from ipi.utils.units import unit_to_internal, unit_to_user

        factor = unit_to_user(dimension, "ase", unit_to_internal(dimension, units, 1.0))
    return {
        "names": names,
        "data": np.stack(data) * factor,
        "steps": None if any(s is None for s in steps) else np.array(steps),
        "dimension": dimension,
        "units": units,
        "cells": _cells(frames, cell_units),
    }


def read_ipi(path: Path, dt_fs: float | None, velocities: Path | None) -> dict[str, Any]:
    """A positions file (and its ``velocities`` file) as a reader's arrays; ``dt_fs`` is the
    MD time step, frames sit at ``Step * dt_fs``."""
    md_dt = require_dt(dt_fs, path, "this i-PI output")
    pos = _read_ipi_file(path, ("length",))
    numbers = numbers_from_symbols(pos["names"], path)
    masses = atomic_masses[numbers]
    n_frames = len(pos["data"])
    steps = pos["steps"] if pos["steps"] is not None else np.arange(n_frames)
    metadata: dict[str, Any] = {"md_timestep_fs": md_dt, "position_units": pos["units"]}

    momenta = None
    if velocities is not None:
        if not velocities.is_file():
            raise MissingFileError(f"velocities file not found: {velocities}")
        vel = _read_ipi_file(velocities, ("velocity", "momentum"))
        if len(vel["names"]) != len(pos["names"]):
            raise InputError(
                f"{velocities} has {len(vel['names'])} atoms but {path} has {len(pos['names'])}"
            )
        if vel["names"] != pos["names"]:
            raise InputError(f"{velocities} and {path} list different atoms")
        if len(vel["data"]) != n_frames:
            raise InputError(
                f"{velocities} has {len(vel['data'])} frames but {path} has {n_frames}"
            )
        if (
            vel["steps"] is not None
            and pos["steps"] is not None
            and not np.array_equal(vel["steps"], pos["steps"])
        ):
            raise InputError(f"{velocities} and {path} are not at the same Step numbers")
        if vel["dimension"] == "velocity":
            momenta = vel["data"] * masses[None, :, None]
        else:
            momenta = vel["data"]
        metadata.update(velocities_file=str(velocities), velocity_units=vel["units"])

    times = md_dt * steps.astype(float)
    if n_frames > 1:
        spacing = frame_spacing(times, path)
        metadata["stride"] = int(round(spacing / md_dt))
    return {
        "numbers": numbers,
        "positions": pos["data"],
        "momenta": momenta,
        "masses": masses,
        "times_fs": times,
        "dt_fs": md_dt if n_frames == 1 else None,
        "cell": pos["cells"],
        "pbc": None if pos["cells"] is None else np.ones(3, dtype=bool),
        "metadata": metadata,
    }
