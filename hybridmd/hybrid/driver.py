"""`hybridmd run`: the hybrid loop of simulation and ML forecasts, monitored and streamed.

Time advances in segments of Δt = n·Δτ. In ``sim`` mode a segment is n velocity-Verlet steps
with the real calculator, and the ML (a forecaster network, or the force field the run learns:
``hybridmd.hybrid.predictors``) predicts the same segment in the shadow; the adaptive switch
(``hybridmd.hybrid.switch``) decides when to trust it. In ``ml`` mode the ML makes the segment;
the driver goes back to simulation when a check rejects a forecast, after ``max_ml_segments``,
or when a monitor finds a re-simulated segment beyond tolerance: then it rolls back to the
last verified frame and simulates from there. With ``forecaster: learn`` a background learner
(``hybridmd.hybrid.learner``) fits the force field to every frame the expensive calculator
labeled and hands back versions at fixed points of the run.

Frames are committed (written to the coarse trajectory and streamed to the interpolator worker)
only once no pending monitor result can roll them back. A committed frame is ``verified``
(simulated, or a monitored forecast within tolerance) or ``unverified`` (an ML frame nobody
re-simulated), and is never replaced. The checkpoint (``hybridmd.hybrid.checkpointing``) holds
the state at the last quiet commit, so a killed run resumes there and continues the very same
trajectory, with the same counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.md.verlet import VelocityVerlet
from tqdm import tqdm

from hybridmd.calculators import build_calculator, describe_calculator
from hybridmd.config import RunConfig
from hybridmd.engines.ase_md import internal_degrees_of_freedom, maxwell_boltzmann_momenta
from hybridmd.hybrid.checkpointing import Checkpointer
from hybridmd.hybrid.dataset import ExpensiveFrames
from hybridmd.hybrid.files import COARSE_NAME, FINE_NAME, RunFolder, Timeline, coarse_atoms
from hybridmd.hybrid.forecaster import load_forecaster
from hybridmd.hybrid.learned_file import is_learned_forecaster, load_learned, save_learned
from hybridmd.hybrid.learner import FitFailure, Learner, LearnerError, make_executor
from hybridmd.hybrid.ledger import CallLedger, RunStats
from hybridmd.hybrid.monitor import MonitorPool, MonitorResult, MonitorTask
from hybridmd.hybrid.predictors import LearnedPredictor, NetworkPredictor, max_distance
from hybridmd.hybrid.segments import (
    BoundaryFrame,
    BoundaryThermostat,
    CallCounter,
    kinetic_energy,
    simulate_segment,
)
from hybridmd.hybrid.selection import MonitorChoice
from hybridmd.hybrid.summary import build_summary
from hybridmd.hybrid.surrogate import FitSettings
from hybridmd.hybrid.switch import Switch
from hybridmd.hybrid.timeline_plot import write_timeline_plot
from hybridmd.output import FrameWriter
from hybridmd.preflight import forecaster_mismatch
from hybridmd.safety import RunInputError, SimulationError, check_state
from hybridmd.signals import stop_on_signals
from hybridmd.streaming import CoarseFrame, StreamingInterpolation
from hybridmd.structures import build_structure, check_start_geometry, load_momenta
from hybridmd.units import FS, KB

log = logging.getLogger(__name__)

#: how the interior frames of a learned ML segment are labelled in the fine trajectory
LEARNED_METHOD = "learned force field"


@dataclass
class HybridResult:
    """Where the outputs are and the summary printed at the end."""

    directory: Path
    summary: dict[str, Any]
    interrupted: bool = False
    signal: int | None = None  #: the signal that stopped the run (exit code 128 + it)


class HybridRun:
    """A hybrid run set up from a validated input: structure, calculator, ML, policy."""

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
        self.folder = RunFolder(cfg.output.directory)
        self.out = self.folder.directory
        self.atoms: Atoms = build_structure(cfg.system)
        check_start_geometry(self.atoms, cfg.safety, cfg.system.file or cfg.system.molecule)
        self.atoms.calc = calculator or build_calculator(cfg.calculator, self.atoms)
        self.counter = CallCounter.of(self.atoms.calc)
        self.ledger = CallLedger(self.counter)
        self.stats = RunStats()
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
        self.switch = Switch(h.switch, self.masses, self.symbols)
        self.choice = MonitorChoice(h.monitor.fraction, h.monitor.uncertain_fraction,
                                    self.monitor_rng)
        #: frames the expensive calculator labeled, and whence the learning started
        self.dataset: ExpensiveFrames | None = None
        self.learned_from: dict[str, Any] | None = None
        self.predictor = self._make_predictor()
        self.learner: Learner | None = None
        self.learned_interior = h.interpolator == "learn"
        self.context_frames = self._check_interpolator()
        self.committed: list[BoundaryFrame] = []  #: recent committed frames (stream tail)
        self.pending: list[BoundaryFrame] = []  #: ML frames not yet committed
        self.n_committed = 0
        self.steps = 0  #: segments made or tried (the learner's clock)
        #: online fine-tuning of a forecaster network: (r0, v0, a0, r1, v1) of every simulated
        #: segment, how many of them the last tuning used, how many tunings, the weights after
        #: the last one
        self.tune_pairs: list[tuple[np.ndarray, ...]] = []
        self.tuned_at, self.tunes = 0, 0
        self._tuned_state: dict[str, Any] | None = None
        self.checkpointer = Checkpointer(self)
        self._fine_before = 0  #: fine frames already on disk when a resumed run started
        #: wall time of the run's earlier parts (to its last checkpoint), and when this one began
        self._wall_before, self._t0 = 0.0, time.perf_counter()

    def wall_s(self) -> float:
        """The run's wall time so far, across resumes (a killed part counts to its last
        checkpoint)."""
        return self._wall_before + time.perf_counter() - self._t0

    # ------------------------------------------------------------------ checks at start

    def _make_predictor(self) -> NetworkPredictor | LearnedPredictor | None:
        spec = self.cfg.hybrid.forecaster
        if spec is None:
            return None
        if spec == "learn":
            self.dataset = ExpensiveFrames(len(self.atoms))
            return LearnedPredictor(self.masses, self.n, self.dt_fs)
        if is_learned_forecaster(Path(spec)):
            return self._warm_start(Path(spec))
        forecaster = load_forecaster(spec)
        problem = forecaster_mismatch(self.atoms.numbers, self.dt_fs, self.n, forecaster.numbers,
                                      forecaster.dt_fs, forecaster.stride)
        if problem:
            raise RunInputError(f"hybrid.forecaster: {spec} {problem}")
        return NetworkPredictor(forecaster, self.atoms, self.ledger)

    def _warm_start(self, path: Path) -> LearnedPredictor:
        """An earlier learning run's forecaster.pt: its version and frames, learning on."""
        model, dataset, data = load_learned(path)
        if list(data["numbers"]) != list(self.atoms.numbers):
            raise RunInputError(
                f"hybrid.forecaster {path} was learned for {_formula(data['numbers'])}; the "
                f"system is {_formula(self.atoms.numbers)} (in this order); use "
                "forecaster: learn to start afresh")
        theirs = data["provenance"].get("calculator_config")
        ours = self.cfg.calculator.model_dump(mode="json")
        if theirs != ours:
            raise RunInputError(
                f"hybrid.forecaster {path} was learned from another calculator ({theirs}); "
                f"this run's is {ours}. Frames of one level of theory cannot teach another: "
                "use forecaster: learn to start afresh")
        self.dataset = dataset
        self.learned_from = {"path": str(path), "frames": len(dataset),
                             "version": model.version}
        return LearnedPredictor(self.masses, self.n, self.dt_fs, model)

    def _check_interpolator(self) -> int:
        """Refuse an interpolator that does not fit the run; its context C."""
        from hybridmd.streaming.worker import IncrementalReconstructor, make_interpolator

        try:
            return IncrementalReconstructor(
                make_interpolator(self._stream_interpolator()), self.atoms.numbers,
                self.masses, self.n, self.dt_fs).context
        except ValueError as exc:
            raise RunInputError(f"hybrid.interpolator: {exc}") from None

    def _stream_interpolator(self) -> str:
        # with interpolator: learn every segment carries its own fine frames; the quintic
        # spline is only the worker's rule for an interval that lacks them (none does)
        return "quintic" if self.learned_interior else self.cfg.hybrid.interpolator

    def _fit_settings(self) -> FitSettings:
        learn = self.cfg.hybrid.learn
        return FitSettings(max_frames=learn.max_frames_for(len(self.atoms)),
                           kernel_width=learn.kernel_width, processes=learn.threads)

    def _make_learner(self, executor: Any) -> Learner | None:
        if not isinstance(self.predictor, LearnedPredictor):
            return None
        learn = self.cfg.hybrid.learn
        learner = Learner(self._fit_settings(), self.atoms.numbers, learn.first_fit_frames,
                          learn.refit_frames, learn.lag_segments,
                          executor or make_executor(learn.transport),
                          owns_executor=executor is None)
        if self.predictor.model is not None:  # a warm start: refit once enough are new
            learner.next_version = self.predictor.model.version + 1
            learner.last_request_frames = len(self.dataset)
        return learner

    # ------------------------------------------------------------------ state handling

    def _rng_state(self) -> dict[str, Any]:
        return {"thermostat": self.thermostat.rng.bit_generator.state,
                "monitor": self.monitor_rng.bit_generator.state}

    def _set_rng_state(self, state: dict[str, Any]) -> None:
        self.thermostat.rng.bit_generator.state = state["thermostat"]
        self.monitor_rng.bit_generator.state = state["monitor"]

    def _boundary(self, index: int, positions: np.ndarray, arrival: np.ndarray,
                  forces: np.ndarray, energy: float, origin: str, status: str,
                  interior: tuple[np.ndarray, np.ndarray] | None = None,
                  interior_method: str = "simulation", exact: bool = True,
                  raw_uncertainty: float | None = None) -> BoundaryFrame:
        """The frame at the end of a segment, with the O-step applied to its momenta."""
        self._check_safety(index, positions, forces, arrival)
        departure = self.thermostat.apply(arrival)
        return BoundaryFrame(
            index, index * self.segment_fs, positions.copy(), arrival.copy(), departure,
            forces.copy(), float(energy), origin, status,
            None if interior is None else interior[0], None if interior is None else interior[1],
            self._rng_state(), self.thermostat.energy, exact=exact,
            interior_method=interior_method, raw_uncertainty=raw_uncertainty)

    def _check_safety(self, index: int, positions: np.ndarray, forces: np.ndarray,
                      momenta: np.ndarray) -> None:
        temperature = 2 * kinetic_energy(momenta, self.masses) / (self.ndof * KB)
        problem = check_state(positions, forces, temperature, self.cfg.safety)
        if problem:
            self._failure = (index, positions, momenta)
            raise SimulationError(
                f"coarse frame {index} (t = {index * self.segment_fs:.1f} fs): {problem}")

    # ------------------------------------------------------------------ segments

    def _simulate(self, start: BoundaryFrame) -> tuple[BoundaryFrame, Any]:
        """The segment from ``start`` by simulation; the frame and the segment's frames."""
        known = (start.forces, start.energy) if start.exact else None
        with self.ledger.charge("simulation"):
            seg = simulate_segment(self.atoms, self.vv, start.positions, start.departure,
                                   self.n, known)
        if self.dataset is not None:
            first = 1 if start.exact else 0  # a learned ML frame is labeled here first
            self.dataset.add(seg.positions[first:], seg.all_forces[first:], seg.energies[first:],
                             "simulation")
        frame = self._boundary(start.index + 1, seg.positions[-1], seg.momenta[-1], seg.forces,
                               seg.energy, "sim", "verified",
                               (seg.positions[1:-1], seg.momenta[1:-1]))
        return frame, seg

    def _collect_and_tune(self, start: BoundaryFrame, end: BoundaryFrame) -> None:
        """Keep the simulated segment as training data; fine-tune when enough are new."""
        ft, m = self.cfg.hybrid.fine_tune, self.masses[:, None]
        self.tune_pairs.append((start.positions, start.departure / m * FS,
                                start.forces / m * FS**2, end.positions, end.arrival / m * FS))
        if len(self.tune_pairs) - self.tuned_at < ft.every_segments:
            return
        forecaster = self.predictor.forecaster
        r0, v0, a0, r1, v1 = (np.array(x) for x in zip(*self.tune_pairs, strict=True))
        before, after = forecaster.fine_tune(
            r0, v0, a0, r1, v1, ft.epochs, ft.learning_rate, ft.batch_size,
            seed=self.cfg.dynamics.seed * 1000 + self.tunes)
        self.tuned_at, self.tunes = len(self.tune_pairs), self.tunes + 1
        self._tuned_state = {k: v.detach().clone()
                             for k, v in forecaster.net.state_dict().items()}
        self._timeline.write(segment=end.index, time_fs=end.time_fs, mode=self.switch.mode,
                             event="fine-tune", reason=f"{len(r0)} simulated segments; loss "
                             f"{before:.3g} -> {after:.3g}", **self.ledger.row())

    def _try_forecast(self, start: BoundaryFrame) -> tuple[BoundaryFrame | None, dict[str, Any]]:
        """An ML segment from ``start``, or None with the check that rejected it."""
        forecast = self.predictor.forecast(start, self.cfg.safety.min_distance_A)
        if isinstance(forecast, str):
            return None, {"reason": forecast}
        momenta, info, reason = self.switch.check(forecast, start,
                                                  self.predictor.uncertainty_check)
        if reason is not None:
            return None, {**info, "reason": reason}
        interior = None
        if self.learned_interior and forecast.segment is not None:
            interior = (forecast.segment.positions[1:-1], forecast.segment.momenta[1:-1])
        frame = self._boundary(start.index + 1, forecast.positions, momenta, forecast.forces,
                               forecast.energy, "ml", "unverified", interior, LEARNED_METHOD,
                               forecast.exact, forecast.raw_uncertainty)
        return frame, info

    # ------------------------------------------------------------------ learning

    def _learn(self) -> None:
        """At a segment boundary: take up a version that is due, ask for one that is."""
        learner = self.learner
        if learner is None:
            return
        if learner.take_up_due(self.steps):
            model = learner.take_up()
            k = self.current.index
            if isinstance(model, FitFailure):
                reason = (f"version {model.version} failed ({model.message}); keeping "
                          f"version {self.predictor.version}")
            else:
                self.predictor.take_up(model)
                self._save_learned()
                reason = model.describe()
            self._timeline.write(segment=k, time_fs=k * self.segment_fs, mode=self.switch.mode,
                                 event="learn", reason=reason, version=self.predictor.version,
                                 **self.ledger.row())
        if learner.request_due(len(self.dataset)):
            learner.request(self.steps, self.dataset)

    def _save_learned(self) -> None:
        if self.learner is None or self.predictor.model is None:
            return
        model = self.predictor.model
        save_learned(self.out, model, self.dataset, self.atoms.numbers, self.masses,
                     self.dt_fs, self.n, self._fit_settings(),
                     {"calculator": describe_calculator(self.cfg.calculator),
                      "calculator_config": self.cfg.calculator.model_dump(mode="json"),
                      "run": str(self.out), "learned_from": self.learned_from})

    # ------------------------------------------------------------------ commit / rollback

    def _commit(self, frame: BoundaryFrame) -> None:
        if self.on_commit is not None:
            self.on_commit(frame)
        self._coarse_writer.write(coarse_atoms(frame, self.atoms.numbers, self.masses))
        self.stream.submit(self._coarse_frame(frame))
        self.committed.append(frame)
        del self.committed[:-self._tail_length]
        self.n_committed += 1
        if frame.index > 0:
            self.stats.temperatures.append(
                2 * kinetic_energy(frame.arrival, self.masses) / (self.ndof * KB))
            if frame.origin == "sim":
                self.stats.sim_segments += 1
            else:
                self.stats.ml_segments += 1
                self.stats.ml_verified += frame.status == "verified"

    def _commit_through(self, index: int) -> None:
        while self.pending and self.pending[0].index <= index:
            self._commit(self.pending.pop(0))

    def _apply_monitors(self, results: list[tuple[MonitorResult, bool]], now: int) -> bool:
        """Apply monitor results in order; False: one of them rolled the driver back."""
        ok = True
        for result, attached in results:
            ok = self._apply_monitor(result, attached and ok, now) and ok
        return ok

    def _apply_monitor(self, result: MonitorResult, attached: bool, now: int) -> bool:
        """Count a monitor's calls, learn from its frames, and check its segment's forecast
        if the segment is still pending (``attached``); False: rolled back."""
        self.ledger.add("monitors", result.force_calls)
        if self.dataset is not None:
            first = 0 if result.labeled_start else 1
            seg = result.frames
            self.dataset.add(seg.positions[first:], seg.all_forces[first:], seg.energies[first:],
                             "monitor")
        time_fs = result.segment * self.segment_fs
        if not attached:
            self._timeline.write(segment=result.segment, time_fs=time_fs, mode="ml",
                                 event="monitor", reason="its segment was rolled back",
                                 **self.ledger.row())
            return True
        frame = next(f for f in self.pending if f.index == result.segment + 1)
        error = max_distance(frame.positions, result.positions)
        errors = (self.stats.monitor_errors if result.reason == "random"
                  else self.stats.uncertain_monitor_errors)
        errors.append(error)
        self.predictor.observe(frame.raw_uncertainty, error)
        ok = error <= self.cfg.hybrid.switch.tolerance_A
        self._timeline.write(segment=result.segment, time_fs=time_fs, mode="ml", event="monitor",
                             reason=("ok" if ok else "beyond tolerance")
                             + ("" if result.reason == "random" else f" ({result.reason})"),
                             monitor_error_A=error, **self.ledger.row())
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
        self._timeline.write(segment=now, time_fs=now * self.segment_fs, mode="sim",
                             event="rollback", reason=f"{reason}; back to frame {last.index}",
                             **self.ledger.row())
        log.info("rollback to coarse frame %d: %s", last.index, reason)
        self.pending.clear()
        self.monitors.detach()
        self._set_rng_state(last.rng_state)
        self.thermostat.energy = last.thermostat_energy
        self.current = last
        self.switch.leave_ml(self.cfg.hybrid.switch.verified_segments)

    def _sync_monitors(self, now: int) -> bool:
        """Wait for every outstanding monitor; commit what they verify. False: rolled back."""
        if not self._apply_monitors(self.monitors.drain(), now):
            return False
        self._commit_through(self.pending[-1].index if self.pending else -1)
        return True

    # ------------------------------------------------------------------ the loop

    def _step(self) -> None:
        """Make the segment that starts at ``self.current``."""
        k = self.current.index
        self._learn()
        self.steps += 1
        if not self._apply_monitors(self.monitors.due(k, self.lag), k):
            return
        if self.switch.mode == "ml" and self._ml_step(k):
            return
        start = self.current
        frame, seg = self._simulate(start)
        shadow = predicted = None
        if self.predictor is not None and self.predictor.ready:
            shadow, predicted = self.predictor.shadow(start, seg)
            self.stats.shadow_errors.append(shadow)
            if self.cfg.hybrid.fine_tune is not None:
                self._collect_and_tune(start, frame)
        entered = self.switch.simulated(seg.momenta[1:-1], shadow)
        self._timeline.write(segment=k, time_fs=k * self.segment_fs, mode="sim",
                             event="simulate", shadow_error_A=shadow, uncertainty_A=predicted,
                             version=self.predictor.version if self.predictor else None,
                             **self.ledger.row())
        self._commit(frame)
        self.current = frame
        if entered:
            if self.stats.first_ml_calls is None:
                self.stats.first_ml_calls = self.ledger.total
            self._timeline.write(segment=k + 1, time_fs=(k + 1) * self.segment_fs, mode="ml",
                                 event="switch",
                                 reason=f"{self.switch.streak} shadow forecasts within "
                                        "tolerance", **self.ledger.row())

    def _ml_step(self, k: int) -> bool:
        """An ML segment from ``self.current``; False: rejected, simulate it instead."""
        sw = self.cfg.hybrid.switch
        start = self.current
        frame, info = self._try_forecast(start)
        version = self.predictor.version
        if frame is not None:
            self.pending.append(frame)
            reason = self.choice.choose(info["uncertainty_A"])
            if reason is not None:
                known = (start.forces, start.energy) if start.exact else None
                self.monitors.submit(MonitorTask(k, start.positions, start.departure, known,
                                                 reason), k)
            self._timeline.write(segment=k, time_fs=k * self.segment_fs, mode="ml",
                                 event="forecast",
                                 reason={None: "", "random": "monitored"}.get(
                                     reason, f"monitored ({reason})"),
                                 version=version, **_rounded(info), **self.ledger.row())
            self.current = frame
            if self.switch.forecast_taken():
                self._timeline.write(segment=k + 1, time_fs=(k + 1) * self.segment_fs,
                                     mode="sim", event="switch", reason="longest ML run",
                                     **self.ledger.row())
                if self._sync_monitors(k + 1):
                    self.switch.leave_ml(sw.reentry_segments)
            return True
        reason = info.pop("reason")
        self.stats.reject(reason)
        self._timeline.write(segment=k, time_fs=k * self.segment_fs, mode="sim",
                             event="reject", reason=reason, version=version, **_rounded(info),
                             **self.ledger.row())
        if not self._sync_monitors(k):
            return True
        self.switch.leave_ml(sw.reentry_segments)
        return False

    def run(self, resume: bool = False, overwrite: bool = False, progress: bool = True,
            comm: Any = None, monitor_executor: Any = None,
            learner_executor: Any = None) -> HybridResult:
        """Run (or continue) the hybrid loop to the configured length.

        Under MPI (``hybridmd.hybrid.mpi``): ``comm`` puts the interpolator worker on rank 1 of it,
        ``monitor_executor`` and ``learner_executor`` (``mpi4py.futures`` executors) run the
        monitors and the learner on other ranks.
        """
        self._t0 = time.perf_counter()
        self.folder.check(self.cfg, resume, overwrite)
        if not resume:
            self.folder.prepare(self.cfg)
        paths = self.folder.paths
        self._tail_length = self.cfg.hybrid.queue_size + 2 * self.context_frames + 2
        resume_state = self.checkpointer.load() if resume else None
        self._timeline = Timeline(paths["timeline"],
                                  resume_state["timeline_lines"] if resume_state else None)
        self.monitors = MonitorPool(self.cfg.hybrid.monitor.workers,
                                    self.cfg.model_dump(mode="json"), self.context,
                                    monitor_executor, self._monitor_atoms())
        self.learner = self._make_learner(learner_executor)
        stream_tail = self.checkpointer.restore(resume_state) if resume_state else None
        # opened after the restore has cut the file back to the committed frames
        self._coarse_writer = FrameWriter(paths["coarse"])
        self.stream = StreamingInterpolation(
            self._stream_interpolator(), paths["fine"], self.atoms.numbers, self.n,
            self.dt_fs, self.masses, transport="mpi" if comm else self.cfg.hybrid.transport,
            maxsize=self.cfg.hybrid.queue_size, threads=1, comm=comm, worker_rank=1,
            resume_frames=stream_tail[0] if stream_tail else None)
        interrupted, stopped_by = False, None
        last_ckpt = time.monotonic()
        try:
            self.stream.start()
            if stream_tail:
                for frame in stream_tail[1]:
                    self.stream.submit(frame)
            else:
                self._start()
            with stop_on_signals() as stop, tqdm(
                    total=self.n_segments, initial=self.current.index, unit="seg",
                    disable=not progress, mininterval=1.0, desc="hybrid") as bar:
                while not interrupted:
                    while self.current.index < self.n_segments:
                        before = self.current.index
                        self._step()
                        bar.update(self.current.index - before)
                        bar.set_postfix(mode=self.switch.mode,
                                        ml=self.stats.ml_segments + len(self.pending))
                        if not self.pending and not self.monitors.outstanding:
                            self.checkpointer.snapshot()
                            if (time.monotonic() - last_ckpt
                                    >= self.cfg.output.checkpoint_interval_s):
                                self.checkpointer.write()
                                last_ckpt = time.monotonic()
                        if stop.signal is not None:
                            interrupted, stopped_by = True, stop.signal
                            log.warning("stopped by signal %d at segment %d; resume with "
                                        "--resume", stop.signal, self.current.index)
                            break
                    # the last ML frames wait for their monitors; a rollback goes on simulating
                    if interrupted or self._sync_monitors(self.current.index):
                        break
            if not interrupted:
                self.checkpointer.snapshot()
                self._save_learned()
            # stopped after a resume before any quiet point: the checkpoint on disk is the last
            if self.checkpointer.quiet is not None:
                self.checkpointer.write(finished=not interrupted)
            fine_frames = self._fine_before + self.stream.close()
        except (SimulationError, LearnerError) as exc:
            self._on_failure(exc)
            raise
        except BaseException:
            self.stream.abort()
            if self.checkpointer.quiet is not None:
                self.checkpointer.write()
            raise
        finally:
            self.monitors.close()
            if self.learner is not None:
                self.learner.close()
            self._coarse_writer.close()
            self._timeline.close()
        summary = build_summary(self, self.wall_s(), fine_frames)
        self.folder.write_summary(summary)
        write_timeline_plot(self.out)
        return HybridResult(self.out, summary, interrupted, stopped_by)

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
        with self.ledger.charge("simulation"):
            forces = atoms.get_forces()
            energy = float(atoms.get_potential_energy())
        self._check_safety(0, atoms.positions, forces, self._p0)
        if self.dataset is not None:
            self.dataset.add(atoms.positions, forces, [energy], "simulation")
        frame = BoundaryFrame(0, 0.0, atoms.get_positions(), self._p0.copy(), self._p0.copy(),
                              forces, energy, "sim", "verified", rng_state=self._rng_state())
        self._commit(frame)
        self.current = frame
        self.checkpointer.snapshot()
        self.checkpointer.write()

    def _on_failure(self, exc: SimulationError | LearnerError) -> None:
        """Frames committed so far are on disk; the failing state goes to failure.extxyz."""
        if self.checkpointer.quiet is not None:
            self.checkpointer.write()
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
        write_timeline_plot(self.out, with_summary=False)
        exc.args = (f"{exc.args[0]}. The {self.n_committed} coarse frames before it are in "
                    f"{self.out / COARSE_NAME}, their fine frames in {self.out / FINE_NAME}"
                    + ("; the failing state is in failure.extxyz" if failure else "")
                    + ("" if failure else "; --resume continues from the last checkpoint"),)

    def _coarse_frame(self, frame: BoundaryFrame) -> CoarseFrame:
        return CoarseFrame(frame.index, frame.time_fs, frame.positions, frame.departure,
                           frame.arrival, frame.forces, frame.energy, frame.origin,
                           frame.interior_positions, frame.interior_momenta,
                           frame.interior_method)


def _rounded(info: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) for k, v in info.items() if k != "reason"}


def _formula(numbers: Any) -> str:
    return Atoms(numbers=list(numbers)).get_chemical_formula()


def run_hybrid(cfg: RunConfig, resume: bool = False, overwrite: bool = False,
               progress: bool = True, context: dict[str, Any] | None = None) -> HybridResult:
    """Set up and run the hybrid loop from a validated input."""
    return HybridRun(cfg, context=context).run(resume=resume, overwrite=overwrite,
                                               progress=progress)
