"""Beyond reach: keep a local learned model from carrying a group of atoms away from the rest.

A local model (MACE) feels nothing beyond its cutoff, and little beyond what its frames showed,
where the expensive calculator's long-range attraction still holds a molecule to a cluster; a
single-point check does not see it (the leaving molecule's forces are small in both). The
measure is ``Cell.gap``: the distance that separates the atoms' farthest-apart groups.

``ReachGuard`` compares it with the largest gap among the frames the model in use was fitted
to that come from the calculator's own dynamics (simulated, monitored, or from an earlier run;
not the frames checks labeled, this run's or an earlier run's, which are where the forecasts
went): how far out the model has
seen a group move under the calculator. A forecast is beyond reach when its start or its end is
more than ``GAP_MARGIN_A`` beyond that gap; the segment is simulated instead, and the next ones
too until the group is back within it. The calculator's segments of such an excursion are
frames like any other: once a version has been fitted to them, forecasts may go where the
calculator went (a cluster's molecules stray 3-5 Å from the rest and return within a
picosecond under GFN2-xTB, in some of eight 5 ps runs: docs/benchmarks/condensed-phase.md).
Counting only the frames a version was fitted to keeps forecasts out of a stretch the model
has not learned yet, and leaves nothing to checkpoint: the limit follows from the version and
the frames.

The guard is kept only where a group has somewhere to go: a cluster or a molecule in vacuum, a
periodic cell with room beyond the model's reach (``Cell.widest_space`` of the starting
structure larger than the cutoff: a slab, a cluster in a box). In a filled periodic cell (a
liquid: 3.1 Å for the shipped water boxes against a 4.5 Å cutoff) every molecule has
neighbours within the cutoff, and the gap is the weakest hydrogen bond's thermal stretch,
which the first simulated frames have not yet shown in full: the guard there would refuse
ordinary forecasts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hybridmd.hybrid.dataset import CHECKS, ExpensiveFrames
from hybridmd.periodic import Cell

if TYPE_CHECKING:
    from hybridmd.hybrid.mace_force_field import MaceModel

#: Å beyond the largest gap between groups of atoms in the calculator's dynamics that a
#: forecast may reach. Small: by the time a young model has taken a water 0.5 Å beyond, it
#: has given it the momentum to leave, and the calculator no longer brings it back (measured
#: on the 8-water cluster, docs/benchmarks/condensed-phase.md)
GAP_MARGIN_A = 0.1


class ReachGuard:
    """The largest gap of the calculator's dynamics among the frames a version was fitted to."""

    def __init__(self, cell: Cell, reach_A: float):
        self.cell = cell
        self.upto = reach_A + GAP_MARGIN_A  #: gaps beyond this are not measured (inf)
        self.largest = 0.0  #: Å, for ``self.version``
        self.version: int | None = None  #: the version ``largest`` was measured for

    def refuses(self, positions: np.ndarray, dataset: ExpensiveFrames,
                model: MaceModel) -> str | None:
        """Why a frame of a forecast (its start or end) is beyond reach of ``model``, or None."""
        if model.version != self.version:
            self.largest, self.version = self._measure(dataset, model.trained), model.version
        gap = self.cell.gap(positions, self.upto)
        if gap <= self.largest + GAP_MARGIN_A:
            return None
        apart = f"{gap:.2f} Å" if np.isfinite(gap) else f"over {self.upto:g} Å"
        return (f"beyond reach ({apart} apart, the calculator's frames it learned from "
                f"{self.largest:.2f} Å)")

    def _measure(self, dataset: ExpensiveFrames, trained: np.ndarray) -> float:
        """The largest gap over the ``trained`` frames that are the calculator's dynamics."""
        positions, sources = dataset.arrays()[0], dataset.arrays_sources()
        return max((self.cell.gap(positions[k], self.upto) for k in trained
                    if sources[k] not in CHECKS), default=0.0)
