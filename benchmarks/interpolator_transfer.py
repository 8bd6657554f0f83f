"""Transfer to another force field: the shipped 10 fs ethanol interpolator fine-tuned on 1, 2
and 5 ps of GFN2-xTB ethanol, against the model unchanged and one trained from scratch.

The data (workflows/generate_canonical_nve_data.py --only xtb, made here when missing): NVE
segments of GFN2-xTB ethanol from 300 K canonical starts, 5 x 1 ps to train on (the first 1, 2
or 5) and 20 x 0.5 ps held out (another Bussi seed). Fine-tuning follows
inputs/train-ethanol-bilstm-10fs-xtb-finetune.yaml (learning rate 3e-4); the model from scratch gets
the shipped recipe's network and learning rate (1e-3) and the same pinned epochs. Scored on the
held-out xTB segments (position MAE, ratio to the quintic spline) and, to show what fine-tuning
forgets, on the sGDML 300 K segments of benchmarks/interpolators_by_temperature.py.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/interpolator_transfer.py
      (about an hour on one core: six trainings of 9-11 min; kept in --out and reused)
"""

from __future__ import annotations

import argparse
import logging
import platform
from datetime import date
from pathlib import Path

import yaml

from hybridmd.canonical_segments import canonical_nve_segments
from hybridmd.config import TrainConfig, parse_config
from hybridmd.interpolation.evaluate import evaluate
from hybridmd.interpolator_file import load_interpolator, read_checkpoint
from hybridmd.training import train

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "inputs" / "train-ethanol-bilstm-10fs-xtb-finetune.yaml"
SCRATCH = ROOT / "inputs" / "train-ethanol-bilstm-10fs.yaml"  #: the network and learning rate
XTB = {"type": "xtb", "method": "GFN2-xTB"}
LENGTHS_PS = (1, 2, 5)


def _train(start_from: str | None, segments: list[Path], out: Path) -> Path:
    """Train (or reuse) a 10 fs model on ``segments``: fine-tuned from ``start_from``, or
    from scratch with the shipped recipe's network and learning rate."""
    if out.exists():
        return out
    data = yaml.safe_load(RECIPE.read_text())
    data["data"]["trajectories"] = [{"path": str(p)} for p in segments]
    if start_from is None:
        scratch = yaml.safe_load(SCRATCH.read_text())
        data["model"]["hyperparameters"] = scratch["model"]["hyperparameters"]
        data["training"]["learning_rate"] = scratch["training"]["learning_rate"]
    data["output"] = {"checkpoint": str(out)}
    result = train(parse_config(data, TrainConfig, str(RECIPE)), progress=False,
                   start_from=start_from)
    logging.warning("%s: %d epochs, %.1f min", out.name, result.epochs, result.minutes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="start_from", default="ethanol-bilstm-10fs",
                        help="the network to fine-tune (shipped name or checkpoint)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-interpolator-transfer"))
    parser.add_argument("--data", type=Path, default=Path("runs/ethanol-xtb-nve"))
    parser.add_argument("--sgdml-segments", type=Path,
                        default=Path("runs/bench-interpolators-by-temperature"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    train_segments = canonical_nve_segments(300, 5, args.data, seed=9300, ps=1.0,
                                            calculator=XTB)
    held_out = canonical_nve_segments(300, 20, args.data, seed=9301, ps=0.5, calculator=XTB)
    paths = sorted((args.data / "nve-300K-seed9300").glob("seg-*/trajectory.traj"))
    assert len(paths) == len(train_segments)
    rows: list[tuple[str, str, Path | str]] = [("unchanged", "0", args.start_from)]
    for ps in LENGTHS_PS:
        for kind, start in (("fine-tuned", args.start_from), ("from scratch", None)):
            name = f"{'finetune' if start else 'scratch'}-{ps}ps.pt"
            rows.append((kind, str(ps), _train(start, paths[:ps], args.out / name)))
    models = [load_interpolator(spec) for _, _, spec in rows]
    sgdml = canonical_nve_segments(300, 20, args.sgdml_segments, seed=7300)
    on_xtb = evaluate(models, held_out, baselines=("linear", "cubic", "quintic"))
    on_sgdml = evaluate(models, sgdml, baselines=("quintic",))
    quintic = {"xtb": next(s for s in on_xtb if s.model.startswith("quintic")).position_mae,
               "sgdml": next(s for s in on_sgdml if s.model.startswith("quintic")).position_mae}
    nets = {"xtb": on_xtb[-len(models):], "sgdml": on_sgdml[-len(models):]}
    print(f"# transfer of {args.start_from} to GFN2-xTB ethanol, held-out NVE segments from "
          f"300 K starts, Δt = 10 fs, {date.today()}, {platform.processor() or platform.machine()}"
          "\n")
    for score in on_xtb[:-len(models)]:
        print(f"classical on xTB: {score.model}: {score.position_mae:.2e} Å")
    print("\n| model | xTB data (ps) | epochs | minutes | xTB MAE (Å) | ratio to quintic | "
          "sGDML 300 K MAE (Å) | ratio to quintic |")
    print("|---|---|---|---|---|---|---|---|")
    for (kind, ps, spec), x, s in zip(rows, nets["xtb"], nets["sgdml"], strict=True):
        meta = read_checkpoint(spec)["metadata"]
        epochs = meta.get("epochs", "")
        minutes = f"{meta['minutes']:.1f}" if kind != "unchanged" else ""
        print(f"| {kind} | {ps} | {epochs if kind != 'unchanged' else ''} | {minutes} | "
              f"{x.position_mae:.2e} | {x.position_mae / quintic['xtb']:.3f} | "
              f"{s.position_mae:.2e} | {s.position_mae / quintic['sgdml']:.3f} |")


if __name__ == "__main__":
    main()
