"""The simulation segment maker on i-PI: the hybrid loop's simulated segments integrated by i-PI.

A segment is n NVE velocity-Verlet steps from a given state, as on the ASE engine
(:class:`hybridmd.hybrid.segments.SegmentSimulator`); here i-PI integrates them and asks the
calculator for forces over its socket protocol (the calculator served from this process, which
may itself be an external client behind a ``type: socket`` calculator). The thermostat stays
at the segment boundaries, in the loop: inside a segment the dynamics is deterministic, so a
monitor can re-run it from the same start and compare (the monitors re-simulate with ASE's
velocity Verlet, the same integrator). i-PI's own thermostats would act inside segments and
make them uncheckable.

i-PI is started at the first segment and set to each segment's start (positions, momenta, and
the forces there when the loop knows them from the same calculator: then the segment costs n
calls, as on the ASE engine, else n + 1).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from ase import Atoms

from hybridmd.config import DynamicsConfig, IPIEngineConfig, IPIRunEngineConfig
from hybridmd.engines.ipi import IPIEngine
from hybridmd.hybrid.segments import SegmentResult

#: the folder of a run where i-PI keeps its files (its last state in RESTART)
IPI_FOLDER = "ipi"


@contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """i-PI takes SIGINT/SIGTERM when it starts and gives them back to what it found when it
    stops; the run's own handling (stop at the next segment, resumable) is kept instead."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)


class IPISegmentSimulator:
    """Segments of ``stride`` NVE steps of ``dt_fs`` integrated by i-PI with the atoms'
    calculator (the interface of ``SegmentSimulator``)."""

    def __init__(self, atoms: Atoms, stride: int, dt_fs: float, dynamics: DynamicsConfig,
                 cfg: IPIRunEngineConfig, directory: Path):
        self.atoms, self.stride, self.dt_fs = atoms, stride, dt_fs
        self._dynamics = dynamics
        self._engine_cfg = IPIEngineConfig(**cfg.model_dump(), thermostat="nve")
        self._directory = Path(directory)
        self.engine: IPIEngine | None = None

    def _started(self, positions: np.ndarray, momenta: np.ndarray) -> IPIEngine:
        if self.engine is None:
            atoms = self.atoms.copy()
            atoms.set_positions(positions)
            atoms.set_momenta(momenta)
            # placeholder forces: i-PI asks for real ones where ``place`` puts it
            with _signal_handlers_kept():
                self.engine = IPIEngine(atoms, self._dynamics, self._engine_cfg, self._directory,
                                        calculator=self.atoms.calc, fixcom=False,
                                        known=(np.zeros((len(atoms), 3)), 0.0))
        return self.engine

    def segment(self, positions: np.ndarray, momenta: np.ndarray,
                start: tuple[np.ndarray, float] | None = None) -> SegmentResult:
        """The segment from (positions, momenta); ``start``: the forces and energy at
        ``positions`` when known from the same calculator."""
        engine = self._started(positions, momenta)
        engine.place(positions, momenta, start)
        r, p = [np.array(positions, dtype=float)], [np.array(momenta, dtype=float)]
        f, e = [engine.forces], [engine.energy]
        for _ in range(self.stride):
            engine.advance(1)
            r.append(engine.positions)
            p.append(engine.momenta)
            f.append(engine.forces)
            e.append(engine.energy)
        return SegmentResult(np.array(r), np.array(p), np.array(f), np.array(e))

    def close(self) -> None:
        """Stop i-PI (its last state is in RESTART in the engine folder)."""
        if self.engine is not None:
            with _signal_handlers_kept():
                self.engine.close()
            self.engine = None
