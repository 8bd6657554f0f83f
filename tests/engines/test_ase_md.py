"""The ASE engine with the real sGDML ethanol model: energy conservation and thermostats."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read

from hybridmd.data import geometry_path
from hybridmd.engines.ase_md import internal_degrees_of_freedom, maxwell_boltzmann_momenta
from hybridmd.simulate import Simulation
from hybridmd.units import KB


def _log(sim: Simulation) -> np.ndarray:
    return np.loadtxt(sim.paths["log"])


def test_degrees_of_freedom() -> None:
    ethanol = read(geometry_path("ethanol"))
    assert internal_degrees_of_freedom(ethanol) == 3 * 9 - 6
    co2 = ethanol[:3].copy()
    co2.positions = [[0, 0, 0], [0, 0, 1.16], [0, 0, -1.16]]
    assert internal_degrees_of_freedom(co2) == 4
    assert internal_degrees_of_freedom(ethanol[:2]) == 1


def test_maxwell_boltzmann_momenta_are_internal_and_at_temperature() -> None:
    atoms = read(geometry_path("ethanol"))
    p = maxwell_boltzmann_momenta(atoms, 300.0, 21, np.random.default_rng(0))
    atoms.set_momenta(p)
    assert np.allclose(p.sum(axis=0), 0, atol=1e-12)
    assert np.allclose(atoms.get_angular_momentum(), 0, atol=1e-10)
    assert atoms.get_kinetic_energy() == pytest.approx(0.5 * 21 * KB * 300.0, rel=1e-12)


def test_nve_conserves_energy(config_factory) -> None:
    """Velocity Verlet at 0.5 fs, 1 ps: measured drift 5e-4 eV/ps, fluctuation 6e-4 eV."""
    cfg = config_factory({"dynamics": {"integrator": "nve", "steps": 2000},
                          "output": {"stride": 10}})
    sim = Simulation(cfg)
    sim.run(progress=False)
    log = _log(sim)
    t_ps, econs = log[:, 0] / 1000, log[:, 5]
    drift_per_ps = np.polyfit(t_ps, econs, 1)[0]
    # bound: 5e-3 eV/ps (0.12 kcal/mol/ps), ten times the measured drift
    assert abs(drift_per_ps) < 5e-3
    assert econs.std() < 3e-3
    # energy flows between potential and kinetic: the total is much steadier than either part
    assert econs.std() < 0.1 * log[:, 4].std()
    assert np.allclose(log[:, 3] + log[:, 4], econs)


@pytest.mark.parametrize("integrator", ["bussi", "langevin", "nose-hoover"])
def test_thermostat_reaches_target_temperature(config_factory, integrator: str) -> None:
    """Mean kinetic temperature over 2 ps at 1 fs, with a block-averaged statistical error.

    Started at 150 K so that the thermostat has to do the work.
    """
    target = 300.0
    cfg = config_factory({
        "dynamics": {"integrator": integrator, "timestep_fs": 1.0, "steps": 2500,
                     "temperature_K": target, "tau_fs": 20, "friction_per_fs": 0.05},
        "output": {"stride": 5},
    })
    sim = Simulation(cfg)
    sim.atoms.set_momenta(sim.atoms.get_momenta() / np.sqrt(2.0))  # start at 150 K
    sim.run(progress=False)
    temperature = _log(sim)[100:, 2]  # drop the first 500 fs
    blocks = temperature[: len(temperature) // 20 * 20].reshape(20, -1).mean(axis=1)
    sem = blocks.std(ddof=1) / np.sqrt(len(blocks))
    mean = temperature.mean()
    # 4 standard errors, or at least 3% (the ndof of a 9-atom molecule leaves large fluctuations)
    assert abs(mean - target) < max(4 * sem, 0.03 * target), (mean, sem)
    # and the conserved quantity of the thermostated dynamics stays put
    econs = _log(sim)[:, 5]
    assert np.ptp(econs) < 0.05


def test_bussi_couples_internal_degrees_of_freedom(config_factory) -> None:
    """No translation or rotation appears: the thermostat rescales, forces are internal."""
    cfg = config_factory({"dynamics": {"steps": 200}})
    sim = Simulation(cfg)
    sim.run(progress=False)
    assert np.allclose(sim.atoms.get_momenta().sum(axis=0), 0, atol=1e-8)
    assert sim.engine.ndof == 21
