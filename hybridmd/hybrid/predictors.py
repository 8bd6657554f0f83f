"""What makes an ML segment: a trained forecaster network, or the force field the run learns.

Both propose the end of the NVE segment that starts at a boundary frame, and say how far off
it may be (an uncertainty in Å, checked against ``switch.disagreement_A`` and used to choose
which segments the monitors re-simulate):

- ``NetworkPredictor``: a forecaster network, one step x(t) -> x(t + Δt). The end's forces and
  energy cost one call of the expensive calculator (``ml_segment_ends``); the uncertainty is
  the forward/backward disagreement (NVE is time-reversible).
- ``LearnedPredictor`` (``forecaster: learn``): the force field learned from the run's
  expensive frames, integrated over the n steps: the end's forces and energy and every fine
  frame come with it, at no expensive call. The uncertainty is the spread of its committee
  at the end, times the ratio of true error to spread seen so far on simulated and monitored
  segments (``ErrorCalibration``), so it reads as a predicted error in Å.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from hybridmd.hybrid.forecaster import Forecaster
from hybridmd.hybrid.ledger import CallLedger
from hybridmd.hybrid.segments import BoundaryFrame, SegmentResult
from hybridmd.hybrid.surrogate import LearnedModel, integrate
from hybridmd.units import FS


@dataclass
class Forecast:
    """A proposed ML segment end (ASE units)."""

    positions: np.ndarray
    momenta: np.ndarray  #: arrival momenta
    forces: np.ndarray
    energy: float  #: potential energy at the end
    start_energy: float  #: potential energy at the start, on the same energy surface
    uncertainty_A: float
    exact: bool  #: forces and energy from the expensive calculator
    segment: SegmentResult | None = None  #: every fine frame, where the predictor made them
    raw_uncertainty: float | None = None  #: the committee's spread before calibration


def max_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance between corresponding atoms, Å."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1).max())


class NetworkPredictor:
    """A trained forecaster network; the end's forces by the expensive calculator."""

    uncertainty_check = "forward/backward disagreement"

    def __init__(self, forecaster: Forecaster, atoms: Atoms, ledger: CallLedger):
        self.forecaster = forecaster
        self.atoms, self.ledger = atoms, ledger
        self.masses = atoms.get_masses()

    ready = True

    @property
    def version(self) -> int | None:
        return None

    def _forecast(self, start: BoundaryFrame) -> tuple[np.ndarray, np.ndarray]:
        m = self.masses[:, None]
        r1, v1 = self.forecaster.predict(start.positions, start.departure / m * FS,
                                         start.forces / m * FS**2)
        return r1, v1 * m / FS

    def forecast(self, start: BoundaryFrame, min_distance_A: float) -> Forecast | str:
        """The forecast, or why there is none."""
        from hybridmd.hybrid.segments import min_distance

        r1, p1 = self._forecast(start)
        if not (np.isfinite(r1).all() and np.isfinite(p1).all()):
            return "forecast not finite"
        if min_distance(r1) < min_distance_A:
            return "closest atoms"
        self.atoms.set_positions(r1)
        with self.ledger.charge("ml_segment_ends"):
            forces = self.atoms.get_forces()
            energy = float(self.atoms.get_potential_energy())
        if not np.isfinite(forces).all():
            return "forces not finite"
        m = self.masses[:, None]
        disagreement = self.forecaster.disagreement(
            start.positions, start.departure / m * FS, r1, p1 / m * FS, forces / m * FS**2)
        return Forecast(r1, p1, forces, energy, start.energy, disagreement, exact=True)

    def shadow(self, start: BoundaryFrame, segment: SegmentResult) -> tuple[float, None]:
        """The forecast's error on a simulated segment (no uncertainty measured)."""
        r1, _ = self._forecast(start)
        return max_distance(r1, segment.positions[-1]), None

    def observe(self, raw_uncertainty: float | None, error: float) -> None:
        """A monitor's verdict (nothing to calibrate for a network)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class ErrorCalibration:
    """Predicted error = spread × the ratio of true error to spread seen lately.

    The ratio is the ``quantile`` of error / spread over the last ``window`` segments where
    both are known (shadowed and monitored ones), kept between ``low`` and ``high``: a
    deterministic function of the run's history.
    """

    def __init__(self, window: int = 20, quantile: float = 0.5, low: float = 1.0,
                 high: float = 20.0):
        self.window, self.quantile, self.low, self.high = window, quantile, low, high
        self.pairs: deque[tuple[float, float]] = deque(maxlen=window)

    def observe(self, spread: float, error: float) -> None:
        self.pairs.append((float(spread), float(error)))

    @property
    def ratio(self) -> float:
        if not self.pairs:
            return self.low
        r = np.quantile([e / max(s, 1e-6) for s, e in self.pairs], self.quantile)
        return float(np.clip(r, self.low, self.high))

    def __call__(self, spread: float) -> float:
        return self.ratio * spread


class LearnedPredictor:
    """The learned force field integrated over the segment; its committee for the doubt."""

    uncertainty_check = "uncertain"

    def __init__(self, masses: np.ndarray, stride: int, dt_fs: float,
                 model: LearnedModel | None = None):
        self.masses = np.asarray(masses, dtype=float)
        self.stride, self.dt = stride, dt_fs * FS
        self.model = model
        self.calibration = ErrorCalibration()

    @property
    def ready(self) -> bool:
        """Whether a version has been taken up (until then every segment is simulated)."""
        return self.model is not None

    @property
    def version(self) -> int | None:
        return None if self.model is None else self.model.version

    def take_up(self, model: LearnedModel) -> None:
        self.model = model

    def _run(self, start: BoundaryFrame) -> tuple[SegmentResult, float]:
        """The main model's segment and the committee's spread at its end."""
        main, *others = self.model.force_fields
        seg = integrate(main, start.positions, start.departure, self.masses, self.stride,
                        self.dt)
        ends = [integrate(ff, start.positions, start.departure, self.masses, self.stride,
                          self.dt).positions[-1] for ff in others]
        return seg, max(max_distance(seg.positions[-1], end) for end in ends)

    def forecast(self, start: BoundaryFrame, min_distance_A: float) -> Forecast | str:
        from hybridmd.hybrid.segments import min_distance

        seg, spread = self._run(start)
        if not (np.isfinite(seg.positions).all() and np.isfinite(seg.momenta).all()):
            return "forecast not finite"
        if min(min_distance(r) for r in seg.positions[1:]) < min_distance_A:
            return "closest atoms"
        return Forecast(seg.positions[-1], seg.momenta[-1], seg.forces, seg.energy,
                        float(seg.energies[0]), self.calibration(spread), exact=False,
                        segment=seg, raw_uncertainty=spread)

    def shadow(self, start: BoundaryFrame, segment: SegmentResult) -> tuple[float, float]:
        """Error and predicted error of the learned segment from a simulated one's start."""
        seg, spread = self._run(start)
        error = max_distance(seg.positions[-1], segment.positions[-1])
        predicted = self.calibration(spread)
        self.calibration.observe(spread, error)
        return error, predicted

    def observe(self, raw_uncertainty: float | None, error: float) -> None:
        if raw_uncertainty is not None:
            self.calibration.observe(raw_uncertainty, error)

    def state_dict(self) -> dict[str, Any]:
        return {"calibration": [list(p) for p in self.calibration.pairs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calibration.pairs.clear()
        self.calibration.pairs.extend(tuple(p) for p in state.get("calibration", []))
