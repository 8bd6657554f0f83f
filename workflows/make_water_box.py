"""A periodic box of N water molecules at a given density, randomly placed and turned.

Molecules are placed one by one at random positions and orientations, each kept only where its
oxygen is at least ``--min-oo`` Å from every other oxygen (minimum image); relax the result
with the calculator of the run before MD (workflows/relax_structure.py keeps the cell):

    .venv/bin/python workflows/make_water_box.py 32 -o inputs/structures/water32-box.extxyz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.geometry import get_distances
from ase.units import mol

WATER_G_MOL = 18.015


def water_box(n: int, density_g_cm3: float, min_oo: float, seed: int) -> Atoms:
    """``n`` waters in a cube of the volume that gives ``density_g_cm3``."""
    side = (n * WATER_G_MOL / mol / density_g_cm3 * 1e24) ** (1 / 3)
    rng = np.random.default_rng(seed)
    water = molecule("H2O")
    water.positions -= water.positions[0]
    box = Atoms(cell=[side] * 3, pbc=True)
    oxygens: list[np.ndarray] = []
    for _ in range(100000):
        if len(oxygens) == n:
            return box
        centre = rng.uniform(0, side, 3)
        if oxygens:
            _, d = get_distances([centre], oxygens, cell=box.cell, pbc=True)
            if d.min() < min_oo:
                continue
        w = water.copy()
        w.rotate(rng.uniform(0, 360), rng.normal(size=3))
        w.positions += centre
        box += w
        oxygens.append(centre)
    raise RuntimeError(f"placed {len(oxygens)} of {n} waters; lower --min-oo or the density")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, help="water molecules")
    parser.add_argument("-o", "--output", type=Path, required=True, help=".extxyz to write")
    parser.add_argument("--density", type=float, default=1.0, help="g/cm³")
    parser.add_argument("--min-oo", type=float, default=2.6, help="closest O-O, Å")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    box = water_box(args.n, args.density, args.min_oo, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    box.write(args.output, format="extxyz")
    print(f"{args.n} waters in a {box.cell.lengths()[0]:.3f} Å cube -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
