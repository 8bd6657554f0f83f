"""The periodic part of `hybridmd analyze`: the partial g(r) of every element pair of the
reference and the prediction, their scores and densities, as one figure and one report
section. Drawn only when both trajectories are periodic in all three directions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from hybridmd.analysis.rdf import Density, RadialDistribution, common_rdfs, density, rdf_scores
from hybridmd.trajectory import Trajectory

#: the figure's file name
RDF_FIGURE = "rdf.png"
#: said in the notes of a periodic comparison
COORDINATES_NOTE = ("The cell is periodic: h(r), the free-energy surface and the internal "
                    "coordinates use the coordinates as stored (no minimum image), so they "
                    "are meaningful for unwrapped molecules only; g(r) uses minimum-image "
                    "distances.")


@dataclass
class PeriodicComparison:
    """Partial g(r) of two periodic trajectories on common bins, scored, and both densities."""

    rdfs: dict[str, tuple[RadialDistribution, RadialDistribution]]  #: label -> (ref, pred)
    densities: tuple[Density, Density]  #: (reference, prediction)

    @property
    def r_max(self) -> float:
        return float(next(iter(self.rdfs.values()))[0].edges[-1])

    def scores(self) -> dict[str, Any]:
        """``rdf`` and ``density`` of ``scores.json``: per pair the :func:`rdf_scores` and
        where each g(r) peaks (Å), per role the density."""
        pairs = {label: {**rdf_scores(ref, pred), "peak_reference_A": ref.peak,
                         "peak_prediction_A": pred.peak}
                 for label, (ref, pred) in self.rdfs.items()}
        return {"rdf": {"r_max_A": self.r_max, "bin_width_A": self._bin_width(),
                        "pairs": pairs},
                "density": {role: d._asdict()
                            for role, d in zip(("reference", "prediction"), self.densities,
                                               strict=True)}}

    def _bin_width(self) -> float:
        edges = next(iter(self.rdfs.values()))[0].edges
        return float(edges[1] - edges[0])


def compare_periodic(reference: Trajectory, prediction: Trajectory) -> PeriodicComparison | None:
    """The comparison of two periodic trajectories; None unless both are periodic."""
    if not (reference.periodic and prediction.periodic):
        return None
    rdfs = common_rdfs(reference, prediction)
    if not rdfs:
        return None
    return PeriodicComparison(rdfs, (density(reference), density(prediction)))


def periodic_notes(reference: Trajectory, prediction: Trajectory) -> list[str]:
    """What the report says about the cell: how the other observables treat it, or why there
    is no g(r) when only one side is periodic."""
    if reference.periodic and prediction.periodic:
        return [COORDINATES_NOTE]
    if reference.periodic or prediction.periodic:
        which = "reference" if reference.periodic else "prediction"
        return [f"Only the {which} has a periodic cell: no g(r) or density comparison (the "
                "other file has no cell, or one not periodic in all three directions)."]
    return []


def plot_rdfs(path: Path, comparison: PeriodicComparison) -> None:
    """One column per element pair: both g(r) above, prediction − reference below."""
    labels = list(comparison.rdfs)
    fig = Figure(figsize=(3.6 * len(labels) + 0.6, 4.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, len(labels), sharex=True, squeeze=False,
                                      height_ratios=(3, 1.2)))
    for col, label in enumerate(labels):
        ref, pred = comparison.rdfs[label]
        scores = rdf_scores(ref, pred)
        top, bottom = axes[0, col], axes[1, col]
        top.stairs(ref.g, ref.edges, color="C0", lw=1.4, label="reference")
        top.stairs(pred.g, pred.edges, color="C3", lw=1.2, ls="--", label="prediction")
        top.axhline(1.0, color="0.5", lw=0.5)
        top.set_title(f"g(r) {label}\nJS {scores['js_bits']:.2e} bit, RMS {scores['rms']:.3f}",
                      fontsize=10)
        y_top, clipped = _y_range(ref, pred)
        top.set_ylim(0, y_top)
        if clipped:
            top.text(0.97, 0.95, clipped, transform=top.transAxes, ha="right", va="top",
                     fontsize=8)
        bottom.stairs(pred.g - ref.g, ref.edges, color="k", lw=0.9)
        bottom.axhline(0, color="0.5", lw=0.5)
        bottom.set_xlabel("r (Å)")
        bottom.set_xlim(0, ref.edges[-1])
        for ax in (top, bottom):
            ax.grid(alpha=0.3, lw=0.5)
    axes[0, 0].set_ylabel("g(r)")
    axes[1, 0].set_ylabel("pred − ref")
    axes[0, 0].legend(fontsize=9)
    fig.savefig(path, dpi=100)


def _y_range(ref: RadialDistribution, pred: RadialDistribution) -> tuple[float, str | None]:
    """The top of a g(r) axis, and what it leaves off: a bond's narrow spike (g of tens)
    would flatten the structure between molecules, so it goes off scale, its height said."""
    g = np.maximum(ref.g, pred.g)
    k = int(np.argmax(g))
    rest = g[ref.centres > ref.centres[k] + 0.3]
    if g[k] > 5 and rest.size and g[k] > 2.5 * rest.max():
        return 1.3 * max(rest.max(), 1.0), f"peak g = {g[k]:.3g} at {ref.centres[k]:.2f} Å"
    return 1.05 * g[k], None


def _number(x: float | None, spec: str) -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def report_lines(scores: dict[str, Any], figure: str | None) -> list[str]:
    """The report's section on the periodic cell (the ``rdf`` and ``density`` scores)."""
    if figure is None:
        return []
    rdf, dens = scores["rdf"], scores["density"]
    lines = ["## Radial distribution functions (periodic cell)", "",
             f"Partial g(r) of every element pair, minimum-image distances up to "
             f"{rdf['r_max_A']:.3f} Å (half the cell's smallest width) in bins of "
             f"{rdf['bin_width_A']:.3f} Å, normalised by the pair's ideal-gas density in the "
             "cell; JS: Jensen–Shannon divergence of the pair-distance histograms (bit, 0 is "
             "perfect), RMS: root-mean-square difference of g(r).", "",
             "| pair | JS (bit) | RMS Δg | highest peak, reference (Å) | highest peak, "
             "prediction (Å) |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {_number(s['js_bits'], '.3e')} | {_number(s['rms'], '.4f')} | "
              f"{s['peak_reference_A']:.3f} | {s['peak_prediction_A']:.3f} |"
              for label, s in rdf["pairs"].items()]
    lines += ["", "| density | g/cm³ | atoms/Å³ | cell volume (Å³) |", "|---|---|---|---|"]
    lines += [f"| {role} | {d['g_cm3']:.4f} | {d['atoms_per_A3']:.5f} | {d['volume_A3']:.2f} |"
              for role, d in dens.items()]
    return lines + ["", f"![partial g(r)]({figure})", ""]
