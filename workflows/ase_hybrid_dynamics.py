"""Run the adaptive hybrid loop as an ASE dynamics, with your own calculator.

Ethanol with the shipped sGDML model as "your" ASE calculator: ``HybridDynamics`` simulates a
segment of 20 steps of 0.5 fs with it, or lets the shipped forecaster predict the segment,
monitors the forecasts and falls back to simulation when one goes wrong; observers and the
trajectory see every segment end. The fine (0.5 fs) trajectory, the timeline and the summary go
to ``--directory``.

    python workflows/ase_hybrid_dynamics.py                     # 100 segments = 1 ps
    python workflows/ase_hybrid_dynamics.py --segments 1000 --directory runs/ase-hybrid
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase import units
from ase.io import read

from hybridmd.ase_interface import HybridDynamics
from hybridmd.calculators import build_calculator
from hybridmd.config import SGDMLConfig
from hybridmd.data import geometry_path
from hybridmd.engines.ase_md import internal_degrees_of_freedom


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=100, help="segments of 10 fs")
    parser.add_argument("--directory", type=Path, default=Path("runs/ase-hybrid"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    atoms = read(geometry_path("ethanol"))
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), atoms)
    dyn = HybridDynamics(atoms, timestep_fs=0.5, stride=20, directory=args.directory,
                         forecaster="ethanol-forecaster-10fs",
                         interpolator="ethanol-bilstm-10fs", temperature_K=300, seed=args.seed,
                         trajectory=str(args.directory / "segment-ends.traj"))

    ndof = internal_degrees_of_freedom(atoms)  # 3N-6, as the run's summary counts

    def report() -> None:
        temperature = 2 * atoms.get_kinetic_energy() / (ndof * units.kB)
        print(f"t = {dyn.nsteps * 10:6.0f} fs  E_pot = {atoms.get_potential_energy():9.3f} eV  "
              f"T = {temperature:5.0f} K")

    dyn.attach(report, interval=max(1, args.segments // 5))
    dyn.run(args.segments)
    calls = dyn.summary["force_calls"]
    print(f"{dyn.summary['segments']} segments, {dyn.summary['ml_fraction']:.0%} forecast; "
          f"{calls['total']} force calls against {calls['full_simulation']} for the full "
          f"simulation; fine trajectory in {args.directory / 'fine.traj'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
