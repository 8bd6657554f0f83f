"""Attach hybridmd's interpolator to a plain ASE molecular dynamics run.

Ethanol with the shipped sGDML model, 0.5 fs steps of ASE's VelocityVerlet (NVE) or, with
``--bussi``, the Bussi thermostat at 300 K; the observer hands every 20th step to the shipped
10 fs residual Bi-LSTM, which writes the 0.5 fs trajectory in between. ``--reference`` also
writes every MD step, to compare the interpolated frames with the ones the MD computed.

    python workflows/ase_observer.py                   # 400 steps -> fine.traj
    python workflows/ase_observer.py --steps 2000 --bussi --output runs/fine.traj
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import units
from ase.io import read
from ase.io.trajectory import Trajectory
from ase.md.bussi import Bussi
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from hybridmd.ase_interface import InterpolatingObserver
from hybridmd.calculators import build_calculator
from hybridmd.config import SGDMLConfig
from hybridmd.data import geometry_path

TIMESTEP_FS = 0.5
INTERVAL = 20  # MD steps per coarse frame: the network's Δt = 20 × 0.5 fs = 10 fs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="MD steps of 0.5 fs")
    parser.add_argument("--bussi", action="store_true", help="Bussi thermostat at 300 K")
    parser.add_argument("--output", type=Path, default=Path("fine.traj"))
    parser.add_argument("--reference", type=Path, help="also write every MD step here")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    atoms = read(geometry_path("ethanol"))
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), atoms)
    rng = np.random.default_rng(args.seed)
    thermalize_momenta(atoms, temperature_K=300, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    dt = TIMESTEP_FS * units.fs
    dyn = (Bussi(atoms, dt, temperature_K=300, taut=100 * units.fs, rng=rng) if args.bussi
           else VelocityVerlet(atoms, timestep=dt))
    reference = Trajectory(str(args.reference), "w", atoms) if args.reference else None
    if reference is not None:
        dyn.attach(reference.write, interval=1)

    with InterpolatingObserver(atoms, dyn, "ethanol-bilstm-10fs", args.output) as observer:
        dyn.attach(observer, interval=INTERVAL)
        dyn.run(args.steps)
    if reference is not None:
        reference.close()
    print(f"{args.steps} MD steps of {TIMESTEP_FS} fs ({'Bussi' if args.bussi else 'NVE'}): "
          f"{observer.coarse_frames} coarse frames -> {observer.frames_written} fine frames "
          f"in {args.output}")
    if reference is not None:
        fine = read(args.output, index=":")
        md = read(args.reference, index=f":{len(fine)}")
        error = np.abs(np.array([a.positions for a in fine]) - [a.positions for a in md]).mean()
        print(f"every MD step in {args.reference}; interpolated positions are {error:.1e} Å "
              "from them on average")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
