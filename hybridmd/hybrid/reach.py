"""Beyond reach: keep a local learned model from carrying a group of atoms away from the rest.

A local model (MACE) feels nothing beyond its cutoff, and little beyond what its frames showed,
where the expensive calculator's long-range attraction still holds a molecule to a cluster; a
single-point check does not see it (the leaving molecule's forces are small in both). The
measure is ``Cell.gap``: the distance that separates the atoms' farthest-apart groups.

``ReachGuard`` compares it with how far the calculator's own dynamics has had a group out, as
far as the model in use has learned it: the largest gap among the frames the version was
fitted to that come from the calculator's dynamics (simulated, monitored, or from an earlier
run; not the frames checks labeled, which are where the forecasts went), leaving out an
excursion still under way (``Excursions``). A forecast is beyond reach when its start or its
end is more than ``GAP_MARGIN_A`` beyond that gap; the segment is simulated instead, and the
next ones too until the group is back, within half the margin. The calculator's segments of
such an excursion are frames like any other: once it has brought the group back and a version
has been fitted to them, forecasts may go where the calculator went (a cluster's molecules
stray 3-5 Å from the rest and return within a picosecond under GFN2-xTB, in some of eight 5 ps
runs: docs/benchmarks/condensed-phase.md). An excursion under way does not count, even once
learned: forecasts resumed at its edge would carry the group a little farther each time (each
ML stretch hands the calculator a group moving out) until it left, as a molecule of methanol
in 8 waters did when they were allowed to. The limit follows from the version and the frames:
nothing to checkpoint.

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

from hybridmd.hybrid.dataset import CHECKS, SOURCES, ExpensiveFrames
from hybridmd.periodic import Cell

if TYPE_CHECKING:
    from hybridmd.hybrid.mace_force_field import MaceModel

#: Å beyond the largest gap between groups of atoms in the calculator's dynamics that a
#: forecast may reach. Small: by the time a young model has taken a water 0.5 Å beyond, it
#: has given it the momentum to leave, and the calculator no longer brings it back (measured
#: on the 8-water cluster, docs/benchmarks/condensed-phase.md)
GAP_MARGIN_A = 0.1
#: the sources whose frames the calculator made in the order of its trajectory: a run's
#: simulated segments and an earlier run's frames (monitors re-simulate segments out of order)
IN_ORDER = (SOURCES.index("simulation"), SOURCES.index("earlier run"))


class Excursions:
    """The calculator's excursions, walked through its frames in the order it made them: one
    begins when a frame's gap is more than ``GAP_MARGIN_A`` beyond the largest gap the
    calculator has come back from (``confirmed``; at first the first frame's), and ends when
    a frame is back within half that margin, its largest gap then confirmed (at most ``upto``,
    a model's reach; a group apart from the start is at home there). Going out and back by
    more than the margin is what counts, so a group drifting out in small steps never comes
    back."""

    def __init__(self, upto: float):
        self.upto = upto
        self.confirmed = 0.0  #: Å: the largest gap the calculator came back from
        self.since: int | None = None  #: the first frame of the excursion under way, or None
        self.walked = 0  #: labeled frames walked through
        self._peak = 0.0  #: the largest gap of the excursion under way
        self._started = False  #: whether a frame has been walked (the first sets ``confirmed``)

    @property
    def out(self) -> bool:
        """Whether an excursion is under way (the calculator has not brought the group back)."""
        return self.since is not None

    def walk(self, gaps: np.ndarray, sources: np.ndarray) -> None:
        """Go on through the labeled frames not walked yet (``gaps`` of all, their sources)."""
        for k in range(self.walked, len(gaps)):
            gap = gaps[k]
            if sources[k] not in IN_ORDER:
                continue
            if not self._started:
                self.confirmed, self._started = gap, True
            elif self.since is None:
                if gap > self.confirmed + GAP_MARGIN_A:
                    self.since, self._peak = k, gap
            else:
                self._peak = max(self._peak, gap)
                if gap <= self.confirmed + GAP_MARGIN_A / 2:
                    self.confirmed = max(self.confirmed, min(self._peak, self.upto))
                    self.since = None
        self.walked = len(gaps)


class ReachGuard:
    """The largest gap of the calculator's dynamics among the frames a version was fitted to,
    an excursion under way left out."""

    def __init__(self, cell: Cell, reach_A: float):
        self.cell = cell
        self.upto = reach_A + GAP_MARGIN_A  #: gaps beyond this are not measured (inf)
        self.excursions = Excursions(self.upto)
        self.largest = 0.0  #: Å, for ``self._measured``
        self._measured: tuple[int, int | None, float] | None = None  #: what ``largest`` is for
        self._gaps = np.zeros(0)  #: the gap of each labeled frame measured so far

    def refuses(self, positions: np.ndarray, dataset: ExpensiveFrames,
                model: MaceModel) -> str | None:
        """Why a frame of a forecast (its start or end) is beyond reach of ``model``, or None."""
        sources = dataset.arrays_sources()
        gaps = self._gaps_of(dataset, sources)
        walk = self.excursions
        walk.walk(gaps, sources)
        if (model.version, walk.since, walk.confirmed) != self._measured:
            trained = model.trained if walk.since is None else model.trained[
                model.trained < walk.since]
            dynamics = gaps[trained[~np.isin(sources[trained], CHECKS)]]
            # beyond the reach only for groups apart from the start
            cap = np.inf if np.isinf(walk.confirmed) else self.upto
            self.largest = float(min(dynamics.max(initial=0.0), cap))
            self._measured = (model.version, walk.since, walk.confirmed)
        gap = self.cell.gap(positions, self.upto)
        if gap <= self.largest + (GAP_MARGIN_A / 2 if walk.out else GAP_MARGIN_A):
            return None
        apart = f"{gap:.2f} Å" if np.isfinite(gap) else f"over {self.upto:g} Å"
        return (f"beyond reach ({apart} apart, the calculator's frames it learned from "
                f"{self.largest:.2f} Å" + (", a group still out)" if walk.out else ")"))

    def _gaps_of(self, dataset: ExpensiveFrames, sources: np.ndarray) -> np.ndarray:
        """The gap of every labeled frame of dynamics, NaN for a check's (measured once:
        labeled frames never change)."""
        positions, done = dataset.arrays()[0], len(self._gaps)
        new = [np.nan if source in CHECKS else self.cell.gap(r, self.upto)
               for r, source in zip(positions[done:], sources[done:], strict=True)]
        self._gaps = np.concatenate([self._gaps, new])
        return self._gaps
