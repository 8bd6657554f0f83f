"""Data shipped with hybridmd: sGDML models and MD17 start geometries (MIT, see LICENSE-sgdml)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).parent
MODELS_DIR = DATA_DIR / "models"
GEOMETRIES_DIR = DATA_DIR / "geometries"
INTERPOLATORS_DIR = DATA_DIR / "interpolators"


def model_names() -> list[str]:
    """Names of the shipped sGDML models."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.npz"))


def geometry_names() -> list[str]:
    """Names of the shipped start geometries."""
    return sorted(p.stem for p in GEOMETRIES_DIR.glob("*.xyz"))


def model_path(name: str) -> Path:
    """Path of a shipped sGDML model."""
    return MODELS_DIR / f"{name}.npz"


def geometry_path(name: str) -> Path:
    """Path of a shipped start geometry."""
    return GEOMETRIES_DIR / f"{name}.xyz"


def interpolator_names() -> list[str]:
    """Names of the shipped trained interpolators."""
    return sorted(p.stem for p in INTERPOLATORS_DIR.glob("*.pt"))


def interpolator_path(name: str) -> Path:
    """Path of a shipped trained interpolator."""
    return INTERPOLATORS_DIR / f"{name}.pt"
FORECASTERS_DIR = DATA_DIR / "forecasters"


def forecaster_names() -> list[str]:
    """Names of the shipped trained forecasters."""
    return sorted(p.stem for p in FORECASTERS_DIR.glob("*.pt"))


def forecaster_path(name: str) -> Path:
    """Path of a shipped trained forecaster."""
    return FORECASTERS_DIR / f"{name}.pt"
