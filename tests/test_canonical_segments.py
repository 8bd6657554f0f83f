"""hybridmd.canonical_segments: NVE segments from the states of a Bussi run."""

from __future__ import annotations

import numpy as np
from ase.io import read

from hybridmd.canonical_segments import canonical_nve_segments


def test_segments_start_on_the_canonical_states_run_nve_and_are_made_once(tmp_path):
    make = dict(ps=0.01, equilibration_ps=0.01, spacing_fs=5.0)  # 20 steps each, 10 between
    segments = canonical_nve_segments(300, 2, tmp_path, seed=11, **make)
    canonical = read(tmp_path / "canonical-300K-seed11" / "trajectory.traj", ":")
    assert len(canonical) == 2 + 2 + 1  # 10 fs of equilibration, then one start per 5 fs
    for k, segment in enumerate(segments):
        start = canonical[2 + k + 1]
        assert len(segment) == 21
        np.testing.assert_array_equal(segment.positions[0], start.positions)
        frames = read(tmp_path / "nve-300K-seed11" / f"seg-{k:03d}" / "trajectory.traj", ":")
        np.testing.assert_allclose(frames[0].get_momenta(), start.get_momenta(), rtol=1e-12,
                                   atol=1e-12)
        energy = [f.get_potential_energy() + f.get_kinetic_energy() for f in frames]
        assert np.ptp(energy) < 5e-3  # eV: Verlet's fluctuation; no thermostat inside
    mtime = (tmp_path / "nve-300K-seed11" / "seg-001" / "trajectory.traj").stat().st_mtime_ns
    again = canonical_nve_segments(300, 2, tmp_path, seed=11, **make)
    assert (tmp_path / "nve-300K-seed11" / "seg-001" / "trajectory.traj").stat().st_mtime_ns \
        == mtime
    np.testing.assert_array_equal(again[1].positions, segments[1].positions)
