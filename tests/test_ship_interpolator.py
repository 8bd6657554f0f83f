"""workflows/ship_interpolator.py: a trained checkpoint made shippable."""

from __future__ import annotations

import runpy
from pathlib import Path

import torch

from hybridmd.interpolator_file import load_interpolator, read_checkpoint

from conftest import REPO


def test_ship_drops_training_state_and_makes_paths_relative(tmp_path: Path) -> None:
    ship = runpy.run_path(str(REPO / "workflows" / "ship_interpolator.py"))["ship"]
    root = tmp_path / "repo"
    trained = read_checkpoint("ethanol-bilstm-5fs")
    trained.pop("path")
    trained["training_state"] = {"optimizer": {"lr": 1e-3}}
    meta = trained["metadata"]
    inside = str(root / "inputs" / ".." / "runs" / "seg-000" / "trajectory.traj")
    meta["provenance"] = [{"path": inside, "frames": 5001}, {"path": "/elsewhere/a.traj"}]
    meta["config"]["data"]["trajectories"] = [{"path": inside}]
    meta["config"]["output"]["checkpoint"] = str(root / "runs" / "train" / "model.pt")
    source = tmp_path / "model.pt"
    torch.save(trained, source)

    shipped = ship(source, "ethanol-test", tmp_path, root=root)

    data = read_checkpoint(shipped)
    assert data["training_state"] is None
    assert [p["path"] for p in data["metadata"]["provenance"]] == [
        "runs/seg-000/trajectory.traj", "/elsewhere/a.traj"]  # outside the repository: kept
    assert data["metadata"]["config"]["data"]["trajectories"][0]["path"] == (
        "runs/seg-000/trajectory.traj")
    assert data["metadata"]["config"]["output"]["checkpoint"] == "runs/train/model.pt"
    for key, value in trained["state_dict"].items():
        assert torch.equal(data["state_dict"][key], value)
    assert load_interpolator(shipped).stride == 10
