"""How a MACE version's settings trade fit time for accuracy in a liquid: the 32-water box.

Every variant is fitted (one model, one thread, seed 1) to the same frames a cold-start run
labeled (``--train``: the frames.npz its learner kept, GFN1-xTB, kcal/mol and Å as sGDML
writes them), ``--frames`` of them evenly spread, and tested against another run of the same
system (``--reference``: a full simulation's fine.traj, whose segment-start frames carry the
calculator's forces). Printed per variant:

- the fit's CPU seconds (one model on one thread; a version is a committee of three);
- force error on 60 segment-start frames of the reference: mean absolute (eV/Å, per
  component), and the largest per-atom error of a frame (median and 95th percentile over the
  frames: what a single-point check compares with ``check.force_tolerance_eV_A``);
- the forecast error of 24 segments of the reference (10 fs, 20 velocity-Verlet steps of
  0.5 fs from the reference's segment start): the largest atomic distance at the end
  (what ``switch.tolerance_A`` bounds: mean and 95th percentile), its mean over atoms, and
  how many of the 24 are within 0.05 Å.

Run (after benchmarks/cold_start.py has made the two runs of docs/benchmarks/condensed-phase.md):
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mace_fit_settings.py \
      --train runs/bench-water-box/hybrid-a/frames.npz \
      --reference runs/bench-water-box/full-a/fine.traj        (about 30 min)
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
from ase.io.trajectory import Trajectory
from ase.md.verlet import VelocityVerlet
from ase.units import fs

from hybridmd.hybrid.mace_force_field import MaceSettings, fit_mace
from hybridmd.units import KCAL_MOL

BASE = MaceSettings(committee=1, seed=1, threads=1)

#: name, settings, frames (None: --frames), warm refits on the same frames after the first fit
VARIANTS: list[tuple[str, MaceSettings, int | None, int]] = [
    ("defaults (16 channels, 5 passes)", BASE, None, 0),
    ("15 passes", replace(BASE, epochs=15), None, 0),
    ("5 passes, then 2 warm refits of 5", BASE, None, 2),
    ("twice the frames, 5 passes", BASE, 2, 0),
    ("32 channels", replace(BASE, channels=32), None, 0),
    ("max_L 1", replace(BASE, max_L=1), None, 0),
    ("r_max 5 Å", replace(BASE, r_max=5.0), None, 0),
]

SEGMENT_STEPS, DT_FS, TOLERANCE_A = 20, 0.5, 0.05


def _reference(path: Path) -> tuple[Trajectory, list[int]]:
    traj = Trajectory(str(path))
    starts = list(range(0, len(traj) - SEGMENT_STEPS, SEGMENT_STEPS))
    return traj, starts


def _score(model, traj: Trajectory, starts: list[int]) -> dict[str, float]:
    first = traj[0]
    atoms = Atoms(numbers=first.numbers, masses=first.get_masses(), cell=first.cell.array,
                  pbc=first.pbc)
    atoms.calc = model.calculators()[0]  # the main model, as a run integrates it
    mae, largest = [], []
    for i in np.array(starts)[np.linspace(0, len(starts) - 1, 60).astype(int)]:
        reference = traj[int(i)]
        atoms.positions = reference.positions
        err = atoms.get_forces() - reference.get_forces()
        mae.append(np.abs(err).mean())
        largest.append(np.linalg.norm(err, axis=1).max())
    seg_max, seg_mean = [], []
    for i in np.array(starts)[np.linspace(0, len(starts) - 1, 24).astype(int)]:
        start = traj[int(i)]
        atoms.positions = start.positions
        atoms.set_momenta(start.get_momenta())
        VelocityVerlet(atoms, timestep=DT_FS * fs).run(SEGMENT_STEPS)
        d = np.linalg.norm(atoms.positions - traj[int(i) + SEGMENT_STEPS].positions, axis=1)
        seg_max.append(d.max())
        seg_mean.append(d.mean())
    return {"mae": float(np.mean(mae)), "largest_median": float(np.median(largest)),
            "largest_p95": float(np.percentile(largest, 95)),
            "segment_mean": float(np.mean(seg_max)),
            "segment_p95": float(np.percentile(seg_max, 95)),
            "segment_atoms": float(np.mean(seg_mean)),
            "within": int(np.sum(np.array(seg_max) <= TOLERANCE_A))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="a run's frames.npz")
    parser.add_argument("--reference", type=Path, required=True, help="a full run's fine.traj")
    parser.add_argument("--frames", type=int, default=200, help="frames a fit uses")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    data = np.load(args.train)
    traj, starts = _reference(args.reference)
    first = traj[0]
    rows = []
    for name, settings, factor, warm in VARIANTS:
        n = args.frames * (factor or 1)
        used = np.linspace(0, len(data["R"]) - 1, n).astype(int)
        r, f, e = data["R"][used], data["F"][used] * KCAL_MOL, data["E"][used] * KCAL_MOL
        t0 = time.process_time()
        model = fit_mace(r, f, e, first.numbers, settings, 1, cell=first.cell.array, pbc=first.pbc)
        for k in range(warm):
            model = fit_mace(r, f, e, first.numbers, settings, 2 + k, cell=first.cell.array,
                             pbc=first.pbc, start_from=model)
        seconds = time.process_time() - t0
        s = _score(model, traj, starts)
        rows.append(f"| {name} | {n} | {seconds:.0f} | {s['mae']:.3f} | {s['largest_median']:.2f} "
                    f"| {s['largest_p95']:.2f} | {s['segment_mean']:.3f} | {s['segment_p95']:.3f} "
                    f"| {s['segment_atoms']:.4f} | {s['within']}/24 |")
        print(rows[-1], flush=True)
    print(f"\nMACE fit settings, {len(first)} atoms; trained on {args.train}, tested on "
          f"{args.reference}; {platform.machine()}, {date.today()}\n")
    print("| variant | frames | fit CPU s (one model) | force MAE eV/Å | largest atom error, "
          "median | p95 | 10 fs segment error Å, mean | p95 | mean over atoms | within 0.05 Å |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
