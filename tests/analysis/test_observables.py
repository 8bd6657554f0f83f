"""Observables on systems whose answer is known: harmonic spectra, rigid h(r), von Mises FES."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import read
from scipy.integrate import trapezoid
from scipy.spatial.transform import Rotation

from hybridmd.analysis import observables as ob
from hybridmd.data import geometry_path
from hybridmd.readers import read_trajectory
from hybridmd.trajectory import Trajectory
from hybridmd.units import FS

from conftest import DATA

WATER = DATA / "6h2o_orca_mp2_md_300k.npz"


def _trajectory(numbers, positions, velocities, dt_fs) -> Trajectory:
    masses = Atoms(numbers=numbers).get_masses()
    return Trajectory(numbers=numbers, positions=positions,
                      momenta=velocities * masses[None, :, None] / FS, dt_fs=dt_fs)


def _diatomic(wavenumber: float, dt_fs: float = 0.5, frames: int = 4000) -> Trajectory:
    """C–O bond vibrating at ``wavenumber`` cm^-1 along x, the molecule drifting along y."""
    numbers = np.array([6, 8])
    m = Atoms(numbers=numbers).get_masses()
    omega = 2 * np.pi * wavenumber * ob.C_CM_PER_FS  # rad/fs
    t = dt_fs * np.arange(frames)
    d, dd = 1.13 + 0.04 * np.cos(omega * t), -0.04 * omega * np.sin(omega * t)
    share = np.array([-m[1], m[0]]) / m.sum()  # each atom's share of the bond length
    r = np.zeros((frames, 2, 3))
    v = np.zeros((frames, 2, 3))
    r[:, :, 0], v[:, :, 0] = share * d[:, None], share * dd[:, None]
    r[:, :, 1], v[:, :, 1] = 0.003 * t[:, None], 0.003  # centre-of-mass drift
    return _trajectory(numbers, r, v, dt_fs)


@pytest.fixture(scope="module")
def water() -> Trajectory:
    return read_trajectory(WATER, dt_fs=1.0)


@pytest.mark.parametrize("wavenumber", [1000.0, 3000.0])
def test_vdos_of_harmonic_bond_peaks_at_its_frequency(wavenumber: float) -> None:
    freq, spectrum = ob.vdos(_diatomic(wavenumber))
    step = freq[1] - freq[0]
    assert abs(freq[np.argmax(spectrum)] - wavenumber) <= step
    assert freq[-1] == pytest.approx(1 / (2 * 0.5 * ob.C_CM_PER_FS))
    assert trapezoid(spectrum, freq) == pytest.approx(1.0)
    assert spectrum.min() >= 0
    # the drift is removed: nothing at zero frequency
    assert spectrum[freq < 200].max() < 1e-3 * spectrum.max()


def test_vdos_overlap_and_jensen_shannon_are_perfect_for_identical_input(water) -> None:
    spec = ob.vdos(water)
    assert ob.vdos_overlap(spec, spec) == pytest.approx(1.0)
    h = ob.pair_distance_distribution(water)
    s = ob.speed_distribution(water)
    assert ob.jensen_shannon(h, h) == pytest.approx(0.0, abs=1e-12)
    assert ob.jensen_shannon(s, s) == pytest.approx(0.0, abs=1e-12)
    assert ob.jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(1.0)


def test_scores_get_worse_with_more_velocity_noise(water) -> None:
    rng = np.random.default_rng(1)
    ref_spec = ob.vdos(water)
    edges = np.linspace(0, 0.12, 81)
    ref_speed = ob.speed_distribution(water, edges)
    overlaps, divergences = [], []
    for sigma in (0.001, 0.004):  # Å/fs; typical speeds are 0.01
        noisy = _trajectory(water.numbers, water.positions,
                            water.velocities + rng.normal(scale=sigma, size=water.positions.shape),
                            water.dt_fs)
        overlaps.append(ob.vdos_overlap(ref_spec, ob.vdos(noisy)))
        divergences.append(ob.jensen_shannon(ref_speed, ob.speed_distribution(noisy, edges)))
    assert 1.0 > overlaps[0] > overlaps[1] > 0
    assert 0 < divergences[0] < divergences[1] < 1


def test_vdos_overlap_interpolates_onto_a_common_grid() -> None:
    # the same motion sampled every 0.5 fs and every 0.4 fs, correlated over the same 500 fs
    a = ob.vdos(_diatomic(1500.0, dt_fs=0.5, frames=2000))
    b = ob.vdos(_diatomic(1500.0, dt_fs=0.4, frames=2500))
    assert len(a[0]) != len(b[0])
    assert ob.vdos_overlap(a, b) > 0.97
    assert ob.vdos_overlap(b, a) == pytest.approx(ob.vdos_overlap(a, b), abs=0.02)
    c = ob.vdos(_diatomic(3000.0, dt_fs=0.5, frames=2000))
    assert ob.vdos_overlap(a, c) < 0.05


def test_pair_distances_of_a_rigid_molecule_sit_at_its_distances() -> None:
    atoms = read(geometry_path("ethanol"))
    rng = np.random.default_rng(0)
    frames = 40
    rot = Rotation.random(frames, random_state=1).as_matrix()
    r = np.einsum("tij,nj->tni", rot, atoms.positions) + rng.normal(scale=5, size=(frames, 1, 3))
    traj = _trajectory(atoms.numbers, r, np.zeros_like(r), 0.5)
    edges = np.arange(0.0, 4.0005, 0.0005)
    h = ob.pair_distance_distribution(traj, edges)
    exact = atoms.get_all_distances()[np.triu_indices(len(atoms), k=1)]
    expected = np.histogram(exact, edges)[0] / len(exact)
    np.testing.assert_allclose(h.probabilities, expected, atol=1e-12)
    assert h.probabilities.sum() == pytest.approx(1.0)
    assert trapezoid(h.density, h.centres) == pytest.approx(1.0)


def test_free_energy_of_von_mises_samples_matches_the_analytic_form() -> None:
    rng = np.random.default_rng(3)
    kappa, mu, temperature = (1.5, 0.8), (np.radians(60.0), np.radians(-120.0)), 300.0
    n = 2_000_000
    phi = np.degrees(rng.vonmises(mu[0], kappa[0], n))
    psi = np.degrees(rng.vonmises(mu[1], kappa[1], n))
    fes = ob.free_energy_surface(phi, psi, temperature, bins=36)
    assert fes.unit == "kJ/mol"
    assert np.nanmin(fes.free_energy) == 0.0
    centres = np.radians(0.5 * (fes.phi_edges[1:] + fes.phi_edges[:-1]))
    rt = ob.R_KJ_MOL_K * temperature
    analytic = -rt * (kappa[0] * np.cos(centres[:, None] - mu[0])
                      + kappa[1] * np.cos(centres[None, :] - mu[1]))
    well = fes.counts >= 1000  # statistical error of ln P about 1/sqrt(1000) = 0.03
    assert well.sum() > 500
    diff = fes.free_energy[well] - analytic[well]
    diff -= diff.mean()  # F is known up to a constant
    assert np.sqrt(np.mean(diff**2)) < 0.04 * rt
    assert np.abs(diff).max() < 0.15 * rt
    # every bin is visited: the surface spans the analytic range 2·kT·(κ1 + κ2)
    assert np.isfinite(fes.free_energy).all()
    assert np.nanmax(fes.free_energy) == pytest.approx(2 * rt * sum(kappa), rel=0.1)


def test_fes_difference_ignores_a_constant_and_marks_unvisited_bins() -> None:
    rng = np.random.default_rng(4)
    phi, psi = rng.vonmises(0, 2, (2, 20000))
    a = ob.free_energy_surface(np.degrees(phi), np.degrees(psi), 300.0)
    b = ob.free_energy_surface(np.degrees(phi), np.degrees(psi), 300.0)
    b.free_energy = b.free_energy + 3.0
    diff = ob.fes_difference(a, b)
    np.testing.assert_allclose(diff[np.isfinite(diff)], 0.0, atol=1e-12)
    assert np.array_equal(np.isnan(diff), a.counts == 0)
    assert ob.fes_rmsd(a, b) == pytest.approx(0.0, abs=1e-12)
    c = ob.free_energy_surface(np.degrees(phi) + 20.0, np.degrees(psi), 300.0)
    assert ob.fes_rmsd(a, c) > 0.1


def test_internal_coordinates_match_ase() -> None:
    atoms = read(geometry_path("ethanol"))
    rng = np.random.default_rng(5)
    r = atoms.positions[None] + rng.normal(scale=0.4, size=(30, len(atoms), 3))
    frames = [Atoms(numbers=atoms.numbers, positions=x) for x in r]
    for quad in [(0, 1, 2, 3), (3, 0, 2, 8), (5, 1, 0, 2), (8, 2, 0, 1)]:
        mine = ob.dihedral(r, *quad)
        theirs = np.array([a.get_dihedral(*quad) for a in frames])
        np.testing.assert_allclose(ob.wrap_degrees(mine - theirs), 0.0, atol=1e-8)
        assert np.all((mine >= -180) & (mine <= 180))
    np.testing.assert_allclose(ob.angle(r, 1, 0, 2), [a.get_angle(1, 0, 2) for a in frames])
    np.testing.assert_allclose(ob.bond(r, 0, 2), [a.get_distance(0, 2) for a in frames])


def test_cluster_size_is_the_mass_weighted_radius_and_its_loosest_stretch() -> None:
    # an O2 molecule (equal masses) 2 Å long for 500 fs, then 4 Å for 250 fs, drifting:
    # the radius of gyration is half its length, whatever the drift
    frames = 151  # 5 fs apart
    half = np.where(np.arange(frames) < 100, 1.0, 2.0)
    r = np.zeros((frames, 2, 3))
    r[:, 0, 1], r[:, 1, 1] = -half, half
    r += 0.01 * np.arange(frames)[:, None, None]
    traj = _trajectory(np.array([8, 8]), r, np.zeros_like(r), 5.0)
    mean, loosest = ob.cluster_size(traj)  # every 10 fs: 50 frames at 1 Å, 26 at 2 Å
    assert mean == pytest.approx((50 * 1.0 + 26 * 2.0) / 76)
    assert loosest == pytest.approx(2.0)  # the last 250 fs
    assert ob.cluster_size(traj, stretch_fs=10_000) == pytest.approx((mean, mean))


def test_largest_gap_is_the_farthest_group_under_the_minimum_image() -> None:
    # two O atoms 1 Å apart, one drifting to 3 Å and back over 20 frames 5 fs apart
    d = 1.0 + 2.0 * np.sin(np.linspace(0, np.pi, 21))
    r = np.zeros((21, 2, 3))
    r[:, 1, 0] = d
    traj = _trajectory(np.array([8, 8]), r, np.zeros_like(r), 5.0)
    assert ob.largest_gap(traj) == pytest.approx(d[::2].max())  # frames 10 fs apart
    # in a 10 Å box the same pair across the boundary is 1 Å apart, not 9
    r[:, 0, 0], r[:, 1, 0] = 0.5, 9.5
    traj.cell, traj.pbc = np.eye(3) * 10.0, np.array([True, True, True])
    assert ob.largest_gap(traj) == pytest.approx(1.0)


def test_most_flexible_dihedral_is_the_rotating_hydroxyl() -> None:
    atoms = read(geometry_path("ethanol"))  # C0 C1 O2 H3..H7 on carbons, H8 on O2
    frames = 60
    rng = np.random.default_rng(6)
    r = np.repeat(atoms.positions[None], frames, axis=0)
    axis = atoms.positions[2] - atoms.positions[0]
    rot = Rotation.from_rotvec(np.linspace(0, 2 * np.pi, frames)[:, None]
                               * axis / np.linalg.norm(axis))
    r[:, 8] = atoms.positions[2] + rot.apply(atoms.positions[8] - atoms.positions[2])
    r += rng.normal(scale=0.01, size=r.shape)
    traj = _trajectory(atoms.numbers, r, np.zeros_like(r), 0.5)
    assert (0, 2) in ob.covalent_bonds(traj) and len(ob.covalent_bonds(traj)) == 8
    top = ob.most_flexible_dihedrals(traj, count=2)
    assert len(top) == 2
    assert set(top[0][1:3]) == {0, 2} and 8 in (top[0][0], top[0][3])
    assert set(top[1][1:3]) != {0, 2}  # one dihedral per central bond


def test_water_cluster_dihedrals_fall_back_to_hydrogen_bonds(water) -> None:
    assert ob.proper_dihedrals(ob.covalent_bonds(water)) == []
    assert len(ob.hydrogen_bonds(water)) >= 4
    top = ob.most_flexible_dihedrals(water, count=2)
    assert len(top) == 2
    for dih in top:
        assert not np.isnan(ob.dihedral(water, *dih)).any()
    monomer = Trajectory(numbers=water.numbers[:3], positions=water.positions[:, :3],
                         momenta=water.momenta[:, :3], dt_fs=1.0)
    assert ob.most_flexible_dihedrals(monomer) == []


def test_mae_over_time_and_temperature(water) -> None:
    shifted = _trajectory(water.numbers, water.positions + 0.01, water.velocities,
                          water.dt_fs)
    pos, vel = ob.mae_over_time(shifted, water)
    assert pos.shape == vel.shape == (len(water),)
    np.testing.assert_allclose(pos, 0.01)
    np.testing.assert_allclose(vel, 0.0, atol=1e-15)
    atoms = water.to_atoms_list()
    ase_3n = np.mean([a.get_temperature() for a in atoms])  # ASE divides by 3N
    assert ob.kinetic_temperature(water, ndof=3 * water.n_atoms) == pytest.approx(ase_3n)
    ndof = water.degrees_of_freedom  # 3N-6 for a cluster, as a run's summary counts
    assert ndof == 3 * water.n_atoms - (3 if water.periodic else 6)
    assert ob.kinetic_temperature(water) == pytest.approx(ase_3n * 3 * water.n_atoms / ndof)
    with pytest.raises(ValueError, match="differ in shape"):
        ob.mae_over_time(water.slice(0, 10), water)
