"""Where the shipped interpolators' error on Bussi data lies: speed along the path or not.

The Bussi thermostat rescales all velocities at every fine step, so a kick the network
misses shows first as a wrong speed along the path. Two tables, over the same windows:

1. For each interior frame, the network's position error minus its component along that
   frame's predicted velocity, with the best scalar per frame (an oracle: the speed error,
   if it were known), and with that scalar predicted from the window's total-energy change
   (the thermostat's net work over the window, known from the end frames: a least-squares
   slope per frame, fitted on the first half of the windows and scored on the second).
2. The "two-sum bridge": what is left for an interpolator that does not time the kicks.
   ASE's Bussi scales all velocities by exp(ε_k) before every fine step k, σ(ε) about
   sqrt(Δτ / (τ N_f)), measured here from the total-energy jumps (each is 2 ε_k K). Taken as
   free flight along the velocity, a window's kicks shift interior frame m along the path by
   Σ_{k<m} ε_k (m - k) Δτ. The end state fixes two sums of the kicks, the speed change Σ ε_k
   and the end's shift Σ ε_k (n - k) Δτ; conditioning on them leaves the kicks' timing, a
   Gaussian residual of known size: the expected MAE of an interpolator that recovers both
   sums and nothing more, printed beside the network's and the quintic spline's (all
   windows). The free-flight picture holds while the velocities turn little within Δt; to
   test it, the network's own error along the path, as a time shift (error · v / |v|², true
   v, rms over the windows), is compared with the bridge's, at mid-window and at each frame.
   Doing better means telling the kicks apart by the path's curvature, which takes the force
   field to about 0.1% (benchmarks/bussi_oracle.py --force-scale).

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bussi_error_structure.py \\
        --reference runs/ethanol-sgdml-300k-test/trajectory.traj
"""

from __future__ import annotations

import argparse
import platform
from datetime import date

import numpy as np

from hybridmd.interpolation.classical import hermite
from hybridmd.interpolation.windows import make_windows
from hybridmd.interpolator_file import load_interpolator
from hybridmd.readers import read_trajectory


def along(error: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """(B, F) each frame's error along its velocity, as a time shift in fs; both (B, F, 3N)."""
    return (error * velocity).sum(-1) / (velocity * velocity).sum(-1)


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
    parser.add_argument("--reference", required=True, help="a fine Bussi trajectory of ethanol")
    parser.add_argument("--model", nargs="+", help="interpolators (default: the shipped three)",
                        default=["ethanol-bilstm-5fs", "ethanol-bilstm-10fs",
                                 "ethanol-bilstm-20fs"])
    args = parser.parse_args()
    traj = read_trajectory(args.reference)
    if traj.energies is None:
        parser.error(f"{args.reference} has no energies: the total-energy change needs them")
    kinetic = traj.kinetic_energies
    total = traj.energies + kinetic
    sigma = float((np.diff(total) / (kinetic[:-1] + kinetic[1:])).std())
    structure, bridges, frames = [], [], []
    for name in args.model:
        model = load_interpolator(name)
        n = model.stride
        w = make_windows(traj, n, context=model.context)
        r, v = model.interpolate(w)
        error = (r - w.target_r)[:, 1:-1].reshape(len(w), n - 1, -1)
        vel = v[:, 1:-1].reshape(error.shape)
        speed = along(error, vel)
        start, end = w.start, w.start + n
        work = (total[end] - total[start]) / (0.5 * (kinetic[start] + kinetic[end]))
        half = len(w) // 2
        slope = (speed[:half] * work[:half, None]).sum(0) / (work[:half] ** 2).sum()
        test = slice(half, None)
        best = error[test] - speed[test, :, None] * vel[test]
        from_work = error[test] - (slope[None] * work[test, None])[..., None] * vel[test]
        maes = [np.abs(x).mean() for x in (error[test], best, from_work)]
        structure.append(f"| {name} | {n * traj.dt_fs:g} | {len(w) - half} | "
                         + " | ".join(f"{m:.2e}" for m in maes) + " |")

        quintic = np.abs(hermite(w, order=5)[0] - w.target_r)[:, 1:-1].mean()
        network = np.abs(error).mean()
        shift = sigma * two_sum_residual(n, traj.dt_fs)  # (n-1,) fs
        true_v = w.target_v[:, 1:-1]  # (B, n-1, N, 3) Å/fs
        bridge = np.sqrt(2 / np.pi) * (shift[:, None, None] * np.abs(true_v)).mean()
        mid = n // 2 - 1
        shift_net = np.sqrt((along(error, true_v.reshape(error.shape)) ** 2).mean(0))
        bridges.append(f"| {name} | {n * traj.dt_fs:g} | {len(w)} | {quintic:.2e} | "
                       f"{network:.2e} | {bridge:.2e} | {network / bridge:.2f} | "
                       f"{shift_net[mid]:.4f} | {shift[mid]:.4f} |")
        frames.append(f"# {name}, frames 1-{n - 1}: network {np.round(shift_net, 4).tolist()}"
                      f"\n#   bridge {np.round(shift, 4).tolist()}")
    print(f"# {date.today()}, {platform.processor() or platform.machine()}: {args.reference}")
    print("\n# position MAE (Å) on interior frames, second half of the windows")
    print("| model | Δt (fs) | windows | network | minus best speed error per frame "
          "| minus speed error from the energy change |")
    print("|---|---|---|---|---|---|")
    print("\n".join(structure))
    print(f"\n# the two-sum bridge: kick σ = {sigma:.4f} per {traj.dt_fs:g} fs step (from the "
          "total-energy jumps); position MAE (Å) on interior frames, all windows")
    print("| model | Δt (fs) | windows | quintic Hermite | network | two-sum bridge "
          "| network ÷ bridge | shift along the path, mid-window (fs): network | bridge |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(bridges))
    print("\n# shift along the path (fs) at each interior frame, rms over the windows")
    print("\n".join(frames))


if __name__ == "__main__":
    main()
