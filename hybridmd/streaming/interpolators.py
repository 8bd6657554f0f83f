"""The interpolators a stream can use: a classical spline by name, or a trained network."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from hybridmd.interpolation.classical import ClassicalInterpolator

if TYPE_CHECKING:
    from hybridmd.interpolation.neural import NeuralInterpolator

Interpolator = Union[ClassicalInterpolator, "NeuralInterpolator"]
CLASSICAL = ("linear", "cubic", "quintic")


def make_interpolator(spec: str, device: str = "cpu") -> Interpolator:
    """``linear`` | ``cubic`` | ``quintic``, or a checkpoint path (or shipped model name)."""
    if spec in CLASSICAL:
        return ClassicalInterpolator(spec)
    from hybridmd.interpolator_file import load_interpolator  # torch only when a network is used

    return load_interpolator(spec, device=device)
