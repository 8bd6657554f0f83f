"""Classical interpolants with the common interpolator interface: the honest baselines.

- linear: r and v each interpolated linearly between the two ends;
- cubic Hermite: r and v at both ends (exact for cubic motion);
- quintic Hermite: r, v and a at both ends (a = F/m from the coarse frames' forces).
"""

from __future__ import annotations

import numpy as np

from hybridmd.interpolation.windows import Windows


def _quintic_basis(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights of (r0, h·v0, h²·a0, r1, h·v1, h²·a1) and their s-derivatives, each (S, 6)."""
    s2, s3, s4, s5 = s**2, s**3, s**4, s**5
    w = np.stack([
        1 - 10 * s3 + 15 * s4 - 6 * s5,
        s - 6 * s3 + 8 * s4 - 3 * s5,
        0.5 * s2 - 1.5 * s3 + 1.5 * s4 - 0.5 * s5,
        10 * s3 - 15 * s4 + 6 * s5,
        -4 * s3 + 7 * s4 - 3 * s5,
        0.5 * s3 - s4 + 0.5 * s5,
    ], axis=1)
    dw = np.stack([
        -30 * s2 + 60 * s3 - 30 * s4,
        1 - 18 * s2 + 32 * s3 - 15 * s4,
        s - 4.5 * s2 + 6 * s3 - 2.5 * s4,
        30 * s2 - 60 * s3 + 30 * s4,
        -12 * s2 + 28 * s3 - 15 * s4,
        1.5 * s2 - 4 * s3 + 2.5 * s4,
    ], axis=1)
    return w, dw


def _cubic_basis(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights of (r0, h·v0, 0, r1, h·v1, 0) and their s-derivatives, each (S, 6)."""
    s2, s3, zero = s**2, s**3, np.zeros_like(s)
    w = np.stack([2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, zero,
                  -2 * s3 + 3 * s2, s3 - s2, zero], axis=1)
    dw = np.stack([6 * s2 - 6 * s, 3 * s2 - 4 * s + 1, zero,
                   -6 * s2 + 6 * s, 3 * s2 - 2 * s, zero], axis=1)
    return w, dw


def hermite_weights(stride: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n+1, 6) of (r0, h·v0, h²·a0, r1, h·v1, h²·a1) for r, and their s-derivatives."""
    if order not in (3, 5):
        raise ValueError(f"Hermite order must be 3 or 5, got {order}")
    s = np.arange(stride + 1) / stride
    return (_quintic_basis if order == 5 else _cubic_basis)(s)


def hermite(windows: Windows, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Cubic (order 3) or quintic (order 5) Hermite r and v at the n+1 fine times of each window."""
    n, h = windows.stride, windows.stride * windows.dt_fs
    w, dw = hermite_weights(n, order)
    r0, v0, a0, r1, v1, a1 = windows.endpoints
    ends = np.stack([r0, h * v0, h * h * a0, r1, h * v1, h * h * a1], axis=1)  # (B, 6, N, 3)
    r = np.einsum("sk,bknx->bsnx", w, ends)
    v = np.einsum("sk,bknx->bsnx", dw, ends) / h
    return r, v


def linear(windows: Windows) -> tuple[np.ndarray, np.ndarray]:
    """r and v each on straight lines between their values at the two ends."""
    s = (np.arange(windows.stride + 1) / windows.stride)[None, :, None, None]
    r0, v0, _, r1, v1, _ = windows.endpoints
    return (1 - s) * r0[:, None] + s * r1[:, None], (1 - s) * v0[:, None] + s * v1[:, None]


class ClassicalInterpolator:
    """A classical baseline behind the same interface as the neural models."""

    def __init__(self, kind: str):
        if kind not in ("linear", "cubic", "quintic"):
            raise ValueError(f"unknown classical interpolant {kind!r}: linear, cubic or quintic")
        self.kind = kind
        self.name = {"linear": "linear", "cubic": "cubic Hermite",
                     "quintic": "quintic Hermite"}[kind]
        self.context = 1

    def interpolate(self, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
        """(B, n+1, N, 3) positions (Å) and velocities (Å/fs) over each window."""
        if self.kind == "linear":
            return linear(windows)
        return hermite(windows, 3 if self.kind == "cubic" else 5)
