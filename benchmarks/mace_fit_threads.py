"""What a second thread buys a MACE fit: the same fit on 1 and on 2 torch threads.

One model of the shipped box settings (15 passes over 200 frames, seed 1) fitted to the frames
a cold-start run labeled (``--train``: its frames.npz, kcal/mol and Å as sGDML writes them),
once per thread count; printed: wall and CPU seconds, and the validation force error (the
same fit, so the same to rounding). Run it on an otherwise idle machine: the wall clock is
the point.

Run (after benchmarks/cold_start.py made the box runs of docs/benchmarks/condensed-phase.md;
about 6 minutes on two cores):
  .venv/bin/python benchmarks/mace_fit_threads.py --train runs/bench-water-box/hybrid-a/frames.npz
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
from ase.io import read

from hybridmd.hybrid.mace_force_field import MaceSettings, fit_mace
from hybridmd.units import KCAL_MOL

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="a run's frames.npz")
    parser.add_argument("--structure", type=Path,
                        default=REPO / "inputs" / "structures" / "water32-box-gfn1.extxyz",
                        help="the system's structure file (its cell)")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    data = np.load(args.train)
    atoms = read(args.structure)
    used = np.linspace(0, len(data["R"]) - 1, args.frames).astype(int)
    r, f, e = data["R"][used], data["F"][used] * KCAL_MOL, data["E"][used] * KCAL_MOL
    print(f"# one MACE model, 15 passes over {args.frames} frames of {len(atoms)} atoms, "
          f"{os.cpu_count()} cores, {platform.machine()}, {date.today()}\n")
    print("| torch threads | wall s | CPU s | validation force MAE eV/Å |")
    print("|---|---|---|---|")
    for threads in args.threads:
        settings = MaceSettings(committee=1, seed=1, threads=threads, epochs=15)
        wall, cpu = time.perf_counter(), time.process_time()
        model = fit_mace(r, f, e, atoms.numbers, settings, 1, cell=atoms.cell.array,
                         pbc=atoms.pbc)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"| {threads} | {wall:.0f} | {cpu:.0f} | {model.validation_force_mae:.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
