"""Shared fixtures: small real simulations with the shipped ethanol sGDML model."""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from hybridmd.config import SimulationConfig, parse_config

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

ETHANOL_SGDML: dict[str, Any] = {
    "system": {"molecule": "ethanol"},
    "calculator": {"type": "sgdml", "model": "ethanol", "use_torch": False},
    "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "steps": 20, "temperature_K": 300,
                 "tau_fs": 50, "seed": 7},
    "output": {"stride": 1, "checkpoint_interval_s": 0},
}


def make_config(tmp_path: Path, overrides: dict[str, Any] | None = None,
                base: dict[str, Any] = ETHANOL_SGDML) -> SimulationConfig:
    """A validated config from ``base`` with section-wise overrides, writing to ``tmp_path``."""
    data = copy.deepcopy(base)
    for section, values in (overrides or {}).items():
        if isinstance(values, dict) and section != "calculator":
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    data.setdefault("output", {}).setdefault("directory", str(tmp_path / "run"))
    return parse_config(data, SimulationConfig, "test.yaml", base_dir=tmp_path)


@pytest.fixture
def config_factory(tmp_path: Path):
    return lambda overrides=None, base=ETHANOL_SGDML: make_config(tmp_path, overrides, base)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small tensors: threads only add noise and overhead)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def broken_pool() -> Iterator[ProcessPoolExecutor]:
    """A process pool whose process was killed: what the driver holds after a child died."""
    pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
    with pytest.raises(BrokenExecutor):
        pool.submit(os._exit, 1).result()
    yield pool
    pool.shutdown(wait=True)
