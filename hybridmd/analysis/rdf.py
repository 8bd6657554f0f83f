"""Radial distribution functions g(r) and the density of a periodic trajectory.

g_AB(r) is the number of A–B pairs at distance r (minimum image, averaged over the frames)
over the number an ideal gas of the same pairs in the same cell would have there: with
n_AB pairs per frame (N_A·N_B, or N_A(N_A − 1)/2 for A = B) in volume V, a shell [r, r + dr]
holds n_AB·4π/3((r + dr)³ − r³)/V of them, so g → 1 at large r in a liquid and for an ideal
gas at every r. Distances run to at most half the cell's smallest perpendicular width, where
the minimum image is exact and no pair is counted twice.

A cluster (no cell, or one not periodic in all three directions) has no density to normalise
by: :func:`radial_distribution` refuses it, and its pair-distance distribution h(r)
(:func:`~hybridmd.analysis.observables.pair_distance_distribution`) is what to use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from ase.data import chemical_symbols
from ase.symbols import symbols2numbers
from ase.units import _amu

from hybridmd.analysis.observables import jensen_shannon
from hybridmd.errors import InputError
from hybridmd.periodic import minimum_image, perpendicular_widths, volumes
from hybridmd.trajectory import Trajectory

#: g/cm³ per amu/Å³
G_CM3_PER_AMU_A3 = _amu * 1e3 / 1e-24
#: distances computed at once (frames are taken in chunks of about this many pairs)
_CHUNK_PAIRS = 1_000_000

Pair = tuple[str, str]


@dataclass
class RadialDistribution:
    """g(r) of one element pair (or of all atoms) on bins ``edges``, over ``frames`` frames."""

    pair: Pair | None  #: element symbols (A, B); None: all atoms
    edges: np.ndarray  #: (B+1,) bin edges, Å, from 0 to r_max
    g: np.ndarray  #: (B,) g(r), dimensionless
    counts: np.ndarray  #: (B,) pairs in each bin, summed over the frames
    pairs: int  #: pairs per frame
    frames: int

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def label(self) -> str:
        """"O-H" for a pair, "all" for all atoms."""
        return "all" if self.pair is None else "-".join(self.pair)

    @property
    def peak(self) -> float:
        """r (Å) of the highest bin: the bond of a bonded pair (O-H in water), else the first
        coordination shell (O-O)."""
        return float(self.centres[int(np.argmax(self.g))])


class Density(NamedTuple):
    """The mean density of a periodic trajectory over its frames."""

    g_cm3: float  #: mass density, g/cm³
    atoms_per_A3: float  #: number density, atoms/Å³
    volume_A3: float  #: mean cell volume, Å³


def require_bulk(traj: Trajectory, what: str) -> None:
    """Refuse a trajectory that is not periodic in all three directions (InputError)."""
    if traj.periodic:
        return
    source = traj.metadata.get("source", "the trajectory")
    has = ("no cell" if traj.cell is None
           else f"a cell periodic only along {traj.pbc.tolist()}")
    raise InputError(
        f"{what} needs a cell periodic in all three directions to normalise by the density; "
        f"{source} has {has}. For a cluster, compare the pair-distance distribution h(r) "
        "(hybridmd.analysis.observables.pair_distance_distribution) instead")


def max_radius(traj: Trajectory) -> float:
    """Half the smallest perpendicular width of the cell over all frames (Å): the largest r
    at which minimum-image distances give an exact g(r)."""
    require_bulk(traj, "g(r)")
    return float(perpendicular_widths(traj.cells).min() / 2)


def element_pairs(numbers: Sequence[int] | np.ndarray) -> list[Pair]:
    """Every element pair present, heavier element first (water: O-O, O-H, H-H); a pair of
    one element needs two of its atoms."""
    numbers = np.asarray(numbers)
    elements = sorted(set(numbers.tolist()), reverse=True)
    return [(chemical_symbols[a], chemical_symbols[b])
            for k, a in enumerate(elements) for b in elements[k:]
            if a != b or np.count_nonzero(numbers == a) > 1]


def _pair_indices(numbers: np.ndarray,
                  pair: Sequence[str | int] | None) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) atom indices of every pair: each unordered pair once."""
    if pair is None:
        return np.triu_indices(len(numbers), k=1)
    if len(pair) != 2:
        raise ValueError(f"a pair names two elements, got {pair!r}")
    a, b = symbols2numbers(list(pair))
    first, second = np.flatnonzero(numbers == a), np.flatnonzero(numbers == b)
    if a == b:
        i, j = np.triu_indices(len(first), k=1)
        return first[i], first[j]
    i, j = np.meshgrid(first, second, indexing="ij")
    return i.ravel(), j.ravel()


def radial_distribution(traj: Trajectory, pair: Sequence[str | int] | None = None,
                        r_max: float | None = None, bins: int = 200) -> RadialDistribution:
    """g(r) of element ``pair`` (e.g. ``("O", "H")``; None: all atoms) in a periodic cell.

    ``r_max`` (Å) defaults to :func:`max_radius` and may not exceed it; ``bins`` equal bins
    from 0 to ``r_max``. Give two trajectories the same ``r_max`` and ``bins`` to compare
    them. Raises InputError for a trajectory without a fully periodic cell, ValueError for a
    pair with no pairs of atoms (an element absent, or one atom of it for A = B).
    """
    limit = max_radius(traj)
    r_max = limit if r_max is None else float(r_max)
    if not 0 < r_max <= limit * (1 + 1e-9):
        raise ValueError(f"r_max must be in (0, {limit:.4g}] Å, half the cell's smallest "
                         f"perpendicular width (minimum-image distances beyond it are not "
                         f"exact); got {r_max}")
    i, j = _pair_indices(traj.numbers, pair)
    if len(i) == 0:
        raise ValueError(f"no {'-'.join(map(str, pair))} pairs in {traj.symbols}")
    edges = np.linspace(0.0, r_max, bins + 1)
    counts = np.zeros(bins)
    cells = traj.cells
    step = max(1, _CHUNK_PAIRS // len(i))
    for start in range(0, len(traj), step):
        r = traj.positions[start:start + step]
        cell = traj.cell if traj.cell.ndim == 2 else cells[start:start + step]
        d = np.linalg.norm(minimum_image(r[:, j] - r[:, i], cell, traj.pbc), axis=-1)
        d = d[d < r_max]
        counts += np.bincount(np.minimum((d * (bins / r_max)).astype(int), bins - 1),
                              minlength=bins)
    shells = 4.0 / 3.0 * np.pi * np.diff(edges**3)
    ideal = len(i) * np.sum(1.0 / volumes(cells)) * shells
    named = None if pair is None else tuple(
        chemical_symbols[z] for z in symbols2numbers(list(pair)))
    return RadialDistribution(named, edges, counts / ideal, counts, len(i), len(traj))


def density(traj: Trajectory) -> Density:
    """Mass and number density of a periodic trajectory, averaged over its frames."""
    require_bulk(traj, "a density")
    v = volumes(traj.cells)
    return Density(g_cm3=float(np.mean(traj.masses.sum() / v)) * G_CM3_PER_AMU_A3,
                   atoms_per_A3=float(np.mean(traj.n_atoms / v)), volume_A3=float(v.mean()))


def common_rdfs(reference: Trajectory, other: Trajectory, bin_width: float = 0.05
                ) -> dict[str, tuple[RadialDistribution, RadialDistribution]]:
    """The partial g(r) of every element pair of ``reference`` that ``other`` has too, both
    on the same bins, about ``bin_width`` Å wide, to the smaller of their :func:`max_radius`;
    by label ("O-H")."""
    r_max = min(max_radius(reference), max_radius(other))
    bins = max(1, round(r_max / bin_width))
    present = set(element_pairs(other.numbers))
    return {"-".join(pair): (radial_distribution(reference, pair, r_max, bins),
                             radial_distribution(other, pair, r_max, bins))
            for pair in element_pairs(reference.numbers) if pair in present}


def rdf_scores(reference: RadialDistribution, other: RadialDistribution) -> dict[str, float]:
    """``js_bits``: Jensen–Shannon divergence (bits) of the two pair-distance histograms up
    to r_max (what g(r) weights by the shell volume), as h(r) is compared; ``rms``: the
    root-mean-square difference of g(r) over the bins, dimensionless. 0 for identical ones."""
    if not np.allclose(reference.edges, other.edges):
        raise ValueError("the two g(r) have different bins: use the same r_max and bins")
    empty = not (reference.counts.sum() > 0 and other.counts.sum() > 0)
    return {"js_bits": float("nan") if empty else jensen_shannon(reference.counts, other.counts),
            "rms": float(np.sqrt(np.mean((other.g - reference.g) ** 2)))}
