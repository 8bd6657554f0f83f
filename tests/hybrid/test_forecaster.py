"""The forecaster: symmetry of its inputs, file round trip, and a tiny training run."""

from __future__ import annotations

import numpy as np
import pytest

from hybridmd.forecaster_training import train_forecaster
from hybridmd.hybrid.forecaster import interchangeable_groups, load_forecaster
from hybridmd.interpolation.windows import accelerations
from hybridmd.readers import read_trajectory
from hybridmd.simulate import run_simulation

from conftest import make_config

SHIPPED = "ethanol-forecaster-10fs"


@pytest.fixture(scope="module")
def md(tmp_path_factory):
    """600 fs of Bussi ethanol with the shipped sGDML model, every 0.5 fs step."""
    tmp = tmp_path_factory.mktemp("fc")
    cfg = make_config(tmp, {"dynamics": {"integrator": "bussi", "steps": 1200, "seed": 9}})
    return read_trajectory(run_simulation(cfg, progress=False).trajectory)


def test_methyl_and_methylene_hydrogens_are_interchangeable():
    fc = load_forecaster(SHIPPED)
    # ethanol in MD17 order: C C O H H H H H H; C0 carries H3, H4; C1 the methyl H5-H7
    assert fc.scales.groups == [[3, 4], [5, 6, 7]]
    assert interchangeable_groups(fc.numbers, fc.scales.reference.numpy()) == [[3, 4], [5, 6, 7]]


def test_relabelled_hydrogens_give_the_relabelled_forecast(md):
    """A methyl rotation by 120° relabels its hydrogens: the forecast must follow the labels."""
    fc = load_forecaster(SHIPPED)
    a = accelerations(md)
    r, v = md.positions[100], md.velocities[100]
    perm = [0, 1, 2, 3, 4, 6, 7, 5, 8]
    r1, v1 = fc.predict(r, v, a[100])
    r1p, v1p = fc.predict(r[perm], v[perm], a[100][perm])
    assert np.allclose(r1p, r1[perm], atol=1e-10) and np.allclose(v1p, v1[perm], atol=1e-10)


def test_shipped_forecaster_beats_the_taylor_step_on_new_data(md):
    """On a trajectory it never saw: far closer to the simulation than r + vΔt + aΔt²/2."""
    fc = load_forecaster(SHIPPED)
    a = accelerations(md)
    starts = np.arange(0, len(md) - 20, 13)
    r1, _ = fc.predict(md.positions[starts], md.velocities[starts], a[starts])
    truth = md.positions[starts + 20]
    taylor = md.positions[starts] + 10 * md.velocities[starts] + 50 * a[starts]
    err, err_taylor = np.abs(r1 - truth).mean(), np.abs(taylor - truth).mean()
    assert err < 0.01 and err < err_taylor / 10


def test_training_writes_a_checkpoint_that_learned_something(md, tmp_path):
    path = tmp_path / "fc.pt"
    result = train_forecaster([md], 20, path, hidden=32, layers=2, max_minutes=0.1,
                              batches_per_epoch=20, threads=1, progress=False)
    assert result.epochs >= 1 and path.is_file()
    fc = load_forecaster(path)
    assert fc.stride == 20 and fc.dt_fs == pytest.approx(0.5)
    assert list(fc.numbers) == list(md.numbers)
    hist = result.history
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] or len(hist) == 1


def test_missing_forecaster_names_the_shipped_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match=SHIPPED):
        load_forecaster(tmp_path / "nothing.pt")


def test_training_from_the_shipped_forecaster_starts_from_its_network(md, tmp_path):
    path = tmp_path / "tuned.pt"
    shipped = load_forecaster(SHIPPED)
    result = train_forecaster([md], 20, path, max_minutes=0.05, batches_per_epoch=5,
                              learning_rate=1e-5, threads=1, progress=False,
                              start_from=SHIPPED)
    tuned = load_forecaster(path)
    assert tuned.net.hyperparameters() == shipped.net.hyperparameters()
    assert np.array_equal(tuned.scales.inputs.numpy(), shipped.scales.inputs.numpy())
    assert tuned.metadata["fine_tuned_from"]["checkpoint"].endswith(f"{SHIPPED}.pt")
    # a small learning rate from a good network stays good (far below the Taylor step)
    assert result.best_val_position_mae < 0.01
    with pytest.raises(ValueError, match="does not fit this training input"):
        train_forecaster([md], 10, tmp_path / "x.pt", max_minutes=0.01, threads=1,
                         progress=False, start_from=SHIPPED)
