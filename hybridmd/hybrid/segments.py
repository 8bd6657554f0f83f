"""Coarse segments of the hybrid loop: NVE inside, a thermostat O-step at the boundaries.

A segment advances x(t) to x(t + Δt) with n velocity-Verlet steps of Δτ and the real calculator
(or one forecast). The thermostat acts only between segments, as one O-step of length Δt on
the momenta (Bussi's stochastic velocity rescaling, or the exact Ornstein-Uhlenbeck step of
Langevin dynamics); inside a segment the dynamics is deterministic, so a monitor can re-run it
from the same start state and compare. A frame therefore has two momenta: those the segment
arrived with (``arrival_momenta``) and those the next one departs with, after the O-step
(``momenta``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.md.bussi import Bussi
from ase.md.verlet import VelocityVerlet

from hybridmd.config import DynamicsConfig
from hybridmd.engines.ase_md import maxwell_boltzmann_momenta
from hybridmd.units import FS, KB


class CallCounter:
    """Counts the calculations a calculator really runs (cached results are not counted).

    ``CallCounter.of(calc)`` wraps a calculator once; later calls return the same counter.
    """

    def __init__(self, calc: Calculator):
        self.calls = 0
        original = calc.calculate

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        calc.calculate = counted
        calc._hybridmd_counter = self

    @classmethod
    def of(cls, calc: Calculator) -> CallCounter:
        return getattr(calc, "_hybridmd_counter", None) or cls(calc)


class BoundaryThermostat:
    """One O-step of length Δt on the momenta: Bussi, Langevin (OU) or none (NVE)."""

    def __init__(self, atoms: Atoms, cfg: DynamicsConfig, segment_fs: float, ndof: int,
                 rng: np.random.Generator):
        self.kind = cfg.integrator
        self.rng = rng
        self.kt = KB * cfg.temperature_K
        self.energy = 0.0  #: kinetic energy taken out so far, eV
        self._atoms = atoms
        if self.kind == "bussi":
            self._bussi = Bussi(atoms, segment_fs * FS, temperature_K=cfg.temperature_K,
                                taut=cfg.tau_fs * FS, rng=rng)
            self._bussi.ndof = ndof
            self._bussi.target_kinetic_energy = 0.5 * self.kt * ndof
        elif self.kind == "langevin":
            self._c = math.exp(-cfg.friction_per_fs * segment_fs)
        elif self.kind != "nve":
            raise ValueError(f"the hybrid loop thermostats at segment boundaries: use bussi, "
                             f"langevin or nve, not {self.kind}")

    def redistribute(self, momenta: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Momenta drawn afresh from Maxwell-Boltzmann (rigid-body motion removed, as at the
        start) at ``momenta``'s kinetic energy: equipartition restored, the energy and the
        thermostat's temperature left as they were (Andersen's thermostat once, at constant
        energy; the run's answer when ML has put one element out of equipartition)."""
        probe = self._atoms.copy()
        probe.positions = positions
        before = 0.5 * float((momenta**2 / probe.get_masses()[:, None]).sum())
        drawn = maxwell_boltzmann_momenta(probe, self.kt / KB, 3 * len(probe), self.rng)
        after = 0.5 * float((drawn**2 / probe.get_masses()[:, None]).sum())
        return drawn * math.sqrt(before / after)

    def apply(self, momenta: np.ndarray) -> np.ndarray:
        """The departure momenta after an O-step from ``momenta``."""
        atoms = self._atoms
        before = 0.5 * float((momenta**2 / atoms.get_masses()[:, None]).sum())
        if self.kind == "bussi":
            alpha = self._bussi.calculate_alpha(before)
            out = alpha * momenta
        elif self.kind == "langevin":
            m = atoms.get_masses()[:, None]
            noise = self.rng.standard_normal(momenta.shape)
            out = self._c * momenta + math.sqrt((1 - self._c**2) * self.kt) * np.sqrt(m) * noise
        else:
            return momenta.copy()
        after = 0.5 * float((out**2 / atoms.get_masses()[:, None]).sum())
        self.energy += before - after
        return out


@dataclass
class SegmentResult:
    """A simulated segment: the n+1 frames from start to end, each with forces and energy."""

    positions: np.ndarray  #: (n+1, N, 3)
    momenta: np.ndarray  #: (n+1, N, 3)
    all_forces: np.ndarray  #: (n+1, N, 3)
    energies: np.ndarray  #: (n+1,) potential energy, eV

    @property
    def forces(self) -> np.ndarray:
        """(N, 3) forces at the end."""
        return self.all_forces[-1]

    @property
    def energy(self) -> float:
        """Potential energy at the end, eV."""
        return float(self.energies[-1])


def simulate_segment(atoms: Atoms, dyn: VelocityVerlet, positions: np.ndarray,
                     momenta: np.ndarray, stride: int,
                     start: tuple[np.ndarray, float] | None = None) -> SegmentResult:
    """n NVE velocity-Verlet steps from (positions, momenta) with the atoms' calculator.

    ``start``: the forces and potential energy at ``positions`` when they are known from the
    same calculator (then the segment costs n calls, else n + 1).
    """
    atoms.set_positions(positions)
    atoms.set_momenta(momenta)
    if start is None:
        forces = atoms.get_forces(md=True)
        energy = float(atoms.get_potential_energy())
    else:
        forces, energy = np.array(start[0], dtype=float), float(start[1])
    r, p, f, e = [atoms.get_positions()], [atoms.get_momenta()], [forces], [energy]
    for _ in range(stride):
        forces = dyn.step(forces)
        r.append(atoms.get_positions())
        p.append(atoms.get_momenta())
        f.append(np.array(forces))
        e.append(float(atoms.get_potential_energy()))
    return SegmentResult(np.array(r), np.array(p), np.array(f), np.array(e))


class SegmentMaker(Protocol):
    """What the loop needs of a simulation segment maker (ASE's here, i-PI's in
    :mod:`hybridmd.engines.ipi_segments`)."""

    atoms: Atoms
    stride: int
    dt_fs: float

    def segment(self, positions: np.ndarray, momenta: np.ndarray,
                start: tuple[np.ndarray, float] | None = None) -> SegmentResult: ...

    def close(self) -> None: ...


class SegmentSimulator:
    """The simulation segment maker: n velocity-Verlet steps of Δτ with the atoms' calculator."""

    def __init__(self, atoms: Atoms, stride: int, dt_fs: float):
        self.atoms, self.stride, self.dt_fs = atoms, stride, dt_fs
        self.dyn = VelocityVerlet(atoms, timestep=dt_fs * FS)

    def segment(self, positions: np.ndarray, momenta: np.ndarray,
                start: tuple[np.ndarray, float] | None = None) -> SegmentResult:
        """The segment from (positions, momenta); see ``simulate_segment``."""
        return simulate_segment(self.atoms, self.dyn, positions, momenta, self.stride, start)

    def close(self) -> None:
        """Nothing to stop (the i-PI segment maker stops i-PI here)."""


def kinetic_energy(momenta: np.ndarray, masses: np.ndarray) -> float:
    return 0.5 * float((momenta**2 / masses[:, None]).sum())

