"""Where the shipped interpolators' error on Bussi data lies: speed along the path or not.

The Bussi thermostat rescales all velocities at every fine step, so a kick the network
misses shows first as a wrong speed along the path. For each interior frame this script
removes from the network's position error its component along that frame's predicted
velocity, with the best scalar per frame (an oracle: the speed error, if it were known),
and with that scalar predicted from the window's total-energy change (the thermostat's
net work over the window, known from the end frames: a least-squares slope per frame,
fitted on the first half of the windows and scored on the second).

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bussi_error_structure.py \\
        --reference runs/ethanol-sgdml-300k-test/trajectory.traj
"""

from __future__ import annotations

import argparse
import platform
from datetime import date

import numpy as np

from hybridmd.checkpoint import load_interpolator
from hybridmd.interpolation.windows import make_windows
from hybridmd.readers import read_trajectory


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
    print(f"# {date.today()}, {platform.processor() or platform.machine()}: {args.reference}; "
          "position MAE (Å) on interior frames, second half of the windows")
    print("| model | Δt (fs) | windows | network | minus best speed error per frame "
          "| minus speed error from the energy change |")
    print("|---|---|---|---|---|---|")
    for name in args.model:
        model = load_interpolator(name)
        w = make_windows(traj, model.stride, context=model.context)
        r, v = model.interpolate(w)
        error = (r - w.target_r)[:, 1:-1].reshape(len(w), model.stride - 1, -1)
        vel = v[:, 1:-1].reshape(error.shape)
        speed = (error * vel).sum(-1) / (vel * vel).sum(-1)  # (windows, frames)
        start, end = w.start, w.start + model.stride
        work = (total[end] - total[start]) / (0.5 * (kinetic[start] + kinetic[end]))
        half = len(w) // 2
        slope = (speed[:half] * work[:half, None]).sum(0) / (work[:half] ** 2).sum()
        test = slice(half, None)
        best = error[test] - speed[test, :, None] * vel[test]
        from_work = error[test] - (slope[None] * work[test, None])[..., None] * vel[test]
        maes = [np.abs(x).mean() for x in (error[test], best, from_work)]
        print(f"| {name} | {model.stride * traj.dt_fs:g} | {len(w) - half} | "
              + " | ".join(f"{m:.2e}" for m in maes) + " |", flush=True)


if __name__ == "__main__":
    main()
