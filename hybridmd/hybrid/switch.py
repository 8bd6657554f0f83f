"""The adaptive switch: when the driver trusts the ML, and the checks every forecast must pass.

In ``sim`` mode the ML predicts each simulated segment in the shadow; after
``verified_segments`` shadow forecasts within ``tolerance_A`` in a row (``reentry_segments``
after an ML run that ended by a rejected forecast or by its length) the driver enters ``ml``
mode; with none needed (a learned force field under single-point checks) the loop enters it
as soon as a version is there (``enter_ml``). A forecast is rejected, and the driver goes back
to simulation, when its uncertainty exceeds ``disagreement_A``, when it is not an NVE segment
within ``energy_jump_eV``, or when an element's mean kinetic temperature over the last
``species_window`` ML segments drifts from what equipartition gives it at those segments'
temperature (one element hot, another cold; :mod:`hybridmd.hybrid.equipartition`). Against
equipartition, not the simulated frames: a run heating up from a relaxed start changes every
element alike, and a cold start's few simulated frames are no reference. An element of few
atoms shares its energy unevenly for picoseconds in the calculator's own dynamics too, so its
tolerance is at least ``SHARE_SPREAD`` standard deviations of one frame's element temperature,
sqrt(2 / (3 n)) for n atoms. A forecast
that passes gets the start's total energy exactly (its momenta rescaled), so forecast errors
cannot heat or cool the system.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import numpy as np

from hybridmd.config import SwitchConfig
from hybridmd.hybrid.equipartition import Removed, element_temperatures
from hybridmd.hybrid.predictors import Forecast
from hybridmd.hybrid.segments import kinetic_energy
from hybridmd.streaming.frames import CoarseFrame

#: an element's tolerance, at least, in units of sqrt(2 / (3 n)) (the relative standard deviation
#: of one frame's kinetic temperature of n atoms): ``benchmarks/species_check.py`` measured the
#: deviations of full simulations' 50-segment windows from equipartition at up to 1.6 units
#: (malonaldehyde, 8 waters, methanol in 8 waters): slow energy exchange inside a molecule
SHARE_SPREAD = 2.0


class Switch:
    """Mode, the streak of good shadow forecasts, and the forecast checks."""

    def __init__(self, cfg: SwitchConfig, masses: np.ndarray, symbols: list[str],
                 removed: Removed):
        self.cfg = cfg
        self.masses, self.symbols, self.removed = masses, symbols, removed
        #: each element's largest relative deviation of its share
        self.species_tolerance = {
            s: max(cfg.species_temperature, SHARE_SPREAD * np.sqrt(2 / (3 * symbols.count(s))))
            for s in dict.fromkeys(symbols)}
        self.mode = "sim"
        self.streak = 0  #: consecutive good shadow forecasts
        self.needed = cfg.verified_segments  #: good shadow forecasts needed to enter ML mode
        self.ml_run = 0  #: length of the current ML run
        #: each accepted ML segment's element temperatures: (its own, equipartition's)
        self.species_history: deque[dict[str, list[float]]] = deque(maxlen=cfg.species_window)

    def simulated(self, shadow_error: float | None) -> bool:
        """Account for a simulated segment; True when ML mode starts after it."""
        if shadow_error is None:
            return False
        good = shadow_error <= self.cfg.tolerance_A
        self.streak = self.streak + 1 if good else 0
        if not good:  # a forecast beyond tolerance: ML only after good ones, at least one
            self.needed = max(self.cfg.verified_segments, 1)
        if self.streak >= self.needed:
            self.mode, self.ml_run = "ml", 0
            return True
        return False

    def check(self, forecast: Forecast, start: CoarseFrame, uncertainty_check: str,
              doubt_checked: bool = False
              ) -> tuple[np.ndarray | None, dict[str, float], str | None]:
        """The forecast's end momenta at the start's total energy, the checks' numbers, and
        the check that rejected it (None: accepted). ``doubt_checked``: an uncertainty beyond
        ``disagreement_A`` does not reject; the caller checks such a forecast itself."""
        sw, m = self.cfg, self.masses
        e0 = forecast.start_energy + kinetic_energy(start.momenta, m)
        info = {"uncertainty_A": forecast.uncertainty_A,
                "energy_jump_eV": forecast.energy + kinetic_energy(forecast.momenta, m) - e0}
        if e0 - forecast.energy <= 0:
            return None, info, "energy jump"
        if forecast.uncertainty_A > sw.disagreement_A and not doubt_checked:
            return None, info, uncertainty_check
        if abs(info["energy_jump_eV"]) > sw.energy_jump_eV:
            return None, info, "energy jump"
        p1 = forecast.momenta * np.sqrt((e0 - forecast.energy)
                                        / kinetic_energy(forecast.momenta, m))
        temps = {s: list(t) for s, t in element_temperatures(
            p1, forecast.positions, m, self.symbols, self.removed).items()}
        history = [*self.species_history, temps][-sw.species_window:]  # the window slides
        if len(history) == sw.species_window:
            for s, tolerance in self.species_tolerance.items():
                mean, expected = np.mean([h[s] for h in history], axis=0)
                if abs(mean / expected - 1) > tolerance:
                    self.species_history.clear()
                    return None, info, (f"temperature ({s} {mean:.0f} K, equipartition "
                                        f"{expected:.0f} K)")
        self.species_history.append(temps)
        return p1, info, None

    def withdraw(self) -> None:
        """Forget the last accepted forecast's temperatures (a check rejected it after all)."""
        if self.species_history:
            self.species_history.pop()

    def forecast_taken(self) -> bool:
        """Count an accepted ML segment; True when the ML run has reached its longest."""
        self.ml_run += 1
        return self.ml_run >= self.cfg.max_ml_segments

    def enter_ml(self) -> None:
        """ML mode without a shadow forecast (a refitted model under checks of every segment)."""
        self.mode, self.streak, self.ml_run = "ml", 0, 0

    def leave_ml(self, needed: int) -> None:
        self.mode, self.streak, self.ml_run, self.needed = "sim", 0, 0, needed

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "streak": self.streak, "needed": self.needed,
                "ml_run": self.ml_run, "species_history": copy.deepcopy(list(self.species_history))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mode, self.streak, self.needed = state["mode"], state["streak"], state["needed"]
        self.ml_run = state["ml_run"]
        self.species_history.clear()
        if "species_reference" not in state:  # an older checkpoint's window: it starts again
            self.species_history.extend(state["species_history"])
