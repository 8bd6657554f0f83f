"""The switch's forecast checks: an element running hot in ML is refused, and counted by name."""

import numpy as np
import pytest
from ase.units import kB

from hybridmd.config import SwitchConfig
from hybridmd.hybrid.ledger import RunStats
from hybridmd.hybrid.predictors import Forecast
from hybridmd.hybrid.switch import Switch
from hybridmd.streaming.frames import CoarseFrame

WATER_MASSES, WATER_SYMBOLS = [16.0, 1.008, 1.008], ["O", "H", "H"]
WATERS = 8  # 8 O, 16 H: an element of few atoms is allowed a wider spread (one water below)
MASSES = np.array(WATER_MASSES * WATERS)
SYMBOLS = WATER_SYMBOLS * WATERS


def _momenta(t_o: float, t_h: float, waters: int = WATERS) -> np.ndarray:
    """Momenta that give each atom exactly its element's kinetic temperature."""
    temps = np.array([t_o, t_h, t_h] * waters)
    return np.sqrt(np.array(WATER_MASSES * waters) * kB * temps)[:, None] * np.ones((1, 3))


def _forecast(momenta: np.ndarray) -> tuple[Forecast, CoarseFrame]:
    """An NVE forecast (no energy jump) arriving with ``momenta`` from a start with them."""
    water = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    positions = np.concatenate([water + [3.0 * i, 0.0, 0.0] for i in range(len(momenta) // 3)])
    start = CoarseFrame(index=0, time_fs=0.0, positions=positions, momenta=momenta)
    forecast = Forecast(positions, momenta, np.zeros_like(positions), energy=-1.0,
                        start_energy=-1.0, uncertainty_A=0.0, exact=False)
    return forecast, start


def _switch(window: int, waters: int = WATERS) -> Switch:
    switch = Switch(SwitchConfig(species_window=window, species_temperature=0.25),
                    np.array(WATER_MASSES * waters), WATER_SYMBOLS * waters)
    switch.simulated(np.stack([_momenta(300.0, 300.0, waters)] * 100), None)  # the reference
    return switch


def test_forecasts_at_the_simulated_temperatures_pass():
    switch = _switch(window=3)
    for _ in range(5):
        p1, _, rejected = switch.check(*_forecast(_momenta(300.0, 300.0)), "disagreement")
        assert rejected is None
        np.testing.assert_allclose(p1, _momenta(300.0, 300.0))


def test_hydrogens_running_hot_as_the_oxygen_cools_are_refused_and_counted_by_check():
    """Equipartition broken at the same overall temperature (350 K): refused."""
    switch, stats = _switch(window=3), RunStats()
    reasons = [switch.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")[2]
               for _ in range(3)]
    assert reasons[:2] == [None, None]  # the window is not full yet
    assert reasons[2].startswith("temperature (O 100 K, simulation's share 350 K")
    stats.reject(reasons[2])
    stats.reject("beyond reach")
    assert stats.rejected == {"temperature": 1, "beyond reach": 1}
    # the history starts again: the next hot forecast alone does not fill the window
    assert switch.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")[2] is None


def test_a_run_warming_up_from_a_cold_start_is_not_refused():
    """Simulated at 170 K (a relaxed start heating up), then ML at 280 K with every element
    alike: the shares are the simulation's, nothing is refused (temperatures compared
    directly refused it: +65%)."""
    switch = Switch(SwitchConfig(species_window=3, species_temperature=0.25), MASSES, SYMBOLS)
    switch.simulated(np.stack([_momenta(170.0, 170.0)] * 100), None)
    for _ in range(6):
        assert switch.check(*_forecast(_momenta(280.0, 280.0)), "disagreement")[2] is None


def test_an_older_checkpoints_temperatures_start_again():
    """A checkpoint written before all atoms' temperature was kept: reference and window are
    collected afresh (no check until they are full again), and nothing fails."""
    switch = _switch(window=3)
    state = switch.state_dict()
    sums, count = state["species_reference"]
    state["species_reference"] = [{k: v for k, v in sums.items() if k in SYMBOLS}, count]
    state["species_history"] = [{"O": 300.0, "H": 300.0}]
    switch.load_state_dict(state)
    assert switch.species_reference[1] == 0 and not switch.species_history
    for _ in range(4):
        assert switch.check(*_forecast(_momenta(100.0, 475.0)), "disagreement")[2] is None


def test_an_element_of_few_atoms_is_allowed_its_own_dynamics_spread():
    """The imbalance refused in 8 waters (O -71%, H +36%) is within what one water's 1 O and
    2 H share unevenly in the calculator's own dynamics (tolerances 1.63 and 1.15); 8 waters'
    O gets 0.58, and a large system the configured 0.25."""
    switch = _switch(window=3, waters=1)
    assert switch.species_tolerance["O"] == pytest.approx(2 * np.sqrt(2 / 3))
    for _ in range(6):
        assert switch.check(*_forecast(_momenta(100.0, 475.0, 1)), "disagreement")[2] is None
    assert _switch(window=3).species_tolerance["O"] == pytest.approx(2 * np.sqrt(2 / 24))
    assert _switch(window=3, waters=64).species_tolerance == {"O": 0.25, "H": 0.25}
