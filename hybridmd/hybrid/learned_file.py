"""The learned force field a run leaves in its folder (``forecaster.pt``), for the next run.

One file holds what the learning run knew at its end: the force-field version in use (its
main model and committee), every frame the expensive calculator labeled (so the next run goes
on learning from them), the molecule (species in order, masses), the run's Δτ and stride, the
fit settings, and where it all came from (the calculator, the run folder, frames by source).
Next to it the run writes the main model as an ordinary sGDML model file
(``force-field.npz``) and the labeled frames as an sGDML data set (``frames.npz``: R, z, E, F
in kcal/mol and Å), for the ``sgdml`` tools and ``calculator: {type: sgdml}``.
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from hybridmd import __version__
from hybridmd.hybrid.dataset import CHECKS, SOURCES, ExpensiveFrames
from hybridmd.hybrid.force_field import LearnedModel, export_sgdml_model
from hybridmd.hybrid.mace_force_field import MaceModel
from hybridmd.units import KCAL_MOL

FORMAT = "hybridmd-learned-forecaster/1"
FILE_NAME = "forecaster.pt"
MODEL_NAME = "force-field.npz"
FRAMES_NAME = "frames.npz"


def read_learned(path: Path) -> tuple[LearnedModel, ExpensiveFrames, dict[str, Any]] | None:
    """An earlier learning run's file: its version, its labeled frames (counted as from an
    earlier run, its checks as an earlier run's checks) and its other contents; None when
    ``path`` is not such a file (a forecaster network, a shipped name). Read once."""
    if not zipfile.is_zipfile(path):
        return None
    data = _load(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return _contents(data)


def _load(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def save_learned(directory: Path, model: LearnedModel | MaceModel, dataset: ExpensiveFrames,
                 numbers: np.ndarray, masses: np.ndarray, dt_fs: float, stride: int,
                 settings: Any, provenance: dict[str, Any]) -> Path:
    """Write ``forecaster.pt`` and ``frames.npz`` into ``directory``, and for an sGDML model
    ``force-field.npz``."""
    from hybridmd.interpolator_file import save_torch_atomic

    r, f, e = dataset.arrays()
    sources = {s: dataset.count(s) for s in SOURCES}
    data = {
        "format": FORMAT, "version": __version__,
        "numbers": np.asarray(numbers).tolist(), "masses": np.asarray(masses).tolist(),
        "dt_fs": float(dt_fs), "stride": int(stride),
        "kind": "mace" if isinstance(model, MaceModel) else "sgdml",
        "model": {k: v for k, v in model.__dict__.items() if k not in ("_fields", "_modules")},
        "frames": {"positions": r, "forces": f, "energies": e,
                   "sources": dataset.arrays_sources()},
        "settings": asdict(settings),
        "provenance": {**provenance, "frames_by_source": sources},
    }
    path = directory / FILE_NAME
    save_torch_atomic(path, data)
    if isinstance(model, LearnedModel):
        export_sgdml_model(model.models[0], directory / MODEL_NAME)
    tmp = directory / (FRAMES_NAME + ".tmp.npz")
    np.savez_compressed(tmp, R=r, z=np.asarray(numbers), E=e / KCAL_MOL, F=f / KCAL_MOL,
                        type="d", name="hybridmd run frames", theory=str(
                            provenance.get("calculator", {}).get("type", "unknown")),
                        r_unit="Ang", e_unit="kcal/mol")
    tmp.replace(directory / FRAMES_NAME)
    return path


def load_learned(path: Path) -> tuple[LearnedModel, ExpensiveFrames, dict[str, Any]]:
    """The version, the labeled frames (counted as from an earlier run, its checks apart) and
    the file's other contents (numbers, masses, dt_fs, stride, settings, provenance)."""
    data = _load(path)
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a learned force field ({FORMAT})")
    return _contents(data)


def _contents(data: dict[str, Any]) -> tuple[Any, ExpensiveFrames, dict[str, Any]]:
    kind = MaceModel if data.get("kind") == "mace" else LearnedModel
    model = kind(**data["model"])
    frames = data["frames"]
    dataset = ExpensiveFrames(len(data["numbers"]))
    r, f, e = frames["positions"], frames["forces"], frames["energies"]
    checks = np.isin(frames["sources"], CHECKS)
    # in order, in runs of one kind: the checks as an earlier run's checks, the rest dynamics
    edges = [0, *(np.flatnonzero(np.diff(checks.astype(np.int8))) + 1), len(checks)]
    for a, b in pairwise(edges):
        if b > a:
            dataset.add(r[a:b], f[a:b], e[a:b], "earlier check" if checks[a] else "earlier run")
    return model, dataset, data
