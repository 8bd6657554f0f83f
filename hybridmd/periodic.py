"""Periodic cells: a system's ``Cell``, minimum-image vectors, perpendicular widths, volumes,
unwrapping.

A cell is a (3, 3) array whose rows are the lattice vectors in Å (ASE's convention), or a
(T, 3, 3) stack of one per frame; ``pbc`` says which of the three directions are periodic.
Positions in a run are never wrapped: the integrators move atoms continuously, so a segment's
start and end, a forecast and its monitor, and the frames an interpolator fills in differ by
the atoms' own displacements. Only distances *between* atoms (the closest-atoms checks, the
gap between groups of atoms, radial distribution functions) take the minimum image.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
from ase import Atoms
from ase.geometry import complete_cell
from ase.neighborlist import neighbor_list
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist, squareform


def _complete(cell: np.ndarray) -> np.ndarray:
    """The cell with zero vectors (non-periodic directions) replaced, so that it inverts."""
    cell = np.asarray(cell, dtype=float)
    if cell.ndim == 2:
        return complete_cell(cell)
    return np.stack([complete_cell(c) for c in cell])


def minimum_image(vectors: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """(..., 3) difference vectors mapped to their nearest periodic image.

    Fractional coordinates (through the cell's inverse, so any triclinic cell) are rounded
    along the periodic directions. This is exact for every vector whose minimum image is
    shorter than half the cell's smallest perpendicular width (:func:`perpendicular_widths`):
    its fractional coordinates then all lie within ±1/2. ``cell`` is (3, 3), or (T, 3, 3)
    for vectors of shape (T, ..., 3).
    """
    full = _complete(cell)
    pbc = np.asarray(pbc, dtype=bool)
    vectors = np.asarray(vectors, dtype=float)
    frac = _times(vectors, np.linalg.inv(full))
    if pbc.all():
        frac -= np.round(frac)
    else:
        frac[..., pbc] -= np.round(frac[..., pbc])
    return _times(frac, full)


def _times(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., 3) row vectors times ``matrix``: one (3, 3), or (T, 3, 3), one per leading index."""
    return x @ matrix if matrix.ndim == 2 else np.einsum("t...i,tij->t...j", x, matrix)


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """(3,) or (T, 3) distances between opposite faces of the cell, in Å: 1/|b_i| for the
    reciprocal vectors b_i. A sphere of radius r fits in the cell when 2r <= the smallest."""
    inverse = np.linalg.inv(_complete(cell))  # columns are the reciprocal vectors
    return 1.0 / np.linalg.norm(inverse, axis=-2)


def volumes(cell: np.ndarray) -> np.ndarray:
    """The cell's volume in Å³: a float for a (3, 3) cell, (T,) for a stack."""
    return np.abs(np.linalg.det(np.asarray(cell, dtype=float)))


def unwrap(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """(T, N, 3) positions made continuous in time: each frame-to-frame displacement taken at
    its minimum image, so that an atom wrapped back into the cell does not jump by a lattice
    vector (what finite differences of positions need). ``cell``: (3, 3) or (T, 3, 3)."""
    positions = np.asarray(positions, dtype=float)
    cell = np.asarray(cell, dtype=float)
    steps = minimum_image(np.diff(positions, axis=0), cell if cell.ndim == 2 else cell[1:], pbc)
    return np.concatenate([positions[:1], positions[:1] + np.cumsum(steps, axis=0)])


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

    def gap(self, positions: np.ndarray, upto: float) -> float:
        """The distance (Å, minimum image) that separates the atoms' farthest-apart groups:
        the longest edge of their minimum spanning tree, so every atom has a chain of
        neighbours to every other with no step longer than it. Inf if it exceeds ``upto``."""
        positions = np.asarray(positions, dtype=float)
        n = len(positions)
        if not self.periodic:
            dist = squareform(pdist(positions))
        else:
            atoms = Atoms(positions=positions, cell=self.vectors, pbc=self.pbc)
            i, j, d = neighbor_list("ijd", atoms, upto)
            dist = np.full((n, n), np.inf)
            np.minimum.at(dist, (i, j), d)
            dist[~np.isfinite(dist)] = 0  # no edge
        tree = minimum_spanning_tree(np.where(dist <= upto, dist, 0))
        if n > 1 and tree.nnz < n - 1:
            return float("inf")
        return float(tree.data.max()) if tree.nnz else 0.0

    @property
    def gap_span(self) -> float:
        """How far (Å) a gap between groups of atoms is worth searching: half a periodic
        cell's narrowest width (no group is farther from the rest under the minimum image
        without meeting the others' images), 30 Å in vacuum."""
        if not self.periodic:
            return 30.0
        return float(perpendicular_widths(self.vectors).min()) / 2

    def widest_space(self, positions: np.ndarray, spacing: float = 0.4) -> float:
        """The radius (Å) of the widest empty sphere between the atoms: the largest distance
        from a point of the cell to its nearest atom (minimum image), over a grid at most
        ``spacing`` Å apart along each cell vector (so short by less than about ``spacing``).
        Inf when a direction is open (vacuum)."""
        if not all(self.pbc):
            return float("inf")
        inverse = np.linalg.inv(self.vectors)
        frac = np.asarray(positions, dtype=float) @ inverse
        home = (frac - np.floor(frac)) @ self.vectors
        shifts = np.array(list(product((-1, 0, 1), repeat=3)), dtype=float) @ self.vectors
        # a point of the cell has its nearest atom among these images (unless the cell is
        # very skewed, where the radius comes out larger)
        images = (home[None] + shifts[:, None]).reshape(-1, 3)
        counts = np.ceil(np.linalg.norm(self.vectors, axis=1) / spacing).astype(int)
        axes = [np.arange(k) / k for k in counts]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3) @ self.vectors
        return float(cKDTree(images).query(grid)[0].max())


def _pair_of_condensed_index(k: int, n: int) -> tuple[int, int]:
    """The (i, j) of entry ``k`` of scipy's condensed distance vector of ``n`` points."""
    i = int(n - 2 - np.floor(np.sqrt(-8 * k + 4 * n * (n - 1) - 7) / 2.0 - 0.5))
    j = int(k + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2)
    return i, j
