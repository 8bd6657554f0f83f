"""The ML segment makers: a trained forecaster network, or the force field the run learns.

Both propose the end of the NVE segment that starts at a boundary frame, and say how far off
it may be (an uncertainty in Å, checked against ``switch.disagreement_A`` and used to choose
which segments the monitors re-simulate):

- ``NetworkForecaster``: a forecaster network, one step x(t) -> x(t + Δt). The end's forces and
  energy cost one call of the expensive calculator (``ml_segment_ends``); the uncertainty is
  the forward/backward disagreement (NVE is time-reversible).
- ``LearnedForceField`` (``forecaster: learn``): the force field learned from the run's
  expensive frames, integrated over the n steps: the end's forces and energy and every fine
  frame come with it, at no expensive call. The uncertainty is the spread of its committee
  at the end, times the ratio of true error to spread seen so far on simulated and monitored
  segments (``ErrorCalibration``), so it reads as a predicted error in Å. It owns the frames
  the expensive calculator labeled and the background learner that fits new versions.

Each keeps its own state for the checkpoint: ``snapshot`` (cheap, at every quiet point),
``saved`` (what of a snapshot goes to disk) and ``restore``. The loop calls the same hooks on
either: ``labeled`` (frames of the expensive calculator), ``simulated`` (a simulated segment,
for fine-tuning) and ``at_boundary`` (versions taken up and asked for).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from hybridmd.config import FineTuneConfig
from hybridmd.hybrid.dataset import ExpensiveFrames
from hybridmd.hybrid.force_field import FitSettings, LearnedModel, learned_atoms
from hybridmd.hybrid.forecaster import Forecaster
from hybridmd.hybrid.learned_file import save_learned
from hybridmd.hybrid.learner import FitFailure, Learner
from hybridmd.hybrid.ledger import CallLedger
from hybridmd.hybrid.mace_force_field import MaceModel, MaceSettings
from hybridmd.hybrid.reach import ReachGuard
from hybridmd.hybrid.segments import SegmentResult, SegmentSimulator
from hybridmd.periodic import Cell
from hybridmd.streaming.frames import CoarseFrame
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


class NetworkForecaster:
    """A trained forecaster network; the end's forces by the expensive calculator.

    With ``fine_tune`` it keeps (r0, v0, a0, r1, v1) of every simulated segment and tunes the
    network on all of them each time ``every_segments`` new ones are in.
    """

    uncertainty_check = "forward/backward disagreement"
    learns = False
    ready = True

    def __init__(self, forecaster: Forecaster, atoms: Atoms, ledger: CallLedger,
                 fine_tune: FineTuneConfig | None = None, seed: int = 0):
        self.forecaster = forecaster
        self.atoms, self.ledger = atoms, ledger
        self.masses = atoms.get_masses()
        self.cell = Cell.of(atoms)
        self.fine_tune, self.seed = fine_tune, seed
        self.tune_pairs: list[tuple[np.ndarray, ...]] = []
        self.tuned_at, self.tunes = 0, 0  #: pairs the last tuning used; tunings so far
        self.tuned_state: dict[str, Any] | None = None  #: the weights after the last tuning

    @property
    def version(self) -> int | None:
        return None

    def _forecast(self, start: CoarseFrame) -> tuple[np.ndarray, np.ndarray]:
        m = self.masses[:, None]
        r1, v1 = self.forecaster.predict(start.positions, start.momenta / m * FS,
                                         start.forces / m * FS**2)
        return r1, v1 * m / FS

    def forecast(self, start: CoarseFrame, min_distance_A: float) -> Forecast | str:
        """The forecast, or why there is none."""
        r1, p1 = self._forecast(start)
        if not (np.isfinite(r1).all() and np.isfinite(p1).all()):
            return "forecast not finite"
        if self.cell.closest(r1, min_distance_A) is not None:
            return "closest atoms"
        self.atoms.set_positions(r1)
        with self.ledger.charge("ml_segment_ends"):
            forces = self.atoms.get_forces()
            energy = float(self.atoms.get_potential_energy())
        if not np.isfinite(forces).all():
            return "forces not finite"
        m = self.masses[:, None]
        disagreement = self.forecaster.disagreement(
            start.positions, start.momenta / m * FS, r1, p1 / m * FS, forces / m * FS**2)
        return Forecast(r1, p1, forces, energy, start.energy, disagreement, exact=True)

    def shadow(self, start: CoarseFrame, segment: SegmentResult) -> tuple[float, None]:
        """The forecast's error on a simulated segment (no uncertainty measured)."""
        r1, _ = self._forecast(start)
        return max_distance(r1, segment.positions[-1]), None

    def observe(self, raw_uncertainty: float | None, error: float) -> None:
        """A monitor's verdict (nothing to calibrate for a network)."""

    def labeled(self, positions: np.ndarray, forces: np.ndarray, energies: np.ndarray,
                source: str) -> None:
        """Frames of the expensive calculator (a network does not learn from them)."""

    def at_boundary(self, steps: int) -> str | None:
        """Nothing is taken up between segments."""
        return None

    def simulated(self, start: CoarseFrame, end: CoarseFrame) -> str | None:
        """Keep a simulated segment for fine-tuning; tune when enough are new (then say so)."""
        ft = self.fine_tune
        if ft is None:
            return None
        m = self.masses[:, None]
        self.tune_pairs.append((start.positions, start.momenta / m * FS,
                                start.forces / m * FS**2, end.positions, end.arrival / m * FS))
        if len(self.tune_pairs) - self.tuned_at < ft.every_segments:
            return None
        r0, v0, a0, r1, v1 = (np.array(x) for x in zip(*self.tune_pairs, strict=True))
        before, after = self.forecaster.fine_tune(
            r0, v0, a0, r1, v1, ft.epochs, ft.learning_rate, ft.batch_size,
            seed=self.seed * 1000 + self.tunes)
        self.tuned_at, self.tunes = len(self.tune_pairs), self.tunes + 1
        self.tuned_state = {k: v.detach().clone()
                            for k, v in self.forecaster.net.state_dict().items()}
        return f"{len(r0)} simulated segments; loss {before:.3g} -> {after:.3g}"

    def snapshot(self) -> dict[str, Any]:
        return {"pairs": len(self.tune_pairs), "tuned_at": self.tuned_at, "tunes": self.tunes,
                "tuned_state": self.tuned_state}

    def saved(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return {**snapshot, "pairs": self.tune_pairs[:snapshot["pairs"]]}

    def restore(self, saved: dict[str, Any]) -> None:
        self.tune_pairs = saved["pairs"]
        self.tuned_at, self.tunes = saved["tuned_at"], saved["tunes"]
        self.tuned_state = saved["tuned_state"]
        if self.tuned_state is not None:
            self.forecaster.net.load_state_dict(self.tuned_state)

    def close(self) -> None:
        """Nothing runs in the background."""


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


class LearnedForceField:
    """The learned force field integrated over the segment; its committee for the doubt.

    It owns the frames the expensive calculator labeled (``dataset``) and the ``learner`` that
    fits versions from them; ``learned_from`` says which earlier run's file it started from.
    """

    uncertainty_check = "uncertain"
    learns = True

    def __init__(self, numbers: np.ndarray, masses: np.ndarray, cell: Cell, stride: int,
                 dt_fs: float, settings: FitSettings | MaceSettings, learner: Learner,
                 dataset: ExpensiveFrames, model: LearnedModel | MaceModel | None = None,
                 learned_from: dict[str, Any] | None = None, space_A: float = float("inf")):
        self.numbers = np.asarray(numbers)
        self.cell = cell
        #: the widest empty space of the starting structure (``Cell.widest_space``): where
        #: it is within a local model's reach (a filled periodic cell) no group can leave
        self.space_A = space_A
        self.masses = np.asarray(masses, dtype=float)
        self.stride, self.dt_fs = stride, dt_fs
        self.settings, self.learner, self.dataset = settings, learner, dataset
        self.model = model
        self.learned_from = learned_from
        #: for a local model: refuses forecasts that carry a group of atoms beyond its reach
        self.reach_guard: ReachGuard | None = None
        self.calibration = ErrorCalibration()
        #: a segment simulator for each of the version's models (main first), made at first use
        self._simulators: tuple[LearnedModel | MaceModel, list[SegmentSimulator]] | None = None
        if model is not None:  # a warm start: refit once enough are new
            learner.next_version = model.version + 1
            learner.last_request_frames = len(dataset)

    @property
    def ready(self) -> bool:
        """Whether a version has been taken up (until then every segment is simulated)."""
        return self.model is not None

    @property
    def version(self) -> int | None:
        return None if self.model is None else self.model.version

    def _segment_simulators(self) -> list[SegmentSimulator]:
        """The version's models (ASE calculators), each integrated by the velocity Verlet of a
        simulation."""
        if self._simulators is None or self._simulators[0] is not self.model:
            self._simulators = (self.model, [
                SegmentSimulator(learned_atoms(calc, self.numbers, self.masses, self.cell),
                                 self.stride, self.dt_fs) for calc in self.model.calculators()])
        return self._simulators[1]

    def _run(self, start: CoarseFrame) -> tuple[SegmentResult, float]:
        """The main model's segment and the committee's spread at its end."""
        main, *others = self._segment_simulators()
        seg = main.segment(start.positions, start.momenta)
        ends = [sim.segment(start.positions, start.momenta).positions[-1] for sim in others]
        return seg, max(max_distance(seg.positions[-1], end) for end in ends)

    def forecast(self, start: CoarseFrame, min_distance_A: float) -> Forecast | str:
        guard = self._guard()
        if guard is not None and (out := guard.refuses(start.positions, self.dataset,
                                                        self.model)):
            return out  # a group still out: the calculator brings it back first
        seg, spread = self._run(start)
        if not (np.isfinite(seg.positions).all() and np.isfinite(seg.momenta).all()):
            return "forecast not finite"
        if any(self.cell.closest(r, min_distance_A) is not None for r in seg.positions[1:]):
            return "closest atoms"
        if guard is not None and (out := guard.refuses(seg.positions[-1], self.dataset,
                                                        self.model)):
            return out
        return Forecast(seg.positions[-1], seg.momenta[-1], seg.forces, seg.energy,
                        float(seg.energies[0]), self.calibration(spread), exact=False,
                        segment=seg, raw_uncertainty=spread)

    def _guard(self) -> ReachGuard | None:
        """The beyond-reach guard of a local model where the system has room beyond its reach
        (a global model sees every atom, and a filled periodic cell has nowhere to go: none)."""
        reach = self.model.reach
        if self.reach_guard is None and reach is not None and self.space_A > reach:
            self.reach_guard = ReachGuard(self.cell, reach)
        return self.reach_guard

    def shadow(self, start: CoarseFrame, segment: SegmentResult) -> tuple[float, float]:
        """Error and predicted error of the learned segment from a simulated one's start."""
        seg, spread = self._run(start)
        error = max_distance(seg.positions[-1], segment.positions[-1])
        predicted = self.calibration(spread)
        self.calibration.observe(spread, error)
        return error, predicted

    def observe(self, raw_uncertainty: float | None, error: float) -> None:
        if raw_uncertainty is not None:
            self.calibration.observe(raw_uncertainty, error)

    def labeled(self, positions: np.ndarray, forces: np.ndarray, energies: np.ndarray,
                source: str) -> None:
        """Frames of the expensive calculator: training data for the next versions."""
        self.dataset.add(positions, forces, energies, source)

    def simulated(self, start: CoarseFrame, end: CoarseFrame) -> str | None:
        """A simulated segment teaches through its labeled frames only."""
        return None

    def at_boundary(self, steps: int) -> str | None:
        """Take up a version that is due (what happened, for the timeline); ask for one that
        is. ``steps``: segments made or tried so far (the learner's clock)."""
        learner, event = self.learner, None
        if learner.take_up_due(steps):
            event = self._take_up()
        if learner.request_due(len(self.dataset)):
            learner.request(steps, self.dataset, self.model)
        return event

    def refit_now(self, steps: int) -> list[str]:
        """A version fitted to every frame labeled so far, taken up now (the run waits for
        it, and first for a fit in progress); what happened, for the timeline."""
        learner, events = self.learner, []
        if learner.pending is not None:
            events.append(self._take_up())
        if len(self.dataset) > learner.last_request_frames:
            learner.request(steps, self.dataset, self.model)
            events.append(self._take_up())
        return events

    def _take_up(self) -> str:
        model = self.learner.take_up()
        if isinstance(model, FitFailure):
            return (f"version {model.version} failed ({model.message}); keeping version "
                    f"{self.version}")
        self.model = model
        return model.describe()

    def save(self, directory: Path, provenance: dict[str, Any]) -> None:
        """The version in use and every labeled frame, for the next run (``forecaster.pt``)."""
        if self.model is not None:
            save_learned(directory, self.model, self.dataset, self.numbers, self.masses,
                         self.dt_fs, self.stride, self.settings,
                         {**provenance, "learned_from": self.learned_from})

    def snapshot(self) -> dict[str, Any]:
        return {"calibration": [list(p) for p in self.calibration.pairs],
                "learner": self.learner.state_dict(), "model": self.model,
                "dataset": len(self.dataset)}

    def saved(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return {**snapshot, "dataset": self.dataset.head(snapshot["dataset"])}

    def restore(self, saved: dict[str, Any]) -> None:
        self.calibration.pairs.clear()
        self.calibration.pairs.extend(tuple(p) for p in saved["calibration"])
        self.dataset, self.model = saved["dataset"], saved["model"]
        self.reach_guard = None  # its limit follows from the version and the frames
        self.learner.load_state_dict(saved["learner"], self.dataset, self.model)

    def close(self) -> None:
        self.learner.close()
