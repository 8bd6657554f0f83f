"""Beyond reach: keep a local learned model from carrying a group of atoms away from the rest.

A local model (MACE) feels nothing beyond its cutoff, and little beyond what its frames showed,
where the expensive calculator's long-range attraction still holds a molecule to a cluster; a
single-point check does not see it (the leaving molecule's forces are small in both). The
measure is ``Cell.gap``: the distance that separates the atoms' farthest-apart groups.

``ReachGuard`` compares it with the largest gap in frames of the calculator's own dynamics
(simulated, monitored, or from an earlier run; not the frames checks labeled, which are where
the forecasts went). A forecast is beyond reach when its start or its end is more than
``GAP_MARGIN_A`` beyond that largest gap; the segment is simulated instead, and the next ones
too until the calculator has brought the group back. Frames labeled while a group is out do
not widen the largest gap: they are the calculator's dynamics from where a forecast took the
group, and counting them would let each excursion go a little farther than the last.

The guard is kept only where a group has somewhere to go: a cluster or a molecule in vacuum, a
periodic cell with room beyond the model's reach (``Cell.widest_space`` of the starting
structure larger than the cutoff: a slab, a cluster in a box). In a filled periodic cell (a
liquid: 3.1 Å for the shipped water boxes against a 4.5 Å cutoff) every molecule has
neighbours within the cutoff, and the gap is the weakest hydrogen bond's thermal stretch,
which the first simulated frames have not yet shown in full: the guard there would refuse
ordinary forecasts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hybridmd.hybrid.dataset import SOURCES, ExpensiveFrames
from hybridmd.periodic import Cell

#: Å beyond the largest gap between groups of atoms in the calculator's dynamics that a
#: forecast may reach. Small: by the time a young model has taken a water 0.5 Å beyond, it
#: has given it the momentum to leave, and the calculator no longer brings it back (measured
#: on the 8-water cluster, docs/benchmarks/condensed-phase.md)
GAP_MARGIN_A = 0.1


class ReachGuard:
    """The largest gap the calculator's dynamics showed, and whether a group is out now."""

    def __init__(self, cell: Cell, reach_A: float):
        self.cell = cell
        self.upto = reach_A + GAP_MARGIN_A  #: gaps beyond this are not measured (inf)
        self.largest = 0.0  #: largest gap in the counted frames, Å
        self.counted = 0  #: labeled frames looked at so far (the dataset only grows)
        self.out = False  #: the last forecast was refused as beyond reach

    def refuses(self, positions: np.ndarray, dataset: ExpensiveFrames) -> str | None:
        """Why a frame of a forecast (its start or end) is beyond reach, or None."""
        self._count(dataset)
        gap, limit = self.cell.gap(positions, self.upto), self.largest + GAP_MARGIN_A
        self.out = gap > limit
        if not self.out:
            return None
        apart = f"{gap:.2f} Å" if np.isfinite(gap) else f"over {self.upto:g} Å"
        return f"beyond reach ({apart} apart, the calculator's dynamics {self.largest:.2f} Å)"

    def _count(self, dataset: ExpensiveFrames) -> None:
        """Fold in the frames labeled since the last look (none of them while a group is out)."""
        if len(dataset) == self.counted:
            return
        positions, sources = dataset.arrays()[0], dataset.arrays_sources()
        if not self.out:
            for k in range(self.counted, len(dataset)):
                if SOURCES[sources[k]] != "check":
                    self.largest = max(self.largest, self.cell.gap(positions[k], self.upto))
        self.counted = len(dataset)

    def state_dict(self) -> dict[str, Any]:
        return {"largest": self.largest, "counted": self.counted, "out": self.out}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.largest, self.counted, self.out = state["largest"], state["counted"], state["out"]
