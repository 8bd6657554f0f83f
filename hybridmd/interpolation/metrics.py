"""Scores of a reconstruction against the reference fine frames, on interior frames only."""

from __future__ import annotations

import numpy as np


def _interior(x: np.ndarray) -> np.ndarray:
    return x[:, 1:-1]


def pair_distances(r: np.ndarray) -> np.ndarray:
    """(..., N(N-1)/2) interatomic distances of (..., N, 3) positions."""
    i, j = np.triu_indices(r.shape[-2], k=1)
    return np.linalg.norm(r[..., i, :] - r[..., j, :], axis=-1)


def reconstruction_errors(pred_r: np.ndarray, pred_v: np.ndarray, ref_r: np.ndarray,
                          ref_v: np.ndarray) -> dict[str, float]:
    """Position MAE (Å), velocity MAE (Å/fs) and interatomic-distance MAE (Å).

    Averaged over the n-1 interior frames of every window, all atoms and components; the end
    frames are the given coarse frames and are left out so they do not dilute the error.
    """
    pr, pv, rr, rv = map(_interior, (pred_r, pred_v, ref_r, ref_v))
    return {
        "position_mae": float(np.abs(pr - rr).mean()),
        "velocity_mae": float(np.abs(pv - rv).mean()),
        "distance_mae": float(np.abs(pair_distances(pr) - pair_distances(rr)).mean()),
    }
