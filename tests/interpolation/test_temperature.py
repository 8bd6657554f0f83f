"""Window temperatures: the range a model was trained on, evaluation by temperature, warnings
where data leave the range (on the real MP2 water trajectory)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from hybridmd.config import TrainConfig, parse_config
from hybridmd.interpolation.evaluate import evaluate, format_temperature_table
from hybridmd.interpolation.reconstruct import reconstruct
from hybridmd.interpolation.temperature import (
    check_range,
    context_temperatures,
    temperature_range,
)
from hybridmd.interpolation.windows import make_windows
from hybridmd.interpolator_file import load_interpolator
from hybridmd.readers import read_trajectory
from hybridmd.streaming import CoarseFrame, IncrementalReconstructor
from hybridmd.training import train
from hybridmd.trajectory import Trajectory

from conftest import DATA

WATER = DATA / "6h2o_orca_mp2_md_300k.npz"  # MP2 water hexamer, 301 frames, 1 fs
N = 5


@pytest.fixture(scope="module")
def water() -> Trajectory:
    return read_trajectory(WATER, dt_fs=1.0)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A tiny residual Bi-LSTM trained a second on the first 75% of the water MD."""
    path = tmp_path_factory.mktemp("temperature") / "model.pt"
    train(parse_config({
        "data": {"trajectories": [{"path": str(WATER), "dt_fs": 1.0}],
                 "validation_fraction": 0.25},
        "model": {"kind": "bilstm-residual", "stride": N, "context": 1,
                  "hyperparameters": {"hidden": 16, "layers": 1}},
        "training": {"batch_size": 32, "batches_per_epoch": 5, "max_epochs": 1, "threads": 1,
                     "seed": 3},
        "output": {"checkpoint": str(path)},
    }, TrainConfig, "train.yaml"), progress=False)
    return path


def _hot(traj: Trajectory, factor: float) -> Trajectory:
    """The same frames with momenta scaled by sqrt(factor): temperatures times ``factor``."""
    return Trajectory(traj.numbers, traj.positions, traj.momenta * np.sqrt(factor),
                      dt_fs=traj.dt_fs, masses=traj.masses, forces=traj.forces,
                      metadata={"source": "hot water"})


def test_window_temperature_is_the_mean_of_its_context_frames_ase_temperature(water) -> None:
    w = make_windows(water, N, context=2)
    temps = context_temperatures(w.v, w.masses)
    for k in (0, 7, len(w) - 1):
        frames = [w.start[k] + off for off in (-N, 0, N, 2 * N)]
        ase_t = [Atoms(numbers=water.numbers, positions=water.positions[i],
                       momenta=water.momenta[i], masses=water.masses).get_temperature()
                 for i in frames]
        assert temps[k] == pytest.approx(np.mean(ase_t), rel=1e-9)
    assert 150 < np.median(temps) < 500  # an MD run at 300 K


def test_checkpoint_records_the_training_windows_temperature_range(model_path) -> None:
    model = load_interpolator(model_path)
    lo, hi = model.metadata["temperature_range_K"]
    train_windows = make_windows(read_trajectory(WATER, dt_fs=1.0).slice(0, 226), N, step=1)
    temps = context_temperatures(train_windows.v, train_windows.masses)
    assert lo < np.median(temps) < hi
    assert [lo, hi] == pytest.approx(temperature_range(temps), abs=2.0)


def test_evaluate_by_temperature_splits_the_windows_and_marks_the_models_range(
        model_path, water) -> None:
    model = load_interpolator(model_path)
    refs = [water, _hot(water, 4.0)]  # the hot copy lies far above the training range
    scores = evaluate([model], refs, baselines=("quintic",), bin_k=100.0)
    for s in scores:
        assert sum(b.windows for b in s.by_temperature) == s.windows
        weighted = sum(b.windows * b.position_mae for b in s.by_temperature) / s.windows
        assert weighted == pytest.approx(s.position_mae, rel=1e-6)
    quintic, net = scores
    assert {b.in_range for b in quintic.by_temperature} == {None}
    marks = {b.in_range for b in net.by_temperature}
    assert marks == {True, False}
    lo, hi = model.metadata["temperature_range_K"]
    for b in net.by_temperature:
        assert b.in_range == (lo <= b.t_low_K and b.t_high_K <= hi)
    table = format_temperature_table(scores)
    assert "| no |" in table and "| yes |" in table


def test_reconstruct_warns_only_when_the_data_leave_the_range(model_path, water,
                                                              caplog) -> None:
    model = load_interpolator(model_path)
    coarse = water.subsample(N)
    with caplog.at_level(logging.WARNING, "hybridmd"):
        reconstruct(model, coarse)
    assert not [r for r in caplog.records if "outside the temperatures" in r.message]
    with caplog.at_level(logging.WARNING, "hybridmd"):
        reconstruct(model, _hot(water, 4.0).subsample(N))
    (warning,) = [r for r in caplog.records if "outside the temperatures" in r.message]
    assert "100% of the windows of hot water" in warning.message
    assert "hybridmd train --from" in warning.message


def test_a_model_without_a_recorded_range_is_not_checked(model_path) -> None:
    assert check_range({}, np.array([300.0])) is None
    meta = load_interpolator(model_path).metadata
    assert check_range(meta, np.array([])) is None
    assert check_range(meta, np.array([1e5])).outside == 1


def test_the_streaming_worker_warns_at_the_first_hot_interval_and_counts_them(
        model_path, water, caplog) -> None:
    model = load_interpolator(model_path)
    coarse = _hot(water, 4.0).subsample(N)
    recon = IncrementalReconstructor(model, coarse.numbers, coarse.masses, N, 1.0)
    with caplog.at_level(logging.WARNING, "hybridmd"):
        for k in range(10):
            recon.feed(CoarseFrame(index=k, time_fs=float(coarse.times_fs[k]),
                                   positions=coarse.positions[k], momenta=coarse.momenta[k],
                                   forces=coarse.forces[k]))
        recon.finish()
    messages = [r.message for r in caplog.records]
    first = [m for m in messages if "outside the temperatures" in m]
    assert len(first) == 2  # the first hot interval, then the count at the end
    assert "the interval from t = 0 fs" in first[0]
    assert first[1].startswith("9 of 9 intervals")
