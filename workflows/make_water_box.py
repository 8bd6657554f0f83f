"""A periodic box of N water molecules at a given density, randomly placed and turned; or a
molecule solvated in such a box; or a cluster of N waters in vacuum.

Molecules are placed one by one at random positions and orientations, each kept only where its
oxygen is at least ``--min-oo`` Å from every other oxygen (minimum image) and, with
``--solute``, ``--min-solute`` Å from every atom of the solute (placed first, at the centre;
the box then holds the waters' and the solute's mass at ``--density``). ``--cluster``: the
waters fill a sphere of the volume that density gives, with no cell. Relax the result with the
calculator of the run before MD (workflows/relax_structure.py keeps the cell):

    .venv/bin/python workflows/make_water_box.py 32 -o inputs/structures/water32-box.extxyz
    .venv/bin/python workflows/make_water_box.py 30 --solute CH3OH -o methanol-in-water.extxyz
    .venv/bin/python workflows/make_water_box.py 8 --cluster -o water8-cluster.xyz
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


def water_box(n: int, density_g_cm3: float, min_oo: float, seed: int,
              solute: str | None = None, min_solute: float = 2.4,
              cluster: bool = False) -> Atoms:
    """``n`` waters (and ``solute``, an ase.build.molecule name) in a cube of the volume that
    gives ``density_g_cm3``, or in a sphere of that volume without a cell (``cluster``)."""
    placed = molecule(solute) if solute else Atoms()
    grams = (n * WATER_G_MOL + placed.get_masses().sum()) / mol
    volume = grams / density_g_cm3 * 1e24
    side = volume ** (1 / 3)
    radius = (3 * volume / (4 * np.pi)) ** (1 / 3)
    rng = np.random.default_rng(seed)
    water = molecule("H2O")
    water.positions -= water.positions[0]
    box = Atoms() if cluster else Atoms(cell=[side] * 3, pbc=True)
    if solute:
        placed.positions += box.cell.sum(axis=0) / 2 - placed.get_center_of_mass()
        box += placed
    oxygens: list[np.ndarray] = []
    for _ in range(100000):
        if len(oxygens) == n:
            return box
        if cluster:
            centre = rng.uniform(-radius, radius, 3)
            if np.linalg.norm(centre) > radius:
                continue
        else:
            centre = rng.uniform(0, side, 3)
        if oxygens and _distances(centre, np.array(oxygens), box).min() < min_oo:
            continue
        if solute and _distances(centre, box.positions[:len(placed)], box).min() < min_solute:
            continue
        w = water.copy()
        w.rotate(rng.uniform(0, 360), rng.normal(size=3))
        w.positions += centre
        box += w
        oxygens.append(centre)
    raise RuntimeError(f"placed {len(oxygens)} of {n} waters; lower --min-oo or the density")


def _distances(point: np.ndarray, others: np.ndarray, box: Atoms) -> np.ndarray:
    """Distances from ``point`` to ``others`` (minimum image in a periodic box)."""
    _, d = get_distances([point], others, cell=box.cell, pbc=box.pbc)
    return d[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, help="water molecules")
    parser.add_argument("-o", "--output", type=Path, required=True, help=".extxyz to write")
    parser.add_argument("--density", type=float, default=1.0, help="g/cm³")
    parser.add_argument("--min-oo", type=float, default=2.6, help="closest O-O, Å")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solute", help="a molecule at the centre (an ase.build.molecule "
                        "name, e.g. CH3OH)")
    parser.add_argument("--min-solute", type=float, default=2.4,
                        help="closest water oxygen to a solute atom, Å")
    parser.add_argument("--cluster", action="store_true",
                        help="a cluster in vacuum: the waters in a sphere, no cell")
    args = parser.parse_args()
    box = water_box(args.n, args.density, args.min_oo, args.seed, args.solute,
                    args.min_solute, args.cluster)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    box.write(args.output, format="extxyz")
    where = ("a cluster" if args.cluster else
             f"a {box.cell.lengths()[0]:.3f} Å cube")
    what = f"{args.solute} and {args.n} waters" if args.solute else f"{args.n} waters"
    print(f"{what} in {where} -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
