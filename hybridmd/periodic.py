"""Periodic cells: minimum-image vectors, perpendicular widths, volumes, unwrapping.

A cell is a (3, 3) array whose rows are the lattice vectors in Å (ASE's convention), or a
(T, 3, 3) stack of one per frame; ``pbc`` says which of the three directions are periodic.
"""

from __future__ import annotations

import numpy as np
from ase.geometry import complete_cell


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
