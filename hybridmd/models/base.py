"""The contract every neural interpolator network fulfils.

Networks work on normalised phase-space vectors of one molecule. A state x = (r, v) is a vector
of D = 6N numbers: the 3N positions followed by the 3N velocities, centred on the molecule's
centre of mass, rotated into a canonical orientation and scaled to unit spread by the wrapper
(``hybridmd.interpolation.neural``), which also undoes all of this afterwards. The networks
never see units.

Inputs of ``forward``:
- ``ctx_x``: (B, 2C, D) the 2C coarse context states; index C-1 is x(t), index C is x(t+Δt);
- ``ctx_a``: (B, 2C, 3N) accelerations at the context frames, normalised like positions/time²;
- ``base_x``: (B, n+1, D) the quintic Hermite interpolant between x(t) and x(t+Δt), at the n+1
  fine times (its first and last rows equal x(t) and x(t+Δt));
- ``s``: (n+1,) fractional times k/n, from 0 to 1.

Output: (B, n+1, D) the reconstructed states at the n+1 fine times. Rows 0 and n must equal
x(t) and x(t+Δt) exactly (``pin_endpoints`` does it).

Time reversal: a bi-directional network runs the backward solution as the forward one on the
reversed window: context order flipped, velocities negated (``reverse_time``), through the same
weights in the same batch, and blends the two with λ_k = k/n (``blend``).
"""

from __future__ import annotations

import torch
from torch import nn


class InterpolatorNet(nn.Module):
    """Base class: subclasses implement ``forward`` as documented in this module."""

    #: registry name, e.g. "bilstm-residual", "lstm", "bi-lstm", "bi-node", "bi-hnn"
    kind: str = ""

    def __init__(self, n_atoms: int, stride: int, context: int):
        super().__init__()
        self.n_atoms, self.stride, self.context = n_atoms, stride, context
        self.dim = 6 * n_atoms

    def hyperparameters(self) -> dict:
        """Keyword arguments that rebuild this network (besides n_atoms, stride, context)."""
        return {}


def reverse_time(x: torch.Tensor, n_atoms: int, axis: int = 1) -> torch.Tensor:
    """Flip a sequence of states in time and negate the velocities (the last 3N entries)."""
    flipped = torch.flip(x, dims=(axis,))
    sign = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
    if x.shape[-1] == 6 * n_atoms:
        sign[3 * n_atoms:] = -1.0
    return flipped * sign


def reverse_window(ctx_x: torch.Tensor, ctx_a: torch.Tensor, base_x: torch.Tensor,
                   n_atoms: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A window's inputs read backwards in time: ends swapped, velocities negated, the
    accelerations (even in time) only reordered."""
    return (reverse_time(ctx_x, n_atoms), torch.flip(ctx_a, dims=(1,)),
            reverse_time(base_x, n_atoms))


def blend(forward: torch.Tensor, backward: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """(1 - λ) forward + λ backward with λ_k = s_k = k/n, along the time axis 1."""
    lam = s.view(1, -1, 1).to(forward.dtype)
    return (1.0 - lam) * forward + lam * backward


def pin_endpoints(x: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """``x`` with its first and last time rows replaced by the given end states."""
    return torch.cat([x0.unsqueeze(1), x[:, 1:-1], x1.unsqueeze(1)], dim=1)
