"""Newtonian segments from canonical starts, for the interpolators that hold from 100 to 600 K.

Sets (each in its own folder of runs/, resumable; a finished segment is kept):
- ``wide``: sGDML ethanol, 16 segments of 2.5 ps at each of 100, 200, ..., 600 K (two Bussi
  runs per temperature, seeds 8000 + T and 8100 + T) and 8 more at 400, 500 and 600 K (seed
  8200 + T), where the windows are the most varied: the training data of
  inputs/train-ethanol-bilstm-{5,10,20}fs-100-600K.yaml, 300 ps, about 45 minutes on one core.
- ``xtb``: GFN2-xTB ethanol at 300 K, another potential energy surface: 5 segments of 1 ps to
  fine-tune on (seed 9300; the first 1, 2 or 5 of them) and 20 of 0.5 ps held out (seed 9301),
  about 2 minutes. Used by benchmarks/interpolator_transfer.py and
  inputs/train-ethanol-bilstm-10fs-xtb-finetune.yaml.

Run:  OMP_NUM_THREADS=1 .venv/bin/python workflows/generate_canonical_nve_data.py [--only SET]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hybridmd.canonical_segments import canonical_nve_segments

RUNS = Path(__file__).resolve().parent.parent / "runs"
XTB = {"type": "xtb", "method": "GFN2-xTB"}
WIDE_TEMPERATURES = (100, 200, 300, 400, 500, 600)
#: the wide set's Bussi runs: (base seed, temperatures); each gives 8 segments, seed base + T
WIDE_RUNS = ((8000, WIDE_TEMPERATURES), (8100, WIDE_TEMPERATURES), (8200, (400, 500, 600)))


def wide() -> None:
    for base_seed, temperatures in WIDE_RUNS:
        for temperature in temperatures:
            canonical_nve_segments(temperature, 8, RUNS / "ethanol-sgdml-nve-100-600K",
                                   seed=base_seed + temperature, ps=2.5)


def xtb() -> None:
    out = RUNS / "ethanol-xtb-nve"
    canonical_nve_segments(300, 5, out, seed=9300, ps=1.0, calculator=XTB)
    canonical_nve_segments(300, 20, out, seed=9301, ps=0.5, calculator=XTB)


SETS = {"wide": wide, "xtb": xtb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(SETS), help="make one of the sets")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for name, make in SETS.items():
        if args.only in (None, name):
            make()


if __name__ == "__main__":
    main()
