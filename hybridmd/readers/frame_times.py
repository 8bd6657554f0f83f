"""Frame times of a trajectory file: the spacing given or stored, checked to be uniform."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hybridmd.errors import InputError
from hybridmd.trajectory import SPACING_RTOL

#: how a user gives the frame spacing, in every place a trajectory is read
DT_HOW = ("--dt-fs on the command line, dt_fs: in a training input's data.trajectories, "
          "dt_fs= in Python")


def frame_spacing(times_fs: np.ndarray, path: Path) -> float:
    """Spacing of equally spaced, increasing frame times; ValueError otherwise."""
    if len(times_fs) < 2:
        raise InputError(f"{path}: cannot infer a time step from {len(times_fs)} frame")
    diffs = np.diff(times_fs)
    dt = float(times_fs[-1] - times_fs[0]) / (len(times_fs) - 1)
    if not dt > 0 or np.max(np.abs(diffs - dt)) > SPACING_RTOL * abs(dt):
        bad = int(np.argmax(np.abs(diffs - dt)))
        raise InputError(
            f"{path}: frames are not equally spaced in time (spacing {diffs.min():g} to "
            f"{diffs.max():g} fs, e.g. {diffs[bad]:g} fs between frames {bad} and {bad + 1}); "
            f"hybridmd needs a uniform time step"
        )
    return dt


def require_dt(dt_fs: float | None, path: Path, what: str) -> float:
    """The spacing the user gave for a file (``what``) that stores no times of its own."""
    if dt_fs is None:
        raise InputError(
            f"{path}: {what} stores no time information; give the time between its frames "
            f"in fs ({DT_HOW})"
        )
    if not dt_fs > 0:
        raise InputError(f"the time between frames must be positive ({DT_HOW}), got {dt_fs}")
    return float(dt_fs)


def check_dt_agrees(dt_file: float, dt_fs: float | None, path: Path) -> None:
    """A spacing given by the user must match the one the file stores."""
    if dt_fs is not None and abs(dt_fs - dt_file) > SPACING_RTOL * dt_file:
        raise InputError(
            f"{path}: the file says its frames are {dt_file:g} fs apart, but {dt_fs:g} fs was "
            f"given as their spacing (--dt-fs, or dt_fs); leave it out to use the file's"
        )
