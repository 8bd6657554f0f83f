"""What `hybridmd analyze` compares: a trajectory file, or the output folder of a run.

A folder of `hybridmd run` gives its fine trajectory (``fine.traj``) with the run's stride, so
the report shades the segments; a folder of `hybridmd simulate` gives ``trajectory.traj``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hybridmd.readers import read_trajectory
from hybridmd.trajectory import Trajectory

RUN_NOTE = ("{name} is a hybrid run: its trajectory and the other one separate within a "
            "picosecond (MD is chaotic), so frame-wise errors only say how far apart they are; "
            "the distributions (VDOS, h(r), speeds, free energy) say whether the physics agrees.")


def read_source(path: Path, dt_fs: float | None = None) -> tuple[Trajectory, list[str]]:
    """The trajectory at ``path`` (file or run folder) and notes for the report."""
    path = Path(path)
    if not path.is_dir():
        return read_trajectory(path, dt_fs=dt_fs), []
    for name in ("fine.traj", "trajectory.traj", "trajectory.extxyz"):
        if (path / name).is_file():
            break
    else:
        raise FileNotFoundError(f"{path} holds no fine.traj (hybridmd run) or trajectory.traj "
                                "(hybridmd simulate): give a trajectory file or a run folder")
    traj = read_trajectory(path / name, dt_fs=dt_fs)
    notes = []
    meta = path / "run.json"
    hybrid = json.loads(meta.read_text())["input"].get("hybrid") if meta.is_file() else None
    if name == "fine.traj" and hybrid:
        traj.metadata.setdefault("stride", hybrid["stride"])
        notes.append(RUN_NOTE.format(name=str(path)))
    return traj, notes
