"""The workflow scripts a new user runs before a run of their own (real calculators)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from ase.build import molecule
from ase.io import read

from hybridmd.calculators import build_calculator
from hybridmd.config import SimulationConfig, load_config

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def test_relax_structure_writes_the_file_its_input_names(tmp_path):
    """Step 1 of the your-own-molecule guide: the input already names the relaxed file it is
    about to write (it does not exist yet), and the relaxation starts from --start."""
    start = molecule("H2O")
    start.positions[1] += [0.1, 0.0, 0.05]
    start.write(tmp_path / "water.xyz")
    (tmp_path / "water.yaml").write_text(yaml.safe_dump({
        "system": {"file": "water-gfn1.xyz"},
        "calculator": {"type": "xtb", "method": "GFN1-xTB"},
        "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "steps": 10,
                     "temperature_K": 300, "seed": 1}}))
    done = subprocess.run(
        [sys.executable, str(WORKFLOWS / "relax_structure.py"), str(tmp_path / "water.yaml"),
         "--start", str(tmp_path / "water.xyz"), "-o", str(tmp_path / "water-gfn1.xyz")],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    relaxed = read(tmp_path / "water-gfn1.xyz")
    cfg = load_config(tmp_path / "water.yaml", SimulationConfig)  # the input now validates
    relaxed.calc = build_calculator(cfg.calculator, relaxed)
    assert np.abs(relaxed.get_forces()).max() < 0.01


def test_the_newcomer_path_runs_for_a_molecule_nothing_ships(tmp_path):
    """The your-own-molecule guide as written, for formic acid (no model, interpolator or
    forecaster ships for it): a start geometry, relaxed with the input's own calculator into
    the file the input names, then `hybridmd run` learning from cold."""
    from hybridmd.cli import main

    start = molecule("HCOOH")
    start.positions[0] += [0.05, -0.03, 0.02]
    start.write(tmp_path / "formic-acid.xyz")
    (tmp_path / "formic-acid.yaml").write_text(yaml.safe_dump({
        "system": {"file": "formic-acid-gfn2.xyz"},
        "calculator": {"type": "xtb", "method": "GFN2-xTB"},
        "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "duration_fs": 300,
                     "temperature_K": 300, "tau_fs": 100, "seed": 1},
        "hybrid": {"stride": 20, "forecaster": "learn", "interpolator": "learn",
                   "transport": "thread",
                   "learn": {"first_fit_frames": 60, "refit_frames": 60, "transport": "thread"},
                   "monitor": {"fraction": 0.02, "uncertain_fraction": 0.03, "workers": 0}},
        "output": {"directory": str(tmp_path / "runs" / "formic-acid")}}))
    relax = subprocess.run(
        [sys.executable, str(WORKFLOWS / "relax_structure.py"), str(tmp_path / "formic-acid.yaml"),
         "--start", str(tmp_path / "formic-acid.xyz"),
         "-o", str(tmp_path / "formic-acid-gfn2.xyz")],
        capture_output=True, text=True, timeout=300)
    assert relax.returncode == 0, relax.stderr
    assert main(["-q", "run", str(tmp_path / "formic-acid.yaml")]) == 0
    out = tmp_path / "runs" / "formic-acid"
    for name in ("fine.traj", "summary.json", "timeline.png", "forecaster.pt"):
        assert (out / name).is_file(), name
    assert len(read(out / "fine.traj", ":")) == 601
