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


# ------------------------------------------------------------------------------ periodic cells

CELL = np.array([[9.0, 0.0, 0.0], [1.5, 8.5, 0.0], [0.7, -1.1, 10.2]])


def test_no_cell_means_not_periodic() -> None:
    assert WATER.cell is None and WATER.cells is None
    assert WATER.pbc.tolist() == [False] * 3 and not WATER.periodic
    atoms = WATER.to_atoms_list()[0]
    assert not atoms.cell.any() and not atoms.pbc.any()


def test_cell_defaults_to_periodic_and_survives_slicing() -> None:
    traj = Trajectory(WATER.numbers, WATER.positions, WATER.momenta, 0.5, cell=CELL)
    assert traj.pbc.tolist() == [True] * 3 and traj.periodic
    for part in (traj.slice(3, 9), traj.subsample(4, start=1)):
        np.testing.assert_array_equal(part.cell, CELL)
        assert part.periodic
    assert traj.cells.shape == (200, 3, 3)
    box = traj.constant_box()
    np.testing.assert_array_equal(box["cell"], CELL)
    assert box["pbc"].all() and WATER.constant_box() == {}
    atoms = traj.to_atoms_list()[5]
    np.testing.assert_array_equal(atoms.cell.array, CELL)
    assert atoms.pbc.all()
    slab = Trajectory(WATER.numbers, WATER.positions, WATER.momenta, 0.5, cell=CELL,
                      pbc=[True, True, False])
    assert not slab.periodic and slab.to_atoms_list()[0].pbc.tolist() == [True, True, False]


def test_a_cell_per_frame_is_sliced_with_the_frames_and_equal_ones_are_one() -> None:
    cells = CELL * np.linspace(1.0, 1.1, 200)[:, None, None]
    traj = Trajectory(WATER.numbers, WATER.positions, WATER.momenta, 0.5, cell=cells)
    np.testing.assert_array_equal(traj.subsample(50, start=10).cell, cells[10::50])
    np.testing.assert_array_equal(traj.to_atoms_list()[7].cell.array, cells[7])
    assert traj.constant_box() == {}  # a reconstruction between the frames gets no cell
    constant = Trajectory(WATER.numbers, WATER.positions, WATER.momenta, 0.5,
                          cell=np.broadcast_to(CELL, (200, 3, 3)))
    assert constant.cell.shape == (3, 3)


@pytest.mark.parametrize("cell, pbc, message", [
    (np.eye(3)[:2], None, "cell has shape"),
    (np.ones((7, 3, 3)), None, r"\(200, 3, 3\) for 200 frames"),
    (None, True, "without a cell"),
    (np.diag([5.0, 5.0, 0.0]), None, "no lattice vector along a periodic direction"),
])
def test_cells_that_do_not_fit_are_refused(cell, pbc, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Trajectory(WATER.numbers, WATER.positions, WATER.momenta, 0.5, cell=cell, pbc=pbc)
