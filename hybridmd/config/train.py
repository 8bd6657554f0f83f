"""The input of `hybridmd train`: the data, the network and its optimisation."""

from __future__ import annotations

import difflib
import glob
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from hybridmd.config.base import (
    MAX_BATCH,
    MAX_COUNT,
    MAX_EPOCHS,
    MAX_SEED,
    MAX_THREADS,
    MAX_TIME_FS,
    Strict,
    existing_file,
    resolve_path,
)
from hybridmd.formats import TrajectoryFormat


class TrajectorySource(Strict):
    """A fine trajectory for training: any format ``hybridmd.readers`` reads."""

    path: Path = Field(description="the file, relative to the input file; * and ? match "
                       "several")
    dt_fs: float | None = Field(None, gt=0, le=MAX_TIME_FS,
                                description="frame spacing where the file has none")
    format: TrajectoryFormat | None = Field(
        None, description="the file's format (default: from its name)")

    @field_validator("path")
    @classmethod
    def _exists(cls, path: Path, info: ValidationInfo) -> Path:
        return existing_file(path, info)


class TrainDataConfig(Strict):
    """The fine trajectories a network is trained on, and the part kept for validation."""

    trajectories: list[TrajectorySource] = Field(
        min_length=1, description="fine trajectories; a path with * or ? stands for every "
        "file it matches (sorted), e.g. the segments of workflows/generate_nve_training_data.py")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="final part of each trajectory kept for validation")
    window_step: int = Field(1, ge=1, le=MAX_COUNT,
                             description="fine frames between training window starts")

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
            pattern = resolve_path(Path(path), info)
            matches = sorted(glob.glob(str(pattern)))
            if not matches:
                raise ValueError(f"no file matches {pattern} (relative paths are taken from the "
                                 "input file's folder)")
            expanded += [{**src, "path": m} for m in matches]
        return expanded


#: what ``model.hyperparameters`` of ``kind: forecaster`` may set (``ForecasterNet``)
FORECASTER_HYPERPARAMETERS = ["hidden", "layers"]
#: the largest whole-number hyper-parameters (a hidden size of 1e6 exhausts memory)
HYPERPARAMETER_LIMITS = {"hidden": 4096, "layers": 64}
#: the largest of any other whole-number hyper-parameter (steps per cell, substeps, ...)
MAX_HYPERPARAMETER = 10_000
#: the ``model:`` and ``training:`` keys the forecaster's own training loop uses
#: (``hybridmd.forecaster_training.train_forecaster``); the others are the interpolator's
FORECASTER_MODEL_KEYS = ["kind", "stride", "hyperparameters"]
FORECASTER_TRAINING_KEYS = ["batch_size", "learning_rate", "batches_per_epoch", "max_minutes",
                            "seed", "threads"]


class ModelConfig(Strict):
    """The network to train: its kind, its time grid and its size."""

    kind: str = Field("bilstm-residual", description="network kind, see models.registry, or "
                      "`forecaster` (the hybrid loop's x(t) -> x(t+Δt) network)")
    stride: int = Field(ge=2, le=MAX_COUNT, description="n: fine steps per coarse step (Δt = n·Δτ)")
    context: int = Field(2, ge=1, le=1000, description="coarse frames of context on each side")
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
        from hybridmd.models.registry import hyperparameter_defaults

        kind = info.data.get("kind")
        if kind is None:  # the kind itself is wrong: reported there
            return hyper
        defaults = ({n: 1 for n in FORECASTER_HYPERPARAMETERS} if kind == "forecaster"
                    else hyperparameter_defaults(kind))
        known = sorted(defaults)
        for name, value in hyper.items():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{kind} networks have no hyper-parameter {name!r}{hint} "
                                 f"(known: {', '.join(known)})")
            problem = _hyperparameter_problem(name, value, defaults[name])
            if problem:
                raise ValueError(f"{name}: {problem}")
        return hyper


def _hyperparameter_problem(name: str, value: Any, default: Any) -> str | None:
    """What is wrong with a numeric hyper-parameter's value, or None: a YAML boolean where the
    constructor takes a number, .inf or .nan, a whole number out of range."""
    number = isinstance(default, int | float) and not isinstance(default, bool)
    if isinstance(value, bool):
        return (f"got {value}, a YAML boolean, where a number goes; write the number"
                if number or name in HYPERPARAMETER_LIMITS else None)
    if isinstance(value, float) and not math.isfinite(value):
        return f"got {value}; write a finite number"
    if isinstance(value, int):
        limit = HYPERPARAMETER_LIMITS.get(name, MAX_HYPERPARAMETER)
        if not 1 <= value <= limit:
            return f"got {value}; allowed: 1 to {limit}"
    return None


class PlateauConfig(Strict):
    """ReduceLROnPlateau settings (the paper's defaults); min_lr also ends a cosine schedule."""

    factor: float = Field(0.5, gt=0, lt=1,
                          description="learning rate x factor on a plateau (or a milestone)")
    patience: int = Field(3, ge=0, le=MAX_EPOCHS,
                          description="epochs without improvement before a cut")
    threshold: float = Field(1e-3, ge=0, le=1, description="relative improvement that counts")
    min_lr: float = Field(1e-5, ge=0, le=1, description="lowest learning rate")


class OptimisationConfig(Strict):
    """How a network is trained: Adam, a learning-rate schedule, early stopping, a budget."""

    batch_size: int = Field(200, gt=0, le=MAX_BATCH, description="windows per optimisation step")
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam's initial learning rate")
    max_epochs: int = Field(500, gt=0, le=MAX_EPOCHS, description="most epochs")
    batches_per_epoch: int = Field(100, gt=0, le=MAX_EPOCHS,
                                   description="optimisation steps per epoch")
    early_stopping_patience: int = Field(
        12, gt=0, le=MAX_EPOCHS,
        description="epochs without validation improvement before stopping")
    max_minutes: float = Field(30.0, gt=0, le=1e6, description="wall-time budget for training")
    gradient_clip: float = Field(1.0, gt=0, le=1e6, description="largest gradient norm")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the weights and the batches")
    threads: int | None = Field(None, gt=0, le=MAX_THREADS,
                                description="CPU threads (default: all cores)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where to train (auto: cuda when there is one)")
    schedule: Literal["plateau", "cosine", "step"] = Field(
        "plateau", description="plateau: the paper's ReduceLROnPlateau; cosine: linear warm-up "
        "then cosine decay to plateau.min_lr over max_epochs; step: the learning rate x "
        "plateau.factor after each epoch in milestones")
    milestones: list[Annotated[int, Field(ge=1, le=MAX_EPOCHS)]] = Field(
        default_factory=list, description="step schedule only: epochs after which the "
        "learning rate is cut, e.g. [120, 140]")
    warmup_epochs: int = Field(3, ge=0, le=MAX_EPOCHS, description="cosine schedule only")
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

    @model_validator(mode="after")
    def _forecaster_keys(self) -> TrainConfig:
        """A forecaster trains in a loop of its own: an interpolator-training key the input
        sets would be ignored, so it is refused (defaults are fine)."""
        if self.model.kind != "forecaster":
            return self
        unused = [f"model.{k}" for k in ModelConfig.model_fields
                  if k in self.model.model_fields_set and k not in FORECASTER_MODEL_KEYS]
        unused += [f"training.{k}" for k in OptimisationConfig.model_fields
                   if k in self.training.model_fields_set and k not in FORECASTER_TRAINING_KEYS]
        if unused:
            them = "it" if len(unused) == 1 else "them"
            raise ValueError(
                f"{', '.join(unused)}: the forecaster's training does not use {them}; remove "
                f"{them} (the forecaster trains with Adam, its learning rate decaying over "
                "training.max_minutes, and takes from training: "
                f"{', '.join(FORECASTER_TRAINING_KEYS)})")
        return self
