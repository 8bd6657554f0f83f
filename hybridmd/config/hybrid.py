"""The input of `hybridmd run`: the ``hybrid:`` section (switch, monitor, check, learn,
fine_tune) and the run's ``output:``.

The sections are checked for their shapes only; whether a forecaster file is one an earlier
learning run left is known when the run reads it, which then asks ``learning_problem``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from hybridmd.config.base import (
    MAX_BATCH,
    MAX_COUNT,
    MAX_EPOCHS,
    MAX_FIT_FRAMES,
    MAX_LENGTH_A,
    MAX_QUEUE,
    MAX_REPLICAS,
    MAX_SECONDS,
    MAX_THREADS,
    MAX_WORKERS,
    Strict,
    existing_file,
    interpolator_spec,
    known_or_file,
)
from hybridmd.config.calculator import CalculatorConfig
from hybridmd.config.dynamics import ASEEngineConfig, DynamicsConfig, RunEngineConfig
from hybridmd.config.output import SafetyConfig, default_output_directory
from hybridmd.config.system import SystemConfig
from hybridmd.data import forecaster_names


class SwitchConfig(Strict):
    """When the driver trusts the forecaster, and the checks that send it back to simulation."""

    tolerance_A: float = Field(
        0.05, gt=0, le=MAX_LENGTH_A,
        description="largest atomic position error of a forecast against the "
        "simulated segment (shadow check in sim mode, monitor in ML mode), Å")
    verified_segments: int = Field(
        5, ge=0, le=MAX_COUNT,
        description="consecutive simulated segments whose shadow forecast is within "
        "tolerance before ML mode starts (at the start, after a rollback or a bad shadow); "
        "0: ML starts as soon as a learned version is taken up, guarded by single-point "
        "checks of every segment (needs hybrid.check.halve_after)")
    reentry_segments: int = Field(
        1, ge=1, le=MAX_COUNT,
        description="the same after an ML run that ended by a rejected forecast or "
        "by its length")
    max_ml_segments: int = Field(
        40, ge=1, le=MAX_COUNT, description="longest run of ML segments before simulating again")
    disagreement_A: float = Field(
        0.05, gt=0, le=MAX_LENGTH_A,
        description="largest uncertainty of a forecast, Å: a forecaster "
        "network's forward/backward disagreement, or the learned force field's predicted "
        "error (its committee's spread, calibrated on simulated and monitored segments)")
    energy_jump_eV: float = Field(
        0.05, gt=0, le=1e6,
        description="largest change of total energy over an (NVE) ML segment, eV")
    species_temperature: float = Field(
        0.25, gt=0, le=1e6, description="largest relative deviation of any element's mean kinetic "
        "temperature over the last `species_window` ML segments from what equipartition gives "
        "it at those segments' temperature (centre-of-mass motion and, in vacuum, rotation "
        "removed; one element hot, another cold); an element of n atoms is allowed at least "
        "2 sqrt(2 / (3 n)), its own dynamics' spread (1.63 for one atom, 0.58 for 8, this "
        "value from 43 atoms on)")
    species_window: int = Field(50, ge=1, le=MAX_COUNT, description="ML segments in that mean")


class MonitorConfig(Strict):
    """Parallel re-simulation of ML segments with the real calculator."""

    fraction: float = Field(
        0.1, ge=0, le=1, description="share of ML segments re-simulated, drawn at random with "
        "the run's seed (an unbiased sample of the ML error)")
    uncertain_fraction: float = Field(
        0.0, ge=0, le=1, description="share of ML segments re-simulated because they are "
        "the most uncertain (above that quantile of the recent ones), on top of `fraction`")
    workers: int = Field(
        1, ge=0, le=MAX_WORKERS,
        description="monitor processes (0: the driver re-simulates them itself)")
    lag_segments: int | None = Field(
        None, ge=1, le=MAX_COUNT,
        description="lag of a background result, in segments: from submitting a "
        "monitor to applying its result, waiting there for a late one (a fixed point, so a "
        "seed gives one trajectory); default: hybrid.stride, the segments a driver in ML "
        "mode makes (one force call each) while a monitor re-simulates one (stride calls)")


class CheckConfig(Strict):
    """Single-point checks of learned ML segments: one expensive call at a segment's end."""

    fraction: float = Field(
        0.0, ge=0, le=1, description="share of ML segments whose end frame is checked, drawn "
        "at random with the run's seed (among those no monitor re-simulates); with "
        "`halve_after` the least share")
    halve_after: int = Field(
        0, ge=0, le=MAX_COUNT, description="adapt the share to the model: every ML segment is "
        "checked at first and after a failed check or monitor, and every `halve_after` passed "
        "checks halve the share, down to `fraction` (0: the share stays `fraction`)")
    uncertain_fraction: float = Field(
        0.0, ge=0, le=1, description="share checked because they are the most uncertain "
        "(above that quantile of the recent ones), on top of `fraction`")
    doubtful: bool = Field(
        True, description="check a forecast whose predicted error is beyond "
        "`switch.disagreement_A` instead of refusing it (with checks on)")
    force_tolerance_eV_A: float = Field(
        0.5, gt=0, le=1e6, description="largest per-atom force error of the learned force "
        "field at a checked frame, eV/Å; beyond it the forecast is rejected and the segment "
        "simulated")
    energy_tolerance_eV_atom: float = Field(
        0.0, ge=0, le=1e6, description="largest energy error of the learned force field at a "
        "checked frame, eV per atom, after its own energy zero (its mean error on its "
        "validation frames) is removed; beyond it the forecast is rejected as by a force "
        "check (0: energies not compared)")
    refit_on_failure: bool = Field(
        False, description="after a failed check: the segment is simulated, the learner "
        "refits at once with its frames (the run waits for the fit) and ML resumes under "
        "checks of every segment, without waiting for a shadow forecast to agree; made for "
        "`switch.verified_segments: 0` (with shadow forecasts gating ML it measured worse: "
        "docs/benchmarks/cold-start.md)")


#: frames a MACE fit uses at most by default (a local model learns from every atom of each)
MACE_MAX_FRAMES = 200
#: passes over the frames of a MACE fit by default (a few seconds a pass for a small cluster)
MACE_EPOCHS = 5
#: highest order of a MACE model's hidden features by default (0: invariant, the fastest fit)
MACE_MAX_L = 0
#: radius of an atom's environment in a MACE model by default, Å
MACE_R_MAX_A = 4.5


class LearnConfig(Strict):
    """The learner of `forecaster: learn`: a force field fitted to the run's expensive frames
    while the run goes on (sGDML), integrated to make ML segments."""

    first_fit_frames: int = Field(
        200, ge=10, le=MAX_COUNT,
        description="expensive frames (each simulated step labels one) before "
        "the first fit")
    refit_frames: int = Field(
        200, ge=1, le=MAX_COUNT,
        description="new expensive frames (from simulated and monitored segments) "
        "that start the next fit")
    refit_growth: float = Field(
        0.0, ge=0, le=10,
        description="new frames that start the next fit, as a share of those handed to the "
        "last one, when more than `refit_frames` (0.5: fits at 200, 400, 600, 900, 1350, ... "
        "frames): fits come as often as with `refit_frames` alone while the model is young, "
        "and later fewer, so that with `max_frames` above the frames labeled (every frame "
        "in every fit) a run's fits together cost a few times its last one's")
    lag_segments: int = Field(
        2, ge=0, le=MAX_COUNT,
        description="lag of a background result, in segments: from asking for a fit "
        "to taking it up, waiting there for a late learner (a fixed point, so a seed gives "
        "one trajectory)")
    force_field: Literal["auto", "sgdml", "mace"] = Field(
        "auto", description="what is learned: sgdml (a global kernel model of one molecule, "
        "fitted in seconds), mace (a local, size-extensive network: clusters, solutions, "
        "periodic cells), or auto: sgdml for one molecule in vacuum, mace otherwise")
    max_frames: int | None = Field(
        None, ge=10, le=MAX_FIT_FRAMES,
        description="frames a fit uses at most, evenly spread over those "
        "labeled (default: sgdml 9000 / (3 x atoms), about 20 s a fit on 2 cores; mace "
        f"{MACE_MAX_FRAMES})")
    kernel_width: float = Field(10.0, gt=0, le=1e6,
                                description="sGDML kernel length scale sigma")
    epochs: int = Field(MACE_EPOCHS, ge=1, le=MAX_EPOCHS,
                        description="MACE: passes over the frames in each fit; a fit's cost "
                        "grows with them and its force error falls (15 halve a 5-pass fit's "
                        "error for the water box: docs/benchmarks/condensed-phase.md)")
    max_L: int = Field(MACE_MAX_L, ge=0, le=2,
                       description="MACE: highest order of the hidden features of a model made "
                       "here: 0 invariant (the fastest), 1 equivariant (a fit costs about twice "
                       "as much; for the 8-water cluster the force error falls by 40% and the "
                       "error in ranking loose against compact states by half: "
                       "docs/benchmarks/condensed-phase.md)")
    r_max: float = Field(MACE_R_MAX_A, ge=2.0, le=12.0,
                         description="MACE: radius of an atom's environment of a model made "
                         "here, Å (a periodic cell must be at least this wide across; with "
                         "max_L 1, 6 Å leaves a third of the 8-water cluster's error in ranking "
                         "loose against compact states, 4.5 Å a half)")
    start_from: Path | None = Field(
        None, description="a MACE model file (a foundation model, or a model of your own) "
        "that each version is fine-tuned from, taking its architecture and cutoff; it must "
        "know every element of the system (implies force_field: mace)")
    transport: Literal["process", "thread"] = Field(
        "process", description="where the learner fits: a process of its own, or a thread "
        "of the driver's (under mpiexec: an MPI rank)")
    threads: int = Field(1, ge=1, le=MAX_THREADS,
                         description="processes and BLAS threads of a fit")

    @field_validator("start_from")
    @classmethod
    def _start_from(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else existing_file(path, info)

    @model_validator(mode="after")
    def _start_from_is_mace(self) -> LearnConfig:
        if self.start_from is not None and self.force_field == "sgdml":
            raise ValueError("start_from is a MACE model file to fine-tune; sGDML starts from "
                             "nothing: set force_field: mace (or auto), or remove start_from")
        chosen = sorted({"max_L", "r_max"} & self.model_fields_set)
        if self.start_from is not None and chosen:
            raise ValueError(f"{' and '.join(chosen)} set the architecture of a model made "
                             "here; start_from fine-tunes the file's own: remove one of them")
        return self

    def max_frames_for(self, n_atoms: int, kind: str = "sgdml") -> int:
        """``max_frames``, or the default for a system of ``n_atoms`` learned by ``kind``."""
        if self.max_frames:
            return self.max_frames
        return MACE_MAX_FRAMES if kind == "mace" else max(10, 9000 // (3 * n_atoms))


class FineTuneConfig(Strict):
    """Online fine-tuning of the forecaster on the segments simulated so far."""

    every_segments: int = Field(
        100, ge=1, le=MAX_COUNT,
        description="fine-tune each time this many new simulated segments are in")
    epochs: int = Field(20, ge=1, le=MAX_EPOCHS,
                        description="passes over all simulated segments so far")
    learning_rate: float = Field(1e-4, gt=0, le=1, description="Adam's learning rate")
    batch_size: int = Field(64, ge=1, le=MAX_BATCH, description="segments per optimisation step")


class HybridConfig(Strict):
    """The hybrid loop: segments of n steps, made by simulation or by the forecaster."""

    stride: int = Field(ge=2, le=MAX_COUNT, description="n: MD steps per segment (Δt = n·Δτ)")
    interpolator: str = Field(
        description="fills the fine frames of ML segments: a shipped interpolator name, a "
        "checkpoint path, linear | cubic | quintic, or learn (the frames the learned force "
        "field integrated; needs forecaster: learn)")
    forecaster: str | None = Field(
        None, description="learn (a force field learned from this run's expensive frames), "
        "a shipped forecaster name, a forecaster checkpoint, or the forecaster.pt an earlier "
        "learning run left (it goes on learning); none: every segment is simulated (the "
        "reference run)")
    learn: LearnConfig = Field(default_factory=LearnConfig,
                               description="the learner of forecaster: learn")
    transport: Literal["thread", "process"] = Field(
        "process", description="where the interpolator worker runs")
    queue_size: int = Field(8, ge=1, le=MAX_QUEUE,
                            description="coarse frames waiting for the worker at most")
    switch: SwitchConfig = Field(default_factory=SwitchConfig,
                                 description="when to trust the ML, and its checks")
    monitor: MonitorConfig = Field(default_factory=MonitorConfig,
                                   description="re-simulation of ML segments")
    check: CheckConfig = Field(default_factory=CheckConfig,
                               description="single-point checks of learned ML segments")
    fine_tune: FineTuneConfig | None = Field(
        None, description="online fine-tuning of the forecaster (off when absent)")

    @field_validator("interpolator")
    @classmethod
    def _interpolator(cls, spec: str, info: ValidationInfo) -> str:
        return spec if spec == "learn" else interpolator_spec(spec, info)

    @field_validator("forecaster")
    @classmethod
    def _forecaster(cls, spec: str | None, info: ValidationInfo) -> str | None:
        if spec is None or spec.lower() in ("none", "null"):  # YAML reads `none` as a word
            return None
        if spec == "learn":
            return spec
        return known_or_file(spec, forecaster_names(), "forecaster", info, ("learn", "none"))

    @model_validator(mode="after")
    def _learning(self) -> HybridConfig:
        """The learning rules, where the input alone tells whether the run learns: a forecaster
        file is read by the run, which then asks ``learning_problem`` itself."""
        if self.forecaster is None or self.forecaster in forecaster_names():
            learns = False
        elif self.forecaster == "learn":
            learns = True
        else:
            return self
        problem = learning_problem(self, learns)
        if problem is not None:
            raise ValueError(problem)
        return self


def learning_problem(hybrid: HybridConfig, learns: bool) -> str | None:
    """What is wrong with ``hybrid``'s learning keys, or None.

    ``learns``: whether the run learns a force field (``forecaster: learn``, or the
    forecaster.pt an earlier learning run left) rather than running a forecaster network or
    simulating every segment.
    """
    if hybrid.interpolator == "learn" and not learns:
        return ("interpolator: learn fills ML segments with the frames of the learned force "
                "field; it needs forecaster: learn (or an earlier run's forecaster.pt)")
    if learns and hybrid.fine_tune is not None:
        return ("fine_tune: tunes a forecaster network; a learned force field is refitted as the "
                "run goes on (see hybrid.learn); remove fine_tune")
    if not learns and hybrid.check != CheckConfig():
        return ("hybrid.check: single-point checks compare a learned force field with the "
                "calculator; a forecaster network's segment ends are the calculator's already. "
                "Set forecaster: learn or remove the check: section")
    c = hybrid.check
    if hybrid.switch.verified_segments == 0 and not (learns and (c.halve_after or c.fraction == 1)):
        return ("switch.verified_segments: 0 starts ML without a shadow forecast, so single-point "
                "checks of every segment must guard it: set forecaster: learn and "
                "hybrid.check.halve_after (or check.fraction: 1), or verified_segments >= 1")
    if not learns and hybrid.learn != LearnConfig():
        return ("hybrid.learn: configures the learner of forecaster: learn; set forecaster: "
                "learn or remove the learn: section")
    return None


class RunOutputConfig(Strict):
    """Where `hybridmd run` writes its run folder, and how often it checkpoints."""

    directory: Path | None = Field(
        None, validate_default=True,
        description="output folder, relative to where hybridmd runs (default: runs/<input name>)")
    checkpoint_interval_s: float = Field(
        10.0, ge=0, le=MAX_SECONDS,
        description="least wall time between checkpoints (0: at every commit)")

    _default_directory = field_validator("directory")(default_output_directory)


class RunConfig(Strict):
    """Input of `hybridmd run`."""

    system: SystemConfig = Field(description="the molecule and its start geometry")
    calculator: CalculatorConfig = Field(description="the expensive calculator (by `type`)")
    dynamics: DynamicsConfig = Field(
        description="time step, length, thermostat (at segment boundaries), seed")
    engine: RunEngineConfig = Field(
        default_factory=lambda: ASEEngineConfig(type="ase"),
        description="who integrates the simulated segments: ASE here, or i-PI (by `type`)")
    hybrid: HybridConfig = Field(description="segments, forecaster, interpolator, checks")
    output: RunOutputConfig = Field(default_factory=dict, validate_default=True,
                                    description="the run folder")
    safety: SafetyConfig = Field(default_factory=SafetyConfig,
                                 description="limits that stop a run that blew up")
    replicas: int = Field(
        1, ge=1, le=MAX_REPLICAS,
        description="independent hybrid runs, replica k with seed dynamics.seed + k in "
        "<output.directory>/replica-<k>; under mpiexec spread over the ranks")

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        dyn = self.dynamics
        if dyn.integrator == "nose-hoover":
            raise ValueError("dynamics.integrator: the hybrid loop thermostats at segment "
                             "boundaries; use bussi, langevin or nve")
        if self.safety.max_temperature_K <= dyn.temperature_K:
            raise ValueError(
                f"safety.max_temperature_K ({self.safety.max_temperature_K}) must exceed "
                f"dynamics.temperature_K ({dyn.temperature_K})")
        calc, monitor = self.calculator, self.hybrid.monitor
        monitored = monitor.fraction > 0 or monitor.uncertain_fraction > 0
        if calc.type == "socket" and calc.command is None and monitored:
            raise ValueError(
                "calculator: monitors re-simulate with a calculator of their own, each with its "
                "own client, so a run with monitors needs calculator.command (hybridmd starts "
                "one client per connection); or set hybrid.monitor.fraction and "
                "uncertain_fraction to 0")
        if dyn.n_steps % self.hybrid.stride:
            raise ValueError(
                f"the run's {dyn.n_steps} steps are not a whole number of segments of "
                f"hybrid.stride = {self.hybrid.stride} steps; make the length a multiple of "
                f"{self.hybrid.stride * dyn.timestep_fs:g} fs")
        return self
