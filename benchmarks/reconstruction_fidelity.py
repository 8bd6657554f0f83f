"""Physical fidelity of a reconstruction: what the interpolator adds to the coarse trajectory.

The held-out reference is cut to every n-th frame (the coarse trajectory) and reconstructed by
a trained network and by the classical splines; each is scored against the reference with the
paper's observables: VDOS overlap (1 = identical), and Jensen-Shannon divergences (bits; 0 =
identical) of the pair-distance distribution h(r) and of the atomic speed distribution, plus the
position MAE. The coarse trajectory alone is scored on its own frames (its VDOS ends at the
coarse Nyquist wavenumber; faster modes fold back into it).

Data: `workflows/generate_training_data.sh` (held-out: runs/ethanol-sgdml-300k-test, seed 2);
model: the shipped ethanol-bilstm-20fs (recipe inputs/train-ethanol-bilstm-20fs.yaml) or any
checkpoint.

Run:  OMP_NUM_THREADS=2 .venv/bin/python benchmarks/reconstruction_fidelity.py \\
          --model ethanol-bilstm-20fs
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path

import numpy as np

from hybridmd.analysis.baseline import classical_reconstruction
from hybridmd.analysis.observables import (
    jensen_shannon,
    pair_distance_distribution,
    speed_distribution,
    vdos,
    vdos_overlap,
)
from hybridmd.interpolation.reconstruct import reconstruct
from hybridmd.interpolator_file import load_interpolator
from hybridmd.readers import read_trajectory
from hybridmd.trajectory import Trajectory


def score(ref: Trajectory, other: Trajectory, lag_fs: float) -> dict[str, float]:
    """The scores of ``other`` against ``ref`` (the position MAE where they share a grid)."""
    r_edges, v_edges = np.linspace(0.8, 4.0, 161), np.linspace(0.0, 0.12, 121)
    out = {
        "vdos_overlap": vdos_overlap(vdos(ref, max_lag=round(lag_fs / ref.dt_fs)),
                                     vdos(other, max_lag=round(lag_fs / other.dt_fs))),
        "hr_js_bits": jensen_shannon(pair_distance_distribution(ref, r_edges),
                                     pair_distance_distribution(other, r_edges)),
        "speed_js_bits": jensen_shannon(speed_distribution(ref, v_edges),
                                        speed_distribution(other, v_edges)),
    }
    if np.isclose(ref.dt_fs, other.dt_fs) and len(ref) == len(other):
        out["position_mae_A"] = float(np.abs(ref.positions - other.positions).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="interpolator checkpoint")
    parser.add_argument("--reference", type=Path,
                        default=Path("runs/ethanol-sgdml-300k-test/trajectory.traj"))
    parser.add_argument("--vdos-lag-fs", type=float, default=1000.0)
    parser.add_argument("--json", type=Path, help="write the scores here")
    args = parser.parse_args()

    reference = read_trajectory(args.reference)
    model = load_interpolator(args.model)
    n = model.stride
    coarse = reference.subsample(n)
    last = (len(coarse) - 1) * n + 1
    ref = reference.slice(0, last)
    lag = args.vdos_lag_fs
    rows = {
        f"{model.metadata['kind']} ({args.model.name})": score(ref, reconstruct(model, coarse),
                                                               lag),
        "quintic Hermite": score(ref, classical_reconstruction(ref, n, "quintic"), lag),
        "cubic Hermite": score(ref, classical_reconstruction(ref, n, "cubic"), lag),
        "linear": score(ref, classical_reconstruction(ref, n, "linear"), lag),
        # every n-th frame of the reference: h(r) and speeds are samples of the right
        # distributions; its spectrum ends at the coarse Nyquist wavenumber
        "coarse frames only": score(ref, coarse, lag),
    }
    dt = coarse.dt_fs
    print(f"# reconstruction fidelity at Δt = {dt:g} fs ({n} × {reference.dt_fs:g} fs), "
          f"{args.reference} ({len(ref)} frames), {date.today()}, "
          f"{platform.processor() or platform.machine()}\n")
    print("| reconstruction | VDOS overlap | h(r) JS (bits) | speed JS (bits) | position MAE (Å) |")
    print("|---|---|---|---|---|")
    for name, s in rows.items():
        mae = f"{s['position_mae_A']:.2e}" if "position_mae_A" in s else "-"
        print(f"| {name} | {s['vdos_overlap']:.4f} | {s['hr_js_bits']:.2e} | "
              f"{s['speed_js_bits']:.2e} | {mae} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
