"""Ship a trained interpolator: copy its checkpoint to hybridmd/data/interpolators/NAME.pt.

Drops what is kept only to resume training (optimizer, RNG and last weights: about half the
file) and writes the data and output paths relative to the repository, so the shipped file
names no machine's folders. The model, its statistics and its provenance are kept as they are.
  .venv/bin/python workflows/ship_interpolator.py runs/train-ethanol-bilstm-20fs/model.pt \\
      ethanol-bilstm-20fs
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hybridmd.interpolator_file import read_checkpoint, save_torch_atomic

ROOT = Path(__file__).resolve().parent.parent


def relative(path: str, root: Path = ROOT) -> str:
    """``path`` relative to ``root`` when it lies inside it, else unchanged."""
    resolved = Path(os.path.normpath(Path(path).absolute()))
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else path


def ship(source: Path, name: str, into: Path, root: Path = ROOT) -> Path:
    """Write the shippable copy of checkpoint ``source`` to ``into``/``name``.pt."""
    data = read_checkpoint(source)
    data.pop("path")
    data["training_state"] = None
    meta = data["metadata"]
    for entry in meta["provenance"]:
        entry["path"] = relative(entry["path"], root)
    for entry in meta["config"]["data"]["trajectories"]:
        entry["path"] = relative(entry["path"], root)
    output = meta["config"]["output"]
    output["checkpoint"] = relative(output["checkpoint"], root)
    target = into / f"{name}.pt"
    save_torch_atomic(target, data)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a trained checkpoint (hybridmd train)")
    parser.add_argument("name", help="the shipped name, e.g. ethanol-bilstm-10fs")
    parser.add_argument("--into", type=Path, default=ROOT / "hybridmd" / "data" / "interpolators")
    args = parser.parse_args()
    print(ship(args.checkpoint, args.name, args.into))


if __name__ == "__main__":
    main()
