"""Thermostated MD on the ASE engine: NVE velocity Verlet, Langevin (BAOAB), Bussi, Nose-Hoover.

The integrators are ASE's own. This module adds what a production run needs on top of them:
the right number of degrees of freedom for a molecule whose centre-of-mass motion and rotation
were removed, a conserved-energy estimate for every thermostat, and an exact save/restore of the
integrator state (random number generator, thermostat variables) so a resumed run continues the
very same trajectory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.md.bussi import Bussi
from ase.md.langevinbaoab import LangevinBAOAB
from ase.md.md import MolecularDynamics
from ase.md.nose_hoover_chain import NoseHooverChainNVT
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from hybridmd.config import DynamicsConfig
from hybridmd.trajectory import internal_degrees_of_freedom as count_internal
from hybridmd.units import FS, KB


def internal_degrees_of_freedom(atoms: Atoms) -> int:
    """3N - 6 (3N - 5 for a linear molecule): translation and rotation removed; 3N - 3 in a
    periodic cell, which has no rotation to remove
    (:func:`hybridmd.trajectory.internal_degrees_of_freedom`)."""
    return count_internal(atoms.positions, bool(any(atoms.pbc)))


def maxwell_boltzmann_momenta(atoms: Atoms, temperature_K: float, ndof: int,
                              rng: np.random.Generator) -> np.ndarray:
    """Maxwell-Boltzmann momenta without centre-of-mass motion (and, for a cluster, rotation),
    at exactly T."""
    probe = atoms.copy()
    thermalize_momenta(probe, temperature_K, rng=rng)
    Stationary(probe)
    if not any(atoms.pbc):
        ZeroRotation(probe)
    ekin = probe.get_kinetic_energy()
    target = 0.5 * ndof * KB * temperature_K
    return probe.get_momenta() * np.sqrt(target / ekin)


class _HeatTrackingBAOAB(LangevinBAOAB):
    """ASE's BAOAB Langevin integrator, counting the kinetic energy its O-step exchanges."""

    heat = 0.0

    def _BAOAB_OU(self, drag_gamma_mod: float = 0.0) -> None:  # noqa: N802 (ASE's name)
        before = self.atoms.get_kinetic_energy()
        super()._BAOAB_OU(drag_gamma_mod)
        self.heat += self.atoms.get_kinetic_energy() - before


class _InternalNoseHoover(NoseHooverChainNVT):
    """ASE's Nose-Hoover chain, coupled to ``ndof`` degrees of freedom instead of 3N.

    A molecule started without translation and rotation keeps them at zero under
    Nose-Hoover dynamics, so only the internal degrees of freedom carry kinetic energy;
    a thermostat on 3N would heat them by 3N/(3N-6).
    """

    def __init__(self, *args: Any, ndof: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        thermostat = self._thermostat
        thermostat._num_atoms_global = ndof / 3.0  # ASE couples the first link to 3·N
        thermostat._Q[0] = ndof * thermostat._kT * thermostat._tdamp**2

    def step(self) -> None:
        # ASE keeps its own copy of r and p between steps; take them from the atoms so that
        # a state set from outside (a restart, a rollback, a thermostat) is the one advanced.
        self._q = self.atoms.get_positions()
        self._p = self.atoms.get_momenta()
        super().step()


class ASEEngine:
    """One molecule advanced step by step with an ASE integrator chosen by ``DynamicsConfig``."""

    def __init__(self, atoms: Atoms, cfg: DynamicsConfig, rng: np.random.Generator):
        self.atoms = atoms
        self.cfg = cfg
        self.rng = rng
        # Langevin noise acts on all 3N momenta; the other integrators keep the zero
        # centre-of-mass motion and rotation of the initial momenta.
        self.ndof = 3 * len(atoms) if cfg.integrator == "langevin" else (
            internal_degrees_of_freedom(atoms))
        self.dyn = self._build()

    def _build(self) -> MolecularDynamics:
        cfg, atoms, dt = self.cfg, self.atoms, self.cfg.timestep_fs * FS
        if cfg.integrator == "nve":
            return VelocityVerlet(atoms, timestep=dt)
        if cfg.integrator == "langevin":
            return _HeatTrackingBAOAB(atoms, dt, temperature_K=cfg.temperature_K,
                                      T_tau=FS / cfg.friction_per_fs, rng=self.rng)
        if cfg.integrator == "bussi":
            dyn = Bussi(atoms, dt, temperature_K=cfg.temperature_K, taut=cfg.tau_fs * FS,
                        rng=self.rng)
            dyn.ndof = self.ndof
            dyn.target_kinetic_energy = 0.5 * KB * cfg.temperature_K * self.ndof
            return dyn
        return _InternalNoseHoover(atoms, dt, temperature_K=cfg.temperature_K,
                                   tdamp=cfg.tau_fs * FS, tchain=cfg.chain_length,
                                   ndof=self.ndof)

    def step(self) -> None:
        """Advance one MD time step."""
        self.dyn.step()

    def temperature(self) -> float:
        """Kinetic temperature over the engine's degrees of freedom, K."""
        return 2.0 * self.atoms.get_kinetic_energy() / (self.ndof * KB)

    def thermostat_energy(self) -> float:
        """Energy the thermostat has taken out of the system so far (eV), sign as in E_cons."""
        dyn = self.dyn
        if isinstance(dyn, Bussi):
            return -dyn.transferred_energy
        if isinstance(dyn, _HeatTrackingBAOAB):
            return -dyn.heat
        if isinstance(dyn, NoseHooverChainNVT):
            return dyn._thermostat.get_thermostat_energy()
        return 0.0

    def conserved_energy(self, potential_energy: float) -> float:
        """E_pot + E_kin + the thermostat's account: constant up to integration error."""
        return potential_energy + self.atoms.get_kinetic_energy() + self.thermostat_energy()

    def get_state(self) -> dict[str, Any]:
        """Everything besides positions and momenta needed to continue exactly (JSON-able)."""
        state: dict[str, Any] = {"rng": self.rng.bit_generator.state}
        dyn = self.dyn
        if isinstance(dyn, Bussi):
            state["transferred_energy"] = dyn.transferred_energy
        elif isinstance(dyn, _HeatTrackingBAOAB):
            state["heat"] = dyn.heat
        elif isinstance(dyn, NoseHooverChainNVT):
            state["eta"] = dyn._thermostat._eta.tolist()
            state["p_eta"] = dyn._thermostat._p_eta.tolist()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` saved; the atoms must already hold the saved r and p."""
        self.rng.bit_generator.state = state["rng"]
        dyn = self.dyn
        if isinstance(dyn, Bussi):
            dyn.transferred_energy = state["transferred_energy"]
        elif isinstance(dyn, _HeatTrackingBAOAB):
            dyn.heat = state["heat"]
        elif isinstance(dyn, NoseHooverChainNVT):
            dyn._thermostat._eta[:] = state["eta"]
            dyn._thermostat._p_eta[:] = state["p_eta"]
