"""Units a trajectory file declares, as factors to hybridmd's Å, eV and fs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import units as _ase_units

from hybridmd.errors import InputError
from hybridmd.units import BOHR, HARTREE, KCAL_MOL

# Unit tables, keyed by lower-case spelling: factor to Å, eV, fs.
LENGTH_UNITS = {"angstrom": 1.0, "ang": 1.0, "a": 1.0, "å": 1.0, "bohr": BOHR, "nm": 10.0}
ENERGY_UNITS = {
    "ev": 1.0,
    "kcal/mol": KCAL_MOL,
    "kj/mol": _ase_units.kJ / _ase_units.mol,
    "hartree": HARTREE,
    "ha": HARTREE,
    "eh": HARTREE,
}
TIME_UNITS = {"fs": 1.0, "femtosecond": 1.0, "ps": 1000.0}


def unit_factor(kind: str, unit: Any, table: dict[str, float], path: Path) -> float:
    """Factor converting ``unit`` to hybridmd's unit of ``kind``."""
    key = str(unit).strip().lower()
    if key not in table:
        raise InputError(f"{path}: unknown {kind} unit {str(unit)!r}; known: {', '.join(table)}")
    return table[key]


def velocity_factor(unit: Any, path: Path) -> float:
    """Factor converting a velocity unit like ``"Angstrom/fs"`` to Å/fs."""
    parts = str(unit).split("/")
    if len(parts) != 2:
        raise InputError(f"{path}: unknown velocity unit {str(unit)!r}; expected length/time")
    length = unit_factor("length", parts[0], LENGTH_UNITS, path)
    time = unit_factor("time", parts[1], TIME_UNITS, path)
    return length / time
