"""Physical observables of a trajectory and scores that compare two of them (numpy/scipy only).

The observables of Winkler et al. (2022), sections 3.2-3.3: the vibrational density of states
(figure 9), the pair-distance and speed distributions (figure 5), internal coordinates
(figure 4) and the free-energy surface over two dihedrals (figure 8), plus per-frame errors.

Units: Å, fs, Å/fs, degrees, wavenumbers in cm^-1, free energies in kJ/mol.

Scores (all symmetric in their two inputs):

- :func:`vdos_overlap`: Σ_k min(p_k, q_k) of the two spectra normalised to unit sum on a common
  grid, i.e. 1 − total-variation distance; in [0, 1], 1 for identical spectra.
- :func:`jensen_shannon`: the Jensen–Shannon *divergence* in bits (the square of
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``); in [0, 1], 0 for identical
  distributions, 1 for distributions with disjoint support.
- :func:`fes_rmsd`: root-mean-square free-energy difference (kJ/mol) over the bins both
  trajectories visit, after removing the constant offset, weighted by the reference population.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from ase import Atoms
from ase.neighborlist import natural_cutoffs
from scipy.fft import next_fast_len
from scipy.integrate import trapezoid
from scipy.spatial.distance import jensenshannon as _scipy_jensenshannon

from hybridmd.interpolation.metrics import pair_distances
from hybridmd.periodic import Cell
from hybridmd.trajectory import Trajectory
from hybridmd.units import KB

#: speed of light in cm/fs: a frequency f in 1/fs is the wavenumber f / C_CM_PER_FS in cm^-1
C_CM_PER_FS = 2.99792458e-5
#: molar gas constant in kJ/(mol K)
R_KJ_MOL_K = 8.314462618e-3
#: elements that donate (through a bonded H) and accept hydrogen bonds
_HBOND_ELEMENTS = (7, 8, 9)
#: at most this many frames are used to rank dihedrals by their variance
_MAX_RANKING_FRAMES = 10_000

_WINDOWS = {"hann": np.hanning, "blackman": np.blackman, "hamming": np.hamming}

PositionsLike = Trajectory | np.ndarray


# ------------------------------------------------------------------------------ spectra


def velocity_autocorrelation(traj: Trajectory, max_lag: int | None = None,
                             remove_com: bool = True) -> np.ndarray:
    """(L+1,) mass-weighted velocity autocorrelation C(τ) = Σ_i m_i <v_i(t)·v_i(t+τ)>_t.

    Lags τ = 0..L frames (``max_lag``; default: half the trajectory), in amu·Å²/fs². Each lag
    is averaged over its T − τ time origins (unbiased), computed by FFT (Wiener–Khinchin) with
    zero padding to at least 2T so that the circular correlation does not wrap around. With
    ``remove_com`` the centre-of-mass velocity of each frame is subtracted first (a drifting
    molecule would otherwise add a peak at zero frequency).
    """
    n_frames = len(traj)
    lag = n_frames // 2 if max_lag is None else int(max_lag)
    if n_frames < 4 or not 1 <= lag < n_frames:
        raise ValueError(f"need at least 4 frames and 1 <= max_lag < {n_frames} frames for a "
                         f"velocity autocorrelation (got {n_frames} frames, max_lag {lag})")
    v = traj.velocities
    if remove_com:
        v = v - (traj.masses[None, :, None] * v).sum(axis=1, keepdims=True) / traj.masses.sum()
    weighted = (v * np.sqrt(traj.masses)[None, :, None]).reshape(n_frames, -1)
    nfft = next_fast_len(2 * n_frames)
    f = np.fft.rfft(weighted, n=nfft, axis=0)
    power = (f.real**2 + f.imag**2).sum(axis=1)
    acf = np.fft.irfft(power, n=nfft)[: lag + 1]
    return acf / (n_frames - np.arange(lag + 1))


def vdos(traj: Trajectory, max_lag: int | None = None, window: str | None = "hann",
         pad: int = 4, remove_com: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational density of states: (wavenumbers in cm^-1, spectrum with unit area).

    The Fourier (cosine) transform of the mass-weighted velocity autocorrelation
    (:func:`velocity_autocorrelation`, lags up to ``max_lag`` frames, centre-of-mass motion
    removed unless ``remove_com`` is False), tapered by the decaying half of a ``window``
    ("hann", "blackman", "hamming" or None) and zero-padded to ``pad`` times its symmetric
    length (rounded up to a power of two) for a finer grid. The grid runs from 0 to the
    Nyquist wavenumber 1/(2·dt·c). Small negative values from the window's side lobes are
    clipped to zero before normalising to unit area (so the spectrum's unit is cm).
    """
    acf = velocity_autocorrelation(traj, max_lag, remove_com)
    lag = len(acf) - 1
    if window is not None:
        if window not in _WINDOWS:
            raise ValueError(f"unknown window {window!r}: one of {sorted(_WINDOWS)} or None")
        acf = acf * _WINDOWS[window](2 * lag + 1)[lag:]
    if pad < 1:
        raise ValueError(f"pad must be at least 1, got {pad}")
    n = 1 << int(np.ceil(np.log2(pad * 2 * (lag + 1))))
    # Σ_{τ=-L..L} c_|τ| e^{-iωτ} = 2 Re Σ_{τ=0..L} c_τ e^{-iωτ} − c_0
    spectrum = 2.0 * np.fft.rfft(acf, n=n).real - acf[0]
    freq = np.fft.rfftfreq(n, d=traj.dt_fs) / C_CM_PER_FS
    spectrum = np.clip(spectrum, 0.0, None)
    area = trapezoid(spectrum, freq)
    if not area > 0:
        raise ValueError("the velocity autocorrelation is zero: no motion to analyse")
    return freq, spectrum / area


def vdos_overlap(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Overlap Σ_k min(p_k, q_k) of two spectra, each a (wavenumbers, spectrum) pair.

    Both are normalised to unit sum on ``a``'s grid (``b`` is interpolated onto it, zero
    outside its range, where the grids differ); this is 1 − the total-variation distance:
    1 for identical spectra, 0 for spectra without common support.
    """
    fa, sa = (np.asarray(x, dtype=float) for x in a)
    fb, sb = (np.asarray(x, dtype=float) for x in b)
    if fa.shape != fb.shape or not np.allclose(fa, fb):
        sb = np.interp(fa, fb, sb, left=0.0, right=0.0)
    sa, sb = np.clip(sa, 0.0, None), np.clip(sb, 0.0, None)
    if not (sa.sum() > 0 and sb.sum() > 0):
        raise ValueError("cannot compare an empty spectrum")
    return float(np.minimum(sa / sa.sum(), sb / sb.sum()).sum())


# ------------------------------------------------------------------------------ histograms


class Histogram(NamedTuple):
    """A normalised histogram: ``density`` integrates to 1 over the bins given by ``edges``."""

    edges: np.ndarray  #: (B+1,) bin edges
    density: np.ndarray  #: (B,) probability density (1/unit of the edges)

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def probabilities(self) -> np.ndarray:
        """(B,) probability of each bin (sums to 1)."""
        return self.density * np.diff(self.edges)


def _histogram(samples: np.ndarray, bins: int | np.ndarray,
               range: tuple[float, float] | None) -> Histogram:
    density, edges = np.histogram(samples, bins=bins, range=range, density=True)
    return Histogram(edges, density)


def pair_distance_distribution(traj: Trajectory, bins: int | np.ndarray = 200,
                               range: tuple[float, float] | None = None) -> Histogram:
    """h(r): histogram (unit area, 1/Å) of all N(N−1)/2 interatomic distances of all frames.

    ``bins`` is a count or an array of edges in Å; give two trajectories the same edges to
    compare them.
    """
    return _histogram(pair_distances(traj.positions).ravel(), bins, range)


def speed_distribution(traj: Trajectory, bins: int | np.ndarray = 80,
                       range: tuple[float, float] | None = None) -> Histogram:
    """Histogram (unit area, fs/Å) of the atomic speeds |v| (Å/fs) of all atoms and frames."""
    return _histogram(np.linalg.norm(traj.velocities, axis=-1).ravel(), bins, range)


def jensen_shannon(p: Histogram | np.ndarray, q: Histogram | np.ndarray) -> float:
    """Jensen–Shannon divergence in bits between two distributions over the same bins.

    ``p`` and ``q`` are :class:`Histogram` objects with equal edges, or weight arrays (counts
    or probabilities) normalised here to unit sum. The value is
    ``scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2``: 0 for identical
    distributions, 1 for disjoint ones.
    """
    if isinstance(p, Histogram) or isinstance(q, Histogram):
        if not (isinstance(p, Histogram) and isinstance(q, Histogram)):
            raise TypeError("compare a Histogram with a Histogram, or two weight arrays")
        if p.edges.shape != q.edges.shape or not np.allclose(p.edges, q.edges):
            raise ValueError("the two histograms have different bins: use common edges")
        p, q = p.probabilities, q.probabilities
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"distributions over different bins: {p.shape} and {q.shape}")
    if not (p.sum() > 0 and q.sum() > 0):
        raise ValueError("cannot compare an empty distribution")
    return float(_scipy_jensenshannon(p.ravel(), q.ravel(), base=2) ** 2)


# ------------------------------------------------------------------------------ coordinates


def _positions(x: PositionsLike) -> np.ndarray:
    r = x.positions if isinstance(x, Trajectory) else np.asarray(x, dtype=float)
    return r[None] if r.ndim == 2 else r


def bond(traj: PositionsLike, i: int, j: int) -> np.ndarray:
    """(T,) distance between atoms i and j in Å (a trajectory or (T, N, 3) positions)."""
    r = _positions(traj)
    return np.linalg.norm(r[:, j] - r[:, i], axis=-1)


def angle(traj: PositionsLike, i: int, j: int, k: int) -> np.ndarray:
    """(T,) angle i-j-k at atom j in degrees, in [0, 180]."""
    r = _positions(traj)
    a, b = r[:, i] - r[:, j], r[:, k] - r[:, j]
    cos = np.einsum("tx,tx->t", a, b) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _dihedrals(r: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(T, D) dihedrals in degrees of (T, N, 3) positions for (D, 4) index rows."""
    p0, p1, p2, p3 = (r[:, idx[:, m]] for m in range(4))
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    x = np.einsum("...x,...x->...", n1, n2)
    y = np.einsum("...x,...x->...", np.cross(n1, n2), b1n)
    with np.errstate(invalid="ignore"):
        out = np.degrees(np.arctan2(y, x))
    out[(np.linalg.norm(n1, axis=-1) == 0) | (np.linalg.norm(n2, axis=-1) == 0)] = np.nan
    return out


def dihedral(traj: PositionsLike, i: int, j: int, k: int, l: int) -> np.ndarray:  # noqa: E741
    """(T,) dihedral i-j-k-l in degrees, in [−180, 180] (IUPAC sign convention).

    Equal to ASE's ``Atoms.get_dihedral(i, j, k, l)`` modulo 360 (ASE reports [0, 360)); NaN
    where three of the atoms are collinear.
    """
    return _dihedrals(_positions(traj), np.array([[i, j, k, l]]))[:, 0]


def wrap_degrees(x: np.ndarray) -> np.ndarray:
    """Angles in degrees mapped to [−180, 180)."""
    return (np.asarray(x) + 180.0) % 360.0 - 180.0


def circular_variance(angles_deg: np.ndarray, axis: int = 0) -> np.ndarray:
    """1 − |<exp(iθ)>|: 0 for a fixed angle, 1 for a uniformly spread one (NaNs ignored)."""
    z = np.exp(1j * np.radians(angles_deg))
    return 1.0 - np.abs(np.nanmean(z, axis=axis))


def cluster_size(traj: Trajectory, every_fs: float = 10.0,
                 stretch_fs: float = 250.0) -> tuple[float, float]:
    """How compact a cluster in vacuum stays: the mass-weighted radius of gyration (Å) over
    frames ``every_fs`` apart, its mean and the largest of its means over ``stretch_fs``. A
    cluster loosened as a whole has no single group far from the rest; a loose stretch shows
    in the second where the mean hides it."""
    every = max(1, round(every_fs / traj.dt_fs))
    r = traj.positions[::every]
    m = traj.masses / traj.masses.sum()
    centre = np.einsum("i,fij->fj", m, r)
    rg = np.sqrt(np.einsum("i,fi->f", m, ((r - centre[:, None]) ** 2).sum(-1)))
    window = min(len(rg), max(1, round(stretch_fs / (every * traj.dt_fs))))
    stretches = np.convolve(rg, np.ones(window) / window, "valid")
    return float(rg.mean()), float(stretches.max())


def largest_gap(traj: Trajectory, every_fs: float = 10.0) -> float:
    """The largest ``Cell.gap`` over frames ``every_fs`` apart: how far the farthest group of
    atoms got from the rest (under the minimum image, each frame in its cell); inf beyond
    30 Å, or beyond half the box's narrowest width."""
    pbc = tuple(bool(p) for p in traj.pbc)  # a Trajectory's: a cell wherever one is True

    def gap(k: int) -> float:
        cell = Cell(traj.cells[k] if any(pbc) else np.zeros((3, 3)), pbc)
        return cell.gap(traj.positions[k], cell.gap_span)

    return max(gap(k) for k in range(0, len(traj), max(1, round(every_fs / traj.dt_fs))))


# ------------------------------------------------------------------------------ topology


def covalent_bonds(traj: Trajectory, frame: int = 0, mult: float = 1.2) -> list[tuple[int, int]]:
    """Bonded pairs (i < j) on one frame: d_ij < mult·(r_i + r_j), r = ASE's natural cutoffs.

    ASE's natural cutoffs are covalent radii; ``mult`` = 1.2 keeps stretched bonds of a hot
    trajectory (an O–H of water reaches 1.07 Å while the radii add to 0.97 Å).
    """
    atoms = Atoms(numbers=traj.numbers, positions=traj.positions[frame])
    radii = np.array(natural_cutoffs(atoms, mult=mult))
    d = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    i, j = np.nonzero(np.triu(d < radii[:, None] + radii[None], k=1))
    return [(int(a), int(b)) for a, b in zip(i, j, strict=True)]


def hydrogen_bonds(traj: Trajectory, frame: int = 0, max_distance: float = 2.5,
                   min_angle: float = 120.0,
                   bonds: Sequence[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Hydrogen bonds (H, acceptor) on one frame: D–H···A with D, A in N/O/F.

    H···A closer than ``max_distance`` Å, the angle D–H···A at least ``min_angle`` degrees,
    and H not covalently bonded to A (``bonds``: :func:`covalent_bonds` when None).
    """
    bonds = covalent_bonds(traj, frame) if bonds is None else bonds
    bonded = {frozenset(b) for b in bonds}
    numbers, r = traj.numbers, traj.positions[frame]
    donors = {}
    for i, j in bonds:
        for h, d in ((i, j), (j, i)):
            if numbers[h] == 1 and numbers[d] in _HBOND_ELEMENTS:
                donors[h] = d
    out = []
    for h, d in donors.items():
        for a in np.flatnonzero(np.isin(numbers, _HBOND_ELEMENTS)):
            if a == d or frozenset((h, int(a))) in bonded:
                continue
            if (np.linalg.norm(r[a] - r[h]) < max_distance
                    and angle(r, d, h, int(a))[0] >= min_angle):
                out.append((h, int(a)))
    return out


def proper_dihedrals(bonds: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """All proper dihedrals i-j-k-l of chains of three bonds (each once, i ≠ l)."""
    neighbours: dict[int, set[int]] = {}
    for a, b in bonds:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    found = set()
    for a, b in bonds:
        for j, k in ((a, b), (b, a)):
            for i in sorted(neighbours[j] - {k}):
                for l in sorted(neighbours[k] - {i, j}):  # noqa: E741
                    found.add(min((i, j, k, l), (l, k, j, i)))
    return sorted(found)


def most_flexible_dihedrals(traj: Trajectory, count: int = 2, mult: float = 1.2,
                            one_per_bond: bool = True,
                            max_bend: float = 155.0) -> list[tuple[int, int, int, int]]:
    """The ``count`` proper dihedrals with the largest circular variance over the trajectory.

    Bonds come from :func:`covalent_bonds` on frame 0. Dihedrals whose bond angles i-j-k or
    j-k-l average above ``max_bend`` or below 180 − ``max_bend`` degrees are left out: near a
    straight angle a dihedral is ill-defined and its noise would rank first. With
    ``one_per_bond`` only the most variable dihedral about each central bond counts, so that
    the pair spans two rotors (the default pair for a free-energy surface). Where the covalent
    graph has fewer than ``count`` such dihedrals (water clusters, small molecules), the
    donor–acceptor pairs of hydrogen bonds on frame 0 (:func:`hydrogen_bonds`) join the graph
    as bonds. Ranked on at most 10 000 evenly spaced frames. May return fewer than ``count``
    (a water monomer has none).
    """
    step = max(1, int(np.ceil(len(traj) / _MAX_RANKING_FRAMES)))
    r = traj.positions[::step]
    bonds = covalent_bonds(traj, mult=mult)
    donor = {h: d for i, j in bonds for h, d in ((i, j), (j, i)) if traj.numbers[h] == 1}
    hbonds = sorted({tuple(sorted((donor[h], a))) for h, a in hydrogen_bonds(traj, bonds=bonds)})
    ranked: list[tuple[int, int, int, int]] = []
    for graph in (bonds, bonds + [b for b in hbonds if b not in bonds]):
        candidates = np.array(proper_dihedrals(graph), dtype=int).reshape(-1, 4)
        if len(candidates):
            bends = np.stack([_mean_angles(r, candidates[:, :3]),
                              _mean_angles(r, candidates[:, 1:])])
            candidates = candidates[np.all((bends <= max_bend) & (bends >= 180.0 - max_bend),
                                           axis=0)]
        if not len(candidates):
            continue
        variance = circular_variance(_dihedrals(r, candidates), axis=0)
        order = np.argsort(-np.nan_to_num(variance, nan=-1.0), kind="stable")
        ranked, seen = [], set()
        for index in order:
            dih = tuple(int(x) for x in candidates[index])
            centre = frozenset(dih[1:3])
            if one_per_bond and centre in seen:
                continue
            seen.add(centre)
            ranked.append(dih)
        if len(ranked) >= count:
            break
    return ranked[:count]


def _mean_angles(r: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(D,) mean over frames of the angles i-j-k (degrees) for (D, 3) index rows."""
    a, b = r[:, idx[:, 0]] - r[:, idx[:, 1]], r[:, idx[:, 2]] - r[:, idx[:, 1]]
    cos = np.einsum("tdx,tdx->td", a, b) / (np.linalg.norm(a, axis=-1)
                                            * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).mean(axis=0)


# ------------------------------------------------------------------------------ free energy


@dataclass
class FreeEnergySurface:
    """F(φ, ψ) = −kT ln P(φ, ψ) on a periodic grid, in kJ/mol, minimum 0, NaN where unvisited."""

    phi_edges: np.ndarray  #: (B+1,) degrees, −180 .. 180
    psi_edges: np.ndarray  #: (B+1,) degrees, −180 .. 180
    free_energy: np.ndarray  #: (B, B) kJ/mol, indexed [phi bin, psi bin]
    counts: np.ndarray  #: (B, B) samples per bin
    temperature_K: float
    unit: str = "kJ/mol"


def free_energy_surface(phi: np.ndarray, psi: np.ndarray, temperature_K: float,
                        bins: int = 36, min_count: int = 1) -> FreeEnergySurface:
    """Free-energy surface −kT ln P of two angles (degrees, any range: wrapped to ±180).

    P is the 2D histogram density on ``bins`` × ``bins`` cells of [−180, 180)²; F is in
    kJ/mol (k = R = 8.314462618e-3 kJ/(mol K)), shifted so that its minimum is 0; bins with
    fewer than ``min_count`` samples are NaN.
    """
    phi, psi = wrap_degrees(np.ravel(phi)), wrap_degrees(np.ravel(psi))
    if phi.shape != psi.shape:
        raise ValueError(f"phi and psi differ in length: {phi.size} and {psi.size}")
    if not temperature_K > 0:
        raise ValueError(f"temperature must be positive, got {temperature_K} K")
    keep = np.isfinite(phi) & np.isfinite(psi)
    edges = np.linspace(-180.0, 180.0, bins + 1)
    counts, _, _ = np.histogram2d(phi[keep], psi[keep], bins=(edges, edges))
    if counts.sum() == 0:
        raise ValueError("no finite angles to histogram")
    with np.errstate(divide="ignore"):
        f = -R_KJ_MOL_K * temperature_K * np.log(counts / counts.sum())
    f[counts < max(min_count, 1)] = np.nan
    f -= np.nanmin(f)
    return FreeEnergySurface(edges, edges.copy(), f, counts, float(temperature_K))


def _check_same_grid(reference: FreeEnergySurface, prediction: FreeEnergySurface) -> None:
    if (reference.free_energy.shape != prediction.free_energy.shape
            or not np.allclose(reference.phi_edges, prediction.phi_edges)
            or not np.allclose(reference.psi_edges, prediction.psi_edges)):
        raise ValueError("the two free-energy surfaces have different grids")


def fes_difference(reference: FreeEnergySurface,
                   prediction: FreeEnergySurface) -> np.ndarray:
    """(B, B) F_prediction − F_reference in kJ/mol, aligned: free energies are known up to a
    constant, so the reference-population-weighted mean difference is removed. NaN where
    either surface is unvisited."""
    _check_same_grid(reference, prediction)
    diff = prediction.free_energy - reference.free_energy
    both = np.isfinite(diff)
    if not both.any():
        return diff
    weights = reference.counts[both]
    return diff - np.average(diff[both], weights=weights)


def fes_rmsd(reference: FreeEnergySurface, prediction: FreeEnergySurface) -> float:
    """Reference-population-weighted RMS of :func:`fes_difference` (kJ/mol); NaN if no bin is
    visited by both."""
    diff = fes_difference(reference, prediction)
    both = np.isfinite(diff)
    if not both.any():
        return float("nan")
    return float(np.sqrt(np.average(diff[both] ** 2, weights=reference.counts[both])))


# ------------------------------------------------------------------------------ errors, misc


def mae_over_time(pred: Trajectory, ref: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """(T,) position MAE (Å) and (T,) velocity MAE (Å/fs) of each frame, over atoms and axes.

    Lab-frame errors of two trajectories of the same atoms on the same frames.
    """
    if pred.positions.shape != ref.positions.shape:
        raise ValueError(f"trajectories differ in shape: {pred.positions.shape} and "
                         f"{ref.positions.shape}")
    position = np.abs(pred.positions - ref.positions).mean(axis=(1, 2))
    velocity = np.abs(pred.velocities - ref.velocities).mean(axis=(1, 2))
    return position, velocity


def kinetic_temperature(traj: Trajectory, ndof: int | None = None) -> float:
    """Mean kinetic temperature in K, 2·KE / (ndof k_B), over the internal degrees of freedom
    by default (``traj.degrees_of_freedom``: 3N-6 for a molecule, 3N-3 in a periodic cell), as
    a run's summary and ``md.log`` count them; ASE's ``Atoms.get_temperature`` divides by 3N
    (``ndof=3 * traj.n_atoms``) and reads lower for a molecule whose rotation was removed."""
    ndof = traj.degrees_of_freedom if ndof is None else ndof
    return float(np.mean(2.0 * traj.kinetic_energies / (ndof * KB)))
