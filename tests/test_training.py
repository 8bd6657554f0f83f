"""Training, checkpoints, `evaluate` and `interpolate` on a real ab initio trajectory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hybridmd.cli import main
from hybridmd.config import TrainConfig, parse_config
from hybridmd.errors import InputError
from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.evaluate import evaluate
from hybridmd.interpolation.metrics import reconstruction_errors
from hybridmd.interpolation.reconstruct import reconstruct
from hybridmd.interpolation.windows import make_windows
from hybridmd.interpolator_file import ModelMismatchError, check_compatible, load_interpolator
from hybridmd.readers import read_trajectory, write_trajectory
from hybridmd.training import Trainer, train

from conftest import DATA

WATER = DATA / "6h2o_orca_mp2_md_300k.npz"  # MP2 water hexamer, 301 frames, 1 fs


def _config(tmp_path: Path, **training) -> TrainConfig:
    return parse_config({
        "data": {"trajectories": [{"path": str(WATER), "dt_fs": 1.0}],
                 "validation_fraction": 0.25},
        "model": {"kind": "bilstm-residual", "stride": 5, "context": 1,
                  "hyperparameters": {"hidden": 32, "layers": 1}},
        "training": {"batch_size": 32, "batches_per_epoch": 15, "max_epochs": 6,
                     "threads": 1, "seed": 3, **training},
        "output": {"checkpoint": str(tmp_path / "model.pt")},
    }, TrainConfig, "train.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A tiny residual Bi-LSTM trained for a few seconds on the first 75% of the water MD."""
    tmp = tmp_path_factory.mktemp("train")
    result = train(_config(tmp), progress=False)
    return tmp / "model.pt", {"history": result.history}


def test_training_lowers_the_loss(trained) -> None:
    history = trained[1]["history"]
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    assert min(h["val_loss"] for h in history) < history[0]["val_loss"]


def test_trained_model_beats_linear_and_keeps_the_coarse_frames(trained) -> None:
    model = load_interpolator(trained[0])
    held_out = read_trajectory(WATER, dt_fs=1.0).slice(226)  # the validation part
    w = make_windows(held_out, 5, context=1)
    r, v = model.interpolate(w)
    np.testing.assert_array_equal(r[:, 0], w.target_r[:, 0])
    np.testing.assert_array_equal(r[:, -1], w.target_r[:, -1])
    ours = reconstruction_errors(r, v, w.target_r, w.target_v)["position_mae"]
    lr, lv = ClassicalInterpolator("linear").interpolate(w)
    linear = reconstruction_errors(lr, lv, w.target_r, w.target_v)["position_mae"]
    assert ours < 0.5 * linear


def test_untrained_residual_model_is_the_quintic_spline(tmp_path: Path) -> None:
    trainer = Trainer(_config(tmp_path))
    trainer.best.state = trainer.net.state_dict()
    trainer._save()
    model = load_interpolator(tmp_path / "model.pt")
    w = make_windows(read_trajectory(WATER, dt_fs=1.0), 5, context=1)
    r, v = model.interpolate(w)
    qr, qv = ClassicalInterpolator("quintic").interpolate(w)
    np.testing.assert_allclose(r, qr, atol=1e-9)
    np.testing.assert_allclose(v, qv, atol=1e-9)


def test_checkpoint_round_trip_and_contents(trained) -> None:
    data = torch.load(trained[0], weights_only=False)
    assert data["kind"] == "bilstm-residual" and data["stride"] == 5 and data["context"] == 1
    assert data["numbers"] == [8, 1, 1] * 6 and data["dt_fs"] == 1.0
    assert data["metadata"]["provenance"][0]["path"].endswith("6h2o_orca_mp2_md_300k.npz")
    assert data["version"]
    a, b = load_interpolator(trained[0]), load_interpolator(trained[0])
    w = make_windows(read_trajectory(WATER, dt_fs=1.0), 5, context=1)
    np.testing.assert_array_equal(a.interpolate(w)[0], b.interpolate(w)[0])


def test_resume_continues_training(tmp_path: Path) -> None:
    train(_config(tmp_path, max_epochs=2), progress=False)
    result = train(_config(tmp_path, max_epochs=4), resume=True, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]


def test_mismatches_are_refused(trained) -> None:
    model = load_interpolator(trained[0])
    water = read_trajectory(WATER, dt_fs=1.0)
    with pytest.raises(ModelMismatchError, match="fine time step.*1 fs.*0.5 fs"):
        check_compatible(model, read_trajectory(WATER, dt_fs=0.5))
    with pytest.raises(ModelMismatchError, match="coarse spacing.*5 fs"):
        check_compatible(model, water, coarse=True)
    reordered = water.slice(0)
    reordered.numbers = np.roll(water.numbers, 1)
    with pytest.raises(ModelMismatchError, match="atom order: atom 0"):
        check_compatible(model, reordered)
    methanol = read_trajectory(DATA / "ABC-4MeOH-300K-1-gdml.npz", dt_fs=1.0)
    with pytest.raises(ModelMismatchError, match="species"):
        check_compatible(model, methanol)
    heavy = water.slice(0)
    heavy.masses = water.masses * 2
    with pytest.raises(ModelMismatchError, match="masses"):
        check_compatible(model, heavy)


def test_evaluate_scores_models_and_baselines_on_the_same_windows(trained) -> None:
    scores = evaluate([load_interpolator(trained[0])], read_trajectory(WATER, dt_fs=1.0))
    names = [s.model for s in scores]
    assert names[:3] == ["linear", "cubic Hermite", "quintic Hermite"]
    assert names[3].startswith("bilstm-residual")
    assert len({s.windows for s in scores}) == 1


def test_evaluate_on_several_references_cuts_windows_from_each(trained, tmp_path) -> None:
    """Two halves of the water MD: the windows of each, none across the cut, scored as one."""
    water = read_trajectory(WATER, dt_fs=1.0)
    halves = [water.slice(0, 150), water.slice(150, 301)]
    model = load_interpolator(trained[0])
    both = {s.model: s for s in evaluate([model], halves)}
    each = [{s.model: s for s in evaluate([model], half)} for half in halves]
    for name, score in both.items():
        counts = [e[name].windows for e in each]
        assert score.windows == sum(counts)
        mean = sum(e[name].position_mae * n for e, n in zip(each, counts, strict=True))
        assert score.position_mae == pytest.approx(mean / sum(counts), rel=1e-9)
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for half, path in zip(halves, paths, strict=True):
        write_trajectory(half, path)
    out = tmp_path / "scores.json"
    assert main(["-q", "evaluate", "--model", str(trained[0]), "--reference", *map(str, paths),
                 "--json", str(out)]) == 0
    assert {s["model"]: s["windows"] for s in json.loads(out.read_text())} == {
        name: s.windows for name, s in both.items()}
    with pytest.raises(ValueError, match="reference trajectories differ"):
        evaluate([], [halves[0], read_trajectory(WATER, dt_fs=0.5)], strides=(5,))


def test_interpolate_cli_rebuilds_the_fine_trajectory(trained, tmp_path: Path) -> None:
    water = read_trajectory(WATER, dt_fs=1.0).slice(0, 101)
    coarse_path = tmp_path / "coarse.npz"
    write_trajectory(water.subsample(5), coarse_path)
    out = tmp_path / "fine.extxyz"
    assert main(["-q", "interpolate", "--model", str(trained[0]), str(coarse_path),
                 "-o", str(out)]) == 0
    fine = read_trajectory(out)
    assert len(fine) == 101 and fine.dt_fs == pytest.approx(1.0)
    np.testing.assert_allclose(fine.positions[::5], water.positions[::5], atol=1e-12)
    assert np.abs(fine.positions - water.positions).mean() < 5e-3
    # a coarse file at the wrong spacing is refused as bad input
    write_trajectory(water.subsample(4), coarse_path)
    assert main(["-q", "interpolate", "--model", str(trained[0]), str(coarse_path),
                 "-o", str(out)]) == 2


def test_evaluate_cli_json(trained, tmp_path: Path, capsys) -> None:
    out = tmp_path / "scores.json"
    assert main(["-q", "evaluate", "--model", str(trained[0]), "--reference", str(WATER),
                 "--dt-fs", "1.0", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "quintic Hermite" in printed and "by window temperature (bins of 100 K)" in printed
    scores = json.loads(out.read_text())
    assert len(scores) == 4
    # model.pt, the name of every training's output, is labelled with its folder
    assert f"bilstm-residual ({trained[0].parent.name}/model.pt)" in {s["model"] for s in scores}
    assert all(sum(b["windows"] for b in s["by_temperature"]) == s["windows"] for s in scores)


def test_reconstruct_fills_edges_with_quintic(trained) -> None:
    model = load_interpolator(trained[0])
    water = read_trajectory(WATER, dt_fs=1.0).slice(0, 31)
    fine = reconstruct(model, water.subsample(5))
    assert fine.metadata["quintic_intervals"] == []
    assert len(fine) == 31


def test_cosine_schedule_warms_up_then_decays(tmp_path: Path) -> None:
    result = train(_config(tmp_path, max_epochs=6, batches_per_epoch=3, schedule="cosine",
                           warmup_epochs=2), progress=False)
    lrs = [h["lr"] for h in result.history]
    assert lrs[0] == pytest.approx(1e-3)  # warm-up ends after epoch 1 (lr for epoch 2 is full)
    assert lrs[1:] == sorted(lrs[1:], reverse=True) and lrs[-1] == pytest.approx(1e-5)


def test_step_schedule_cuts_the_learning_rate_after_its_milestones(tmp_path: Path) -> None:
    result = train(_config(tmp_path, max_epochs=5, batches_per_epoch=2, schedule="step",
                           milestones=[2, 4]), progress=False)
    assert [h["lr"] for h in result.history] == pytest.approx([1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])
    with pytest.raises(ValueError, match="step schedule needs milestones"):
        _config(tmp_path, schedule="step")
    with pytest.raises(ValueError, match="milestones must be increasing"):
        _config(tmp_path, schedule="step", milestones=[4, 2])


def test_weight_average_is_validated_saved_and_resumed(tmp_path: Path) -> None:
    trainer = Trainer(_config(tmp_path / "a", max_epochs=4, weight_average=0.9))
    history = trainer.run(progress=False).history
    averaged = trainer.validate()
    assert averaged[0] == pytest.approx(history[-1]["val_loss"])
    trainer.averaged = None  # score the raw weights instead
    assert trainer.validate()[0] != pytest.approx(averaged[0])
    train(_config(tmp_path / "b", max_epochs=2, weight_average=0.9), progress=False)
    resumed = train(_config(tmp_path / "b", max_epochs=4, weight_average=0.9), resume=True,
                    progress=False).history
    for straight, again in zip(history, resumed, strict=True):
        assert again["val_loss"] == pytest.approx(straight["val_loss"], rel=1e-6)


def test_training_from_a_checkpoint_fine_tunes_it(trained, tmp_path: Path) -> None:
    """--from starts from the checkpoint's network and canonical frame, and says so."""
    start, _ = trained
    cfg = _config(tmp_path, max_epochs=1)
    tuner = Trainer(cfg, start_from=start)
    before = load_interpolator(start)
    assert torch.equal(tuner.canon.reference, before.canon.reference)
    assert all(torch.equal(a, b) for a, b in zip(tuner.net.state_dict().values(),
                                                 before.net.state_dict().values(), strict=True))
    loss_before, _ = tuner.validate()
    result = tuner.run(progress=False)
    assert result.best_val_loss <= loss_before
    meta = load_interpolator(tmp_path / "model.pt").metadata
    assert meta["fine_tuned_from"]["checkpoint"] == str(start)
    # another architecture, stride or molecule is refused with what differs
    other = parse_config({**_config(tmp_path).model_dump(mode="json"),
                          "model": {"kind": "bilstm-residual", "stride": 5, "context": 1,
                                    "hyperparameters": {"hidden": 16, "layers": 1}}},
                         TrainConfig, "train.yaml")
    with pytest.raises(ModelMismatchError, match="hyperparameters: checkpoint"):
        Trainer(other, start_from=start)
    with pytest.raises(ValueError, match="--resume .* or --from"):
        train(cfg, resume=True, start_from=start)


def test_one_random_reading_per_window_trains_the_symmetric_model(tmp_path: Path) -> None:
    """time_reversal: random trains on one reading per window; the two readings average to
    what the network gives when it interpolates, and the saved model still averages them."""
    trainer = Trainer(_config(tmp_path, max_epochs=3, time_reversal="random"))
    history = trainer.run(progress=False).history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    both_ways = train(_config(tmp_path / "both", max_epochs=3), progress=False).history
    assert [h["train_loss"] for h in history] != [h["train_loss"] for h in both_ways]
    net = trainer.net.eval()
    batch = trainer._batch(trainer.source.val_starts[:8])
    forwards, backwards = (Trainer.read_once(batch, net, torch.full((8,), flag))
                           for flag in (False, True))
    assert not torch.allclose(forwards, backwards)
    mixed = Trainer.read_once(batch, net, torch.arange(8) % 2 == 0)
    torch.testing.assert_close(mixed[1::2], forwards[1::2])
    torch.testing.assert_close(mixed[::2], backwards[::2])
    with torch.no_grad():
        both = net(batch.ctx_x, batch.ctx_a, batch.base_x, batch.s)
    torch.testing.assert_close(0.5 * (forwards + backwards), both)
    assert load_interpolator(tmp_path / "model.pt").net.symmetric
    one_way = _config(tmp_path, time_reversal="random").model_dump(mode="json")
    one_way["model"]["hyperparameters"]["symmetric"] = False
    with pytest.raises(InputError, match="time_reversal: random .* not symmetric"):
        Trainer(parse_config(one_way, TrainConfig, "train.yaml"))
