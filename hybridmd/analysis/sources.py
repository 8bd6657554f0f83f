"""What `hybridmd analyze` compares: a trajectory file, or the output folder of a run.

A folder of `hybridmd run` gives its fine trajectory (``fine.traj``) with the run's stride, so
the report shades the segments; a folder of `hybridmd simulate` gives ``trajectory.traj``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hybridmd.errors import MissingFileError, reading
from hybridmd.readers import read_trajectory
from hybridmd.trajectory import Trajectory

RUN_NOTE = ("{name} is a hybrid run: its trajectory and the other one separate within a "
            "picosecond (MD is chaotic), so frame-wise errors only say how far apart they are; "
            "the distributions (VDOS, h(r), speeds, free energy) say whether the physics agrees.")


def hybrid_run_folder(path: Path) -> bool:
    """Whether ``path`` is the output folder of `hybridmd run` (it has a timeline)."""
    path = Path(path)
    return path.is_dir() and (path / "timeline.tsv").is_file() and (path / "run.json").is_file()


def read_source(path: Path, dt_fs: float | None = None,
                key: str = "trajectory") -> tuple[Trajectory, list[str]]:
    """The trajectory at ``path`` (file or run folder) and notes for the report.

    ``key`` names the flag in errors (``InputError``: missing, unreadable, not a run folder).
    """
    path = Path(path)
    if not path.is_dir():
        with reading(path, "a trajectory", key=key):
            return read_trajectory(path, dt_fs=dt_fs), []
    for name in ("fine.traj", "trajectory.traj", "trajectory.extxyz"):
        if (path / name).is_file():
            break
    else:
        raise MissingFileError(f"{key}: {path} holds no fine.traj (hybridmd run) or "
                               "trajectory.traj (hybridmd simulate): give a trajectory file or "
                               "a run folder")
    with reading(path / name, "a trajectory", key=key):
        traj = read_trajectory(path / name, dt_fs=dt_fs)
    notes = []
    meta = path / "run.json"
    hybrid = None
    if meta.is_file():
        with reading(meta, "a run record (run.json)", key=key):
            hybrid = json.loads(meta.read_text())["input"].get("hybrid")
    if name == "fine.traj" and hybrid:
        traj.metadata.setdefault("stride", hybrid["stride"])
        notes.append(RUN_NOTE.format(name=str(path)))
        ml = ml_segments(path / "coarse.traj")
        if ml is not None:
            traj.metadata["ml_segments"] = ml
    return traj, notes


def ml_segments(coarse: Path) -> list[bool] | None:
    """Whether the ML made each segment of a hybrid run, in order (None: no coarse.traj)."""
    if not coarse.is_file():
        return None
    from ase.io import read

    with reading(coarse, "a run's coarse trajectory"):
        frames = read(coarse, index=":")
    return [atoms.info.get("origin") == "ml" for atoms in frames[1:]]
