"""How a cold-start run spends its calls on verification and learning: monitors or checks.

Malonaldehyde from cold, its sGDML model standing in for the expensive calculator (every call
counted), 300 K, 0.5 fs steps, segments of 10 fs, seed 1, the same length for every route:

- ``monitors``: the input before single-point checks: learning until 5 shadow forecasts in a
  row are within tolerance (first fit at 200 frames), then ML with 2% of the segments
  re-simulated at random and 3% chosen as the most uncertain (20 calls each);
- ``checks``: the same learning, the uncertain monitors replaced by single-point checks (one
  call at a segment's end: 5% at random, 10% the most uncertain, and every forecast whose
  predicted error is beyond ``disagreement_A``, checked instead of refused), 1% random
  monitors;
- ``early``: learning from the first fit (100 frames, refits every 60, one shadow forecast
  within tolerance), checks at every ML segment at first, halving every 5 passes down to 2%;
  a failed check simulates its segment, and ML comes back with the next regular fit and a
  shadow forecast that agrees (``refit_on_failure: false``, as in the three routes below);
- ``early+doubt``: the same, and a forecast whose predicted error is beyond
  ``disagreement_A`` is checked instead of refused: the error budget 0.05 Å at a segment's
  end, 0.5 eV/Å at a check;
- ``lean``: ``early+doubt`` without the uncertain share (a fixed tenth of the segments): the
  model's doubt is checked where it is beyond ``disagreement_A``, and the random share
  adapts;
- ``refit``: ``lean``, and a failed check refits at once with its frames and goes on in ML
  (``refit_on_failure``);
- ``first version``: ``refit`` from the first version on, no shadow forecast needed
  (``verified_segments: 0``): what inputs/malonaldehyde-cold-start.yaml ships;
- ``loose budget``: ``first version`` with twice the budget: 0.1 Å (``switch.tolerance_A``
  and ``disagreement_A``) and 1 eV/Å.

Prints per route: the expensive calls by purpose, saved against the full simulation (one call
a step), the call at which ML mode first held, the random audit's end error (monitored, mean /
max), the checks' force errors, rejected forecasts and the mean temperature.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/check_routes.py --ps 5   (two routes at a
      time; about 30 min on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path
from typing import Any

from hybridmd.background import run_all
from hybridmd.config import RunConfig, parse_config
from hybridmd.hybrid.session import HybridRun
from hybridmd.signals import stoppable_script

BASE: dict[str, Any] = {
    "system": {"molecule": "malonaldehyde"},
    "calculator": {"type": "sgdml", "model": "malonaldehyde"},
    "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "temperature_K": 300,
                 "tau_fs": 100, "seed": 1},
}
EARLY = {"learn": {"first_fit_frames": 100, "refit_frames": 60, "lag_segments": 1},
         "switch": {"verified_segments": 1, "max_ml_segments": 1000},
         "monitor": {"fraction": 0.01, "workers": 1}}
LEAN = {"fraction": 0.02, "halve_after": 5, "force_tolerance_eV_A": 0.5}
FIRST = {**EARLY, "switch": {**EARLY["switch"], "verified_segments": 0}}
ROUTES: dict[str, dict[str, Any]] = {
    "monitors": {"switch": {"max_ml_segments": 100},
                 "monitor": {"fraction": 0.02, "uncertain_fraction": 0.03, "workers": 1}},
    "checks": {"switch": {"max_ml_segments": 400},
               "monitor": {"fraction": 0.01, "workers": 1},
               "check": {"fraction": 0.05, "uncertain_fraction": 0.1, "doubtful": True,
                         "force_tolerance_eV_A": 0.5}},
    "early": {**EARLY, "check": {**LEAN, "uncertain_fraction": 0.1, "doubtful": False}},
    "early+doubt": {**EARLY, "check": {**LEAN, "uncertain_fraction": 0.1}},
    "lean": {**EARLY, "check": LEAN},
    "refit": {**EARLY, "check": {**LEAN, "refit_on_failure": True}},
    "first version": {**FIRST, "check": {**LEAN, "refit_on_failure": True}},
    "loose budget": {**FIRST, "switch": {**FIRST["switch"], "tolerance_A": 0.1,
                                         "disagreement_A": 0.1},
                     "check": {**LEAN, "force_tolerance_eV_A": 1.0, "refit_on_failure": True}},
}


def run_route(name: str, ps: float, out: Path) -> dict[str, Any]:
    """One route's run; its summary."""
    hybrid = {"stride": 20, "forecaster": "learn", "interpolator": "learn",
              **json.loads(json.dumps(ROUTES[name]))}
    data = {**BASE, "dynamics": {**BASE["dynamics"], "duration_fs": 1000 * ps},
            "hybrid": hybrid, "output": {"directory": str(out / name)}}
    cfg = parse_config(data, RunConfig, f"{name}.yaml")
    return HybridRun(cfg).run(overwrite=True, progress=False).summary


def _err(st: dict | None, unit: str) -> str:
    if not st or not st.get("count"):
        return "-"
    return f"{st['mean']:.3g} / {st['max']:.3g} {unit} ({st['count']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ps", type=float, default=5.0, help="length of each run, ps")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-check-routes"))
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), choices=list(ROUTES),
                        help="the routes to run (those run before into --out are kept)")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    done = run_all({name: (run_route, (name, args.ps, args.out)) for name in args.routes},
                   args.processes)
    # routes run before (another --routes) are kept, and printed in the table's order
    path = args.out / "summaries.json"
    summaries = {**(json.loads(path.read_text()) if path.is_file() else {}), **done}
    summaries = {name: summaries[name] for name in ROUTES if name in summaries}
    path.write_text(json.dumps(summaries, indent=1))

    print(f"# verification and learning routes, malonaldehyde from cold, sGDML as the "
          f"expensive calculator, 300 K, {args.ps:g} ps each, {date.today()}, "
          f"{platform.processor() or platform.machine()}\n")
    print("| route | simulation | monitors | checks | total | saved | calls/ps | ML first held "
          "at call | ML share | audit end error, Å mean / max (n) | check force error, eV/Å "
          "mean / max (n) | rejected | rollbacks | mean T (K) |")
    print("|---|" + "---|" * 13)
    for name, s in summaries.items():
        c = s["force_calls"]
        rejected = ", ".join(f"{k}: {v}" for k, v in s["rejected_forecasts"].items()) or "-"
        print(f"| {name} | {c['simulation']} | {c['monitors']} | {c['checks']} | {c['total']} "
              f"| {c['saved_fraction']:.1%} | {s['calls_per_ps']:.0f} | "
              f"{s['learning']['ml_first_at_call']} | {s['ml_fraction']:.0%} | "
              f"{_err(s['monitor_error_A'], 'Å')} | "
              f"{_err(s['check_force_error_eV_A'], 'eV/Å')} | {rejected} | {s['rollbacks']} | "
              f"{s['mean_temperature_K']:.1f} |")


if __name__ == "__main__":
    stoppable_script(main, "stopped, no process left; the same command starts the runs again")
