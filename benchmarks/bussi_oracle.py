"""What do the end frames of a Bussi window reveal? The exact force field as oracle.

The Bussi thermostat rescales all velocities by a random factor at every fine step (with
τ = 100 fs and 21 degrees of freedom, about 1.5% per 0.5 fs step): kicks inside a window
that no smooth interpolant knows. This script asks how much of the path the window's end
states x(t), x(t + Δt) still determine, using the very force field that made the data and
the same 0.5 fs velocity-Verlet step (ASE's Bussi scales the velocities, then takes a
velocity-Verlet step):
- forward / backward: Newton's equations from x(t), or back from x(t + Δt), no thermostat;
- λ blend: the two blended with λ = k/n, the paper's bi-directional construction with a
  perfect network;
- kick fit: the n per-step scale factors fitted (Gauss-Newton, finite-difference Jacobian)
  so that the thermostatted integration from x(t) lands on x(t + Δt). The kicks are n
  numbers and x(t + Δt) holds 6N, so the ends determine them: what remains is what an
  interpolator that knew the physics and the thermostat's form could not recover.
- with ``--force-scale``: the kick fit with the forces scaled by each factor, a dynamics model
  that is off by that fraction: how exactly an interpolator must know the force field that
  made the data to read the kicks from the ends.
The quintic spline on the same windows is printed beside them. Position MAE on the interior
frames, evenly spaced windows.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bussi_oracle.py \\
        --reference runs/ethanol-sgdml-300k-test/trajectory.traj [--windows 30] \\
        [--force-scale 1.001 1.01]
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from datetime import date

import numpy as np
from ase import Atoms

from hybridmd.calculators import build_calculator
from hybridmd.config import SGDMLConfig
from hybridmd.interpolation.classical import hermite
from hybridmd.interpolation.windows import make_windows
from hybridmd.readers import read_trajectory
from hybridmd.units import FS

Forces = Callable[[np.ndarray], np.ndarray]


def integrate(accel: Forces, r: np.ndarray, v: np.ndarray, scales: np.ndarray,
              dt_fs: float) -> tuple[np.ndarray, np.ndarray]:
    """r, v (n + 1, N, 3) in Å, Å/fs of velocity Verlet, velocities scaled by scales[k]
    before step k (as ASE's Bussi does); scales of ones is plain NVE."""
    rs, vs = [r], [v]
    a = accel(r)
    for scale in scales:
        v = v * scale + 0.5 * dt_fs * a
        r = r + dt_fs * v
        a = accel(r)
        v = v + 0.5 * dt_fs * a
        rs.append(r)
        vs.append(v)
    return np.array(rs), np.array(vs)


def fit_kicks(accel: Forces, r0: np.ndarray, v0: np.ndarray, r1: np.ndarray, v1: np.ndarray,
              steps: int, dt_fs: float, iterations: int = 3) -> np.ndarray:
    """Positions (n + 1, N, 3) of the thermostatted path from (r0, v0) whose per-step log
    scale factors make it end at (r1, v1): Gauss-Newton on the end-state mismatch, in units
    of 1e-3 Å and 1e-3 Å per step, with a weak ridge (a log scale of 1.5 costs as much as a
    1e-3 Å mismatch) that keeps the steps bounded where kicks at adjacent steps act alike."""
    def mismatch(log_scales: np.ndarray) -> np.ndarray:
        r, v = integrate(accel, r0, v0, np.exp(log_scales), dt_fs)
        return np.concatenate([(r[-1] - r1).ravel() / 1e-3,
                               dt_fs * (v[-1] - v1).ravel() / 1e-3, log_scales / 1.5])

    log_scales, h = np.zeros(steps), 1e-4
    for _ in range(iterations):
        base = mismatch(log_scales)
        jacobian = np.stack([(mismatch(log_scales + h * np.eye(steps)[k]) - base) / h
                             for k in range(steps)], axis=1)
        log_scales = log_scales - np.linalg.lstsq(jacobian, base, rcond=None)[0]
    return integrate(accel, r0, v0, np.exp(log_scales), dt_fs)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a fine Bussi trajectory of ethanol")
    parser.add_argument("--model", default="ethanol", help="the sGDML model that made it")
    parser.add_argument("--dt", type=float, nargs="+", default=[5, 10, 20], help="Δt in fs")
    parser.add_argument("--windows", type=int, default=30, help="windows per Δt")
    parser.add_argument("--force-scale", type=float, nargs="+", default=[],
                        help="also fit the kicks with the forces scaled by these factors")
    args = parser.parse_args()
    traj = read_trajectory(args.reference)
    atoms = Atoms(numbers=traj.numbers, positions=traj.positions[0], masses=traj.masses)
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model=args.model), atoms)
    per_mass = FS**2 / traj.masses[:, None]  # eV/Å -> Å/fs² for each atom

    def accel(r: np.ndarray) -> np.ndarray:
        atoms.positions = r
        return atoms.get_forces() * per_mass

    print(f"# {date.today()}, {platform.processor() or platform.machine()}: {args.reference}, "
          f"{args.windows} evenly spaced windows per Δt; position MAE (Å) on interior frames")
    if traj.energies is not None:  # the thermostat's work per step shows in the total energy
        kinetic = traj.kinetic_energies
        jumps = np.diff(traj.energies + kinetic)
        print(f"# total energy change per fine step: std {jumps.std():.2e} eV = "
              f"{jumps.std() / kinetic.mean():.1%} of the mean kinetic energy")
    scaled = "".join(f" kick fit (forces × {f:g}) |" for f in args.force_scale)
    print("| Δt (fs) | quintic Hermite | NVE forward from x(t) | NVE backward from x(t+Δt) "
          "| λ blend (exact forces) | kick fit (exact forces) |" + scaled)
    print("|---" * (6 + len(args.force_scale)) + "|")
    for dt in args.dt:
        stride = int(round(dt / traj.dt_fs))
        windows = make_windows(traj, stride, context=1)
        w = windows.subset(np.linspace(0, len(windows) - 1, args.windows).astype(int))
        quintic, _ = hermite(w, 5)
        plain = np.ones(stride)
        fwd = np.array([integrate(accel, w.r[i, 0], w.v[i, 0], plain, traj.dt_fs)[0]
                        for i in range(len(w))])
        bwd = np.array([integrate(accel, w.r[i, 1], -w.v[i, 1], plain, traj.dt_fs)[0][::-1]
                        for i in range(len(w))])
        lam = (np.arange(stride + 1) / stride)[None, :, None, None]
        blend = (1 - lam) * fwd + lam * bwd
        fits = [np.array([fit_kicks(lambda r, f=f: f * accel(r), w.r[i, 0], w.v[i, 0],
                                    w.r[i, 1], w.v[i, 1], stride, traj.dt_fs)
                          for i in range(len(w))]) for f in [1.0, *args.force_scale]]
        maes = [float(np.abs(p - w.target_r)[:, 1:-1].mean())
                for p in (quintic, fwd, bwd, blend, *fits)]
        print(f"| {dt:g} | " + " | ".join(f"{m:.2e}" for m in maes) + " |", flush=True)


if __name__ == "__main__":
    main()
