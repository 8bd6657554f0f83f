"""hybridmd.trajectory: derived quantities, and the check that pooled trajectories are one
molecule at one time step."""

from __future__ import annotations

import numpy as np
import pytest

from hybridmd.forecaster_training import _Pairs
from hybridmd.training import WindowSource
from hybridmd.trajectory import Trajectory, require_one_system


def _traj(numbers: list[int], dt_fs: float, source: str) -> Trajectory:
    rng = np.random.default_rng(0)
    shape = (200, len(numbers), 3)
    return Trajectory(numbers=numbers, positions=rng.normal(size=shape),
                      momenta=rng.normal(size=shape), dt_fs=dt_fs, metadata={"source": source})


WATER = _traj([8, 1, 1], 0.5, "a.traj")


def test_kinetic_energies_are_ases() -> None:
    expected = [atoms.get_kinetic_energy() for atoms in WATER.to_atoms_list()]
    np.testing.assert_allclose(WATER.kinetic_energies, expected, rtol=1e-12)


def test_same_molecule_and_step_pass_within_the_readers_tolerance() -> None:
    require_one_system([WATER, _traj([8, 1, 1], 0.5 * (1 + 1e-9), "b.traj")], "training")


@pytest.mark.parametrize("other, shown", [
    (_traj([1, 8, 1], 0.5, "b.traj"), "b.traj has atoms HOH at 0.5 fs"),  # same formula, order
    (_traj([8, 1, 1], 0.5 * (1 + 1e-5), "b.traj"), "a.traj OHH at 0.5 fs"),
    (_traj([8, 1, 1, 1], 0.5, "b.traj"), "b.traj has atoms OHHH"),
])
def test_other_atoms_order_or_step_are_refused_by_name(other: Trajectory, shown: str) -> None:
    with pytest.raises(ValueError, match="reference trajectories differ") as error:
        require_one_system([WATER, other], "reference")
    assert shown in str(error.value) and "one time step" in str(error.value)


def test_interpolator_and_forecaster_training_refuse_mixed_data() -> None:
    mixed = [WATER, _traj([8, 1, 1], 1.0, "b.traj")]
    with pytest.raises(ValueError, match="training trajectories differ: b.traj"):
        WindowSource(mixed, stride=4, context=1, validation_fraction=0.1)
    with pytest.raises(ValueError, match="training trajectories differ: b.traj"):
        _Pairs(mixed, stride=4, validation_fraction=0.1, window_step=1)
