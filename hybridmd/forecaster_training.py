"""`hybridmd train` of a forecaster: the hybrid loop's network, fitted to fine trajectories.

Pairs of states n steps apart are cut from the fine trajectories (the final part of each held
out for validation); the network learns the end state from the start state in the canonical
frame of hybridmd.hybrid.forecaster, with Adam and a cosine decay of the learning rate over a
wall-time budget; the weights with the best validation position error are saved. The
forecaster itself (network, prediction, fine-tuning during a run) lives in
hybridmd.hybrid.forecaster, which the hybrid loop imports without this training code.
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

from hybridmd.errors import InputError
from hybridmd.fitting import BestWeights, Progress, RandomBatches, set_up_torch, train_epoch
from hybridmd.hybrid.forecaster import (
    ForecasterNet,
    Scales,
    canonical_inputs,
    canonical_targets,
    interchangeable_groups,
    load_forecaster,
    save_forecaster,
    to_lab,
)
from hybridmd.interpolation.windows import accelerations
from hybridmd.trajectory import SPACING_RTOL, Trajectory, require_one_system

log = logging.getLogger(__name__)


@dataclass
class ForecasterTrainResult:
    """What a forecaster's training wrote, and how it went (one history record per epoch)."""

    checkpoint: Path
    epochs: int
    best_val_position_mae: float
    minutes: float
    history: list[dict[str, float]] = field(default_factory=list)


class _Pairs:
    """Start/end pairs (t, t + nΔτ) of fine trajectories, split train / final validation part."""

    def __init__(self, trajectories: list[Trajectory], stride: int, validation_fraction: float,
                 window_step: int):
        require_one_system(trajectories, "training")
        first = trajectories[0]
        self.numbers, self.masses, self.dt_fs = first.numbers, first.masses, first.dt_fs
        self.r = torch.as_tensor(np.concatenate([t.positions for t in trajectories]))
        self.v = torch.as_tensor(np.concatenate([t.velocities for t in trajectories]))
        self.a = torch.as_tensor(np.concatenate([accelerations(t) for t in trajectories]))
        train, val, offset = [], [], 0
        for t in trajectories:
            split = offset + int(round(len(t) * (1 - validation_fraction)))
            train.append(np.arange(offset, split - stride, window_step))
            val.append(np.arange(split, offset + len(t) - stride, stride))
            offset += len(t)
        self.train, self.val = np.concatenate(train), np.concatenate(val)
        if not len(self.train) or not len(self.val):
            raise InputError(
                f"data.trajectories: too little data for stride {stride}: need more than "
                f"{stride} frames in both the training part and the validation part (the "
                f"frames are {self.dt_fs:g} fs apart); give longer fine trajectories")
        self.stride = stride

    def gather(self, starts: np.ndarray) -> tuple[torch.Tensor, ...]:
        s = torch.as_tensor(starts)
        e = s + self.stride
        return self.r[s], self.v[s], self.a[s], self.r[e], self.v[e]


def _fit_scales(pairs: _Pairs, masses: torch.Tensor, n_sample: int = 20000,
                seed: int = 0) -> Scales:
    rng = np.random.default_rng(seed)
    starts = rng.choice(pairs.train, min(n_sample, len(pairs.train)), replace=False)
    r0, v0, a0, r1, v1 = pairs.gather(starts)
    w = masses / masses.sum()
    first = pairs.r[int(pairs.train[0])]
    reference = first - (first * w[:, None]).sum(0)
    groups = interchangeable_groups(pairs.numbers, reference.numpy())
    probe = Scales(reference, torch.ones(9 * len(masses), dtype=torch.float64),
                   torch.ones(6 * len(masses), dtype=torch.float64), groups)
    x, frame = canonical_inputs(r0, v0, a0, masses, probe)
    y = canonical_targets(r0, r1, v1, frame, pairs.stride * pairs.dt_fs)
    return Scales(reference, x.std(0).clamp_min(1e-8), y.std(0).clamp_min(1e-8), groups)


def train_forecaster(trajectories: list[Trajectory], stride: int, checkpoint: Path,
                     hidden: int = 512, layers: int = 3, batch_size: int = 256,
                     learning_rate: float = 1e-3, max_minutes: float = 10.0,
                     batches_per_epoch: int = 200, validation_fraction: float = 0.1,
                     window_step: int = 1, seed: int = 0, threads: int | None = None,
                     progress: bool = True,
                     provenance: list[dict[str, Any]] | None = None,
                     start_from: str | Path | None = None,
                     on_start: Callable[[], None] | None = None) -> ForecasterTrainResult:
    """Fit a forecaster within a wall-time budget (Adam, cosine decay over the budget).

    ``start_from``: a forecaster (file or shipped name) whose network and scales the training
    starts from, for the same molecule, Δτ and stride (its own hidden/layers are kept);
    ``on_start``: called once the data and the network are set up, before the training.
    """
    set_up_torch(seed, threads)
    pairs = _Pairs(trajectories, stride, validation_fraction, window_step)
    masses = torch.as_tensor(pairs.masses)
    fine_tuned_from = None
    if start_from is None:
        scales = _fit_scales(pairs, masses, seed=seed)
        net = ForecasterNet(len(masses), hidden, layers).double()
    else:
        initial = load_forecaster(start_from)
        differ = []
        if list(initial.numbers) != [int(z) for z in pairs.numbers]:
            differ.append(f"atoms {list(initial.numbers)} against the data's "
                          f"{[int(z) for z in pairs.numbers]}")
        if (not np.isclose(initial.dt_fs, pairs.dt_fs, rtol=SPACING_RTOL)
                or initial.stride != stride):
            differ.append(f"{initial.stride} steps of {initial.dt_fs:g} fs against {stride} of "
                          f"{pairs.dt_fs:g} fs")
        if differ:
            raise ValueError(f"--from {initial.metadata['checkpoint']} does not fit this "
                             f"training input: {'; '.join(differ)}")
        scales, net = initial.scales, initial.net
        fine_tuned_from = {"checkpoint": initial.metadata["checkpoint"],
                           "provenance": initial.metadata.get("provenance", [])}
    if on_start is not None:
        on_start()
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    h = stride * pairs.dt_fs
    budget = 60.0 * max_minutes
    start, epoch, history, best = time.perf_counter(), 0, [], BestWeights()
    bar = Progress("train forecaster", round(budget), "s", progress)

    def batch_loss(starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r0, v0, a0, r1, v1 = pairs.gather(starts)
        x, frame = canonical_inputs(r0, v0, a0, masses, scales)
        y = canonical_targets(r0, r1, v1, frame, h) / scales.targets
        pred = net(x)
        return ((pred - y) ** 2).mean(), pred, frame

    while (elapsed := time.perf_counter() - start) < budget:
        net.train()
        lr = learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        for group in opt.param_groups:
            group["lr"] = lr
        batches = RandomBatches(rng, pairs.train, batch_size, batches_per_epoch)
        train_loss = train_epoch(opt, batches, lambda starts: batch_loss(starts)[0])
        net.eval()
        with torch.no_grad():
            starts = pairs.val[:4000]
            _, pred, frame = batch_loss(starts)
            r1_pred, _ = to_lab(pred * scales.targets, frame, scales.reference, h)
            mae = float((r1_pred - pairs.gather(starts)[3]).abs().mean())
        epoch += 1
        history.append({"epoch": epoch, "train_loss": train_loss, "val_position_mae": mae,
                        "lr": lr, "minutes": (time.perf_counter() - start) / 60})
        best.offer(mae, net)
        bar.show(history[-1], min(round(time.perf_counter() - start), round(budget)))
    bar.close()
    net.load_state_dict(best.state)
    minutes = (time.perf_counter() - start) / 60
    meta = {"name": f"forecaster ({checkpoint.name})", "provenance": provenance or [],
            "fine_tuned_from": fine_tuned_from, "best_val_position_mae": best.score,
            "epochs": epoch, "minutes": minutes, "history": history}
    save_forecaster(checkpoint, net, pairs.numbers, pairs.masses, pairs.dt_fs, stride, scales,
                    meta)
    log.info("forecaster: %d epochs in %.1f min, validation position MAE %.3e Å -> %s",
             epoch, minutes, best.score, checkpoint)
    return ForecasterTrainResult(checkpoint, epoch, best.score, minutes, history)
