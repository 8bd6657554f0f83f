"""Windows of a trajectory at a coarse stride: the model inputs and the fine frames to match.

A window k spans coarse times t = k·Δt to t + Δt (Δt = n·Δτ). Its context holds the 2C coarse
frames t - (C-1)Δt, ..., t, t + Δt, ..., t + CΔt, each with r, v and a; the targets hold the
n + 1 fine frames from t to t + Δt inclusive. Arrays stay in float64 and in the lab frame here;
models centre, rotate and scale them as they need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybridmd.errors import InputError
from hybridmd.trajectory import Trajectory
from hybridmd.units import FS


@dataclass
class Windows:
    """A batch of B windows of one molecule (units: Å, Å/fs, Å/fs²)."""

    r: np.ndarray  #: (B, 2C, N, 3) coarse context positions
    v: np.ndarray  #: (B, 2C, N, 3) coarse context velocities
    a: np.ndarray  #: (B, 2C, N, 3) coarse context accelerations
    stride: int  #: n, fine steps per coarse step
    dt_fs: float  #: Δτ, the fine time step
    masses: np.ndarray  #: (N,) amu
    numbers: np.ndarray  #: (N,)
    target_r: np.ndarray | None = None  #: (B, n+1, N, 3) fine positions t .. t+Δt
    target_v: np.ndarray | None = None  #: (B, n+1, N, 3) fine velocities t .. t+Δt
    start: np.ndarray | None = None  #: (B,) fine index of each window's first frame

    @property
    def context(self) -> int:
        """C: coarse frames on each side of the interval."""
        return self.r.shape[1] // 2

    @property
    def endpoints(self) -> tuple[np.ndarray, ...]:
        """(r0, v0, a0, r1, v1, a1) at t and t + Δt, each (B, N, 3)."""
        c = self.context
        return (self.r[:, c - 1], self.v[:, c - 1], self.a[:, c - 1],
                self.r[:, c], self.v[:, c], self.a[:, c])

    def __len__(self) -> int:
        return self.r.shape[0]

    def subset(self, index: np.ndarray | slice) -> Windows:
        """The windows at ``index``."""
        def pick(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[index]

        return Windows(self.r[index], self.v[index], self.a[index], self.stride, self.dt_fs,
                       self.masses, self.numbers, pick(self.target_r), pick(self.target_v),
                       pick(self.start))


def accelerations(traj: Trajectory) -> np.ndarray:
    """(T, N, 3) accelerations in Å/fs²: F/m where forces are known, else d v/dt numerically."""
    if traj.forces is not None:
        # eV/Å / amu is Å/(ASE time)²; one fs is FS ASE time units
        return traj.forces / traj.masses[None, :, None] * FS**2
    return np.gradient(traj.velocities, traj.dt_fs, axis=0, edge_order=2)


def coarse_windows(coarse: Trajectory, stride: int, context: int) -> Windows:
    """Windows of every interval of a coarse trajectory that has ``context`` frames each side.

    The coarse frames are Δt = ``stride``·Δτ apart; window k interpolates between coarse
    frames k + C - 1 and k + C.
    """
    n_frames = len(coarse)
    if n_frames < 2 * context:
        raise ValueError(f"{n_frames} coarse frames are too few for a context of {context} "
                         f"frames on each side (need {2 * context})")
    ctx = np.arange(n_frames - 2 * context + 1)[:, None] + np.arange(2 * context)[None, :]
    r, v, a = coarse.positions, coarse.velocities, accelerations(coarse)
    return Windows(r[ctx], v[ctx], a[ctx], stride, coarse.dt_fs / stride, coarse.masses,
                   coarse.numbers, start=ctx[:, context - 1] * stride)


def make_windows(traj: Trajectory, stride: int, context: int = 1, step: int | None = None,
                 with_targets: bool = True) -> Windows:
    """All windows of ``traj`` at coarse stride ``stride`` whose context fits in the trajectory.

    ``step`` is the fine-frame distance between consecutive window starts; the default,
    ``stride``, gives the non-overlapping windows of one coarse trajectory.
    """
    if stride < 2:
        raise ValueError(f"stride must be at least 2 (got {stride}): nothing to interpolate")
    if context < 1:
        raise ValueError(f"context must be at least 1 (got {context})")
    step = stride if step is None else step
    n_frames = len(traj)
    first = (context - 1) * stride
    last = n_frames - 1 - context * stride
    if last < first:
        raise InputError(
            f"{traj.metadata.get('source', 'a trajectory')}: {n_frames} frames are too short "
            f"for windows of stride {stride} "
            f"with {context} coarse frame(s) of context on each side: it needs "
            f"{(2 * context - 1) * stride + 1} frames")
    starts = np.arange(first, last + 1, step)
    offsets = np.arange(-(context - 1), context + 1) * stride  # the 2C context frames
    ctx = starts[:, None] + offsets[None, :]
    r, v, a = traj.positions, traj.velocities, accelerations(traj)
    windows = Windows(r[ctx], v[ctx], a[ctx], stride, traj.dt_fs, traj.masses, traj.numbers,
                      start=starts)
    if with_targets:
        fine = starts[:, None] + np.arange(stride + 1)[None, :]
        windows.target_r, windows.target_v = r[fine], v[fine]
    return windows


def concat_windows(parts: list[Windows]) -> Windows:
    """The windows of several trajectories of one molecule at one spacing, as one batch."""
    first = parts[0]
    for w in parts[1:]:
        if (w.stride, w.dt_fs, list(w.numbers)) != (first.stride, first.dt_fs,
                                                    list(first.numbers)):
            raise ValueError("windows to join differ in stride, time step or atoms")

    def join(name: str) -> np.ndarray | None:
        arrays = [getattr(w, name) for w in parts]
        return None if any(a is None for a in arrays) else np.concatenate(arrays)

    return Windows(join("r"), join("v"), join("a"), first.stride, first.dt_fs, first.masses,
                   first.numbers, join("target_r"), join("target_v"), join("start"))
