"""A recurrent network that corrects the quintic Hermite interpolant (the shipped default).

Why a correction: the quintic spline through r, v and a at both ends is already accurate to
~1e-3 Å at Δt = 10 fs; the paper's plain form (increments integrated from each end) has to
learn that physics from scratch and measured four times worse than the spline in our probe
(../shared/design/interpolator-probe.md). Here the output layer starts at zero, so the untrained
network *is* the quintic interpolant, and training only learns what the spline misses, scaled
by the spread of that correction in the training data.

The LSTM runs over the window's fine frames, grouped ``frames_per_cell`` to a step (about n/10:
several times faster on a CPU than one step per frame), and reads at every step the fractional
time, the spline's state and the whole coarse context (r, v, a at the 2C coarse frames).
``bidirectional`` reads the window from both ends (Bi-LSTM); off, it reads forward only.

Two constraints from physics, on by default (the ablation: ``envelope``/``symmetric`` off):
- ``envelope``: the spline matches r, v and a at both ends, and so does the true path, so the
  position correction is multiplied by (4s(1-s))³ and the velocity correction by (4s(1-s))²:
  the network cannot spoil the frames next to the known ones.
- ``symmetric``: the output is the mean of the network on the window and, time-reversed back,
  on the time-reversed window (ends swapped, velocities negated), in one batch: reconstructing
  the reversed window gives exactly the reversed reconstruction, as Newton's equations do.
  It doubles the cost of a step (in training, ``time_reversal: random`` reads each window
  once instead, in a random direction); bidirectional models only (a forward-only model run on
  both ends would be a bidirectional one).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hybridmd.models.base import InterpolatorNet, pin_endpoints, reverse_time, reverse_window


class ResidualLSTM(InterpolatorNet):
    """(Bi-)LSTM correction of the quintic Hermite interpolant; see the module docstring."""

    def __init__(self, n_atoms: int, stride: int, context: int, hidden: int = 128,
                 layers: int = 2, bidirectional: bool = True, frames_per_cell: int | None = None,
                 envelope: bool = True, symmetric: bool | None = None):
        super().__init__(n_atoms, stride, context)
        symmetric = bidirectional if symmetric is None else symmetric
        if symmetric and not bidirectional:
            raise ValueError("a uni-directional model reads the window forward only; "
                             "symmetric: true would make it read it both ways (use the "
                             "bidirectional kind)")
        self.hidden, self.layers, self.bidirectional = hidden, layers, bidirectional
        self.envelope, self.symmetric = envelope, symmetric
        self.group = frames_per_cell or max(1, round(stride / 10))
        self.kind = "bilstm-residual" if bidirectional else "lstm-residual"
        d = self.dim
        ctx_dim = 2 * context * (d + 3 * n_atoms)
        self.cells = math.ceil((stride + 1) / self.group)
        self.embed = nn.Sequential(nn.Linear(self.group * (1 + d) + ctx_dim, hidden), nn.GELU())
        self.lstm = nn.LSTM(hidden, hidden, layers, batch_first=True,
                            bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), self.group * d)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # spread of the correction per state component, set from training data
        self.register_buffer("residual_scale", torch.ones(d))

    def hyperparameters(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers,
                "bidirectional": self.bidirectional, "frames_per_cell": self.group,
                "envelope": self.envelope, "symmetric": self.symmetric}

    def forward(self, ctx_x: torch.Tensor, ctx_a: torch.Tensor, base_x: torch.Tensor,
                s: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            return self.read_once(ctx_x, ctx_a, base_x, s)
        b, n = base_x.shape[0], self.n_atoms
        back = reverse_window(ctx_x, ctx_a, base_x, n)
        both = self.read_once(*(torch.cat([x, y]) for x, y in
                                zip((ctx_x, ctx_a, base_x), back, strict=True)), s)
        return 0.5 * (both[:b] + reverse_time(both[b:], n))

    def read_once(self, ctx_x: torch.Tensor, ctx_a: torch.Tensor, base_x: torch.Tensor,
                  s: torch.Tensor) -> torch.Tensor:
        """The network on the window as given, without the time-reversed reading that
        ``symmetric`` averages in."""
        b, t, d = base_x.shape
        frames = torch.cat([s.view(1, t, 1).expand(b, t, 1).to(base_x.dtype), base_x], dim=-1)
        pad = self.cells * self.group - t
        if pad:
            frames = torch.cat([frames, frames[:, -1:].expand(b, pad, d + 1)], dim=1)
        frames = frames.reshape(b, self.cells, self.group * (d + 1))
        ctx = torch.cat([ctx_x.flatten(1), ctx_a.flatten(1)], dim=-1)
        inputs = torch.cat([frames, ctx.unsqueeze(1).expand(b, self.cells, ctx.shape[-1])], -1)
        hidden, _ = self.lstm(self.embed(inputs))
        correction = self.head(hidden).reshape(b, self.cells * self.group, d)[:, :t]
        if self.envelope:
            bump = (4.0 * s * (1.0 - s)).to(base_x.dtype).view(1, t, 1)
            half = d // 2
            correction = torch.cat([correction[..., :half] * bump**3,
                                    correction[..., half:] * bump**2], dim=-1)
        out = base_x + correction * self.residual_scale
        return pin_endpoints(out, base_x[:, 0], base_x[:, -1])
