"""The hybrid loop on both engines: ASE's velocity Verlet and i-PI, from the same seed.

The quickstart's input (ethanol, shipped sGDML model, forecaster and Bi-LSTM) runs once with
``engine: ase`` and once with ``engine: ipi``; two full simulations (seeds 1 and 2) give the
reference and the floor of the distribution scores. Prints the expensive calls by purpose, the
monitored error, mean temperature and wall clock of each run, and the distribution scores of
both hybrid runs against both full runs next to the floor.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/engines.py --ps 10
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from datetime import date
from pathlib import Path

import numpy as np
import yaml
from cold_start import print_scores, run

from hybridmd.analysis.compare import distribution_scores
from hybridmd.readers import read_trajectory

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, default=REPO / "inputs" / "quickstart.yaml")
    parser.add_argument("--ps", type=float, default=10.0, help="length of each run, ps")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-engines"))
    parser.add_argument("--resume", action="store_true", help="continue stopped runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = yaml.safe_load(args.input.read_text())
    base = args.input.resolve().parent
    runs = {"full A (ASE)": ("full-a", 1, False, "ase"),
            "full B (ASE)": ("full-b", 2, False, "ase"),
            "hybrid, ASE engine": ("hybrid-ase", 1, True, "ase"),
            "hybrid, i-PI engine": ("hybrid-ipi", 1, True, "ipi")}
    summaries, traj = {}, {}
    for name, (folder, seed, hybrid, engine) in runs.items():
        spec = {**data, "engine": {"type": engine}}
        summaries[name] = run(spec, args.out / folder, args.ps, seed, hybrid, base, args.resume)
        traj[name] = read_trajectory(args.out / folder / "fine.traj")

    print(f"# the hybrid loop on both engines, {args.input.name}, {args.ps:g} ps, "
          f"{date.today()}, {platform.processor() or platform.machine()}\n")
    print("| run | simulation | ML ends | monitors | total | saved | ML share | "
          "monitored error mean / max (Å) | mean T (K) | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, s in summaries.items():
        c, m = s["force_calls"], s["monitor_error_A"] or {}
        error = (f"{m['mean']:.4f} / {m['max']:.4f}" if m.get("count") else "–")
        print(f"| {name} | {c['simulation']} | {c['ml_segment_ends']} | {c['monitors']} | "
              f"{c['total']} | {c['saved_fraction']:.1%} | {s['ml_fraction']:.0%} | {error} | "
              f"{s['mean_temperature_K']:.1f} | {s['wall_time_s']:.0f} |")
    a = read_trajectory(args.out / "hybrid-ase" / "coarse.traj").positions
    b = read_trajectory(args.out / "hybrid-ipi" / "coarse.traj").positions
    n = min(len(a), len(b))
    same = (summaries["hybrid, ASE engine"]["force_calls"]
            == summaries["hybrid, i-PI engine"]["force_calls"])
    print(f"\nsame calls on both engines: {same}"
          f"; coarse frames apart by at most {np.abs(a[:n] - b[:n]).max():.2e} Å "
          f"(first frame apart by more than 1e-3 Å: "
          f"{next((k for k in range(n) if np.abs(a[k] - b[k]).max() > 1e-3), 'none')})\n")

    comparisons = {"full A vs full B (floor)": distribution_scores(traj["full A (ASE)"],
                                                                   traj["full B (ASE)"])}
    for hybrid in ("hybrid, ASE engine", "hybrid, i-PI engine"):
        for full in ("full A (ASE)", "full B (ASE)"):
            comparisons[f"{hybrid} vs {full}"] = distribution_scores(traj[full], traj[hybrid])
    print_scores(comparisons)
    (args.out / "scores.json").write_text(json.dumps(
        {"summaries": summaries, "comparisons": comparisons}, indent=1, default=float))


if __name__ == "__main__":
    main()
