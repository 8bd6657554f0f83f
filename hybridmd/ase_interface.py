"""hybridmd inside an ASE workflow.

``InterpolatingObserver`` turns any ASE ``MolecularDynamics`` into a coarse-step run with a fine
trajectory: attached with ``dyn.attach(observer, interval=n)``, it hands the phase-space point of
every n-th step to the streaming interpolator worker, which writes the fine frames in between
while the dynamics goes on::

    with InterpolatingObserver(atoms, dyn, "ethanol-bilstm-10fs", "fine.traj") as observer:
        dyn.attach(observer, interval=20)
        dyn.run(2000)
    print(observer.frames_written)

``HybridDynamics`` is the adaptive hybrid loop of ``hybridmd run`` as an ASE dynamics, with the
user's own calculator: one of its steps is one segment of ``stride`` MD steps::

    dyn = HybridDynamics(atoms, timestep_fs=0.5, stride=20, directory="runs/mine",
                         forecaster="ethanol-forecaster-10fs",
                         interpolator="ethanol-bilstm-10fs", trajectory="coarse-copy.traj")
    dyn.attach(print_energy, interval=10)    # every 10 segments
    dyn.run(100)                             # 100 segments = 1 ps; run again to go on
    print(dyn.summary["force_calls"])
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.md import MolecularDynamics

from hybridmd.streaming import CoarseFrame, StreamingInterpolation
from hybridmd.streaming.worker import CLASSICAL
from hybridmd.trajectory import SPACING_RTOL

__all__ = ["HybridDynamics", "InterpolatingObserver"]

log = logging.getLogger(__name__)


class InterpolatingObserver:
    """An ASE observer that streams every call's state to an interpolator writing ``output``.

    Each call takes the current positions, momenta, forces and potential energy of ``atoms``
    (the calculator's results at these positions: no extra force call) at time
    ``dyn.nsteps · dyn.dt``, as one coarse frame. The number of MD steps between calls, n, is
    the stride of the fine trajectory: read from ``dyn.attach``'s interval at the first call
    (else from the steps between the first two calls), and checked against the interpolator:
    a trained network needs ``dyn.dt`` = its Δτ and n = its stride (``ethanol-bilstm-10fs``:
    0.5 fs and 20); ``linear``/``cubic``/``quintic`` take any n ≥ 2. ``interpolator`` is one of
    those, a shipped network's name or a checkpoint path.

    The fine frames are written by a worker (``transport``: ``thread``, ``process``, or ``mpi``
    with ``comm``/``worker_rank``; a script using ``process`` needs the
    ``if __name__ == "__main__":`` guard) through a bounded queue, so the dynamics never runs
    more than a few coarse frames ahead; ``options`` go to ``StreamingInterpolation``
    (``maxsize``, ``threads``, ``device``, ...). ``close`` (or leaving the ``with`` block) ends
    the stream and returns the number of fine frames; an exception in the block stops the
    worker, keeping the frames written so far.

    Thermostats: the interval from frame k to k+1 is interpolated from the momenta seen at
    frame k to those seen at frame k+1. With NVE (``VelocityVerlet``) or a thermostat acting
    only at those frames this is the deterministic segment the interpolator models; a
    thermostat acting at every step (ASE ``Langevin``, ``Bussi``) makes each frame's arrival
    and departure momenta the same (the observer sees one), and the fine frames are then exact
    only up to the thermostat's effect over the interval (small for weak coupling).
    """

    def __init__(self, atoms: Atoms, dyn: MolecularDynamics,
                 interpolator: str | Path = "ethanol-bilstm-10fs",
                 output: str | Path = "fine.traj", transport: str = "thread", **options: Any):
        self.atoms, self.dyn = atoms, dyn
        self.spec = str(interpolator)
        self.output = Path(output)
        self.dt_fs = dyn.dt / units.fs
        if transport not in ("thread", "process", "mpi"):
            raise ValueError(f"unknown transport {transport!r}: 'thread', 'process' or 'mpi'")
        self._options = {"transport": transport, **options}
        self._model: dict[str, Any] | None = None  #: stride, Δτ and species of a network
        if self.spec not in CLASSICAL:
            self._model = self._read_model()
        self.stride: int | None = None  #: MD steps between calls, once known
        self._first: CoarseFrame | None = None  #: the first call's state (index: MD step)
        self._next = 0  #: the coarse index the next call must have
        self._stream: StreamingInterpolation | None = None
        self._closed = False
        self.frames_written = 0  #: fine frames in ``output``, after ``close``

    def _read_model(self) -> dict[str, Any]:
        """A network's time grid and species, checked against the dynamics before any MD."""
        from hybridmd.interpolator_file import read_checkpoint

        data = read_checkpoint(self.spec)
        name = Path(data["path"]).name
        numbers = [int(z) for z in self.atoms.numbers]
        if list(data["numbers"]) != numbers:
            have = Atoms(numbers=numbers).get_chemical_formula()
            want = Atoms(numbers=data["numbers"]).get_chemical_formula()
            raise ValueError(f"{name} interpolates {want} with its atoms in the order "
                             f"{data['numbers']}; the dynamics moves {have}, {numbers}")
        if not np.isclose(data["dt_fs"], self.dt_fs, rtol=SPACING_RTOL):
            raise ValueError(f"{name} was trained on MD steps of Δτ = {data['dt_fs']:g} fs; the "
                             f"dynamics steps dt = {self.dt_fs:g} fs: run it at "
                             f"timestep={data['dt_fs']:g} * units.fs")
        return {"name": name, "stride": int(data["stride"]), "dt_fs": float(data["dt_fs"])}

    # -- the observer -------------------------------------------------------------------------
    def __call__(self) -> None:
        """Hand the current state to the interpolator (called by the dynamics)."""
        if self._closed:
            raise RuntimeError(f"the observer writing {self.output} is closed: detach it or "
                               "make a new one")
        frame = self._snapshot()
        if self.stride is None:
            if self._first is None:
                self._first = frame
                interval = self._attached_interval()
                if interval is not None:
                    self._begin(interval)
                return
            self._begin(frame.index - self._first.index)
        self._submit(frame)

    def _snapshot(self) -> CoarseFrame:
        atoms, step = self.atoms, self.dyn.nsteps
        if atoms.calc is None:
            raise ValueError("the atoms have no calculator: the interpolator needs the forces")
        forces = atoms.get_forces()  # the calculator's results at these positions
        return CoarseFrame(index=step, time_fs=step * self.dt_fs, positions=atoms.positions,
                           momenta=atoms.get_momenta(), forces=forces,
                           energy=atoms.calc.results.get("energy"))

    def _attached_interval(self) -> int | None:
        """The interval this observer was attached with (None: not attached, called by hand)."""
        for function, interval, _, _ in getattr(self.dyn, "observers", ()):
            if function is self and interval > 0:
                return interval
        return None

    def _begin(self, n: int) -> None:
        """Check the stride ``n`` against the interpolator, start the worker, send frame 0."""
        every = f"every {n} MD step{'s' if n != 1 else ''} of {self.dt_fs:g} fs"
        if n < 2:
            raise ValueError(f"the observer is called {every}: nothing to interpolate in "
                             "between; attach it with interval=2 or more")
        model = self._model
        if model is not None and n != model["stride"]:
            raise ValueError(
                f"{model['name']} interpolates Δt = {model['stride'] * model['dt_fs']:g} fs = "
                f"{model['stride']} steps of {model['dt_fs']:g} fs; the observer is called "
                f"{every} (Δt = {n * self.dt_fs:g} fs): attach it with "
                f"dyn.attach(observer, interval={model['stride']})")
        self.stride = n
        self._stream = StreamingInterpolation(
            self.spec, self.output, self.atoms.numbers, n, self.dt_fs,
            masses=self.atoms.get_masses(), **self._options).start()
        log.info("interpolating every %d MD steps (Δt = %g fs) with %s -> %s", n,
                 n * self.dt_fs, self.spec, self.output)
        self._submit(self._first)

    def _submit(self, frame: CoarseFrame) -> None:
        step, first = frame.index, self._first.index
        expected = first + self._next * self.stride
        if step != expected:
            raise ValueError(f"the observer was called at MD step {step}, expected step "
                             f"{expected}: it must be called every {self.stride} steps, without "
                             f"gaps (dyn.attach(observer, interval={self.stride}))")
        self._stream.submit(dataclasses.replace(frame, index=self._next))
        self._next += 1

    # -- life cycle ---------------------------------------------------------------------------
    @property
    def coarse_frames(self) -> int:
        """Coarse frames handed to the interpolator so far."""
        return self._next

    def close(self) -> int:
        """End the stream, wait for the worker; the number of fine frames written."""
        if not self._closed:
            self._closed = True
            if self._stream is not None:
                self.frames_written = self._stream.close()
            elif self._first is not None:
                log.warning("the observer was called once: no interval, nothing written to %s",
                            self.output)
        return self.frames_written

    def __enter__(self) -> InterpolatingObserver:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            if self._stream is not None:
                self._stream.abort()


class HybridDynamics(MolecularDynamics):
    """The hybrid loop (``hybridmd run``) as an ASE dynamics with the atoms' own calculator.

    One step is one segment of ``stride`` MD steps of ``timestep_fs`` (``dt`` is the segment
    length), made by simulation with ``atoms.calc`` or by the forecaster; ``run(steps)`` runs
    that many segments and can be called again to go on. Observers (``attach``, ``trajectory``,
    ``logfile``) see the atoms at every committed segment end, in order; ``atoms`` holds the
    last one (positions and departure momenta) when ``run`` returns. The outputs of
    ``hybridmd run`` (fine and coarse trajectories, timeline, summary) go to ``directory``.

    ``forecaster``: a shipped name, a checkpoint, an earlier run's ``forecaster.pt``, or
    ``"learn"`` (a force field learned from this run's own calls of ``atoms.calc``; ``learn``
    takes the keys of the input's ``hybrid.learn`` section). ``switch`` takes the keys of the
    input's ``hybrid.switch`` section; monitors re-simulate a ``monitor_fraction`` of the ML
    segments, drawn at random, and an ``uncertain_fraction`` more, the most uncertain ones, in
    this process with a deep copy of the calculator (an arbitrary calculator cannot be rebuilt
    in other processes). The thermostat (``bussi``,
    ``langevin`` or ``nve``) acts at segment boundaries. Initial momenta: the atoms' own when
    they move, else Maxwell-Boltzmann at ``temperature_K`` with ``seed``.
    """

    def __init__(self, atoms: Atoms, timestep_fs: float, stride: int, directory: str | Path,
                 forecaster: str, interpolator: str = "quintic", temperature_K: float = 300.0,
                 thermostat: str = "bussi", tau_fs: float = 100.0, friction_per_fs: float = 0.01,
                 seed: int = 0, switch: dict[str, Any] | None = None,
                 monitor_fraction: float = 0.1, uncertain_fraction: float = 0.0,
                 learn: dict[str, Any] | None = None, transport: str = "thread",
                 trajectory: str | None = None, logfile: str | None = None,
                 loginterval: int = 1):
        if atoms.calc is None:
            raise ValueError("HybridDynamics simulates with the atoms' calculator: set atoms.calc")
        from hybridmd.run_lock import RunLock

        self.directory = Path(directory)
        #: the folder is this dynamics' until ``close`` (another run's: refused here)
        self._lock = RunLock.of_folder(self.directory, "directory").claim()
        super().__init__(atoms, timestep=stride * timestep_fs * units.fs, trajectory=trajectory,
                         logfile=logfile, loginterval=loginterval)
        start = self.directory / "start.extxyz"
        atoms.write(start, format="extxyz")
        moving = atoms.get_momenta().any()
        self._input = {
            "system": {"file": str(start.resolve())},
            "calculator": calculator_record(atoms.calc),
            "dynamics": {"integrator": thermostat, "timestep_fs": timestep_fs,
                         "temperature_K": temperature_K, "tau_fs": tau_fs,
                         "friction_per_fs": friction_per_fs, "seed": seed,
                         "initial_momenta": ({"file": str(start.resolve()), "index": 0}
                                             if moving else "maxwell-boltzmann")},
            "hybrid": {"stride": stride, "interpolator": interpolator,
                       "forecaster": forecaster, "transport": transport,
                       "switch": switch or {},
                       "monitor": {"fraction": monitor_fraction,
                                   "uncertain_fraction": uncertain_fraction, "workers": 0},
                       **({"learn": learn} if learn is not None else {})},
            "output": {"directory": str(self.directory)},
        }
        self.summary: dict[str, Any] = {}
        # the monitors' own calculator, copied before hybridmd counts the calls of the user's
        self._monitor_calc = copy.deepcopy(atoms.calc)
        self._run: Any = None  #: the hybrid run, made at the first call of ``run``

    def step(self) -> None:
        raise NotImplementedError("HybridDynamics advances by run(steps): a segment depends "
                                  "on monitors and rollbacks beyond a single step")

    def run(self, steps: int = 50) -> bool:
        """Run ``steps`` more segments (the first call starts the run, later ones go on with
        the same loop in memory); the outputs are complete when it returns."""
        from hybridmd.config import RunConfig, parse_config
        from hybridmd.hybrid.session import HybridRun

        if steps < 1:
            raise ValueError(f"steps must be at least 1 segment, got {steps}")
        if self._run is None:
            data = copy.deepcopy(self._input)
            data["dynamics"]["steps"] = steps * self._input["hybrid"]["stride"]
            cfg = parse_config(data, RunConfig, str(self.directory / "HybridDynamics"))
            self._run = HybridRun(cfg, calculator=self.atoms.calc,
                                  monitor_calculator=self._monitor_calc, lock=self._lock)
            self._run.loop.on_commit(self._committed)
        self.summary = self._run.advance(steps).summary
        return True

    @property
    def segments_done(self) -> int:
        """Segments made so far."""
        return 0 if self._run is None or self._run.loop.current is None else (
            self._run.loop.current.index)

    def close(self) -> None:
        """Stop the monitors, close the timeline (the outputs are already complete) and let
        the folder go."""
        try:
            if self._run is not None:
                self._run.close()
        finally:
            self._lock.release()

    def _committed(self, frame: Any) -> None:
        atoms, calc = self.atoms, self.atoms.calc
        atoms.set_positions(frame.positions)
        atoms.set_momenta(frame.momenta)
        self.nsteps = frame.index
        # observers read the frame's own energy and forces: no calculation, and the
        # calculator's cache stays the driver's
        atoms.calc = SinglePointCalculator(atoms, energy=frame.energy, forces=frame.forces)
        try:
            self.call_observers()
        finally:
            atoms.calc = calc


#: calculator parameters that say where or how a calculator runs, not what it computes
_IO_PARAMETERS = ("directory", "label", "txt", "restart", "ignore_bad_restart_file", "profile",
                  "verbosity")


def calculator_record(calc: Any) -> dict[str, Any]:
    """An ASE calculator as a run records it: its class and its settings (``parameters``,
    else ``todict()``), so that a force field learned with one level of theory is not taken
    up by a run with another (the input's ``calculator: {type: ase}`` section, kwargs the
    settings)."""
    import json

    cls = type(calc)
    settings = getattr(calc, "parameters", None)
    if not isinstance(settings, dict):
        todict = getattr(calc, "todict", None)
        settings = todict() if callable(todict) else {}
    settings = {k: v for k, v in settings.items() if k not in _IO_PARAMETERS}

    xtb = _as_xtb_section(calc, settings)
    if xtb is not None:
        return xtb

    def plain(value: Any) -> Any:
        return value.tolist() if hasattr(value, "tolist") else repr(value)

    return {"type": "ase", "import_path": f"{cls.__module__}:{cls.__qualname__}",
            "kwargs": json.loads(json.dumps(settings, default=plain, sort_keys=True))}


#: what `calculator: {type: xtb}` sets of tblite's calculator; its other settings stay at
#: tblite's defaults there
_XTB_KEYS = ("method", "charge", "multiplicity", "accuracy")


def _as_xtb_section(calc: Any, settings: dict[str, Any]) -> dict[str, Any] | None:
    """tblite's ASE calculator as the `calculator: {type: xtb}` section it equals, when its
    settings are ones that section can give: the same level of theory is then recorded the
    same way from the command line and from Python (a force field learned by one is taken up
    by the other). None for anything else."""
    try:
        from tblite.ase import TBLite
    except ImportError:
        return None
    if not isinstance(calc, TBLite) or settings.get("method") not in ("GFN2-xTB", "GFN1-xTB"):
        return None
    defaults = {k: v for k, v in TBLite().parameters.items() if k not in _IO_PARAMETERS}
    if any(settings.get(k) != v for k, v in defaults.items() if k not in _XTB_KEYS):
        return None
    from hybridmd.config import XTBConfig

    return XTBConfig(type="xtb", method=settings["method"],
                     charge=settings.get("charge") or 0,
                     multiplicity=settings.get("multiplicity") or 1,
                     accuracy=settings.get("accuracy", 1.0)).model_dump(mode="json")

