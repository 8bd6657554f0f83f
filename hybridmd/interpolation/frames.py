"""Canonical window frames: what a network sees, and the way back to the lab frame.

Each window is moved onto the molecule's centre-of-mass path (linear between the two ends, exact
for a free molecule), rotated so that its mid-interval geometry best matches a reference geometry
(mass-weighted Kabsch fit), and scaled coordinate by coordinate with statistics fixed at training
time. Torch, float64: the same code serves training batches and inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def kabsch_rotation(mobile: torch.Tensor, target: torch.Tensor,
                    weights: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) proper rotations R minimising Σ w |mobile R - target|² (centred inputs)."""
    # weights first, then one batched product: the same sums in the same order whether or not
    # torch would plan a three-operand einsum with opt_einsum (installed with mace-torch)
    h = (mobile * weights[:, None]).transpose(1, 2) @ target.expand_as(mobile)
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(u @ vt))
    fix = torch.ones_like(u[:, 0])
    fix[:, 2] = d
    return (u * fix.unsqueeze(1)) @ vt


@dataclass
class WindowFrame:
    """Per-window transform: positions x -> ((x - com(s)) R - ref) / scale."""

    com0: torch.Tensor  #: (B, 1, 3) centre of mass at t
    com_step: torch.Tensor  #: (B, 1, 3) centre-of-mass displacement over Δt
    rotation: torch.Tensor  #: (B, 3, 3)
    h: float  #: Δt in fs


class Canonicaliser:
    """Centres, rotates and scales windows of one molecule; undoes it for predictions."""

    def __init__(self, masses: torch.Tensor, reference: torch.Tensor,
                 scales: dict[str, torch.Tensor]):
        self.masses = masses.double()
        self.weights = self.masses / self.masses.sum()
        self.reference = reference.double()  # (N, 3) centred reference geometry
        self.scales = {k: v.double() for k, v in scales.items()}  # r, v, a: (N, 3) each

    def frame(self, r0: torch.Tensor, r1: torch.Tensor, h: float) -> WindowFrame:
        """The transform of windows whose end positions are r0 and r1 (each (B, N, 3))."""
        w = self.weights.view(1, -1, 1)
        com0 = (r0 * w).sum(1, keepdim=True)
        com1 = (r1 * w).sum(1, keepdim=True)
        mid = 0.5 * ((r0 - com0) + (r1 - com1))
        rot = kabsch_rotation(mid, self.reference.unsqueeze(0), self.weights)
        return WindowFrame(com0, com1 - com0, rot, h)

    def to_canonical(self, f: WindowFrame, r: torch.Tensor, v: torch.Tensor, s: torch.Tensor,
                     a: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Scaled canonical r, v (and a) of frames at fractional times ``s`` ((T,)) of each window.

        r, v, a: (B, T, N, 3) in Å, Å/fs, Å/fs².
        """
        com = f.com0.unsqueeze(1) + s.view(1, -1, 1, 1) * f.com_step.unsqueeze(1)
        vcom = (f.com_step / f.h).unsqueeze(1)
        rot = f.rotation.unsqueeze(1)
        rc = ((r - com) @ rot - self.reference) / self.scales["r"]
        vc = ((v - vcom) @ rot) / self.scales["v"]
        if a is None:
            return rc, vc
        return rc, vc, (a @ rot) / self.scales["a"]

    def to_lab(self, f: WindowFrame, rc: torch.Tensor, vc: torch.Tensor,
               s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Undo ``to_canonical`` for positions and velocities."""
        com = f.com0.unsqueeze(1) + s.view(1, -1, 1, 1) * f.com_step.unsqueeze(1)
        vcom = (f.com_step / f.h).unsqueeze(1)
        rot_t = f.rotation.transpose(1, 2).unsqueeze(1)
        r = (rc * self.scales["r"] + self.reference) @ rot_t + com
        v = (vc * self.scales["v"]) @ rot_t + vcom
        return r, v
