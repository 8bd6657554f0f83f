"""The ``output:`` section of `simulate` and the ``safety:`` limits of `simulate` and `run`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from hybridmd.config.base import (
    MAX_LENGTH_A,
    MAX_SECONDS,
    MAX_STEPS,
    MAX_TEMPERATURE_K,
    Strict,
)


def default_output_directory(path: Path | None, info: ValidationInfo) -> Path:
    """An output folder as given, or runs/<input name> (a validator of ``directory``)."""
    if path is None:
        return Path("runs") / (info.context or {}).get("input_name", "simulation")
    return Path(path).expanduser()


class OutputConfig(Strict):
    """Where and how often `simulate` writes its frames, log and checkpoint."""

    directory: Path | None = Field(
        None, validate_default=True,
        description="output folder, relative to where hybridmd runs (default: runs/<input name>)")
    stride: int = Field(1, gt=0, le=MAX_STEPS, description="write every `stride`-th step")
    format: Literal["traj", "extxyz"] = Field(
        "traj", description="trajectory format: ASE traj (binary) or extended xyz (text)")
    log_stride: int | None = Field(None, gt=0, le=MAX_STEPS,
                                   description="log every n steps (default: stride)")
    checkpoint_interval_s: float = Field(
        10.0, ge=0, le=MAX_SECONDS,
        description="least wall time between checkpoints (0: at every frame)")

    _default_directory = field_validator("directory")(default_output_directory)


class SafetyConfig(Strict):
    """Limits that stop a run that blew up, with the frames up to that point on disk."""

    max_temperature_K: float = Field(
        3000.0, gt=0, le=10 * MAX_TEMPERATURE_K,
        description="stop when the kinetic temperature exceeds this, K")
    min_distance_A: float = Field(
        0.5, ge=0, le=MAX_LENGTH_A,
        description="stop when two atoms come closer than this, Å (also checked "
        "on the start geometry)")
