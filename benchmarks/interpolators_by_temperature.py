"""Interpolators across temperatures: the shipped ethanol models on Newtonian segments at 200-500 K.

For each temperature, a Bussi run of ethanol (sGDML, 0.5 fs, seed 7000 + T: a seed no
training run used) gives canonical start states, one every 200 fs after 1 ps of
equilibration; from each, an NVE segment of 0.5 ps (the intervals a hybrid run fills are
Newtonian). On those held-out segments: the position MAE of the shipped interpolators at 5,
10 and 20 fs and of the three classical baselines, averaged over the segments' windows, the
ratio to the best classical one, and the error by window temperature (the context frames'
kinetic temperature, 100 K bins), marked inside or outside each model's training range.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/interpolators_by_temperature.py
      (about 15 min on 2 cores; the segments are kept in --out and reused)
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from datetime import date
from pathlib import Path

from hybridmd.checkpoint import load_interpolator
from hybridmd.config import SimulationConfig, parse_config
from hybridmd.interpolation.evaluate import (
    Score,
    evaluate,
    format_temperature_table,
    scores_as_dicts,
)
from hybridmd.readers import read_trajectory
from hybridmd.simulate import run_simulation
from hybridmd.trajectory import Trajectory

MODELS = ("ethanol-bilstm-5fs", "ethanol-bilstm-10fs", "ethanol-bilstm-20fs")
BASELINES = ("linear", "cubic", "quintic")


def _classical(score: Score) -> bool:
    return score.model.split()[0] in BASELINES


def _simulate(data: dict, folder: Path) -> Path:
    """Run (or reuse the finished run in) ``folder``; its trajectory."""
    checkpoint = folder / "checkpoint.json"
    if not (checkpoint.exists() and json.loads(checkpoint.read_text()).get("finished")):
        cfg = parse_config({**data, "output": {**data["output"], "directory": str(folder)}},
                           SimulationConfig, str(folder))
        run_simulation(cfg, resume=checkpoint.exists(), overwrite=True, progress=False)
    return folder / "trajectory.traj"


def segments(temperature: float, count: int, out: Path, seed_base: int = 7000,
             ps: float = 0.5) -> list[Trajectory]:
    """``count`` NVE segments of ``ps`` from canonical states at ``temperature`` (Bussi run
    seed ``seed_base`` + T: the default is the held-out data of this benchmark)."""
    every = 400  # steps between start states: 200 fs
    first = 2000  # 1 ps of equilibration
    canonical = _simulate({
        "system": {"molecule": "ethanol"},
        "calculator": {"type": "sgdml", "model": "ethanol"},
        "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "temperature_K": temperature,
                     "tau_fs": 100, "steps": first + every * count,
                     "seed": seed_base + int(temperature)},
        "output": {"stride": every, "log_stride": 10000},
    }, out / f"canonical-{temperature:g}K-seed{seed_base + int(temperature)}")
    trajectories = []
    for k in range(count):
        index = first // every + k + 1
        path = _simulate({
            "system": {"file": str(canonical), "index": index},
            "calculator": {"type": "sgdml", "model": "ethanol"},
            "dynamics": {"integrator": "nve", "timestep_fs": 0.5, "duration_fs": 1000 * ps,
                         "initial_momenta": {"file": str(canonical), "index": index}},
            "output": {"stride": 1, "log_stride": 10000},
        }, out / f"nve-{temperature:g}K-seed{seed_base + int(temperature)}" / f"seg-{k:03d}")
        trajectories.append(read_trajectory(path))
    return trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[200, 300, 400, 500])
    parser.add_argument("--segments", type=int, default=20, help="NVE segments per temperature")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-interpolators-by-temperature"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    models = [load_interpolator(name) for name in MODELS]
    print(f"# shipped ethanol interpolators on held-out NVE segments (sGDML), {date.today()}, "
          f"{platform.processor() or platform.machine()}\n")
    print("| start T (K) | Δt (fs) | windows | linear | cubic | quintic | shipped Bi-LSTM | "
          "ratio to the best classical |")
    print("|---|---|---|---|---|---|---|---|")
    results, tables = {}, []
    for temperature in args.temperatures:
        refs = segments(temperature, args.segments, args.out)
        scores = evaluate(models, refs, baselines=BASELINES, bin_k=100.0)
        results[temperature] = scores_as_dicts(scores)
        nets = [s for s in scores if not _classical(s)]
        for net in nets:
            classical = [s for s in scores if _classical(s) and s.dt_fs == net.dt_fs]
            best = min(s.position_mae for s in classical)
            cells = " | ".join(f"{s.position_mae:.2e}" for s in classical)
            print(f"| {temperature:g} | {net.dt_fs:g} | {net.windows} | {cells} | "
                  f"{net.position_mae:.2e} | {net.position_mae / best:.2f} |")
        tables.append((temperature, format_temperature_table(nets)))
    for temperature, table in tables:
        print(f"\nstarts at {temperature:g} K, by window temperature:\n\n{table}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scores.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
