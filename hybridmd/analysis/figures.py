"""The figures of `hybridmd analyze` (:mod:`~hybridmd.analysis.report`): errors over time, the
VDOS, the distributions, the free-energy surface and internal coordinates over time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hybridmd.analysis import observables as ob
from hybridmd.trajectory import Trajectory

REF_STYLE = {"color": "C0", "lw": 1.4, "label": "reference"}
PRED_STYLE = {"color": "C3", "lw": 1.2, "ls": "--", "label": "prediction"}
WINDOW_COLOUR = "tab:green"
DPI = 100

Coordinate = tuple[int, ...]


def coordinate_values(traj: Trajectory, coord: Coordinate) -> np.ndarray:
    funcs = {2: ob.bond, 3: ob.angle, 4: ob.dihedral}
    if len(coord) not in funcs:
        raise ValueError(f"an internal coordinate has 2 (bond), 3 (angle) or 4 (dihedral) "
                         f"atoms, got {coord}")
    return funcs[len(coord)](traj, *coord)


def coordinate_label(traj: Trajectory, coord: Coordinate) -> str:
    from ase.data import chemical_symbols

    atoms = "–".join(f"{chemical_symbols[traj.numbers[i]]}{i}" for i in coord)
    kind, unit = {2: ("d", "Å"), 3: ("∠", "deg"), 4: ("φ", "deg")}[len(coord)]
    return f"{kind}({atoms}) ({unit})"


# ------------------------------------------------------------------------------ figures


@dataclass
class Windows:
    """What the prediction's windows of ``stride`` frames are, so that the figures say it.

    ``reconstruction``: the prediction is the reference's own coarse frames with the frames
    between them interpolated (they agree exactly at the coarse frames); else it is another
    run, whose segments only share the grid. ``ml``: for a hybrid run, whether the ML made
    each segment, counted from ``origin`` (None: not known).
    """

    stride: int
    width_fs: float
    origin: float
    reconstruction: bool
    ml: Sequence[bool] | None = None

    def shaded(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """The spans to shade between t0 and t1: the ML segments of a hybrid run, else every
        other window."""
        k = max(math.floor((t0 - self.origin) / self.width_fs), 0)
        spans = []
        while self.origin + k * self.width_fs < t1:
            shade = (k < len(self.ml) and self.ml[k]) if self.ml is not None else k % 2 == 0
            if shade:
                spans.append((self.origin + k * self.width_fs,
                              self.origin + (k + 1) * self.width_fs))
            k += 1
        return spans

    @property
    def label(self) -> str:
        """What a shaded span is."""
        width = f"{self.width_fs:g} fs"
        if self.ml is not None:
            return f"ML segment ({width}; unshaded: simulated)"
        if self.reconstruction:
            return f"interpolated window ({width}), every other one"
        return f"segment ({width}), every other one"


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI)


def plot_mae(path: Path, times: np.ndarray, pos: np.ndarray, vel: np.ndarray,
             windows: Windows | None) -> None:
    fig = Figure(figsize=(7, 4.6), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    for ax, y, label in ((axes[0], pos, "position MAE (Å)"),
                         (axes[1], vel, "velocity MAE (Å/fs)")):
        positive = y > 1e-9 * y.max()  # round-off at the given coarse frames counts as zero
        ax.plot(times, np.where(positive, y, np.nan), color="C3", lw=1.0)
        if positive.any():
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both", lw=0.5)
    axes[1].set_xlabel("time (fs)")
    title = "Error of the prediction per frame (mean over atoms and axes)"
    if windows is not None and windows.reconstruction:
        title += (f"\nthe coarse frames, every {windows.stride} frames, are exact: gaps on the "
                  "log axis")
    elif windows is not None:
        title += ("\nanother run, not a reconstruction of the reference: how far apart the two "
                  "are (independent runs separate within a picosecond)")
    axes[0].set_title(title, fontsize=10)
    save(fig, path)


def plot_vdos(path: Path, ref: tuple[np.ndarray, np.ndarray],
              pred: tuple[np.ndarray, np.ndarray], overlap: float,
              coarse_nyquist: float | None) -> None:
    freq, s_ref = ref
    s_pred = np.interp(freq, *pred)
    cumulative = np.cumsum(s_ref)  # the axis ends where the reference has 99.9 % of its area
    upper = freq[min(np.searchsorted(cumulative, 0.999 * cumulative[-1]), len(freq) - 1)]
    xmax = min(freq[-1], 500.0 * math.ceil(1.1 * upper / 500.0))
    beyond = s_pred[freq > xmax].sum() / s_pred.sum()
    fig = Figure(figsize=(7, 5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    if coarse_nyquist is not None and coarse_nyquist < xmax:
        for ax in (top, bottom):
            ax.axvspan(0, coarse_nyquist, color="tab:red", alpha=0.08, lw=0,
                       label="below the Nyquist wavenumber of the coarse frames"
                       if ax is top else None)
    top.plot(freq, s_ref, **REF_STYLE)
    top.plot(freq, s_pred, **PRED_STYLE)
    top.set_ylabel("VDOS (unit area, cm)")
    top.set_ylim(bottom=0)
    top.legend(fontsize=9)
    title = f"Vibrational density of states: overlap {overlap:.4f}"
    if beyond > 1e-3:
        title += f"\n(prediction: {100 * beyond:.1f} % of its area above {xmax:g} cm⁻¹, not shown)"
    top.set_title(title, fontsize=10)
    bottom.plot(freq, s_pred - s_ref, color="k", lw=0.9)
    bottom.axhline(0, color="0.5", lw=0.5)
    bottom.set_ylabel("pred − ref (cm)")
    bottom.set_xlabel("wavenumber (cm⁻¹)")
    bottom.set_xlim(0, xmax)
    for ax in (top, bottom):
        ax.grid(alpha=0.3, lw=0.5)
    save(fig, path)


def plot_distributions(path: Path, h_ref: ob.Histogram, h_pred: ob.Histogram,
                       s_ref: ob.Histogram, s_pred: ob.Histogram, js_h: float,
                       js_s: float) -> None:
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = ((axes[0], h_ref, h_pred, "r (Å)", "h(r) (1/Å)",
               f"Pair-distance distribution h(r)\nJensen–Shannon {js_h:.2e} bit"),
              (axes[1], s_ref, s_pred, "atomic speed |v| (Å/fs)", "probability density (fs/Å)",
               f"Speed distribution\nJensen–Shannon {js_s:.2e} bit"))
    for ax, ref, pred, xlabel, ylabel, title in panels:
        ax.stairs(ref.density, ref.edges, color=REF_STYLE["color"], lw=1.4, label="reference")
        ax.stairs(pred.density, pred.edges, color=PRED_STYLE["color"], lw=1.2, ls="--",
                  label="prediction")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=9)
        ax.grid(alpha=0.3, lw=0.5)
    save(fig, path)


def plot_fes(path: Path, ref: ob.FreeEnergySurface, pred: ob.FreeEnergySurface,
             diff: np.ndarray, labels: tuple[str, str], rmsd: float,
             temperature_basis: str) -> None:
    """``temperature_basis``: what the temperature is (said in the title)."""
    import matplotlib as mpl

    finite = np.concatenate([ref.free_energy[np.isfinite(ref.free_energy)],
                             pred.free_energy[np.isfinite(pred.free_energy)]])
    vmax = float(finite.max()) if finite.size else 1.0
    dmax = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    cmap = mpl.colormaps["viridis"].with_extremes(bad="0.8")
    dcmap = mpl.colormaps["RdBu_r"].with_extremes(bad="0.8")
    panels = ((ref.free_energy, cmap, 0.0, vmax, "reference", f"F ({ref.unit})"),
              (pred.free_energy, cmap, 0.0, vmax, "prediction", f"F ({pred.unit})"),
              (diff, dcmap, -dmax, dmax,
               f"prediction − reference (offset removed)\nweighted RMS {rmsd:.2f} {ref.unit}",
               f"ΔF ({ref.unit})"))
    for ax, (data, cm, lo, hi, title, clabel) in zip(axes, panels, strict=True):
        mesh = ax.pcolormesh(ref.phi_edges, ref.psi_edges, data.T, cmap=cm, vmin=lo, vmax=hi)
        fig.colorbar(mesh, ax=ax, label=clabel)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.set_xticks(np.arange(-180, 181, 90))
        ax.set_yticks(np.arange(-180, 181, 90))
        ax.set_aspect("equal")
    fig.suptitle(f"Free-energy surface −kT ln P at {ref.temperature_K:.0f} K "
                 f"(grey: not visited)\nT: {temperature_basis}", fontsize=11)
    save(fig, path)


def plot_coordinates(path: Path, ref: Trajectory, pred: Trajectory,
                     coords: Sequence[Coordinate], frames: int,
                     windows: Windows | None) -> None:
    times = ref.times_fs[:frames]
    fig = Figure(figsize=(8, 1.0 + 1.7 * len(coords)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(coords), 1, sharex=True, squeeze=False)[:, 0])
    for ax, coord in zip(axes, coords, strict=True):
        y_ref = coordinate_values(ref, coord)[:frames]
        y_pred = coordinate_values(pred, coord)[:frames]
        if len(coord) == 4:  # continuous curves: unwrap, and keep the prediction beside it
            y_ref = np.degrees(np.unwrap(np.radians(y_ref)))
            y_pred = y_ref + ob.wrap_degrees(y_pred - y_ref)
        for a, b in ([] if windows is None else windows.shaded(times[0], times[-1])):
            ax.axvspan(a, b, color=WINDOW_COLOUR, alpha=0.12, lw=0)
        ax.plot(times, y_ref, **REF_STYLE)
        ax.plot(times, y_pred, **PRED_STYLE)
        ax.set_ylabel(coordinate_label(ref, coord), fontsize=9)
        ax.grid(alpha=0.3, lw=0.5)
        ax.set_xlim(times[0], times[-1])
    handles, labels = axes[0].get_legend_handles_labels()
    if windows is not None:
        from matplotlib.patches import Patch

        handles.append(Patch(color=WINDOW_COLOUR, alpha=0.25, lw=0))
        labels.append(windows.label)
    fig.legend(handles, labels, loc="outside upper center", ncols=3, fontsize=9, frameon=False)
    axes[-1].set_xlabel("time (fs)")
    save(fig, path)
