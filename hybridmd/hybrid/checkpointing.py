"""The hybrid run's checkpoint: the state at the last quiet point, and the way back to it.

A point is quiet when no ML frame is pending and no monitor is outstanding. The driver takes a
snapshot there after every segment; it holds references and lengths, not copies (committed
frames never change, and the statistics' lists, the fine-tuning pairs and the labeled frames
only grow), so it is cheap. ``write`` turns the last snapshot into ``checkpoint.json`` (the
decision state and counts) and ``resume-state.pkl`` (the frames the interpolator needs to go
on, fine-tuning data and weights, the labeled frames and the learned force field in use).
Resuming from it repeats exactly what the run did next: decisions depend only on that state
and on the seeded generators, and a fit that was pending is asked for again with the same
frames, so a resumed run continues the same trajectory with the same counts.
"""

from __future__ import annotations

import json
import logging
import pickle
from typing import TYPE_CHECKING, Any

from hybridmd.hybrid.files import frame_from_json, frame_json, last_coarse_index
from hybridmd.hybrid.ledger import RunStats
from hybridmd.output import truncate_frames, write_json_atomic
from hybridmd.safety import RunInputError
from hybridmd.streaming import CoarseFrame

if TYPE_CHECKING:
    from hybridmd.hybrid.driver import HybridRun

log = logging.getLogger(__name__)


class Checkpointer:
    """Snapshots of a run's quiet states, written to and restored from its folder."""

    def __init__(self, run: HybridRun):
        self.run = run
        self.quiet: dict[str, Any] | None = None  #: the last quiet state

    def snapshot(self) -> None:
        """Remember the state now (call only at a quiet point)."""
        run = self.run
        self.quiet = {
            "committed": run.n_committed, "frame": run.committed[-1], "steps": run.steps,
            # the generators now: the monitor choice has drawn since the frame was made
            "rng": run._rng_state(),
            "switch": run.switch.state_dict(), "choice": run.choice.state_dict(),
            "ledger": run.ledger.state_dict(), "stats": run.stats.lengths(),
            "predictor": run.predictor.state_dict() if run.predictor else {},
            "learner": run.learner.state_dict() if run.learner else None,
            "model": getattr(run.predictor, "model", None),
            "dataset": None if run.dataset is None else len(run.dataset),
            "timeline_lines": run._timeline.lines,
            "tail": list(run.committed),
            "tune": {"pairs": len(run.tune_pairs), "tuned_at": run.tuned_at,
                     "tunes": run.tunes},
            "tuned_state": run._tuned_state,
            "wall_s": run.wall_s(),
        }

    def write(self, finished: bool = False) -> None:
        """Write the last quiet state to disk."""
        run, paths = self.run, self.run.folder.paths
        state = dict(self.quiet)
        tail, frame = state.pop("tail"), state.pop("frame")
        model, dataset = state.pop("model"), state.pop("dataset")
        tmp = paths["tail"].with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"tail": [run._coarse_frame(f) for f in tail],
                         "tuned_state": state.pop("tuned_state"),
                         "tune_pairs": run.tune_pairs[:state["tune"]["pairs"]],
                         "dataset": None if dataset is None else run.dataset.head(dataset),
                         "model": model}, fh)
        tmp.replace(paths["tail"])
        stats = run.stats.state_at(state.pop("stats"))
        write_json_atomic(paths["checkpoint"], {**state, "frame": frame_json(frame),
                                                "stats": stats, "finished": finished})

    def load(self) -> dict[str, Any]:
        return json.loads(self.run.folder.paths["checkpoint"].read_text())

    def restore(self, state: dict[str, Any]) -> tuple[list[CoarseFrame], list[CoarseFrame]]:
        """Back to the checkpointed commit; the stream's primer and the frames to re-send."""
        run, paths = self.run, self.run.folder.paths
        frame = frame_from_json(state["frame"])
        run.current = frame
        run.committed = [frame]
        run.n_committed = state["committed"]
        run.steps = state["steps"]
        run._wall_before = state.get("wall_s", 0.0)  # absent from checkpoints before it was kept
        run._set_rng_state(state["rng"])
        run.thermostat.energy = frame.thermostat_energy
        run.switch.load_state_dict(state["switch"])
        run.choice.load_state_dict(state["choice"])
        run.ledger.load_state_dict(state["ledger"])
        run.stats = RunStats(**state["stats"])
        truncate_frames(paths["coarse"], run.n_committed)
        with open(paths["tail"], "rb") as fh:
            saved = pickle.load(fh)
        tail: list[CoarseFrame] = saved["tail"]
        run.tune_pairs = saved["tune_pairs"]
        run.tuned_at, run.tunes = state["tune"]["tuned_at"], state["tune"]["tunes"]
        run._tuned_state = saved["tuned_state"]
        if run._tuned_state is not None:
            run.predictor.forecaster.net.load_state_dict(run._tuned_state)
        if run.predictor is not None:
            run.predictor.load_state_dict(state["predictor"])
            if saved["dataset"] is not None:
                run.dataset = saved["dataset"]
                run.predictor.model = saved["model"]
        if run.learner is not None:
            run.learner.load_state_dict(state["learner"], run.dataset)
        fine_end = last_coarse_index(paths["fine"], frame.index)
        primer = [f for f in tail if f.index <= fine_end]
        resend = [f for f in tail if f.index > fine_end]
        if fine_end < 0 and tail[0].index == 0:
            # killed before the worker (still starting) wrote a frame: the stream starts again
            log.info("resuming at coarse frame %d; the fine output starts again", frame.index)
            return [], resend
        if not primer or primer[0].index > max(0, fine_end - run.context_frames + 1):
            raise RunInputError(
                f"cannot resume the fine trajectory in {paths['fine']}: it ends at coarse frame "
                f"{fine_end}, the saved stream tail starts at {tail[0].index}; start again "
                "with --overwrite")
        run._fine_before = fine_end * run.n + 1
        log.info("resuming at coarse frame %d (%d committed; fine output continues after "
                 "coarse frame %d)", frame.index, run.n_committed, fine_end)
        return primer, resend

