"""Cost of one MD step of ethanol per calculator, and the overhead of `hybridmd simulate`.

Prints two tables:
1. ms per MD step (Bussi, 0.5 fs) for sGDML (numpy and torch backends), GFN2-xTB (tblite)
   and PySCF PBE/STO-3G, each in a bare ASE loop;
2. `hybridmd simulate` against a bare ASE loop with the same calculator, integrator, output
   stride and log stride (median of alternating repeats): the overhead in percent.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/md_step_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.io import read
from ase.io.trajectory import Trajectory
from ase.md import MDLogger
from ase.md.bussi import Bussi

from hybridmd.calculators import build_calculator
from hybridmd.config import SimulationConfig, parse_config
from hybridmd.data import geometry_path
from hybridmd.engines.ase_md import internal_degrees_of_freedom, maxwell_boltzmann_momenta
from hybridmd.simulate import Simulation
from hybridmd.units import FS

CALCULATORS = {
    "sGDML (numpy)": {"type": "sgdml", "model": "ethanol", "use_torch": False},
    "sGDML (torch)": {"type": "sgdml", "model": "ethanol", "use_torch": True},
    "GFN2-xTB (tblite)": {"type": "xtb", "method": "GFN2-xTB"},
    "PySCF PBE/STO-3G": {"type": "dft", "functional": "PBE", "basis": "STO-3G"},
}


def _config(calculator: dict, steps: int, out: Path, stride: int) -> SimulationConfig:
    return parse_config({
        "system": {"molecule": "ethanol"},
        "calculator": calculator,
        "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "steps": steps,
                     "temperature_K": 300, "tau_fs": 100, "seed": 1},
        "output": {"directory": str(out), "stride": stride, "log_stride": stride},
    }, SimulationConfig, "benchmark")


def bare_ase_loop(cfg: SimulationConfig, out: Path) -> float:
    """Seconds for cfg's steps in plain ASE: Bussi + Trajectory + MDLogger, nothing else."""
    atoms = read(geometry_path("ethanol"))
    atoms.calc = build_calculator(cfg.calculator, atoms)
    rng = np.random.default_rng(1)
    atoms.set_momenta(maxwell_boltzmann_momenta(atoms, 300.0, internal_degrees_of_freedom(atoms),
                                                rng))
    dyn = Bussi(atoms, 0.5 * FS, temperature_K=300.0, taut=100 * FS, rng=rng)
    out.mkdir(parents=True, exist_ok=True)
    traj = Trajectory(str(out / "bare.traj"), "w", atoms)
    logger = MDLogger(dyn, atoms, str(out / "bare.log"))
    dyn.attach(traj.write, interval=cfg.output.stride)
    dyn.attach(logger, interval=cfg.output.stride)
    atoms.get_forces()  # first call (set-up, JIT, SCF guess) outside the timing
    start = time.perf_counter()
    dyn.run(cfg.dynamics.n_steps)
    elapsed = time.perf_counter() - start
    traj.close()
    logger.close()
    return elapsed


def hybridmd_simulate(cfg: SimulationConfig) -> float:
    """Seconds for the same run through hybridmd's Simulation (set-up excluded)."""
    sim = Simulation(cfg)
    sim.atoms.get_forces()
    return sim.run(overwrite=True, progress=False).wall_time_s


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    steps = {"sGDML (numpy)": 1000, "sGDML (torch)": 1000, "GFN2-xTB (tblite)": 300,
             "PySCF PBE/STO-3G": 4}
    if args.quick:
        steps = {k: max(2, v // 10) for k, v in steps.items()}
    print(f"# machine: {_cpu_name()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("\n| calculator | steps x repeats | ms per MD step (median) | min | max |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, calc in CALCULATORS.items():
            cfg = _config(calc, steps[name], Path(tmp) / "c", stride=10)
            ms = [1e3 * bare_ase_loop(cfg, Path(tmp) / f"{name.replace(' ', '_')}{r}")
                  / steps[name] for r in range(3)]
            print(f"| {name} | {steps[name]} x 3 | {np.median(ms):.2f} | {min(ms):.2f} | "
                  f"{max(ms):.2f} |", flush=True)

        n = 200 if args.quick else 2000
        repeats = 2 if args.quick else 5
        print(f"\n`hybridmd simulate` vs bare ASE loop: sGDML (numpy), Bussi, {n} steps, "
              f"trajectory and log every `stride` steps, median of {repeats} alternating repeats")
        print("\n| stride | bare ASE (ms/step) | hybridmd simulate (ms/step) | overhead |")
        print("|---|---|---|---|")
        for stride in (1, 10):
            bare, ours = [], []
            for r in range(repeats):
                cfg = _config(CALCULATORS["sGDML (numpy)"], n, Path(tmp) / f"sim{r}", stride)
                bare.append(bare_ase_loop(cfg, Path(tmp) / f"bare{r}"))
                ours.append(hybridmd_simulate(cfg))
            b, o = np.median(bare) / n * 1e3, np.median(ours) / n * 1e3
            print(f"| {stride} | {b:.3f} | {o:.3f} | {100 * (o - b) / b:+.1f}% |", flush=True)


if __name__ == "__main__":
    main()
