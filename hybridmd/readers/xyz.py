"""Plain multi-frame xyz, optionally with an energy on each comment line (in a unit the user
names); the frame spacing comes from the user."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from hybridmd.errors import InputError
from hybridmd.readers.file_units import ENERGY_UNITS, unit_factor
from hybridmd.readers.frame_times import require_dt

logger = logging.getLogger("hybridmd.readers")

_FLOAT_RE = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"
_COMMENT_ENERGY_RE = re.compile(rf"(?:^|\s)(?:energy|e)\s*[=:]\s*({_FLOAT_RE})", re.IGNORECASE)


def first_comment_line(path: Path) -> str:
    """The comment line of the first frame of an xyz file ("" if there is none)."""
    with open(path) as fd:
        for line in fd:
            if line.strip():
                return next(fd, "")
    return ""


def numbers_from_symbols(symbols: list[str] | np.ndarray, path: Path) -> np.ndarray:
    """Atomic numbers of an xyz file's atom labels (element symbols, any case)."""
    try:
        return np.array([atomic_numbers[str(s).strip().capitalize()] for s in symbols])
    except KeyError as err:
        raise InputError(f"{path}: atom label {err.args[0]!r} is not an element symbol") from None


def _parse_xyz_frames(path: Path) -> Iterator[tuple[list[str], np.ndarray, str]]:
    """(symbols, (N, 3) coordinates, comment) per frame; blank lines between frames skipped."""
    with open(path) as fd:
        lines = fd.read().splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n_atoms = int(lines[i].split()[0])
        except ValueError:
            raise InputError(
                f"{path}, line {i + 1}: expected an atom count, got {lines[i]!r}"
            ) from None
        if i + 2 + n_atoms > len(lines):
            raise InputError(f"{path}: the frame starting at line {i + 1} is incomplete")
        comment = lines[i + 1]
        symbols, coords = [], []
        for j in range(i + 2, i + 2 + n_atoms):
            fields = lines[j].split()
            try:
                coords.append([float(x) for x in fields[1:4]])
                symbols.append(fields[0])
            except (ValueError, IndexError):
                raise InputError(f"{path}, line {j + 1}: not an atom line: {lines[j]!r}") from None
            if len(coords[-1]) != 3:
                raise InputError(f"{path}, line {j + 1}: not an atom line: {lines[j]!r}")
        yield symbols, np.array(coords), comment
        i += 2 + n_atoms


def _comment_energy(comment: str) -> float | None:
    """A bare number on the comment line, or ``energy=<number>`` / ``E: <number>``."""
    text = comment.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _COMMENT_ENERGY_RE.search(text)
    return float(match.group(1)) if match else None


def read_plain_xyz(path: Path, dt_fs: float | None, energy_unit: str | None) -> dict[str, Any]:
    """The whole file as a reader's arrays; energies only when ``energy_unit`` is given."""
    dt = require_dt(dt_fs, path, "this plain xyz file")
    frames = list(_parse_xyz_frames(path))
    if not frames:
        raise InputError(f"{path}: no frames")
    symbols = frames[0][0]
    for k, (syms, _, _) in enumerate(frames):
        if syms != symbols:
            raise InputError(f"{path}: frame {k} has different atoms than frame 0")
    numbers = numbers_from_symbols(symbols, path)
    comment_energies = [_comment_energy(comment) for _, _, comment in frames]
    energies = None
    if energy_unit is not None:
        factor = unit_factor("energy", energy_unit, ENERGY_UNITS, path)
        missing = [k for k, e in enumerate(comment_energies) if e is None]
        if missing:
            raise InputError(f"{path}: no energy on the comment line of frame {missing[0]}")
        energies = np.array(comment_energies) * factor
    elif all(e is not None for e in comment_energies):
        logger.warning(
            "%s: the comment lines hold numbers (energies?); pass energy_unit= to read them", path
        )
    return {
        "numbers": numbers,
        "positions": np.stack([coords for _, coords, _ in frames]),
        "momenta": None,
        "masses": atomic_masses[numbers],
        "times_fs": dt * np.arange(len(frames)),
        "dt_fs": dt,
        "energies": energies,
    }
