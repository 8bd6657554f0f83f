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
from typing import Any

from hybridmd.errors import RunInputError
from hybridmd.hybrid.files import (
    RunFolder,
    frame_from_json,
    frame_json,
    last_coarse_index,
)
from hybridmd.hybrid.loop import HybridLoop
from hybridmd.output import truncate_frames, write_json_atomic
from hybridmd.streaming import CoarseFrame

log = logging.getLogger(__name__)


class Checkpointer:
    """Snapshots of a loop's quiet states, written to and restored from a run folder."""

    def __init__(self, folder: RunFolder):
        self.paths = folder.paths
        self.quiet: dict[str, Any] | None = None  #: the last quiet state

    def snapshot(self, loop: HybridLoop, timeline_lines: int, wall_s: float) -> None:
        """Remember the state now (call only at a quiet point), with the timeline's length
        and the run's wall time."""
        self.quiet = {**loop.snapshot(), "timeline_lines": timeline_lines, "wall_s": wall_s}

    def write(self, loop: HybridLoop, finished: bool = False) -> None:
        """Write the last quiet state to disk."""
        state = loop.saved(self.quiet)
        tail, frame, maker = state.pop("tail"), state.pop("frame"), state.pop("maker")
        tmp = self.paths["tail"].with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"tail": tail, "maker": maker}, fh)
        tmp.replace(self.paths["tail"])
        write_json_atomic(self.paths["checkpoint"], {**state, "frame": frame_json(frame),
                                                     "finished": finished})

    def load(self) -> dict[str, Any]:
        return json.loads(self.paths["checkpoint"].read_text())

    def restore(self, loop: HybridLoop, state: dict[str, Any], context_frames: int,
                ) -> tuple[tuple[list[CoarseFrame], list[CoarseFrame]], int]:
        """Back to the checkpointed commit: the stream's primer and the frames to re-send,
        and the fine frames already on disk."""
        paths = self.paths
        frame = frame_from_json(state["frame"])
        truncate_frames(paths["coarse"], state["committed"])
        with open(paths["tail"], "rb") as fh:
            saved = pickle.load(fh)
        loop.restore({**state, "maker": saved["maker"]}, frame)
        tail: list[CoarseFrame] = saved["tail"]
        fine_end = last_coarse_index(paths["fine"], frame.index)
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
