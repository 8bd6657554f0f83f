"""`hybridmd train`: fit an interpolator network to fine trajectories.

Windows are cut on the fly from the fine trajectories at the model's stride; the final part of
each trajectory (10% by default, as in the paper) is held out for validation. Adam with
ReduceLROnPlateau (the paper's defaults), a cosine schedule or cuts at fixed epochs, gradient
clipping, optionally a moving average of the weights (validated and saved in their place) and,
for symmetric models, one reading of each window in a random direction instead of both,
early stopping and a wall-time budget; the best weights and the state to resume from are saved
to one checkpoint file.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from hybridmd.config import TrainConfig
from hybridmd.errors import InputError
from hybridmd.fingerprint import sha256
from hybridmd.fitting import (
    BestWeights,
    Progress,
    RandomBatches,
    set_up_torch,
    state_of,
    train_epoch,
)
from hybridmd.forecaster_training import train_forecaster
from hybridmd.interpolation.frames import Canonicaliser
from hybridmd.interpolation.neural import prepare_batch, states_to_lab
from hybridmd.interpolation.temperature import context_temperatures, temperature_range
from hybridmd.interpolation.windows import accelerations
from hybridmd.interpolator_file import ModelMismatchError, read_checkpoint, save_checkpoint
from hybridmd.models.base import InterpolatorNet, reverse_time, reverse_window
from hybridmd.models.registry import build_net
from hybridmd.readers import read_trajectory
from hybridmd.trajectory import SPACING_RTOL, Trajectory, require_one_system

log = logging.getLogger(__name__)


def check_fine_spacing(trajectories: list[Trajectory]) -> None:
    """Refuse coarse or subsampled trajectories as training data: wrong spacing.

    A network learns the frames between coarse ones from a fine trajectory (every MD step);
    hybridmd's own files say when they are not one (``step`` numbers more than one apart, or
    the coarse frames of a hybrid run).
    """
    for t in trajectories:
        source = t.metadata.get("source", "a trajectory")
        steps = t.metadata.get("md_steps_between_frames", 1)
        if t.metadata.get("coarse_frames") or steps > 1:
            what = (f"its frames are {steps} MD steps ({t.dt_fs:g} fs) apart" if steps > 1
                    else f"it holds the coarse frames of a hybrid run ({t.dt_fs:g} fs apart)")
            raise InputError(
                f"data.trajectories: {source}: wrong spacing: {what}. Training needs a fine "
                "trajectory with every MD step (simulate with output.stride: 1, or the "
                "fine.traj of a run); the model's stride makes the coarse frames from it")


class WindowSource:
    """Fine trajectories of one molecule as tensors, from which windows are gathered by start."""

    def __init__(self, trajectories: list[Trajectory], stride: int, context: int,
                 validation_fraction: float, window_step: int = 1):
        require_one_system(trajectories, "training")
        first = trajectories[0]
        self.stride, self.context, self.dt_fs = stride, context, first.dt_fs
        self.numbers, self.masses = first.numbers, first.masses
        self.r = torch.as_tensor(np.concatenate([t.positions for t in trajectories]))
        self.v = torch.as_tensor(np.concatenate([t.velocities for t in trajectories]))
        self.a = torch.as_tensor(np.concatenate([accelerations(t) for t in trajectories]))
        self.offsets = torch.arange(-(context - 1), context + 1) * stride
        train, val, offset = [], [], 0
        for t in trajectories:
            split = offset + int(round(len(t) * (1 - validation_fraction)))
            train.append(self._starts(offset, split, window_step))
            val.append(self._starts(split, offset + len(t), stride))
            offset += len(t)
        self.train_starts, self.val_starts = np.concatenate(train), np.concatenate(val)
        if not len(self.train_starts) or not len(self.val_starts):
            need = (2 * context - 1) * stride + 1
            longest = max(len(t) for t in trajectories)
            raise InputError(
                f"data.trajectories: too little data: windows of stride {stride} with context "
                f"{context} need {need} frames in both the training part and the final "
                f"{validation_fraction:.0%} of a trajectory; the longest has {longest} frames "
                f"{self.dt_fs:g} fs apart (a window spans {need - 1} of them, "
                f"{(need - 1) * self.dt_fs:g} fs): give longer trajectories, or check that "
                "these are fine ones (every MD step)")

    def _starts(self, begin: int, end: int, step: int) -> np.ndarray:
        """Window starts whose context frames all lie in frames [begin, end)."""
        lo = begin + (self.context - 1) * self.stride
        hi = end - 1 - self.context * self.stride
        return np.arange(lo, hi + 1, step) if hi >= lo else np.zeros(0, dtype=int)

    def temperatures(self, starts: np.ndarray) -> np.ndarray:
        """(B,) temperatures (K) of the windows at ``starts``: their context frames' mean."""
        frame_t = context_temperatures(self.v.numpy()[:, None], self.masses)
        return frame_t[np.asarray(starts)[:, None] + self.offsets.numpy()[None, :]].mean(axis=1)

    def gather(self, starts: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Context r, v, a (B, 2C, N, 3) and fine targets r, v (B, n+1, N, 3), float64."""
        s = torch.as_tensor(starts)
        ctx = s[:, None] + self.offsets[None, :]
        fine = s[:, None] + torch.arange(self.stride + 1)[None, :]
        return self.r[ctx], self.v[ctx], self.a[ctx], self.r[fine], self.v[fine]


def _sample(source: WindowSource, n_sample: int, seed: int) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(seed)
    starts = rng.choice(source.train_starts, min(n_sample, len(source.train_starts)),
                        replace=False)
    return source.gather(starts)


def fit_canonicaliser(source: WindowSource, n_sample: int = 4000,
                      seed: int = 0) -> tuple[Canonicaliser, torch.Tensor]:
    """Reference geometry and scales from training windows; and the correction's spread.

    The reference is the first training frame, centred; the scales are the spreads of the
    canonical r, v and a; the correction spread is that of (fine frame - quintic interpolant)
    over the interior frames, per state component, in scaled units.
    """
    masses = torch.as_tensor(source.masses)
    w = masses / masses.sum()
    r0 = source.r[int(source.train_starts[0])]
    reference = r0 - (r0 * w[:, None]).sum(0)
    ones = {k: torch.ones_like(reference) for k in ("r", "v", "a")}
    r, v, a, tr, tv = _sample(source, n_sample, seed)
    probe = Canonicaliser(masses, reference, ones)
    batch = prepare_batch(probe, r, v, a, source.stride, source.dt_fs, tr, tv, torch.float64)
    n3 = 3 * len(masses)
    ctx = batch.ctx_x.reshape(-1, 2 * n3)
    scales = {
        "r": ctx[:, :n3].std(0).reshape(-1, 3).clamp_min(1e-6),
        "v": ctx[:, n3:].std(0).reshape(-1, 3).clamp_min(1e-8),
        "a": batch.ctx_a.reshape(-1, n3).std(0).reshape(-1, 3).clamp_min(1e-8),
    }
    canon = Canonicaliser(masses, reference, scales)
    return canon, residual_spread(source, canon, n_sample, seed)


def residual_spread(source: WindowSource, canon: Canonicaliser, n_sample: int = 4000,
                    seed: int = 0) -> torch.Tensor:
    """Spread of (fine frame - quintic interpolant) over interior frames, in ``canon``'s units."""
    r, v, a, tr, tv = _sample(source, n_sample, seed)
    batch = prepare_batch(canon, r, v, a, source.stride, source.dt_fs, tr, tv, torch.float64)
    residual = (batch.target_x - batch.base_x)[:, 1:-1].reshape(-1, batch.base_x.shape[-1])
    return residual.std(0).clamp_min(1e-8).float()


@dataclass
class TrainResult:
    checkpoint: Path
    epochs: int
    best_val_loss: float
    best_val_position_mae: float
    minutes: float
    history: list[dict[str, float]] = field(default_factory=list)


def _device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


class Trainer:
    """One training run from a ``TrainConfig``; ``run`` trains or resumes and saves."""

    def __init__(self, cfg: TrainConfig, start_from: str | Path | None = None):
        """``start_from``: a checkpoint (or shipped name) whose network, canonical frame and
        scales the training starts from (fine-tuning); it must be the input's kind of model,
        for the same molecule, Δτ, stride and context."""
        self.cfg = cfg
        opt = cfg.training
        set_up_torch(opt.seed, opt.threads)
        self.device = _device(opt.device)
        trajectories = [read_trajectory(src.path, src.format, dt_fs=src.dt_fs)
                        for src in cfg.data.trajectories]
        check_fine_spacing(trajectories)
        self.provenance = [{"path": str(src.path), "frames": len(t), "dt_fs": t.dt_fs,
                            "velocities": t.metadata.get("velocities")}
                           for src, t in zip(cfg.data.trajectories, trajectories, strict=True)]
        #: the data's fingerprint, so that --resume goes on with the very same data
        self.data_files = [{"path": str(src.path), "sha256": sha256(src.path)}
                           for src in cfg.data.trajectories]
        m = cfg.model
        self.source = WindowSource(trajectories, m.stride, m.context,
                                   cfg.data.validation_fraction, cfg.data.window_step)
        self.temperature_range = temperature_range(
            self.source.temperatures(self.source.train_starts))
        self.fine_tuned_from: dict[str, Any] | None = None
        if start_from is None:
            self.canon, self.loss_scale = fit_canonicaliser(self.source, seed=opt.seed)
            try:
                self.net: InterpolatorNet = build_net(m.kind, len(self.source.numbers),
                                                      m.stride, m.context, **m.hyperparameters)
            except (TypeError, ValueError) as exc:
                raise InputError(f"model.hyperparameters: {exc}") from exc
            if hasattr(self.net, "residual_scale"):
                self.net.residual_scale.copy_(self.loss_scale)
        else:
            self.net, self.canon = self._start_from(start_from)
            self.loss_scale = residual_spread(self.source, self.canon, seed=opt.seed)
        if opt.time_reversal == "random" and not getattr(self.net, "symmetric", False):
            raise InputError("training.time_reversal: random trains a symmetric model one "
                             f"reading at a time, but this {self.net.kind} model is not "
                             "symmetric: leave time_reversal out (or set model.hyperparameters."
                             "symmetric: true)")
        self.net.to(self.device)
        self.loss_scale = self.loss_scale.to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=opt.learning_rate)
        p = opt.plateau
        if opt.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=p.factor, patience=p.patience, threshold=p.threshold,
                min_lr=p.min_lr)
        elif opt.schedule == "step":
            self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
                self.optimizer, opt.milestones, gamma=p.factor)
        else:
            floor = p.min_lr / opt.learning_rate
            warm = max(opt.warmup_epochs, 1)

            def factor(epoch: int) -> float:
                if epoch < warm:
                    return (epoch + 1) / warm
                progress = min(1.0, (epoch - warm) / max(1, opt.max_epochs - warm))
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.averaged = None if opt.weight_average is None else AveragedModel(
            self.net, multi_avg_fn=get_ema_multi_avg_fn(opt.weight_average), use_buffers=True)
        self.rng = np.random.default_rng(opt.seed)
        self.epoch, self.best, self.best_mae = 0, BestWeights(), math.inf
        self.history: list[dict[str, float]] = []
        self.elapsed = 0.0

    def _start_from(self, spec: str | Path) -> tuple[InterpolatorNet, Canonicaliser]:
        """The network and canonical frame of a checkpoint, checked against the input."""
        data = read_checkpoint(spec)
        m, src = self.cfg.model, self.source
        mine = {"kind": m.kind, "stride": m.stride, "context": m.context,
                "numbers": [int(z) for z in src.numbers]}
        theirs = {k: data[k] for k in mine}
        theirs["numbers"] = [int(z) for z in theirs["numbers"]]
        differ = [f"{k}: checkpoint {theirs[k]}, input {mine[k]}" for k in mine
                  if theirs[k] != mine[k]]
        if not np.isclose(data["dt_fs"], src.dt_fs, rtol=SPACING_RTOL):
            differ.append(f"Δτ: checkpoint {data['dt_fs']:g} fs, data {src.dt_fs:g} fs")
        theirs_hp = data["hyperparameters"]
        changed = {k: v for k, v in m.hyperparameters.items() if theirs_hp.get(k) != v}
        if changed:
            differ.append(f"hyperparameters: checkpoint {theirs_hp}, input {changed} (leave "
                          "them out to keep the checkpoint's)")
        if differ:
            raise ModelMismatchError(f"--from {data['path']} does not fit this training input: "
                                     + "; ".join(differ))
        net = build_net(data["kind"], data["n_atoms"], data["stride"], data["context"],
                        **data["hyperparameters"])
        net.load_state_dict(data["state_dict"])
        canon = Canonicaliser(torch.tensor(data["masses"]), data["reference"], data["scales"])
        self.fine_tuned_from = {"checkpoint": str(data["path"]),
                                "provenance": data["metadata"].get("provenance", [])}
        return net, canon

    def _batch(self, starts: np.ndarray):
        r, v, a, tr, tv = (x.to(self.device) for x in self.source.gather(starts))
        return prepare_batch(self.canon, r, v, a, self.source.stride, self.source.dt_fs, tr, tv)

    @property
    def scored(self) -> InterpolatorNet:
        """The weights that are validated and saved: the moving average, if there is one."""
        return self.net if self.averaged is None else self.averaged.module

    def _loss(self, batch, net: InterpolatorNet,
              backwards: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled squared error and the network's states; ``backwards`` ((B,) bool): read
        each window once, backwards where True (``time_reversal: random``)."""
        if backwards is None:
            x = net(batch.ctx_x, batch.ctx_a, batch.base_x, batch.s)
        else:
            x = self.read_once(batch, net, backwards)
        err = (x - batch.target_x)[:, 1:-1] / self.loss_scale
        return (err**2).mean(), x

    @staticmethod
    def read_once(batch, net: InterpolatorNet, backwards: torch.Tensor) -> torch.Tensor:
        """One reading of a symmetric network per window, backwards in time where
        ``backwards``, its output turned forwards again: the mean of the two readings is
        what the network gives when it interpolates."""
        n, where = net.n_atoms, backwards.view(-1, 1, 1)
        back = reverse_window(batch.ctx_x, batch.ctx_a, batch.base_x, n)
        x = net.read_once(*(torch.where(where, b, f) for f, b in
                            zip((batch.ctx_x, batch.ctx_a, batch.base_x), back, strict=True)),
                          batch.s)
        return torch.where(where, reverse_time(x, n), x)

    def _step_loss(self, starts: np.ndarray) -> torch.Tensor:
        """The loss of one training batch; with ``time_reversal: random``, each window's
        direction is drawn from the batch generator right after the batch."""
        opt = self.cfg.training
        backwards = None if opt.time_reversal == "both" else torch.as_tensor(
            self.rng.random(opt.batch_size) < 0.5, device=self.device)
        return self._loss(self._batch(starts), self.net, backwards)[0]

    def _average(self) -> None:
        """Take the weights after a step into the moving average."""
        self.averaged.update_parameters(self.net)

    @torch.no_grad()
    def validate(self, max_windows: int = 2000) -> tuple[float, float]:
        """Validation loss and position MAE (Å, interior frames) on held-out windows."""
        net = self.scored.eval()
        starts = self.source.val_starts[:max_windows]
        total, mae, count = 0.0, 0.0, 0
        n_atoms = len(self.source.numbers)
        for i in range(0, len(starts), 500):
            chunk = starts[i:i + 500]
            batch = self._batch(chunk)
            loss, x = self._loss(batch, net)
            pr, _ = states_to_lab(self.canon, batch, x, n_atoms)
            _, _, _, tr, _ = self.source.gather(chunk)
            total += float(loss) * len(chunk)
            mae += float((pr[:, 1:-1].cpu() - tr[:, 1:-1]).abs().mean()) * len(chunk)
            count += len(chunk)
        return total / count, mae / count

    def _training_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "best": self.best.score, "best_mae": self.best_mae,
            "stale": self.best.stale, "history": self.history, "elapsed_s": self.elapsed,
            "current_state_dict": state_of(self.net),
            "averaged_state_dict": None if self.averaged is None else state_of(self.averaged),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
        }

    def _save(self) -> None:
        state = self._training_state()
        self.net.load_state_dict(self.best.state)
        meta = {"name": self.net.kind, "provenance": self.provenance,
                "data_files": self.data_files,
                "fine_tuned_from": self.fine_tuned_from,
                "config": self.cfg.model_dump(mode="json"),
                "temperature_range_K": self.temperature_range,
                "best_val_loss": self.best.score, "best_val_position_mae": self.best_mae,
                "epochs": self.epoch, "minutes": self.elapsed / 60}
        save_checkpoint(self.cfg.output.checkpoint, self.net, self.canon, self.source.numbers,
                        self.source.dt_fs, meta, state)
        self.net.load_state_dict(state["current_state_dict"])

    def resume(self) -> None:
        """Continue from the checkpoint at the configured output path."""
        data = read_checkpoint(self.cfg.output.checkpoint)
        state = data["training_state"]
        if state is None:
            raise ValueError(f"{self.cfg.output.checkpoint} holds no training state to resume")
        self.net.load_state_dict(state["current_state_dict"])
        if self.averaged is not None and state.get("averaged_state_dict") is not None:
            self.averaged.load_state_dict(state["averaged_state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.best = BestWeights(state["best"], data["state_dict"], state["stale"])
        self.epoch, self.best_mae = state["epoch"], state["best_mae"]
        self.history, self.elapsed = state["history"], state["elapsed_s"]
        log.info("resuming training at epoch %d (best validation loss %.4g)", self.epoch,
                 self.best.score)

    def run(self, progress: bool = True) -> TrainResult:
        """Train until early stopping, ``max_epochs`` or the time budget; save the best."""
        opt = self.cfg.training
        self.cfg.output.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if self.best.state is None:
            self.best.state = state_of(self.scored)
        start = time.perf_counter() - self.elapsed
        bar = Progress(f"train {self.net.kind}", opt.max_epochs, "epoch", progress, self.epoch)
        while self.epoch < opt.max_epochs:
            self.net.train()
            batches = RandomBatches(self.rng, self.source.train_starts, opt.batch_size,
                                    opt.batches_per_epoch)
            train_loss = train_epoch(self.optimizer, batches, self._step_loss, opt.gradient_clip,
                                     None if self.averaged is None else self._average)
            val_loss, val_mae = self.validate()
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(val_loss)
            else:
                self.scheduler.step()
            self.epoch += 1
            self.elapsed = time.perf_counter() - start
            lr = self.optimizer.param_groups[0]["lr"]
            self.history.append({"epoch": self.epoch, "train_loss": train_loss,
                                 "val_loss": val_loss, "val_position_mae": val_mae, "lr": lr,
                                 "minutes": self.elapsed / 60})
            if self.best.offer(val_loss, self.scored):
                self.best_mae = val_mae
            self._save()
            log.log(logging.DEBUG if progress else logging.INFO,
                    "epoch %d: train %.4g, validation %.4g (position MAE %.3e Å), lr %.1e",
                    self.epoch, train_loss, val_loss, val_mae, lr)
            bar.show(self.history[-1], self.epoch)
            if self.best.stale >= opt.early_stopping_patience:
                log.info("early stop: no improvement for %d epochs", self.best.stale)
                break
            if self.elapsed > 60 * opt.max_minutes:
                log.info("time budget of %.1f min reached", opt.max_minutes)
                break
        bar.close()
        return TrainResult(self.cfg.output.checkpoint, self.epoch, self.best.score,
                           self.best_mae, self.elapsed / 60, self.history)


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True,
          start_from: str | Path | None = None,
          on_start: Callable[[], None] | None = None) -> TrainResult:
    """Train (or resume training) as configured; ``start_from``: fine-tune a checkpoint;
    ``on_start``: called once the data and the network are set up, before anything is
    written (the command line takes the checkpoint's lock there)."""
    if resume and start_from is not None:
        raise ValueError("give --resume (go on with this input's own checkpoint) or --from "
                         "(start from another checkpoint), not both")
    if cfg.model.kind == "forecaster":
        if resume:
            raise ValueError("--resume is for interpolator training; a forecaster trains within "
                             "its time budget in one go")
        return _train_forecaster(cfg, progress, start_from, on_start)
    trainer = Trainer(cfg, start_from)
    if on_start is not None:
        on_start()
    if resume:
        trainer.resume()
    return trainer.run(progress=progress)


def _train_forecaster(cfg: TrainConfig, progress: bool, start_from: str | Path | None,
                      on_start: Callable[[], None] | None = None) -> TrainResult:
    """The hybrid loop's forecaster from the same kind of input (context is not used)."""
    opt = cfg.training
    trajectories = [read_trajectory(src.path, src.format, dt_fs=src.dt_fs)
                    for src in cfg.data.trajectories]
    check_fine_spacing(trajectories)
    provenance = [{"path": str(src.path), "frames": len(t), "dt_fs": t.dt_fs}
                  for src, t in zip(cfg.data.trajectories, trajectories, strict=True)]
    result = train_forecaster(
        trajectories, cfg.model.stride, cfg.output.checkpoint, **cfg.model.hyperparameters,
        batch_size=opt.batch_size, learning_rate=opt.learning_rate, max_minutes=opt.max_minutes,
        batches_per_epoch=opt.batches_per_epoch,
        validation_fraction=cfg.data.validation_fraction, window_step=cfg.data.window_step,
        seed=opt.seed, threads=opt.threads, progress=progress, provenance=provenance,
        start_from=start_from, on_start=on_start)
    return TrainResult(result.checkpoint, result.epochs, math.nan, result.best_val_position_mae,
                       result.minutes, result.history)
