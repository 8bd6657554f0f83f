"""The input of `hybridmd simulate`, and its ``interpolation:`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from hybridmd.config.base import MAX_QUEUE, MAX_REPLICAS, Strict, interpolator_spec
from hybridmd.config.calculator import CalculatorConfig
from hybridmd.config.dynamics import ASEEngineConfig, DynamicsConfig, EngineConfig
from hybridmd.config.output import OutputConfig, SafetyConfig
from hybridmd.config.system import SystemConfig


class StreamConfig(Strict):
    """Fine frames between the written frames of `simulate`, made by an interpolator while the
    run goes on (the written frames, every `output.stride` steps, are the coarse ones)."""

    interpolator: str = Field(
        description="a shipped interpolator name, a checkpoint path, or linear | cubic | quintic")
    transport: Literal["thread", "process"] = Field(
        "thread", description="where the interpolator worker runs")
    queue_size: int = Field(8, ge=1, le=MAX_QUEUE, description="coarse frames waiting for "
                            "the worker at most (the run waits beyond)")

    _interpolator = field_validator("interpolator")(interpolator_spec)


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
        1, ge=1, le=MAX_REPLICAS,
        description="independent runs, replica k with seed dynamics.seed + k in "
        "<output.directory>/replica-<k>; under mpiexec spread over the ranks")
    interpolation: StreamConfig | None = Field(
        None, description="write fine.traj between the written frames while the run goes on")

    @model_validator(mode="after")
    def _temperature_limit(self) -> SimulationConfig:
        if self.safety.max_temperature_K <= self.dynamics.temperature_K:
            raise ValueError(
                f"safety.max_temperature_K ({self.safety.max_temperature_K}) must exceed "
                f"dynamics.temperature_K ({self.dynamics.temperature_K})"
            )
        steps = self.dynamics.n_steps
        if self.output.stride > steps:  # (a log_stride beyond the run only thins the log)
            raise ValueError(
                f"output.stride = {self.output.stride} is longer than the run ({steps} steps): "
                f"no frame would be written after the start; use at most {steps}, or a longer "
                "run")
        if self.interpolation is not None and self.output.stride < 2:
            raise ValueError("interpolation: the written frames (every output.stride steps) "
                             "are the coarse ones; set output.stride to 2 or more")
        ase_only = {"integrator", "chain_length"} & self.dynamics.model_fields_set
        if self.engine.type == "ipi" and ase_only:
            raise ValueError(
                f"dynamics.{sorted(ase_only)[0]} is for the ASE engine; with engine: ipi the "
                "thermostat is engine.thermostat (nve | svr | langevin | pile_l)")
        return self
