"""The beyond-reach guard: a group of atoms the learned model carries away is handed back to
the calculator until it returns, and those frames do not widen what counts as reachable."""

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


def test_a_group_carried_out_is_simulated_until_it_is_back_and_does_not_widen_the_reach():
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, [1.5, 2.0])
    assert guard.refuses(_apart(2.0 + 0.9 * GAP_MARGIN_A), frames) is None
    reason = guard.refuses(_apart(2.0 + 1.1 * GAP_MARGIN_A), frames)  # a forecast's end
    assert reason.startswith(f"beyond reach ({2.0 + 1.1 * GAP_MARGIN_A:.2f} Å apart, the "
                             "calculator's dynamics 2.00 Å")
    _label(frames, [2.6, 2.8])  # the calculator's segments from there: the group still out
    assert guard.refuses(_apart(2.8), frames) is not None  # the next forecast's start
    _label(frames, [2.0])
    assert guard.refuses(_apart(2.0), frames) is None  # back: forecasts again
    assert guard.largest == 2.0  # the frames made while it was out did not count
    _label(frames, [2.05])
    assert guard.refuses(_apart(2.05), frames) is None
    assert guard.largest == pytest.approx(2.05)  # frames made while it is in count again


def test_checks_do_not_widen_the_reach_and_groups_apart_from_the_start_are_never_refused():
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, [2.0])
    _label(frames, [3.0], "check")  # where a forecast went
    assert guard.refuses(_apart(2.0 + 2 * GAP_MARGIN_A), frames) is not None
    far, apart = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(far, [8.0])  # two molecules beyond the cutoff in the calculator's own frames
    assert apart.refuses(_apart(12.0), far) is None


def test_the_guard_resumes_where_it_was():
    frames, guard = ExpensiveFrames(5), ReachGuard(OPEN, reach_A=4.5)
    _label(frames, [2.0])
    guard.refuses(_apart(3.0), frames)
    _label(frames, [3.2])
    again = ReachGuard(OPEN, reach_A=4.5)
    again.load_state_dict(guard.state_dict())
    for g in (guard, again):  # both still out: the frame at 3.2 Å does not count
        assert g.refuses(_apart(2.0), frames) is None and g.largest == 2.0
