"""Newtonian segments from canonical starts: training and test data for interpolators.

A Bussi run at the temperature gives the start states (one every ``spacing_fs`` after
``equilibration_ps``); from each, an NVE segment with the same calculator and time step. The
intervals a hybrid run fills are Newtonian (its thermostat acts at segment boundaries), and
canonical starts give the spread of energies a run at that temperature meets. Each run has its
own folder, named by temperature and seed, and a finished one is reused, so the data are made
once and a killed generation resumes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hybridmd.config import SimulationConfig, parse_config
from hybridmd.readers import read_trajectory
from hybridmd.simulate import run_simulation
from hybridmd.trajectory import Trajectory

log = logging.getLogger(__name__)

SGDML_ETHANOL: dict[str, Any] = {"type": "sgdml", "model": "ethanol"}


def simulate_once(data: dict[str, Any], folder: Path) -> Path:
    """Run the simulation input ``data`` in ``folder`` (or reuse its finished run); its
    trajectory."""
    checkpoint = folder / "checkpoint.json"
    if not (checkpoint.exists() and json.loads(checkpoint.read_text()).get("finished")):
        cfg = parse_config({**data, "output": {**data["output"], "directory": str(folder)}},
                           SimulationConfig, str(folder))
        run_simulation(cfg, resume=checkpoint.exists(), overwrite=True, progress=False)
    return folder / "trajectory.traj"


def canonical_nve_segments(temperature: float, count: int, out: Path, seed: int,
                           ps: float = 0.5, molecule: str = "ethanol",
                           calculator: dict[str, Any] | None = None,
                           timestep_fs: float = 0.5, equilibration_ps: float = 1.0,
                           spacing_fs: float = 200.0) -> list[Trajectory]:
    """``count`` NVE segments of ``ps`` picoseconds from the states of a Bussi run at
    ``temperature`` with ``seed``, in ``out``/nve-{T}K-seed{seed}/seg-NNN."""
    calculator = calculator or SGDML_ETHANOL
    every = round(spacing_fs / timestep_fs)
    first = round(1000 * equilibration_ps / timestep_fs) // every * every
    canonical = simulate_once({
        "system": {"molecule": molecule},
        "calculator": calculator,
        "dynamics": {"integrator": "bussi", "timestep_fs": timestep_fs,
                     "temperature_K": temperature, "tau_fs": 100,
                     "steps": first + every * count, "seed": seed},
        "output": {"stride": every, "log_stride": 10000},
    }, out / f"canonical-{temperature:g}K-seed{seed}")
    trajectories = []
    for k in range(count):
        index = first // every + k + 1
        log.info("NVE segment %d/%d at %g K (seed %d)", k + 1, count, temperature, seed)
        path = simulate_once({
            "system": {"file": str(canonical), "index": index},
            "calculator": calculator,
            "dynamics": {"integrator": "nve", "timestep_fs": timestep_fs,
                         "duration_fs": 1000 * ps,
                         "initial_momenta": {"file": str(canonical), "index": index}},
            "output": {"stride": 1, "log_stride": 10000},
        }, out / f"nve-{temperature:g}K-seed{seed}" / f"seg-{k:03d}")
        trajectories.append(read_trajectory(path))
    return trajectories
