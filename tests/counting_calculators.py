"""A calculator that counts its own calculations, to check a run's accounting against."""

from __future__ import annotations

from ase.calculators.calculator import Calculator, all_changes

from hybridmd.calculators import build_calculator
from hybridmd.config import SGDMLConfig


class CountingSGDML(Calculator):
    """A shipped sGDML model; ``CountingSGDML.calls`` counts the calculations of every
    instance in this process (the driver's and those of monitors run in the driver)."""

    implemented_properties = ["energy", "forces"]
    calls = 0

    def __init__(self, model: str = "ethanol", **kwargs):
        super().__init__(**kwargs)
        self._model = model
        self._inner = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self._inner is None:
            self._inner = build_calculator(SGDMLConfig(type="sgdml", model=self._model), atoms)
        CountingSGDML.calls += 1
        self._inner.calculate(atoms, ["energy", "forces"], system_changes)
        self.results = dict(self._inner.results)
