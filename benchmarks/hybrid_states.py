"""What the expensive calculator makes of the configurations a hybrid run's ML segments made.

For a folder of benchmarks/cold_start.py (full-a, full-b, ... and hybrid-a) this prints:

- the calculator's potential energy of the coarse frames (every 10th from ``--from-ps`` on) of
  each run: mean, standard deviation and the standard error of the mean. A learned model whose
  ensemble sits where the calculator's energy is higher leaves the run strained: handed back
  to the calculator, that energy turns into motion;
- the calculator alone (velocity Verlet with the input's Bussi thermostat, 0.5 fs), ``--ps``
  ps from full A's and from the hybrid's coarse frame at each of ``--frames``, with two
  thermostat seeds: the largest gap between groups of atoms (``Cell.gap``; a molecule leaving
  a cluster widens it) and where it ends.

Run (after benchmarks/cold_start.py made runs/bench-water8-v5; about 10 minutes on one core):
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hybrid_states.py \
      --input inputs/water8-cluster-cold-start.yaml --out runs/bench-water8-v5 --frames 340 350
"""

from __future__ import annotations

import argparse
import platform
from datetime import date
from pathlib import Path

import numpy as np
import yaml
from ase.io.trajectory import Trajectory
from ase.md.bussi import Bussi
from ase.units import fs

from hybridmd.calculators import build_calculator, close_calculator
from hybridmd.config import RunConfig, parse_config
from hybridmd.periodic import Cell


def runs(out: Path) -> dict[str, str]:
    """The folder's runs, named as cold_start.py names them: every full run, then hybrid A."""
    fulls = sorted(p.name for p in out.glob("full-?") if p.is_dir())
    return {**{f"full {name[-1].upper()}": name for name in fulls}, "hybrid A": "hybrid-a"}


def potential_energies(cfg: RunConfig, path: Path, first: int) -> np.ndarray:
    """The calculator's potential energy (eV) of every 10th coarse frame from ``first``."""
    frames = Trajectory(str(path))
    out = []
    calc = None
    for k in range(first, len(frames), 10):
        atoms = frames[k]
        calc = calc or build_calculator(cfg.calculator, atoms)
        atoms.calc = calc
        out.append(atoms.get_potential_energy())
    close_calculator(calc)
    return np.array(out)


def calculator_alone(cfg: RunConfig, path: Path, index: int, seed: int, ps: float,
                     ) -> tuple[float, float]:
    """Largest and last gap (Å, every 50 fs) of ``ps`` of the calculator's own dynamics from
    coarse frame ``index`` of ``path``."""
    atoms = Trajectory(str(path))[index]
    atoms.calc = build_calculator(cfg.calculator, atoms)
    cell = Cell.of(atoms)
    dyn = cfg.dynamics
    md = Bussi(atoms, 0.5 * fs, temperature_K=dyn.temperature_K, taut=dyn.tau_fs * fs,
               rng=np.random.default_rng(seed))
    gaps = []
    for _ in range(int(round(ps * 1000 / 50))):
        md.run(100)
        gaps.append(cell.gap(atoms.positions, cell.gap_span))
    close_calculator(atoms.calc)
    return max(gaps), gaps[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="a cold_start.py folder")
    parser.add_argument("--from-ps", type=float, default=1.0)
    parser.add_argument("--frames", type=int, nargs="*", default=[340, 350],
                        help="coarse frames to start the calculator alone from (none: skip)")
    parser.add_argument("--ps", type=float, default=1.5)
    args = parser.parse_args()
    data = yaml.safe_load(args.input.read_text())
    cfg = parse_config(data, RunConfig, args.input.name, base_dir=args.input.resolve().parent)
    stride_fs = cfg.hybrid.stride * cfg.dynamics.timestep_fs
    first = int(round(args.from_ps * 1000 / stride_fs))

    print(f"# the calculator on a hybrid run's configurations, {args.out}, {date.today()}, "
          f"{platform.processor() or platform.machine()}\n")
    print(f"| run | frames | potential energy from {args.from_ps:g} ps, mean (eV) | sd (eV) | "
          "standard error (eV) | mean minus full A's (eV) |")
    print("|---|---|---|---|---|---|")
    means, folders = {}, runs(args.out)
    for name, folder in folders.items():
        e = potential_energies(cfg, args.out / folder / "coarse.traj", first)
        means[name] = e.mean()
        print(f"| {name} | {len(e)} | {e.mean():.3f} | {e.std():.3f} | "
              f"{e.std() / np.sqrt(len(e)):.3f} | {e.mean() - means['full A']:+.3f} |",
              flush=True)
    fulls = [m for name, m in means.items() if name.startswith("full")]
    if len(fulls) > 2:
        print(f"\nfull runs' means {min(fulls):.3f} to {max(fulls):.3f} eV; hybrid A "
              f"{means['hybrid A']:.3f} eV")

    if not args.frames:
        return
    print(f"\n| from | coarse frame | thermostat seed | largest gap in {args.ps:g} ps (Å) | "
          "last (Å) |")
    print("|---|---|---|---|---|")
    for name in ("full A", "hybrid A"):
        for index in args.frames:
            for seed in (1, 2):
                big, last = calculator_alone(cfg, args.out / folders[name] / "coarse.traj", index,
                                             seed, args.ps)
                print(f"| {name} | {index} | {seed} | {big:.2f} | {last:.2f} |", flush=True)


if __name__ == "__main__":
    main()
