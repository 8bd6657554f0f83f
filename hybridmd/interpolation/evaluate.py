"""`hybridmd evaluate`: trained models and the classical baselines scored on the same windows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.metrics import reconstruction_errors
from hybridmd.interpolation.neural import NeuralInterpolator
from hybridmd.interpolation.temperature import context_temperatures
from hybridmd.interpolation.windows import concat_windows, make_windows
from hybridmd.interpolator_file import check_compatible
from hybridmd.trajectory import Trajectory, require_one_system

BASELINES = ("linear", "cubic", "quintic")


@dataclass
class TemperatureBin:
    """The position error of one interpolator on the windows of one temperature bin."""

    t_low_K: float
    t_high_K: float
    windows: int
    position_mae: float
    in_range: bool | None  #: the bin lies within the model's training range (None: unknown)


@dataclass
class Score:
    """Errors of one interpolator at one coarse spacing, over interior fine frames."""

    model: str
    dt_fs: float
    windows: int
    position_mae: float
    velocity_mae: float
    distance_mae: float
    by_temperature: list[TemperatureBin] = field(default_factory=list)


def _bins(per_window: np.ndarray, temps: np.ndarray, bin_k: float,
          model_range: list[float] | None) -> list[TemperatureBin]:
    """Per-window position MAEs grouped by window temperature into bins ``bin_k`` wide."""
    index = np.floor(temps / bin_k).astype(int)
    out = []
    for b in np.unique(index):
        lo, hi = b * bin_k, (b + 1) * bin_k
        inside = (None if model_range is None else
                  bool(lo >= model_range[0] and hi <= model_range[1]))
        sel = index == b
        out.append(TemperatureBin(float(lo), float(hi), int(sel.sum()),
                                  float(per_window[sel].mean()), inside))
    return out


def evaluate(models: list[NeuralInterpolator], reference: Trajectory | list[Trajectory],
             baselines: tuple[str, ...] = BASELINES, strides: tuple[int, ...] = (),
             bin_k: float | None = None) -> list[Score]:
    """Scores at each stride of the models (plus ``strides``), baselines first at each.

    The reference (or each of several, e.g. independent NVE segments: no window spans two)
    is subsampled at each stride into non-overlapping windows; every interpolator at that
    stride sees the same windows (those with context for the model that needs most).
    ``bin_k``: also the position error by window temperature (context frames' kinetic
    temperature) in bins this many K wide, each marked inside or outside the model's range.
    """
    references = reference if isinstance(reference, list) else [reference]
    require_one_system(references, "reference")
    for model in models:
        for ref in references:
            check_compatible(model, ref)
    dt_fs = references[0].dt_fs
    scores = []
    for stride in sorted({m.stride for m in models} | set(strides)):
        group = [m for m in models if m.stride == stride]
        context = max([m.context for m in group], default=1)
        windows = concat_windows([make_windows(ref, stride, context) for ref in references])
        temps = context_temperatures(windows.v, windows.masses) if bin_k else None
        interpolators = [ClassicalInterpolator(kind) for kind in baselines] + group
        for interp in interpolators:
            r, v = interp.interpolate(windows)
            errors = reconstruction_errors(r, v, windows.target_r, windows.target_v)
            score = Score(interp.name, stride * dt_fs, len(windows), **errors)
            if bin_k:
                per_window = np.abs(r[:, 1:-1] - windows.target_r[:, 1:-1]).mean(axis=(1, 2, 3))
                meta = getattr(interp, "metadata", {})
                score.by_temperature = _bins(per_window, temps, bin_k,
                                             meta.get("temperature_range_K"))
            scores.append(score)
    return scores


def format_table(scores: list[Score]) -> str:
    """A Markdown table of scores."""
    lines = ["| model | Δt (fs) | windows | position MAE (Å) | velocity MAE (Å/fs) | "
             "distance MAE (Å) |", "|---|---|---|---|---|---|"]
    lines += [f"| {s.model} | {s.dt_fs:g} | {s.windows} | {s.position_mae:.2e} | "
              f"{s.velocity_mae:.2e} | {s.distance_mae:.2e} |" for s in scores]
    return "\n".join(lines)


def format_temperature_table(scores: list[Score]) -> str:
    """A Markdown table of the position errors by window temperature bin."""
    lines = ["| model | Δt (fs) | window temperature (K) | windows | position MAE (Å) | "
             "in the model's training range |", "|---|---|---|---|---|---|"]
    marks = {True: "yes", False: "no", None: ""}
    lines += [f"| {s.model} | {s.dt_fs:g} | {b.t_low_K:g}-{b.t_high_K:g} | {b.windows} | "
              f"{b.position_mae:.2e} | {marks[b.in_range]} |"
              for s in scores for b in s.by_temperature]
    return "\n".join(lines)


def scores_as_dicts(scores: list[Score]) -> list[dict]:
    return [asdict(s) for s in scores]


def plot_formats() -> tuple[str, ...]:
    """File extensions ``plot_error_vs_dt`` can write (matplotlib's, e.g. .png, .pdf, .svg)."""
    from matplotlib.figure import Figure

    return tuple(f".{ext}" for ext in Figure().canvas.get_supported_filetypes())


def plot_error_vs_dt(scores: list[Score], path: str | Path) -> None:
    """Position MAE (log scale) against Δt for every model and baseline, as a PNG at ``path``.

    One line with markers per interpolator name (the paper's figure 3); baselines dashed.
    """
    from matplotlib.figure import Figure

    if not scores:
        raise ValueError("no scores to plot")
    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.subplots()
    markers = "osD^vP*Xh<>"
    for k, name in enumerate(dict.fromkeys(s.model for s in scores)):
        points = sorted((s.dt_fs, s.position_mae) for s in scores if s.model == name)
        dt, mae = zip(*points, strict=True)
        baseline = any(name == ClassicalInterpolator(kind).name for kind in BASELINES)
        ax.plot(dt, mae, marker=markers[k % len(markers)], ls="--" if baseline else "-",
                label=name)
    ax.set_yscale("log")
    ax.set_xlabel("Δt between coarse frames (fs)")
    ax.set_ylabel("position MAE, interior frames (Å)")
    ax.set_xticks(sorted({s.dt_fs for s in scores}))
    ax.grid(alpha=0.3, which="both", lw=0.5)
    ax.legend(fontsize=9)
    ax.set_title("Reconstruction error against coarse time step", fontsize=11)
    fig.savefig(path, dpi=100)
