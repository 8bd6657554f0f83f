"""Interpolators on real ab initio MD: the MP2 water hexamer (tests/data, 301 frames at 1 fs).

Trains the residual Bi-LSTM on the first 80% of the trajectory (its last 10% for validation)
and scores it with the classical baselines on the final 20%, at each coarse spacing. The data
are short (0.3 ps), so the numbers say whether training on real data works at all, not how
well a production model would do.

The methanol data set in tests/data (100 frames, no velocities, time step known only to about
4%) is too short and too uncertain in time for this; it is left out.

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/interpolator_aimd.py [--minutes 3]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from datetime import date
from pathlib import Path

from hybridmd.config import TrainConfig, parse_config
from hybridmd.interpolation.evaluate import evaluate, format_table
from hybridmd.interpolator_file import load_interpolator
from hybridmd.readers import read_trajectory, write_trajectory
from hybridmd.training import train

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "6h2o_orca_mp2_md_300k.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strides", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    water = read_trajectory(DATA, dt_fs=1.0)
    split = int(0.8 * len(water))
    print(f"# {date.today()}: MP2 water hexamer, train frames 0-{split - 1}, test "
          f"{split}-{len(water) - 1}, {args.minutes:g} min training per model")
    with tempfile.TemporaryDirectory() as tmp:
        train_path = Path(tmp) / "train.npz"
        write_trajectory(water.slice(0, split), train_path)
        for stride in args.strides:
            cfg = parse_config({
                "data": {"trajectories": [{"path": str(train_path)}]},
                "model": {"kind": "bilstm-residual", "stride": stride, "context": 1,
                          "hyperparameters": {"hidden": 64, "layers": 2}},
                "training": {"max_minutes": args.minutes, "max_epochs": 100000,
                             "batch_size": 64, "batches_per_epoch": 20,
                             "early_stopping_patience": 30},
                "output": {"checkpoint": str(Path(tmp) / f"water-n{stride}.pt")},
            }, TrainConfig, "aimd")
            result = train(cfg, progress=False)
            scores = evaluate([load_interpolator(result.checkpoint)], water.slice(split))
            print(f"\n## Δt = {stride} fs ({result.epochs} epochs, {result.minutes:.1f} min)\n")
            print(format_table(scores), flush=True)


if __name__ == "__main__":
    main()
