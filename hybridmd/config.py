"""YAML input -> typed, validated configuration.

Every problem in an input is reported before any expensive work starts, each with the key path
that holds it and a hint that says how to fix it. File paths in an input are resolved relative to
the directory of the YAML file.
"""

from __future__ import annotations

import difflib
import glob
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hybridmd.data import geometry_names, model_names
from hybridmd.errors import InputError


class ConfigError(InputError):
    """An input that cannot be run; the message lists every problem with its key and a hint."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"invalid input {source}:"]
        lines += [f"  - {where}: {what}" for where, what in problems]
        super().__init__("\n".join(lines))


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _resolve(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = Path(path).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _existing_file(path: Path, info: ValidationInfo) -> Path:
    path = _resolve(path, info)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file")
    if not path.is_file():
        raise ValueError(
            f"file not found: {path} (relative paths are taken from the input file's folder)"
        )
    return path


# ----------------------------------------------------------------------------- system


class SystemConfig(Strict):
    """The molecule: a shipped geometry by name, or a frame of any file ASE reads or an MD17 npz."""

    molecule: str | None = Field(None, description="name of a shipped geometry, e.g. ethanol")
    file: Path | None = Field(None, description="structure file (xyz, traj, pdb, MD17 npz, ...)")
    index: int = Field(0, description="frame index in `file` (negative counts from the end)")

    @field_validator("molecule")
    @classmethod
    def _known_molecule(cls, name: str | None) -> str | None:
        if name is not None and name not in geometry_names():
            raise ValueError(
                f"no shipped geometry named {name!r}; known: {', '.join(geometry_names())}. "
                "Give a structure file with `file:` instead"
            )
        return name

    @field_validator("file")
    @classmethod
    def _file_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return None if path is None else _existing_file(path, info)

    @model_validator(mode="after")
    def _exactly_one(self) -> SystemConfig:
        if (self.molecule is None) == (self.file is None):
            raise ValueError("give exactly one of `molecule:` (a shipped name) or `file:`")
        return self


# ----------------------------------------------------------------------------- calculators


class SGDMLConfig(Strict):
    """An sGDML force field (model .npz, kcal/mol and Å as in the sgdml package)."""

    type: Literal["sgdml"]
    model: str = Field(description="shipped model name (e.g. ethanol) or path to a model .npz")
    use_torch: bool = Field(
        False, description="the torch backend (for GPUs; the numpy backend is faster on CPU)")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, model: str, info: ValidationInfo) -> str:
        if model in model_names():
            return model
        path = _resolve(Path(model), info)
        if not path.is_file():
            raise ValueError(
                f"no sGDML model file {path} and no shipped model named {model!r} "
                f"(shipped: {', '.join(model_names())})"
            )
        return str(path)


class DFTConfig(Strict):
    """Kohn-Sham DFT with PySCF (energies and analytic gradients)."""

    type: Literal["dft"]
    functional: str = Field("PBE", description="exchange-correlation functional (PySCF's xc "
                            "name, e.g. PBE, B3LYP)")
    basis: str = Field("def2-SVP", description="basis set (PySCF's name, e.g. sto-3g, "
                       "def2-SVP)")
    charge: int = Field(0, description="total charge of the molecule, e")
    spin: int = Field(0, ge=0, description="number of unpaired electrons, 2S")
    grid_level: int = Field(3, ge=0, le=9, description="PySCF grid level 0-9")
    conv_tol: float = Field(1e-9, gt=0, description="SCF energy convergence, Hartree")
    max_cycle: int = Field(100, gt=0, description="most SCF iterations before the "
                           "calculation fails")


class XTBConfig(Strict):
    """Extended tight binding with tblite."""

    type: Literal["xtb"]
    method: Literal["GFN2-xTB", "GFN1-xTB"] = Field("GFN2-xTB", description="the "
                                                   "tight-binding Hamiltonian")
    charge: int = Field(0, description="total charge of the molecule, e")
    multiplicity: int = Field(1, ge=1, description="spin multiplicity 2S+1")
    accuracy: float = Field(1.0, gt=0, description="tblite's numerical accuracy (smaller is "
                            "tighter)")


class ASECalculatorConfig(Strict):
    """Any ASE calculator by import path, e.g. ``ase.calculators.lj:LennardJones``."""

    type: Literal["ase"]
    import_path: str = Field(description="module:Class or module.Class")
    kwargs: dict[str, Any] = Field(default_factory=dict,
                                   description="keyword arguments of the calculator's class")

    @field_validator("import_path")
    @classmethod
    def _looks_like_path(cls, path: str) -> str:
        if "." not in path and ":" not in path:
            raise ValueError(f"{path!r} is not an import path like 'package.module:ClassName'")
        return path


CalculatorConfig = Annotated[
    SGDMLConfig | DFTConfig | XTBConfig | ASECalculatorConfig, Field(discriminator="type")
]


# ----------------------------------------------------------------------------- dynamics


class MomentaFile(Strict):
    """Initial momenta read from a file (ASE traj/extxyz with momenta, or npz with V in Å/fs)."""

    file: Path = Field(description="trajectory with momenta (ASE traj or extxyz) or npz "
                       "with V in Å/fs, relative to the input file")
    index: int = Field(-1, description="its frame (negative counts from the end)")

    @field_validator("file")
    @classmethod
    def _exists(cls, path: Path, info: ValidationInfo) -> Path:
        return _existing_file(path, info)


def _momenta_kind(value: Any) -> str:
    return "file" if isinstance(value, dict | MomentaFile) else "name"


#: ``maxwell-boltzmann`` or a file section; the tag picks the one to validate, so an error
#: in a file section is reported alone, not next to "expected 'maxwell-boltzmann'"
InitialMomenta = Annotated[
    Annotated[Literal["maxwell-boltzmann"], Tag("name")] | Annotated[MomentaFile, Tag("file")],
    Discriminator(_momenta_kind),
]


class DynamicsConfig(Strict):
    """Thermostated (or NVE) MD on the ASE engine."""

    integrator: Literal["nve", "langevin", "bussi", "nose-hoover"] = Field(
        "bussi", description="the thermostat (nve: none); `hybridmd run` applies it at "
        "segment boundaries and takes no nose-hoover")
    timestep_fs: float = Field(gt=0, le=10, description="MD time step in fs")
    steps: int | None = Field(None, gt=0, description="number of steps (or give duration_fs)")
    duration_fs: float | None = Field(None, gt=0, description="length in fs (or give steps)")
    temperature_K: float = Field(300.0, gt=0, description="thermostat and initial temperature")
    friction_per_fs: float = Field(0.01, gt=0, description="Langevin friction, 1/fs")
    tau_fs: float = Field(100.0, gt=0, description="Bussi / Nose-Hoover coupling time, fs")
    chain_length: int = Field(3, ge=1, description="Nose-Hoover chain length")
    seed: int = Field(0, ge=0, description="seed for initial momenta and stochastic thermostats")
    initial_momenta: InitialMomenta = Field(
        "maxwell-boltzmann", description="maxwell-boltzmann, or {file: ..., index: ...}")

    @model_validator(mode="after")
    def _length(self) -> DynamicsConfig:
        if (self.steps is None) == (self.duration_fs is None):
            raise ValueError("give exactly one of `steps:` or `duration_fs:`")
        if self.duration_fs is not None:
            steps = self.duration_fs / self.timestep_fs
            if abs(steps - round(steps)) > 1e-9 * max(1.0, steps) or round(steps) < 1:
                below = max(1, int(steps)) * self.timestep_fs
                raise ValueError(
                    f"duration_fs = {self.duration_fs:g} is not a whole number of steps of "
                    f"timestep_fs = {self.timestep_fs:g} ({steps:.4g} steps); use "
                    f"{below:g} or {below + self.timestep_fs:g}, or give `steps:`")
        return self

    @property
    def n_steps(self) -> int:
        """Total number of MD steps."""
        if self.steps is not None:
            return self.steps
        return round(self.duration_fs / self.timestep_fs)


# ----------------------------------------------------------------------------- engines


class ASEEngineConfig(Strict):
    """MD integrated by ASE in this process (``dynamics.integrator`` picks the thermostat)."""

    type: Literal["ase"]


class IPIEngineConfig(Strict):
    """MD integrated by i-PI, with the calculator served to it over i-PI's socket protocol."""

    type: Literal["ipi"]
    thermostat: Literal["nve", "svr", "langevin", "pile_l"] = Field(
        "svr", description="i-PI's thermostat (svr uses dynamics.tau_fs, langevin and pile_l "
        "dynamics.friction_per_fs); nve: none")
    socket: Literal["unix", "inet"] = Field(
        "unix", description="unix: a local socket file; inet: TCP, for a client on another "
        "machine")
    address: str | None = Field(
        None, description="unix: socket name (default: unique per run); inet: host "
        "(default: localhost)")
    port: int | None = Field(None, ge=1, le=65535,
                             description="inet only (default: a free port)")
    connect_timeout_s: float = Field(
        60.0, gt=0, description="longest wait for a force client before the run fails")

    @model_validator(mode="after")
    def _port_for_inet(self) -> IPIEngineConfig:
        if self.port is not None and self.socket != "inet":
            raise ValueError("`port:` needs `socket: inet`")
        if self.socket == "unix" and self.address and "/" in self.address:
            raise ValueError(
                f"`address: {self.address}` is a unix socket name, not a path (it is put at "
                "/tmp/ipi_<address>); leave out the slashes")
        return self


EngineConfig = Annotated[ASEEngineConfig | IPIEngineConfig, Field(discriminator="type")]


class OutputConfig(Strict):
    """Where and how often `simulate` writes its frames, log and checkpoint."""

    directory: Path | None = Field(
        None, validate_default=True,
        description="output folder, relative to where hybridmd runs (default: runs/<input name>)")
    stride: int = Field(1, gt=0, description="write every `stride`-th step")
    format: Literal["traj", "extxyz"] = Field(
        "traj", description="trajectory format: ASE traj (binary) or extended xyz (text)")
    log_stride: int | None = Field(None, gt=0, description="log every n steps (default: stride)")
    checkpoint_interval_s: float = Field(
        10.0, ge=0, description="least wall time between checkpoints (0: at every frame)")

    @field_validator("directory")
    @classmethod
    def _default_directory(cls, path: Path | None, info: ValidationInfo) -> Path:
        if path is None:
            return Path("runs") / (info.context or {}).get("input_name", "simulation")
        return Path(path).expanduser()


class SafetyConfig(Strict):
    """Limits that stop a run that blew up, with the frames up to that point on disk."""

    max_temperature_K: float = Field(
        3000.0, gt=0, description="stop when the kinetic temperature exceeds this, K")
    min_distance_A: float = Field(
        0.5, ge=0, description="stop when two atoms come closer than this, Å (also checked "
        "on the start geometry)")


def _known_or_file(spec: str, names: list[str], what: str, info: ValidationInfo,
                   classical: tuple[str, ...] = ()) -> str:
    """A shipped name, a classical method, or an existing file (resolved to its path)."""
    if spec in names or spec in classical:
        return spec
    path = _resolve(Path(spec), info)
    if not path.is_file():
        known = ", ".join([*classical, *names]) or "none"
        raise ValueError(f"no {what} file {path} and no shipped {what} named {spec!r} "
                         f"(known: {known})")
    return str(path)


def _interpolator_spec(spec: str, info: ValidationInfo) -> str:
    """An interpolator: a shipped network's name, a checkpoint file or a classical spline."""
    from hybridmd.data import interpolator_names

    return _known_or_file(spec, interpolator_names(), "interpolator", info,
                          ("linear", "cubic", "quintic"))


class StreamConfig(Strict):
    """Fine frames between the written frames of `simulate`, made by an interpolator while the
    run goes on (the written frames, every `output.stride` steps, are the coarse ones)."""

    interpolator: str = Field(
        description="a shipped interpolator name, a checkpoint path, or linear | cubic | quintic")
    transport: Literal["thread", "process"] = Field(
        "thread", description="where the interpolator worker runs")
    queue_size: int = Field(8, ge=1, description="coarse frames waiting for the worker at "
                            "most (the run waits beyond)")

    _interpolator = field_validator("interpolator")(_interpolator_spec)


class SimulationConfig(Strict):
    """Input of `hybridmd simulate`."""

    system: SystemConfig = Field(description="the molecule and its start geometry")
    calculator: CalculatorConfig = Field(description="the expensive calculator (by `type`)")
    dynamics: DynamicsConfig = Field(description="time step, length, thermostat, seed")
    engine: EngineConfig = Field(default_factory=lambda: ASEEngineConfig(type="ase"),
                                 description="who integrates: ASE here, or i-PI (by `type`)")
    # an empty section validated with the input's context gives the default output folder
    output: OutputConfig = Field(default_factory=dict, validate_default=True,
                                 description="where and how often to write")
    safety: SafetyConfig = Field(default_factory=SafetyConfig,
                                 description="limits that stop a run that blew up")
    replicas: int = Field(
        1, ge=1, description="independent runs, replica k with seed dynamics.seed + k in "
        "<output.directory>/replica-<k>; under mpiexec spread over the ranks (see parallel)")
    interpolation: StreamConfig | None = Field(
        None, description="write fine.traj between the written frames while the run goes on")

    @model_validator(mode="after")
    def _temperature_limit(self) -> SimulationConfig:
        if self.safety.max_temperature_K <= self.dynamics.temperature_K:
            raise ValueError(
                f"safety.max_temperature_K ({self.safety.max_temperature_K}) must exceed "
                f"dynamics.temperature_K ({self.dynamics.temperature_K})"
            )
        if self.interpolation is not None and self.output.stride < 2:
            raise ValueError("interpolation: the written frames (every output.stride steps) "
                             "are the coarse ones; set output.stride to 2 or more")
        ase_only = {"integrator", "chain_length"} & self.dynamics.model_fields_set
        if self.engine.type == "ipi" and ase_only:
            raise ValueError(
                f"dynamics.{sorted(ase_only)[0]} is for the ASE engine; with engine: ipi the "
                "thermostat is engine.thermostat (nve | svr | langevin | pile_l)")
        return self


# ----------------------------------------------------------------------------- hybrid run


class SwitchConfig(Strict):
    """When the driver trusts the forecaster, and the checks that send it back to simulation."""

    tolerance_A: float = Field(
        0.05, gt=0, description="largest atomic position error of a forecast against the "
        "simulated segment (shadow check in sim mode, monitor in ML mode), Å")
    verified_segments: int = Field(
        5, ge=1, description="consecutive simulated segments whose shadow forecast is within "
        "tolerance before ML mode starts (at the start, after a rollback or a bad shadow)")
    reentry_segments: int = Field(
        1, ge=1, description="the same after an ML run that ended by a rejected forecast or "
        "by its length")
    max_ml_segments: int = Field(
        40, ge=1, description="longest run of ML segments before simulating again")
    disagreement_A: float = Field(
        0.05, gt=0, description="largest uncertainty of a forecast, Å: a forecaster "
        "network's forward/backward disagreement, or the learned force field's predicted "
        "error (its committee's spread, calibrated on simulated and monitored segments)")
    energy_jump_eV: float = Field(
        0.05, gt=0, description="largest change of total energy over an (NVE) ML segment, eV")
    species_temperature: float = Field(
        0.25, gt=0, description="largest relative deviation of any element's mean kinetic "
        "temperature over the last `species_window` ML segments from its mean over the "
        "simulated frames")
    species_window: int = Field(50, ge=1, description="ML segments in that mean")


class MonitorConfig(Strict):
    """Parallel re-simulation of ML segments with the real calculator."""

    fraction: float = Field(
        0.1, ge=0, le=1, description="share of ML segments re-simulated, drawn at random with "
        "the run's seed (an unbiased sample of the ML error)")
    uncertain_fraction: float = Field(
        0.0, ge=0, le=1, description="share of ML segments re-simulated because they are "
        "the most uncertain (above that quantile of the recent ones), on top of `fraction`")
    workers: int = Field(
        1, ge=0, description="monitor processes (0: the driver re-simulates them itself)")
    lag_segments: int | None = Field(
        None, ge=1, description="segments the driver runs on before it waits for a monitor "
        "result (results are applied at fixed points, so a seed gives one trajectory); "
        "default: hybrid.stride, the segments a driver in ML mode makes (one force call "
        "each) while a monitor re-simulates one (stride calls)")


class LearnConfig(Strict):
    """The learner of `forecaster: learn`: a force field fitted to the run's expensive frames
    while the run goes on (sGDML), integrated to make ML segments."""

    first_fit_frames: int = Field(
        200, ge=10, description="expensive frames (each simulated step labels one) before "
        "the first fit")
    refit_frames: int = Field(
        200, ge=1, description="new expensive frames (from simulated and monitored segments) "
        "that start the next fit")
    lag_segments: int = Field(
        2, ge=0, description="segments between asking for a fit and taking it up; the driver "
        "waits there for a late learner, so a seed gives one trajectory")
    max_frames: int | None = Field(
        None, ge=10, description="frames a fit uses at most, evenly spread over those "
        "labeled (default: 9000 / (3 x atoms), about 20 s a fit on 2 cores)")
    kernel_width: float = Field(10.0, gt=0, description="sGDML kernel length scale sigma")
    transport: Literal["process", "thread"] = Field(
        "process", description="where the learner fits: a process of its own, or a thread "
        "of the driver's (under mpiexec: an MPI rank)")
    threads: int = Field(1, ge=1, description="processes and BLAS threads of a fit")

    def max_frames_for(self, n_atoms: int) -> int:
        """``max_frames``, or the default for a molecule of ``n_atoms``."""
        return self.max_frames or max(10, 9000 // (3 * n_atoms))


class FineTuneConfig(Strict):
    """Online fine-tuning of the forecaster on the segments simulated so far."""

    every_segments: int = Field(
        100, ge=1, description="fine-tune each time this many new simulated segments are in")
    epochs: int = Field(20, ge=1, description="passes over all simulated segments so far")
    learning_rate: float = Field(1e-4, gt=0, description="Adam's learning rate")
    batch_size: int = Field(64, ge=1, description="segments per optimisation step")


class HybridConfig(Strict):
    """The hybrid loop: segments of n steps, made by simulation or by the forecaster."""

    stride: int = Field(ge=2, description="n: MD steps per segment (Δt = n·Δτ)")
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
    queue_size: int = Field(8, ge=1, description="coarse frames waiting for the worker at most")
    switch: SwitchConfig = Field(default_factory=SwitchConfig,
                                 description="when to trust the ML, and its checks")
    monitor: MonitorConfig = Field(default_factory=MonitorConfig,
                                   description="re-simulation of ML segments")
    fine_tune: FineTuneConfig | None = Field(
        None, description="online fine-tuning of the forecaster (off when absent)")

    @field_validator("interpolator")
    @classmethod
    def _interpolator(cls, spec: str, info: ValidationInfo) -> str:
        return spec if spec == "learn" else _interpolator_spec(spec, info)

    @field_validator("forecaster")
    @classmethod
    def _forecaster(cls, spec: str | None, info: ValidationInfo) -> str | None:
        from hybridmd.data import forecaster_names

        if spec is None or spec.lower() in ("none", "null"):  # YAML reads `none` as a word
            return None
        if spec == "learn":
            return spec
        return _known_or_file(spec, forecaster_names(), "forecaster", info, ("learn", "none"))

    @model_validator(mode="after")
    def _learning(self) -> HybridConfig:
        from hybridmd.data import forecaster_names

        spec = self.forecaster
        if spec == "learn" or spec is None or spec in forecaster_names():
            problem = learning_problem(self, spec == "learn")
            if problem:
                raise ValueError(problem)
        return self


def learning_problem(hybrid: HybridConfig, learns: bool) -> str | None:
    """What in the hybrid section does not fit a run that learns (or does not), or None."""
    if hybrid.interpolator == "learn" and not learns:
        return ("interpolator: learn fills ML segments with the frames of the learned force "
                "field; it needs forecaster: learn (or an earlier run's forecaster.pt)")
    if learns and hybrid.fine_tune is not None:
        return ("fine_tune: tunes a forecaster network; a learned forecaster is refitted as "
                "the run goes on (see hybrid.learn); remove fine_tune")
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
        10.0, ge=0, description="least wall time between checkpoints (0: at every commit)")

    _default_directory = field_validator("directory")(OutputConfig._default_directory.__func__)


class RunConfig(Strict):
    """Input of `hybridmd run`."""

    system: SystemConfig = Field(description="the molecule and its start geometry")
    calculator: CalculatorConfig = Field(description="the expensive calculator (by `type`)")
    dynamics: DynamicsConfig = Field(
        description="time step, length, thermostat (at segment boundaries), seed")
    hybrid: HybridConfig = Field(description="segments, forecaster, interpolator, checks")
    output: RunOutputConfig = Field(default_factory=dict, validate_default=True,
                                    description="the run folder")
    safety: SafetyConfig = Field(default_factory=SafetyConfig,
                                 description="limits that stop a run that blew up")
    replicas: int = Field(
        1, ge=1, description="independent hybrid runs, replica k with seed dynamics.seed + k in "
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
        if dyn.n_steps % self.hybrid.stride:
            raise ValueError(
                f"the run's {dyn.n_steps} steps are not a whole number of segments of "
                f"hybrid.stride = {self.hybrid.stride} steps; make the length a multiple of "
                f"{self.hybrid.stride * dyn.timestep_fs:g} fs")
        return self


class ServeConfig(Strict):
    """What `hybridmd serve` needs of an input: the molecule and the calculator.

    A `simulate` or `run` input works too, and is then checked as a whole, as that command
    would (``serve_model``): a typo in any section is an error, not ignored.
    """

    system: SystemConfig = Field(description="the molecule, atoms in i-PI's order")
    calculator: CalculatorConfig = Field(description="the calculator to serve (by `type`)")


def serve_model(data: Any) -> type[BaseModel]:
    """The input model an input for `serve` is checked against: that of the command it is for."""
    if isinstance(data, dict) and "hybrid" in data:
        return RunConfig
    if isinstance(data, dict) and "dynamics" in data:
        return SimulationConfig
    return ServeConfig


# ----------------------------------------------------------------------------- training


class TrajectorySource(Strict):
    """A fine trajectory for training: any format ``hybridmd.readers`` reads."""

    path: Path = Field(description="the file, relative to the input file; * and ? match "
                       "several")
    dt_fs: float | None = Field(None, gt=0, description="frame spacing where the file has none")
    format: Literal["traj", "extxyz", "xyz", "ipi", "npz"] | None = Field(
        None, description="the file's format (default: from its name)")

    @field_validator("path")
    @classmethod
    def _exists(cls, path: Path, info: ValidationInfo) -> Path:
        return _existing_file(path, info)


class TrainDataConfig(Strict):
    """The fine trajectories a network is trained on, and the part kept for validation."""

    trajectories: list[TrajectorySource] = Field(
        min_length=1, description="fine trajectories; a path with * or ? stands for every "
        "file it matches (sorted), e.g. the segments of workflows/generate_nve_training_data.py")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="final part of each trajectory kept for validation")
    window_step: int = Field(1, ge=1, description="fine frames between training window starts")

    @field_validator("trajectories", mode="before")
    @classmethod
    def _expand_patterns(cls, sources: Any, info: ValidationInfo) -> Any:
        if not isinstance(sources, list):
            return sources
        expanded = []
        for src in sources:
            path = src.get("path") if isinstance(src, dict) else None
            if not isinstance(path, str) or not any(c in path for c in "*?["):
                expanded.append(src)
                continue
            pattern = _resolve(Path(path), info)
            matches = sorted(glob.glob(str(pattern)))
            if not matches:
                raise ValueError(f"no file matches {pattern} (relative paths are taken from the "
                                 "input file's folder)")
            expanded += [{**src, "path": m} for m in matches]
        return expanded


#: what ``model.hyperparameters`` of ``kind: forecaster`` may set (``ForecasterNet``)
FORECASTER_HYPERPARAMETERS = ["hidden", "layers"]


class ModelConfig(Strict):
    """The network to train: its kind, its time grid and its size."""

    kind: str = Field("bilstm-residual", description="network kind, see models.registry, or "
                      "`forecaster` (the hybrid loop's x(t) -> x(t+Δt) network)")
    stride: int = Field(ge=2, description="n: fine steps per coarse step (Δt = n·Δτ)")
    context: int = Field(2, ge=1, description="coarse frames of context on each side")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="arguments of the network's constructor, e.g. "
        "hidden: 128, layers: 2 (checked against it)")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from hybridmd.models.registry import model_kinds

        if kind not in [*model_kinds(), "forecaster"]:
            raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(model_kinds())}, "
                             "forecaster")
        return kind

    @field_validator("hyperparameters")
    @classmethod
    def _known_hyperparameters(cls, hyper: dict[str, Any], info: ValidationInfo) -> dict:
        """Names the network's constructor takes (checked here, not after the data is read)."""
        from hybridmd.models.registry import hyperparameter_names

        kind = info.data.get("kind")
        if kind is None:  # the kind itself is wrong: reported there
            return hyper
        known = FORECASTER_HYPERPARAMETERS if kind == "forecaster" else hyperparameter_names(kind)
        for name in hyper:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{kind} networks have no hyper-parameter {name!r}{hint} "
                                 f"(known: {', '.join(known)})")
        return hyper


class PlateauConfig(Strict):
    """ReduceLROnPlateau settings (the paper's defaults); min_lr also ends a cosine schedule."""

    factor: float = Field(0.5, gt=0, lt=1,
                          description="learning rate x factor on a plateau (or a milestone)")
    patience: int = Field(3, ge=0, description="epochs without improvement before a cut")
    threshold: float = Field(1e-3, ge=0, description="relative improvement that counts")
    min_lr: float = Field(1e-5, ge=0, description="lowest learning rate")


class OptimisationConfig(Strict):
    """How a network is trained: Adam, a learning-rate schedule, early stopping, a budget."""

    batch_size: int = Field(200, gt=0, description="windows per optimisation step")
    learning_rate: float = Field(1e-3, gt=0, description="Adam's initial learning rate")
    max_epochs: int = Field(500, gt=0, description="most epochs")
    batches_per_epoch: int = Field(100, gt=0, description="optimisation steps per epoch")
    early_stopping_patience: int = Field(
        12, gt=0, description="epochs without validation improvement before stopping")
    max_minutes: float = Field(30.0, gt=0, description="wall-time budget for training")
    gradient_clip: float = Field(1.0, gt=0, description="largest gradient norm")
    seed: int = Field(0, ge=0, description="seed of the weights and the batches")
    threads: int | None = Field(None, gt=0, description="CPU threads (default: all cores)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where to train (auto: cuda when there is one)")
    schedule: Literal["plateau", "cosine", "step"] = Field(
        "plateau", description="plateau: the paper's ReduceLROnPlateau; cosine: linear warm-up "
        "then cosine decay to plateau.min_lr over max_epochs; step: the learning rate x "
        "plateau.factor after each epoch in milestones")
    milestones: list[int] = Field(
        default_factory=list, description="step schedule only: epochs after which the "
        "learning rate is cut, e.g. [120, 140]")
    warmup_epochs: int = Field(3, ge=0, description="cosine schedule only")
    weight_average: float | None = Field(
        None, gt=0, lt=1, description="decay of an exponential moving average of the weights, "
        "per step (e.g. 0.999: about the last 1000 steps); validated and saved in place of the "
        "raw weights. It removes most of the noise of the steps without lowering the "
        "learning rate")
    time_reversal: Literal["both", "random"] = Field(
        "both", description="symmetric models only: both: every training window read forwards "
        "and backwards and the two averaged, as when the model interpolates; random: one "
        "reading per window, its direction drawn at random. Random makes a step about half as "
        "costly (more epochs in the same time); the saved model still averages both readings")
    plateau: PlateauConfig = Field(default_factory=PlateauConfig,
                                   description="the plateau schedule's settings")

    @model_validator(mode="after")
    def _milestones_for_the_step_schedule(self) -> OptimisationConfig:
        if (self.schedule == "step") != bool(self.milestones):
            raise ValueError("the step schedule needs milestones (epochs after which the "
                             "learning rate is cut, e.g. [120, 140]), and milestones need "
                             "schedule: step")
        if self.milestones != sorted(set(self.milestones)) or min(self.milestones, default=1) < 1:
            raise ValueError(f"milestones must be increasing epochs from 1, not {self.milestones}")
        return self


class TrainOutputConfig(Strict):
    """Where `hybridmd train` writes its checkpoint."""

    checkpoint: Path | None = Field(
        None, validate_default=True, description="default: runs/<input name>/model.pt")

    @field_validator("checkpoint")
    @classmethod
    def _default_checkpoint(cls, path: Path | None, info: ValidationInfo) -> Path:
        if path is None:
            return Path("runs") / (info.context or {}).get("input_name", "train") / "model.pt"
        return Path(path).expanduser()


class TrainConfig(Strict):
    """Input of `hybridmd train`."""

    data: TrainDataConfig = Field(description="the training trajectories")
    model: ModelConfig = Field(description="the network")
    training: OptimisationConfig = Field(default_factory=OptimisationConfig,
                                         description="the optimisation")
    output: TrainOutputConfig = Field(default_factory=dict, validate_default=True,
                                      description="the checkpoint")


# ----------------------------------------------------------------------------- loading

M = TypeVar("M", bound=BaseModel)

_HINTS = {
    "missing": "this key is required: add it",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
    "model_type": "this key holds a section of keys, not a single value",
    "dict_type": "this key holds a section of keys, not a single value",
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation can hold (unwrapping Optional and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _tag(section: type[BaseModel]) -> Any:
    field = section.model_fields.get("type")
    args = getattr(field.annotation, "__args__", ()) if field else ()
    return args[0] if len(args) == 1 else None


def _tagged(annotation: Any) -> dict[str, list[type[BaseModel]]]:
    """The members of a union with a callable discriminator, by their ``Tag``."""
    found: dict[str, list[type[BaseModel]]] = {}
    for arg in get_args(annotation):
        for meta in getattr(arg, "__metadata__", ()):
            if isinstance(meta, Tag):
                found[meta.tag] = _models_in(get_args(arg)[0])
    return found


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, list[str]]:
    """Readable key path of an error location and the keys allowed in its section.

    Pydantic puts the discriminator value of a tagged union into the location
    (``calculator.sgdml.model``, ``dynamics.initial_momenta.file.file``); it is dropped from
    the path users see.
    """
    sections: list[type[BaseModel]] = [model]
    tags: dict[str, list[type[BaseModel]]] = {}
    shown: list[str] = []
    for i, part in enumerate(loc):
        if part in tags:  # the tag of a callable-discriminated union: not a key
            sections, tags = tags[part], {}
            continue
        shown.append(str(part))
        if i == len(loc) - 1:
            if i and any(_tag(s) == part for s in sections):
                shown.pop()  # a section's own check: reported at the section
            break
        if any(part in s.model_fields for s in sections):
            annotations = [s.model_fields[part].annotation for s in sections
                           if part in s.model_fields]
            tags = {k: v for a in annotations for k, v in _tagged(a).items()}
            sections = [m for a in annotations for m in _models_in(a)]
        elif any(_tag(s) == part for s in sections):
            sections = [s for s in sections if _tag(s) == part]
            shown.pop()
    allowed = sorted({k for s in sections for k in s.model_fields})
    return ".".join(shown) or "(top level)", allowed


def _describe(model: type[BaseModel], err: dict[str, Any]) -> tuple[str, str]:
    where, allowed = _walk(model, tuple(err["loc"]))
    kind = err["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(where.rsplit(".", 1)[-1], allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
        return where, f"unknown key; {hint}"
    if kind == "union_tag_invalid":
        return where, f"unknown type {err['ctx']['tag']!r}; known: {err['ctx']['expected_tags']}"
    if kind == "union_tag_not_found":
        kinds = "ase | ipi" if where.startswith("engine") else "sgdml | dft | xtb | ase"
        return where, f"missing `type:`; say which kind, e.g. type: {kinds}"
    if kind == "literal_error":
        return where, f"got {err['input']!r}; allowed: {err['ctx']['expected']}"
    msg = err["msg"].removeprefix("Value error, ")
    hint = _HINTS.get(kind)
    shown = kind == "missing" or isinstance(err.get("input"), dict) or kind == "value_error"
    got = "" if shown else f" (got {err['input']!r})"
    return where, f"{msg}{got}" + (f"; {hint}" if hint else "")


def parse_config(data: Any, model: type[M], source: str, base_dir: Path | None = None) -> M:
    """Validate a parsed YAML document against ``model``; raise ConfigError listing all problems.

    Files the input reads are found relative to ``base_dir`` (the input file's folder);
    outputs go relative to the working directory, by default to ``runs/<input name>``.
    """
    if not isinstance(data, dict):
        raise ConfigError(source, [("(top level)", "expected a mapping of sections (key: value)")])
    context = {"base_dir": base_dir, "input_name": Path(source).stem}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(model, e) for e in exc.errors()]) from None


def read_input(path: str | Path) -> Any:
    """The parsed YAML document of an input file; ConfigError when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(str(path), [("(file)", "this is a folder; give the YAML input file")])
    if not path.is_file():
        raise ConfigError(str(path), [("(file)", "input file not found; check the path")])
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = ("not a text file" if isinstance(exc, UnicodeDecodeError)
               else exc.strerror or str(exc))
        raise ConfigError(str(path), [("(file)", f"cannot read it ({why}); give the YAML "
                                                 "input file")]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            str(path), [(where, f"malformed YAML: {problem}; check indentation and colons")]
        ) from None


def load_config(path: str | Path, model: type[M]) -> M:
    """Read and validate a YAML input file."""
    path = Path(path)
    data = read_input(path)
    return parse_config(data, model, str(path), base_dir=path.resolve().parent)


def load_serve_config(path: str | Path) -> SimulationConfig | RunConfig | ServeConfig:
    """An input for `serve`, checked whole against the model of the command it is for."""
    path = Path(path)
    data = read_input(path)
    return parse_config(data, serve_model(data), str(path), base_dir=path.resolve().parent)
