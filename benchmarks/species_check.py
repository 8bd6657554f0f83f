"""The per-element temperature check on whole trajectories: how often it would refuse.

The hybrid loop refuses ML when an element's mean kinetic temperature over the last
``species_window`` ML segments drifts from what equipartition gives it (the rigid-body motion
removed: :mod:`hybridmd.hybrid.equipartition`) by more than its tolerance. This script applies
the rule to trajectories: full simulations, where nothing is wrong and every refusal is a false
alarm, and hybrid runs, where a refusal marks an element running hot or cold in ML. Windows of
``--window`` segment ends (every ``--stride`` fine frames), sliding by one segment as in a run;
"refused" counts the windows beyond the tolerance. For each element it prints its atoms n,
its share of the mean kinetic temperature over the whole trajectory (equipartition's share is
below 1 for heavy atoms far from the centre), the largest deviation of a window from
equipartition, the same in units of sqrt(2 / (3 n)) (one frame's relative spread of n atoms'
kinetic temperature), the windows today's rule refuses (at least ``SHARE_SPREAD`` units), and,
for comparison, the windows that the earlier rule refused: the configured tolerance alone,
against the element's share in the
first ``--reference`` fine frames (what a cold start had simulated when ML started).

Run:  .venv/bin/python benchmarks/species_check.py runs/bench-malonaldehyde/full-a/fine.traj ...
      (fine.traj of benchmarks/cold_start.py's runs; molecules and clusters in vacuum with
      centre of mass and rotation removed, periodic cells with the centre of mass)
"""

from __future__ import annotations

import argparse
import platform
from datetime import date
from pathlib import Path

import numpy as np
from ase.io import Trajectory

from hybridmd.config import SwitchConfig
from hybridmd.hybrid.equipartition import element_temperatures
from hybridmd.hybrid.switch import SHARE_SPREAD


def segment_ends(path: Path, stride: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each element's (temperature, equipartition's) at every segment end."""
    frames = Trajectory(str(path))
    first = frames[0]
    removed = "translation" if first.pbc.any() else "rotation"
    symbols, masses = first.get_chemical_symbols(), first.get_masses()
    rows = [element_temperatures(a.get_momenta(), a.positions, masses, symbols, removed)
            for a in (frames[i] for i in range(stride, len(frames), stride))]
    return {s: np.array([r[s] for r in rows]) for s in rows[0]}, symbols


def early_shares(path: Path, reference: int) -> dict[str, float]:
    """Each element's share of the kinetic temperature over the first ``reference`` frames."""
    frames = Trajectory(str(path))
    symbols = np.array(frames[0].get_chemical_symbols())
    masses = frames[0].get_masses()
    ek = np.array([0.5 * (frames[i].get_momenta() ** 2).sum(1) / masses
                   for i in range(1, reference)])
    return {s: float(ek[:, symbols == s].mean() / ek.mean()) for s in dict.fromkeys(symbols)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="fine.traj of full or hybrid runs")
    parser.add_argument("--reference", type=int, default=120,
                        help="fine frames whose shares were the earlier rule's reference")
    parser.add_argument("--stride", type=int, default=20, help="fine frames a segment")
    parser.add_argument("--window", type=int, default=SwitchConfig().species_window)
    args = parser.parse_args()
    tolerance = SwitchConfig().species_temperature
    print(f"# {date.today()}, {platform.node()}: windows of {args.window} segment ends; today: "
          f"against equipartition, tolerance at least {SHARE_SPREAD} sqrt(2/(3n)) and "
          f"{tolerance}; earlier: {tolerance} against the first {args.reference} frames' shares")
    print(f"{'run':<48} {'element':>7} {'n':>3} {'share':>6} {'largest':>8} {'units':>6} "
          f"{'refused today':>14} {'refused earlier':>16} {'windows':>8}")
    for path in args.runs:
        ends, symbols = segment_ends(path, args.stride)
        early = early_shares(path, args.reference)
        mean_all = sum(symbols.count(e) * ends[e][:, 0].mean() for e in ends) / len(symbols)
        for s, temps in ends.items():
            n = symbols.count(s)
            unit = np.sqrt(2 / (3 * n))
            windows = [temps[k:k + args.window] for k in range(len(temps) - args.window + 1)]
            today = np.array([abs(w[:, 0].mean() / w[:, 1].mean() - 1) for w in windows])
            # the earlier rule: the element's early share at the window's all-atom temperature
            all_atoms = [sum(symbols.count(e) * ends[e][k:k + args.window, 0]
                             for e in ends) / len(symbols)
                         for k in range(len(temps) - args.window + 1)]
            earlier = np.array([abs(w[:, 0].mean() / (early[s] * a.mean()) - 1)
                                for w, a in zip(windows, all_atoms, strict=True)])
            limit = max(tolerance, SHARE_SPREAD * unit)
            print(f"{str(path.parent):<48} {s:>7} {n:>3} {temps[:, 0].mean() / mean_all:>6.2f} "
                  f"{today.max():>8.2f} "
                  f"{today.max() / unit:>6.2f} {int((today > limit).sum()):>14} "
                  f"{int((earlier > tolerance).sum()):>16} {len(windows):>8}")


if __name__ == "__main__":
    main()
