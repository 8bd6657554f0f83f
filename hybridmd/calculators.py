"""ASE calculators from a validated config: sGDML, PySCF DFT, tblite xTB, or any ASE class.

``build_calculator`` checks what it can before any expensive work (an sGDML model against the
structure's atoms, a DFT basis/functional/spin, an xTB charge/multiplicity, an import path and
its keyword arguments) and raises ``ValueError`` with a message that says what to change.
``describe_calculator`` gives a JSON-able record of the calculator for run metadata.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import inspect
import json
import logging
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator, Calculator, all_changes
from ase.data import chemical_symbols

from hybridmd.config import (
    ASECalculatorConfig,
    CalculatorConfig,
    DFTConfig,
    SGDMLConfig,
    SocketCalculatorConfig,
    XTBConfig,
)
from hybridmd.config.calculator import DEFAULT_BASIS
from hybridmd.data import model_names, model_path
from hybridmd.errors import InputError, MissingFileError, reading
from hybridmd.periodic import Cell
from hybridmd.units import KCAL_MOL

log = logging.getLogger(__name__)

#: Worker processes for sGDML's numpy backend. sgdml would fork one per core; for the shipped
#: models (9 atoms, 1000 training points) one process is fastest (1.5 ms per call, 2 processes
#: 3.5 ms: the inter-process traffic costs more than the work).
SGDML_NUMPY_PROCESSES = 1


class CalculatorMismatchError(InputError):
    """The calculator cannot describe this structure (e.g. an sGDML model for other atoms)."""


class CalculatorInputError(InputError):
    """A ``calculator:`` section that cannot be built (unknown functional, bad kwargs, ...)."""


def build_calculator(cfg: CalculatorConfig, atoms: Atoms) -> BaseCalculator:
    """Construct the calculator ``cfg`` describes, checked against ``atoms`` (not attached).

    Raises ``CalculatorMismatchError`` or ``CalculatorInputError`` (both ``InputError``,
    both ``ValueError``) that say what to change in the ``calculator:`` section.
    """
    if isinstance(cfg, SGDMLConfig) and any(atoms.pbc):
        raise CalculatorInputError(
            "calculator: an sGDML model describes one molecule in vacuum, and the system is "
            f"{Cell.of(atoms).describe()}; use a periodic calculator (type: xtb or dft, or any "
            "ASE calculator with type: ase), or give the system without a cell")
    try:
        if isinstance(cfg, SGDMLConfig):
            return _build_sgdml(cfg, atoms)
        if isinstance(cfg, DFTConfig):
            return _build_dft(cfg, atoms)
        if isinstance(cfg, XTBConfig):
            return _build_xtb(cfg, atoms)
        if isinstance(cfg, ASECalculatorConfig):
            return _build_ase(cfg)
        if isinstance(cfg, SocketCalculatorConfig):
            return _build_socket(cfg)
    except InputError:
        raise
    except ValueError as exc:  # the builders' checks: each says what to change
        text = str(exc)
        raise CalculatorInputError(text if text.startswith("calculator")
                                   else f"calculator: {text}") from exc
    raise TypeError(f"unknown calculator config {type(cfg).__name__}")


def close_calculator(calc: BaseCalculator | None) -> None:
    """End what a calculator runs outside this process (a socket client), where it can."""
    close = getattr(calc, "close", None)
    if callable(close):
        close()


def describe_calculator(cfg: CalculatorConfig) -> dict[str, Any]:
    """JSON-able description of a calculator config for run metadata."""
    if isinstance(cfg, SGDMLConfig):
        path = sgdml_model_path(cfg.model)
        desc: dict[str, Any] = {
            "type": "sgdml",
            "model": cfg.model,
            "model_path": str(path.resolve()),
            "backend": "torch" if cfg.use_torch else "numpy",
            "package": "sgdml",
            "version": _version("sgdml"),
        }
        try:
            info = read_sgdml_model(path)
        except ValueError:
            info = {}
        desc.update({k: v for k, v in info.items() if k != "z"})
    elif isinstance(cfg, DFTConfig):
        hf = cfg.functional.strip().upper() == "HF"
        desc = {
            "type": "dft",
            "method": ("U" if cfg.spin else "R") + ("HF" if hf else "KS"),
            **cfg.model_dump(exclude={"type"}),
            "basis": cfg.basis or DEFAULT_BASIS,  # without one: by molecule or periodic system
            "package": "pyscf",
            "version": _version("pyscf"),
        }
    elif isinstance(cfg, XTBConfig):
        desc = {
            "type": "xtb",
            **cfg.model_dump(exclude={"type"}),
            "package": "tblite",
            "version": _version("tblite"),
        }
    elif isinstance(cfg, ASECalculatorConfig):
        top = cfg.import_path.replace(":", ".").split(".")[0]
        dist = importlib.metadata.packages_distributions().get(top, [top])[0]
        desc = {
            "type": "ase",
            "import_path": cfg.import_path,
            "kwargs": json.loads(json.dumps(cfg.kwargs, default=repr)),
            "package": dist,
            "version": _version(dist),
        }
    elif isinstance(cfg, SocketCalculatorConfig):
        # the client's program, input and level of theory are the user's: the command and
        # the files' contents (checked on --resume with the run's other files) say them
        desc = {"type": "socket", "command": cfg.command,
                "files": [str(path) for path in cfg.files], "box_A": cfg.box_A,
                "package": "i-PI socket client"}
    else:
        raise TypeError(f"unknown calculator config {type(cfg).__name__}")
    return desc


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _formula(numbers: np.ndarray | list[int]) -> str:
    return Atoms(numbers=numbers).get_chemical_formula(mode="hill")


# ----------------------------------------------------------------------------- sGDML


def sgdml_model_path(model: str) -> Path:
    """File of an sGDML model given as a shipped name or a path."""
    return model_path(model) if model in model_names() else Path(model)


def read_sgdml_model(path: Path) -> dict[str, Any]:
    """Species (``z``) and metadata of a trained sGDML model; ValueError if it is none."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz archive; give an sGDML model file (.npz)")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # OSError, ValueError (pickle), zipfile.BadZipFile, ...
        raise ValueError(
            f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}); "
            "give an sGDML model file"
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array, not an sGDML model (.npz of arrays)")
    with npz:
        keys = set(npz.files)
        kind = str(npz["type"]) if "type" in keys else None
        if not {"z", "R_desc"} <= keys:
            if kind == "d" or {"R", "z", "F"} <= keys:
                hint = ("it is an sGDML *data set* (R, z, E, F), not a trained model; "
                        "train one with `sgdml all <dataset>.npz` and give the model file")
            else:
                hint = f"it has keys {sorted(keys)}, a model has z, R_desc, R_d_desc_alpha, ..."
            raise ValueError(f"{path} is not an sGDML model: {hint}")
        if kind not in (None, "m", "b'm'"):
            raise ValueError(f"{path} is not an sGDML model (type {kind!r}, expected 'm')")
        info: dict[str, Any] = {
            "z": npz["z"].astype(int),
            "species": _formula(npz["z"]),
            "n_train": int(npz["R_desc"].shape[1]),
        }
        for key in ("dataset_name", "code_version", "e_mae", "f_mae"):
            if key in keys and npz[key].dtype.kind in "biufSU":
                value = npz[key].item() if npz[key].ndim == 0 else npz[key].tolist()
                info[key] = value.decode(errors="replace") if isinstance(value, bytes) else value
    return info


def check_sgdml_species(model_numbers: np.ndarray, numbers: np.ndarray, model: str) -> None:
    """Raise CalculatorMismatchError unless the structure's atoms are the model's, in order."""
    model_numbers = np.asarray(model_numbers, dtype=int)
    numbers = np.asarray(numbers, dtype=int)
    if np.array_equal(model_numbers, numbers):
        return
    fm, fs = _formula(model_numbers), _formula(numbers)
    head = f"calculator.model: sGDML model {model} does not fit the structure: "
    if len(model_numbers) != len(numbers):
        raise CalculatorMismatchError(
            head + f"the model has {len(model_numbers)} atoms ({fm}), the structure "
            f"{len(numbers)} ({fs}). Use a model trained for this molecule or the matching "
            "structure"
        )
    cm, cs = Counter(model_numbers.tolist()), Counter(numbers.tolist())
    if cm != cs:
        diffs = []
        for z in sorted(set(cm) | set(cs)):
            d = cs[z] - cm[z]
            if d:
                diffs.append(f"{abs(d)} {chemical_symbols[z]} {'more' if d > 0 else 'fewer'}")
        raise CalculatorMismatchError(
            head + f"both have {len(numbers)} atoms but a different composition, model {fm}, "
            f"structure {fs} (the structure has "
            f"{', '.join(diffs)}). Use a model trained for this molecule"
        )
    bad = np.flatnonzero(model_numbers != numbers)
    shown = "; ".join(
        f"atom {i} is {chemical_symbols[model_numbers[i]]} in the model, "
        f"{chemical_symbols[numbers[i]]} in the structure"
        for i in bad[:3]
    )
    more = f" (and {len(bad) - 3} more positions)" if len(bad) > 3 else ""
    # A reordering of the structure with the model's species sequence, stable within elements.
    pools = {z: list(np.flatnonzero(numbers == z)) for z in cm}
    order = [int(pools[z].pop(0)) for z in model_numbers]
    raise CalculatorMismatchError(
        head + f"same composition ({fm}) but a different atom order: {shown}{more} "
        "(0-based indices). A permutation of the structure's atoms matches the model's "
        f"element sequence, e.g. atoms[{order}]; reorder the structure so that each atom "
        "corresponds to the model's atom at the same index"
    )


@functools.cache
def _sgdml_calculator_class() -> type[Calculator]:
    """SGDMLCalculator with sgdml 1.0.3's rough edges filed off (imported on first use)."""
    import psutil
    import sgdml  # noqa: F401  (sets a global logger class, undone below)

    if logging.getLoggerClass().__module__.startswith("sgdml"):
        # sgdml makes every logger created after its import a ColoredLogger with its own
        # stderr handler, which prints each message twice next to the root handler.
        logging.setLoggerClass(logging.Logger)
    from sgdml.intf.ase_calc import SGDMLCalculator
    from sgdml.predict import GDMLPredict

    class HybridSGDMLCalculator(SGDMLCalculator):
        """sGDML force field (model in kcal/mol and Å) for ASE.

        Differs from ``SGDMLCalculator``: the numpy backend uses ``max_processes`` processes
        instead of forking one per core, and skips ``prepare_parallel`` (its benchmark picks a
        chunk size of 1 for single geometries, 15x slower than the default, and writes a cache
        file into site-packages); the energy is a float, not a 1-element array; no warning
        about units on every construction.
        """

        implemented_properties = ("energy", "forces")

        def __init__(self, model_path: str | Path, use_torch: bool = False,
                     max_processes: int = 1, **kwargs: Any):
            Calculator.__init__(self, **kwargs)
            self.log = logging.getLogger("sgdml.intf.ase_calc")
            memory_gb = max(1, min(32, psutil.virtual_memory().total // 2**30 // 2))
            model = np.load(model_path, allow_pickle=False)  # arrays only: no code from files
            self.gdml_predict = GDMLPredict(
                model, use_torch=use_torch, max_processes=max_processes, max_memory=memory_gb
            )
            self.E_to_eV = self.F_to_eV_Ang = KCAL_MOL
            self.Ang_to_R = 1.0
            self.model_path = str(model_path)
            self.use_torch = use_torch

        def calculate(self, atoms: Atoms | None = None, properties: Any = ("energy", "forces"),
                      system_changes: Any = all_changes) -> None:
            """Energy (float, eV) and forces (eV/Å) from one prediction."""
            super().calculate(atoms, properties, system_changes)
            self.results["energy"] = float(np.asarray(self.results["energy"]).reshape(-1)[0])
            self.results["free_energy"] = self.results["energy"]
            self.results["forces"] = np.asarray(self.results["forces"], dtype=float)

    return HybridSGDMLCalculator


def _build_sgdml(cfg: SGDMLConfig, atoms: Atoms) -> Calculator:
    path = sgdml_model_path(cfg.model)
    if not path.is_file():
        raise MissingFileError(f"calculator.model: sGDML model file not found: {path}")
    with reading(path, "an sGDML model", key="calculator.model"):
        model_numbers = read_sgdml_model(path)["z"]
    check_sgdml_species(model_numbers, atoms.numbers, cfg.model)
    if cfg.use_torch:
        import torch  # noqa: F401  (fail here, clearly, if the torch backend cannot run)
    with reading(path, "an sGDML model", key="calculator.model"):
        calc = _sgdml_calculator_class()(
            path, use_torch=cfg.use_torch, max_processes=SGDML_NUMPY_PROCESSES
        )
    predict = calc.gdml_predict
    if cfg.use_torch:
        import torch

        log.info("sGDML %s: torch backend on %s (%d threads)", path.name,
                 predict.torch_device, torch.get_num_threads())
    else:
        log.info("sGDML %s: numpy backend, %d process(es)", path.name,
                 predict.num_workers + 1)
    return calc


# ----------------------------------------------------------------------------- DFT, xTB


#: the dft keys that apply to one kind of system only
DFT_ONLY = {"molecule": ("grid_level",), "periodic": ("pseudo", "ke_cutoff")}


def _build_dft(cfg: DFTConfig, atoms: Atoms) -> Calculator:
    """PySCF's molecular DFT for a molecule, its Γ-point periodic DFT for a periodic cell."""
    from pyscf import lib

    from hybridmd.pyscf_calculator import PySCFCalculator
    from hybridmd.pyscf_pbc_calculator import PySCFPBCCalculator

    kind, other = ("periodic", "molecule") if any(atoms.pbc) else ("molecule", "periodic")
    misplaced = sorted(set(DFT_ONLY[other]) & cfg.model_fields_set)
    if misplaced:
        key = misplaced[0]
        hint = " (ke_cutoff sets a periodic system's grid)" if key == "grid_level" else ""
        raise ValueError(
            f"calculator.{key} applies to a {other.replace('periodic', 'periodic system')} "
            f"only, and the system is {Cell.of(atoms).describe()}; remove {key}{hint}")
    params = cfg.model_dump(exclude={"type", *DFT_ONLY[other]})
    params["basis"] = cfg.basis or DEFAULT_BASIS[kind]
    cls = PySCFPBCCalculator if kind == "periodic" else PySCFCalculator
    calc = cls(**params)
    calc.check(atoms)
    where = (f", Γ point, {params['pseudo']}, ke_cutoff {params['ke_cutoff']:g} Ha"
             if kind == "periodic" else "")
    log.info("PySCF %s %s/%s%s, %d thread(s)", calc.method_name, cfg.functional,
             params["basis"], where, lib.num_threads())
    return calc


def _build_xtb(cfg: XTBConfig, atoms: Atoms) -> Calculator:
    from tblite.ase import TBLite

    from hybridmd.pyscf_calculator import check_spin

    check_spin(atoms.numbers, cfg.charge, cfg.multiplicity - 1, key="multiplicity")
    log.info("tblite %s, charge %d, multiplicity %d", cfg.method, cfg.charge, cfg.multiplicity)

    class FreshTBLite(TBLite):
        """tblite from a fresh start at every call: its SCF otherwise starts from the last
        wavefunction, so the forces at the same positions depended on the calls before (by
        about 1e-5 eV/Å). Fresh, forces are a function of the positions alone: a resumed run
        and the monitors (their own calculators) get the very same numbers, for a few more
        SCF iterations a call."""

        def calculate(self, *args: Any, **kwargs: Any) -> None:
            self._xtb = self._res = None
            super().calculate(*args, **kwargs)

    return FreshTBLite(
        method=cfg.method,
        charge=cfg.charge,
        multiplicity=cfg.multiplicity,
        accuracy=cfg.accuracy,
        verbosity=0,
    )


# ----------------------------------------------------------------------------- any ASE class

def _build_socket(cfg: SocketCalculatorConfig) -> Calculator:
    from hybridmd.socket_calculator import SocketCalculator

    # an address the user gave is that client's; a started client gets a unique one
    address = cfg.address if cfg.command is None or cfg.socket == "inet" else None
    return SocketCalculator(command=cfg.command, files=cfg.files, socket_kind=cfg.socket,
                            address=address, port=cfg.port,
                            connect_timeout_s=cfg.connect_timeout_s, box_A=cfg.box_A)


def _split_import_path(path: str) -> tuple[str, str]:
    if ":" in path:
        module, _, attr = path.partition(":")
    else:
        module, _, attr = path.rpartition(".")
    if not module or not attr or ":" in attr:
        raise ValueError(
            f"calculator.import_path {path!r} is not of the form 'package.module:ClassName'"
        )
    return module, attr


def import_calculator_class(path: str) -> type[BaseCalculator]:
    """The ASE calculator class named by ``module:Class`` or ``module.Class``."""
    module_name, attr = _split_import_path(path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ValueError(
                f"calculator.import_path {path!r}: no module named {exc.name!r}; check the "
                "spelling or install the package that provides it"
            ) from None
        raise ValueError(
            f"calculator.import_path {path!r}: module {module_name!r} needs {exc.name!r}, "
            f"which is not installed; install it ({exc})"
        ) from None
    except Exception as exc:
        raise ValueError(
            f"calculator.import_path {path!r}: importing {module_name!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        found = sorted(
            name for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, BaseCalculator)
        )
        close = difflib.get_close_matches(attr, found, n=1)
        hint = (f"did you mean {module_name}:{close[0]}?" if close else
                f"calculator classes there: {', '.join(found)}" if found else
                "it defines no ASE calculator class")
        raise ValueError(
            f"calculator.import_path {path!r}: module {module_name!r} has no attribute "
            f"{attr!r}; {hint}"
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, BaseCalculator)):
        what = (f"an instance of {type(obj).__name__}" if not isinstance(obj, type)
                else f"the class {obj.__name__}, which is no ASE calculator")
        if inspect.ismodule(obj):
            what = "a module"
        raise ValueError(
            f"calculator.import_path {path!r} names {what}; it must name an ASE calculator "
            "class (a subclass of ase.calculators.calculator.Calculator), e.g. "
            "'ase.calculators.lj:LennardJones'"
        )
    return obj


def _check_kwargs(cls: type[BaseCalculator], kwargs: dict[str, Any], path: str) -> None:
    """Catch misspelt keywords, which most ASE calculators would store and silently ignore.

    A keyword that is neither a constructor argument (of the class or its bases) nor in the
    class's ``default_parameters`` is an error when it closely resembles one of those (a typo),
    and a logged warning otherwise (some calculators take free-form options).
    """
    known: set[str] = set(getattr(cls, "default_parameters", None) or {})
    takes_any = False
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return
        known |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        takes_any = takes_any or any(p.kind is p.VAR_KEYWORD for p in params)
    if not takes_any:
        return  # the constructor itself rejects unknown keywords with a TypeError
    known.discard("self")
    for key in kwargs:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        if close:
            raise ValueError(
                f"calculator.kwargs: {cls.__name__} ({path}) has no parameter {key!r}; "
                f"did you mean {close[0]!r}? (ASE would store {key!r} and ignore it)"
            )
        log.warning(
            "calculator.kwargs: %r is not a declared parameter of %s (%s); ASE calculators "
            "store unknown keywords without using them, so check that it takes effect",
            key, cls.__name__, path,
        )


def _build_ase(cfg: ASECalculatorConfig) -> BaseCalculator:
    cls = import_calculator_class(cfg.import_path)
    _check_kwargs(cls, cfg.kwargs, cfg.import_path)
    try:
        calc = cls(**cfg.kwargs)
    except TypeError as exc:
        try:
            sig = str(inspect.signature(cls.__init__)).replace("self, ", "", 1)
        except (TypeError, ValueError):
            sig = "(...)"
        raise ValueError(
            f"calculator.kwargs {cfg.kwargs!r} do not fit {cfg.import_path} {sig}: {exc}; "
            "fix the keyword names and values under calculator.kwargs"
        ) from None
    except Exception as exc:  # e.g. a missing program or library the calculator needs
        raise ValueError(
            f"constructing {cfg.import_path} with calculator.kwargs {cfg.kwargs!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    log.info("ASE calculator %s(%s)", cfg.import_path,
             ", ".join(f"{k}={v!r}" for k, v in cfg.kwargs.items()))
    return calc
