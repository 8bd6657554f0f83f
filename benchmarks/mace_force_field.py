"""What a MACE version costs and how well it predicts, against the number of atoms.

For each system: the fit's wall and CPU seconds (one thread, defaults of ``MaceSettings``),
the main model's force error (mean absolute, eV/Å) on frames held out of the fit
(validation: evenly spaced among them) and on the frames after them (test), the forces' mean
absolute value, one force call of the main model and one call of the expensive calculator
(CPU milliseconds). Systems:

- the water hexamer of tests/data (MP2, 18 atoms, 301 frames of MD at 300 K, about 1 fs
  apart): fitted to the first 200 frames;
- tblite GFN1-xTB water, Langevin MD at 300 K (0.5 fs steps, every 4th frame kept): 8 waters
  as an open cluster and in a periodic 6.2 Å cube (250 frames each, fitted to the first
  200), 32, 64 and 72 waters in boxes tiled 2x2x1, 2x2x2 and 3x3x1 from the last 8-water
  frame and run 50 fs before the first frame is kept (80, 40 and 30 frames, fitted to the
  first 80 %).
  The labeled frames are cached (--cache).

Then the committee: the main model's companions trained with other seeds against companions
trained on halves of the frames, scored by how well the committee's spread ranks the main
model's error (Spearman, per frame) on the frames after the 150 fitted to.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mace_force_field.py   (about 13 min, and
      about 35 more the first time: the xTB MD)
      ... --write-test-data tests/data/8h2o_box_gfn1xtb_md_300k.npz   (the tests' frames)
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta
from scipy.stats import spearmanr

from hybridmd.calculators import build_calculator
from hybridmd.config import XTBConfig
from hybridmd.hybrid.mace_force_field import MaceModel, MaceSettings, fit_mace
from hybridmd.units import FS, KCAL_MOL

HEXAMER = Path(__file__).resolve().parent.parent / "tests" / "data" / "6h2o_orca_mp2_md_300k.npz"
BOX_A = 6.2  #: Å, 8 waters at about 1 g/cm³
R_OH, ANGLE_HOH = 0.9572, 104.52


def water_box(seed: int) -> Atoms:
    """8 waters, randomly turned, on a 2x2x2 grid of a periodic 6.2 Å cube."""
    rng = np.random.default_rng(seed)
    half = np.radians(ANGLE_HOH / 2)
    water = Atoms("OH2", positions=[(0, 0, 0), (R_OH * np.cos(half), R_OH * np.sin(half), 0),
                                   (R_OH * np.cos(half), -R_OH * np.sin(half), 0)])
    atoms = Atoms(cell=[BOX_A] * 3, pbc=True)
    for corner in np.ndindex(2, 2, 2):
        w = water.copy()
        w.rotate(rng.uniform(0, 360), rng.normal(size=3))
        w.translate((np.array(corner) + 0.5) * BOX_A / 2)
        atoms += w
    return atoms


def xtb() -> object:
    """tblite GFN1-xTB as the run's calculator would build it."""
    return build_calculator(XTBConfig(type="xtb", method="GFN1-xTB"), Atoms("H2"))


def xtb_md(atoms: Atoms, frames: int, every: int = 4, equilibrate: int = 200, seed: int = 0
           ) -> dict[str, np.ndarray]:
    """Langevin MD with GFN1-xTB at 300 K from ``atoms`` (velocities drawn at 300 K): every
    ``every``-th frame after ``equilibrate`` steps; positions Å, forces eV/Å, energies eV,
    CPU seconds per call."""
    atoms = atoms.copy()
    atoms.calc = xtb()
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, 300, rng=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dyn = Langevin(atoms, 0.5 * FS, temperature_K=300, friction=0.02, fixcm=False,
                       rng=rng)
    dyn.run(equilibrate)
    r, f, e, seconds = [], [], [], []
    for _ in range(frames):
        t0 = time.process_time()
        dyn.run(every)
        seconds.append((time.process_time() - t0) / every)
        r.append(atoms.positions.copy())
        f.append(atoms.get_forces())
        e.append(atoms.get_potential_energy())
    return {"R": np.array(r), "F": np.array(f), "E": np.array(e), "z": atoms.numbers,
            "cell": atoms.cell.array, "call_seconds": np.array(seconds)}


def tiled(box: dict[str, np.ndarray], repeat: tuple[int, int, int]) -> Atoms:
    """The last 8-water frame tiled into a bigger box (MD from there sets the copies apart)."""
    return Atoms(numbers=box["z"], positions=box["R"][-1], cell=box["cell"],
                 pbc=True).repeat(repeat)


def cached(path: Path, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, Any]:
    """The frames at ``path``, made first if missing (no cell: an open cluster)."""
    if not path.is_file():
        np.savez_compressed(path, **make())
    with np.load(path) as data:
        out: dict[str, Any] = dict(data)
    if not out["cell"].any():
        out["cell"] = None
    return out


def water_cluster(seed: int) -> Atoms:
    """The 8 waters of ``water_box`` as an open cluster."""
    atoms = water_box(seed)
    atoms.pbc, atoms.cell = False, None
    return atoms


def write_test_data(box: dict[str, np.ndarray], path: Path) -> None:
    """Every 4th of the 8-water frames (every 8 fs of the MD) for the tests."""
    np.savez_compressed(path, R=box["R"][::4], F=box["F"][::4], E=box["E"][::4], z=box["z"],
                        cell=box["cell"])


def hexamer() -> dict[str, Any]:
    with np.load(HEXAMER) as d:
        return {"R": d["R"], "F": d["F"] * KCAL_MOL, "E": d["E_potential"] * KCAL_MOL,
                "z": d["z"], "cell": None}


def force_call_ms(model: MaceModel, numbers: np.ndarray, positions: np.ndarray,
                  cell: np.ndarray | None) -> float:
    """CPU milliseconds of one force call of the main model (median of 10, positions moved
    each time as in MD)."""
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=cell is not None)
    atoms.calc = model.calculators()[0]
    atoms.get_forces()
    times = []
    for i in range(10):
        atoms.positions += 1e-3 * (-1) ** i
        t0 = time.process_time()
        atoms.get_forces()
        times.append(time.process_time() - t0)
    return 1e3 * float(np.median(times))


def errors(model: MaceModel, data: dict[str, Any], frames: np.ndarray, mean: bool = False
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the main model's largest atomic force error (its mean absolute error of the
    components with ``mean``) and the committee's largest deviation from it (eV/Å)."""
    calcs = model.calculators() if not mean else model.calculators()[:1]
    err, spread = [], []
    for i in frames:
        atoms = Atoms(numbers=data["z"], positions=data["R"][i], cell=data["cell"],
                      pbc=data["cell"] is not None)
        forces = []
        for calc in calcs:
            atoms.calc = calc
            forces.append(atoms.get_forces())
        delta = forces[0] - data["F"][i]
        err.append(np.abs(delta).mean() if mean else np.linalg.norm(delta, axis=1).max())
        spread.append(max((np.linalg.norm(f - forces[0], axis=1).max() for f in forces[1:]),
                          default=0.0))
    return np.array(err), np.array(spread)


def fit(data: dict[str, Any], train: np.ndarray, settings: MaceSettings
        ) -> tuple[MaceModel, float]:
    t0 = time.process_time()
    model = fit_mace(data["R"][train], data["F"][train], data["E"][train], data["z"],
                     settings, version=1, cell=data["cell"], pbc=data["cell"] is not None)
    return model, time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/hybridmd-mace-benchmark"),
                        help="folder of the xTB-labeled frames (made on the first run)")
    parser.add_argument("--write-test-data", type=Path, default=None, metavar="NPZ")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    box8 = cached(args.cache / "water8.npz", lambda: xtb_md(water_box(0), 250))
    if args.write_test_data is not None:
        write_test_data(box8, args.write_test_data)
        return
    cluster8 = cached(args.cache / "cluster8.npz", lambda: xtb_md(water_cluster(0), 250))
    box32, box64, box72 = (cached(args.cache / f"water{n}.npz", lambda r=rep, k=frames: xtb_md(
        tiled(box8, r), k, equilibrate=100)) for n, rep, frames in (
            (32, (2, 2, 1), 80), (64, (2, 2, 2), 40), (72, (3, 3, 1), 30)))
    systems = [("6 H2O cluster, MP2", hexamer(), 200), ("8 H2O cluster, GFN1-xTB", cluster8, 200),
               ("8 H2O box, GFN1-xTB", box8, 200), ("32 H2O box, GFN1-xTB", box32, 64),
               ("64 H2O box, GFN1-xTB", box64, 32), ("72 H2O box, GFN1-xTB", box72, 24)]
    settings = MaceSettings()
    print(f"# {date.today()}, {platform.machine()}, torch {torch.__version__}, one thread, "
          f"shared machine (CPU seconds are the steadier figure)\n# {settings}")
    print(f"{'system':24} {'atoms':>5} {'frames':>6} {'fit s':>6} {'fit CPU s':>9} "
          f"{'val MAE':>8} {'test MAE':>8} {'mean |F|':>8} {'ML ms':>6} {'expensive ms':>12}")
    for name, data, n_train in systems:
        model, cpu = fit(data, np.arange(n_train), settings)
        test = np.arange(n_train, len(data["R"]))
        err, _ = errors(model, data, test, mean=True)
        expensive = ("-" if "call_seconds" not in data
                     else f"{1e3 * np.median(data['call_seconds']):.0f}")
        print(f"{name:24} {len(data['z']):5d} {n_train:6d} {model.fit_seconds:6.1f} "
              f"{cpu:9.1f} {model.validation_force_mae:8.4f} {err.mean():8.4f} "
              f"{np.abs(data['F']).mean():8.3f} "
              f"{force_call_ms(model, data['z'], data['R'][0], data['cell']):6.1f} "
              f"{expensive:>12}", flush=True)
    print("\n# committee: how well its spread ranks the main model's error on the frames after "
          "the 150 fitted to\n# (Spearman per frame; largest atomic force error and spread, "
          "eV/Å)")
    print(f"{'system':24} {'committee':>9} {'fit CPU s':>9} {'spearman':>8} {'mean err':>8} "
          f"{'mean spread':>11}")
    for name, data, _ in systems[:3]:
        for halves in (False, True):
            model, cpu = fit(data, np.arange(150), MaceSettings(committee_halves=halves))
            err, spread = errors(model, data, np.arange(150, len(data["R"])))
            print(f"{name:24} {'halves' if halves else 'seeds':>9} {cpu:9.1f} "
                  f"{spearmanr(err, spread).statistic:8.2f} {err.mean():8.3f} "
                  f"{spread.mean():11.3f}", flush=True)


if __name__ == "__main__":
    main()
