"""The few unit conversions, in one place.

Internally hybridmd uses ASE units (Å, eV, amu, ASE time). Inputs and reports use fs, K, Å.
"""

from ase import units as _u

FS = _u.fs  #: one femtosecond in ASE time units
KCAL_MOL = _u.kcal / _u.mol  #: one kcal/mol in eV
HARTREE = _u.Hartree  #: one Hartree in eV
BOHR = _u.Bohr  #: one Bohr in Å
KB = _u.kB  #: Boltzmann constant in eV/K


def fs_to_ase(t_fs: float) -> float:
    """Convert a time in fs to ASE time units."""
    return t_fs * FS


def ase_to_fs(t: float) -> float:
    """Convert a time in ASE time units to fs."""
    return t / FS
