"""Newtonian training data: NVE segments started from the states of a thermostatted run.

Why: a Bussi or Langevin thermostat acting at every fine step kicks the velocities inside each
interval, and a network trained on such data measured worse than one trained on Newtonian
segments, on both kinds of held-out data (docs/benchmarks/history.md). The hybrid loop
thermostats only at segment boundaries, so the intervals its interpolator fills are Newtonian; these
segments train for that case.
Each segment starts from a frame of the thermostatted trajectory (positions and momenta: a
300 K canonical start) and runs NVE with the same calculator and time step, one folder each,
resumable. Train on them with a pattern: `path: ../runs/ethanol-sgdml-nve/seg-*/trajectory.traj`.

Needs the thermostatted runs of workflows/generate_training_data.sh. Makes 40 segments of 2.5 ps
to train on from each of the two training runs (seeds 1 and 3) and 20 of 0.5 ps to test on
(from the seed-2 run), about 25 minutes on one core:
  OMP_NUM_THREADS=1 .venv/bin/python workflows/generate_nve_training_data.py
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hybridmd.canonical_segments import simulate_once
from hybridmd.readers import read_trajectory

ROOT = Path(__file__).resolve().parent.parent
# name: (source run, output, segments, ps): 2 x 100 ps to train on, 10 ps from another seed to test
SETS = {"train": ("ethanol-sgdml-300k", "ethanol-sgdml-nve", 40, 2.5),
        "train-b": ("ethanol-sgdml-300k-b", "ethanol-sgdml-nve-b", 40, 2.5),
        "test": ("ethanol-sgdml-300k-test", "ethanol-sgdml-nve-test", 20, 0.5)}


def segments(source: Path, out: Path, count: int, ps: float, model: str) -> None:
    """``count`` NVE segments of ``ps`` picoseconds from evenly spaced frames of ``source``."""
    frames = len(read_trajectory(source))
    for k in range(count):
        index = (k * frames) // count
        logging.info("segment %d/%d from frame %d of %s", k + 1, count, index, source)
        simulate_once({
            "system": {"file": str(source), "index": index},
            "calculator": {"type": "sgdml", "model": model},
            "dynamics": {"integrator": "nve", "timestep_fs": 0.5, "duration_fs": 1000 * ps,
                         "initial_momenta": {"file": str(source), "index": index}},
            "output": {"stride": 1, "log_stride": 1000},
        }, out / f"seg-{k:03d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ethanol", help="sGDML model (shipped name or path)")
    parser.add_argument("--only", choices=list(SETS), help="make one of the sets")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for name, (source, out, count, ps) in SETS.items():
        if args.only in (None, name):
            segments(ROOT / "runs" / source / "trajectory.traj", ROOT / "runs" / out, count, ps,
                     args.model)


if __name__ == "__main__":
    main()
