"""Does the learned model hold a liquid's or a cluster's structure? Its last version run alone.

A cold-start run (benchmarks/cold_start.py with inputs/water-box-cold-start.yaml, or a cluster's
input) leaves its last learned MACE version in hybrid-a/forecaster.pt. This script runs that version
alone (no expensive calls, no checks; velocity Verlet with the Bussi thermostat of the input,
0.5 fs, one thread) from two starts:

- full A's frame at ``--from-full`` ps (the calculator's liquid), and
- the hybrid run's frame at ``--from-hybrid`` ps (the liquid the run had made by then),

each for ``--ps`` ps. With ``--fit-frames N ...`` it also fits, for each N, a model afresh
(the input's model settings, passes and seed, its main model only) to N of the run's labeled
frames, evenly spread, and runs it alone from full A as well: whether more of the frames the
run already has make the model's own liquid closer to the calculator's. For a periodic cell of
water it prints the first-shell structure (the height and place of g(r)'s first O-O peak, and
of the hydrogen-bond O-H peak), for a cluster in vacuum its size (the radius of gyration's
mean, and its largest mean over 250 fs) and its largest gap between groups of atoms, over the
first and the second half of each, beside the same for full A, full B and the hybrid run.
Where the two learned-only runs meet, that is the model's own liquid; where they stay apart,
the structure relaxes more slowly than the run is long.

Run (about 40 minutes on one core for 8 ps each):
  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learned_liquid.py \
      --run runs/bench-water-box-e15 --ps 8
(a fit afresh to 200 frames takes about 4 minutes on one thread, to 700 about 12). A cluster:
  --run runs/bench-meoh-w8-excursions --input runs/meoh-w8-checks-L1r6.yaml --ps 3 \
      --from-hybrid 1.5 --fit-frames 540 1917
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from ase import Atoms
from ase.io.trajectory import Trajectory as AseTrajectory
from ase.md.bussi import Bussi
from ase.units import fs

from hybridmd.analysis.observables import cluster_size, largest_gap
from hybridmd.analysis.rdf import radial_distribution
from hybridmd.config import RunConfig, parse_config
from hybridmd.hybrid.dataset import ExpensiveFrames
from hybridmd.hybrid.learned_file import load_learned
from hybridmd.hybrid.mace_force_field import MaceModel, MaceSettings, fit_mace
from hybridmd.readers import read_trajectory
from hybridmd.trajectory import Trajectory

EVERY = 10  #: steps between written frames (5 fs)
DT_FS = 0.5


def refitted(dataset: ExpensiveFrames, numbers: np.ndarray, frames: int, cfg: RunConfig,
             cell: np.ndarray | None, pbc: tuple[bool, ...] | None) -> MaceModel:
    """A model fitted afresh to ``frames`` of the run's labeled frames (evenly spread), with
    the input's model settings, passes and seed; its main model only (no committee).
    ``cell`` and ``pbc``: a periodic system's (None in vacuum)."""
    r, f, e = dataset.arrays()
    learn = cfg.hybrid.learn
    settings = MaceSettings(seed=cfg.dynamics.seed, epochs=learn.epochs, max_L=learn.max_L,
                            r_max=learn.r_max, committee=1)
    model = fit_mace(r, f, e, numbers, settings, version=1, cell=cell, pbc=pbc,
                     max_frames=frames)
    print(f"# fitted afresh to {frames} frames: {model.describe()}, {model.fit_seconds:.0f} s",
          flush=True)
    return model


def learned_only(model: MaceModel, source: Path, at_ps: float, ps: float, out: Path,
                 temperature_K: float, tau_fs: float, dt_fs: float) -> None:
    """``model`` alone from ``source``'s frame at ``at_ps``, written to ``out``."""
    frames = AseTrajectory(str(source))
    start = frames[int(round(at_ps * 1000 / dt_fs))]
    atoms = Atoms(start.numbers, start.positions, cell=start.cell, pbc=start.pbc,
                  momenta=start.get_momenta())
    atoms.calc = model.calculators()[0]
    part = out.with_suffix(".part.traj")  # renamed when done: a stopped run starts again
    writer = AseTrajectory(str(part), "w", atoms)
    md = Bussi(atoms, DT_FS * fs, temperature_K=temperature_K, taut=tau_fs * fs,
               rng=np.random.default_rng(1))
    md.attach(writer.write, interval=EVERY)
    md.run(int(round(ps * 1000 / DT_FS)))
    writer.close()
    part.rename(out)


def first_shell(traj: Trajectory) -> str:
    """g(r) O-O first peak and the O-H hydrogen-bond peak: height at place (Å)."""
    cells = []
    for pair, (lo, hi) in ((("O", "O"), (2.2, 3.4)), (("O", "H"), (1.5, 2.4))):
        g = radial_distribution(traj, pair, r_max=4.5, bins=90)
        r = 0.5 * (g.edges[1:] + g.edges[:-1])
        inside = (r > lo) & (r < hi)
        k = np.flatnonzero(inside)[np.argmax(g.g[inside])]
        cells.append(f"{g.g[k]:.2f} at {r[k]:.2f}")
    return " | ".join(cells)


def size(traj: Trajectory) -> str:
    """A cluster's radius of gyration: mean | largest mean over 250 fs (Å); and the largest
    gap between groups of atoms (a molecule leaving widens it), every 10 fs."""
    mean, loosest = cluster_size(traj)
    return f"{mean:.3f} | {loosest:.2f} | {largest_gap(traj):.2f}".replace("inf", "beyond 30")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=Path("runs/bench-water-box-e15"))
    parser.add_argument("--input", type=Path, default=Path("inputs/water-box-cold-start.yaml"))
    parser.add_argument("--ps", type=float, default=8.0, help="length of each learned-only run")
    parser.add_argument("--from-full", type=float, default=1.0, help="full A's frame, ps")
    parser.add_argument("--from-hybrid", type=float, default=2.5, help="the hybrid's frame, ps")
    parser.add_argument("--fit-frames", type=int, nargs="*", default=[],
                        help="also fit afresh to this many of the run's labeled frames")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = yaml.safe_load(args.input.read_text())
    cfg = parse_config(data, RunConfig, args.input.name, base_dir=args.input.resolve().parent)
    dyn = cfg.dynamics
    last, dataset, saved = load_learned(args.run / "hybrid-a" / "forecaster.pt")
    numbers = np.asarray(saved["numbers"])
    runs: dict[str, Trajectory] = {
        name: read_trajectory(args.run / folder / "fine.traj")
        for name, folder in (("full A", "full-a"), ("full B", "full-b"),
                             ("hybrid A", "hybrid-a"))}
    full_a = runs["full A"]
    periodic = bool(full_a.pbc.any())
    cell, pbc = ((np.array(full_a.cells[0]), tuple(bool(p) for p in full_a.pbc)) if periodic
                 else (None, None))
    # name: (start folder, start ps, file tag, the model: made only where its run is not done)
    starts: dict[str, tuple[str, float, str, Callable[[], Any]]] = {
        f"learned only, from full A at {args.from_full:g} ps":
            ("full-a", args.from_full, "", lambda: last),
        f"learned only, from hybrid A at {args.from_hybrid:g} ps":
            ("hybrid-a", args.from_hybrid, "", lambda: last)}
    for frames in args.fit_frames:
        starts[f"fitted afresh to {frames} frames, from full A"] = (
            "full-a", args.from_full, f"{frames}-frames-",
            lambda frames=frames: refitted(dataset, numbers, frames, cfg, cell, pbc))
    for name, (folder, at, tag, model) in starts.items():
        out = args.run / f"learned-only-{tag}from-{folder}.traj"
        if not out.exists():
            learned_only(model(), args.run / folder / "fine.traj", at, args.ps, out,
                         dyn.temperature_K, dyn.tau_fs, saved["dt_fs"])
        runs[name] = read_trajectory(out, dt_fs=EVERY * DT_FS)

    measure, columns = ((first_shell, "g(r) O-O first peak (height at Å) | g(r) O-H hydrogen "
                         "bond (height at Å)") if periodic else
                        (size, "radius of gyration, mean (Å) | largest mean over 250 fs (Å) "
                         "| largest gap (Å)"))
    print(f"# the run's last learned version alone, {args.run}, {date.today()}, "
          f"{platform.processor() or platform.machine()}\n")
    print(f"| run | part | {columns} |")
    print("|---" * (2 + columns.count("|") + 1) + "|")
    for name, traj in runs.items():
        half = len(traj) // 2
        step = max(1, round(EVERY * DT_FS / traj.dt_fs))  # every 5 fs, as the learned runs
        for part, (a, b) in (("first half", (0, half)), ("second half", (half, len(traj)))):
            length = (b - a) * traj.dt_fs / 1000
            print(f"| {name} | {part} ({length:.1f} ps) | "
                  f"{measure(traj.slice(a, b).subsample(step))} |", flush=True)


if __name__ == "__main__":
    main()
