"""The streaming interpolator worker on a real MP2 water trajectory (real forces at every frame)."""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ase.io import read
from ase.io.trajectory import Trajectory as AseTrajectory
from ase.io.ulm import InvalidULMFileError

from hybridmd.config import TrainConfig, parse_config
from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.neural import NeuralInterpolator
from hybridmd.interpolation.reconstruct import reconstruct
from hybridmd.interpolation.windows import Windows
from hybridmd.interpolator_file import load_interpolator
from hybridmd.readers import read_trajectory
from hybridmd.streaming import (
    END_OF_STREAM,
    CoarseFrame,
    IncrementalReconstructor,
    StreamingInterpolation,
    WorkerDiedError,
    make_transport,
)
from hybridmd.training import Trainer, train
from hybridmd.trajectory import Trajectory
from hybridmd.units import FS

from conftest import DATA

WATER = DATA / "6h2o_orca_mp2_md_300k.npz"  # MP2 water hexamer, 301 frames, 1 fs
N = 5  # fine steps per coarse step
TRANSPORTS = ["thread", "process"]


def _config(checkpoint: Path, context: int, **training) -> TrainConfig:
    return parse_config({
        "data": {"trajectories": [{"path": str(WATER), "dt_fs": 1.0}],
                 "validation_fraction": 0.25},
        "model": {"kind": "bilstm-residual", "stride": N, "context": context,
                  "hyperparameters": {"hidden": 16, "layers": 1}},
        "training": {"batch_size": 32, "batches_per_epoch": 10, "max_epochs": 2,
                     "threads": 1, "seed": 3, **training},
        "output": {"checkpoint": str(checkpoint)},
    }, TrainConfig, "train.yaml")


@pytest.fixture(scope="module")
def coarse() -> Trajectory:
    """Every 5th frame of the water MD: 61 coarse frames 5 fs apart."""
    return read_trajectory(WATER, dt_fs=1.0).subsample(N)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Checkpoints with 2 context frames a side: an untrained residual Bi-LSTM (its output
    layer is zero: the quintic spline through the network's code path) and one trained ~1 s."""
    tmp = tmp_path_factory.mktemp("models")
    trainer = Trainer(_config(tmp / "zero.pt", context=2))
    trainer.best.state = trainer.net.state_dict()
    trainer._save()
    train(_config(tmp / "trained.pt", context=2), progress=False)
    return {"zero": tmp / "zero.pt", "trained": tmp / "trained.pt"}


def _frames(coarse: Trajectory, forces: bool = True) -> list[CoarseFrame]:
    """The coarse frames as the driver sends them; frames 20-39 marked as ML segments."""
    return [CoarseFrame(index=k, time_fs=float(coarse.times_fs[k]),
                        positions=coarse.positions[k], momenta=coarse.momenta[k],
                        forces=coarse.forces[k] if forces else None,
                        energy=float(coarse.energies[k]), origin="ml" if 20 <= k < 40 else "sim")
            for k in range(len(coarse))]


def _stream(spec: str, coarse: Trajectory, path: Path, frames: list[CoarseFrame] | None = None,
            **options) -> int:
    with StreamingInterpolation(spec, path, coarse.numbers, N, 1.0, masses=coarse.masses,
                                threads=1, **options) as stream:
        for frame in _frames(coarse) if frames is None else frames:
            stream.submit(frame)
    return stream.close()


class _Quintic(ClassicalInterpolator):
    """The quintic spline with the metadata ``reconstruct`` checks a model for."""

    def __init__(self, coarse: Trajectory):
        super().__init__("quintic")
        self.stride = N
        self.metadata = {"numbers": coarse.numbers.tolist(), "dt_fs": 1.0,
                         "checkpoint": "quintic"}
        self.canon = SimpleNamespace(masses=torch.as_tensor(coarse.masses))


class _OneByOne(NeuralInterpolator):
    """The model evaluating one window per call, as the streaming worker does."""

    def interpolate(self, windows: Windows, batch_size: int = 1) -> tuple[np.ndarray, ...]:
        return super().interpolate(windows, batch_size=1)


def _frames_on_disk(path: Path) -> int:
    """Frames in a trajectory that a worker is appending to (a header in the making: retry)."""
    for _ in range(100):
        if not path.exists() or path.stat().st_size == 0:
            return 0
        try:
            with AseTrajectory(str(path)) as traj:
                return len(traj)
        except InvalidULMFileError:
            time.sleep(0.01)
    raise AssertionError(f"{path} stays unreadable")


def _assert_fine(path: Path, expected: Trajectory, frames: list[CoarseFrame],
                 atol: float = 1e-10) -> None:
    """The file holds ``expected``, in strict time order, with the coarse frames bit for bit."""
    fine = read(path, index=":")
    assert len(fine) == len(expected) == (len(frames) - 1) * N + 1
    assert [a.info["fine_index"] for a in fine] == list(range(len(fine)))  # no gaps, no repeats
    times = np.array([a.info["time_fs"] for a in fine])
    np.testing.assert_allclose(times, expected.times_fs, atol=1e-9)
    assert np.all(np.diff(times) > 0)
    np.testing.assert_allclose([a.positions for a in fine], expected.positions, rtol=0, atol=atol)
    np.testing.assert_allclose([a.get_momenta() for a in fine], expected.momenta, rtol=0,
                               atol=atol)
    for frame in frames:
        atoms = fine[frame.index * N]
        assert atoms.info["coarse_index"] == frame.index
        np.testing.assert_array_equal(atoms.positions, frame.positions)
        np.testing.assert_array_equal(atoms.get_momenta(), frame.momenta)
        np.testing.assert_array_equal(atoms.get_forces(), frame.forces)
    # interior frames carry the origin of the segment they lie in, the origin of its end frame
    origins = [a.info["origin"] for a in fine]
    assert origins == [frames[-(-i // N)].origin for i in range(len(fine))]
    assert "ml" in origins and "sim" in origins


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_quintic_stream_equals_offline_reconstruction(transport, coarse, tmp_path):
    path = tmp_path / "fine.traj"
    frames = _frames(coarse)
    assert _stream("quintic", coarse, path, frames, transport=transport, maxsize=3) == 301
    _assert_fine(path, reconstruct(_Quintic(coarse), coarse), frames)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_neural_stream_equals_offline_reconstruction(transport, coarse, models, tmp_path):
    """Context of 2 frames a side: the first and last interval are quintic edges."""
    frames = _frames(coarse)
    model = load_interpolator(models["trained"])
    one_by_one = _OneByOne(model.net, model.canon, model.metadata)
    path = tmp_path / "fine.traj"
    _stream(str(models["trained"]), coarse, path, frames, transport=transport, maxsize=2)
    _assert_fine(path, reconstruct(one_by_one, coarse), frames)
    # offline batches all windows at once; float32 GEMM rounding depends on the batch size
    _assert_fine(path, reconstruct(model, coarse), frames, atol=1e-6)
    if transport == "thread":  # the zero-output network is the quintic spline exactly
        _stream(str(models["zero"]), coarse, path, frames, transport=transport)
        _assert_fine(path, reconstruct(load_interpolator(models["zero"]), coarse), frames)


def test_frames_come_out_as_soon_as_their_context_is_in(coarse, models):
    model = load_interpolator(models["trained"])
    recon = IncrementalReconstructor(model, coarse.numbers, coarse.masses, N, 1.0)
    emitted: list[int] = []
    for frame in _frames(coarse)[:10]:
        out = recon.feed(frame)
        emitted += [f.index for f in out]
        # interval k needs frame k + 2; interval 0 (an edge) only frame 1
        last_coarse = max(1, frame.index - 1) if frame.index else 0
        assert emitted[-1] == last_coarse * N
        assert recon.buffered <= 2 * model.context
    tail = [f.index for f in recon.finish()]
    assert emitted + tail == list(range(9 * N + 1))


def test_interval_runs_from_departure_to_arrival_momenta(coarse):
    """With a thermostat kick at each boundary, interval k ends on the arrival momenta of k+1."""
    rng = np.random.default_rng(0)
    frames = _frames(coarse)[:4]
    for f in frames:  # the O-step changed the momenta after arrival
        f.arrival_momenta = f.momenta
        f.momenta = f.momenta * (1 + 0.1 * rng.standard_normal(f.momenta.shape))
    recon = IncrementalReconstructor(ClassicalInterpolator("quintic"), coarse.numbers,
                                     coarse.masses, N, 1.0)
    out = [g for f in frames for g in recon.feed(f)] + recon.finish()
    assert [g.index for g in out] == list(range(3 * N + 1))
    m = coarse.masses[:, None]
    for k in range(3):
        a, b = frames[k], frames[k + 1]
        w = Windows(r=np.stack([a.positions, b.positions])[None],
                    v=np.stack([a.momenta / m * FS, b.arrival_momenta / m * FS])[None],
                    a=np.stack([a.forces / m * FS**2, b.forces / m * FS**2])[None],
                    stride=N, dt_fs=1.0, masses=coarse.masses, numbers=coarse.numbers)
        r, _ = ClassicalInterpolator("quintic").interpolate(w)
        np.testing.assert_allclose([g.positions for g in out[k * N + 1:(k + 1) * N]],
                                   r[0, 1:-1], atol=1e-12)
        assert out[(k + 1) * N].momenta is b.momenta  # the coarse frame: departure state


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_backpressure_holds_the_producer_back(transport, coarse, tmp_path):
    """A slow worker and a queue of 2: the producer never gets more than 2 + 1 frames ahead
    of the coarse frames already written (2 queued, 1 in the worker's hands), and waits."""
    frames, path, maxsize = _frames(coarse)[:16], tmp_path / "fine.traj", 2
    ahead = []
    with StreamingInterpolation("quintic", path, coarse.numbers, N, 1.0, masses=coarse.masses,
                                transport=transport, maxsize=maxsize,
                                interval_delay_s=0.05) as stream:
        for frame in frames:
            stream.submit(frame)
            written = _frames_on_disk(path)
            coarse_done = 0 if written == 0 else (written - 1) // N + 1
            ahead.append(stream.submitted - coarse_done)
    assert stream.close() == (len(frames) - 1) * N + 1
    assert max(ahead) <= maxsize + 1  # context 1: the worker holds no frame back
    assert max(ahead) >= maxsize  # and the producer did fill the queue
    short = Trajectory(coarse.numbers, coarse.positions[:16], coarse.momenta[:16], 5.0,
                       coarse.masses, coarse.energies[:16], coarse.forces[:16])
    fine = read(path, index=":")
    np.testing.assert_allclose([a.positions for a in fine],
                               reconstruct(_Quintic(short), short).positions,
                               rtol=0, atol=1e-10)


def test_killed_worker_process_is_reported(coarse, tmp_path):
    frames, path = _frames(coarse), tmp_path / "fine.traj"
    stream = StreamingInterpolation("quintic", path, coarse.numbers, N, 1.0,
                                    masses=coarse.masses, transport="process", maxsize=2,
                                    interval_delay_s=0.05).start()
    for frame in frames[:8]:
        stream.submit(frame)
    deadline = time.monotonic() + 30
    while not (path.exists() and path.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(stream.worker_pid, signal.SIGKILL)
    while stream.worker_alive and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    with pytest.raises(WorkerDiedError, match="killed by signal 9") as info:
        stream.submit(frames[8])
    assert time.monotonic() - start < 5
    assert str(path) in str(info.value) and info.value.output_path == path
    with pytest.raises(WorkerDiedError):  # the stream stays failed
        stream.close()
    fine = read(path, index=":")  # what was written before the kill is intact
    assert 1 <= len(fine) < (len(frames) - 1) * N
    expected = reconstruct(_Quintic(coarse), coarse)
    np.testing.assert_allclose([a.positions for a in fine], expected.positions[:len(fine)],
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_worker_exception_is_reported(transport, coarse, tmp_path):
    frames, path = _frames(coarse)[:20], tmp_path / "fine.traj"
    frames[6].forces = None
    stream = StreamingInterpolation("quintic", path, coarse.numbers, N, 1.0,
                                    masses=coarse.masses, transport=transport, maxsize=2).start()
    with pytest.raises(WorkerDiedError, match="coarse frame 6 .* has no forces") as info:
        for frame in frames:
            stream.submit(frame)
        stream.close()
    assert "ValueError" in info.value.cause and str(path) in str(info.value)
    assert "feed" in info.value.worker_traceback
    assert len(read(path, index=":")) == 5 * N + 1  # everything up to coarse frame 5


def test_bad_inputs_are_refused(coarse, models, tmp_path):
    with pytest.raises(ValueError, match="needs the peer rank"):
        make_transport("mpi")
    with pytest.raises(ValueError, match="unknown transport 'pipe'"):
        make_transport("pipe")
    model = load_interpolator(models["trained"])
    with pytest.raises(ValueError, match="5 fine steps per coarse step, the stream 10"):
        IncrementalReconstructor(model, coarse.numbers, coarse.masses, 10, 0.5)
    with pytest.raises(ValueError, match="coarse spacing Δt = n·Δτ of 5 fs.*2.5 fs apart"):
        IncrementalReconstructor(model, coarse.numbers, coarse.masses, N, 0.5)
    recon = IncrementalReconstructor(model, coarse.numbers, coarse.masses, N, 1.0)
    frames = _frames(coarse)
    recon.feed(frames[0])
    with pytest.raises(ValueError, match="without gaps"):
        recon.feed(frames[2])
    # a model of another molecule fails in the worker and says so at the driver
    with pytest.raises(WorkerDiedError, match="the model has 18 atoms"), StreamingInterpolation(
            str(models["trained"]), tmp_path / "x.traj", coarse.numbers[:6], N, 1.0) as stream:
        for frame in frames:
            stream.submit(frame)


def test_coarse_frames_own_their_arrays_and_pickle(coarse):
    positions = coarse.positions[3].copy()
    frame = CoarseFrame(3, 15.0, positions, coarse.momenta[3], forces=coarse.forces[3])
    positions += 1.0  # the driver integrates on in its own arrays
    np.testing.assert_array_equal(frame.positions, coarse.positions[3])
    again = pickle.loads(pickle.dumps(frame))
    np.testing.assert_array_equal(again.arrival, coarse.momenta[3])
    assert again.energy is None and again.origin == "sim"
    assert pickle.loads(pickle.dumps(END_OF_STREAM)) is END_OF_STREAM
    with pytest.raises(ValueError, match="origin"):
        CoarseFrame(3, 15.0, positions, coarse.momenta[3], origin="md")


def test_an_error_in_the_driver_stops_a_thread_worker(coarse, tmp_path):
    with pytest.raises(KeyError), StreamingInterpolation(
            "quintic", tmp_path / "fine.traj", coarse.numbers, N, 1.0, maxsize=2,
            interval_delay_s=0.05) as stream:
        for frame in _frames(coarse)[:6]:
            stream.submit(frame)
        raise KeyError("the driver failed")
    assert not stream.worker_alive  # stopped at once, not after the queued intervals
    with pytest.raises(RuntimeError, match="aborted"):
        stream.submit(_frames(coarse)[6])
