"""Equipartition with the rigid-body motion removed, against Maxwell-Boltzmann samples."""

import numpy as np
import pytest
from ase.build import molecule
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

from hybridmd.hybrid.equipartition import (
    element_temperatures,
    equipartition_fractions,
    removed_motion,
)


@pytest.mark.parametrize(("removed", "left"), [("nothing", 27), ("translation", 24),
                                              ("rotation", 21)])
def test_the_fractions_sum_to_the_degrees_of_freedom_left(removed, left):
    ethanol = molecule("CH3CH2OH")
    f = equipartition_fractions(ethanol.positions, ethanol.get_masses(), removed)
    assert 3 * f.sum() == pytest.approx(left)
    assert removed_motion(9, left) == removed


def test_a_linear_molecule_keeps_two_rotations_to_remove():
    co2 = molecule("CO2")
    f = equipartition_fractions(co2.positions, co2.get_masses(), "rotation")
    assert 3 * f.sum() == pytest.approx(4)  # 3N - 5


def test_each_atoms_mean_kinetic_energy_is_its_fraction_of_kT():
    """Maxwell-Boltzmann momenta with the centre of mass and the rotation projected out
    (ASE's Stationary and ZeroRotation, not rescaled), 4000 draws: each atom's mean kinetic
    energy over 3/2 kT is its fraction, within 4% (one atom's sampling error is about 1.3%)."""
    ethanol = molecule("CH3CH2OH")
    masses, rng = ethanol.get_masses(), np.random.default_rng(1)
    ek = np.zeros(len(ethanol))
    for _ in range(4000):
        thermalize_momenta(ethanol, 300, rng=rng)
        Stationary(ethanol, preserve_temperature=False)
        ZeroRotation(ethanol, preserve_temperature=False)
        ek += 0.5 * (ethanol.get_momenta() ** 2).sum(1) / masses
    kT = 300 * 8.617333262e-5
    measured = ek / 4000 / (1.5 * kT)
    f = equipartition_fractions(ethanol.positions, masses, "rotation")
    np.testing.assert_allclose(measured, f, rtol=0.04)
    assert f.min() < 0.8  # uneven: a plain 1 for every atom would fail above


def test_element_temperatures_in_equipartition_are_what_equipartition_gives():
    water = molecule("H2O")
    masses = water.get_masses()
    f = equipartition_fractions(water.positions, masses, "rotation")
    momenta = np.sqrt(masses * 300 * 8.617333262e-5 * f)[:, None] * np.ones((1, 3))
    temps = element_temperatures(momenta, water.positions, masses, ["O", "H", "H"],
                                 "rotation")
    for actual, expected in temps.values():
        assert actual == pytest.approx(expected)
    assert temps["H"][0] > temps["O"][0]  # the oxygen gives more of its motion to rotation


def test_a_redraw_restores_equipartition_at_the_same_kinetic_energy():
    """The loop's answer to a temperature refusal: momenta with the oxygen carrying all the
    kinetic energy come back drawn afresh at the same kinetic energy, without centre-of-mass
    motion or rotation, and over many draws each element at its equipartition share."""
    from hybridmd.config import DynamicsConfig
    from hybridmd.hybrid.segments import BoundaryThermostat

    ethanol = molecule("CH3CH2OH")
    masses = ethanol.get_masses()
    ethanol.set_momenta(np.ones((9, 3)))  # ASE's Bussi refuses atoms at rest
    thermostat = BoundaryThermostat(ethanol, DynamicsConfig(integrator="bussi", timestep_fs=0.5,
                                                               duration_fs=100), 10.0, 21,
                                    np.random.default_rng(3))
    hot = np.zeros((9, 3))
    hot[2] = [0.3, 0.2, -0.1]  # the oxygen alone
    ek, before = np.zeros(9), 0.5 * (hot**2 / masses[:, None]).sum()
    for _ in range(2000):
        p = thermostat.redistribute(hot, ethanol.positions)
        assert 0.5 * (p**2 / masses[:, None]).sum() == pytest.approx(before)
        np.testing.assert_allclose(p.sum(0), 0, atol=1e-10)
        ethanol.set_momenta(p)
        np.testing.assert_allclose(ethanol.get_angular_momentum(), 0, atol=1e-9)
        ek += 0.5 * (p**2).sum(1) / masses
    f = equipartition_fractions(ethanol.positions, masses, "rotation")
    np.testing.assert_allclose(ek / ek.sum(), f / f.sum(), rtol=0.05)
