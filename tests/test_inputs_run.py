"""The shipped inputs run as they are (shortened), end to end through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from ase.io import read

from hybridmd.cli import main

from conftest import REPO


def _shortened(name: str, tmp_path: Path, steps: int) -> Path:
    data = yaml.safe_load((REPO / "inputs" / name).read_text())
    data["dynamics"].pop("duration_fs", None)
    data["dynamics"]["steps"] = steps
    data["output"] = {**data.get("output", {}), "directory": str(tmp_path / "out"),
                      "stride": 1, "log_stride": 1}
    if "file" in data["system"]:
        data["system"]["file"] = str(REPO / "inputs" / data["system"]["file"])
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _check_run(tmp_path: Path, steps: int) -> None:
    frames = read(tmp_path / "out" / "trajectory.traj", ":")
    assert len(frames) == steps + 1
    assert all(f.has("momenta") for f in frames)
    assert np.all(np.isfinite([f.get_potential_energy() for f in frames]))
    log = np.loadtxt(tmp_path / "out" / "md.log")
    assert log.shape == (steps + 1, 6)


def test_water_dft_pyscf(tmp_path: Path) -> None:
    """Real PySCF PBE/STO-3G water, 3 Bussi steps."""
    assert main(["-q", "simulate", str(_shortened("water-dft.yaml", tmp_path, 3))]) == 0
    _check_run(tmp_path, 3)


def test_water_box_xtb_keeps_its_cell(tmp_path: Path) -> None:
    """32 waters in a periodic box, GFN1-xTB, 40 steps written every 20th, quintic between."""
    path = _shortened("water-box-xtb.yaml", tmp_path, 40)
    data = yaml.safe_load(path.read_text())
    data["output"]["stride"] = 20
    path.write_text(yaml.safe_dump(data))
    assert main(["-q", "simulate", str(path)]) == 0
    fine = read(tmp_path / "out" / "fine.traj", ":")
    assert len(fine) == 41
    assert all(a.pbc.all() and np.allclose(a.cell.lengths(), 9.855, atol=1e-3) for a in fine)


def test_ethanol_xtb(tmp_path: Path) -> None:
    assert main(["-q", "simulate", str(_shortened("ethanol-xtb.yaml", tmp_path, 20))]) == 0
    _check_run(tmp_path, 20)


def test_quickstart_hybrid_run(tmp_path: Path, capsys) -> None:
    """The README's `make run`, shortened: process worker, monitor process, summary printed."""
    data = yaml.safe_load((REPO / "inputs" / "quickstart.yaml").read_text())
    data["dynamics"]["duration_fs"] = 400
    data["output"] = {"directory": str(tmp_path / "out")}
    path = tmp_path / "quickstart.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["-q", "run", str(path)]) == 0
    assert "expensive calls:" in capsys.readouterr().out
    fine = read(tmp_path / "out" / "fine.traj", ":")
    assert len(fine) == 801 and all(f.has("momenta") for f in fine)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["segments"] == 40 and summary["ml_segments"] > 0


def test_ethanol_ipi(tmp_path: Path) -> None:
    """The i-PI engine from the command line: same outputs, and i-PI's restart file."""
    assert main(["-q", "simulate", str(_shortened("ethanol-ipi.yaml", tmp_path, 20))]) == 0
    _check_run(tmp_path, 20)
    assert (tmp_path / "out" / "RESTART").is_file()


def test_ethanol_replicas(tmp_path: Path, capsys) -> None:
    """Without MPI the four replicas run one after another, each in its own folder."""
    assert main(["-q", "simulate", str(_shortened("ethanol-replicas.yaml", tmp_path, 3))]) == 0
    out = capsys.readouterr().out
    starts = []
    for k in range(4):
        assert f"replica {k}: finished: 3 steps" in out
        frames = read(tmp_path / "out" / f"replica-{k}" / "trajectory.traj", ":")
        assert len(frames) == 4
        starts.append(frames[0].get_momenta())
    assert len({s.tobytes() for s in starts}) == 4  # seeds 1, 2, 3, 4


def test_bad_input_exits_2_with_the_key(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("system: {molecule: ethanol}\ncalculator: {type: sgdml, model: ethanol}\n"
                    "dynamics: {timestep_fs: 0.5, steps: 5, sed: 3}\n")
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "dynamics.sed" in err and "'seed'" in err


def test_mismatched_model_is_an_input_error(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mismatch.yaml"
    path.write_text("system: {molecule: uracil}\ncalculator: {type: sgdml, model: ethanol}\n"
                    "dynamics: {timestep_fs: 0.5, steps: 5}\n")
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "calculator.model" in err and "C2H6O" in err and "C4H4N2O2" in err
