"""All network kinds by name: the residual (shipped) form and the paper's family."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from hybridmd.models.base import InterpolatorNet
from hybridmd.models.residual import ResidualLSTM


def _models() -> dict[str, Callable[..., InterpolatorNet]]:
    from hybridmd.models.paper import PAPER_MODELS

    return {
        "bilstm-residual": lambda n, stride, c, **kw: ResidualLSTM(
            n, stride, c, **{**kw, "bidirectional": True}),
        "lstm-residual": lambda n, stride, c, **kw: ResidualLSTM(
            n, stride, c, **{**kw, "bidirectional": False}),
        **PAPER_MODELS,
    }


def hyperparameter_names(kind: str) -> list[str]:
    """The hyper-parameters a network of ``kind`` takes (its constructor's keywords)."""
    return sorted(hyperparameter_defaults(kind))


def hyperparameter_defaults(kind: str) -> dict[str, object]:
    """The hyper-parameters of ``kind`` and their defaults (``inspect.Parameter.empty``
    where there is none): what kind of value each takes."""
    if kind not in _models():
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(model_kinds())}")
    build = _models()[kind]
    cls = getattr(build, "network_class", ResidualLSTM)
    skip = {"self", "n_atoms", "stride", "context"} | getattr(build, "fixed_arguments", set())
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in skip}


def model_kinds() -> list[str]:
    """Names accepted by ``build_net``."""
    return sorted(_models())


def build_net(kind: str, n_atoms: int, stride: int, context: int, **hyper) -> InterpolatorNet:
    """A fresh network of ``kind`` for a molecule of ``n_atoms`` at coarse stride ``stride``."""
    models = _models()
    if kind not in models:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(sorted(models))}")
    return models[kind](n_atoms, stride, context, **hyper)
