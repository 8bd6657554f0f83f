"""Relax an input's start geometry with the input's own calculator (ASE's BFGS).

MD from an unrelaxed geometry spends its first picoseconds rolling downhill; a hybrid run
would learn that transient. Relax first, at the level of theory the run uses, and point the
input's ``system: {file: ...}`` at the result:

    .venv/bin/python workflows/relax_structure.py inputs/methanol-dft-cold-start.yaml \\
        --start inputs/structures/methanol.xyz -o inputs/structures/methanol-pbe-sto3g.xyz

``--start`` overrides the input's own structure: the input is then checked with that file as
its ``system``, so its ``system: {file: ...}`` may name the file this relaxation is about to
write.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ase.optimize import BFGS

from hybridmd.calculators import build_calculator
from hybridmd.config import parse_config, read_input, serve_model
from hybridmd.errors import InputError
from hybridmd.structures import build_structure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", type=Path, help="YAML input whose system and calculator to use")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="relaxed structure to write (.xyz; a periodic one as extended xyz)")
    parser.add_argument("--start", type=Path, help="start from this structure file instead")
    parser.add_argument("--fmax", type=float, default=0.01, help="largest force left, eV/Å")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:  # a run or simulate input is checked whole, as those commands would
        data = read_input(args.input)
        if args.start and isinstance(data, dict):
            data["system"] = {"file": str(args.start.resolve())}
        cfg = parse_config(data, serve_model(data), str(args.input),
                           base_dir=args.input.resolve().parent)
        atoms = build_structure(cfg.system)
        atoms.calc = build_calculator(cfg.calculator, atoms)
    except InputError as exc:  # one line and exit code 2, as the hybridmd command gives
        print(f"error: {exc}", file=sys.stderr)
        return 2
    opt = BFGS(atoms, logfile="-")
    opt.run(fmax=args.fmax, steps=500)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atoms.write(args.output, format="extxyz" if atoms.pbc.any() else "xyz")  # keeps the cell
    print(f"relaxed in {opt.nsteps} steps to fmax {args.fmax} eV/Å, energy "
          f"{atoms.get_potential_energy():.6f} eV -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
