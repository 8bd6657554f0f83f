"""Which ML segments are monitored: the random share and the uncertain ones."""

from __future__ import annotations

import numpy as np

from hybridmd.hybrid.selection import MonitorChoice


def test_the_random_share_is_drawn_for_every_segment_whatever_the_uncertainty():
    choice = MonitorChoice(0.1, 0.0, np.random.default_rng(0))
    picks = [choice.choose(u) for u in np.linspace(0, 1, 5000)]
    assert set(picks) <= {"random", None}
    assert abs(picks.count("random") / 5000 - 0.1) < 0.02


def test_the_uncertain_share_follows_an_improving_model():
    """After a long run of a poor model, a better one's most uncertain segments are still
    picked at the configured share (a quantile over a short window, not the whole run)."""
    rng = np.random.default_rng(1)
    choice = MonitorChoice(0.0, 0.05, np.random.default_rng(2))
    for u in rng.uniform(0.05, 0.1, 500):  # the poor model
        choice.choose(u)
    better = rng.uniform(0.005, 0.01, 2000)
    picks = [choice.choose(u) for u in better]
    share = picks.count("uncertain") / len(picks)
    assert 0.02 < share < 0.1
    chosen = better[[p == "uncertain" for p in picks]]
    assert np.median(chosen) > np.quantile(better, 0.8)


def test_choice_state_round_trips():
    a = MonitorChoice(0.0, 0.1, np.random.default_rng(3))
    for u in np.linspace(0, 1, 30):
        a.choose(u)
    b = MonitorChoice(0.0, 0.1, np.random.default_rng(3))
    b.load_state_dict(a.state_dict())
    assert list(b.recent) == list(a.recent)
