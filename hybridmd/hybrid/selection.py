"""Which ML segments the monitors re-simulate: a random share, and the most uncertain ones.

The random share (``monitor.fraction``, drawn with the run's seed for every ML segment) is an
unbiased sample of the ML error: its monitored errors are what the summary reports as the
monitored forecast error. On top of it, ``monitor.uncertain_fraction`` of the segments are
chosen for their uncertainty: a segment is re-simulated when its uncertainty is above the
(1 - uncertain_fraction) quantile of the uncertainties of the last 2 / uncertain_fraction ML
segments (while fewer have been seen: when it is the largest of them). The window is short so
that the choice follows the ML as it improves: against a long history of a worse model's
uncertainties, an improved model's segments would never look uncertain. Both choices depend
only on the run's history, so one seed gives one trajectory.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class MonitorChoice:
    """Decides, for each accepted ML segment, whether and why it is re-simulated."""

    def __init__(self, fraction: float, uncertain_fraction: float, rng: np.random.Generator):
        self.fraction, self.uncertain_fraction = fraction, uncertain_fraction
        self.rng = rng
        window = max(10, round(2 / uncertain_fraction)) if uncertain_fraction > 0 else 1
        self.recent: deque[float] = deque(maxlen=window)

    def choose(self, uncertainty: float) -> str | None:
        """"random", "uncertain" or None (not monitored)."""
        drawn = self.rng.random() < self.fraction
        uncertain = False
        if self.uncertain_fraction > 0:
            seen = list(self.recent)
            if len(seen) < self.recent.maxlen:
                uncertain = not seen or uncertainty > max(seen)
            else:
                uncertain = uncertainty > np.quantile(seen, 1 - self.uncertain_fraction)
            self.recent.append(float(uncertainty))
        if drawn:
            return "random"
        return "uncertain" if uncertain else None

    def state_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.recent.clear()
        self.recent.extend(state.get("recent", []))
