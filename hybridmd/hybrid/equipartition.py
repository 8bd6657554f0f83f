"""Equipartition with the rigid-body motion removed: each atom's expected share of kinetic energy.

In equilibrium every degree of freedom carries kT/2. A run that removed the centre-of-mass
motion (every hybrid run but a Langevin one) and, in vacuum, the rotation leaves atom i
3 f_i of its 3 degrees of freedom, f_i = 1 - m_i/M - (1/3) sum_k m_i |e_k x r_i|^2 / I_k
(principal axes e_k and moments I_k; the rotation term only where rotation was removed). The
fractions sum to the internal degrees of freedom over 3, and they are uneven: a heavy atom far
from the centre gives more of its motion to the rotation that was removed (malonaldehyde's
oxygens keep 0.64 of the mean share, its hydrogens 1.22, as three 20 ps simulations measured).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from hybridmd.units import KB

#: what a run removed from the motion: nothing (Langevin), the centre of mass (a periodic cell),
#: or the centre of mass and the rotation (a molecule or cluster in vacuum)
Removed = Literal["nothing", "translation", "rotation"]


def removed_motion(n_atoms: int, ndof: int) -> Removed:
    """What a run with ``ndof`` kinetic degrees of freedom of ``n_atoms`` atoms removed."""
    if ndof >= 3 * n_atoms:
        return "nothing"
    return "translation" if ndof == 3 * n_atoms - 3 else "rotation"


def equipartition_fractions(positions: np.ndarray, masses: np.ndarray,
                            removed: Removed) -> np.ndarray:
    """Each atom's share f_i of its 3 degrees of freedom left after ``removed``."""
    f = np.ones(len(masses))
    if removed == "nothing":
        return f
    f -= masses / masses.sum()
    if removed == "rotation":
        r = positions - masses @ positions / masses.sum()
        inertia = (masses * (r**2).sum(1)).sum() * np.eye(3) - (masses[:, None] * r).T @ r
        moments, axes = np.linalg.eigh(inertia)
        for moment, axis in zip(moments, axes.T, strict=True):
            if moment > 1e-8 * moments.max():  # a linear molecule has no rotation about its axis
                f -= masses * (np.cross(axis, r) ** 2).sum(1) / moment / 3
    return f


def element_temperatures(momenta: np.ndarray, positions: np.ndarray, masses: np.ndarray,
                         symbols: list[str], removed: Removed
                         ) -> dict[str, tuple[float, float]]:
    """Each element's kinetic temperature (3 degrees of freedom an atom, K) and what
    equipartition gives it at this frame's temperature (its atoms' mean f_i times the
    temperature of the degrees of freedom left)."""
    ek = 0.5 * (momenta**2).sum(1) / masses
    f = equipartition_fractions(positions, masses, removed)
    t_left = 2 * ek.sum() / (3 * KB * f.sum())
    out: dict[str, tuple[float, float]] = {}
    names = np.array(symbols)
    for s in dict.fromkeys(symbols):
        mask = names == s
        out[s] = (float(2 * ek[mask].mean() / (3 * KB)), float(t_left * f[mask].mean()))
    return out
