"""workflows/generate_nve_training_data.py: Newtonian segments from a thermostatted run."""

from __future__ import annotations

import runpy

import numpy as np
from ase.io import read

from hybridmd.simulate import run_simulation

from conftest import REPO


def test_segments_start_on_the_thermostatted_states_and_conserve_energy(config_factory, tmp_path):
    cfg = config_factory({"dynamics": {"steps": 40, "seed": 4, "tau_fs": 10},
                          "output": {"stride": 1, "directory": str(tmp_path / "bussi")}})
    source = run_simulation(cfg, progress=False).trajectory
    segments = runpy.run_path(str(REPO / "workflows" / "generate_nve_training_data.py"))[
        "segments"]
    out = tmp_path / "nve"
    segments(source, out, count=2, ps=0.01, model="ethanol")
    thermostatted = read(source, ":")
    for k, start in enumerate((0, 20)):  # 41 frames, 2 segments: frames 0 and 20
        frames = read(out / f"seg-{k:03d}" / "trajectory.traj", ":")
        assert len(frames) == 21  # 10 fs of 0.5 fs steps
        np.testing.assert_array_equal(frames[0].positions, thermostatted[start].positions)
        np.testing.assert_allclose(frames[0].get_momenta(), thermostatted[start].get_momenta(),
                                   rtol=1e-12, atol=1e-12)
        energy = [f.get_potential_energy() + f.get_kinetic_energy() for f in frames]
        assert np.ptp(energy) < 5e-3  # eV: NVE (Verlet's fluctuation), the thermostat moves it more
    bussi = [f.get_potential_energy() + f.get_kinetic_energy() for f in thermostatted]
    assert np.ptp(bussi) > 0.05  # eV (0.14 measured)
    mtime = (out / "seg-001" / "trajectory.traj").stat().st_mtime_ns
    segments(source, out, count=2, ps=0.01, model="ethanol")  # finished segments are kept
    assert (out / "seg-001" / "trajectory.traj").stat().st_mtime_ns == mtime
