"""Checks that stop a simulation that blew up, before it writes nonsense."""

from __future__ import annotations

import numpy as np

from hybridmd.config import SafetyConfig
from hybridmd.periodic import Cell


def check_state(positions: np.ndarray, forces: np.ndarray, temperature_K: float,
                limits: SafetyConfig, cell: Cell) -> str | None:
    """The first problem found in a state, or None when it looks sane (atoms' distances under
    the minimum image of a periodic ``cell``)."""
    if not np.all(np.isfinite(forces)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(forces))[:, 0]})
        return (f"the calculator returned non-finite forces on atoms {bad}; check the "
                "calculator set-up and the structure (overlapping atoms, wrong units)")
    if not np.all(np.isfinite(positions)):
        return "positions became non-finite; reduce dynamics.timestep_fs"
    if not np.isfinite(temperature_K) or temperature_K > limits.max_temperature_K:
        return (f"temperature {temperature_K:.0f} K exceeds safety.max_temperature_K = "
                f"{limits.max_temperature_K:.0f} K; the dynamics is unstable: reduce "
                "dynamics.timestep_fs, or check the structure and calculator")
    if limits.min_distance_A > 0:
        pair = cell.closest(positions, limits.min_distance_A)
        if pair is not None:
            return (f"two atoms came {pair[2]:.3f} Å apart, below safety.min_distance_A = "
                    f"{limits.min_distance_A} Å; reduce dynamics.timestep_fs or check the "
                    "calculator")
    return None
