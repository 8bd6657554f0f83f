"""Start-up checks: every file a command reads and every path it writes, before any work.

Each check raises ``InputError`` (exit code 2 on the command line) with the key or flag, the
file, what is wrong and the fix, so that a bad input never costs a calculator set-up, a
training run or a scoring pass. The commands call the checks that fit them (``hybridmd.cli``);
``Simulation`` calls the run-folder check itself.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridmd.errors import InputError, MissingFileError, RunInputError, reading, unusable_file
from hybridmd.periodic import Cell

if TYPE_CHECKING:
    from ase import Atoms

    from hybridmd.config import RunConfig, SimulationConfig, TrainConfig

#: input keys that may change between a run and its resumption (to extend a run)
RESUMABLE_CHANGES = {("dynamics", "steps"), ("dynamics", "duration_fs")}
#: settings a training may change on --resume (to train longer), and the data (compared by
#: content, wherever its files now are)
RESUMABLE_TRAINING = {("training", "max_epochs"), ("training", "max_minutes"),
                      ("training", "early_stopping_patience"), ("training", "threads"),
                      ("training", "device"), ("data", "trajectories"),
                      ("output", "checkpoint")}
#: the fix for a run folder whose files are damaged
_FRESH_FIX = "start again with --overwrite"


# ----------------------------------------------------------------------------- paths


def check_output_folder(path: Path, key: str) -> None:
    """``path`` is, or can be made as, a writable folder: no file on the way, write access."""
    path = Path(path)
    for ancestor in (path, *path.parents):
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            what = "is" if ancestor == path else f"cannot hold a folder: {ancestor} is"
            raise InputError(f"{key}: {path} {what} a file, not a folder; choose another "
                             f"{key} (or move the file away)")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise InputError(f"{key}: {ancestor} is not writable, so {path} cannot be made "
                             f"there; choose another {key}")
        return


def check_output_file(path: Path, key: str, existing_folder: bool = False,
                      suffixes: tuple[str, ...] = ()) -> None:
    """A file to write: not a folder, in a folder that exists (``existing_folder``) or can be
    made, with one of ``suffixes`` (when given)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{key}: {path} is a folder; give a file path, e.g. "
                         f"{path / ('out' + (suffixes[0] if suffixes else ''))}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{key}: {path} has the extension {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join(suffixes)}")
    folder = path.parent
    if existing_folder and not folder.is_dir():
        if folder.exists():
            raise InputError(f"{key}: {folder} is a file, not a folder; choose another path")
        raise InputError(f"{key}: the folder {folder} does not exist; create it first "
                         "(mkdir -p) or choose another path")
    check_output_folder(folder, key)


def check_input_file(path: Path, key: str) -> Path:
    """A file a flag names: it exists and is a file."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{key}: {path}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{key}: {path} is a folder; give a file")
    problem = unusable_file(path)
    if problem:
        raise InputError(f"{key}: {problem}")
    return path


def check_not_an_input(path: Path, key: str, inputs: list[tuple[str, Path | str]]) -> None:
    """The file ``key`` writes is none of the files the command reads (``inputs``: each by
    what it is): writing it would destroy the input, with nothing left to read again."""
    path = Path(path)
    for what, source in inputs:
        source = Path(source)
        if not path.exists() or not source.exists():
            same = path.resolve() == source.resolve()
        else:
            same = os.path.samefile(path, source)
        if same:
            raise InputError(f"{key}: {path} is {what} this command reads; writing it would "
                             f"destroy that input: choose another {key}")


# ----------------------------------------------------------------------------- run folders


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: tuple = ()) -> list[tuple]:
    """Key paths whose values differ between two nested dictionaries."""
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, prefix + (key,))
        elif a != b:
            keys.append(prefix + (key,))
    return keys


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON file of a run folder; ``InputError`` when it is missing or unreadable."""
    with reading(path, what, fix=_FRESH_FIX):
        data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise InputError(f"{path} is not {what} (no JSON object); {_FRESH_FIX}")
    return data


def _check_trajectory_file(path: Path) -> None:
    """A run's ASE trajectory opens, and its last frame reads."""
    if path.suffix != ".traj" or not path.exists():
        return
    from ase.io.trajectory import Trajectory

    with reading(path, "a trajectory of this run", fix=_FRESH_FIX), Trajectory(str(path)) as traj:
        if len(traj):
            traj[len(traj) - 1]


def input_files(cfg: SimulationConfig | RunConfig) -> list[tuple[str, Path]]:
    """The files a `simulate` or `run` input reads, each with what it is (for messages)."""
    found = [("the system.file", cfg.system.file)]
    momenta = cfg.dynamics.initial_momenta
    if not isinstance(momenta, str):
        found.append(("the dynamics.initial_momenta.file", momenta.file))
    hybrid = getattr(cfg, "hybrid", None)
    stream = getattr(cfg, "interpolation", None)
    for key, spec in (("calculator.model", getattr(cfg.calculator, "model", None)),
                      ("hybrid.forecaster", hybrid and hybrid.forecaster),
                      ("hybrid.interpolator", hybrid and hybrid.interpolator),
                      ("hybrid.learn.start_from", hybrid and hybrid.learn.start_from),
                      ("interpolation.interpolator", stream and stream.interpolator)):
        if spec and Path(spec).is_file():
            found.append((f"the {key} file", Path(spec)))
    return [(what, Path(path)) for what, path in found if path is not None]


def check_run_folder(out: Path, outputs: list[Path], checkpoint: Path, resume: bool,
                     overwrite: bool, key: str = "output.directory",
                     inputs: list[tuple[str, Path]] | None = None) -> None:
    """The output folder fits the flags: a fresh folder, --overwrite, or a run to --resume;
    none of the run's files is one of its ``inputs`` (each with what it is).

    On --resume the checkpoint, the run's metadata and its trajectories are read, so a
    damaged folder is reported now. Raises ``RunInputError`` (an ``InputError``).
    """
    check_output_folder(out, key)
    for path in outputs:
        check_not_an_input(path, key, inputs or [])
    if resume and overwrite:
        raise RunInputError("--resume and --overwrite contradict each other: --resume "
                             "continues the run in the folder, --overwrite replaces it")
    if resume:
        if not checkpoint.exists():
            started = any(p.exists() for p in outputs)  # stopped before its first checkpoint
            raise RunInputError(f"nothing to resume in {out}: no {checkpoint.name}; "
                                + ("start again with --overwrite" if started
                                   else "run without --resume"))
        for path in outputs:
            if path.suffix == ".json" and path.exists():
                read_json(path, "a checkpoint of this run" if path == checkpoint
                          else "this run's record")
            _check_trajectory_file(path)
        return
    existing = [p for p in outputs if p.exists()]
    if existing and not overwrite:
        raise RunInputError(
            f"{out} already holds a run ({', '.join(p.name for p in existing)}); continue it "
            "with --resume, or start again with --overwrite")


def check_unchanged_input(metadata: Path, now: dict[str, Any], out: Path) -> None:
    """On --resume: only the run's length may differ from the input the run started with."""
    meta = read_json(metadata, "this run's record")
    if not isinstance(meta.get("input"), dict):
        raise RunInputError(f"{metadata} holds no input record; {_FRESH_FIX}")
    before = dict(meta["input"])
    if "engine" in now:  # runs from before engines
        before.setdefault("engine", {"type": "ase"})
    calc_before, calc_now = before.get("calculator"), now.get("calculator")
    if (isinstance(calc_before, dict) and isinstance(calc_now, dict)
            and calc_before.get("type") == calc_now.get("type") == "dft"
            and "ke_cutoff" not in calc_before):  # molecular runs from before periodic dft
        calc_before = {**calc_before, "pseudo": calc_now.get("pseudo"),
                       "ke_cutoff": calc_now.get("ke_cutoff")}
        if calc_before.get("basis") == "def2-SVP" and calc_now.get("basis") is None:
            calc_before["basis"] = None  # the default then, and a molecule's default now
        before["calculator"] = calc_before
    changed = [k for k in changed_keys(before, now) if k not in RESUMABLE_CHANGES]
    if changed:
        names = ", ".join(".".join(k) for k in changed)
        raise RunInputError(
            f"the input changed since the run in {out} started ({names}); only "
            "dynamics.steps/duration_fs may change on --resume (to extend a run)")


def check_resume_state(path: Path) -> dict[str, Any]:
    """The pickled stream tail of a hybrid run unpickles; what it holds."""
    with reading(path, "the saved state of this run", fix=_FRESH_FIX), open(path, "rb") as fh:
        saved = pickle.load(fh)
    if not isinstance(saved, dict) or "tail" not in saved:
        raise InputError(f"{path} is not the saved state of a hybrid run; {_FRESH_FIX}")
    return saved


# ----------------------------------------------------------------------------- structure, models


def check_start(cfg: SimulationConfig | RunConfig) -> Atoms:
    """The start structure and momenta of an input, read and checked (no calculator yet)."""
    from hybridmd.structures import build_structure, check_start_geometry, load_momenta

    atoms = build_structure(cfg.system)
    check_start_geometry(atoms, cfg.safety, cfg.system.file or cfg.system.molecule)
    if cfg.dynamics.initial_momenta != "maxwell-boltzmann":
        load_momenta(cfg.dynamics.initial_momenta, atoms)
    return atoms


def check_interpolator(spec: str, atoms: Atoms, stride: int, dt_fs: float, key: str) -> int:
    """An interpolator (name, checkpoint or spline) that fits the molecule and the time grid;
    the frames of context it reads on each side. A network (one molecule, rotated into its
    own frame) is refused for a periodic system."""
    from hybridmd.streaming.interpolators import CLASSICAL, make_interpolator
    from hybridmd.streaming.reconstructor import IncrementalReconstructor

    if any(atoms.pbc) and spec not in CLASSICAL:
        raise InputError(f"{key}: {spec} is a network for one molecule in vacuum, and the "
                         f"system is {Cell.of(atoms).describe()}; use quintic (or cubic, "
                         "linear), which interpolate each atom on its unwrapped path")
    with reading(spec, "a hybridmd interpolator checkpoint", key=key):
        model = make_interpolator(spec)
    try:
        return IncrementalReconstructor(model, atoms.numbers, atoms.get_masses(), stride,
                                        dt_fs).context
    except ValueError as exc:
        raise InputError(f"{key}: {exc}") from exc


# ----------------------------------------------------------------------------- commands


def preflight_simulate(cfg: SimulationConfig) -> Atoms:
    """`simulate`: structure, momenta, the streaming interpolator; the folder is checked by
    ``Simulation`` (per replica)."""
    atoms = check_start(cfg)
    if cfg.interpolation is not None:
        check_interpolator(cfg.interpolation.interpolator, atoms, cfg.output.stride,
                           cfg.dynamics.timestep_fs, "interpolation.interpolator")
    return atoms


def preflight_train(cfg: TrainConfig, resume: bool, overwrite: bool,
                    start_from: str | None = None) -> None:
    """`train`: where the checkpoint goes (refused before training, not after; never over a
    training trajectory or the ``--from`` checkpoint) and, on --resume, the checkpoint to
    continue."""
    path = cfg.output.checkpoint
    key = "output.checkpoint"
    check_output_file(path, key)
    inputs = [("a training trajectory (data.trajectories)", src.path)
              for src in cfg.data.trajectories]
    if start_from and Path(start_from).is_file():
        inputs.append(("the --from checkpoint", Path(start_from)))
    check_not_an_input(path, key, inputs)
    if resume and overwrite:
        raise InputError("--resume and --overwrite contradict each other: --resume continues "
                         f"the training in {path}, --overwrite starts it again")
    if resume:
        if cfg.model.kind == "forecaster":
            raise InputError("--resume is for interpolator training; a forecaster trains "
                             "within its time budget in one go (start again with --overwrite)")
        if not path.exists():
            raise InputError(f"{key}: nothing to resume: {path} does not exist; train without "
                             "--resume")
        from hybridmd.interpolator_file import read_checkpoint

        with reading(path, "a hybridmd interpolator checkpoint", key=key):
            data = read_checkpoint(path)
        if data.get("training_state") is None:
            raise InputError(f"{key}: {path} holds no training state to resume (a shipped or "
                             "final model); train without --resume")
        check_same_training(data.get("metadata") or {}, cfg, path)
    elif path.exists() and not overwrite:
        raise InputError(f"{key}: {path} already exists; replace it with --overwrite, "
                         "continue its training with --resume, or choose another "
                         "output.checkpoint")


def check_same_training(meta: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    """`train --resume`: the checkpoint's training had these settings and this data (the
    files' contents, in order); only its length may change."""
    from hybridmd.fingerprint import sha256

    fix = ("--resume goes on with the training's own data and settings; restore them, or "
           "start again with --overwrite")
    before = meta.get("config")
    if isinstance(before, dict):
        changed = [k for k in changed_keys(before, cfg.model_dump(mode="json"))
                   if k[:2] not in RESUMABLE_TRAINING]
        if changed:
            raise InputError(f"the input changed since the training in {path} started "
                             f"({', '.join('.'.join(map(str, k)) for k in changed)}); {fix}")
    files = meta.get("data_files")
    if not isinstance(files, list):
        return
    sources = [src.path for src in cfg.data.trajectories]
    if len(sources) != len(files):
        raise InputError(f"data.trajectories: {len(sources)} files; the training in {path} "
                         f"started with {len(files)} ({', '.join(f['path'] for f in files)}); "
                         f"{fix}")
    for source, was in zip(sources, files, strict=True):
        if sha256(source) != was.get("sha256"):
            raise InputError(f"data.trajectories: {source} is not the data the training in "
                             f"{path} started with ({was.get('path')}, sha256 "
                             f"{str(was.get('sha256'))[:12]}…); {fix}")
