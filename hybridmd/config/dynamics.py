"""The ``dynamics:`` section (time step, length, thermostat, initial momenta) and the
``engine:`` section of `simulate` (ASE here, or i-PI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from hybridmd.config.base import (
    MAX_COUNT,
    MAX_RATE,
    MAX_SEED,
    MAX_STEPS,
    MAX_TEMPERATURE_K,
    MAX_TIME_FS,
    Strict,
    existing_file,
)
from hybridmd.config.socket import SocketServerConfig


class MomentaFile(Strict):
    """Initial momenta read from a file (ASE traj/extxyz with momenta, or npz with V in Å/fs)."""

    file: Path = Field(description="trajectory with momenta (ASE traj or extxyz) or npz "
                       "with V in Å/fs, relative to the input file")
    index: int = Field(-1, ge=-MAX_COUNT, le=MAX_COUNT,
                       description="its frame (negative counts from the end)")

    @field_validator("file")
    @classmethod
    def _exists(cls, path: Path, info: ValidationInfo) -> Path:
        return existing_file(path, info)


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
    steps: int | None = Field(None, gt=0, le=MAX_STEPS,
                              description="number of steps (or give duration_fs)")
    duration_fs: float | None = Field(None, gt=0, le=MAX_TIME_FS,
                                      description="length in fs (or give steps)")
    temperature_K: float = Field(300.0, gt=0, le=MAX_TEMPERATURE_K,
                                 description="thermostat and initial temperature")
    friction_per_fs: float = Field(0.01, gt=0, le=MAX_RATE, description="Langevin friction, 1/fs")
    tau_fs: float = Field(100.0, gt=0, le=MAX_TIME_FS,
                          description="Bussi / Nose-Hoover coupling time, fs")
    chain_length: int = Field(3, ge=1, le=100, description="Nose-Hoover chain length")
    seed: int = Field(0, ge=0, le=MAX_SEED,
                      description="seed for initial momenta and stochastic thermostats")
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
            if steps > MAX_STEPS:
                raise ValueError(f"duration_fs = {self.duration_fs:g} is {steps:.3g} steps of "
                                 f"timestep_fs = {self.timestep_fs:g}; at most {MAX_STEPS:.0e} "
                                 "steps: give a shorter duration_fs")
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


class IPISocketConfig(SocketServerConfig):
    """i-PI with the calculator served to it over i-PI's socket protocol."""

    type: Literal["ipi"]


class IPIEngineConfig(IPISocketConfig):
    """MD integrated by i-PI, with the calculator served to it over i-PI's socket protocol."""

    thermostat: Literal["nve", "svr", "langevin", "pile_l"] = Field(
        "svr", description="i-PI's thermostat (svr uses dynamics.tau_fs, langevin and pile_l "
        "dynamics.friction_per_fs); nve: none")


class IPIRunEngineConfig(IPISocketConfig):
    """The hybrid loop's simulated segments integrated by i-PI (NVE within a segment, so a
    monitor can check it; the thermostat stays at segment boundaries: dynamics.integrator)."""

    @model_validator(mode="before")
    @classmethod
    def _no_thermostat_here(cls, data: Any) -> Any:
        if isinstance(data, dict) and "thermostat" in data:
            raise ValueError(
                "`thermostat:` is i-PI's for `simulate`; in a hybrid run i-PI integrates NVE "
                "segments and the thermostat acts at their boundaries: set "
                "dynamics.integrator (bussi, langevin or nve) and leave engine.thermostat out")
        return data


EngineConfig = Annotated[ASEEngineConfig | IPIEngineConfig, Field(discriminator="type")]
RunEngineConfig = Annotated[ASEEngineConfig | IPIRunEngineConfig, Field(discriminator="type")]
