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

This module is what the hybrid loop loads: the network, prediction, the fine-tuning during a
run and the file format. Training one (`hybridmd train` with ``model.kind: forecaster``) is
hybridmd.forecaster_training.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hybridmd import __version__
from hybridmd.errors import reading
from hybridmd.fitting import ShuffledBatches, train_epoch
from hybridmd.interpolation.frames import kabsch_rotation
from hybridmd.interpolator_file import load_torch_file, save_torch_atomic

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
        x, frame = canonical_inputs(r, v, a, self.masses, self.scales)
        y = self.net(x) * self.scales.targets
        r1, v1 = to_lab(y, frame, self.scales.reference, self.horizon_fs)
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
        x, frame = canonical_inputs(data[0], data[1], data[2], self.masses, self.scales)
        y = (canonical_targets(data[0], data[3], data[4], frame, self.horizon_fs)
             / self.scales.targets)

        def loss(index: np.ndarray | slice) -> torch.Tensor:
            return ((self.net(x[index]) - y[index]) ** 2).mean()

        with torch.no_grad():
            before = float(loss(slice(None)))
        opt = torch.optim.Adam(self.net.parameters(), lr=learning_rate)
        self.net.train()
        for _ in range(epochs):
            train_epoch(opt, ShuffledBatches(rng, len(x), batch_size), loss)
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
    """Where a batch of start states sits: what ``to_lab`` needs to undo the canonical frame."""

    com: torch.Tensor  #: (B, 1, 3)
    vcom: torch.Tensor  #: (B, 1, 3)
    rotation: torch.Tensor  #: (B, 3, 3)
    rc: torch.Tensor  #: (B, N, 3) canonical start positions in canonical order (not scaled)
    perm: torch.Tensor  #: (B, N) canonical order: place i holds atom perm[b, i]


def _gather(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    return torch.gather(x, 1, perm.unsqueeze(-1).expand_as(x))


def canonical_inputs(r: torch.Tensor, v: torch.Tensor, a: torch.Tensor, masses: torch.Tensor,
                     scales: Scales) -> tuple[torch.Tensor, _Frame]:
    """The network's scaled inputs (B, 9N) for start states (B, N, 3), and their frame."""
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


def to_lab(y: torch.Tensor, frame: _Frame, reference: torch.Tensor,
           h: float) -> tuple[torch.Tensor, torch.Tensor]:
    """End positions and velocities in the lab frame from canonical (Δr, v_end) ``y``
    (unscaled) after ``h`` fs, in the caller's atom order."""
    b, n = frame.rc.shape[:2]
    dr, v1c = y[:, :3 * n].reshape(b, n, 3), y[:, 3 * n:].reshape(b, n, 3)
    rot_t = frame.rotation.transpose(1, 2)
    r1 = (frame.rc + dr) @ rot_t + frame.com + frame.vcom * h
    v1 = v1c @ rot_t + frame.vcom
    # back to the caller's atom order: atom perm[b, i] gets place i's prediction
    index = frame.perm.unsqueeze(-1).expand_as(r1)
    return (torch.empty_like(r1).scatter_(1, index, r1),
            torch.empty_like(v1).scatter_(1, index, v1))


def canonical_targets(r0: torch.Tensor, r1: torch.Tensor, v1: torch.Tensor, frame: _Frame,
                      h: float) -> torch.Tensor:
    """Canonical (Δr, v_end) of true end states, unscaled: the inverse of ``to_lab``."""
    r1, v1 = _gather(r1, frame.perm), _gather(v1, frame.perm)
    rot = frame.rotation
    dr = (r1 - frame.com - frame.vcom * h) @ rot - frame.rc
    v1c = (v1 - frame.vcom) @ rot
    return torch.cat([dr.flatten(1), v1c.flatten(1)], dim=1)


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
