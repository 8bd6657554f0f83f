"""A force field learned from the run's own expensive frames, and a committee to doubt it.

Each expensive call labels one frame, so n simulated steps give n frames of force-field data,
where a forecaster network trained on the same segments gets one (start, end) pair. An sGDML
model (closed-form kernel fit, seconds for a few hundred frames of a small molecule) reproduces
10 fs segments of the expensive dynamics to a few thousandths of an Ångström once it has seen
the region (``benchmarks/cold_start_routes.py``). Outside the region it has seen it
extrapolates badly, which two more models, each fitted to one half of the same frames,
reveal: where the data do not pin the force field down, the three disagree.

- ``FitSettings``: how many frames a fit uses at most, the kernel width, the regularisation.
- ``fit_force_field``: one version: the model on an even subset of the frames and the two
  half-models; a deterministic function of the frames (same frames, same model, bit for bit).
- ``ForceField``: a fitted sGDML model as a batch energy/force function in eV and eV/Å.
- ``ForceFieldCalculator``: a force field as an ASE calculator, so a learned segment is
  integrated by the same velocity Verlet as a simulated one (``hybrid.segments``).
- ``LearnedModel``: a version's three models, which frames they were fitted to, and how well
  the main model predicts the frames it was not fitted to.

Units: sGDML models are kept in its own convention (kcal/mol and Å), so a learned model is an
ordinary sGDML model file (``export_sgdml_model``) that ``calculator: {type: sgdml}`` reads.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from hybridmd.hybrid.dataset import pick_frames
from hybridmd.periodic import Cell
from hybridmd.units import KCAL_MOL

log = logging.getLogger(__name__)

#: frames the symmetry search of sGDML looks at (it matches every pair: quadratic cost)
SYMMETRY_FRAMES = 40
#: frames not fitted to on which a version's validation error is measured, at most
VALIDATION_FRAMES = 400


@dataclass(frozen=True)
class FitSettings:
    """How a version is fitted."""

    max_frames: int  #: frames the main model is fitted to at most
    kernel_width: float = 10.0  #: sGDML's sigma
    regularisation: float = 1e-10  #: sGDML's lambda
    processes: int = 1  #: processes sGDML uses to assemble the kernel


@dataclass
class LearnedModel:
    """One version of the learned force field: main model and committee."""

    version: int
    models: list[dict[str, Any]]  #: sGDML model dicts: main, half a, half b
    trained: np.ndarray  #: indices of the frames the main model was fitted to
    perms: np.ndarray  #: the symmetries sGDML found in them
    frames: int  #: frames available when it was fitted
    validation_force_mae: float | None  #: eV/Å, on frames it was not fitted to
    validation_energy_mae: float | None  #: eV
    fit_seconds: float
    #: eV, mean of model minus calculator on those frames: its energy zero, which a
    #: single-point check's energy comparison removes
    energy_offset: float | None = None
    _fields: list[ForceField] | None = field(default=None, repr=False, compare=False)

    @property
    def force_fields(self) -> list[ForceField]:
        if self._fields is None:
            self._fields = [ForceField(m) for m in self.models]
        return self._fields

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fields": None}

    @property
    def reach(self) -> float | None:
        """None: a global model of the whole molecule sees every atom (a MACE version's is
        its cutoff)."""
        return None

    def describe(self) -> str:
        """What the version was fitted to and how well (no wall-clock figures: a timeline
        line must be the same in every run of the same seed)."""
        val = ("" if self.validation_force_mae is None else
               f", validation force error {self.validation_force_mae:.3g} eV/Å")
        return f"version {self.version}: {len(self.trained)} of {self.frames} frames{val}"

    def calculators(self) -> list[Calculator]:
        """An ASE calculator for each model, main first (as a MACE version offers them)."""
        return [ForceFieldCalculator(ff) for ff in self.force_fields]


class ForceField:
    """A fitted sGDML model: energies (eV) and forces (eV/Å) of a batch of geometries."""

    def __init__(self, model: dict[str, Any]):
        _quiet_sgdml()
        from sgdml.predict import GDMLPredict

        self._predict = GDMLPredict(model, max_processes=1, log_level=logging.WARNING)

    def __call__(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B,) energies and (B, N, 3) forces of (B, N, 3) positions."""
        positions = np.asarray(positions, dtype=float)
        e, f = self._predict.predict(positions.reshape(len(positions), -1))
        return (np.asarray(e, dtype=float).reshape(-1) * KCAL_MOL,
                np.asarray(f, dtype=float).reshape(positions.shape) * KCAL_MOL)


class ForceFieldCalculator(Calculator):
    """A force field as an ASE calculator (energy and forces of the atoms' positions)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, force_field: ForceField):
        super().__init__()
        self.force_field = force_field

    def calculate(self, atoms: Atoms | None = None, properties: Any = None,
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        e, f = self.force_field(self.atoms.positions[None])
        self.results = {"energy": float(e[0]), "forces": f[0]}


def learned_atoms(calculator: Calculator, numbers: np.ndarray, masses: np.ndarray,
                  cell: Cell | None = None) -> Atoms:
    """Atoms (in ``cell``, if given) whose calculator is a learned model's."""
    atoms = Atoms(numbers=numbers, masses=masses)
    if cell is not None:
        atoms.cell, atoms.pbc = cell.vectors, cell.pbc
    atoms.calc = calculator
    return atoms


def fit_force_field(positions: np.ndarray, forces: np.ndarray, energies: np.ndarray,
                    numbers: np.ndarray, settings: FitSettings, version: int,
                    preferred: np.ndarray | None = None) -> LearnedModel:
    """The main model on an even subset of the frames (in the order they were made; the
    ``preferred`` ones first: ``dataset.pick_frames``), two half-models on its even and odd
    members, and the main model's error on the rest.

    The symmetries are searched for in every fit: the first frames of a run may show none
    that later ones reveal (a methyl group that has not turned yet).
    """
    t0 = time.perf_counter()
    n = len(positions)
    if n < 4:
        raise ValueError(f"a force field needs at least 4 frames, got {n}")
    trained = pick_frames(n, settings.max_frames, preferred)
    perms = _symmetries(positions[trained], numbers, settings.processes)
    models = [_fit(positions[idx], forces[idx], energies[idx], numbers, perms, settings)
              for idx in (trained, trained[0::2], trained[1::2])]
    rest = np.setdiff1d(np.arange(n), trained)
    force_mae = energy_mae = offset = None
    if len(rest):
        held = rest[np.linspace(0, len(rest), min(VALIDATION_FRAMES, len(rest)),
                                endpoint=False).astype(int)]
        e, f = ForceField(models[0])(positions[held])
        force_mae = float(np.abs(f - forces[held]).mean())
        energy_mae = float(np.abs(e - energies[held]).mean())
        offset = float((e - energies[held]).mean())
    return LearnedModel(version, models, trained, perms, n, force_mae, energy_mae,
                        time.perf_counter() - t0, offset)


def _quiet_sgdml() -> None:
    """Import sgdml without its side effects on logging.

    sgdml makes every logger created after its import a colored one that prints to stderr
    at INFO; torch, which sgdml's trainer imports, would create its loggers then. So torch
    comes first, sgdml's logger class is undone, and its own messages are kept to errors
    (its trainer's warnings are about data sets, which a run checks its own way).
    """
    importlib.import_module("torch")  # before sgdml, see above
    import sgdml  # noqa: F401

    if logging.getLoggerClass().__module__.startswith("sgdml"):
        logging.setLoggerClass(logging.Logger)
    for name in ("sgdml", "sgdml.train", "sgdml.predict", "sgdml.utils.perm"):
        logging.getLogger(name).setLevel(logging.ERROR)


_TRAINER: Any = None


def _trainer(processes: int) -> Any:
    """sGDML's trainer (it allows one instance per process)."""
    global _TRAINER
    _quiet_sgdml()
    if _TRAINER is None:
        from sgdml.train import GDMLTrain

        _TRAINER = GDMLTrain(max_processes=processes)
    _TRAINER._max_processes = processes
    return _TRAINER


def _symmetries(positions: np.ndarray, numbers: np.ndarray, processes: int) -> np.ndarray:
    _quiet_sgdml()
    from sgdml.utils import perm

    pick = np.linspace(0, len(positions), min(SYMMETRY_FRAMES, len(positions)),
                       endpoint=False).astype(int)
    return perm.find_perms(positions[pick], np.asarray(numbers), max_processes=processes)


def _fit(positions: np.ndarray, forces: np.ndarray, energies: np.ndarray, numbers: np.ndarray,
         perms: np.ndarray, settings: FitSettings) -> dict[str, Any]:
    _quiet_sgdml()
    import sgdml

    task = {
        "type": "t", "code_version": sgdml.__version__, "dataset_name": "hybridmd run frames",
        "dataset_theory": "the run's calculator", "z": np.asarray(numbers),
        "R_train": positions, "F_train": forces / KCAL_MOL, "E_train": energies / KCAL_MOL,
        "idxs_train": np.arange(len(positions)), "md5_train": "", "idxs_valid": np.arange(0),
        "md5_valid": "", "sig": settings.kernel_width, "lam": settings.regularisation,
        "use_E": True, "use_E_cstr": False, "use_sym": True, "perms": perms,
        "r_unit": "Ang", "e_unit": "kcal/mol",
    }
    return _trainer(settings.processes).train(task)


def export_sgdml_model(model: dict[str, Any], path: Path) -> None:
    """Write a model as an sGDML model file (arrays only, kcal/mol and Å)."""
    arrays = {k: np.asarray(v) for k, v in model.items()
              if v is not None and not isinstance(v, dict) and np.asarray(v).dtype != object}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
