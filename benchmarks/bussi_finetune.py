"""Does a network that already knows the Newtonian dynamics learn the Bussi kicks' timing?

Fine-tunes a shipped interpolator (trained on NVE segments, 8.7e-6 Å on Newtonian data at
5 fs) on the Bussi runs of a recipe, keeping the shipped model's canonicalisation, and prints
the Bussi validation loss and position MAE before and after. `hybridmd train` has no
warm start: a run from scratch is the recipe itself. Score the result on the held-out
Bussi data with benchmarks/bussi_error_structure.py --model OUT.

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bussi_finetune.py \\
        inputs/train-ethanol-bilstm-5fs-bussi.yaml --from ethanol-bilstm-5fs \\
        --out runs/finetune-5fs-bussi/model.pt --minutes 13
"""

from __future__ import annotations

import argparse
import logging
import platform
from datetime import date
from pathlib import Path

from hybridmd.config import TrainConfig, load_config
from hybridmd.interpolator_file import load_interpolator
from hybridmd.training import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="a training recipe whose data are the Bussi runs")
    parser.add_argument("--from", dest="start", default="ethanol-bilstm-5fs",
                        help="the interpolator to start from (shipped name or path)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--minutes", type=float, default=13)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cfg = load_config(args.recipe, TrainConfig)
    cfg = cfg.model_copy(update={
        "training": cfg.training.model_copy(update={
            "learning_rate": args.learning_rate, "max_minutes": args.minutes,
            "threads": args.threads}),
        "output": cfg.output.model_copy(update={"checkpoint": args.out})})
    trainer = Trainer(cfg)
    start = load_interpolator(args.start)
    if start.stride != cfg.model.stride or start.context != cfg.model.context:
        parser.error(f"{args.start} has stride {start.stride} and context {start.context}, "
                     f"the recipe {cfg.model.stride} and {cfg.model.context}")
    trainer.canon = start.canon
    trainer.net.load_state_dict(start.net.state_dict())
    before = trainer.validate()
    result = trainer.run()
    print(f"# {date.today()}, {platform.processor() or platform.machine()}: {args.start} "
          f"fine-tuned on {args.recipe}'s data, {result.epochs} epochs in {result.minutes:.1f} "
          f"min -> {args.out}")
    print("| | validation loss | validation position MAE (Å) |")
    print("|---|---|---|")
    print(f"| {args.start} | {before[0]:.4f} | {before[1]:.3e} |")
    print(f"| fine-tuned | {result.best_val_loss:.4f} | {result.best_val_position_mae:.3e} |")


if __name__ == "__main__":
    main()
