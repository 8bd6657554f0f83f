"""`hybridmd run`: the hybrid loop of simulation and ML forecasts, monitored and streamed.

Time advances in segments of Δt = n·Δτ. In ``sim`` mode a segment is n velocity-Verlet steps
with the real calculator, and the forecaster predicts the same segment in the shadow; after
``verified_segments`` shadow forecasts within tolerance in a row the driver enters ``ml`` mode,
where one forecast (plus one force call at its end, for the interpolator's accelerations and
the energy check) makes a segment. It goes back to simulation when a check trips (forward/
backward disagreement, energy jump over the NVE segment, closest atoms, an element's
temperature), after ``max_ml_segments``, or when a monitor finds a re-simulated segment beyond
tolerance: then it rolls back to the last verified frame and simulates from there.

Frames are committed (written to the coarse trajectory and streamed to the interpolator worker)
only once no pending monitor result can roll them back. A committed frame is ``verified``
(simulated, or a monitored forecast within tolerance) or ``unverified`` (an ML frame nobody
re-simulated), and is never replaced. The checkpoint holds the state at the last commit, so a
killed run resumes there and continues the very same trajectory.
"""

from __future__ import annotations

import copy
import json
import logging
import pickle
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.verlet import VelocityVerlet
from tqdm import tqdm

from hybridmd.calculators import build_calculator, describe_calculator
from hybridmd.config import RunConfig
from hybridmd.engines.ase_md import internal_degrees_of_freedom, maxwell_boltzmann_momenta
from hybridmd.hybrid.files import (
    CHECKPOINT_NAME,
    COARSE_NAME,
    FINE_NAME,
    METADATA_NAME,
    SUMMARY_NAME,
    TAIL_NAME,
    TIMELINE_NAME,
    Timeline,
    frame_from_json,
    frame_json,
    last_coarse_index,
)
from hybridmd.hybrid.forecaster import Forecaster, load_forecaster
from hybridmd.hybrid.monitor import MonitorPool, MonitorResult, MonitorTask
from hybridmd.hybrid.segments import (
    BoundaryFrame,
    BoundaryThermostat,
    CallCounter,
    kinetic_energy,
    min_distance,
    simulate_segment,
    species_temperatures,
)
from hybridmd.output import FrameWriter, run_metadata, truncate_frames, write_json_atomic
from hybridmd.safety import SimulationError, check_state
from hybridmd.simulate import _RESUMABLE_CHANGES, _changed_keys, _stop_on_signals
from hybridmd.streaming import CoarseFrame, StreamingInterpolation
from hybridmd.structures import build_structure, load_momenta
from hybridmd.trajectory import SPACING_RTOL
from hybridmd.units import FS, KB

log = logging.getLogger(__name__)

@dataclass
class HybridResult:
    """Where the outputs are and the summary printed at the end."""

    directory: Path
    summary: dict[str, Any]
    interrupted: bool = False


@dataclass
class _Counters:
    force_calls: int = 0  #: the driver's calculator calls
    monitor_calls: int = 0
    sim_segments: int = 0  #: committed segments by origin
    ml_segments: int = 0
    ml_verified: int = 0
    rollbacks: int = 0
    discarded_segments: int = 0  #: ML segments thrown away by rollbacks
    rejected: dict[str, int] = field(default_factory=dict)  #: rejected forecasts by check
    shadow_errors: list[float] = field(default_factory=list)
    monitor_errors: list[float] = field(default_factory=list)
    temperatures: list[float] = field(default_factory=list)  #: per committed frame (arrival)


class HybridRun:
    """A hybrid run set up from a validated input: structure, calculator, forecaster, policy."""

    def __init__(self, cfg: RunConfig, calculator: Calculator | None = None,
                 context: dict[str, Any] | None = None,
                 monitor_calculator: Calculator | None = None,
                 on_commit: Callable[[BoundaryFrame], None] | None = None):
        """``calculator``: use this one instead of building the input's (the ASE API);
        ``monitor_calculator``: a second instance for monitors run in the driver (with
        ``calculator`` given, monitors cannot be rebuilt from the input in other processes);
        ``on_commit``: called with every frame as it is committed, in order."""
        self.cfg = cfg
        self.on_commit = on_commit
        self.monitor_calculator = monitor_calculator
        self.context = context or {}
        h, dyn = cfg.hybrid, cfg.dynamics
        self.n, self.dt_fs = h.stride, dyn.timestep_fs
        self.segment_fs = self.n * self.dt_fs
        self.n_segments = dyn.n_steps // self.n
        self.lag = h.monitor.lag_segments or self.n
        self.out = cfg.output.directory
        self.atoms: Atoms = build_structure(cfg.system)
        self.atoms.calc = calculator or build_calculator(cfg.calculator, self.atoms)
        self.counter = CallCounter.of(self.atoms.calc)
        self.masses = self.atoms.get_masses()
        self.symbols = self.atoms.get_chemical_symbols()
        self.ndof = 3 * len(self.atoms) if dyn.integrator == "langevin" else (
            internal_degrees_of_freedom(self.atoms))
        seeds = np.random.SeedSequence(dyn.seed).spawn(3)
        init_rng, thermo_rng, self.monitor_rng = (np.random.default_rng(s) for s in seeds)
        if dyn.initial_momenta == "maxwell-boltzmann":
            self._p0 = maxwell_boltzmann_momenta(self.atoms, dyn.temperature_K, self.ndof,
                                                 init_rng)
        else:
            self._p0 = load_momenta(dyn.initial_momenta, self.atoms)
        self.atoms.set_momenta(self._p0)  # ASE's Bussi refuses atoms at rest
        self.thermostat = BoundaryThermostat(self.atoms, dyn, self.segment_fs, self.ndof,
                                             thermo_rng)
        self.vv = VelocityVerlet(self.atoms, timestep=self.dt_fs * FS)
        self.forecaster: Forecaster | None = None
        if h.forecaster is not None:
            self.forecaster = load_forecaster(h.forecaster)
            self._check_forecaster()
        self.context_frames = self._check_interpolator()  #: the interpolator's C
        self.mode = "sim"
        self.streak = 0  #: consecutive good shadow forecasts
        #: good shadow forecasts in a row needed to enter ML mode: ``verified_segments`` at the
        #: start, after a rollback or a bad shadow forecast; ``reentry_segments`` after an ML
        #: run ended by a rejected forecast or by its length
        self.needed = cfg.hybrid.switch.verified_segments
        self.ml_run = 0  #: length of the current ML run
        self.species_history: deque[dict[str, float]] = deque(maxlen=h.switch.species_window)
        #: sums of each element's kinetic temperature over the simulated fine frames, and their
        #: count: what equipartition looks like in this molecule (the rigid-body motion that was
        #: removed makes it uneven across elements)
        self.species_reference: tuple[dict[str, float], int] = (
            dict.fromkeys(dict.fromkeys(self.symbols), 0.0), 0)
        self.counts = _Counters()
        self.committed: list[BoundaryFrame] = []  #: recent committed frames (stream tail)
        self.pending: list[BoundaryFrame] = []  #: ML frames not yet committed
        self.n_committed = 0
        self._quiet: dict[str, Any] | None = None  #: the last quiet state (``_snapshot``)
        #: online fine-tuning: (r0, v0, a0, r1, v1) of every simulated segment, how many of
        #: them the last tuning used, how many tunings, the weights after the last one
        self.tune_pairs: list[tuple[np.ndarray, ...]] = []
        self.tuned_at, self.tunes = 0, 0
        self._tuned_state: dict[str, Any] | None = None

    # ------------------------------------------------------------------ checks at start

    def _check_forecaster(self) -> None:
        fc, where = self.forecaster, self.cfg.hybrid.forecaster
        numbers = list(self.atoms.numbers)
        if list(fc.numbers) != numbers:
            raise SimulationError(
                f"hybrid.forecaster {where} was trained for {_formula(fc.numbers)} in another "
                f"order or composition than the system ({_formula(numbers)}); train one for "
                "this system")
        if not np.isclose(fc.dt_fs, self.dt_fs, rtol=SPACING_RTOL) or fc.stride != self.n:
            raise SimulationError(
                f"hybrid.forecaster {where} forecasts {fc.stride} steps of {fc.dt_fs:g} fs; the "
                f"input has hybrid.stride {self.n} at dynamics.timestep_fs {self.dt_fs:g}")

    def _check_interpolator(self) -> int:
        """Refuse an interpolator that does not fit the run; its context C."""
        from hybridmd.streaming.worker import IncrementalReconstructor, make_interpolator

        try:
            return IncrementalReconstructor(
                make_interpolator(self.cfg.hybrid.interpolator), self.atoms.numbers,
                self.masses, self.n, self.dt_fs).context
        except ValueError as exc:
            raise SimulationError(f"hybrid.interpolator: {exc}") from None

    # ------------------------------------------------------------------ state handling

    def _rng_state(self) -> dict[str, Any]:
        return {"thermostat": self.thermostat.rng.bit_generator.state,
                "monitor": self.monitor_rng.bit_generator.state}

    def _set_rng_state(self, state: dict[str, Any]) -> None:
        self.thermostat.rng.bit_generator.state = state["thermostat"]
        self.monitor_rng.bit_generator.state = state["monitor"]

    def _boundary(self, index: int, positions: np.ndarray, arrival: np.ndarray,
                  forces: np.ndarray, energy: float, origin: str, status: str,
                  interior: tuple[np.ndarray, np.ndarray] | None = None) -> BoundaryFrame:
        """The frame at the end of a segment, with the O-step applied to its momenta."""
        self._check_safety(index, positions, forces, arrival)
        departure = self.thermostat.apply(arrival)
        return BoundaryFrame(
            index, index * self.segment_fs, positions.copy(), arrival.copy(), departure,
            forces.copy(), float(energy), origin, status,
            None if interior is None else interior[0], None if interior is None else interior[1],
            self._rng_state(), self.thermostat.energy)

    def _check_safety(self, index: int, positions: np.ndarray, forces: np.ndarray,
                      momenta: np.ndarray) -> None:
        temperature = 2 * kinetic_energy(momenta, self.masses) / (self.ndof * KB)
        problem = check_state(positions, forces, temperature, self.cfg.safety)
        if problem:
            self._failure = (index, positions, momenta)
            raise SimulationError(
                f"coarse frame {index} (t = {index * self.segment_fs:.1f} fs): {problem}")

    # ------------------------------------------------------------------ segments

    def _simulate(self, start: BoundaryFrame) -> BoundaryFrame:
        before = self.counter.calls
        seg = simulate_segment(self.atoms, self.vv, start.positions, start.departure, self.n)
        self.counts.force_calls += self.counter.calls - before
        return self._boundary(start.index + 1, seg.positions[-1], seg.momenta[-1], seg.forces,
                              seg.energy, "sim", "verified",
                              (seg.positions[1:-1], seg.momenta[1:-1]))

    def _forecast(self, start: BoundaryFrame) -> tuple[np.ndarray, np.ndarray]:
        m = self.masses[:, None]
        r1, v1 = self.forecaster.predict(start.positions, start.departure / m * FS,
                                         start.forces / m * FS**2)
        return r1, v1 * m / FS

    def _collect_and_tune(self, start: BoundaryFrame, end: BoundaryFrame) -> None:
        """Keep the simulated segment as training data; fine-tune when enough are new."""
        ft, m = self.cfg.hybrid.fine_tune, self.masses[:, None]
        self.tune_pairs.append((start.positions, start.departure / m * FS,
                                start.forces / m * FS**2, end.positions, end.arrival / m * FS))
        if len(self.tune_pairs) - self.tuned_at < ft.every_segments:
            return
        r0, v0, a0, r1, v1 = (np.array(x) for x in zip(*self.tune_pairs, strict=True))
        before, after = self.forecaster.fine_tune(
            r0, v0, a0, r1, v1, ft.epochs, ft.learning_rate, ft.batch_size,
            seed=self.cfg.dynamics.seed * 1000 + self.tunes)
        self.tuned_at, self.tunes = len(self.tune_pairs), self.tunes + 1
        self._tuned_state = {k: v.detach().clone()
                             for k, v in self.forecaster.net.state_dict().items()}
        self._timeline.write(segment=end.index, time_fs=end.time_fs, mode=self.mode,
                             event="fine-tune", reason=f"{len(r0)} simulated segments; loss "
                             f"{before:.3g} -> {after:.3g}", **self._calls())

    def _shadow_error(self, start: BoundaryFrame, end: BoundaryFrame) -> float:
        r1, _ = self._forecast(start)
        return float(np.linalg.norm(r1 - end.positions, axis=1).max())

    def _try_forecast(self, start: BoundaryFrame) -> tuple[BoundaryFrame | None, dict[str, Any]]:
        """An ML segment from ``start``, or None with the check that rejected it."""
        sw = self.cfg.hybrid.switch
        m = self.masses[:, None]
        r1, p1 = self._forecast(start)
        info: dict[str, Any] = {}
        if not (np.isfinite(r1).all() and np.isfinite(p1).all()):
            return None, {"reason": "forecast not finite"}
        if min_distance(r1) < self.cfg.safety.min_distance_A:
            return None, {"reason": "closest atoms"}
        self.atoms.set_positions(r1)
        before = self.counter.calls
        forces = self.atoms.get_forces()
        energy = float(self.atoms.get_potential_energy())
        self.counts.force_calls += self.counter.calls - before
        if not np.isfinite(forces).all():
            return None, {"reason": "forces not finite"}
        info["disagreement_A"] = self.forecaster.disagreement(
            start.positions, start.departure / m * FS, r1, p1 / m * FS, forces / m * FS**2)
        e0 = start.energy + kinetic_energy(start.departure, self.masses)
        info["energy_jump_eV"] = energy + kinetic_energy(p1, self.masses) - e0
        if e0 - energy <= 0:
            return None, {**info, "reason": "energy jump"}
        if info["disagreement_A"] > sw.disagreement_A:
            return None, {**info, "reason": "forward/backward disagreement"}
        if abs(info["energy_jump_eV"]) > sw.energy_jump_eV:
            return None, {**info, "reason": "energy jump"}
        # The segment is NVE: give the forecast the start's total energy exactly, by scaling
        # its momenta (within the tolerance just checked), so forecast errors cannot heat or
        # cool the system; the thermostat at the boundary then acts as in the simulation.
        p1 = p1 * np.sqrt((e0 - energy) / kinetic_energy(p1, self.masses))
        temps = species_temperatures(p1, self.masses, self.symbols)
        history = [*self.species_history, temps]
        if len(history) == sw.species_window and self.species_reference[1] >= 100:
            sums, count = self.species_reference
            for s in temps:
                mean, expected = float(np.mean([h[s] for h in history])), sums[s] / count
                if abs(mean / expected - 1) > sw.species_temperature:
                    self.species_history.clear()
                    return None, {**info, "reason": f"temperature of {s} ({mean:.0f} K, "
                                                    f"simulation {expected:.0f} K)"}
        self.species_history.append(temps)
        frame = self._boundary(start.index + 1, r1, p1, forces, energy, "ml", "unverified")
        return frame, info

    # ------------------------------------------------------------------ commit / rollback

    def _commit(self, frame: BoundaryFrame) -> None:
        if self.on_commit is not None:
            self.on_commit(frame)
        self._coarse_writer.write(self._coarse_atoms(frame))
        self.stream.submit(self._coarse_frame(frame))
        self.committed.append(frame)
        del self.committed[:-self._tail_length]
        self.n_committed += 1
        if frame.index > 0:
            self.counts.temperatures.append(
                2 * kinetic_energy(frame.arrival, self.masses) / (self.ndof * KB))
            if frame.origin == "sim":
                self.counts.sim_segments += 1
            else:
                self.counts.ml_segments += 1
                self.counts.ml_verified += frame.status == "verified"

    def _commit_through(self, index: int) -> None:
        while self.pending and self.pending[0].index <= index:
            self._commit(self.pending.pop(0))

    def _apply_monitor(self, result: MonitorResult, now: int) -> bool:
        """Check a monitor's reference against the forecast; False: rolled back."""
        frame = next(f for f in self.pending if f.index == result.segment + 1)
        error = float(np.linalg.norm(frame.positions - result.positions, axis=1).max())
        self.counts.monitor_errors.append(error)
        self.counts.monitor_calls += result.force_calls
        ok = error <= self.cfg.hybrid.switch.tolerance_A
        self._timeline.write(segment=result.segment, time_fs=result.segment * self.segment_fs,
                             mode="ml", event="monitor", reason="ok" if ok else "beyond tolerance",
                             monitor_error_A=error, **self._calls())
        if ok:
            frame.status = "verified"
            self._commit_through(frame.index)
            return True
        self._rollback(now, f"monitor error {error:.3g} Å at segment {result.segment}")
        return False

    def _rollback(self, now: int, reason: str) -> None:
        last = self.committed[-1]
        self.counts.rollbacks += 1
        self.counts.discarded_segments += len(self.pending)
        self._timeline.write(segment=now, time_fs=now * self.segment_fs, mode="sim",
                             event="rollback", reason=f"{reason}; back to frame {last.index}",
                             **self._calls())
        log.info("rollback to coarse frame %d: %s", last.index, reason)
        self.pending.clear()
        self.monitors.discard()
        self._set_rng_state(last.rng_state)
        self.thermostat.energy = last.thermostat_energy
        self.current = last
        self._leave_ml(self.cfg.hybrid.switch.verified_segments)

    def _leave_ml(self, needed: int) -> None:
        self.mode, self.streak, self.ml_run, self.needed = "sim", 0, 0, needed

    def _sync_monitors(self, now: int) -> bool:
        """Wait for every outstanding monitor; commit what they verify. False: rolled back."""
        for result in self.monitors.drain():
            if not self._apply_monitor(result, now):
                return False
        self._commit_through(self.pending[-1].index if self.pending else -1)
        return True

    def _calls(self) -> dict[str, int]:
        return {"force_calls": self.counts.force_calls, "monitor_calls": self.counts.monitor_calls}

    # ------------------------------------------------------------------ the loop

    def _step(self) -> None:
        """Make the segment that starts at ``self.current``."""
        sw, k = self.cfg.hybrid.switch, self.current.index
        for result in self.monitors.due(k, self.lag):
            if not self._apply_monitor(result, k):
                return
        if self.mode == "ml":
            frame, info = self._try_forecast(self.current)
            if frame is not None:
                self.pending.append(frame)
                self.ml_run += 1
                monitored = self.monitor_rng.random() < self.cfg.hybrid.monitor.fraction
                if monitored:
                    self.monitors.submit(MonitorTask(k, self.current.positions,
                                                     self.current.departure), k)
                self._timeline.write(segment=k, time_fs=k * self.segment_fs, mode="ml",
                                     event="forecast", reason="monitored" if monitored else "",
                                     **_rounded(info), **self._calls())
                self.current = frame
                if self.ml_run >= sw.max_ml_segments:
                    self._timeline.write(segment=k + 1, time_fs=(k + 1) * self.segment_fs,
                                         mode="sim", event="switch", reason="longest ML run",
                                         **self._calls())
                    if self._sync_monitors(k + 1):
                        self._leave_ml(sw.reentry_segments)
                return
            reason = info.pop("reason")
            check = reason.split(" (")[0].split(" of ")[0]  # "temperature of C (...)" -> kind
            self.counts.rejected[check] = self.counts.rejected.get(check, 0) + 1
            self._timeline.write(segment=k, time_fs=k * self.segment_fs, mode="sim",
                                 event="reject", reason=reason, **_rounded(info), **self._calls())
            if not self._sync_monitors(k):
                return
            self._leave_ml(sw.reentry_segments)
        start = self.current
        frame = self._simulate(start)
        sums, count = self.species_reference
        for p in frame.interior_momenta:
            for s, t in species_temperatures(p, self.masses, self.symbols).items():
                sums[s] += t
        self.species_reference = (sums, count + len(frame.interior_momenta))
        shadow = None
        if self.forecaster is not None:
            shadow = self._shadow_error(start, frame)
            self.counts.shadow_errors.append(shadow)
            if self.cfg.hybrid.fine_tune is not None:
                self._collect_and_tune(start, frame)
            self.streak = self.streak + 1 if shadow <= sw.tolerance_A else 0
            if shadow > sw.tolerance_A:
                self.needed = sw.verified_segments
        self._timeline.write(segment=k, time_fs=k * self.segment_fs, mode="sim",
                             event="simulate", shadow_error_A=shadow, **self._calls())
        self._commit(frame)
        self.current = frame
        if self.forecaster is not None and self.streak >= self.needed:
            self.mode, self.ml_run = "ml", 0
            self._timeline.write(segment=k + 1, time_fs=(k + 1) * self.segment_fs, mode="ml",
                                 event="switch",
                                 reason=f"{self.streak} shadow forecasts within tolerance",
                                 **self._calls())

    def run(self, resume: bool = False, overwrite: bool = False, progress: bool = True,
            comm: Any = None, monitor_executor: Any = None) -> HybridResult:
        """Run (or continue) the hybrid loop to the configured length.

        Under MPI (``hybridmd.hybrid.mpi``): ``comm`` puts the interpolator worker on rank 1 of it,
        ``monitor_executor`` (an ``mpi4py.futures`` executor) runs the monitors on other ranks.
        """
        t0 = time.perf_counter()
        paths = self._prepare_output(resume, overwrite)
        self._tail_length = self.cfg.hybrid.queue_size + 2 * self.context_frames + 2
        resume_state = self._load_checkpoint() if resume else None
        self._timeline = Timeline(paths["timeline"],
                                   resume_state["timeline_lines"] if resume_state else None)
        self.monitors = MonitorPool(self.cfg.hybrid.monitor.workers,
                                    self.cfg.model_dump(mode="json"), self.context,
                                    monitor_executor, self._monitor_atoms())
        stream_tail = self._restore(resume_state) if resume_state else None
        # opened after the restore has cut the file back to the committed frames
        self._coarse_writer = FrameWriter(paths["coarse"])
        self.stream = StreamingInterpolation(
            self.cfg.hybrid.interpolator, paths["fine"], self.atoms.numbers, self.n,
            self.dt_fs, self.masses, transport="mpi" if comm else self.cfg.hybrid.transport,
            maxsize=self.cfg.hybrid.queue_size, threads=1, comm=comm, worker_rank=1,
            resume_frames=stream_tail[0] if stream_tail else None)
        interrupted = False
        last_ckpt = time.monotonic()
        try:
            self.stream.start()
            if stream_tail:
                for frame in stream_tail[1]:
                    self.stream.submit(frame)
            else:
                self._start()
            with _stop_on_signals() as stop, tqdm(
                    total=self.n_segments, initial=self.current.index, unit="seg",
                    disable=not progress, mininterval=1.0, desc="hybrid") as bar:
                while not interrupted:
                    while self.current.index < self.n_segments:
                        before = self.current.index
                        self._step()
                        bar.update(self.current.index - before)
                        bar.set_postfix(mode=self.mode,
                                        ml=self.counts.ml_segments + len(self.pending))
                        if not self.pending and not self.monitors.outstanding:
                            self._snapshot()
                            if (time.monotonic() - last_ckpt
                                    >= self.cfg.output.checkpoint_interval_s):
                                self._checkpoint()
                                last_ckpt = time.monotonic()
                        if stop.signal is not None:
                            interrupted = True
                            log.warning("stopped by signal %d at segment %d; resume with "
                                        "--resume", stop.signal, self.current.index)
                            break
                    # the last ML frames wait for their monitors; a rollback goes on simulating
                    if interrupted or self._sync_monitors(self.current.index):
                        break
            if not interrupted:
                self._snapshot()
            self._checkpoint(finished=not interrupted)
            fine_frames = self.stream.close()
        except SimulationError as exc:
            self._on_failure(exc)
            raise
        except BaseException:
            self.stream.abort()
            if self._quiet is not None:
                self._checkpoint()
            raise
        finally:
            self.monitors.close()
            self._coarse_writer.close()
            self._timeline.close()
        summary = self._summary(time.perf_counter() - t0, fine_frames)
        write_json_atomic(paths["summary"], summary)
        return HybridResult(self.out, summary, interrupted)

    def _monitor_atoms(self) -> Atoms | None:
        if self.monitor_calculator is None:
            return None
        atoms = self.atoms.copy()
        atoms.calc = self.monitor_calculator
        return atoms

    def _start(self) -> None:
        """Frame 0: the structure with its initial momenta (no O-step before the first segment)."""
        atoms = self.atoms
        atoms.set_momenta(self._p0)
        before = self.counter.calls
        forces = atoms.get_forces()
        self.counts.force_calls += self.counter.calls - before
        self._check_safety(0, atoms.positions, forces, self._p0)
        frame = BoundaryFrame(0, 0.0, atoms.get_positions(), self._p0.copy(), self._p0.copy(),
                              forces, float(atoms.get_potential_energy()), "sim", "verified",
                              rng_state=self._rng_state())
        self._commit(frame)
        self.current = frame
        self._snapshot()
        self._checkpoint()

    def _on_failure(self, exc: SimulationError) -> None:
        """Frames committed so far are on disk; the failing state goes to failure.extxyz."""
        if self._quiet is not None:
            self._checkpoint()
        try:
            self.stream.close()
        except Exception:  # noqa: BLE001 (the original error is the one to report)
            self.stream.abort()
        failure = getattr(self, "_failure", None)
        if failure is not None:
            index, positions, momenta = failure
            atoms = Atoms(numbers=self.atoms.numbers, positions=positions, masses=self.masses)
            atoms.set_momenta(momenta)
            atoms.write(self.out / "failure.extxyz", format="extxyz")
        exc.args = (f"{exc.args[0]}. The {self.n_committed} coarse frames before it are in "
                    f"{self.out / COARSE_NAME}, their fine frames in {self.out / FINE_NAME}"
                    + ("; the failing state is in failure.extxyz" if failure else ""),)

    # ------------------------------------------------------------------ files

    def _paths(self) -> dict[str, Path]:
        return {"coarse": self.out / COARSE_NAME, "fine": self.out / FINE_NAME,
                "timeline": self.out / TIMELINE_NAME, "summary": self.out / SUMMARY_NAME,
                "checkpoint": self.out / CHECKPOINT_NAME, "tail": self.out / TAIL_NAME,
                "metadata": self.out / METADATA_NAME}

    def _prepare_output(self, resume: bool, overwrite: bool) -> dict[str, Path]:
        paths = self._paths()
        existing = [p for p in paths.values() if p.exists()]
        if resume:
            if not paths["checkpoint"].exists():
                raise SimulationError(f"nothing to resume in {self.out}: no {CHECKPOINT_NAME}; "
                                      "run without --resume")
            meta = json.loads(paths["metadata"].read_text())
            changed = [k for k in _changed_keys(meta["input"], self.cfg.model_dump(mode="json"))
                       if k not in _RESUMABLE_CHANGES]
            if changed:
                names = ", ".join(".".join(k) for k in changed)
                raise SimulationError(
                    f"the input changed since the run in {self.out} started ({names}); only "
                    "dynamics.steps/duration_fs may change on --resume (to extend a run)")
            return paths
        if existing and not overwrite:
            raise SimulationError(
                f"{self.out} already holds a run ({', '.join(p.name for p in existing)}); "
                "continue it with --resume, or start again with --overwrite")
        for path in existing:
            path.unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(paths["metadata"], run_metadata(self.cfg.model_dump(mode="json"),
                                                          describe_calculator(
                                                              self.cfg.calculator)))
        return paths

    def _coarse_atoms(self, frame: BoundaryFrame) -> Atoms:
        atoms = Atoms(numbers=self.atoms.numbers, positions=frame.positions, masses=self.masses)
        atoms.set_momenta(frame.departure)
        atoms.info.update(time_fs=frame.time_fs, coarse_index=frame.index, origin=frame.origin,
                          status=frame.status)
        atoms.calc = SinglePointCalculator(atoms, energy=frame.energy, forces=frame.forces)
        return atoms

    def _coarse_frame(self, frame: BoundaryFrame) -> CoarseFrame:
        return CoarseFrame(frame.index, frame.time_fs, frame.positions, frame.departure,
                           frame.arrival, frame.forces, frame.energy, frame.origin,
                           frame.interior_positions, frame.interior_momenta)

    def _snapshot(self) -> None:
        """Remember the state now, at a quiet point: nothing pending, no monitor outstanding.

        Resuming from it repeats exactly what the run did next (decisions depend only on
        the state and the seeded generators), so a resumed run continues the same trajectory.
        """
        # Taken after every quiet segment, so it holds references and lengths, not copies:
        # committed frames are never changed, and the counters' lists, like the fine-tuning
        # pairs, only grow; ``_checkpoint`` cuts them back to these lengths.
        self._quiet = {
            "committed": self.n_committed, "frame": self.committed[-1],
            "mode": self.mode, "streak": self.streak, "needed": self.needed,
            "ml_run": self.ml_run, "species_history": list(self.species_history),
            "species_reference": copy.deepcopy(list(self.species_reference)),
            "counts": {k: len(v) if isinstance(v, list) else copy.copy(v)
                       for k, v in self.counts.__dict__.items()},
            "timeline_lines": self._timeline.lines,
            "tail": list(self.committed),
            "tune": {"pairs": len(self.tune_pairs), "tuned_at": self.tuned_at,
                     "tunes": self.tunes},
            "tuned_state": self._tuned_state,
        }

    def _checkpoint(self, finished: bool = False) -> None:
        """Write the last quiet state (see ``_snapshot``) to disk."""
        paths = self._paths()
        state = dict(self._quiet)
        tail, frame = state.pop("tail"), state.pop("frame")
        tmp = paths["tail"].with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"tail": [self._coarse_frame(f) for f in tail],
                         "tuned_state": state.pop("tuned_state"),
                         "tune_pairs": self.tune_pairs[:state["tune"]["pairs"]]}, fh)
        tmp.replace(paths["tail"])
        counts = {k: getattr(self.counts, k)[:v] if isinstance(getattr(self.counts, k), list)
                  else v for k, v in state["counts"].items()}
        write_json_atomic(paths["checkpoint"], {**state, "frame": frame_json(frame),
                                                "counts": counts, "finished": finished})

    def _load_checkpoint(self) -> dict[str, Any]:
        return json.loads(self._paths()["checkpoint"].read_text())

    def _restore(self, state: dict[str, Any]) -> tuple[list[CoarseFrame], list[CoarseFrame]]:
        """Back to the checkpointed commit; the stream's primer and the frames to re-send."""
        paths = self._paths()
        frame = frame_from_json(state["frame"])
        self.current = frame
        self.committed = [frame]
        self.n_committed = state["committed"]
        self._set_rng_state(frame.rng_state)
        self.thermostat.energy = frame.thermostat_energy
        self.mode, self.streak, self.needed = state["mode"], state["streak"], state["needed"]
        self.ml_run = state["ml_run"]
        self.species_history.extend(state["species_history"])
        self.species_reference = tuple(state["species_reference"])
        self.counts = _Counters(**state["counts"])
        truncate_frames(paths["coarse"], self.n_committed)
        with open(paths["tail"], "rb") as fh:
            saved = pickle.load(fh)
        tail: list[CoarseFrame] = saved["tail"]
        self.tune_pairs = saved["tune_pairs"]
        self.tuned_at, self.tunes = state["tune"]["tuned_at"], state["tune"]["tunes"]
        self._tuned_state = saved["tuned_state"]
        if self._tuned_state is not None:
            self.forecaster.net.load_state_dict(self._tuned_state)
        fine_end = last_coarse_index(paths["fine"], frame.index)
        primer = [f for f in tail if f.index <= fine_end]
        resend = [f for f in tail if f.index > fine_end]
        if not primer or primer[0].index > max(0, fine_end - self.context_frames + 1):
            raise SimulationError(
                f"cannot resume the fine trajectory in {paths['fine']}: it ends at coarse frame "
                f"{fine_end}, the saved stream tail starts at {tail[0].index}; start again "
                "with --overwrite")
        log.info("resuming at coarse frame %d (%d committed; fine output continues after "
                 "coarse frame %d)", frame.index, self.n_committed, fine_end)
        return primer, resend

    def _summary(self, wall: float, fine_frames: int) -> dict[str, Any]:
        c = self.counts
        segments = c.sim_segments + c.ml_segments
        full = segments * self.n + 1
        total = c.force_calls + c.monitor_calls

        def stats(values: list[float]) -> dict[str, float] | None:
            if not values:
                return None
            a = np.asarray(values)
            return {"count": len(a), "mean": float(a.mean()), "p95": float(np.quantile(a, 0.95)),
                    "max": float(a.max())}

        return {
            "directory": str(self.out), "segments": segments, "stride": self.n,
            "segment_fs": self.segment_fs, "simulated_segments": c.sim_segments,
            "ml_segments": c.ml_segments, "ml_verified_segments": c.ml_verified,
            "ml_fraction": c.ml_segments / segments if segments else 0.0,
            "rollbacks": c.rollbacks, "discarded_ml_segments": c.discarded_segments,
            "rejected_forecasts": dict(c.rejected),
            "force_calls": {"driver": c.force_calls, "monitors": c.monitor_calls,
                            "total": total, "full_simulation": full,
                            "saved_driver": 1 - c.force_calls / full,
                            "saved_total": 1 - total / full},
            "shadow_error_A": stats(c.shadow_errors),
            "monitor_error_A": stats(c.monitor_errors),
            "mean_temperature_K": float(np.mean(c.temperatures)) if c.temperatures else None,
            "target_temperature_K": self.cfg.dynamics.temperature_K,
            "fine_frames": fine_frames, "wall_time_s": wall,
        }


def _rounded(info: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) for k, v in info.items() if k != "reason"}


def _formula(numbers: Any) -> str:
    return Atoms(numbers=list(numbers)).get_chemical_formula()


def run_hybrid(cfg: RunConfig, resume: bool = False, overwrite: bool = False,
               progress: bool = True, context: dict[str, Any] | None = None) -> HybridResult:
    """Set up and run the hybrid loop from a validated input."""
    return HybridRun(cfg, context=context).run(resume=resume, overwrite=overwrite,
                                               progress=progress)
