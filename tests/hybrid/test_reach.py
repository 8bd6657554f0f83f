"""The beyond-reach guard: forecasts may carry a group of atoms only as far from the rest as
the calculator's own frames that the version in use was fitted to had it (plus a margin)."""

from types import SimpleNamespace

import numpy as np
import pytest

from hybridmd.hybrid.dataset import SOURCES, ExpensiveFrames
from hybridmd.hybrid.reach import GAP_MARGIN_A, Excursions, ReachGuard
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
    return SimpleNamespace(version=number, trained=np.array(list(trained), dtype=int))


HOME = [2.0, 2.1, 2.0, 2.2, 2.0]  # a cluster's gaps at rest: thermal noise (2.2 and back)


def test_an_excursion_counts_once_the_calculator_came_back_and_a_version_learned_it():
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, HOME)
    first = _version(1, range(5))
    assert guard.refuses(_apart(2.2 + 0.9 * GAP_MARGIN_A), frames, first) is None
    reason = guard.refuses(_apart(2.2 + 1.1 * GAP_MARGIN_A), frames, first)  # a forecast's end
    assert reason == (f"beyond reach ({2.2 + 1.1 * GAP_MARGIN_A:.2f} Å apart, the calculator's "
                      "frames it learned from 2.20 Å)")
    _label(frames, [2.6, 2.8])  # the calculator's segments from there: out
    second = _version(2, range(7))  # fitted to them while the group is out
    assert guard.refuses(_apart(2.8), frames, second) is not None
    # until the group is back, within half the margin
    assert guard.refuses(_apart(2.2 + 0.9 * GAP_MARGIN_A), frames, second).endswith(
        "2.20 Å, a group still out)")
    assert guard.refuses(_apart(2.2 + 0.4 * GAP_MARGIN_A), frames, second) is None
    _label(frames, [2.4, 2.0])  # and back
    assert guard.refuses(_apart(2.8), frames, second) is None
    assert guard.largest == pytest.approx(2.8)
    assert guard.refuses(_apart(2.8 + 1.1 * GAP_MARGIN_A), frames, second) is not None
    # a version fitted to an even spread that left the excursion out has not learned it
    assert guard.refuses(_apart(2.8), frames, _version(3, [0, 1, 2, 3, 4, 7, 8])) is not None


def test_an_excursion_under_way_does_not_count_even_once_learned():
    """Forecasts resumed at the edge of a group still on its way out would carry it farther
    each time (the ratchet that lost a molecule of methanol in 8 waters): the limit waits for
    the calculator to bring the group back, however gently it drifts, and a monitor's frames
    (re-simulated out of order) do not bring it back."""
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, HOME)
    _label(frames, list(np.linspace(2.21, 4.0, 40)))  # a slow drift out, 0.05 Å a frame
    everything = _version(1, range(len(frames)))
    assert guard.refuses(_apart(2.2), frames, everything) is None
    assert guard.refuses(_apart(2.4), frames, everything) is not None
    # the drift's first frames, within the margin, count; none beyond
    assert guard.largest <= 2.2 + GAP_MARGIN_A and guard.excursions.out
    _label(frames, [2.0], "monitor")  # an earlier ML segment re-simulated: not the way back
    assert guard.refuses(_apart(2.4), frames, _version(2, range(len(frames)))) is not None
    _label(frames, list(np.linspace(3.9, 2.0, 40)))
    assert guard.refuses(_apart(4.0), frames, _version(3, range(len(frames)))) is None


def test_excursions_count_out_and_back_by_more_than_the_margin():
    def confirmed(gaps: list[float], upto: float = 6.0) -> Excursions:
        walk = Excursions(upto)
        walk.walk(np.array(gaps), np.zeros(len(gaps), dtype=np.int8))  # simulated frames
        return walk

    assert confirmed(HOME + [3.0, 2.0]).confirmed == 3.0
    out = confirmed(HOME + [3.0, 3.5])
    assert out.confirmed == 2.2 and out.out and out.since == len(HOME)
    assert confirmed(HOME + [2.25, 2.3, 2.24]).confirmed == 2.2  # within the margin: no excursion
    assert confirmed(HOME + [np.inf, 2.0]).confirmed == 6.0  # back from beyond the reach
    assert confirmed([np.inf, np.inf, 9.0]).confirmed == np.inf  # groups apart from the start
    walk = Excursions(6.0)
    walk.walk(np.array([3.0]), np.full(1, SOURCES.index("check")))
    walk.walk(np.array([3.0] + HOME + [2.6, 2.0]),
              np.array([SOURCES.index(s) for s in ["check"] + ["simulation"] * 5
                        + ["monitor", "simulation"]]))
    assert walk.confirmed == 2.2  # only the calculator's frames in trajectory order are walked


def test_checks_do_not_widen_the_reach_and_groups_apart_from_the_start_are_never_refused():
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, [2.0])
    _label(frames, [3.0], "check")  # where a forecast went
    _label(frames, [3.5], "earlier check")  # where a warm start's earlier run's forecast went
    assert guard.refuses(_apart(2.0 + 2 * GAP_MARGIN_A), frames,
                         _version(1, [0, 1, 2])) is not None
    far, apart = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(far, [8.0, 9.0])  # two molecules beyond the cutoff in the calculator's own frames
    assert apart.refuses(_apart(12.0), far, _version(1, [0, 1])) is None


def test_a_fresh_guard_answers_as_the_one_in_use():
    """Nothing to checkpoint: the limit follows from the version and the frames, so a resumed
    run's guard (made afresh) refuses what the running one would have, a group out included."""
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, HOME + [2.6, 2.4, 2.0, 2.9])  # back from 2.6, out to 2.9
    version = _version(4, range(len(frames)))
    assert guard.refuses(_apart(2.6), frames, version) is None
    fresh = ReachGuard(OPEN, reach_A=4.5)
    for gap in (2.0, 2.6, 2.63, 2.68, 2.75, 3.0):
        assert (fresh.refuses(_apart(gap), frames, version)
                == guard.refuses(_apart(gap), frames, version))
