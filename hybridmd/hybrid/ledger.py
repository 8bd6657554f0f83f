"""What a hybrid run has spent and made: expensive calls by purpose, and the run's statistics.

``CallLedger`` charges every call of the expensive calculator to one purpose: ``simulation``
(simulated segments), ``ml_segment_ends`` (forces and energy at the end of a network forecast),
``monitors`` (re-simulated ML segments), ``checks`` (single points at learned ML segment ends)
and ``training`` (calls made only to produce training
data). The driver's calls are counted by the calculator's own counter inside ``charge``, so
every one of them has a purpose; monitors report the calls their own calculators made.
``RunStats`` holds the committed segments, rollbacks, rejected forecasts and the errors seen.
Both are plain data that the checkpoint saves and restores, so a resumed run counts exactly
as the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from hybridmd.hybrid.segments import CallCounter

PURPOSES = ("simulation", "ml_segment_ends", "monitors", "checks", "training")


class CallLedger:
    """Expensive calls by purpose; the driver's are read off its calculator's counter."""

    def __init__(self, counter: CallCounter):
        self.calls: dict[str, int] = dict.fromkeys(PURPOSES, 0)
        self._counter = counter
        #: the driver calculator's calls in this process that were charged (a resumed run
        #: starts a new calculator, so this counts from the resume on)
        self._charged_here = 0
        self._start = counter.calls

    @contextmanager
    def charge(self, purpose: str) -> Iterator[None]:
        """Charge the driver calculator's calls made inside the block to ``purpose``."""
        before = self._counter.calls
        try:
            yield
        finally:
            made = self._counter.calls - before
            self.calls[purpose] += made
            self._charged_here += made

    def add(self, purpose: str, calls: int) -> None:
        """Calls another process's calculator made (a monitor's)."""
        self.calls[purpose] += calls

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def uncharged(self) -> int:
        """Driver calculator calls made outside ``charge`` (0 unless something is wrong)."""
        return self._counter.calls - self._start - self._charged_here

    def row(self) -> dict[str, int]:
        """The running counts for a timeline line."""
        return {"force_calls": self.total - self.calls["monitors"],
                "monitor_calls": self.calls["monitors"]}

    def summary(self, full_simulation: int) -> dict[str, Any]:
        """The ``force_calls`` block of ``summary.json``."""
        return {**self.calls, "total": self.total, "full_simulation": full_simulation,
                "saved_fraction": 1 - self.total / full_simulation}

    def state_dict(self) -> dict[str, int]:
        return dict(self.calls)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.calls = {k: int(state.get(k, 0)) for k in PURPOSES}


@dataclass
class RunStats:
    """Committed segments by origin, rollbacks, rejections, and the errors measured."""

    sim_segments: int = 0
    ml_segments: int = 0
    ml_verified: int = 0  #: committed ML segments a monitor re-simulated
    ml_checked: int = 0  #: committed ML segments whose end a single-point check passed
    rollbacks: int = 0
    discarded_segments: int = 0  #: ML segments thrown away by rollbacks
    rejected: dict[str, int] = field(default_factory=dict)  #: rejected forecasts by check
    shadow_errors: list[float] = field(default_factory=list)
    #: monitored errors: of the segments drawn at random (an unbiased sample of the ML error)
    #: and of those chosen for their uncertainty
    monitor_errors: list[float] = field(default_factory=list)
    uncertain_monitor_errors: list[float] = field(default_factory=list)
    #: single-point checks: the learned force field's largest per-atom force error, eV/Å
    check_errors: list[float] = field(default_factory=list)
    #: and, with an energy tolerance, its energy error after its energy zero, eV per atom
    check_energy_errors: list[float] = field(default_factory=list)
    temperatures: list[float] = field(default_factory=list)  #: per committed frame (arrival)
    first_ml_calls: int | None = None  #: expensive calls spent when ML mode first held

    def reject(self, reason: str) -> None:
        check = reason.split(" (")[0]  # "temperature (H 350 K, ...)" -> the check's name
        self.rejected[check] = self.rejected.get(check, 0) + 1

    def lengths(self) -> dict[str, Any]:
        """A cheap snapshot: scalars copied, lists by length (they only grow)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = len(v) if isinstance(v, list) else (
                dict(v) if isinstance(v, dict) else v)
        return out

    def state_at(self, lengths: dict[str, Any]) -> dict[str, Any]:
        """The stats as they were at a ``lengths`` snapshot, as plain data."""
        return {k: getattr(self, k)[:v] if isinstance(getattr(self, k), list) else v
                for k, v in lengths.items()}
