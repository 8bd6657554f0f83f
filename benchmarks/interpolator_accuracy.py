"""Interpolator accuracy: every network kind against the classical baselines, same windows.

For each coarse spacing Δt, trains each requested network kind on the training trajectory
with the same wall-time budget, then scores it and the linear, cubic and quintic Hermite
baselines on the held-out trajectory's non-overlapping windows (context 2, the same windows
for all). Prints one Markdown table per Δt and writes all scores as JSON.

Data: `workflows/generate_training_data.sh` (ethanol, sGDML, 300 K, Bussi 100 fs, 0.5 fs;
training seed 1, 50 ps; test seed 2, 10 ps).

Run, for example:
  OMP_NUM_THREADS=2 .venv/bin/python benchmarks/interpolator_accuracy.py \\
      --dt 10 --models bilstm-residual bi-lstm lstm --minutes 10
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

from hybridmd.config import TrainConfig, parse_config
from hybridmd.interpolation.evaluate import evaluate, format_table
from hybridmd.interpolator_file import load_interpolator
from hybridmd.readers import read_trajectory
from hybridmd.training import train

ALL_MODELS = ["bilstm-residual", "lstm-residual", "bi-lstm", "lstm", "bi-rnn", "rnn",
              "bi-node", "node", "bi-hnn", "hnn"]


def train_one(kind: str, stride: int, train_path: Path, out: Path, minutes: float,
              threads: int | None, schedule: str, hyper: dict) -> Path:
    """Train ``kind`` at ``stride`` within ``minutes``; return the checkpoint path."""
    cfg = parse_config({
        "data": {"trajectories": [{"path": str(train_path)}]},
        "model": {"kind": kind, "stride": stride, "context": 2, "hyperparameters": hyper},
        "training": {"max_minutes": minutes, "max_epochs": 100000, "threads": threads,
                     "schedule": schedule, "early_stopping_patience": 1000,
                     "batch_size": 128},
        "output": {"checkpoint": str(out / f"{kind}-n{stride}.pt")},
    }, TrainConfig, "benchmark")
    if schedule == "cosine":
        # cosine needs an epoch count: measure one epoch, then fit the budget
        probe = train(cfg.model_copy(update={"training": cfg.training.model_copy(
            update={"max_epochs": 1})}), progress=False)
        epochs = max(2, int(minutes / max(probe.minutes, 1e-3)))
        cfg.training.max_epochs = epochs
    result = train(cfg, progress=False)
    logging.info("%s n=%d: %d epochs, %.1f min, best validation MAE %.2e Å", kind, stride,
                 result.epochs, result.minutes, result.best_val_position_mae)
    return result.checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path,
                        default=Path("runs/ethanol-sgdml-300k/trajectory.traj"))
    parser.add_argument("--test", type=Path,
                        default=Path("runs/ethanol-sgdml-300k-test/trajectory.traj"))
    parser.add_argument("--dt", type=float, nargs="+", default=[5, 10, 20],
                        help="coarse spacings in fs")
    parser.add_argument("--models", nargs="+", default=ALL_MODELS, choices=ALL_MODELS)
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per model")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--schedule", choices=["plateau", "cosine"], default="plateau")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-interpolators"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    test = read_trajectory(args.test)
    print(f"# {date.today()}, {platform.node()}, train {args.train}, test {args.test}, "
          f"{args.minutes:g} min per model, schedule {args.schedule}, hidden {args.hidden}")
    results = []
    for dt in args.dt:
        stride = round(dt / test.dt_fs)
        models = []
        for kind in args.models:
            start = time.perf_counter()
            ckpt = train_one(kind, stride, args.train, args.out, args.minutes, args.threads,
                             args.schedule, {"hidden": args.hidden})
            logging.info("trained %s in %.1f min", kind, (time.perf_counter() - start) / 60)
            models.append(load_interpolator(ckpt))
        scores = evaluate(models, test, strides=(stride,))
        print(f"\n## Δt = {dt:g} fs (stride {stride})\n")
        print(format_table(scores), flush=True)
        results += [asdict(s) for s in scores]
        (args.out / "scores.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
