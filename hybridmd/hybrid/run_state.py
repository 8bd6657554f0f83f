"""The hybrid run's checkpoint: the state at the last quiet point, and the way back to it.

A point is quiet when no ML frame is pending and no monitor is outstanding. The session takes
a snapshot of the loop there after every segment; it holds references and lengths, not copies
(committed frames never change, and the statistics' lists, the fine-tuning pairs and the
labeled frames only grow), so it is cheap. ``write`` turns the last snapshot into
``checkpoint.json`` (the decision state and counts) and ``resume-state.pkl`` (the frames the
interpolator needs to go on, and the segment maker's state: fine-tuning data and weights, or
the labeled frames and the learned force field in use).
Resuming from it repeats exactly what the run did next: decisions depend only on that state
and on the seeded generators, and a fit that was pending is asked for again with the same
frames, so a resumed run continues the same trajectory with the same counts.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io.trajectory import Trajectory

from hybridmd.errors import RunInputError, reading
from hybridmd.fingerprint import RUN_ID
from hybridmd.hybrid.files import (
    GENERATION,
    RunFolder,
    frame_from_json,
    frame_json,
    last_coarse_index,
    paired_state,
)
from hybridmd.hybrid.loop import HybridLoop
from hybridmd.output import truncate_frames, write_json_atomic
from hybridmd.streaming import CoarseFrame

log = logging.getLogger(__name__)


class Checkpointer:
    """Snapshots of a loop's quiet states, written to and restored from a run folder."""

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.paths = folder.paths
        self.quiet: dict[str, Any] | None = None  #: the last quiet state
        #: whether resume-state.pkl pairs with the checkpoint on disk (then it is kept as the
        #: previous state while the next pair is written)
        self.paired = True
        self.generation = 0  #: checkpoints written (continued on a resume)

    def snapshot(self, loop: HybridLoop, timeline_lines: int, wall_s: float) -> None:
        """Remember the state now (call only at a quiet point), with the timeline's length
        and the run's wall time."""
        self.quiet = {**loop.snapshot(), "timeline_lines": timeline_lines, "wall_s": wall_s}

    def write(self, loop: HybridLoop, finished: bool = False) -> None:
        """Write the last quiet state to disk."""
        state = loop.saved(self.quiet)
        tail, frame, maker = state.pop("tail"), state.pop("frame"), state.pop("maker")
        current = self.paths["tail"]
        if self.paired and current.exists():  # kept until the new pair is whole on disk
            current.replace(self.paths["previous_tail"])
        self.paired = False
        generation = self.generation + 1
        tmp = current.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"tail": tail, "maker": maker, GENERATION: generation,
                         RUN_ID: self.folder.run_id}, fh)
        tmp.replace(current)
        write_json_atomic(self.paths["checkpoint"], {**state, "frame": frame_json(frame),
                                                     "finished": finished, GENERATION: generation,
                                                     RUN_ID: self.folder.run_id})
        self.generation, self.paired = generation, True

    def load(self, loop: HybridLoop) -> dict[str, Any]:
        """The checkpoint, checked to be a state of this system on this time grid, and the
        last frame it counts to be that of ``coarse.traj``, before anything is written."""
        path = self.paths["checkpoint"]
        state = json.loads(path.read_text())
        fix = ("it is not this run's checkpoint: put back the run's own, or start again with "
               "--overwrite")
        with reading(path, "a checkpoint of this run", fix="start again with --overwrite"):
            frame = frame_from_json(state["frame"])
            committed = int(state["committed"])
        n_atoms = len(loop.numbers)
        if frame.positions.shape != (n_atoms, 3):
            raise RunInputError(f"{path} holds a state of {len(frame.positions)} atoms, the "
                                f"system has {n_atoms}: {fix}")
        time_fs = frame.index * loop.n * loop.dt_fs
        if not np.isclose(frame.time_fs, time_fs, rtol=1e-9, atol=1e-6):
            raise RunInputError(
                f"{path}: its coarse frame {frame.index} is at t = {frame.time_fs:g} fs; in this "
                f"run it is at {time_fs:g} fs (hybrid.stride {loop.n} steps of "
                f"{loop.dt_fs:g} fs): {fix}")
        coarse = self.paths["coarse"]
        with reading(coarse, "the coarse trajectory of this run",
                     fix="start again with --overwrite"):
            n_frames, last = _count_and_frame(coarse, committed - 1)
        if n_frames < committed:
            raise RunInputError(f"{coarse} holds {n_frames} frames, the checkpoint counts "
                                f"{committed}: the folder was changed by hand; start again "
                                "with --overwrite")
        if last is not None and not (np.array_equal(last.positions, frame.positions) and
                                     last.info.get("coarse_index") == frame.index):
            raise RunInputError(
                f"{coarse}: its frame {committed - 1} is not the checkpoint's last frame (coarse "
                f"frame {frame.index}): the trajectory belongs to another run; put back the "
                "run's own, or start again with --overwrite")
        return state

    def restore(self, loop: HybridLoop, state: dict[str, Any], context_frames: int,
                ) -> tuple[tuple[list[CoarseFrame], list[CoarseFrame]], int]:
        """Back to the checkpointed commit: the stream's primer and the frames to re-send,
        and the fine frames already on disk."""
        paths = self.paths
        frame = frame_from_json(state["frame"])
        tail_path = paired_state(paths, state)
        with open(tail_path, "rb") as fh:
            saved = pickle.load(fh)
        tail: list[CoarseFrame] = saved["tail"]
        fine_end = last_coarse_index(paths["fine"], frame.index)
        truncate_frames(paths["coarse"], state["committed"])
        if tail_path != paths["tail"]:  # stopped between the two writes: the older pair again
            log.info("resuming from %s: the run stopped before the checkpoint of %s",
                     tail_path.name, paths["tail"].name)
            tail_path.replace(paths["tail"])
        loop.restore({**state, "maker": saved["maker"]}, frame)
        primer = [f for f in tail if f.index <= fine_end]
        resend = [f for f in tail if f.index > fine_end]
        if fine_end < 0 and tail[0].index == 0:
            # killed before the worker (still starting) wrote a frame: the stream starts again
            log.info("resuming at coarse frame %d; the fine output starts again", frame.index)
            return ([], resend), 0
        if not primer or primer[0].index > max(0, fine_end - context_frames + 1):
            raise RunInputError(
                f"cannot resume the fine trajectory in {paths['fine']}: it ends at coarse frame "
                f"{fine_end}, the saved stream tail starts at {tail[0].index}; start again "
                "with --overwrite")
        log.info("resuming at coarse frame %d (%d committed; fine output continues after "
                 "coarse frame %d)", frame.index, state["committed"], fine_end)
        return (primer, resend), fine_end * loop.n + 1


def _count_and_frame(path: Path, index: int) -> tuple[int, Atoms | None]:
    """The frames in an ASE trajectory, and its frame ``index`` (None if it has none such)."""
    if not path.exists():
        return 0, None
    with Trajectory(str(path)) as traj:
        n = len(traj)
        return n, (traj[index] if 0 <= index < n else None)
