"""Does a learned MACE model rank a cluster's states as the calculator does? Energy errors by state.

A cold-start run of a cluster under single-point checks can drift to states its model puts too
low: the model is fitted to the run's own frames, and if it underestimates the energy of a
loosened cluster relative to a compact one, its dynamics loosens the cluster while every check
of forces passes. This script fits MACE variants (one model, one thread, seed 1, at most
``--max-frames`` evenly spread, as a run's learner) to the frames a cold-start run labeled
(``--run``: a benchmarks/cold_start.py folder; hybrid-a/frames.npz) and prints, per variant,
the fit's CPU seconds, the force error on the full simulations' frames, and the mean
model-minus-calculator energy (eV, whole system) on the run's frames in the order they were
labeled (first 100, up to 400, up to 800, the rest), and on full A's and full B's frames (every
5th coarse frame: the calculator's own states). The last column is the spread the model gives
between the run's latest states and full A's: zero when it ranks them as the calculator does.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mace_energy_bias.py \
          --run runs/bench-water8-checks          (about 15 min)
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from hybridmd.hybrid.mace_force_field import MaceSettings, fit_mace
from hybridmd.units import KCAL_MOL

#: name on the command line: (row label, MaceSettings changes)
VARIANTS: dict[str, tuple[str, dict]] = {
    "defaults": ("defaults (max_L 0, r_max 4.5 Å)", {}),
    "interactions3": ("3 interactions", {"interactions": 3}),
    "L1": ("max_L 1", {"max_L": 1}),
    "L1r6": ("max_L 1, r_max 6 Å", {"max_L": 1, "r_max": 6.0}),
    "L1r6c32": ("max_L 1, r_max 6 Å, 32 channels", {"max_L": 1, "r_max": 6.0, "channels": 32}),
    "L1r6k3": ("max_L 1, r_max 6 Å, correlation 3",
               {"max_L": 1, "r_max": 6.0, "correlation": 3}),
}
DEFAULT_VARIANTS = ("defaults", "interactions3", "L1", "L1r6")
GROUPS = ((0, 100), (100, 400), (400, 800), (800, None))


def energy_error(atoms: Atoms, positions: np.ndarray, energy: float) -> float:
    """The model's energy (``atoms.calc``) at ``positions`` minus the calculator's."""
    atoms.positions = positions
    return atoms.get_potential_energy() - energy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a cold_start.py folder")
    parser.add_argument("--max-frames", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                        default=list(DEFAULT_VARIANTS), help="the MACE variants to fit, in order")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    data = np.load(args.run / "hybrid-a" / "frames.npz")
    r, f, e, z = data["R"], data["F"] * KCAL_MOL, data["E"] * KCAL_MOL, data["z"]
    full = {name: read(args.run / name / "coarse.traj", "::5") for name in ("full-a", "full-b")}
    base = MaceSettings(committee=1, seed=1, threads=1, epochs=args.epochs)
    groups = [(lo, hi) for lo, hi in GROUPS if lo < len(r)]
    names = [f"frames {lo}-{hi or len(r)}" for lo, hi in groups]
    print(f"# {date.today()}, {platform.machine()}: {len(r)} frames of {args.run}, "
          f"{len(z)} atoms; {args.epochs} passes, at most {args.max_frames} frames a fit\n")
    print(f"| variant | fit CPU s | force MAE on full A, eV/Å | {' | '.join(names)} | full A | "
          "full B | latest minus full A |")
    print("|" + "---|" * (6 + len(names)))
    for name, change in (VARIANTS[key] for key in args.variants):
        t0 = time.process_time()
        model = fit_mace(r, f, e, z, replace(base, **change), version=1,
                         max_frames=args.max_frames)
        seconds = time.process_time() - t0
        atoms = Atoms(numbers=z)
        atoms.calc = model.calculators()[0]
        run_errors = [np.mean([energy_error(atoms, r[i], e[i]) for i in range(lo, hi or len(r), 4)])
                      for lo, hi in groups]
        full_errors, force = {}, []
        for key, frames in full.items():
            full_errors[key] = np.mean([energy_error(atoms, a.positions,
                                                     a.get_potential_energy())
                                        for a in frames])
            if key == "full-a":
                for a in frames:
                    atoms.positions = a.positions
                    force.append(np.abs(atoms.get_forces() - a.get_forces()).mean())
        cells = " | ".join(f"{x:+.3f}" for x in run_errors)
        print(f"| {name} | {seconds:.0f} | {np.mean(force):.4f} | {cells} | "
              f"{full_errors['full-a']:+.3f} | {full_errors['full-b']:+.3f} | "
              f"{run_errors[-1] - full_errors['full-a']:+.3f} |", flush=True)
    print("\ncalculator's mean energy, eV: " + ", ".join(
        [f"{n} {e[lo:hi].mean():.3f}" for n, (lo, hi) in zip(names, groups, strict=True)]
        + [f"{k} {np.mean([a.get_potential_energy() for a in v]):.3f}"
           for k, v in full.items()]))


if __name__ == "__main__":
    main()
