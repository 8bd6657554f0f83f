"""A local, size-extensive force field learned from the run's expensive frames: MACE.

sGDML (``hybrid.force_field``) is a global model of one molecule: it cannot learn a cluster
of many waters or a periodic box. MACE sums atomic energies of local environments (within
``r_max``), so one model serves any number of atoms and periodic cells. Units: eV and Å.

- ``MaceSettings``: the architecture (mace-torch's defaults, made small) and the training.
- ``fit_mace``: one version, trained in-process with mace-torch's own model builder
  (``configure_model`` of ``mace.cli.run_train``), data classes and training step; the main
  model and its committee. A deterministic function of the frames and the seed.
- ``MaceModel``: the version as state dicts and the configuration that rebuilds them
  (picklable without live modules); ``calculators()``: a ``MaceCalculator`` (ASE, float64,
  periodic cells included) for each model, main first.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols

from hybridmd.config.hybrid import MACE_EPOCHS, MACE_MAX_L, MACE_R_MAX_A
from hybridmd.hybrid.dataset import pick_frames

log = logging.getLogger(__name__)

#: frames not fitted to on which a version's validation error is measured, at most
VALIDATION_FRAMES = 400
#: held while torch's process-wide default dtype is set (a fit in a thread, force calls)
_DTYPE_LOCK = threading.RLock()


@dataclass(frozen=True)
class MaceSettings:
    """How a MACE version is built and trained."""

    r_max: float = MACE_R_MAX_A  #: Å, the radius of an atom's environment
    channels: int = 16  #: features per atom and irrep (32: as accurate, twice the cost)
    max_L: int = MACE_MAX_L  #: highest order of the hidden features (0: invariant messages)
    correlation: int = 2  #: body order minus one of each product
    interactions: int = 2  #: message-passing layers
    max_ell: int = 3  #: highest order of the edge spherical harmonics
    epochs: int = MACE_EPOCHS  #: passes over the frames (the learning rate decays to a tenth)
    batch_size: int = 3  #: frames per step: small batches, many steps, for a short fit
    learning_rate: float = 0.04  #: Adam's (mace's default 0.01 is for hundreds of epochs)
    warm_learning_rate: float = 0.01  #: from trained weights (``start_from``): 0.04 undoes them
    energy_weight: float = 1.0  #: of the squared per-atom energy error in the loss
    forces_weight: float = 100.0  #: of the squared force error (mace's defaults)
    committee: int = 3  #: models: the main one and committee - 1 others
    committee_halves: bool = False  #: others on halves of the frames (else: other seeds)
    validation_share: float = 0.1  #: frames held out to measure the main model's error
    seed: int = 0
    threads: int = 1  #: torch threads during the fit
    dtype: str = "float32"  #: of the training (evaluation is float64)


@dataclass
class MaceModel:
    """One version of the learned MACE force field: main model and committee."""

    version: int
    config: dict[str, Any]  #: ScaleShiftMACE's constructor arguments
    states: list[dict[str, Any]]  #: state dicts: main first
    trained: np.ndarray  #: indices of the frames the main model was fitted to
    frames: int  #: frames available when it was fitted
    validation_force_mae: float | None  #: eV/Å, on frames it was not fitted to
    validation_energy_mae: float | None  #: eV
    fit_seconds: float
    #: eV, mean of model minus calculator on those frames: its energy zero, which a
    #: single-point check's energy comparison removes
    energy_offset: float | None = None
    _modules: list[Any] | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_modules": None}

    @property
    def modules(self) -> list[Any]:
        """The committee as float64 torch modules (built at first use)."""
        if self._modules is None:
            self._modules = [_build(self.config, s) for s in self.states]
        return self._modules

    @property
    def reach(self) -> float:
        """The cutoff, Å: an atom's energy depends on nothing farther (no long-range tail)."""
        return float(self.config["r_max"])

    @property
    def elements(self) -> list[int]:
        return [int(z) for z in self.config["atomic_numbers"]]

    def calculators(self) -> list[Calculator]:
        """An ASE calculator for each model of the committee, main first."""
        return [MaceCalculator(m) for m in self.modules]

    def describe(self) -> str:
        """What the version was fitted to and how well (no wall-clock figures)."""
        val = ("" if self.validation_force_mae is None else
               f", validation force error {self.validation_force_mae:.3g} eV/Å")
        return f"version {self.version}: {len(self.trained)} of {self.frames} frames{val}"


class MaceCalculator(Calculator):
    """A MACE model as an ASE calculator: energy (eV) and forces (eV/Å), float64, with the
    atoms' cell and periodic boundaries."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, module: Any):
        super().__init__()
        self.module = module

    def calculate(self, atoms: Atoms | None = None, properties: Any = None,
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        e, f = _evaluate(self.module, [_config(a.numbers, a.positions, a.cell.array, a.pbc)])
        self.results = {"energy": float(e[0]), "free_energy": float(e[0]), "forces": f[0]}


def fit_mace(positions: np.ndarray, forces: np.ndarray, energies: np.ndarray,
             numbers: np.ndarray, settings: MaceSettings, version: int,
             cell: np.ndarray | None = None, pbc: Any = None,
             start_from: MaceModel | str | Path | None = None,
             max_frames: int | None = None,
             preferred: np.ndarray | None = None) -> MaceModel:
    """The main model on all frames but an evenly spaced validation share, the committee
    (other seeds, or halves of the same frames), and the main model's error on the rest.

    ``cell`` (3, 3) and ``pbc`` (3 booleans) are those of every frame. ``start_from``: a
    previous version (its models go on training on these frames) or a MACE model file
    (e.g. a foundation model, fine-tuned here to these frames). ``max_frames``: at most this
    many frames, evenly spread in the order they were made (the ``preferred`` ones first:
    ``dataset.pick_frames``; the validation share among them).
    """
    import torch

    t0 = time.perf_counter()
    n = len(positions)
    if n < 4:
        raise ValueError(f"a force field needs at least 4 frames, got {n}")
    numbers = np.asarray(numbers, dtype=int)
    used = pick_frames(n, max_frames or n, preferred)
    held = used[_held_out(len(used), settings.validation_share)]
    trained = np.setdiff1d(used, held)
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        with _quiet_mace():
            configs = {i: _config(numbers, positions[i], cell, pbc, forces[i], energies[i])
                       for i in used}
            config, modules = _fit_committee([configs[i] for i in trained], numbers,
                                             settings, start_from)
    finally:
        torch.set_num_threads(threads)
    states = [{k: v.clone() for k, v in m.state_dict().items()} for m in modules]
    model = MaceModel(version, config, states, trained, n, None, None, 0.0, _modules=modules)
    if len(held):
        e, f = _evaluate(model.modules[0], [configs[i] for i in held])
        model.validation_force_mae = float(np.abs(f - forces[held]).mean())
        model.validation_energy_mae = float(np.abs(e - energies[held]).mean())
        model.energy_offset = float((e - energies[held]).mean())
    model.fit_seconds = time.perf_counter() - t0
    log.info("MACE %s in %.1f s", model.describe(), model.fit_seconds)
    return model


def _held_out(n: int, share: float) -> np.ndarray:
    """Evenly spaced frames kept from the fit (none for a share of 0)."""
    count = max(0, min(int(round(share * n)), VALIDATION_FRAMES, n - 2))
    return ((np.arange(count) + 0.5) * n / max(count, 1)).astype(int)


def _config(numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None, pbc: Any,
            forces: np.ndarray | None = None, energy: float | None = None) -> Any:
    from mace.data import Configuration

    props = {} if forces is None else {"forces": np.asarray(forces, dtype=float),
                                       "energy": float(energy)}
    periodic = None if pbc is None else tuple(bool(p) for p in np.broadcast_to(pbc, 3))
    return Configuration(atomic_numbers=np.asarray(numbers), positions=np.asarray(positions),
                         properties=props, property_weights={k: 1.0 for k in props},
                         cell=None if cell is None else np.asarray(cell, dtype=float),
                         pbc=periodic)


def _not_mace_info(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or "/mace/" not in record.pathname


def import_mace() -> None:
    """mace imported without the line it prints when cuequivariance is missing nor e3nn's
    warning about the weights-only switch mace sets for its own files. Called before a MACE
    version comes back from the learner too: unpickling one imports mace."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Environment variable TORCH_FORCE_NO_WEIGHTS")
        import mace.modules  # noqa: F401
        import mace.tools.cg  # noqa: F401


@contextlib.contextmanager
def _quiet_mace() -> Iterator[None]:
    """mace imported quietly, and its INFO lines to the root logger (a page per fit in a
    run's log) dropped meanwhile."""
    import_mace()
    logging.getLogger().addFilter(_not_mace_info)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(_not_mace_info)


@contextlib.contextmanager
def _dtype(dtype: str = "float64") -> Iterator[None]:
    """torch's default dtype for mace's data and modules (restored after), and TorchScript's
    graph optimisation off: e3nn's scripted spherical harmonics would otherwise switch to a
    fused graph after their first calls in a process, and the first fit of a process would
    differ from the next in the last bits."""
    import torch
    from mace.tools.torch_tools import default_dtype

    with _DTYPE_LOCK, default_dtype(dtype), torch.jit.optimized_execution(False):
        yield


def _graphs(configs: list[Any], elements: Any, r_max: Any) -> list[Any]:
    """mace's graphs of configurations: one-hot elements, neighbours within r_max (periodic
    images included)."""
    from mace.data import AtomicData
    from mace.tools import AtomicNumberTable

    table = AtomicNumberTable([int(z) for z in elements])
    return [AtomicData.from_config(c, z_table=table, cutoff=float(r_max)) for c in configs]


def _evaluate(module: Any, configs: list[Any],
              forces: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Energies (B,) and forces (B, N, 3) of one float64 model on configurations of N atoms."""
    from mace.tools import torch_geometric

    with _dtype():
        batch = torch_geometric.Batch.from_data_list(
            _graphs(configs, module.atomic_numbers, module.r_max))
        out = module(batch.to_dict(), training=False, compute_force=forces)
    f = out["forces"].detach().numpy().reshape(len(configs), -1, 3).copy() if forces else None
    return out["energy"].detach().numpy().copy(), f


def _build(config: dict[str, Any], state: dict[str, Any], dtype: str = "float64",
           trainable: bool = False) -> Any:
    """A ScaleShiftMACE from its configuration and weights (evaluation unless trainable)."""
    with _quiet_mace():
        from mace.modules import ScaleShiftMACE
        from mace.tools.compile import disable_e3nn_codegen

    with _dtype(dtype), disable_e3nn_codegen():
        module = ScaleShiftMACE(**config)
        module.load_state_dict(state)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(trainable)
    return module


def _fit_committee(configs: list[Any], numbers: np.ndarray, settings: MaceSettings,
                   start_from: MaceModel | str | Path | None
                   ) -> tuple[dict[str, Any], list[Any]]:
    """The committee's common configuration and its float64 models: each built (or taken
    from ``start_from``) and trained on its frames with its own seed."""
    import torch
    from mace.tools.scripts_utils import extract_config_mace_model

    k = settings.committee
    subsets = ([configs] + [configs[j::k - 1] for j in range(k - 1)]
               if settings.committee_halves and k > 1 else [configs] * k)
    foundation = _foundation(start_from, numbers) if start_from is not None else None
    done = []
    for j, subset in enumerate(subsets):
        seed = settings.seed + j
        if isinstance(start_from, MaceModel):
            state = start_from.states[min(j, len(start_from.states) - 1)]
            module = _build(start_from.config, state, settings.dtype, trainable=True)
        else:
            with _dtype(settings.dtype):  # the seed and the draws from it, in one turn
                torch.manual_seed(seed)
                module = _new_module(subset, numbers, settings, foundation)
        _train(module, subset, settings, seed, warm=start_from is not None)
        if j == 0:
            config = (start_from.config if isinstance(start_from, MaceModel)
                      else {**extract_config_mace_model(module),
                            "atomic_numbers": [int(z) for z in module.atomic_numbers]})
        done.append(_refit_e0s(_build(config, module.state_dict()), subset))
    return config, done


def _refit_e0s(module: Any, configs: list[Any]) -> Any:
    """The model with its atomic reference energies corrected by least squares on its energy
    errors (float64): the loss weighs energies little, and a constant offset per atom is
    what a network learns slowest."""
    import torch

    predicted = np.concatenate([_evaluate(module, configs[i:i + 50], forces=False)[0]
                                for i in range(0, len(configs), 50)])
    errors = np.array([c.properties["energy"] for c in configs]) - predicted
    counts = np.array([[np.count_nonzero(c.atomic_numbers == int(z)) for z in module.atomic_numbers]
                       for c in configs], dtype=float)
    correction = np.linalg.lstsq(counts, errors, rcond=None)[0]
    energies = module.atomic_energies_fn.atomic_energies
    energies += torch.tensor(correction, dtype=energies.dtype).reshape(energies.shape)
    return module


def _args(settings: MaceSettings) -> Any:
    """mace's run_train arguments (its defaults, our sizes), for its builders."""
    from mace.tools import build_default_arg_parser
    from mace.tools.arg_parser_tools import check_args

    args = build_default_arg_parser().parse_args([
        "--name", "hybridmd", "--model", "MACE", "--num_channels", str(settings.channels),
        "--max_L", str(settings.max_L), "--correlation", str(settings.correlation),
        "--num_interactions", str(settings.interactions), "--max_ell", str(settings.max_ell),
        "--r_max", str(settings.r_max), "--lr", str(settings.learning_rate),
        "--energy_weight", str(settings.energy_weight),
        "--forces_weight", str(settings.forces_weight), "--default_dtype", settings.dtype])
    args, _ = check_args(args)
    args.compute_energy = args.compute_forces = True
    args.compute_dipole = args.compute_polarizability = False
    return args


def _new_module(configs: list[Any], numbers: np.ndarray, settings: MaceSettings,
                foundation: Any) -> Any:
    """A model built by mace's ``configure_model``: atomic reference energies by least
    squares, scale from the force RMS, shift from the mean per-atom energy left."""
    import torch
    from mace import modules
    from mace.data import compute_average_E0s, estimate_e0s_from_foundation
    from mace.tools import AtomicNumberTable, torch_geometric
    from mace.tools.compile import disable_e3nn_codegen
    from mace.tools.model_script_utils import configure_model

    z_table = AtomicNumberTable(sorted({int(z) for z in numbers}))
    args = _args(settings)
    if foundation is None:
        e0s = compute_average_E0s(configs, z_table)
    else:  # its reference energies, corrected for these frames' level of theory
        foundation = foundation.to(torch.get_default_dtype())
        args.r_max = float(foundation.r_max)
        known = np.atleast_2d(foundation.atomic_energies_fn.atomic_energies.numpy())[0]
        e0s = estimate_e0s_from_foundation(foundation, {
            int(z): float(e) for z, e in zip(foundation.atomic_numbers, known, strict=True)},
            configs, z_table)
    atomic_energies = np.array([[e0s[z] for z in z_table.zs]])
    loader = torch_geometric.dataloader.DataLoader(
        _graphs(configs, z_table.zs, args.r_max), batch_size=settings.batch_size)
    args.avg_num_neighbors = modules.compute_avg_num_neighbors(loader)
    with disable_e3nn_codegen():
        module, _ = configure_model(args, loader, atomic_energies, foundation,
                                    heads=["Default"], z_table=z_table)
    return module


def _foundation(start_from: str | Path | MaceModel, numbers: np.ndarray) -> Any:
    """The model of a MACE model file (None for a previous version), checked to know every
    element of ``numbers``."""
    if isinstance(start_from, MaceModel):
        module, known, what = None, set(start_from.elements), f"version {start_from.version}"
    else:
        module = load_model_file(start_from)
        known, what = {int(z) for z in module.atomic_numbers}, f"MACE model {start_from}"
    problem = unknown_elements(known, numbers)
    if problem:
        raise ValueError(f"{what} {problem}")
    return module


def load_model_file(path: str | Path) -> Any:
    """A MACE model saved whole by mace-torch (``torch.save(model)``: a foundation model's
    ``.model`` file, or mace's own training's); a ValueError for anything else."""
    import torch

    with _quiet_mace():
        module = torch.load(Path(path), map_location="cpu", weights_only=False)
    if not all(hasattr(module, a) for a in ("atomic_numbers", "r_max", "atomic_energies_fn")):
        raise ValueError(f"it holds a {type(module).__name__}, not a MACE model saved whole "
                         "by mace-torch (torch.save of the model)")
    return module


def unknown_elements(known: set[int], numbers: np.ndarray) -> str | None:
    """What a model that knows the elements ``known`` lacks for atoms ``numbers``, or None."""
    missing = sorted({int(z) for z in numbers} - known)
    if not missing:
        return None
    return (f"does not know the elements {', '.join(chemical_symbols[z] for z in missing)} "
            f"of the system (it knows {', '.join(chemical_symbols[z] for z in sorted(known))})")


def _train(module: Any, configs: list[Any], settings: MaceSettings, seed: int,
           warm: bool) -> None:
    """``settings.epochs`` passes of Adam (AMSGrad, mace's parameter groups and loss) over
    the frames in an order drawn from ``seed``; the learning rate (``warm_learning_rate``
    for trained weights) decays to a tenth."""
    import torch
    from mace import modules
    from mace.tools import torch_geometric
    from mace.tools.scripts_utils import get_optimizer, get_params_options
    from mace.tools.train import take_step

    args = _args(settings)
    if warm:
        args.lr = settings.warm_learning_rate
    with _dtype(settings.dtype):
        graphs = _graphs(configs, module.atomic_numbers, module.r_max)
        loss_fn = modules.WeightedEnergyForcesLoss(settings.energy_weight,
                                                   settings.forces_weight)
    module.train()
    optimizer = get_optimizer(args, get_params_options(args, module))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(
        optimizer, gamma=0.1 ** (1 / max(settings.epochs, 1)))
    outputs = {"forces": True, "virials": False, "stress": False}
    rng = np.random.default_rng(seed)
    for _ in range(settings.epochs):
        order = rng.permutation(len(graphs))
        for start in range(0, len(order), settings.batch_size):
            batch = torch_geometric.Batch.from_data_list(
                [graphs[i] for i in order[start:start + settings.batch_size]])
            with _dtype(settings.dtype):
                take_step(module, loss_fn, batch, optimizer, None, outputs, args.clip_grad,
                          torch.device("cpu"))
        scheduler.step()
    module.eval()
