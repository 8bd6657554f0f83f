"""The simulation cell: a cluster in vacuum, or a periodic box, and distances in it.

Positions are never wrapped: the integrators move atoms continuously, so a segment's start
and end, a forecast and its monitor, and the frames an interpolator fills in all differ by the
atoms' own displacements. Only distances *between* atoms (the closest-atoms checks, radial
distribution functions) take the minimum image, which ``Cell.closest`` does for a periodic box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list
from scipy.spatial.distance import pdist


@dataclass(frozen=True)
class Cell:
    """(3, 3) cell vectors in Å and periodicity, as ASE has them on ``Atoms``."""

    vectors: np.ndarray
    pbc: tuple[bool, bool, bool]

    @classmethod
    def of(cls, atoms: Atoms) -> Cell:
        return cls(np.array(atoms.cell[:], dtype=float), tuple(bool(p) for p in atoms.pbc))

    @property
    def periodic(self) -> bool:
        return any(self.pbc)

    def describe(self) -> str:
        """The box in words, for messages."""
        if not self.periodic:
            return "a cluster in vacuum (no periodic cell)"
        lengths = np.linalg.norm(self.vectors, axis=1)
        return f"a periodic cell of {' x '.join(f'{x:.3g}' for x in lengths)} Å"

    def closest(self, positions: np.ndarray, within: float) -> tuple[int, int, float] | None:
        """The closest pair of atoms (i < j) nearer than ``within`` Å, under the minimum image
        in a periodic box; None when no pair is."""
        positions = np.asarray(positions, dtype=float)
        if not self.periodic:
            d = pdist(positions)
            k = int(np.argmin(d))
            if d[k] >= within:
                return None
            i, j = _pair_of_condensed_index(k, len(positions))
            return i, j, float(d[k])
        atoms = Atoms(positions=positions, cell=self.vectors, pbc=self.pbc)
        i, j, d = neighbor_list("ijd", atoms, within)
        if len(d) == 0:
            return None
        k = int(np.argmin(d))
        return int(min(i[k], j[k])), int(max(i[k], j[k])), float(d[k])


def _pair_of_condensed_index(k: int, n: int) -> tuple[int, int]:
    """The (i, j) of entry ``k`` of scipy's condensed distance vector of ``n`` points."""
    i = int(n - 2 - np.floor(np.sqrt(-8 * k + 4 * n * (n - 1) - 7) / 2.0 - 0.5))
    j = int(k + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2)
    return i, j
