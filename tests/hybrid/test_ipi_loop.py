"""The hybrid loop with i-PI as its engine: a real i-PI integrates the simulated segments.

Ethanol with the shipped sGDML model and forecaster, 300 fs (30 segments), as in
test_hybrid_driver.py; the same input on the ASE engine is the reference.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read
from test_hybrid_driver import interrupted_at, run_input, timeline

from hybridmd.config import RunConfig, parse_config
from hybridmd.hybrid.session import HybridRun

HYBRIDMD = str(Path(sys.executable).parent / "hybridmd")


def _ipi_input(out: Path, **top) -> dict:
    return {**run_input(out), "engine": {"type": "ipi", "connect_timeout_s": 30}, **top}


def _run(data: dict) -> HybridRun:
    return HybridRun(parse_config(data, RunConfig, "test.yaml"))


def _served_by_a_client(tmp_path: Path) -> dict:
    """A socket calculator section whose client is `hybridmd serve` with ethanol's sGDML."""
    serve = tmp_path / "serve.yaml"
    serve.write_text(yaml.safe_dump({"system": {"molecule": "ethanol"},
                                     "calculator": {"type": "sgdml", "model": "ethanol"}}))
    return {"type": "socket", "files": [str(serve)],
            "command": f"{HYBRIDMD} serve -q serve.yaml --address {{address}}"}


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    root = tmp_path_factory.mktemp("engines")
    ase = _run(run_input(root / "ase")).run(progress=False)
    ipi = _run(_ipi_input(root / "ipi")).run(progress=False)
    return root, ase, ipi


def test_ipi_gives_the_ase_engines_run(both_engines):
    """Same seed, same choices: i-PI's velocity Verlet is ASE's up to unit rounding (1e-8 Å
    over a segment), far below every tolerance, so the loop decides the same at every
    segment and spends the same calls."""
    root, ase, ipi = both_engines
    assert ipi.summary["force_calls"] == ase.summary["force_calls"]
    assert ipi.summary["ml_segments"] == ase.summary["ml_segments"] > 0
    modes = [[row["segment"], row["mode"], row["event"]] for row in timeline(root / "ase")]
    assert modes == [[row["segment"], row["mode"], row["event"]]
                     for row in timeline(root / "ipi")]
    a, b = read(root / "ase" / "coarse.traj", ":"), read(root / "ipi" / "coarse.traj", ":")
    assert len(a) == len(b) == 31
    gap = max(np.abs(x.positions - y.positions).max() for x, y in zip(a, b, strict=True))
    assert 0 < gap < 1e-3  # i-PI's own numbers, not a copy of ASE's; tolerance 0.05 Å
    assert (root / "ipi" / "ipi" / "RESTART").is_file()


def test_every_call_is_counted_on_ipi(both_engines):
    _, _, ipi = both_engines
    calls = ipi.summary["force_calls"]
    assert calls["total"] == sum(calls[k] for k in ("simulation", "ml_segment_ends",
                                                   "monitors", "training"))


def test_an_interrupted_ipi_run_resumes_to_the_same_trajectory(both_engines, tmp_path):
    root, _, _ = both_engines
    part = tmp_path / "part"
    assert interrupted_at(_run(_ipi_input(part)), 17).run(progress=False).interrupted
    resumed = _run(_ipi_input(part)).run(resume=True, progress=False)
    assert not resumed.interrupted
    a, b = read(root / "ipi" / "fine.traj", ":"), read(part / "fine.traj", ":")
    assert np.array_equal(np.array([x.positions for x in a]),
                          np.array([x.positions for x in b]))
    assert (root / "ipi" / "timeline.tsv").read_text() == (part / "timeline.tsv").read_text()


def test_a_client_process_behind_ipi(tmp_path):
    """i-PI asks hybridmd's relay, which asks an external client (`hybridmd serve` here, CP2K
    in the guide): the run is the same as with the calculator in this process."""
    data = _ipi_input(tmp_path / "run", calculator=_served_by_a_client(tmp_path))
    data["dynamics"]["duration_fs"] = 100
    result = _run(data).run(progress=False)
    assert result.summary["force_calls"]["total"] > 0
    reference = run_input(tmp_path / "ref")
    reference["dynamics"]["duration_fs"] = 100
    expected = _run(reference).run(progress=False)
    assert result.summary["force_calls"] == expected.summary["force_calls"]
    leftover = subprocess.run(["pgrep", "-f", "serve -q serve.yaml"], capture_output=True,
                              text=True).stdout.split()
    assert leftover == []


def _clients() -> list[str]:
    return subprocess.run(["pgrep", "-f", "hybridmd serve -q serve.yaml"], capture_output=True,
                          text=True).stdout.split()


@pytest.mark.parametrize("victim", ["client", "driver"])
def test_a_kill_9_ends_cleanly_and_the_run_resumes(tmp_path, victim):
    """kill -9 of the client: one line naming the socket, frames on disk, exit 1. kill -9 of
    the driver (which runs i-PI): its client goes too. Either way --resume starts a new
    client and finishes the run; no process left."""
    data = _ipi_input(tmp_path / "run", calculator=_served_by_a_client(tmp_path))
    data["dynamics"]["duration_fs"] = 1000
    data["hybrid"]["forecaster"] = None  # simulation only: the client is busy throughout
    data["hybrid"]["monitor"]["fraction"] = 0
    del data["hybrid"]["switch"]
    data["output"]["checkpoint_interval_s"] = 0
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(data))
    proc = subprocess.Popen([HYBRIDMD, "run", "-q", "run.yaml"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    coarse = tmp_path / "run" / "coarse.traj"
    while time.monotonic() < deadline:  # a few frames on disk, the client busy
        time.sleep(0.5)
        try:
            if len(read(coarse, ":")) >= 3:
                break
        except Exception:  # noqa: BLE001 (not there yet, or a frame half written)
            continue
    clients = _clients()
    assert clients, "the client never started"
    for pid in clients if victim == "client" else [proc.pid]:
        os.kill(int(pid), signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    if victim == "client":
        assert proc.returncode == 1
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ")
        assert "/tmp/ipi_" in lines[0] and "coarse.traj" in lines[0]
    else:
        assert proc.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 20
        while _clients() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _clients() == []
    done = len(read(tmp_path / "run" / "coarse.traj", ":"))
    assert 3 <= done < 101
    resumed = subprocess.run([HYBRIDMD, "run", "-q", "run.yaml", "--resume"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["segments"] == 100
    assert _clients() == []


def test_a_run_with_monitors_needs_a_command_for_its_clients(tmp_path):
    from hybridmd.config import ConfigError

    data = _ipi_input(tmp_path / "run", calculator={"type": "socket", "address": "mine"})
    with pytest.raises(ConfigError, match="monitors re-simulate with a calculator of their "
                       "own, each with its own client"):
        parse_config(data, RunConfig, "test.yaml")


def test_a_periodic_cell_passes_through_to_ipi(tmp_path):
    """Two waters in a 5 Å cube, one across a face, GFN1-xTB, three short segments: the
    loop on i-PI gives the ASE engine's trajectory (tblite's periodic forces through the
    socket) and its frames carry the cell."""
    from ase import Atoms
    from ase.build import molecule

    box = Atoms(cell=[5.0, 5.0, 5.0], pbc=True)
    for shift in ([0.3, 1.5, 1.5], [3.0, 3.2, 3.4]):
        water = molecule("H2O")
        water.positions += shift
        box += water
    box.write(tmp_path / "box.extxyz")
    frames = {}
    for engine in ("ase", "ipi"):
        data = run_input(tmp_path / engine)
        data.update(system={"file": str(tmp_path / "box.extxyz")},
                    calculator={"type": "xtb", "method": "GFN1-xTB"},
                    engine={"type": engine})
        data["dynamics"]["duration_fs"] = 6
        data["hybrid"] = {"stride": 4, "interpolator": "quintic", "forecaster": None}
        _run(data).run(progress=False)
        frames[engine] = read(tmp_path / engine / "coarse.traj", ":")
    assert len(frames["ipi"]) == 4
    assert all(a.pbc.all() and np.allclose(a.cell.array, np.eye(3) * 5.0)
               for a in frames["ipi"])
    gap = max(np.abs(a.positions - b.positions).max()
              for a, b in zip(frames["ase"], frames["ipi"], strict=True))
    assert gap < 1e-5
