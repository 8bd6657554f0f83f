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
