"""The hybrid loop: segments made by simulation or ML, checked, committed or rolled back.

Time advances in segments of Δt = n·Δτ. In ``sim`` mode a segment is n velocity-Verlet steps
with the real calculator, and the ML segment maker (a forecaster network, or the force field
the run learns: ``hybridmd.hybrid.predictors``) predicts the same segment in the shadow; the
adaptive switch (``hybridmd.hybrid.switch``) decides when to trust it. In ``ml`` mode the ML
makes the segment; the loop goes back to simulation when a check rejects a forecast, after
``max_ml_segments``, or when a monitor finds a re-simulated segment beyond tolerance: then it
rolls back to the last verified frame and simulates from there. A single-point check
(``hybridmd.hybrid.checks``) of a learned segment's end that finds the forces beyond tolerance
rejects that forecast, and the segment is simulated; with ``refit_on_failure`` the learner then
refits with its frames at the next boundary (the loop waits for it) and ML resumes at once,
every segment checked again.

Frames are committed only once no pending monitor result can roll them back. A committed
frame is ``verified`` (simulated, or a monitored forecast within tolerance), ``checked`` (an
ML frame whose forces a single-point check found within tolerance) or ``unverified`` (an ML
frame nobody re-simulated or checked), and is never replaced. ``advance(k)`` makes k more segments
in memory; observers see what happens: ``on_commit`` every committed frame in order,
``on_event`` every decision (one timeline row each), ``attach`` after every segment. The loop
knows no files, no input and no progress bar: ``hybridmd.hybrid.session`` owns those, and
``hybridmd.hybrid.build`` makes the loop from an input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from hybridmd.config import SafetyConfig, SwitchConfig
from hybridmd.errors import SimulationError
from hybridmd.hybrid.checks import CheckResult, PointChecks
from hybridmd.hybrid.ledger import CallLedger, RunStats
from hybridmd.hybrid.monitor import MonitorPool, MonitorResult, MonitorTask
from hybridmd.hybrid.predictors import LearnedForceField, NetworkForecaster, max_distance
from hybridmd.hybrid.segments import (
    BoundaryThermostat,
    SegmentMaker,
    SegmentResult,
    kinetic_energy,
)
from hybridmd.hybrid.selection import MonitorChoice
from hybridmd.hybrid.switch import Switch
from hybridmd.periodic import Cell
from hybridmd.safety import check_state
from hybridmd.streaming.frames import CoarseFrame
from hybridmd.units import KB

log = logging.getLogger(__name__)

#: how the interior frames of a learned ML segment are labelled in the fine trajectory
LEARNED_METHOD = "learned force field"

Predictor = NetworkForecaster | LearnedForceField


@dataclass
class LoopSettings:
    """The numbers the loop decides with (from the input's dynamics, hybrid and safety)."""

    n_segments: int  #: segments in the whole run
    lag: int  #: segments between a monitor's submission and the use of its result
    learned_interior: bool  #: ML segments keep the learned force field's own fine frames
    switch: SwitchConfig
    safety: SafetyConfig


class HybridLoop:
    """The segment-by-segment state machine of a hybrid run, in memory."""

    def __init__(self, atoms: Atoms, simulator: SegmentMaker, predictor: Predictor | None,
                 thermostat: BoundaryThermostat, switch: Switch, choice: MonitorChoice,
                 monitors: MonitorPool, checks: PointChecks, ledger: CallLedger, ndof: int,
                 initial_momenta: np.ndarray, settings: LoopSettings,
                 monitor_rng: np.random.Generator, tail_length: int):
        self.atoms, self.simulator, self.predictor = atoms, simulator, predictor
        self.thermostat, self.switch, self.choice = thermostat, switch, choice
        self.monitors, self.checks = monitors, checks
        self.ledger, self.settings = ledger, settings
        self.masses = atoms.get_masses()
        self.numbers = atoms.numbers
        self.cell = Cell.of(atoms)
        self.ndof = ndof
        self.n, self.dt_fs = simulator.stride, simulator.dt_fs
        self.segment_fs = self.n * self.dt_fs
        self.initial_momenta = initial_momenta
        self.monitor_rng = monitor_rng
        self.tail_length = tail_length  #: committed frames kept (the stream's tail)
        self.stats = RunStats()
        self.current: CoarseFrame | None = None  #: where the next segment starts
        self.committed: list[CoarseFrame] = []  #: recent committed frames (stream tail)
        self.pending: list[CoarseFrame] = []  #: ML frames not yet committed
        self.n_committed = 0
        self.segments_tried = 0  #: segments made or tried (the learner's clock)
        #: the temperature check refused ML: the next simulated segment's end gets momenta
        #: drawn afresh at its kinetic energy (simulating alone keeps the imbalance for ps)
        self.redistribute_due = False
        #: a check failed: refit at the next boundary and resume ML under checks
        self.refit_due = False
        #: the state that failed a safety check: (coarse index, positions, momenta)
        self.failure: tuple[int, np.ndarray, np.ndarray] | None = None
        self._commit_observers: list[Callable[[CoarseFrame], None]] = []
        self._event_observers: list[Callable[[dict[str, Any]], None]] = []
        self._segment_observers: list[Callable[[], None]] = []
        self._closers: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ observers

    def on_commit(self, observer: Callable[[CoarseFrame], None]) -> None:
        """Call ``observer(frame)`` with every frame as it is committed, in order."""
        self._commit_observers.append(observer)

    def on_event(self, observer: Callable[[dict[str, Any]], None]) -> None:
        """Call ``observer(row)`` with every decision (the timeline's columns)."""
        self._event_observers.append(observer)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the loop closes (a calculator built for it, with its client)."""
        self._closers.append(closer)

    def attach(self, observer: Callable[[], None]) -> None:
        """Call ``observer()`` after every segment made or tried."""
        self._segment_observers.append(observer)

    def _event(self, segment: int, mode: str, event: str, **row: Any) -> None:
        row = {"segment": segment, "time_fs": segment * self.segment_fs, "mode": mode,
               "event": event, **row, **self.ledger.row()}
        for observer in self._event_observers:
            observer(row)

    # ------------------------------------------------------------------ state

    @property
    def quiet(self) -> bool:
        """No ML frame pending and no monitor outstanding: the state can be checkpointed."""
        return not self.pending and not self.monitors.outstanding

    @property
    def finished(self) -> bool:
        return self.current is not None and self.current.index >= self.settings.n_segments

    def rng_state(self) -> dict[str, Any]:
        return {"thermostat": self.thermostat.rng.bit_generator.state,
                "monitor": self.monitor_rng.bit_generator.state}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        self.thermostat.rng.bit_generator.state = state["thermostat"]
        self.monitor_rng.bit_generator.state = state["monitor"]

    def _boundary(self, index: int, positions: np.ndarray, arrival: np.ndarray,
                  forces: np.ndarray, energy: float, origin: str, status: str,
                  interior: SegmentResult | None = None,
                  interior_method: str = "simulation", exact: bool = True,
                  raw_uncertainty: float | None = None) -> CoarseFrame:
        """The frame at the end of a segment, with the O-step applied to its momenta;
        ``interior``: the segment whose inner frames (with their forces and energies) the fine
        trajectory takes as they are."""
        self._check_safety(index, positions, forces, arrival)
        if origin == "sim" and self.redistribute_due:
            self.redistribute_due = False
            departure = self.thermostat.apply(self.thermostat.redistribute(arrival, positions))
        else:
            departure = self.thermostat.apply(arrival)
        inner = {} if interior is None else {
            "interior_positions": interior.positions[1:-1],
            "interior_momenta": interior.momenta[1:-1],
            "interior_forces": interior.all_forces[1:-1],
            "interior_energies": interior.energies[1:-1]}
        return CoarseFrame(
            index, index * self.segment_fs, positions, departure, arrival, forces, energy,
            origin, interior_method=interior_method, status=status,
            rng_state=self.rng_state(), thermostat_energy=self.thermostat.energy, exact=exact,
            raw_uncertainty=raw_uncertainty, **inner)

    def _temperature(self, momenta: np.ndarray) -> float:
        """Kinetic temperature over the run's degrees of freedom, K."""
        return 2 * kinetic_energy(momenta, self.masses) / (self.ndof * KB)

    def _check_safety(self, index: int, positions: np.ndarray, forces: np.ndarray,
                      momenta: np.ndarray) -> None:
        temperature = self._temperature(momenta)
        problem = check_state(positions, forces, temperature, self.settings.safety, self.cell)
        if problem:
            self.failure = (index, positions, momenta)
            raise SimulationError(
                f"coarse frame {index} (t = {index * self.segment_fs:.1f} fs): {problem}")

    # ------------------------------------------------------------------ segments

    def start(self) -> None:
        """Frame 0: the structure with its initial momenta (no O-step before the first
        segment)."""
        atoms, p0 = self.atoms, self.initial_momenta
        atoms.set_momenta(p0)
        with self.ledger.charge("simulation"):
            forces = atoms.get_forces()
            energy = float(atoms.get_potential_energy())
        self._check_safety(0, atoms.positions, forces, p0)
        self._labeled(atoms.positions, forces, [energy], "simulation")
        frame = CoarseFrame(0, 0.0, atoms.get_positions(), p0, p0, forces, energy, "sim",
                            rng_state=self.rng_state())
        self._commit(frame)
        self.current = frame

    def _labeled(self, positions: np.ndarray, forces: np.ndarray, energies: Any,
                 source: str) -> None:
        if self.predictor is not None:
            self.predictor.labeled(positions, forces, energies, source)

    def _simulate(self, start: CoarseFrame) -> tuple[CoarseFrame, Any]:
        """The segment from ``start`` by simulation; the frame and the segment's frames."""
        known = (start.forces, start.energy) if start.exact else None
        with self.ledger.charge("simulation"):
            seg = self.simulator.segment(start.positions, start.momenta, known)
        first = 1 if start.exact else 0  # a learned ML frame is labeled here first
        self._labeled(seg.positions[first:], seg.all_forces[first:], seg.energies[first:],
                      "simulation")
        frame = self._boundary(start.index + 1, seg.positions[-1], seg.momenta[-1], seg.forces,
                               seg.energy, "sim", "verified", seg)
        return frame, seg

    def _try_forecast(self, start: CoarseFrame) -> tuple[CoarseFrame | None, dict[str, Any]]:
        """An ML segment from ``start``, or None with the check that rejected it."""
        forecast = self.predictor.forecast(start, self.settings.safety.min_distance_A)
        if isinstance(forecast, str):
            return None, {"reason": forecast}
        momenta, info, reason = self.switch.check(forecast, start,
                                                  self.predictor.uncertainty_check,
                                                  self.checks.doubtful)
        if reason is not None:
            return None, {**info, "reason": reason}
        temperature = self._temperature(momenta)
        if temperature > self.settings.safety.max_temperature_K:  # the ML's error, not the run's
            return None, {**info, "reason": f"too hot ({temperature:.0f} K)"}
        interior = forecast.segment if self.settings.learned_interior else None
        frame = self._boundary(start.index + 1, forecast.positions, momenta, forecast.forces,
                               forecast.energy, "ml", "unverified", interior, LEARNED_METHOD,
                               forecast.exact, forecast.raw_uncertainty)
        return frame, info

    def _at_boundary(self) -> None:
        """Between segments: the segment maker takes up what is due (a learned version);
        after a failed check, a version fitted with its frames, and ML again under checks."""
        if self.predictor is None:
            return
        k = self.current.index
        if self.refit_due:
            self.refit_due = False
            for event in self.predictor.refit_now(self.segments_tried):
                self._event(k, self.switch.mode, "learn", reason=f"{event} (after a failed check)",
                            version=self.predictor.version)
            if self.switch.mode == "sim":
                self._enter_ml(k, "refitted after a failed check")
        event = self.predictor.at_boundary(self.segments_tried)
        if event is not None:
            self._event(k, self.switch.mode, "learn", reason=event,
                        version=self.predictor.version)
            if self.switch.mode == "sim" and self.switch.needed == 0 and self.predictor.ready:
                self._enter_ml(k, f"version {self.predictor.version}: the checks guard it")

    def _enter_ml(self, k: int, reason: str) -> None:
        """ML mode from segment ``k`` on, without waiting for a shadow forecast."""
        self.switch.enter_ml()
        self._entered_ml(k, reason)

    def _entered_ml(self, k: int, reason: str) -> None:
        """The switch is in ML mode from segment ``k`` on: the first time counted, the line."""
        if self.stats.first_ml_calls is None:
            self.stats.first_ml_calls = self.ledger.total
        self._event(k, "ml", "switch", reason=reason)

    # ------------------------------------------------------------------ commit / rollback

    def _commit(self, frame: CoarseFrame) -> None:
        for observer in self._commit_observers:
            observer(frame)
        self.committed.append(frame)
        del self.committed[:-self.tail_length]
        self.n_committed += 1
        if frame.index > 0:
            self.stats.temperatures.append(self._temperature(frame.arrival))
            if frame.origin == "sim":
                self.stats.sim_segments += 1
            else:
                self.stats.ml_segments += 1
                self.stats.ml_verified += frame.status == "verified"
                self.stats.ml_checked += frame.status == "checked"

    def _commit_through(self, index: int) -> None:
        while self.pending and self.pending[0].index <= index:
            self._commit(self.pending.pop(0))

    def _apply_monitors(self, results: list[tuple[MonitorResult, bool]], now: int) -> bool:
        """Apply monitor results in order; False: one of them rolled the loop back."""
        ok = True
        for result, attached in results:
            ok = self._apply_monitor(result, attached and ok, now) and ok
        return ok

    def _apply_monitor(self, result: MonitorResult, attached: bool, now: int) -> bool:
        """Count a monitor's calls, learn from its frames, and check its segment's forecast
        if the segment is still pending (``attached``); False: rolled back."""
        self.ledger.add("monitors", result.force_calls)
        first = 0 if result.labeled_start else 1
        seg = result.frames
        self._labeled(seg.positions[first:], seg.all_forces[first:], seg.energies[first:],
                      "monitor")
        if not attached:
            self._event(result.segment, "ml", "monitor", reason="its segment was rolled back")
            return True
        frame = next(f for f in self.pending if f.index == result.segment + 1)
        error = max_distance(frame.positions, result.positions)
        errors = (self.stats.monitor_errors if result.reason == "random"
                  else self.stats.uncertain_monitor_errors)
        errors.append(error)
        self.predictor.observe(frame.raw_uncertainty, error)
        ok = error <= self.settings.switch.tolerance_A
        self._event(result.segment, "ml", "monitor",
                    reason=("ok" if ok else "beyond tolerance")
                    + ("" if result.reason == "random" else f" ({result.reason})"),
                    monitor_error_A=error)
        if ok:
            frame.status = "verified"
            self._commit_through(frame.index)
            return True
        self._rollback(now, f"monitor error {error:.3g} Å at segment {result.segment}")
        return False

    def _rollback(self, now: int, reason: str) -> None:
        last = self.committed[-1]
        self.stats.rollbacks += 1
        self.stats.discarded_segments += len(self.pending)
        self._event(now, "sim", "rollback", reason=f"{reason}; back to frame {last.index}")
        log.info("rollback to coarse frame %d: %s", last.index, reason)
        self.pending.clear()
        self.monitors.detach()
        self.checks.alarm()
        self.refit_due = False  # after a rollback the shadow forecasts decide again
        self.set_rng_state(last.rng_state)
        self.thermostat.energy = last.thermostat_energy
        self.current = last
        self.switch.leave_ml(self.settings.switch.verified_segments)

    def sync(self) -> bool:
        """Wait for every outstanding monitor; commit what they verify. False: rolled back."""
        if not self._apply_monitors(self.monitors.drain(), self.current.index):
            return False
        self._commit_through(self.pending[-1].index if self.pending else -1)
        return True

    # ------------------------------------------------------------------ the loop

    def step(self) -> None:
        """Make (or try) the segment that starts at ``current``."""
        k = self.current.index
        self._at_boundary()
        self.segments_tried += 1
        if self._apply_monitors(self.monitors.due(k, self.settings.lag), k) and not (
                self.switch.mode == "ml" and self._ml_step(k)):
            self._sim_step(k)
        for observer in self._segment_observers:
            observer()

    def _sim_step(self, k: int) -> None:
        start = self.current
        redistributing = self.redistribute_due
        frame, seg = self._simulate(start)
        shadow = predicted = None
        if self.predictor is not None and self.predictor.ready:
            shadow, predicted = self.predictor.shadow(start, seg)
            self.stats.shadow_errors.append(shadow)
            tuned = self.predictor.simulated(start, frame)
            if tuned is not None:
                self._event(frame.index, self.switch.mode, "fine-tune", reason=tuned)
        entered = self.switch.simulated(shadow)
        redrawn = {"reason": "momenta redrawn at its kinetic energy (equipartition)"
                   } if redistributing else {}
        self._event(k, "sim", "simulate", shadow_error_A=shadow, uncertainty_A=predicted,
                    version=self.predictor.version if self.predictor else None, **redrawn)
        self._commit(frame)
        self.current = frame
        if entered:
            self._entered_ml(k + 1, f"{self.switch.streak} shadow forecasts within tolerance")

    def _ml_step(self, k: int) -> bool:
        """An ML segment from ``current``; False: rejected, simulate it instead."""
        sw = self.settings.switch
        start = self.current
        frame, info = self._try_forecast(start)
        version = self.predictor.version
        audit = check = None
        if frame is not None:
            audit = self.choice.choose(info["uncertainty_A"])
            check = self.checks.choose(info["uncertainty_A"])
            if self.checks.doubts(info["uncertainty_A"], sw.disagreement_A):
                check = "doubtful"  # beyond disagreement_A: checked, not refused
            if audit is not None and check != "doubtful":
                check = None  # the monitor looks at it; a doubtful one is checked as well
            if check is not None:
                result = self._check(start, frame)
                info["check_error_eV_A"] = result.force_error
                if result.failed:
                    frame, info["reason"] = None, result.failed
                    if result.failed == "energy check":
                        info["reason"] += f" ({result.energy_error:.4f} eV/atom)"
        if frame is not None:
            self.pending.append(frame)
            if audit is not None:
                known = (start.forces, start.energy) if start.exact else None
                self.monitors.submit(MonitorTask(k, start.positions, start.momenta, known,
                                                 audit), k)
            self._event(k, "ml", "forecast", reason=_how_checked(audit, check),
                        version=version, **_rounded(info))
            self.current = frame
            if self.switch.forecast_taken():
                self._event(k + 1, "sim", "switch", reason="longest ML run")
                if self.sync():
                    self.switch.leave_ml(sw.reentry_segments)
            return True
        reason = info.pop("reason")
        self.stats.reject(reason)
        self._event(k, "sim", "reject", reason=reason, version=version, **_rounded(info))
        self.redistribute_due = reason.startswith("temperature (")
        if not self.sync():
            self.redistribute_due = False
            return True
        self.switch.leave_ml(sw.reentry_segments)
        return False

    def _check(self, start: CoarseFrame, frame: CoarseFrame) -> CheckResult:
        """A single-point check of ``frame``'s forces (and energy); the learner gets the
        frame. Passed: the frame is ``checked`` and takes the calculator's forces and energy.
        Failed: its thermostat step is undone (the segment will be simulated from ``start``)."""
        zero = getattr(getattr(self.predictor, "model", None), "energy_offset", None)
        result = self.checks.check(frame.positions, frame.forces, frame.energy, zero)
        self._labeled(frame.positions, result.forces, [result.energy], "check")
        self.stats.check_errors.append(result.force_error)
        if result.energy_error is not None:
            self.stats.check_energy_errors.append(result.energy_error)
        if result.ok:
            frame.status, frame.exact = "checked", True
            frame.forces, frame.energy = result.forces, result.energy
        else:
            self.thermostat.rng.bit_generator.state = start.rng_state["thermostat"]
            self.thermostat.energy = start.thermostat_energy
            self.switch.withdraw()
            self.refit_due = self.checks.cfg.refit_on_failure
        return result

    def advance(self, segments: int | None = None,
                stop: Callable[[], bool] | None = None) -> list[CoarseFrame]:
        """Make segments until ``segments`` more are made (default: to the run's end) and
        every ML frame up to there is settled; the frames committed on the way. ``stop``,
        asked after every segment, ends it early when it says True (nothing settled then)."""
        out: list[CoarseFrame] = []
        self.on_commit(out.append)
        try:
            if self.current is None:
                self.start()
            target = self.settings.n_segments if segments is None else min(
                self.settings.n_segments, self.current.index + segments)
            while True:
                while self.current.index < target:
                    self.step()
                    if stop is not None and stop():
                        return out
                if self.sync():  # the last ML frames wait for their monitors
                    return out
        finally:
            self._commit_observers.remove(out.append)

    def close(self) -> None:
        """Stop the monitors, the learner and the simulation engine."""
        try:
            self.monitors.close()
            if self.predictor is not None:
                self.predictor.close()
        finally:
            self.simulator.close()
            for closer in self._closers:
                closer()

    # ------------------------------------------------------------------ checkpoints

    def snapshot(self) -> dict[str, Any]:
        """The state now, cheaply (call only when ``quiet``): references and lengths."""
        return {
            "committed": self.n_committed, "frame": self.committed[-1],
            "steps": self.segments_tried,
            # the generators now: the monitor choice has drawn since the frame was made
            "rng": self.rng_state(),
            "switch": self.switch.state_dict(), "choice": self.choice.state_dict(),
            "checks": self.checks.state_dict(), "refit_due": self.refit_due,
            "ledger": self.ledger.state_dict(), "stats": self.stats.lengths(),
            "maker": self.predictor.snapshot() if self.predictor else None,
            "tail": list(self.committed),
        }

    def saved(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """A snapshot as it is kept on disk (the statistics and the maker's data cut to it)."""
        return {**snapshot, "stats": self.stats.state_at(snapshot["stats"]),
                "maker": (None if snapshot["maker"] is None
                          else self.predictor.saved(snapshot["maker"]))}

    def restore(self, saved: dict[str, Any], frame: CoarseFrame) -> None:
        """Back to a saved state whose last committed frame is ``frame``."""
        self.current = frame
        self.committed = [frame]
        self.n_committed = saved["committed"]
        self.segments_tried = saved["steps"]
        self.set_rng_state(saved["rng"])
        self.thermostat.energy = frame.thermostat_energy
        self.switch.load_state_dict(saved["switch"])
        self.choice.load_state_dict(saved["choice"])
        self.checks.load_state_dict(saved.get("checks", {}))  # none before checks existed
        self.refit_due = saved.get("refit_due", False)
        self.ledger.load_state_dict(saved["ledger"])
        self.stats = RunStats(**saved["stats"])
        if self.predictor is not None:
            self.predictor.restore(saved["maker"])


def _how_checked(audit: str | None, check: str | None) -> str:
    """The forecast line's reason: whether (and why) a monitor or a check looked at it."""
    said = []
    if audit is not None:
        said.append("monitored" if audit == "random" else f"monitored ({audit})")
    if check is not None:
        said.append("checked" if check == "random" else f"checked ({check})")
    return ", ".join(said)


def _rounded(info: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) for k, v in info.items() if k != "reason"}
