"""What a simulation leaves on disk: trajectory frames, the MD log, metadata and a checkpoint.

Files in an output folder:
- ``trajectory.traj`` (or ``.extxyz``): positions, momenta, energy, forces, time and step per frame
- ``md.log``: time, step, temperature, potential, kinetic and conserved energy
- ``run.json``: the validated input, package versions, calculator, timings
- ``checkpoint.json``: the state to resume from, written atomically
"""

from __future__ import annotations

import json
import os
import platform
import socket
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.io import read, write
from ase.io.trajectory import Trajectory

TRAJECTORY_STEM = "trajectory"
LOG_NAME = "md.log"
METADATA_NAME = "run.json"
CHECKPOINT_NAME = "checkpoint.json"

_PACKAGES = ("hybridmd", "ase", "numpy", "scipy", "torch", "sgdml", "pyscf", "tblite", "ipi")


def package_versions() -> dict[str, str | None]:
    """Versions of the packages a result depends on (None where not installed)."""
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def run_metadata(config: dict[str, Any], calculator: dict[str, Any]) -> dict[str, Any]:
    """The run's provenance: input echoed, calculator, versions, host and start time."""
    return {
        "input": config,
        "calculator": calculator,
        "versions": package_versions(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class FrameWriter:
    """Appends frames to an ASE trajectory or extxyz file, flushed frame by frame."""

    def __init__(self, path: Path):
        self.path = path
        self.format = "traj" if path.suffix == ".traj" else "extxyz"
        self._traj = Trajectory(str(path), "a") if self.format == "traj" else None
        self._fh = None if self._traj is not None else open(path, "a")  # noqa: SIM115

    def write(self, atoms: Atoms) -> None:
        if self._traj is not None:
            self._traj.write(atoms)  # ASE's ulm backend flushes every frame
        else:
            write(self._fh, atoms, format="extxyz")
            self._fh.flush()

    def close(self) -> None:
        if self._traj is not None:
            self._traj.close()
        else:
            self._fh.close()


def truncate_frames(path: Path, n_frames: int) -> int:
    """Keep the first ``n_frames`` frames of a trajectory file; return how many were dropped."""
    if not path.exists():
        if n_frames:
            raise FileNotFoundError(f"{path} is missing; the checkpoint counts {n_frames} frames")
        return 0
    frames = read(path, index=":")
    if len(frames) < n_frames:
        raise RuntimeError(
            f"{path} holds {len(frames)} frames but the checkpoint counts {n_frames}; "
            "the output folder was changed by hand: start a new run"
        )
    if len(frames) == n_frames:
        return 0
    tmp = path.with_name("partial-" + path.name)
    write(tmp, frames[:n_frames], format="traj" if path.suffix == ".traj" else "extxyz")
    os.replace(tmp, path)
    return len(frames) - n_frames


class MDLog:
    """A whitespace-separated log: one line per logged step, with a commented header."""

    HEADER = "# time_fs step T_K E_pot_eV E_kin_eV E_cons_eV\n"

    def __init__(self, path: Path):
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        self._fh = open(path, "a")  # noqa: SIM115 (open for the whole run)
        if new:
            self._fh.write(self.HEADER)

    def write(self, time_fs: float, step: int, temperature: float, epot: float, ekin: float,
              econs: float) -> None:
        self._fh.write(f"{time_fs:12.3f} {step:9d} {temperature:9.2f} {epot:16.8f} "
                       f"{ekin:14.8f} {econs:16.8f}\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    @staticmethod
    def truncate_after(path: Path, last_step: int) -> None:
        """Drop log lines of steps after ``last_step`` (they are recomputed on resume)."""
        if not path.exists():
            return
        kept = [line for line in path.read_text().splitlines(keepends=True)
                if line.startswith("#") or _complete_line_before(line, last_step)]
        path.write_text("".join(kept))


def _complete_line_before(line: str, last_step: int) -> bool:
    fields = line.split()
    return line.endswith("\n") and len(fields) == 6 and int(fields[1]) <= last_step
