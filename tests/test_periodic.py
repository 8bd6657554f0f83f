"""The cell of a system: the closest pair of atoms, under the minimum image in a box."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

from hybridmd.periodic import Cell

BOX = Cell(np.eye(3) * 5.0, (True, True, True))
CLUSTER = Cell(np.zeros((3, 3)), (False, False, False))


def test_the_closest_pair_across_the_boundary() -> None:
    x = np.array([[0.1, 0, 0], [4.9, 0, 0], [2.5, 2.5, 2.5]])
    i, j, d = BOX.closest(x, 0.5)
    assert (i, j) == (0, 1) and np.isclose(d, 0.2)
    assert CLUSTER.closest(x, 0.5) is None  # 4.8 Å apart without the box
    assert BOX.periodic and not CLUSTER.periodic
    assert "5 x 5 x 5" in BOX.describe()


def test_a_cluster_finds_the_pair_pdist_finds() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 9):
        x = rng.random((n, 3)) * 4
        d = pdist(x)
        i, j, found = CLUSTER.closest(x, 10.0)
        assert found == d.min() and np.isclose(np.linalg.norm(x[i] - x[j]), found) and i < j
        assert CLUSTER.closest(x, d.min()) is None


def test_the_gap_between_groups_is_the_longest_link_under_the_minimum_image() -> None:
    """Two atoms 4.8 Å apart in vacuum are 0.2 Å apart across the 5 Å box's face; a chain of
    atoms 3 Å apart has a gap of 3 Å however long it is; beyond ``upto`` the gap is inf."""
    x = np.array([[0.1, 0, 0], [4.9, 0, 0]])
    assert np.isclose(CLUSTER.gap(x, 10.0), 4.8) and CLUSTER.gap(x, 4.5) == np.inf
    assert np.isclose(BOX.gap(x, 4.5), 0.2)
    chain = np.array([[3.0 * k, 0, 0] for k in range(5)])
    assert np.isclose(CLUSTER.gap(chain, 3.1), 3.0) and CLUSTER.gap(chain, 2.9) == np.inf
    split = np.vstack([chain, chain[-1] + [4.0, 0, 0]])
    assert np.isclose(CLUSTER.gap(split, 5.0), 4.0)


def test_the_widest_space_between_atoms_is_the_largest_empty_sphere() -> None:
    """A simple cubic lattice 2.5 Å apart fills a 10 Å box: its widest empty sphere sits at a
    cube's centre, 2.5 x sqrt(3) / 2 Å from its corners; the same lattice in a cell 20 Å tall
    leaves a 12.5 Å slab of vacuum, its widest sphere 6.25 Å from the planes of atoms and
    1.25 Å off their rows both ways; an open direction is vacuum."""
    lattice = np.array([[i, j, k] for i in range(4) for j in range(4) for k in range(4)]) * 2.5
    filled = Cell(np.eye(3) * 10.0, (True, True, True))
    centre = 2.5 * np.sqrt(3) / 2
    assert centre - 0.4 <= filled.widest_space(lattice + 7.3) <= centre + 1e-9  # any image
    slab = Cell(np.diag([10.0, 10.0, 20.0]), (True, True, True))
    middle = np.sqrt(6.25**2 + 2 * 1.25**2)
    assert middle - 0.4 <= slab.widest_space(lattice) <= middle + 1e-9
    assert Cell(np.diag([10.0, 10.0, 0.0]), (True, True, False)).widest_space(lattice) == np.inf
    assert CLUSTER.widest_space(lattice) == np.inf


def test_a_gap_is_searched_to_half_the_narrowest_width_or_30_angstrom_in_vacuum() -> None:
    assert BOX.gap_span == 2.5 and CLUSTER.gap_span == 30.0
    assert Cell(np.diag([10.0, 8.0, 12.0]), (True, True, True)).gap_span == 4.0
