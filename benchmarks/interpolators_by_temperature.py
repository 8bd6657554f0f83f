"""Interpolators across temperatures: the shipped ethanol models on Newtonian segments at 200-500 K.

For each temperature, a Bussi run of ethanol (sGDML, 0.5 fs, seed 7000 + T: a seed no
training run used) gives canonical start states, one every 200 fs after 1 ps of
equilibration; from each, an NVE segment of 0.5 ps (the intervals a hybrid run fills are
Newtonian). On those held-out segments: the position MAE of the shipped interpolators at 5,
10 and 20 fs (the 300 K ones and the 100-600 K ones) and of the three classical baselines,
averaged over the segments' windows, the ratio to the best classical one, and the error by
window temperature (the context frames' kinetic temperature, 100 K bins), marked inside or
outside each model's training range.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/interpolators_by_temperature.py
      (about 15 min on 2 cores to make the segments, kept in --out and reused; then 3 min)
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from datetime import date
from pathlib import Path

from hybridmd.canonical_segments import canonical_nve_segments
from hybridmd.interpolation.evaluate import (
    Score,
    evaluate,
    format_temperature_table,
    scores_as_dicts,
)
from hybridmd.interpolator_file import load_interpolator
from hybridmd.trajectory import Trajectory

MODELS = ("ethanol-bilstm-5fs", "ethanol-bilstm-10fs", "ethanol-bilstm-20fs",
          "ethanol-bilstm-5fs-100-600K", "ethanol-bilstm-10fs-100-600K",
          "ethanol-bilstm-20fs-100-600K")
BASELINES = ("linear", "cubic", "quintic")


def _classical(score: Score) -> bool:
    return score.model.split()[0] in BASELINES


def segments(temperature: float, count: int, out: Path) -> list[Trajectory]:
    """The held-out segments at ``temperature`` (Bussi seed 7000 + T: no training run's)."""
    return canonical_nve_segments(temperature, count, out, seed=7000 + int(temperature))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[200, 300, 400, 500])
    parser.add_argument("--segments", type=int, default=20, help="NVE segments per temperature")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-interpolators-by-temperature"))
    parser.add_argument("--model", action="append", dest="models", metavar="MODEL",
                        help="an interpolator to score (shipped name or checkpoint; repeat it); "
                             "default: the shipped ethanol ones")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="write the scores here (default: OUT/scores.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    models = [load_interpolator(name) for name in args.models or MODELS]
    print(f"# ethanol interpolators on held-out NVE segments (sGDML), {date.today()}, "
          f"{platform.processor() or platform.machine()}\n")
    print("| start T (K) | Δt (fs) | windows | linear | cubic | quintic | model | model MAE | "
          "ratio to the best classical |")
    print("|---|---|---|---|---|---|---|---|---|")
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
                  f"{net.model} | {net.position_mae:.2e} | {net.position_mae / best:.2f} |")
        tables.append((temperature, format_temperature_table(nets)))
    for temperature, table in tables:
        print(f"\nstarts at {temperature:g} K, by window temperature:\n\n{table}")
    target = args.json or args.out / "scores.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
