"""How much of the Bussi error is left for an interpolator that does not time the kicks.

ASE's Bussi thermostat scales all velocities by exp(ε_k) before every fine step k, ε_k
random with a standard deviation σ of about sqrt(Δτ / (τ N_f)). To first order, and with the
kicks' effect taken as free flight along the velocity, a window's kicks move interior frame m
by v_m Σ_{k<m} ε_k (m - k) Δτ. The end state fixes two sums of the kicks: the speed change
Σ ε_k and the shift along the path Σ ε_k (n - k) Δτ. What they leave open is the kicks'
timing, a Gaussian residual whose size follows from conditioning the ε_k on the two sums:
the expected position MAE of an interpolator that recovers both sums exactly and knows
nothing more of the kicks (the "two-sum bridge"). It is printed beside the shipped networks'
and the quintic spline's MAE on the same windows, σ measured from the data's total-energy
jumps (each step's jump is 2 ε_k K). The free-flight picture holds while the velocities turn
little within Δt; to test it, the networks' own error along the path, as a time shift
(error · v / |v|²), is compared with the bridge's frame by frame (rms over the windows).

Doing better means telling the kicks apart by the path's curvature inside the window, which
takes the force field to about 0.1% (benchmarks/bussi_oracle.py --force-scale).

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bussi_bridge.py \\
        --reference runs/ethanol-sgdml-300k-test/trajectory.traj
"""

from __future__ import annotations

import argparse
import platform
from datetime import date

import numpy as np

from hybridmd.checkpoint import load_interpolator
from hybridmd.interpolation.classical import hermite
from hybridmd.interpolation.windows import make_windows
from hybridmd.readers import read_trajectory
from hybridmd.trajectory import Trajectory


def kick_sigma(traj: Trajectory) -> float:
    """σ of the per-step log velocity scale, from the total-energy jumps ΔE = 2 ε K."""
    kinetic = traj.kinetic_energies
    total = traj.energies + kinetic
    eps = np.diff(total) / (kinetic[:-1] + kinetic[1:])
    return float(eps.std())


def two_sum_residual(n: int, dt_fs: float) -> np.ndarray:
    """(n - 1,) norm of each interior frame's kick weights (m - k)_+ Δτ after projecting out
    the two sums the end state fixes: σ times it is the frame's residual shift (fs)."""
    k = np.arange(n)
    fixed = np.stack([np.ones(n), (n - k) * dt_fs], axis=1)  # (n, 2)
    weights = np.stack([np.clip(m - k, 0, None) * dt_fs for m in range(1, n)])  # (n-1, n)
    projected = weights - weights @ fixed @ np.linalg.pinv(fixed)
    return np.linalg.norm(projected, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a fine Bussi trajectory with energies")
    parser.add_argument("--model", nargs="+", help="interpolators (default: the shipped three)",
                        default=["ethanol-bilstm-5fs", "ethanol-bilstm-10fs",
                                 "ethanol-bilstm-20fs"])
    args = parser.parse_args()
    traj = read_trajectory(args.reference)
    if traj.energies is None:
        parser.error(f"{args.reference} has no energies: σ comes from the total-energy jumps")
    sigma = kick_sigma(traj)
    print(f"# {date.today()}, {platform.processor() or platform.machine()}: {args.reference}; "
          f"kick σ = {sigma:.4f} per {traj.dt_fs:g} fs step (from the total-energy jumps); "
          "position MAE (Å) on interior frames, all windows")
    print("| model | Δt (fs) | windows | quintic Hermite | network | two-sum bridge "
          "| network ÷ bridge | shift along the path, mid-window (fs): network | bridge |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.model:
        model = load_interpolator(name)
        n = model.stride
        w = make_windows(traj, n, context=model.context)
        r, _ = model.interpolate(w)
        network = np.abs(r - w.target_r)[:, 1:-1].mean()
        quintic = np.abs(hermite(w, order=5)[0] - w.target_r)[:, 1:-1].mean()
        shift = sigma * two_sum_residual(n, traj.dt_fs)  # (n-1,) fs
        speed = np.abs(w.target_v[:, 1:-1])  # (B, n-1, N, 3) Å/fs
        bridge = np.sqrt(2 / np.pi) * (shift[None, :, None, None] * speed).mean()
        error = (r - w.target_r)[:, 1:-1].reshape(len(w), n - 1, -1)
        vel = w.target_v[:, 1:-1].reshape(error.shape)
        along = (error * vel).sum(-1) / (vel * vel).sum(-1)  # (B, n-1) fs
        mid = n // 2 - 1
        print(f"| {name} | {n * traj.dt_fs:g} | {len(w)} | {quintic:.2e} | {network:.2e} | "
              f"{bridge:.2e} | {network / bridge:.2f} | {np.sqrt((along[:, mid] ** 2).mean()):.4f} "
              f"| {shift[mid]:.4f} |", flush=True)


if __name__ == "__main__":
    main()
