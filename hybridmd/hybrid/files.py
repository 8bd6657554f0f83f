"""What a hybrid run leaves on disk, and the pieces of its checkpoint.

A run folder holds ``fine.traj`` (every Δτ, from the interpolator worker), ``coarse.traj``
(segment ends with energy, forces, origin and status), ``timeline.tsv`` (one line per decision),
``summary.json``, ``run.json`` (the input and versions), ``checkpoint.json`` (the last quiet
state) and ``resume-state.pkl`` (the frames the interpolator needs to go on, fine-tuning data
and weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase.io import read

from hybridmd.hybrid.segments import BoundaryFrame
from hybridmd.output import truncate_frames

COARSE_NAME = "coarse.traj"
FINE_NAME = "fine.traj"
TIMELINE_NAME = "timeline.tsv"
SUMMARY_NAME = "summary.json"
CHECKPOINT_NAME = "checkpoint.json"
TAIL_NAME = "resume-state.pkl"  #: stream tail, fine-tuning data and weights
METADATA_NAME = "run.json"

TIMELINE_COLUMNS = ("segment", "time_fs", "mode", "event", "reason", "shadow_error_A",
                    "monitor_error_A", "disagreement_A", "energy_jump_eV", "force_calls",
                    "monitor_calls")


class Timeline:
    """``timeline.tsv``: one line per decision, flushed as it happens."""

    def __init__(self, path: Path, keep_lines: int | None):
        self.path = path
        if keep_lines is None or not path.exists():
            text = "\t".join(TIMELINE_COLUMNS) + "\n"
        else:
            text = "".join(path.read_text().splitlines(keepends=True)[:keep_lines + 1])
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


def frame_json(f: BoundaryFrame) -> dict[str, Any]:
    return {"index": f.index, "time_fs": f.time_fs, "positions": f.positions.tolist(),
            "arrival": f.arrival.tolist(), "departure": f.departure.tolist(),
            "forces": f.forces.tolist(), "energy": f.energy, "origin": f.origin,
            "status": f.status, "rng_state": f.rng_state,
            "thermostat_energy": f.thermostat_energy}


def frame_from_json(d: dict[str, Any]) -> BoundaryFrame:
    arrays = {k: np.array(d[k]) for k in ("positions", "arrival", "departure", "forces")}
    return BoundaryFrame(d["index"], d["time_fs"], energy=d["energy"], origin=d["origin"],
                         status=d["status"], rng_state=d["rng_state"],
                         thermostat_energy=d["thermostat_energy"], **arrays)


def last_coarse_index(path: Path, at_most: int) -> int:
    """The last coarse frame (index at most ``at_most``) in a fine trajectory; cut after it."""
    if not path.exists():
        return -1
    frames = read(path, index=":")
    last = max((i for i, a in enumerate(frames)
                if a.info.get("coarse_index", at_most + 1) <= at_most), default=-1)
    if last < 0:
        path.unlink()
        return -1
    truncate_frames(path, last + 1)
    return int(frames[last].info["coarse_index"])
