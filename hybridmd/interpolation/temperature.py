"""Window temperatures: the range an interpolator was trained on, and data that leave it.

A window's temperature is the mean kinetic temperature of its coarse context frames,
2·KE / (3N k_B) as ASE's ``Atoms.get_temperature``: it is known wherever the model is used (the
fine frames are what it makes). Interpolators degrade fast on windows hotter than their
training data, so a checkpoint records the range its training windows covered and users are
told when their data lie outside it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybridmd.units import FS, KB

log = logging.getLogger(__name__)

#: percentiles of the training windows' temperatures recorded as the model's range
RANGE_PERCENTILES = (1.0, 99.0)
#: share of windows outside the range above which users are warned
WARN_SHARE = 0.05
#: a window counts as outside only beyond the range widened by this fraction of its bounds:
#: the error grows smoothly with temperature, a few K past the 99th percentile is no news
MARGIN = 0.1


def context_temperatures(v: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """(B,) temperatures in K of windows' coarse context velocities ``v`` (B, 2C, N, 3) Å/fs."""
    v_ase = np.asarray(v) / FS  # Å/fs -> Å per ASE time unit
    ke = 0.5 * np.einsum("n,bcnk,bcnk->bc", masses, v_ase, v_ase)  # eV per frame
    return (2.0 * ke / (3 * len(masses) * KB)).mean(axis=1)


def temperature_range(temps: np.ndarray) -> list[float]:
    """The [low, high] range (K) a model trained on windows of these temperatures covers."""
    lo, hi = np.percentile(temps, RANGE_PERCENTILES)
    return [round(float(lo), 1), round(float(hi), 1)]


@dataclass
class RangeCheck:
    """How much of some data lies outside a model's training temperature range."""

    model_range: list[float]
    outside: int
    total: int
    data_min: float
    data_max: float

    @property
    def share(self) -> float:
        return self.outside / self.total if self.total else 0.0

    def message(self, model: str, data: str) -> str:
        lo, hi = self.model_range
        where = (f"the window of {data} ({self.data_min:.0f} K) lies" if self.total == 1 else
                 f"{self.share:.0%} of the windows of {data} ({self.data_min:.0f}-"
                 f"{self.data_max:.0f} K) lie")
        return (f"{where} outside the temperatures {model} was trained on "
                f"({lo:.0f}-{hi:.0f} K); its error there is not measured: check it with "
                "`hybridmd evaluate` on a reference at that temperature, or fine-tune it "
                "(`hybridmd train --from`)")


def check_range(metadata: dict[str, Any], temps: np.ndarray) -> RangeCheck | None:
    """The range check of windows at ``temps`` against a model's metadata, widened by
    ``MARGIN`` (None if it has no recorded range: checkpoints made before ranges were
    recorded)."""
    model_range = metadata.get("temperature_range_K")
    if model_range is None or not len(temps):
        return None
    lo, hi = model_range
    outside = int(np.count_nonzero((temps < lo * (1 - MARGIN)) | (temps > hi * (1 + MARGIN))))
    return RangeCheck(list(model_range), outside, len(temps), float(temps.min()),
                      float(temps.max()))


def warn_outside(metadata: dict[str, Any], temps: np.ndarray, data: str) -> RangeCheck | None:
    """Log a warning when more than ``WARN_SHARE`` of the windows leave the model's range."""
    check = check_range(metadata, temps)
    if check is not None and check.share > WARN_SHARE:
        log.warning(check.message(metadata.get("checkpoint", "the model"), data))
    return check
