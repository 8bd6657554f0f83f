"""Which run a folder's files belong to: a run id in each state file, a digest of each model.

A fresh run draws a run id and records it in ``run.json`` with the sha256 of every file its
input names (structure, momenta, sGDML model, forecaster, interpolator, start model); each
state file it writes (``checkpoint.json``, ``resume-state.pkl``) carries the same id. On
``--resume`` each of them must match: a state file of another run, or a model file changed or
swapped under the same name since the run started, would continue another trajectory than the
one on disk, so it is refused with one line that names the file. A folder written before run
ids (no id in ``run.json``) resumes as before.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from hybridmd.errors import RunInputError

#: the key of the run id in run.json and in each state file
RUN_ID = "run_id"
#: the key of the model files' digests in run.json
FILES = "files"
#: the fix for a folder whose files are another run's
_FIX = "put back this run's own file, or start again with --overwrite"
#: interpolator and forecaster names that are no file
_NOT_FILES = ("linear", "cubic", "quintic", "learn")


def new_run_id() -> str:
    """A fresh run's id."""
    return uuid.uuid4().hex


def sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _named(spec: Any, names: list[str], path_of: Any) -> Path | None:
    """The file a model spec names: a path, or a shipped model's file by name."""
    if spec is None or str(spec) in _NOT_FILES:
        return None
    if Path(spec).is_file():
        return Path(spec)
    return path_of(str(spec)) if str(spec) in names else None


def input_files(cfg: Any) -> dict[str, Path]:
    """The files a ``simulate`` or ``run`` input names, by key (those that exist)."""
    from hybridmd.data import (
        forecaster_names,
        forecaster_path,
        interpolator_names,
        interpolator_path,
        model_names,
        model_path,
    )

    found: dict[str, Path | None] = {"system.file": cfg.system.file}
    momenta = cfg.dynamics.initial_momenta
    if not isinstance(momenta, str):
        found["dynamics.initial_momenta.file"] = momenta.file
    if cfg.calculator.type == "sgdml":
        found["calculator.model"] = _named(cfg.calculator.model, model_names(), model_path)
    for k, path in enumerate(getattr(cfg.calculator, "files", [])):
        found[f"calculator.files[{k}]"] = path
    hybrid = getattr(cfg, "hybrid", None)
    if hybrid is not None:
        found["hybrid.forecaster"] = _named(hybrid.forecaster, forecaster_names(),
                                            forecaster_path)
        found["hybrid.interpolator"] = _named(hybrid.interpolator, interpolator_names(),
                                              interpolator_path)
        found["hybrid.learn.start_from"] = hybrid.learn.start_from
    stream = getattr(cfg, "interpolation", None)
    if stream is not None:
        found["interpolation.interpolator"] = _named(stream.interpolator, interpolator_names(),
                                                     interpolator_path)
    return {key: Path(path) for key, path in found.items()
            if path is not None and Path(path).is_file()}


def record(cfg: Any) -> dict[str, Any]:
    """What run.json keeps of a fresh run's identity: its new id and its files' digests."""
    return {RUN_ID: new_run_id(),
            FILES: {key: {"path": str(path.resolve()), "sha256": sha256(path)}
                    for key, path in input_files(cfg).items()}}


def check_files(meta: dict[str, Any], cfg: Any, out: Path) -> None:
    """On --resume: every file the input names is the one the run started with."""
    recorded = meta.get(FILES)
    if not isinstance(recorded, dict):
        return
    now = input_files(cfg)
    for key, was in recorded.items():
        path = now.get(key)
        if path is None:
            raise RunInputError(f"{key}: {was.get('path')} is gone since the run in {out} "
                                f"started; {_FIX}")
        digest = sha256(path)
        if digest != was.get("sha256"):
            raise RunInputError(
                f"{key}: {path} is not the file the run in {out} started with (sha256 "
                f"{str(was.get('sha256'))[:12]}… then, {digest[:12]}… now): a resumed run must "
                "read the very files it started with; put the original back, or start again "
                "with --overwrite")


def check_run_id(path: Path, found: Any, meta: dict[str, Any], out: Path) -> None:
    """A state file of this run: its run id is that of the run recorded in ``run.json``."""
    expected = meta.get(RUN_ID)
    if expected is None or found == expected:
        return
    what = (f"belongs to another run (run id {str(found)[:12]}…)" if found is not None
            else "carries no run id")
    raise RunInputError(f"{path} {what}, not to the run in {out} (run id {expected[:12]}…, "
                        f"in {out / 'run.json'}): {_FIX}")
