"""The beyond-reach guard: forecasts may carry a group of atoms only as far from the rest as
the calculator's own frames that the version in use was fitted to had it (plus a margin)."""

from types import SimpleNamespace

import numpy as np
import pytest

from hybridmd.hybrid.dataset import ExpensiveFrames
from hybridmd.hybrid.reach import GAP_MARGIN_A, ReachGuard
from hybridmd.periodic import Cell

OPEN = Cell(np.zeros((3, 3)), (False, False, False))


def _apart(gap: float) -> np.ndarray:
    """Four atoms 1 Å apart on a line and a fifth ``gap`` Å beyond the last."""
    return np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [3 + gap, 0, 0]])


def _label(frames: ExpensiveFrames, gaps: list[float], source: str = "simulation") -> None:
    r = np.stack([_apart(g) for g in gaps])
    frames.add(r, np.zeros_like(r), np.zeros(len(r)), source)


def _version(number: int, trained: list[int]) -> SimpleNamespace:
    """What the guard reads of a learned version: its number and the frames it was fitted to."""
    return SimpleNamespace(version=number, trained=np.array(trained, dtype=int))


def test_an_excursion_of_the_calculators_counts_once_a_version_has_learned_it():
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, [1.5, 2.0])
    first = _version(1, [0, 1])
    assert guard.refuses(_apart(2.0 + 0.9 * GAP_MARGIN_A), frames, first) is None
    reason = guard.refuses(_apart(2.0 + 1.1 * GAP_MARGIN_A), frames, first)  # a forecast's end
    assert reason == (f"beyond reach ({2.0 + 1.1 * GAP_MARGIN_A:.2f} Å apart, the calculator's "
                      "frames it learned from 2.00 Å)")
    _label(frames, [2.6, 2.8, 2.0])  # the calculator's segments from there: out, then back
    assert guard.refuses(_apart(2.8), frames, first) is not None  # not learned yet
    second = _version(2, [0, 1, 2, 3, 4])
    assert guard.refuses(_apart(2.8), frames, second) is None
    assert guard.largest == pytest.approx(2.8)
    assert guard.refuses(_apart(2.8 + 1.1 * GAP_MARGIN_A), frames, second) is not None
    # a version fitted to an even spread that left the excursion out has not learned it
    assert guard.refuses(_apart(2.8), frames, _version(3, [0, 1, 4])) is not None


def test_checks_do_not_widen_the_reach_and_groups_apart_from_the_start_are_never_refused():
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, [2.0])
    _label(frames, [3.0], "check")  # where a forecast went
    _label(frames, [3.5], "earlier check")  # where a warm start's earlier run's forecast went
    assert guard.refuses(_apart(2.0 + 2 * GAP_MARGIN_A), frames,
                         _version(1, [0, 1, 2])) is not None
    far, apart = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(far, [8.0])  # two molecules beyond the cutoff in the calculator's own frames
    assert apart.refuses(_apart(12.0), far, _version(1, [0])) is None


def test_a_fresh_guard_answers_as_the_one_in_use():
    """Nothing to checkpoint: the limit follows from the version and the frames, so a resumed
    run's guard (made afresh) refuses what the running one would have."""
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, [2.0, 2.4])
    version = _version(4, [0, 1])
    assert guard.refuses(_apart(2.45), frames, version) is None
    fresh = ReachGuard(OPEN, reach_A=4.5)
    for gap in (2.0, 2.45, 2.55, 3.0):
        assert (fresh.refuses(_apart(gap), frames, version)
                == guard.refuses(_apart(gap), frames, version))
