"""A periodic box of liquid water: rigid TIP3P (ASE's calculator) in NVT at 300 K.

The test data of the periodic analyses (``tests/data/27h2o_tip3p_300k.npz``): 27 waters on a
cubic lattice at 0.997 g/cm³, randomly oriented, equilibrated with Langevin dynamics (2 ps),
then ``--frames`` frames ``--every`` steps apart (positions, velocities, the cell) written by
hybridmd:

    OMP_NUM_THREADS=1 .venv/bin/python workflows/water_box.py -o tests/data/27h2o_tip3p_300k.npz

About 0.2 s a step on one core (ASE's bond constraints dominate): 4 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.tip3p import TIP3P, angleHOH, rOH
from ase.constraints import FixBondLengths
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from hybridmd.readers import write_trajectory
from hybridmd.trajectory import Trajectory

#: g/cm³ of water at 300 K, and amu·cm³/(g·Å³) to turn it into amu/Å³
DENSITY = 0.997
AMU_PER_A3 = 1.0 / 1.66053906660


def water_lattice(n: int, rng: np.random.Generator) -> Atoms:
    """n³ randomly oriented waters on a cubic lattice filling a periodic cube at DENSITY."""
    half = np.radians(angleHOH) / 2
    monomer = [[0, 0, 0], [0, rOH * np.cos(half), rOH * np.sin(half)],
               [0, rOH * np.cos(half), -rOH * np.sin(half)]]
    mass = Atoms("OH2").get_masses().sum()
    side = (n**3 * mass / (DENSITY * AMU_PER_A3)) ** (1 / 3)
    atoms = Atoms(cell=[side] * 3, pbc=True)
    for site in np.ndindex(n, n, n):
        water = Atoms("OH2", positions=monomer)
        water.rotate(rng.uniform(0, 360), rng.normal(size=3))
        water.translate((np.array(site) + 0.5) * side / n)
        atoms += water
    return atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help=".npz (or .traj) to write")
    parser.add_argument("--n", type=int, default=3, help="waters per cube edge (default 3: 27)")
    parser.add_argument("--equilibrate-fs", type=float, default=2000.0)
    parser.add_argument("--frames", type=int, default=60, help="frames written")
    parser.add_argument("--every", type=int, default=2, help="MD steps between frames")
    parser.add_argument("--dt-fs", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    rng = np.random.default_rng(args.seed)
    atoms = water_lattice(args.n, rng)
    waters = len(atoms) // 3
    atoms.constraints = FixBondLengths(
        [(3 * i + j, 3 * i + (j + 1) % 3) for i in range(waters) for j in range(3)],
        tolerance=1e-7)
    atoms.calc = TIP3P(rc=atoms.cell.lengths().min() / 2 - 0.1)
    thermalize_momenta(atoms, temperature_K=300, rng=rng)
    md = Langevin(atoms, args.dt_fs * units.fs, temperature_K=300, friction=0.02 / units.fs,
                  fixcm=False, rng=rng)
    md.run(round(args.equilibrate_fs / args.dt_fs))
    positions, momenta = [], []
    for _ in range(args.frames):
        md.run(args.every)
        positions.append(atoms.get_positions())
        momenta.append(atoms.get_momenta())
    traj = Trajectory(numbers=atoms.numbers, positions=np.array(positions),
                      momenta=np.array(momenta), dt_fs=args.every * args.dt_fs,
                      masses=atoms.get_masses(), cell=atoms.cell.array, pbc=atoms.pbc)
    write_trajectory(traj, args.output)


if __name__ == "__main__":
    main()
