"""Which ML can a cold-start run learn from its own expensive calls? The numbers that decided it.

A hybrid run of a new molecule has only what it simulated: K segments of n = 20 steps, n
expensive calls each. Three ways to turn them into ML segments, scored on the segments that
follow (held out, from the same thermostatted run), by the largest atomic distance between the
ML end and the true end after Δt = 10 fs (the quantity ``switch.tolerance_A`` bounds):

- (a) a forecaster network (the shipped kind) trained on the K (start, end) pairs directly;
- (b) the same network trained on cheap trajectories of a force field fitted to the K·n
  labeled frames (``max_frames`` of them) and integrated from the K start states;
- (c) that force field itself integrated over the segment: ``forecaster: learn``.

The reference is malonaldehyde with its sGDML model as the expensive calculator, 300 K,
Bussi at the 10 fs boundaries, 0.5 fs steps. Also printed: how well the committee spread of
(c) ranks the true errors (Spearman), the signal ``forecaster: learn`` rejects and monitors by.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cold_start_routes.py   (about 15 min)
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from ase.io import read
from ase.md.verlet import VelocityVerlet
from scipy.stats import spearmanr

from hybridmd.calculators import build_calculator
from hybridmd.config import DynamicsConfig, SGDMLConfig
from hybridmd.data import geometry_path
from hybridmd.engines.ase_md import internal_degrees_of_freedom, maxwell_boltzmann_momenta
from hybridmd.forecaster_training import train_forecaster
from hybridmd.hybrid.force_field import (
    FitSettings,
    ForceField,
    ForceFieldCalculator,
    fit_force_field,
    learned_atoms,
)
from hybridmd.hybrid.forecaster import (
    Forecaster,
    ForecasterNet,
    Scales,
    canonical_inputs,
    canonical_targets,
    interchangeable_groups,
    load_forecaster,
)
from hybridmd.hybrid.segments import (
    BoundaryThermostat,
    SegmentResult,
    SegmentSimulator,
    simulate_segment,
)
from hybridmd.trajectory import Trajectory
from hybridmd.units import FS

STRIDE, DT_FS, TOLERANCE_A = 20, 0.5, 0.05


def reference(molecule: str, segments: int, seed: int) -> dict[str, np.ndarray]:
    """Every frame (with forces and energy) of a run of hybrid-style segments, and the
    departure and arrival momenta at each boundary."""
    atoms = read(geometry_path(molecule))
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model=molecule), atoms)
    dyn = DynamicsConfig(timestep_fs=DT_FS, steps=segments * STRIDE, seed=seed)
    ndof = internal_degrees_of_freedom(atoms)
    rng = np.random.default_rng(seed)
    p = maxwell_boltzmann_momenta(atoms, dyn.temperature_K, ndof, rng)
    atoms.set_momenta(p)
    thermostat = BoundaryThermostat(atoms, dyn, STRIDE * DT_FS, ndof, rng)
    vv = VelocityVerlet(atoms, timestep=DT_FS * FS)
    r, start = atoms.get_positions(), None
    R, F, E, departure, arrival = [], [], [], [], []
    for _ in range(segments):
        seg = simulate_segment(atoms, vv, r, p, STRIDE, start)
        R.append(seg.positions[:-1])
        F.append(seg.all_forces[:-1])
        E.append(seg.energies[:-1])
        departure.append(p)
        arrival.append(seg.momenta[-1])
        r, p, start = seg.positions[-1], thermostat.apply(seg.momenta[-1]), (seg.forces,
                                                                           seg.energy)
    return {"R": np.concatenate(R), "F": np.concatenate(F), "E": np.concatenate(E),
            "departure": np.array(departure), "arrival": np.array(arrival),
            "masses": atoms.get_masses(), "numbers": atoms.numbers}


def network_errors(fc: Forecaster, ref: dict, segments: np.ndarray) -> np.ndarray:
    """Largest atomic end-position error of a network's forecasts of ``segments``."""
    m = ref["masses"][:, None]
    start = STRIDE * segments
    r1, _ = fc.predict(ref["R"][start], ref["departure"][segments] / m * FS,
                       ref["F"][start] / m * FS**2)
    return np.linalg.norm(r1 - ref["R"][start + STRIDE], axis=-1).max(-1)


def network_on_pairs(ref: dict, k: int, epochs: int) -> Forecaster:
    """(a): a fresh forecaster network, Adam on the k (start, end) pairs."""
    m = ref["masses"][:, None]
    s = np.arange(k)
    r0, v0 = ref["R"][STRIDE * s], ref["departure"][s] / m * FS
    a0 = ref["F"][STRIDE * s] / m * FS**2
    r1, v1 = ref["R"][STRIDE * (s + 1)], ref["arrival"][s] / m * FS
    w = ref["masses"] / ref["masses"].sum()
    reference_geometry = ref["R"][0] - (ref["R"][0] * w[:, None]).sum(0)
    groups = interchangeable_groups(ref["numbers"], reference_geometry)
    n = len(ref["numbers"])
    probe = Scales(torch.tensor(reference_geometry), torch.ones(9 * n, dtype=torch.float64),
                   torch.ones(6 * n, dtype=torch.float64), groups)
    t = [torch.tensor(x) for x in (r0, v0, a0, r1, v1)]
    x, frame = canonical_inputs(t[0], t[1], t[2], torch.tensor(ref["masses"]), probe)
    y = canonical_targets(t[0], t[3], t[4], frame, STRIDE * DT_FS)
    scales = Scales(probe.reference, x.std(0).clamp_min(1e-8), y.std(0).clamp_min(1e-8), groups)
    fc = Forecaster(ForecasterNet(n, 256, 3), ref["masses"], ref["numbers"], DT_FS, STRIDE,
                    scales, {})
    fc.fine_tune(r0, v0, a0, r1, v1, epochs, 1e-3, 32, seed=0)
    return fc


def integrate(force_field: ForceField, ref: dict, r0: np.ndarray, p0: np.ndarray,
              steps: int) -> SegmentResult:
    """``steps`` velocity-Verlet steps of the force field, as the hybrid loop makes them."""
    atoms = learned_atoms(ForceFieldCalculator(force_field), ref["numbers"], ref["masses"])
    return SegmentSimulator(atoms, steps, DT_FS).segment(r0, p0)


def network_on_force_field(ref: dict, model, k: int, steps: int, minutes: float,
                           out: Path) -> Forecaster:
    """(b): the forecaster network trained on the force field's trajectories from the k
    simulated start states."""
    ff = model.force_fields[0]
    trajectories = []
    for s in range(k):
        seg = integrate(ff, ref, ref["R"][STRIDE * s], ref["departure"][s], steps)
        trajectories.append(Trajectory(ref["numbers"], seg.positions, seg.momenta, DT_FS,
                                       masses=ref["masses"], forces=seg.all_forces))
    result = train_forecaster(trajectories, STRIDE, out / f"network-k{k}.pt", hidden=256,
                              layers=3, max_minutes=minutes, validation_fraction=0.2,
                              threads=1, progress=False)
    return load_forecaster(result.checkpoint)


def _row(name: str, err: np.ndarray, cost: str) -> str:
    return (f"| {name} | {err.mean():.4f} | {np.quantile(err, 0.95):.4f} | "
            f"{np.mean(err <= TOLERANCE_A):.0%} | {cost} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--molecule", default="malonaldehyde")
    parser.add_argument("--segments", type=int, nargs="+", default=[50, 100, 200],
                        help="simulated segments K the routes learn from")
    parser.add_argument("--held-out", type=int, default=300,
                        help="segments after the K that are scored (every second one)")
    parser.add_argument("--max-frames", type=int, default=333,
                        help="frames the force field is fitted to (the default for 9 atoms)")
    parser.add_argument("--minutes", type=float, default=3.0,
                        help="training budget of the network in route (b)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-cold-start-routes"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    ref = reference(args.molecule, max(args.segments) + args.held_out + 1, seed=1)
    print(f"# cold-start routes, {args.molecule} (sGDML as the expensive calculator), 300 K, "
          f"Δt = {STRIDE * DT_FS:g} fs, {date.today()}, "
          f"{platform.processor() or platform.machine()}\n")
    print("end-position error (largest atom, Å) on the held-out segments that follow the K "
          f"simulated ones; tolerance_A = {TOLERANCE_A}\n")
    print("| route | mean | p95 | within tolerance | learner time |")
    print("|---|---|---|---|---|")
    for k in args.segments:
        held = np.arange(k, k + args.held_out, 2)
        print(f"| **K = {k} segments, {STRIDE * k} expensive calls** | | | | |")
        t0 = time.perf_counter()
        fc = network_on_pairs(ref, k, epochs=2000)
        err = network_errors(fc, ref, held)
        print(_row("(a) network on the K pairs", err, f"{time.perf_counter() - t0:.0f} s"))
        t0 = time.perf_counter()
        n = STRIDE * k
        model = fit_force_field(ref["R"][:n], ref["F"][:n], ref["E"][:n], ref["numbers"],
                                FitSettings(args.max_frames), version=1)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        net = network_on_force_field(ref, model, k, 400, args.minutes, args.out)
        err = network_errors(net, ref, held)
        print(_row(f"(b) network on {k} x 200 fs of the force field", err,
                   f"{fit_s:.0f} s fit + {time.perf_counter() - t0:.0f} s"))
        main_ff, *halves = model.force_fields
        ends, spreads = [], []
        for s in held:
            r0, p0 = ref["R"][STRIDE * s], ref["departure"][s]
            end = integrate(main_ff, ref, r0, p0, STRIDE).positions[-1]
            spreads.append(max(np.linalg.norm(integrate(ff, ref, r0, p0, STRIDE).positions[-1]
                                              - end, axis=-1).max() for ff in halves))
            ends.append(np.linalg.norm(end - ref["R"][STRIDE * (s + 1)], axis=-1).max())
        err = np.array(ends)
        print(_row("(c) the force field integrated (forecaster: learn)", err, f"{fit_s:.0f} s"))
        rho = spearmanr(spreads, err).statistic
        print(f"| committee spread of (c) against its error: Spearman {rho:.2f} | | | | |")


if __name__ == "__main__":
    main()
