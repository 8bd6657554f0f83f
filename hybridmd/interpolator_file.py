"""Interpolator checkpoints: one file with the network and everything needed to use it safely.

A checkpoint holds the network kind, its hyper-parameters and weights, the molecule (species in
order, masses), the time grid (fine Δτ, stride n, context C), the canonicalisation statistics,
the training data's provenance, the package version, and, for resuming training, the optimiser
state. Loading it against data of another molecule, atom order or spacing is refused with a
message that says what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from hybridmd import __version__
from hybridmd.data import interpolator_names, interpolator_path
from hybridmd.errors import InputError, MissingFileError, reading
from hybridmd.interpolation.frames import Canonicaliser
from hybridmd.interpolation.neural import NeuralInterpolator
from hybridmd.models.base import InterpolatorNet
from hybridmd.models.registry import build_net
from hybridmd.trajectory import SPACING_RTOL, Trajectory

FORMAT = "hybridmd-interpolator/1"


class ModelMismatchError(InputError):
    """A checkpoint used with data it was not trained for."""


def save_checkpoint(path: str | Path, net: InterpolatorNet, canon: Canonicaliser,
                    numbers: np.ndarray, dt_fs: float, metadata: dict[str, Any],
                    training_state: dict[str, Any] | None = None) -> None:
    """Write a checkpoint atomically (a killed save leaves the previous file intact)."""
    path = Path(path)
    data = {
        "format": FORMAT,
        "version": __version__,
        "kind": net.kind,
        "hyperparameters": net.hyperparameters(),
        "n_atoms": net.n_atoms,
        "stride": net.stride,
        "context": net.context,
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "numbers": np.asarray(numbers).tolist(),
        "masses": canon.masses.cpu().tolist(),
        "dt_fs": float(dt_fs),
        "reference": canon.reference.cpu(),
        "scales": {k: v.cpu() for k, v in canon.scales.items()},
        "metadata": metadata,
        "training_state": training_state,
    }
    save_torch_atomic(path, data)


def save_torch_atomic(path: Path, data: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: a killed save leaves the old file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, tmp)
    tmp.replace(path)


def load_torch_file(path: str | Path, fmt: str, what: str, shipped: list[str],
                    shipped_path: Callable[[str], Path]) -> tuple[dict[str, Any], Path]:
    """A hybridmd model file of format ``fmt`` (or a shipped one by name) and its path.

    ``what`` names the kind in messages ("checkpoint", "forecaster").
    """
    path = Path(path)
    if not path.is_file() and str(path) in shipped:
        path = shipped_path(str(path))
    if not path.exists():
        raise MissingFileError(f"no {what} at {path} (shipped: {', '.join(shipped)})")
    fix = "give one written by hybridmd train, or a shipped name"
    with reading(path, f"a hybridmd {what}", fix=fix):
        data = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else None
        kind = (f"a {found} file" if isinstance(found, str) and found.startswith("hybridmd")
                else f"a {type(data).__name__} saved with torch")
        raise InputError(f"{path} is {kind}, not a hybridmd {what} ({fmt}); {fix}")
    return data, path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dictionary (checked to be a hybridmd interpolator).

    ``path`` may also name a shipped interpolator, e.g. ``ethanol-bilstm-10fs``.
    """
    data, path = load_torch_file(path, FORMAT, "interpolator checkpoint",
                                 interpolator_names(), interpolator_path)
    data["path"] = path
    return data


def load_interpolator(path: str | Path, device: str = "cpu") -> NeuralInterpolator:
    """The trained interpolator stored at ``path``."""
    data = read_checkpoint(path)
    path = data["path"]
    with reading(path, "a hybridmd interpolator checkpoint"):
        net = build_net(data["kind"], data["n_atoms"], data["stride"], data["context"],
                        **data["hyperparameters"])
        net.load_state_dict(data["state_dict"])
        canon = Canonicaliser(torch.tensor(data["masses"]), data["reference"], data["scales"])
        meta = {**data["metadata"], "numbers": data["numbers"], "dt_fs": data["dt_fs"],
                "checkpoint": str(path), "kind": data["kind"],
                "name": f"{data['kind']} ({_label(Path(path))})"}
    return NeuralInterpolator(net.to(device), canon, meta)


def _label(path: Path) -> str:
    """A checkpoint's name in tables: its file name, with its folder where the file has the
    default training output's name (every training run writes a model.pt)."""
    return f"{path.parent.name}/{path.name}" if path.name == "model.pt" else path.name


def _formula(numbers: list[int] | np.ndarray) -> str:
    return Atoms(numbers=list(numbers)).get_chemical_formula()


def check_compatible(model: NeuralInterpolator, traj: Trajectory, coarse: bool = False) -> None:
    """Refuse data with other species, atom order, masses or spacing than the model's.

    ``coarse``: ``traj`` is a coarse trajectory, whose spacing must be the model's Δt = n·Δτ;
    otherwise a fine one, whose spacing must be Δτ.
    """
    meta = model.metadata
    numbers = list(meta["numbers"])
    have = [int(z) for z in traj.numbers]
    where = f"{traj.metadata.get('source', 'the data')}"
    if have != numbers:
        if len(have) != len(numbers):
            what = f"{len(numbers)} atoms ({_formula(numbers)}), the data {len(have)} " \
                   f"({_formula(have)})"
        elif sorted(have) != sorted(numbers):
            what = f"species {_formula(numbers)}, the data {_formula(have)}"
        else:
            i = next(k for k, (a, b) in enumerate(zip(numbers, have, strict=True)) if a != b)
            what = (f"another atom order: atom {i} is Z={numbers[i]} in the model, Z={have[i]} "
                    "in the data; reorder the data's atoms")
        raise ModelMismatchError(f"{meta['checkpoint']} does not fit {where}: the model has {what}")
    masses = model.canon.masses.cpu().numpy()
    if not np.allclose(masses, traj.masses, rtol=1e-6):
        raise ModelMismatchError(
            f"{meta['checkpoint']} was trained with masses {masses.round(4).tolist()}, the data "
            f"in {where} has {np.round(traj.masses, 4).tolist()} (isotopes?)")
    expected = meta["dt_fs"] * (model.stride if coarse else 1)
    if not np.isclose(traj.dt_fs, expected, rtol=SPACING_RTOL):
        kind = "coarse spacing Δt = n·Δτ" if coarse else "fine time step Δτ"
        raise ModelMismatchError(
            f"{meta['checkpoint']} needs a {kind} of {expected:g} fs (Δτ = {meta['dt_fs']:g} fs, "
            f"n = {model.stride}); the frames in {where} are {traj.dt_fs:g} fs apart")
