"""The switch's forecast checks: an element running hot in ML is refused, and counted by name."""

import numpy as np
import pytest
from ase.units import kB

from hybridmd.config import SwitchConfig
from hybridmd.hybrid.equipartition import equipartition_fractions
from hybridmd.hybrid.ledger import RunStats
from hybridmd.hybrid.predictors import Forecast
from hybridmd.hybrid.switch import Switch
from hybridmd.streaming.frames import CoarseFrame

WATER = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
WATER_MASSES, WATER_SYMBOLS = [16.0, 1.008, 1.008], ["O", "H", "H"]
WATERS = 8  # 8 O, 16 H: an element of few atoms is allowed a wider spread (one water below)


def _positions(waters: int) -> np.ndarray:
    """``waters`` waters on a 3 Å grid: a cluster of them."""
    grid = [(i % 2, i // 2 % 2, i // 4) for i in range(waters)]
    return np.concatenate([WATER + 3.0 * np.array(g) for g in grid])


def _momenta(t_o: float, t_h: float, waters: int = WATERS) -> np.ndarray:
    """Momenta that give each atom its equipartition share (rigid-body motion removed) of a
    system at ``t_o`` for the oxygens and ``t_h`` for the hydrogens."""
    masses = np.array(WATER_MASSES * waters)
    f = equipartition_fractions(_positions(waters), masses, "rotation")
    temps = np.array([t_o, t_h, t_h] * waters) * f
    return np.sqrt(masses * kB * temps)[:, None] * np.ones((1, 3))


def _forecast(momenta: np.ndarray) -> tuple[Forecast, CoarseFrame]:
    """An NVE forecast (no energy jump) arriving with ``momenta`` from a start with them."""
    positions = _positions(len(momenta) // 3)
    start = CoarseFrame(index=0, time_fs=0.0, positions=positions, momenta=momenta)
    forecast = Forecast(positions, momenta, np.zeros_like(positions), energy=-1.0,
                        start_energy=-1.0, uncertainty_A=0.0, exact=False)
    return forecast, start


def _switch(window: int, waters: int = WATERS) -> Switch:
    return Switch(SwitchConfig(species_window=window, species_temperature=0.25),
                  np.array(WATER_MASSES * waters), WATER_SYMBOLS * waters, "rotation")


@pytest.mark.parametrize("temperature", [170.0, 300.0, 600.0])
def test_forecasts_in_equipartition_pass_at_any_temperature(temperature):
    """A run warming up from a relaxed start, or hot: every element alike, nothing refused."""
    switch = _switch(window=3)
    for _ in range(5):
        momenta = _momenta(temperature, temperature)
        p1, _, rejected = switch.check(*_forecast(momenta), "disagreement")
        assert rejected is None
        np.testing.assert_allclose(p1, momenta)


def test_hydrogens_running_hot_as_the_oxygen_cools_are_refused_and_counted_by_check():
    """Equipartition broken (O at a third of the system's temperature, H hot): refused."""
    switch, stats = _switch(window=3), RunStats()
    reasons = [switch.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")[2]
               for _ in range(3)]
    assert reasons[:2] == [None, None]  # the window is not full yet
    assert reasons[2].startswith("temperature (O ") and "K, equipartition " in reasons[2]
    stats.reject(reasons[2])
    stats.reject("beyond reach")
    assert stats.rejected == {"temperature": 1, "beyond reach": 1}
    # the history starts again: the next hot forecast alone does not fill the window
    assert switch.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")[2] is None


def test_an_element_of_few_atoms_is_allowed_its_own_dynamics_spread():
    """The imbalance refused in 8 waters is within what one water's 1 O and 2 H share
    unevenly in the calculator's own dynamics (tolerances 1.63 and 1.15); 8 waters' O gets
    0.58, and a large system the configured 0.25."""
    switch = _switch(window=3, waters=1)
    assert switch.species_tolerance["O"] == pytest.approx(2 * np.sqrt(2 / 3))
    for _ in range(6):
        assert switch.check(*_forecast(_momenta(100.0, 475.0, 1)), "disagreement")[2] is None
    assert _switch(window=3).species_tolerance["O"] == pytest.approx(2 * np.sqrt(2 / 24))
    assert _switch(window=3, waters=64).species_tolerance == {"O": 0.25, "H": 0.25}


def test_a_window_survives_a_checkpoint_and_an_older_checkpoints_starts_again():
    """The window of element temperatures is saved and loaded; a checkpoint written with the
    earlier reference (simulated frames' shares) gives an empty window, and nothing fails."""
    switch = _switch(window=3)
    for _ in range(2):
        switch.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")
    state = switch.state_dict()
    again = _switch(window=3)
    again.load_state_dict(state)
    assert again.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")[2] is not None
    older = {**state, "species_reference": [{"O": 3e4, "H": 3e4}, 100],
             "species_history": [{"O": 300.0, "H": 300.0}]}
    again.load_state_dict(older)
    assert not again.species_history
    for _ in range(2):
        assert again.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")[2] is None


def test_the_window_slides_an_element_running_hot_late_in_a_run_is_refused():
    """Forecasts in equipartition fill and pass the window many times over; then the
    hydrogens run hot: refused within a window's length (the check keeps running after its
    window first filled)."""
    switch = _switch(window=3)
    for _ in range(10):
        assert switch.check(*_forecast(_momenta(300.0, 300.0)), "disagreement")[2] is None
    reasons = [switch.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")[2]
               for _ in range(3)]
    assert reasons[-1] is not None and reasons[-1].startswith("temperature (")
