"""A trained network behind the interpolator interface: canonical frames in, lab frames out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hybridmd.interpolation.classical import hermite_weights
from hybridmd.interpolation.frames import Canonicaliser, WindowFrame
from hybridmd.interpolation.windows import Windows
from hybridmd.models.base import InterpolatorNet


def _flat(r: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, T, N, 3) r and v -> (B, T, 6N) states."""
    return torch.cat([r.flatten(2), v.flatten(2)], dim=-1)


@dataclass
class Batch:
    """Network inputs (float32) of a batch of windows, with what it takes to go back to Å."""

    ctx_x: torch.Tensor
    ctx_a: torch.Tensor
    base_x: torch.Tensor
    s: torch.Tensor
    frame: WindowFrame
    base_x64: torch.Tensor  #: the interpolant in float64, to add the network's change to
    target_x: torch.Tensor | None = None


def prepare_batch(canon: Canonicaliser, r: torch.Tensor, v: torch.Tensor, a: torch.Tensor,
                  stride: int, dt_fs: float, target_r: torch.Tensor | None = None,
                  target_v: torch.Tensor | None = None,
                  dtype: torch.dtype = torch.float32) -> Batch:
    """Canonical network inputs from lab-frame context frames (B, 2C, N, 3), float64."""
    c = r.shape[1] // 2
    h = stride * dt_fs
    frame = canon.frame(r[:, c - 1], r[:, c], h)
    s_ctx = torch.arange(-(c - 1), c + 1, dtype=torch.float64, device=r.device)
    rc, vc, ac = canon.to_canonical(frame, r, v, s_ctx, a)
    w, dw = (torch.as_tensor(x, dtype=torch.float64, device=r.device)
             for x in hermite_weights(stride, 5))
    ends = torch.stack([r[:, c - 1], h * v[:, c - 1], h * h * a[:, c - 1],
                        r[:, c], h * v[:, c], h * h * a[:, c]], dim=1)
    base_r = torch.einsum("sk,bknx->bsnx", w, ends)
    base_v = torch.einsum("sk,bknx->bsnx", dw, ends) / h
    s = torch.arange(stride + 1, dtype=torch.float64, device=r.device) / stride
    base_rc, base_vc = canon.to_canonical(frame, base_r, base_v, s)
    base_x = _flat(base_rc, base_vc)
    batch = Batch(_flat(rc, vc).to(dtype), ac.flatten(2).to(dtype), base_x.to(dtype),
                  s.to(dtype), frame, base_x)
    if target_r is not None:
        batch.target_x = _flat(*canon.to_canonical(frame, target_r, target_v, s)).to(dtype)
    return batch


def states_to_lab(canon: Canonicaliser, batch: Batch, x: torch.Tensor,
                  n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Network states (B, n+1, 6N) of ``batch`` -> lab-frame r (Å) and v (Å/fs), (B, n+1, N, 3).

    What the network changed relative to its (float32) copy of the interpolant is added to
    the float64 interpolant, so a network's float32 arithmetic never rounds the spline.
    """
    x = batch.base_x64 + (x.double() - batch.base_x.double())
    shape = (x.shape[0], x.shape[1], n_atoms, 3)
    # the fractional times in float64, as on the way in (batch.s is the network's float32 copy)
    s = torch.arange(shape[1], dtype=torch.float64, device=x.device) / (shape[1] - 1)
    return canon.to_lab(batch.frame, x[..., :3 * n_atoms].reshape(shape),
                        x[..., 3 * n_atoms:].reshape(shape), s)


class NeuralInterpolator:
    """A network with its canonicaliser and metadata: reconstructs windows in Å and Å/fs."""

    def __init__(self, net: InterpolatorNet, canon: Canonicaliser, metadata: dict[str, Any]):
        self.net = net.eval()
        self.canon = canon
        self.metadata = metadata
        self.name = metadata.get("name", net.kind)
        self.context = net.context
        self.stride = net.stride

    @torch.no_grad()
    def interpolate(self, windows: Windows, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """(B, n+1, N, 3) positions (Å) and velocities (Å/fs); the end frames are the inputs."""
        if windows.stride != self.stride:
            raise ValueError(f"windows have stride {windows.stride}, the model {self.stride}")
        if windows.context < self.context:
            raise ValueError(f"the model needs {self.context} context frames on each side, "
                             f"the windows have {windows.context}")
        device = next(self.net.parameters()).device
        skip = windows.context - self.context
        sl = slice(skip, windows.r.shape[1] - skip)
        n_atoms = len(windows.masses)
        out_r, out_v = [], []
        for i in range(0, len(windows), batch_size):
            r, v, a = (torch.as_tensor(x[i:i + batch_size, sl], dtype=torch.float64,
                                       device=device) for x in (windows.r, windows.v, windows.a))
            batch = prepare_batch(self.canon, r, v, a, self.stride, windows.dt_fs)
            x = self.net(batch.ctx_x, batch.ctx_a, batch.base_x, batch.s)
            pr, pv = states_to_lab(self.canon, batch, x, n_atoms)
            out_r.append(pr.cpu().numpy())
            out_v.append(pv.cpu().numpy())
        r, v = np.concatenate(out_r), np.concatenate(out_v)
        c = windows.context
        for arr, src in ((r, windows.r), (v, windows.v)):  # the given coarse frames, bit for bit
            arr[:, 0], arr[:, -1] = src[:, c - 1], src[:, c]
        return r, v
