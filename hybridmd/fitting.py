"""The mechanics of fitting a network, written once for every training loop in hybridmd.

The interpolator's training (hybridmd.training), the forecaster's (hybridmd.forecaster_training)
and the forecaster's fine-tuning during a hybrid run (``Forecaster.fine_tune``) all fit a
network the same way: batches of sample indices drawn from a seeded generator, one Adam step
per batch (optionally with the gradient norm clipped), an epoch's mean loss, the best weights
by validation score, and a progress bar. What differs between them (the data, the loss, the
learning-rate schedule, when to stop) stays with each loop. Every draw and every floating-point
operation here happens in the order the loops made them before, so a seed trains the same
weights as it always did.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm


def set_up_torch(seed: int, threads: int | None) -> None:
    """Seed torch (the initial weights) and use ``threads`` CPU threads (default: all cores)."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads or os.cpu_count() or 1)


@dataclass
class RandomBatches:
    """``count`` batches of ``size`` samples from ``pool``, drawn with replacement.

    Each batch is drawn from ``rng`` only when it is taken, so a loop may draw more from the
    same generator for a batch (a direction to read it in) before the next one is drawn.
    """

    rng: np.random.Generator
    pool: np.ndarray
    size: int
    count: int

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        for _ in range(self.count):
            yield self.rng.choice(self.pool, self.size)


@dataclass
class ShuffledBatches:
    """One pass over samples 0 .. n-1 in an order drawn from ``rng``, ``size`` at a time."""

    rng: np.random.Generator
    n: int
    size: int

    def __len__(self) -> int:
        return math.ceil(self.n / self.size)

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self.rng.permutation(self.n)
        for i in range(0, self.n, self.size):
            yield order[i:i + self.size]


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
            clip: float | None = None) -> None:
    """One optimiser step down ``loss``; ``clip``: the largest gradient norm, if any."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


def train_epoch(optimizer: torch.optim.Optimizer, batches: RandomBatches | ShuffledBatches,
                loss_of: Callable[[np.ndarray], torch.Tensor], clip: float | None = None,
                after_step: Callable[[], None] | None = None) -> float:
    """One step per batch (its sample indices) down ``loss_of(batch)``; the batches' mean loss.

    ``after_step``: called after each step (a moving average of the weights takes it up).
    """
    mean = 0.0
    for batch in batches:
        loss = loss_of(batch)
        descend(optimizer, loss, clip)
        if after_step is not None:
            after_step()
        mean += loss.item() / len(batches)
    return mean


def state_of(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``net``'s weights on the CPU, unchanged by later training steps."""
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


@dataclass
class BestWeights:
    """The lowest validation score so far, a copy of the weights that scored it, and how many
    validations since have not improved on it (for early stopping)."""

    score: float = math.inf
    state: dict[str, torch.Tensor] | None = None
    stale: int = 0

    def offer(self, score: float, net: torch.nn.Module) -> bool:
        """Keep ``net``'s weights if ``score`` is the lowest yet; whether it was."""
        if score < self.score:
            self.score, self.state, self.stale = score, state_of(net), 0
            return True
        self.stale += 1
        return False


class Progress:
    """A progress bar (over epochs or seconds) that shows each epoch's losses."""

    #: history keys shown, as (label, format, unit)
    SHOWN = {"train_loss": ("train", ".3g", ""), "val_loss": ("val", ".3g", ""),
             "val_position_mae": ("mae", ".2e", "Å"), "lr": ("lr", ".1e", "")}

    def __init__(self, desc: str, total: int, unit: str, enabled: bool, initial: int = 0):
        self.bar = tqdm(total=total, initial=initial, unit=unit, disable=not enabled, desc=desc)

    def show(self, record: dict[str, float], done: int) -> None:
        """Move the bar to ``done`` and show an epoch's history record."""
        self.bar.n = done
        self.bar.set_postfix({label: f"{record[key]:{fmt}}{unit}"
                              for key, (label, fmt, unit) in self.SHOWN.items() if key in record})

    def close(self) -> None:
        self.bar.close()
