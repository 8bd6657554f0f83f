"""Fixtures shared by the hybrid tests."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor

import pytest


@pytest.fixture
def broken_pool() -> Iterator[ProcessPoolExecutor]:
    """A process pool whose process was killed: what the driver holds after a child died."""
    pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
    with pytest.raises(BrokenExecutor):
        pool.submit(os._exit, 1).result()
    yield pool
    pool.shutdown(wait=True)
