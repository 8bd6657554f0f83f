"""Calculators that fail on purpose, to test how runs handle a calculator going wrong."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lj import LennardJones


class NaNAfter(Calculator):
    """Soft Lennard-Jones forces for ``good_calls`` calls, then NaN (a diverged SCF, say)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, good_calls: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.good_calls = good_calls
        self.calls = 0
        self._lj = LennardJones(sigma=1.0, epsilon=0.01, rc=6.0)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        self._lj.calculate(atoms, ["energy", "forces"], system_changes)
        self.results = dict(self._lj.results)
        if self.calls > self.good_calls:
            self.results["forces"] = np.full((len(atoms), 3), np.nan)
