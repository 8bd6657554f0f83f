"""What a hybrid run leaves on disk, and the pieces of its checkpoint.

A run folder holds ``fine.traj`` (every Δτ, from the interpolator worker; energy and forces on
the frames that were computed, not the interpolated ones), ``coarse.traj``
(segment ends with energy, forces, origin and status), ``timeline.tsv`` (one line per decision),
``summary.json``, ``run.json`` (the input and versions), ``checkpoint.json`` (the last quiet
state) and ``resume-state.pkl`` (the frames the interpolator needs to go on, fine-tuning data
and weights, the labeled frames and the learned force field); a learning run also leaves
``forecaster.pt``, ``force-field.npz`` and ``frames.npz`` (``hybridmd.hybrid.learned_file``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

from hybridmd.errors import RunInputError, reading
from hybridmd.fingerprint import RUN_ID, check_files, check_run_id, record
from hybridmd.hybrid.learned_file import FILE_NAME, FRAMES_NAME, MODEL_NAME
from hybridmd.output import run_metadata, truncate_frames, write_json_atomic
from hybridmd.periodic import Cell
from hybridmd.preflight import (
    check_resume_state,
    check_run_folder,
    check_unchanged_input,
    input_files,
    read_json,
)
from hybridmd.streaming.frames import CoarseFrame, energy_source

if TYPE_CHECKING:
    from hybridmd.config import RunConfig

COARSE_NAME = "coarse.traj"
FINE_NAME = "fine.traj"
TIMELINE_NAME = "timeline.tsv"
SUMMARY_NAME = "summary.json"
CHECKPOINT_NAME = "checkpoint.json"
TAIL_NAME = "resume-state.pkl"  #: stream tail, fine-tuning data and weights
#: the saved state before the last, kept until the checkpoint that pairs with the new one is
#: written (a run killed between the two writes resumes from this one and the old checkpoint)
PREVIOUS_TAIL_NAME = "resume-state.previous.pkl"
#: the count of checkpoints written, in both files of each: what pairs them
GENERATION = "generation"
METADATA_NAME = "run.json"

TIMELINE_COLUMNS = ("segment", "time_fs", "mode", "event", "reason", "shadow_error_A",
                    "monitor_error_A", "check_error_eV_A", "uncertainty_A", "energy_jump_eV",
                    "version", "force_calls", "monitor_calls")
#: columns a timeline written before them may lack (read as empty)
LATER_COLUMNS = ("check_error_eV_A",)


class RunFolder:
    """The files of one hybrid run, and the rules for starting, overwriting and resuming."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        d = self.directory
        self.paths = {"coarse": d / COARSE_NAME, "fine": d / FINE_NAME,
                      "timeline": d / TIMELINE_NAME, "summary": d / SUMMARY_NAME,
                      "checkpoint": d / CHECKPOINT_NAME, "tail": d / TAIL_NAME,
                      "previous_tail": d / PREVIOUS_TAIL_NAME, "metadata": d / METADATA_NAME,
                      "forecaster": d / FILE_NAME, "force_field": d / MODEL_NAME,
                      "frames": d / FRAMES_NAME}
        self.run_id: str | None = None  #: the run's id, once checked or prepared

    def check(self, cfg: RunConfig, resume: bool, overwrite: bool,
              recorded: RunConfig | None = None) -> None:
        """The folder fits the flags (a fresh one, --overwrite, or a run to --resume with an
        unchanged input whose files all belong to it); ``RunInputError`` with the fix where
        it does not. ``recorded``: the input as the user gave it, where the run's own
        differs (the rank layout of an MPI run)."""
        check_run_folder(self.directory, list(self.paths.values()), self.paths["checkpoint"],
                         resume, overwrite, inputs=input_files(cfg))
        if resume:
            check_unchanged_input(self.paths["metadata"],
                                  (recorded or cfg).model_dump(mode="json"), self.directory)
            meta = read_json(self.paths["metadata"], "this run's record")
            checkpoint = read_json(self.paths["checkpoint"], "a checkpoint of this run")
            tail = paired_state(self.paths, checkpoint)
            saved = check_resume_state(tail)
            frame = checkpoint.get("frame")
            if isinstance(frame, dict) and isinstance(frame.get("index"), int):
                check_fine_frames(self.paths["fine"], frame["index"], saved["tail"])
            if saved.get(GENERATION, checkpoint.get(GENERATION)) != checkpoint.get(GENERATION):
                raise RunInputError(
                    f"{tail} is not the saved state of {self.paths['checkpoint']} (written "
                    f"{saved[GENERATION]}th, the checkpoint {checkpoint.get(GENERATION)}th): "
                    "put back the run's own, or start again with --overwrite")
            check_run_id(self.paths["checkpoint"], checkpoint.get(RUN_ID), meta, self.directory)
            check_run_id(tail, saved.get(RUN_ID), meta, self.directory)
            check_files(meta, cfg, self.directory)
            self.run_id = meta.get(RUN_ID)

    def prepare(self, cfg: RunConfig) -> None:
        """A fresh run: clear the folder's run files and write ``run.json`` (the input, a
        new run id and the digests of the files the input names)."""
        from hybridmd.calculators import describe_calculator

        for path in self.paths.values():
            path.unlink(missing_ok=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        identity = record(cfg)
        self.run_id = identity[RUN_ID]
        write_json_atomic(self.paths["metadata"], {**run_metadata(
            cfg.model_dump(mode="json"), describe_calculator(cfg.calculator)), **identity})

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.paths["summary"], summary)


def paired_state(paths: dict[str, Path], checkpoint: dict[str, Any]) -> Path:
    """The saved state written with ``checkpoint`` (the same ``GENERATION``):
    ``resume-state.pkl``, or the one before it where the run stopped after writing a new one
    and before its checkpoint (the checkpoint is written last). States of runs from before
    generations were counted pair with any checkpoint."""
    current, previous = paths["tail"], paths["previous_tail"]
    if _generation(current) in (None, checkpoint.get(GENERATION)):
        return current
    if previous.exists() and _generation(previous) == checkpoint.get(GENERATION):
        return previous
    return current  # not this checkpoint's: the caller says so


def _generation(path: Path) -> int | str | None:
    """The generation of a saved state; None for a state without one, "unreadable" for a
    file that does not unpickle."""
    try:
        with open(path, "rb") as fh:
            saved = pickle.load(fh)
        return saved.get(GENERATION) if isinstance(saved, dict) else "unreadable"
    except Exception:  # noqa: BLE001 (a missing or broken file: check_resume_state says which)
        return "unreadable"


def coarse_atoms(frame: CoarseFrame, numbers: np.ndarray, masses: np.ndarray,
                 cell: Cell) -> Atoms:
    """A committed frame as written to ``coarse.traj`` (departure momenta, energy, forces; the
    cell of a periodic system)."""
    atoms = Atoms(numbers=numbers, positions=frame.positions, masses=masses)
    if cell.periodic:
        atoms.cell, atoms.pbc = cell.vectors, cell.pbc
    atoms.set_momenta(frame.momenta)
    atoms.info.update(time_fs=frame.time_fs, coarse_index=frame.index, origin=frame.origin,
                      status=frame.status,
                      energy_source=energy_source(frame.exact))
    atoms.calc = SinglePointCalculator(atoms, energy=frame.energy, forces=frame.forces)
    return atoms


def _in_columns(head: str, lines: list[str]) -> list[str]:
    """A resumed timeline's kept lines in today's columns (one written before a column was
    added gets it empty)."""
    if head == "\t".join(TIMELINE_COLUMNS) + "\n":
        return lines
    names = head.rstrip("\n").split("\t")
    out = []
    for line in lines:
        row = dict(zip(names, line.rstrip("\n").split("\t"), strict=True))
        out.append("\t".join(row.get(c, "") for c in TIMELINE_COLUMNS) + "\n")
    return out


class Timeline:
    """``timeline.tsv``: one line per decision, flushed as it happens."""

    def __init__(self, path: Path, keep_lines: int | None):
        self.path = path
        header = "\t".join(TIMELINE_COLUMNS) + "\n"
        if keep_lines is None or not path.exists():
            text = header
        else:
            head, *lines = path.read_text().splitlines(keepends=True)[:keep_lines + 1]
            text = header + "".join(_in_columns(head, lines))
        tmp = path.with_name(path.name + ".tmp")  # a kill now leaves the old file or the new
        tmp.write_text(text)
        tmp.replace(path)
        self.lines = len(text.splitlines()) - 1
        self._fh = open(path, "a")  # noqa: SIM115 (open for the whole run)

    def write(self, **row: Any) -> None:
        def fmt(v: Any) -> str:
            if v is None:
                return ""
            return f"{v:.4g}" if isinstance(v, float) else str(v)

        self._fh.write("\t".join(fmt(row.get(c)) for c in TIMELINE_COLUMNS) + "\n")
        self._fh.flush()
        self.lines += 1

    def close(self) -> None:
        self._fh.close()


def frame_json(f: CoarseFrame) -> dict[str, Any]:
    return {"index": f.index, "time_fs": f.time_fs, "positions": f.positions.tolist(),
            "arrival": f.arrival.tolist(), "departure": f.momenta.tolist(),
            "forces": f.forces.tolist(), "energy": f.energy, "origin": f.origin,
            "status": f.status, "rng_state": f.rng_state,
            "thermostat_energy": f.thermostat_energy, "exact": f.exact}


def frame_from_json(d: dict[str, Any]) -> CoarseFrame:
    return CoarseFrame(d["index"], d["time_fs"], np.array(d["positions"]),
                       np.array(d["departure"]), np.array(d["arrival"]), np.array(d["forces"]),
                       d["energy"], d["origin"], status=d["status"], rng_state=d["rng_state"],
                       thermostat_energy=d["thermostat_energy"], exact=d["exact"])


def last_coarse_index(path: Path, at_most: int) -> int:
    """The last coarse frame (index at most ``at_most``) in a fine trajectory; cut after it."""
    frames, last = _last_coarse(path, at_most)
    if last < 0:
        path.unlink(missing_ok=True)
        return -1
    truncate_frames(path, last + 1)
    return int(frames[last].info["coarse_index"])


def check_fine_frames(path: Path, at_most: int, tail: list[CoarseFrame]) -> None:
    """The fine trajectory's last coarse frame (index at most ``at_most``) holds the positions
    the saved stream tail has for it, or the file is another run's (``RunInputError``)."""
    frames, last = _last_coarse(path, at_most)
    expected = {f.index: f.positions for f in tail}
    index = int(frames[last].info["coarse_index"]) if last >= 0 else None
    if index in expected and not np.array_equal(frames[last].positions, expected[index]):
        raise RunInputError(
            f"{path}: its coarse frame {index} is not this run's (the saved state holds "
            "another): the fine trajectory belongs to another run; put back the run's own, or "
            "start again with --overwrite")


def _last_coarse(path: Path, at_most: int) -> tuple[list[Atoms], int]:
    """The frames of a fine trajectory and the position of its last coarse frame with index
    at most ``at_most`` (-1: none, or no file)."""
    if not path.exists():
        return [], -1
    with reading(path, "the fine trajectory of this run", fix="start again with --overwrite"):
        frames = read(path, index=":")
    last = max((i for i, a in enumerate(frames)
                if a.info.get("coarse_index", at_most + 1) <= at_most), default=-1)
    return frames, last
