"""How well can any interpolator do on Bussi-thermostatted data? The exact force field as oracle.

The Bussi thermostat rescales all velocities by a random factor at every fine step (with
τ = 100 fs and 21 degrees of freedom, about 1.5% per 0.5 fs step): kicks inside a window
that its end frames cannot reveal. This script measures that floor with the very force field
that made the data: for each window it integrates Newton's equations (velocity Verlet, the
same 0.5 fs step, no thermostat) forward from x(t) and backward from x(t + Δt), and blends the
two with λ = k/n, the paper's bi-directional construction with a perfect network. Whatever
error remains comes from the thermostat's kicks (and the blend), not from a lack of
knowledge of the physics. The quintic spline on the same windows is printed beside it.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/thermostat_noise_floor.py \\
        --reference runs/ethanol-sgdml-300k-test/trajectory.traj [--windows 100]
"""

from __future__ import annotations

import argparse
import platform
from datetime import date

import numpy as np
from ase import Atoms
from ase.md.verlet import VelocityVerlet

from hybridmd.calculators import build_calculator
from hybridmd.config import SGDMLConfig
from hybridmd.interpolation.classical import hermite
from hybridmd.interpolation.windows import make_windows
from hybridmd.readers import read_trajectory
from hybridmd.units import FS


def integrate(atoms: Atoms, r: np.ndarray, v: np.ndarray, steps: int,
              dt_fs: float) -> np.ndarray:
    """Positions (steps + 1, N, 3) of NVE velocity Verlet from r (Å), v (Å/fs)."""
    atoms.positions = r
    atoms.set_velocities(v / FS)
    out = [atoms.positions.copy()]
    dyn = VelocityVerlet(atoms, timestep=dt_fs * FS)
    for _ in range(steps):
        dyn.run(1)
        out.append(atoms.positions.copy())
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a fine Bussi trajectory of ethanol")
    parser.add_argument("--model", default="ethanol", help="the sGDML model that made it")
    parser.add_argument("--dt", type=float, nargs="+", default=[5, 10, 20], help="Δt in fs")
    parser.add_argument("--windows", type=int, default=100, help="windows per Δt")
    args = parser.parse_args()
    traj = read_trajectory(args.reference)
    atoms = Atoms(numbers=traj.numbers, positions=traj.positions[0], masses=traj.masses)
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model=args.model), atoms)
    print(f"# {date.today()}, {platform.processor() or platform.machine()}: {args.reference}, "
          f"{args.windows} evenly spaced windows per Δt; position MAE (Å) on interior frames")
    if traj.energies is not None:  # the thermostat's work per step shows in the total energy
        kinetic = 0.5 * (traj.masses[None, :, None] * (traj.velocities / FS) ** 2).sum((1, 2))
        jumps = np.diff(traj.energies + kinetic)
        print(f"# total energy change per fine step: std {jumps.std():.2e} eV = "
              f"{jumps.std() / kinetic.mean():.1%} of the mean kinetic energy")
    print("| Δt (fs) | quintic Hermite | NVE forward from x(t) | NVE backward from x(t+Δt) "
          "| bi-directional blend (exact forces) |")
    print("|---|---|---|---|---|")
    for dt in args.dt:
        stride = int(round(dt / traj.dt_fs))
        windows = make_windows(traj, stride, context=1)
        pick = np.linspace(0, len(windows) - 1, args.windows).astype(int)
        w = windows.subset(pick)
        quintic, _ = hermite(w, 5)
        fwd = np.array([integrate(atoms, w.r[i, 0], w.v[i, 0], stride, traj.dt_fs)
                        for i in range(len(w))])
        bwd = np.array([integrate(atoms, w.r[i, 1], -w.v[i, 1], stride, traj.dt_fs)[::-1]
                        for i in range(len(w))])
        lam = (np.arange(stride + 1) / stride)[None, :, None, None]
        blend = (1 - lam) * fwd + lam * bwd

        maes = [float(np.abs(p - w.target_r)[:, 1:-1].mean()) for p in (quintic, fwd, bwd, blend)]
        print(f"| {dt:g} | " + " | ".join(f"{m:.2e}" for m in maes) + " |", flush=True)


if __name__ == "__main__":
    main()
