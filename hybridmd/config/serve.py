"""The input of `hybridmd serve`: the molecule and the calculator, or a whole `simulate` or
`run` input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from hybridmd.config.base import Strict, parse_config, read_input
from hybridmd.config.calculator import CalculatorConfig
from hybridmd.config.hybrid import RunConfig
from hybridmd.config.simulate import SimulationConfig
from hybridmd.config.system import SystemConfig


class ServeConfig(Strict):
    """What `hybridmd serve` needs of an input: the molecule and the calculator.

    A `simulate` or `run` input works too, and is then checked as a whole, as that command
    would (``serve_model``): a typo in any section is an error, not ignored.
    """

    system: SystemConfig = Field(description="the molecule, atoms in i-PI's order")
    calculator: CalculatorConfig = Field(description="the calculator to serve (by `type`)")


def serve_model(data: Any) -> type[BaseModel]:
    """The input model an input for `serve` is checked against: that of the command it is for."""
    if isinstance(data, dict) and "hybrid" in data:
        return RunConfig
    if isinstance(data, dict) and "dynamics" in data:
        return SimulationConfig
    return ServeConfig


def load_serve_config(path: str | Path) -> SimulationConfig | RunConfig | ServeConfig:
    """An input for `serve`, checked whole against the model of the command it is for."""
    path = Path(path)
    data = read_input(path)
    return parse_config(data, serve_model(data), str(path), base_dir=path.resolve().parent)
