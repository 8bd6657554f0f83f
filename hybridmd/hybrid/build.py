"""The one place that makes a hybrid run from its validated input.

``build_loop`` reads the structure and the initial momenta, builds the calculator, loads each
ML file once (the forecaster network, or an earlier run's learned force field, or none),
decides there whether the run learns, checks that every model fits the system, and wires the
segment makers, checks, monitors and learner into a ``HybridLoop``. Everything it refuses is a
``RunInputError`` with the key and the fix, raised before a run folder is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from hybridmd.background import make_executor
from hybridmd.calculators import build_calculator, close_calculator
from hybridmd.config import RunConfig, learning_problem
from hybridmd.engines.ase_md import internal_degrees_of_freedom, maxwell_boltzmann_momenta
from hybridmd.engines.ipi import ipi_cell
from hybridmd.engines.ipi_segments import IPI_FOLDER, IPISegmentSimulator
from hybridmd.errors import RunInputError, reading
from hybridmd.hybrid.checks import PointChecks
from hybridmd.hybrid.dataset import ExpensiveFrames
from hybridmd.hybrid.equipartition import removed_motion
from hybridmd.hybrid.force_field import FitSettings, fit_force_field
from hybridmd.hybrid.forecaster import load_forecaster
from hybridmd.hybrid.learned_file import read_learned
from hybridmd.hybrid.learner import Learner
from hybridmd.hybrid.ledger import CallLedger
from hybridmd.hybrid.loop import HybridLoop, LoopSettings, Predictor
from hybridmd.hybrid.mace_force_field import (
    MaceSettings,
    fit_mace,
    import_mace,
    load_model_file,
    unknown_elements,
)
from hybridmd.hybrid.monitor import MonitorPool
from hybridmd.hybrid.predictors import LearnedForceField, NetworkForecaster
from hybridmd.hybrid.segments import (
    BoundaryThermostat,
    CallCounter,
    SegmentMaker,
    SegmentSimulator,
)
from hybridmd.hybrid.selection import MonitorChoice
from hybridmd.hybrid.switch import Switch
from hybridmd.periodic import Cell, perpendicular_widths
from hybridmd.preflight import check_interpolator
from hybridmd.structures import build_structure, check_start_geometry, load_momenta
from hybridmd.trajectory import SPACING_RTOL


@dataclass
class BuiltRun:
    """A loop made from an input, and what the session around it needs to know."""

    loop: HybridLoop
    stream_interpolator: str  #: what the streaming worker interpolates with
    context_frames: int  #: frames of context the interpolator reads on each side


def build_loop(cfg: RunConfig, calculator: Calculator | None = None,
               monitor_calculator: Calculator | None = None,
               context: dict[str, Any] | None = None, monitor_executor: Any = None,
               learner_executor: Any = None) -> BuiltRun:
    """The loop of ``cfg``. ``calculator``: use this one instead of the input's (the ASE API);
    ``monitor_calculator``: a second instance for monitors run in the driver's process;
    ``context``: what a monitor process needs to validate the input again;
    ``monitor_executor``/``learner_executor``: where monitors and fits run (MPI ranks)."""
    h, dyn = cfg.hybrid, cfg.dynamics
    n, dt_fs = h.stride, dyn.timestep_fs
    atoms: Atoms = build_structure(cfg.system)
    check_start_geometry(atoms, cfg.safety, cfg.system.file or cfg.system.molecule)
    atoms.calc = calculator or build_calculator(cfg.calculator, atoms)
    ledger = CallLedger(CallCounter.of(atoms.calc))
    ndof = 3 * len(atoms) if dyn.integrator == "langevin" else internal_degrees_of_freedom(atoms)
    init_rng, thermo_rng, monitor_rng = (np.random.default_rng(s) for s in
                                         np.random.SeedSequence(dyn.seed).spawn(3))
    if dyn.initial_momenta == "maxwell-boltzmann":
        p0 = maxwell_boltzmann_momenta(atoms, dyn.temperature_K, ndof, init_rng)
    else:
        p0 = load_momenta(dyn.initial_momenta, atoms)
    atoms.set_momenta(p0)  # ASE's Bussi refuses atoms at rest
    thermostat = BoundaryThermostat(atoms, dyn, n * dt_fs, ndof, thermo_rng)
    simulator = _segment_simulator(cfg, atoms)
    predictor = _segment_maker(cfg, atoms, ledger, learner_executor)
    stream_interpolator = "quintic" if h.interpolator == "learn" else h.interpolator
    context_frames = check_interpolator(stream_interpolator, atoms, n, dt_fs,
                                        "hybrid.interpolator")
    monitor_atoms = None
    if monitor_calculator is not None:
        monitor_atoms = atoms.copy()
        monitor_atoms.calc = monitor_calculator
    monitors = MonitorPool(h.monitor.workers, cfg.model_dump(mode="json"), context or {},
                           monitor_executor, monitor_atoms)
    settings = LoopSettings(dyn.n_steps // n, h.monitor.lag_segments or n,
                            h.interpolator == "learn", h.switch, cfg.safety)
    loop = HybridLoop(atoms, simulator, predictor, thermostat,
                      Switch(h.switch, atoms.get_masses(), atoms.get_chemical_symbols(),
                             removed_motion(len(atoms), ndof)),
                      MonitorChoice(h.monitor.fraction, h.monitor.uncertain_fraction,
                                    monitor_rng),
                      monitors, PointChecks(h.check, atoms, ledger, monitor_rng), ledger, ndof,
                      p0, settings, monitor_rng,
                      tail_length=h.queue_size + 2 * context_frames + 2)
    if calculator is None:  # built here: a client process it runs ends with the run
        loop.on_close(partial(close_calculator, atoms.calc))
    return BuiltRun(loop, stream_interpolator, context_frames)


def _segment_simulator(cfg: RunConfig, atoms: Atoms) -> SegmentMaker:
    """The simulation segment maker of ``engine:``: ASE's velocity Verlet here, or i-PI."""
    n, dt_fs = cfg.hybrid.stride, cfg.dynamics.timestep_fs
    if cfg.engine.type == "ase":
        return SegmentSimulator(atoms, n, dt_fs)
    try:
        ipi_cell(atoms)
    except ValueError as exc:
        raise RunInputError(f"engine: ipi: {exc}") from None
    return IPISegmentSimulator(atoms, n, dt_fs, cfg.dynamics, cfg.engine,
                               cfg.output.directory / IPI_FOLDER)


def learns(cfg: RunConfig) -> bool:
    """Whether the run learns a force field (``forecaster: learn`` or an earlier run's file)."""
    spec = cfg.hybrid.forecaster
    return spec == "learn" or (spec is not None and read_learned(Path(spec)) is not None)


def _segment_maker(cfg: RunConfig, atoms: Atoms, ledger: CallLedger,
                   learner_executor: Any) -> Predictor | None:
    """The ML segment maker the input names, its file loaded once; refused where it does not
    fit the system, the time grid or the run's other options."""
    h, spec = cfg.hybrid, cfg.hybrid.forecaster
    if spec is None:
        return None
    learned = None
    if spec != "learn":
        with reading(spec, "a hybridmd forecaster", key="hybrid.forecaster"):
            learned = read_learned(Path(spec))
    problem = learning_problem(h, spec == "learn" or learned is not None)
    if problem:
        raise RunInputError(f"hybrid: {problem}")
    cell = Cell.of(atoms)
    if cell.periodic and spec != "learn" and learned is None:
        raise RunInputError(f"hybrid.forecaster: {spec} is a forecaster network for one "
                            f"molecule in vacuum, and the system is {cell.describe()}; use "
                            "forecaster: learn (a local MACE force field learned in the run)")
    if spec == "learn" or learned is not None:
        return _learned_maker(cfg, atoms, learned, spec, learner_executor)
    with reading(spec, "a hybridmd forecaster", key="hybrid.forecaster"):
        forecaster = load_forecaster(spec)
    problem = forecaster_mismatch(atoms.numbers, cfg.dynamics.timestep_fs, h.stride,
                                  forecaster.numbers, forecaster.dt_fs, forecaster.stride)
    if problem:
        raise RunInputError(f"hybrid.forecaster: {spec} {problem}")
    return NetworkForecaster(forecaster, atoms, ledger, h.fine_tune, cfg.dynamics.seed)


def _learned_maker(cfg: RunConfig, atoms: Atoms, learned: Any, spec: str,
                   executor: Any) -> LearnedForceField:
    """A new learned force field, or an earlier learning run's (its version and frames)."""
    learn = cfg.hybrid.learn
    kind = learned_kind("mace" if learn.start_from else learn.force_field, atoms)
    cell = Cell.of(atoms)
    if kind == "sgdml":
        if cell.periodic:
            raise RunInputError(
                "hybrid.learn.force_field: sgdml describes one molecule in vacuum, and the "
                f"system is {cell.describe()}; use force_field: mace (or auto)")
        settings: Any = FitSettings(max_frames=learn.max_frames_for(len(atoms)),
                                    kernel_width=learn.kernel_width, processes=learn.threads)
        fit = partial(fit_force_field, settings=settings)
    else:
        settings = MaceSettings(seed=cfg.dynamics.seed, threads=learn.threads,
                                epochs=learn.epochs, max_L=learn.max_L,
                                r_max=learn.r_max)
        r_max = settings.r_max
        if learn.start_from is not None:
            r_max = _check_model_file(learn.start_from, atoms.numbers)
        _check_cell_fits(cell, r_max)
        import_mace()
        fit = partial(fit_mace, settings=settings, start_from=learn.start_from,
                      max_frames=learn.max_frames_for(len(atoms), "mace"),
                      cell=cell.vectors if cell.periodic else None,
                      pbc=cell.pbc if cell.periodic else None)
    learner = Learner(fit, learn.threads, atoms.numbers, learn.first_fit_frames,
                      learn.refit_frames, learn.lag_segments,
                      executor or make_executor(learn.transport, name="hybridmd-learner"),
                      owns_executor=executor is None, continues=kind == "mace",
                      refit_growth=learn.refit_growth)
    model, dataset, learned_from = None, ExpensiveFrames(len(atoms)), None
    if learned is not None:
        model, dataset, data = learned
        if list(data["numbers"]) != [int(z) for z in atoms.numbers]:
            raise RunInputError(f"hybrid.forecaster: {spec} was learned for atoms "
                                f"{data['numbers']}, the system has {list(atoms.numbers)}; "
                                "use forecaster: learn to start afresh")
        theirs = data["provenance"].get("calculator_config")
        ours = cfg.calculator.model_dump(mode="json")
        if theirs != ours:
            raise RunInputError(
                f"hybrid.forecaster {spec} was learned from another calculator ({theirs}); "
                f"this run's is {ours}. Frames of one level of theory cannot teach another: "
                "use forecaster: learn to start afresh")
        if data.get("kind", "sgdml") != kind:
            raise RunInputError(
                f"hybrid.forecaster: {spec} holds a {data.get('kind', 'sgdml')} force field; "
                f"this run learns {kind} (hybrid.learn.force_field): set force_field: "
                f"{data.get('kind', 'sgdml')}, or use forecaster: learn to start afresh")
        learned_from = {"path": spec, "frames": len(dataset), "version": model.version}
    return LearnedForceField(atoms.numbers, atoms.get_masses(), cell, cfg.hybrid.stride,
                             cfg.dynamics.timestep_fs, settings, learner, dataset, model,
                             learned_from, cell.widest_space(atoms.positions))


def _check_model_file(path: Path, numbers: np.ndarray) -> float:
    """The cutoff of the MACE model file a run starts from, checked to know the system."""
    with reading(path, "a MACE model file", key="hybrid.learn.start_from",
                 fix="give a MACE model saved whole by mace-torch (a foundation model's "
                     ".model file)"):
        module = load_model_file(path)
    problem = unknown_elements({int(z) for z in module.atomic_numbers}, numbers)
    if problem:
        raise RunInputError(f"hybrid.learn.start_from: {path} {problem}; start from a model "
                            "that knows them, or from nothing (remove start_from)")
    return float(module.r_max)


def _check_cell_fits(cell: Cell, r_max: float) -> None:
    """A periodic cell wide enough that no atom meets its own image within the learned
    model's cutoff (the environment would then hold the atom itself, a finite-size artefact
    the model would learn as physics)."""
    if not cell.periodic:
        return
    width = float(perpendicular_widths(cell.vectors)[np.asarray(cell.pbc)].min())
    if width < r_max:
        raise RunInputError(
            f"system: the cell is {width:.2f} Å across, less than the learned MACE model's "
            f"cutoff of {r_max:g} Å: each atom would meet its own periodic image; make the "
            "cell larger (repeat it) or start from a model with a shorter cutoff")


def learned_kind(choice: str, atoms: Atoms) -> str:
    """The learned force field's kind: ``sgdml`` or ``mace`` as chosen, or for ``auto``
    sGDML for one molecule in vacuum (a global model, fitted in seconds) and the local MACE
    model for a periodic cell or several molecules (which sGDML cannot learn)."""
    if choice != "auto":
        return choice
    return "mace" if Cell.of(atoms).periodic or molecules(atoms) > 1 else "sgdml"


def molecules(atoms: Atoms) -> int:
    """Covalently bonded groups of atoms (ASE's natural cutoffs)."""
    from ase.neighborlist import NeighborList, natural_cutoffs
    from scipy.sparse.csgraph import connected_components

    bonds = NeighborList(natural_cutoffs(atoms), self_interaction=False, bothways=True)
    bonds.update(atoms)
    return int(connected_components(bonds.get_connectivity_matrix(sparse=True))[0])


def forecaster_mismatch(numbers: Any, dt_fs: float, stride: int, fc_numbers: Any,
                        fc_dt_fs: float, fc_stride: int) -> str | None:
    """What keeps a forecaster from a run (None when it fits)."""
    if list(fc_numbers) != list(numbers):
        return (f"was trained for {Atoms(numbers=list(fc_numbers)).get_chemical_formula()} in "
                "another order or composition than the system "
                f"({Atoms(numbers=list(numbers)).get_chemical_formula()}); train one for this "
                "system")
    if not np.isclose(fc_dt_fs, dt_fs, rtol=SPACING_RTOL) or fc_stride != stride:
        return (f"forecasts {fc_stride} steps of {fc_dt_fs:g} fs; the input has hybrid.stride "
                f"{stride} at dynamics.timestep_fs {dt_fs:g}")
    return None
