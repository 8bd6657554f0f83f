"""The ML forecaster: one long-stride prediction x(t) -> x(t + Δt) of an NVE segment.

Inside a hybrid segment the dynamics is deterministic NVE (the thermostat acts only at segment
boundaries), so the end state is a function of the start state alone: the forecaster is
Markovian, the paper's forward, uni-directional step at the coarse stride. It reads the start
positions, velocities and accelerations (F/m, known at every coarse frame) in a canonical frame
(centre of mass removed, mass-weighted Kabsch rotation onto a reference geometry, coordinates
scaled to unit spread) and predicts the displacement and the end velocities in that frame; an
MLP is enough for this one-shot map. The centre of mass moves ballistically and is handled
exactly outside the network.

A forecaster also answers a consistency check at no force-call cost: NVE is time-reversible, so
forecasting back from the predicted end state with negated velocities must return to the start
(``Forecaster.disagreement``).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hybridmd import __version__
from hybridmd.checkpoint import load_torch_file, save_torch_atomic
from hybridmd.errors import InputError, reading
from hybridmd.interpolation.frames import kabsch_rotation
from hybridmd.interpolation.windows import accelerations
from hybridmd.trajectory import SPACING_RTOL, Trajectory, require_one_system

log = logging.getLogger(__name__)

FORMAT = "hybridmd-forecaster/1"


class ForecasterNet(nn.Module):
    """MLP from the scaled canonical (r, v, a) at t to the scaled (Δr, v) at t + Δt."""

    def __init__(self, n_atoms: int, hidden: int = 512, layers: int = 3):
        super().__init__()
        self.n_atoms, self.hidden, self.layers = n_atoms, hidden, layers
        width = [9 * n_atoms] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(width[:-1], width[1:], strict=True):
            blocks += [nn.Linear(a, b), nn.SiLU()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden, 6 * n_atoms)

    def hyperparameters(self) -> dict[str, int]:
        return {"hidden": self.hidden, "layers": self.layers}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class Scales:
    """Reference geometry, interchangeable atoms, and the spreads that make inputs and targets
    unit-sized."""

    reference: torch.Tensor  #: (N, 3) centred reference geometry, Å
    inputs: torch.Tensor  #: (9N,) spread of the canonical (r - ref, v, a)
    targets: torch.Tensor  #: (6N,) spread of the canonical (Δr, v_end)
    groups: list[list[int]] = field(default_factory=list)  #: interchangeable atoms


def interchangeable_groups(numbers: np.ndarray, reference: np.ndarray) -> list[list[int]]:
    """Terminal atoms of one element bonded to the same atom (a methyl group's hydrogens).

    A rotating methyl group carries its hydrogens into each other's places: the same geometry
    with the atoms' labels permuted. The forecaster sees them in the order that best matches
    the reference geometry, so a rotated group looks like the states it was trained on.
    """
    from ase import Atoms
    from ase.neighborlist import natural_cutoffs, neighbor_list

    atoms = Atoms(numbers=numbers, positions=reference)
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
    degree = np.bincount(i, minlength=len(numbers))
    groups: list[list[int]] = []
    for centre in range(len(numbers)):
        terminal = sorted(int(b) for a, b in zip(i, j, strict=True)
                          if a == centre and degree[b] == 1)
        for z in sorted({int(numbers[t]) for t in terminal}):
            same = [t for t in terminal if numbers[t] == z]
            if len(same) > 1:
                groups.append(same)
    return groups


def _permutation(rc: torch.Tensor, reference: torch.Tensor,
                 groups: list[list[int]]) -> torch.Tensor:
    """(B, N) atom order per sample: each group's atoms matched to the reference's places.

    ``rc``: centred, rotated positions (B, N, 3). perm[b, i] is the atom that takes place i.
    """
    b, n = rc.shape[:2]
    perm = torch.arange(n).repeat(b, 1)
    for group in groups:
        options = torch.tensor(list(itertools.permutations(group)))  # (P, g)
        target = reference[group]  # (g, 3)
        cost = ((rc[:, options] - target) ** 2).sum((-1, -2))  # (B, P)
        perm[:, group] = options[cost.argmin(1)]
    return perm


class Forecaster:
    """A trained forecaster for one molecule, stride and fine time step."""

    def __init__(self, net: ForecasterNet, masses: np.ndarray, numbers: np.ndarray,
                 dt_fs: float, stride: int, scales: Scales, metadata: dict[str, Any]):
        self.net = net.eval().double()
        self.masses = torch.as_tensor(np.asarray(masses, dtype=float))
        self.numbers = np.asarray(numbers, dtype=int)
        self.dt_fs, self.stride = float(dt_fs), int(stride)
        self.scales = Scales(*(t.double() for t in (scales.reference, scales.inputs,
                                                    scales.targets)), scales.groups)
        self.metadata = metadata
        self.name = metadata.get("name", "forecaster")

    @property
    def horizon_fs(self) -> float:
        """Δt = n·Δτ, the time one forecast advances."""
        return self.stride * self.dt_fs

    @torch.no_grad()
    def predict(self, r: np.ndarray, v: np.ndarray, a: np.ndarray) -> tuple[np.ndarray,
                                                                          np.ndarray]:
        """End positions (Å) and velocities (Å/fs) of the NVE segment from each start state.

        r, v, a: (N, 3) or (B, N, 3) in Å, Å/fs, Å/fs².
        """
        single = np.ndim(r) == 2
        r, v, a = (torch.as_tensor(np.asarray(x, dtype=float)).reshape(-1, *np.shape(x)[-2:])
                   for x in (r, v, a))
        x, frame = _canonical_inputs(r, v, a, self.masses, self.scales)
        y = self.net(x) * self.scales.targets
        r1, v1 = _to_lab(y, frame, self.scales.reference, self.horizon_fs)
        r1, v1 = r1.numpy(), v1.numpy()
        return (r1[0], v1[0]) if single else (r1, v1)

    def fine_tune(self, r0: np.ndarray, v0: np.ndarray, a0: np.ndarray, r1: np.ndarray,
                  v1: np.ndarray, epochs: int, learning_rate: float, batch_size: int,
                  seed: int) -> tuple[float, float]:
        """Train on (start, end) pairs of simulated segments; (loss before, loss after).

        Adam from the current weights, the canonical frame and scales kept as trained; the
        batches are drawn from ``seed``, so a run with the same history tunes the same way.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one thread: the same sums in the same order, every time
        try:
            return self._fine_tune(r0, v0, a0, r1, v1, epochs, learning_rate, batch_size, seed)
        finally:
            torch.set_num_threads(threads)

    def _fine_tune(self, r0: np.ndarray, v0: np.ndarray, a0: np.ndarray, r1: np.ndarray,
                   v1: np.ndarray, epochs: int, learning_rate: float, batch_size: int,
                   seed: int) -> tuple[float, float]:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        data = [torch.as_tensor(np.asarray(x, dtype=float)) for x in (r0, v0, a0, r1, v1)]
        x, frame = _canonical_inputs(data[0], data[1], data[2], self.masses, self.scales)
        y = _targets(data[0], data[3], data[4], frame, self.horizon_fs) / self.scales.targets

        def loss(index: np.ndarray | slice) -> torch.Tensor:
            return ((self.net(x[index]) - y[index]) ** 2).mean()

        with torch.no_grad():
            before = float(loss(slice(None)))
        opt = torch.optim.Adam(self.net.parameters(), lr=learning_rate)
        self.net.train()
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for i in range(0, len(x), batch_size):
                value = loss(order[i:i + batch_size])
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
        self.net.eval()
        with torch.no_grad():
            after = float(loss(slice(None)))
        return before, after

    def disagreement(self, r0: np.ndarray, v0: np.ndarray, r1: np.ndarray, v1: np.ndarray,
                     a1: np.ndarray) -> float:
        """Largest atomic distance (Å) between the start and the backward forecast from the end.

        The backward forecast is the forward one on the time-reversed end state (velocities
        negated); for an exact forecaster of reversible dynamics it lands on r0.
        """
        rb, _ = self.predict(r1, -np.asarray(v1), a1)
        return float(np.linalg.norm(rb - r0, axis=-1).max())


@dataclass
class _Frame:
    com: torch.Tensor  #: (B, 1, 3)
    vcom: torch.Tensor  #: (B, 1, 3)
    rotation: torch.Tensor  #: (B, 3, 3)
    rc: torch.Tensor  #: (B, N, 3) canonical start positions in canonical order (not scaled)
    perm: torch.Tensor  #: (B, N) canonical order: place i holds atom perm[b, i]


def _gather(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    return torch.gather(x, 1, perm.unsqueeze(-1).expand_as(x))


def _canonical_inputs(r: torch.Tensor, v: torch.Tensor, a: torch.Tensor, masses: torch.Tensor,
                      scales: Scales) -> tuple[torch.Tensor, _Frame]:
    w = (masses / masses.sum()).to(r.dtype)
    com = (r * w.view(1, -1, 1)).sum(1, keepdim=True)
    vcom = (v * w.view(1, -1, 1)).sum(1, keepdim=True)
    reference = scales.reference.to(r.dtype)
    perm = torch.arange(r.shape[1]).repeat(r.shape[0], 1)
    if scales.groups:
        # orient by the atoms that are not interchangeable, match the groups, then orient all
        fixed = torch.ones_like(w)
        fixed[[i for g in scales.groups for i in g]] = 0.0
        rot0 = kabsch_rotation(r - com, reference.unsqueeze(0), w * fixed)
        perm = _permutation((r - com) @ rot0, reference, scales.groups)
        r, v, a = (_gather(x, perm) for x in (r, v, a))
    rot = kabsch_rotation(r - com, reference.unsqueeze(0), w)
    rc = (r - com) @ rot
    vc = (v - vcom) @ rot
    ac = a @ rot
    x = torch.cat([(rc - reference).flatten(1), vc.flatten(1), ac.flatten(1)], dim=1)
    return x / scales.inputs, _Frame(com, vcom, rot, rc, perm)


def _to_lab(y: torch.Tensor, frame: _Frame, reference: torch.Tensor,
            h: float) -> tuple[torch.Tensor, torch.Tensor]:
    b, n = frame.rc.shape[:2]
    dr, v1c = y[:, :3 * n].reshape(b, n, 3), y[:, 3 * n:].reshape(b, n, 3)
    rot_t = frame.rotation.transpose(1, 2)
    r1 = (frame.rc + dr) @ rot_t + frame.com + frame.vcom * h
    v1 = v1c @ rot_t + frame.vcom
    # back to the caller's atom order: atom perm[b, i] gets place i's prediction
    index = frame.perm.unsqueeze(-1).expand_as(r1)
    return (torch.empty_like(r1).scatter_(1, index, r1),
            torch.empty_like(v1).scatter_(1, index, v1))


def _targets(r0: torch.Tensor, r1: torch.Tensor, v1: torch.Tensor, frame: _Frame,
             h: float) -> torch.Tensor:
    """Canonical (Δr, v_end) of true end states, unscaled: the inverse of ``_to_lab``."""
    r1, v1 = _gather(r1, frame.perm), _gather(v1, frame.perm)
    rot = frame.rotation
    dr = (r1 - frame.com - frame.vcom * h) @ rot - frame.rc
    v1c = (v1 - frame.vcom) @ rot
    return torch.cat([dr.flatten(1), v1c.flatten(1)], dim=1)


# ----------------------------------------------------------------------------- training


@dataclass
class ForecasterTrainResult:
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
    x, frame = _canonical_inputs(r0, v0, a0, masses, probe)
    y = _targets(r0, r1, v1, frame, pairs.stride * pairs.dt_fs)
    return Scales(reference, x.std(0).clamp_min(1e-8), y.std(0).clamp_min(1e-8), groups)


def train_forecaster(trajectories: list[Trajectory], stride: int, checkpoint: Path,
                     hidden: int = 512, layers: int = 3, batch_size: int = 256,
                     learning_rate: float = 1e-3, max_minutes: float = 10.0,
                     batches_per_epoch: int = 200, validation_fraction: float = 0.1,
                     window_step: int = 1, seed: int = 0, threads: int | None = None,
                     progress: bool = True,
                     provenance: list[dict[str, Any]] | None = None,
                     start_from: str | Path | None = None) -> ForecasterTrainResult:
    """Fit a forecaster within a wall-time budget (Adam, cosine decay over the budget).

    ``start_from``: a forecaster (file or shipped name) whose network and scales the training
    starts from, for the same molecule, Δτ and stride (its own hidden/layers are kept).
    """
    torch.manual_seed(seed)
    torch.set_num_threads(threads or os.cpu_count() or 1)
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
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    h = stride * pairs.dt_fs
    budget = 60.0 * max_minutes
    start, epoch, history = time.perf_counter(), 0, []
    best, best_state = math.inf, None
    bar = tqdm(total=round(budget), unit="s", disable=not progress, desc="train forecaster")

    def batch_loss(starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r0, v0, a0, r1, v1 = pairs.gather(starts)
        x, frame = _canonical_inputs(r0, v0, a0, masses, scales)
        y = _targets(r0, r1, v1, frame, h) / scales.targets
        pred = net(x)
        return ((pred - y) ** 2).mean(), pred, frame

    while (elapsed := time.perf_counter() - start) < budget:
        net.train()
        lr = learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        for group in opt.param_groups:
            group["lr"] = lr
        train_loss = 0.0
        for _ in range(batches_per_epoch):
            loss, _, _ = batch_loss(rng.choice(pairs.train, batch_size))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            train_loss += loss.item() / batches_per_epoch
        net.eval()
        with torch.no_grad():
            starts = pairs.val[:4000]
            _, pred, frame = batch_loss(starts)
            r1_pred, _ = _to_lab(pred * scales.targets, frame, scales.reference, h)
            mae = float((r1_pred - pairs.gather(starts)[3]).abs().mean())
        epoch += 1
        history.append({"epoch": epoch, "train_loss": train_loss, "val_position_mae": mae,
                        "lr": lr, "minutes": (time.perf_counter() - start) / 60})
        if mae < best:
            best, best_state = mae, {k: v.detach().clone() for k, v in net.state_dict().items()}
        bar.n = min(round(time.perf_counter() - start), round(budget))
        bar.set_postfix(train=f"{train_loss:.3g}", mae=f"{mae:.2e}Å", lr=f"{lr:.1e}")
        bar.refresh()
    bar.close()
    net.load_state_dict(best_state)
    minutes = (time.perf_counter() - start) / 60
    meta = {"name": f"forecaster ({checkpoint.name})", "provenance": provenance or [],
            "fine_tuned_from": fine_tuned_from, "best_val_position_mae": best, "epochs": epoch,
            "minutes": minutes, "history": history}
    save_forecaster(checkpoint, net, pairs.numbers, pairs.masses, pairs.dt_fs, stride, scales,
                    meta)
    log.info("forecaster: %d epochs in %.1f min, validation position MAE %.3e Å -> %s",
             epoch, minutes, best, checkpoint)
    return ForecasterTrainResult(checkpoint, epoch, best, minutes, history)


# ----------------------------------------------------------------------------- files


def save_forecaster(path: Path, net: ForecasterNet, numbers: np.ndarray, masses: np.ndarray,
                    dt_fs: float, stride: int, scales: Scales, metadata: dict[str, Any]) -> None:
    """One file with the network and what it takes to use it safely (written atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": __version__, "n_atoms": net.n_atoms,
            "hyperparameters": net.hyperparameters(),
            # float32 weights: half the file; the forecaster runs in float64 on loading
            "state_dict": {k: v.detach().cpu().float() for k, v in net.state_dict().items()},
            "numbers": np.asarray(numbers).tolist(), "masses": np.asarray(masses).tolist(),
            "dt_fs": float(dt_fs), "stride": int(stride), "reference": scales.reference,
            "input_scales": scales.inputs, "target_scales": scales.targets,
            "groups": scales.groups,
            "metadata": metadata}
    save_torch_atomic(path, data)


def load_forecaster(path: str | Path) -> Forecaster:
    """The forecaster stored at ``path`` (or a shipped one by name)."""
    from hybridmd.data import forecaster_names, forecaster_path

    data, path = load_torch_file(path, FORMAT, "forecaster", forecaster_names(),
                                 forecaster_path)
    with reading(path, "a hybridmd forecaster"):
        net = ForecasterNet(data["n_atoms"], **data["hyperparameters"]).double()
        net.load_state_dict({k: v.double() for k, v in data["state_dict"].items()})
        scales = Scales(data["reference"], data["input_scales"], data["target_scales"],
                        data.get("groups", []))
        meta = {**data["metadata"], "checkpoint": str(path), "version": data["version"]}
    return Forecaster(net, np.array(data["masses"]), np.array(data["numbers"]), data["dt_fs"],
                      data["stride"], scales, meta)
