"""The expensive case: the hybrid loop against the full simulation with Kohn-Sham DFT.

Water, PySCF PBE/STO-3G, 300 K, Bussi at the 10 fs segment boundaries, 0.5 fs steps
(inputs/water-dft-hybrid.yaml): run once as the full simulation (no forecaster) and once as the
hybrid loop with the shipped water forecaster (trained on DFT water,
inputs/train-water-forecaster-10fs.yaml) and one monitor process. Same seed, so the two runs
share the same start; they separate once the first forecast is taken.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hybrid_dft.py --fs 1000
"""

from __future__ import annotations

import argparse
import logging
import platform
from datetime import date
from pathlib import Path

import yaml

from hybridmd.config import RunConfig, parse_config
from hybridmd.hybrid.session import HybridRun

INPUT = Path(__file__).resolve().parent.parent / "inputs" / "water-dft-hybrid.yaml"


def run(out: Path, fs: float, forecaster: bool) -> dict:
    data = yaml.safe_load(INPUT.read_text())
    data["dynamics"]["duration_fs"] = fs
    data["output"] = {"directory": str(out)}
    if not forecaster:
        data["hybrid"]["forecaster"] = None
    cfg = parse_config(data, RunConfig, str(INPUT), base_dir=INPUT.parent)
    return HybridRun(cfg).run(overwrite=True, progress=False).summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fs", type=float, default=1000.0, help="length of each run, fs")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-hybrid-dft"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    full = run(args.out / "full", args.fs, forecaster=False)
    hybrid = run(args.out / "hybrid", args.fs, forecaster=True)
    print(f"# hybrid vs full DFT (PBE/STO-3G water, {args.fs:g} fs), {date.today()}, "
          f"{platform.processor() or platform.machine()}\n")
    print("| run | wall s | simulation | ML segment ends | monitors | total | saved | ML share | "
          "rollbacks | mean T (K) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, s in (("full simulation", full), ("hybrid", hybrid)):
        c = s["force_calls"]
        print(f"| {name} | {s['wall_time_s']:.1f} | {c['simulation']} | {c['ml_segment_ends']} | "
              f"{c['monitors']} | {c['total']} | {c['saved_fraction']:.1%} | "
              f"{s['ml_fraction']:.0%} | {s['rollbacks']} | {s['mean_temperature_K']:.0f} |")
    mon = hybrid["monitor_error_A"] or {}
    print(f"\nwall-time ratio hybrid / full: {hybrid['wall_time_s'] / full['wall_time_s']:.2f}; "
          f"monitored segments {mon.get('count', 0)}, error mean "
          f"{mon.get('mean', float('nan')):.3g} Å, max {mon.get('max', float('nan')):.3g} Å; "
          f"rejected forecasts {hybrid['rejected_forecasts']}")


if __name__ == "__main__":
    main()
