"""The per-element temperature check on the calculator's own dynamics: how often it would refuse.

The hybrid loop refuses ML when an element's share of the kinetic energy over the last
``species_window`` ML segments drifts from its share in the simulated frames (one element hot,
another cold). This script applies that rule to full simulations, where nothing is wrong, so
every refusal is a false alarm: windows of ``--window`` segment ends (every ``--stride`` fine
frames) against the shares of the first ``--reference`` fine frames (what a cold start has
simulated when ML starts). For each element it prints its atoms n, the largest deviation in
units of sqrt(2 / (3 n)) (one frame's relative spread of n atoms' kinetic temperature), and the
windows refused with the configured tolerance alone and with today's rule (at least
``SHARE_SPREAD`` units).

Run:  .venv/bin/python benchmarks/species_check.py runs/bench-malonaldehyde/full-a/fine.traj ...
      (the full runs of benchmarks/cold_start.py)
"""

from __future__ import annotations

import argparse
import platform
from datetime import date
from pathlib import Path

import numpy as np
from ase.io import Trajectory

from hybridmd.config import SwitchConfig
from hybridmd.hybrid.switch import SHARE_SPREAD


def element_energies(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Each fine frame's kinetic energy per atom, and the atoms' symbols."""
    frames = Trajectory(str(path))
    masses = frames[0].get_masses()
    ek = np.array([0.5 * (a.get_momenta() ** 2).sum(1) / masses for a in frames])
    return ek, np.array(frames[0].get_chemical_symbols())


def deviations(ek: np.ndarray, symbols: np.ndarray, reference: int, stride: int, window: int
               ) -> dict[str, list[float]]:
    """Each element's relative deviation, per window, from its reference share at the
    window's all-atom kinetic energy (the switch's rule)."""
    total = ek.mean(1)
    ends = np.arange(reference + stride, len(total), stride)
    out: dict[str, list[float]] = {}
    for s in dict.fromkeys(symbols):
        mine = ek[:, symbols == s].mean(1)
        share = mine[:reference].mean() / total[:reference].mean()
        out[s] = [float(mine[idx].mean() / (share * total[idx].mean()) - 1)
                  for idx in (ends[k:k + window] for k in range(0, len(ends) - window + 1,
                                                                window))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="full runs' fine.traj")
    parser.add_argument("--reference", type=int, default=120,
                        help="fine frames whose shares are the reference")
    parser.add_argument("--stride", type=int, default=20, help="fine frames a segment")
    parser.add_argument("--window", type=int, default=SwitchConfig().species_window)
    args = parser.parse_args()
    tolerance = SwitchConfig().species_temperature
    print(f"# {date.today()}, {platform.node()}: windows of {args.window} segment ends, "
          f"reference the first {args.reference} fine frames; tolerance {tolerance} alone and "
          f"at least {SHARE_SPREAD} sqrt(2/(3n))")
    print(f"{'run':<48} {'element':>7} {'n':>3} {'largest':>8} {'units':>6} "
          f"{'refused, 0.25':>14} {'refused, today':>15} {'windows':>8}")
    totals = [0, 0, 0]
    for path in args.runs:
        ek, symbols = element_energies(path)
        devs = deviations(ek, symbols, args.reference, args.stride, args.window)
        old = np.zeros(len(next(iter(devs.values()))), bool)
        new = old.copy()
        for s, d in devs.items():
            n = int((symbols == s).sum())
            unit = np.sqrt(2 / (3 * n))
            d = np.abs(d)
            old |= d > tolerance
            new |= d > max(tolerance, SHARE_SPREAD * unit)
            print(f"{str(path.parent):<48} {s:>7} {n:>3} {d.max():>8.2f} {d.max() / unit:>6.2f} "
                  f"{int((d > tolerance).sum()):>14} "
                  f"{int((d > max(tolerance, SHARE_SPREAD * unit)).sum()):>15} {len(d):>8}")
        totals = [totals[0] + int(old.sum()), totals[1] + int(new.sum()), totals[2] + len(old)]
    print(f"windows refused (any element): tolerance alone {totals[0]} of {totals[2]}, "
          f"today's rule {totals[1]} of {totals[2]}")


if __name__ == "__main__":
    main()
