"""Two independent trajectories of one molecule, compared by their distributions.

Chaos separates any two runs within a picosecond, so a hybrid run is judged against a full
simulation by what it samples: the vibrational density of states (overlap of the normalised
spectra, at a few lengths of the velocity autocorrelation, since finer spectra are noisier),
and the Jensen-Shannon divergences (bits) of the pair-distance (h(r)) and speed distributions;
for two periodic trajectories (a liquid), also the partial g(r) of every element pair.
Two full simulations with different seeds give the floor of these scores for their length.
"""

from __future__ import annotations

import numpy as np

from hybridmd.analysis.observables import (
    jensen_shannon,
    pair_distance_distribution,
    speed_distribution,
    vdos,
    vdos_overlap,
)
from hybridmd.analysis.rdf import common_rdfs, rdf_scores
from hybridmd.interpolation.metrics import pair_distances
from hybridmd.trajectory import Trajectory

#: lengths of the velocity autocorrelation for the VDOS overlaps, fs
VACF_LAGS_FS = (250.0, 500.0, 1000.0)


def _edges(a: np.ndarray, b: np.ndarray, bins: int) -> np.ndarray:
    """Common bins covering both samples (to their 99.9th percentiles, with a margin)."""
    top = 1.2 * max(np.quantile(a, 0.999), np.quantile(b, 0.999))
    return np.linspace(0.0, top, bins + 1)


def _pair_distances(traj: Trajectory) -> np.ndarray:
    return pair_distances(traj.positions).ravel()


def _speeds(traj: Trajectory) -> np.ndarray:
    return np.linalg.norm(traj.velocities, axis=-1).ravel()


def distribution_scores(reference: Trajectory, other: Trajectory,
                        lags_fs: tuple[float, ...] = VACF_LAGS_FS) -> dict[str, float]:
    """VDOS overlaps (``vdos_overlap_<lag>fs``), ``hr_js_bits`` and ``speed_js_bits``; where
    both are periodic, ``gr_js_bits_<pair>`` and ``gr_rms_<pair>`` of every element pair
    (e.g. ``gr_js_bits_O-O``: :func:`~hybridmd.analysis.rdf.rdf_scores`)."""
    edges_r = _edges(_pair_distances(reference), _pair_distances(other), 200)
    edges_v = _edges(_speeds(reference), _speeds(other), 120)
    lags = {f"vdos_overlap_{lag:g}fs": round(lag / reference.dt_fs) for lag in lags_fs}
    scores = {
        **{k: vdos_overlap(vdos(reference, n), vdos(other, n)) for k, n in lags.items()},
        "hr_js_bits": jensen_shannon(pair_distance_distribution(reference, edges_r),
                                     pair_distance_distribution(other, edges_r)),
        "speed_js_bits": jensen_shannon(speed_distribution(reference, edges_v),
                                        speed_distribution(other, edges_v)),
    }
    if reference.periodic and other.periodic:
        for label, (a, b) in common_rdfs(reference, other).items():
            for key, value in rdf_scores(a, b).items():
                scores[f"gr_{key}_{label}"] = value
    return scores
