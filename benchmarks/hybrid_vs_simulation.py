"""The hybrid loop against the full simulation: force calls, wall time, and the physics.

Runs one input (ethanol, sGDML, 300 K, Bussi at the 10 fs segment boundaries, 0.5 fs steps) three
times with `hybridmd run`: the full simulation (no forecaster: every segment simulated) with
seed A, the same with seed B, and the hybrid loop with seed A (shipped forecaster, shipped
Bi-LSTM interpolator, monitors re-simulating a fraction of the ML segments). Chaos separates any
two runs within a picosecond, so the hybrid fine trajectory is compared with the full simulation
through distributions: VDOS overlap, pair-distance (h(r)) and speed distributions (Jensen-Shannon
divergence, bits) and the mean temperature. The two full simulations give the statistical floor
of those scores for this length.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hybrid_vs_simulation.py --ps 20
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from datetime import date
from pathlib import Path

from hybridmd.analysis.compare import VACF_LAGS_FS as LAGS_FS
from hybridmd.analysis.compare import distribution_scores as scores
from hybridmd.analysis.observables import kinetic_temperature
from hybridmd.config import RunConfig, parse_config
from hybridmd.hybrid.session import HybridRun
from hybridmd.readers import read_trajectory


def run(out: Path, ps: float, seed: int, forecaster: str | None, fraction: float,
        workers: int) -> dict:
    cfg = parse_config({
        "system": {"molecule": "ethanol"},
        "calculator": {"type": "sgdml", "model": "ethanol"},
        "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "duration_fs": 1000 * ps,
                     "temperature_K": 300, "tau_fs": 100, "seed": seed},
        "hybrid": {"stride": 20, "interpolator": "ethanol-bilstm-10fs",
                   "forecaster": forecaster, "transport": "process",
                   "monitor": {"fraction": fraction, "workers": workers}},
        "output": {"directory": str(out)},
    }, RunConfig, "bench.yaml")
    return HybridRun(cfg).run(overwrite=True, progress=False).summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ps", type=float, default=20.0, help="length of each run, ps")
    parser.add_argument("--fraction", type=float, default=0.1, help="monitored ML share")
    parser.add_argument("--workers", type=int, default=1, help="monitor processes")
    parser.add_argument("--forecaster", default="ethanol-forecaster-10fs")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-hybrid"))
    parser.add_argument("--reuse-full", action="store_true",
                        help="take the two full simulations from an earlier run of this script")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.reuse_full:
        full_a, full_b = (json.loads((args.out / name / "summary.json").read_text())
                          for name in ("full-a", "full-b"))
    else:
        full_a = run(args.out / "full-a", args.ps, 1, None, 0.0, 0)
        full_b = run(args.out / "full-b", args.ps, 2, None, 0.0, 0)
    hybrid = run(args.out / "hybrid-a", args.ps, 1, args.forecaster, args.fraction,
                 args.workers)
    traj = {name: read_trajectory(args.out / name / "fine.traj")
            for name in ("full-a", "full-b", "hybrid-a")}
    floor = scores(traj["full-a"], traj["full-b"])
    versus_a = scores(traj["full-a"], traj["hybrid-a"])
    versus_b = scores(traj["full-b"], traj["hybrid-a"])

    calls = hybrid["force_calls"]
    print(f"# hybrid vs full simulation, ethanol sGDML 300 K, {args.ps:g} ps, "
          f"{date.today()}, {platform.processor() or platform.machine()}\n")
    print("| run | simulation | ML segment ends | monitors | total | saved | wall s | "
          "mean T (K) | ML share | rollbacks |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, s in (("full A", full_a), ("full B", full_b), ("hybrid A", hybrid)):
        c = s["force_calls"]
        print(f"| {name} | {c['simulation']} | {c['ml_segment_ends']} | {c['monitors']} | "
              f"{c['total']} | {c['saved_fraction']:.1%} | {s['wall_time_s']:.1f} | "
              f"{s['mean_temperature_K']:.1f} | {s['ml_fraction']:.0%} | {s['rollbacks']} |")
    print(f"\nwall-clock ratio hybrid / full A: {hybrid['wall_time_s'] / full_a['wall_time_s']:.2f}"
          f"; expensive calls {calls['total']} vs {calls['full_simulation']}")
    mon = hybrid["monitor_error_A"] or {}
    print(f"monitored ML segments: {mon.get('count', 0)}, end-position error (largest atom) "
          f"mean {mon.get('mean', float('nan')):.3g} Å, p95 {mon.get('p95', float('nan')):.3g}"
          f" Å, max {mon.get('max', float('nan')):.3g} Å")
    print(f"rejected forecasts: {hybrid['rejected_forecasts']}\n")
    heads = " | ".join(f"VDOS overlap, VACF {lag:g} fs" for lag in LAGS_FS)
    print(f"| comparison | {heads} | h(r) JS (bits) | speed JS (bits) |")
    print("|---|" + "---|" * (len(LAGS_FS) + 2))
    for name, s in (("full A vs full B (floor)", floor), ("hybrid A vs full A", versus_a),
                    ("hybrid A vs full B", versus_b)):
        overlaps = " | ".join(f"{s[f'vdos_overlap_{lag:g}fs']:.4f}" for lag in LAGS_FS)
        print(f"| {name} | {overlaps} | {s['hr_js_bits']:.2e} | {s['speed_js_bits']:.2e} |")
    temps = {k: kinetic_temperature(t) for k, t in traj.items()}
    print("\nkinetic temperature of the fine trajectories (internal degrees of freedom, as "
          "the summaries): "
          + ", ".join(f"{k} {v:.1f} K" for k, v in temps.items()))
    (args.out / "scores.json").write_text(json.dumps(
        {"full_a": full_a, "full_b": full_b, "hybrid": hybrid, "floor": floor,
         "hybrid_vs_full_a": versus_a, "hybrid_vs_full_b": versus_b,
         "fine_temperatures": temps}, indent=1))


if __name__ == "__main__":
    main()
