"""Cold start on other molecules: the malonaldehyde cold-start input, run on each MD17 molecule.

The input of ``inputs/malonaldehyde-cold-start.yaml`` unchanged but for the molecule: its start
geometry and its sGDML model (from ``../shared/data/sgdml``, the eight MD17 models) as the
expensive calculator, every call counted. Nothing was trained for any of them beforehand and
no setting was tuned per molecule. One hybrid run per molecule (300 K, 5 ps by default); the
full simulation's cost is its step count (one call a step), so it is not run here
(``benchmarks/cold_start.py`` runs it beside the hybrid run, with the distribution scores).

Prints per molecule: atoms, the expensive calls by purpose (single-point checks included),
the saved fraction, the ML share, the call at which ML mode first held, the learned version
and frames fitted to, rollbacks, monitored errors (random and uncertain), the checks' force
errors, mean temperature against the target, wall clock and the learner's time.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cold_start_molecules.py --ps 5
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from datetime import date
from pathlib import Path

import yaml
from ase.io import read

from hybridmd.background import run_all
from hybridmd.config import RunConfig, parse_config
from hybridmd.hybrid.session import HybridRun
from hybridmd.signals import stoppable_script

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "sgdml"
# the MD17 models with a start geometry in the shared data (paracetamol has none)
GEOMETRIES = {"aspirin": "aspirin", "ethanol": "ethanol", "malonaldehyde": "malonaldehyde",
              "naphthalene": "naphthalene", "salicylic_acid": "salicylic", "toluene": "toluene",
              "uracil": "uracil"}


def run_molecule(data: dict, name: str, out: Path, ps: float, force_field: str) -> dict:
    """One cold-start run of ``name`` (its shared model and geometry) into ``out``, learning
    ``force_field`` (auto, sgdml or mace)."""
    data = json.loads(json.dumps(data))
    data["hybrid"].setdefault("learn", {})["force_field"] = force_field
    data["system"] = {"file": str(SHARED / "geometries" / f"{GEOMETRIES[name]}.xyz")}
    data["calculator"] = {"type": "sgdml", "model": str(SHARED / "models" / f"{name}.npz")}
    data["dynamics"]["duration_fs"] = 1000 * ps
    data["output"] = {"directory": str(out)}
    cfg = parse_config(data, RunConfig, f"{name}.yaml", base_dir=REPO / "inputs")
    return HybridRun(cfg).run(overwrite=True, progress=False).summary


def _err(st: dict | None) -> str:
    st = st or {}
    if not st.get("count"):
        return "-"
    return f"{st['mean']:.4f} / {st['max']:.4f} ({st['count']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path,
                        default=REPO / "inputs" / "malonaldehyde-cold-start.yaml")
    parser.add_argument("--ps", type=float, default=5.0, help="length of each run, ps")
    parser.add_argument("--molecules", nargs="+", default=list(GEOMETRIES),
                        choices=list(GEOMETRIES))
    parser.add_argument("--force-field", choices=("auto", "sgdml", "mace"), default="auto",
                        help="what the runs learn (hybrid.learn.force_field)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-cold-start-molecules"))
    parser.add_argument("--processes", type=int, default=1,
                        help="molecules run at a time (each with its learner process)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not SHARED.is_dir():
        raise SystemExit(f"error: {SHARED} not found; this benchmark needs the shared MD17 "
                         "models and geometries (../shared/data/sgdml beside the repository)")
    data = yaml.safe_load(args.input.read_text())
    summaries = run_all({name: (run_molecule, (data, name, args.out / name, args.ps,
                                               args.force_field))
                         for name in args.molecules}, args.processes)
    (args.out / "summaries.json").write_text(json.dumps(summaries, indent=1))

    print(f"# cold start on the MD17 molecules, sGDML as the expensive calculator, learning "
          f"{args.force_field}, {data['dynamics']['temperature_K']:g} K, {args.ps:g} ps each, "
          f"input "
          f"{args.input.name}, {date.today()}, {platform.processor() or platform.machine()}\n")
    print("| molecule | atoms | simulation | monitors | checks | total | full simulation | "
          "saved | ML share | ML first held at call | version, frames fitted | rollbacks | "
          "monitored error random, Å mean / max (n) | uncertain, Å mean / max (n) | "
          "check force error, eV/Å mean / max (n) | mean T (K) | wall s | learner s |")
    print("|---|" + "---|" * 17)
    for name, s in summaries.items():
        c, learning = s["force_calls"], s["learning"]
        atoms = len(read(SHARED / "geometries" / f"{GEOMETRIES[name]}.xyz"))
        print(f"| {name} | {atoms} | {c['simulation']} | {c['monitors']} | "
              f"{c.get('checks', 0)} | {c['total']} | "
              f"{c['full_simulation']} | {c['saved_fraction']:.1%} | {s['ml_fraction']:.0%} | "
              f"{learning['ml_first_at_call']} | {learning['version']}, "
              f"{learning['fitted_to']} | {s['rollbacks']} | {_err(s['monitor_error_A'])} | "
              f"{_err(s['uncertain_monitor_error_A'])} | "
              f"{_err(s.get('check_force_error_eV_A'))} | {s['mean_temperature_K']:.1f} | "
              f"{s['wall_time_s']:.0f} | {learning['learner_s']:.0f} |")


if __name__ == "__main__":
    stoppable_script(main, "stopped, no process left; the same command starts the runs again")
