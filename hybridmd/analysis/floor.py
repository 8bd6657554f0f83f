"""The floor beside `hybridmd analyze`'s scores: what two full simulations score against each
other.

Two independent runs of one molecule separate within a picosecond, and their spectra and
distributions differ by an amount that shrinks with their length; a score of a hybrid run
against a full simulation means something only beside that amount. With a second reference
(``--floor``: a second full simulation, another seed) :func:`floor_scores` scores the
reference against it on the same bins, and the report puts each beside the prediction's;
:func:`expectation` says what such a floor has measured for a small molecule, by length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hybridmd.analysis import observables as ob
from hybridmd.trajectory import Trajectory

#: the scores that have a floor (the distributions, and the frame-wise MAE over all frames)
FLOOR_KEYS = ("position_mae", "velocity_mae", "vdos_overlap", "pair_distance_js", "speed_js",
              "fes_rmsd")

#: two full simulations of ethanol (9 atoms, sGDML, 300 K, Bussi), measured against each
#: other: (length in ps, VDOS overlap, h(r) Jensen-Shannon in bits)
#: (docs/guide/analysis.md and docs/benchmarks/hybrid-vs-simulation.md)
MEASURED_FLOORS = ((2.0, "0.76", "7.8e-3"), (20.0, "0.81-0.84", "2.4e-3"),
                   (50.0, "0.80-0.94", None))


def floor_scores(reference: Trajectory, floor: Trajectory, r_edges: np.ndarray,
                 s_edges: np.ndarray, dihedrals: Sequence[tuple[int, ...]],
                 temperature_K: float, fes_bins: int) -> dict[str, Any]:
    """The reference against the floor (both cut to the same frames), on the report's bins:
    the keys :data:`FLOOR_KEYS`, and what was compared (``source``, ``frames``)."""
    pos, vel = ob.mae_over_time(floor, reference)
    h_ref, h_floor = (ob.pair_distance_distribution(t, r_edges) for t in (reference, floor))
    s_ref, s_floor = (ob.speed_distribution(t, s_edges) for t in (reference, floor))
    fes_rmsd = None
    if len(dihedrals) >= 2:
        surfaces = [ob.free_energy_surface(ob.dihedral(t, *dihedrals[0]),
                                           ob.dihedral(t, *dihedrals[1]), temperature_K,
                                           bins=fes_bins) for t in (reference, floor)]
        fes_rmsd = ob.fes_rmsd(*surfaces)
    return {
        "source": str(floor.metadata.get("source", "in memory")),
        "frames": len(floor),
        "position_mae": float(pos.mean()),
        "velocity_mae": float(vel.mean()),
        "vdos_overlap": ob.vdos_overlap(ob.vdos(reference), ob.vdos(floor)),
        "pair_distance_js": ob.jensen_shannon(h_ref, h_floor),
        "speed_js": ob.jensen_shannon(s_ref, s_floor),
        "fes_rmsd": fes_rmsd,
    }


def expectation(duration_fs: float, floor: dict[str, Any] | None) -> list[str]:
    """What overlap to expect of two independent runs this long (report lines)."""
    measured = "; ".join(
        f"{ps:g} ps: VDOS overlap {overlap}" + (f", h(r) {js} bit" if js else "")
        for ps, overlap, js in MEASURED_FLOORS)
    lines = [f"What to expect over {duration_fs / 1000:.3g} ps: two independent full "
             "simulations of a small molecule differ by an amount that shrinks with their "
             "length (a 9-atom molecule's spectrum is a few sharp lines whose heights wander "
             f"over tens of ps). Two full simulations of ethanol at 300 K against each other: "
             f"{measured}. A hybrid run is as good as a full simulation when its scores are "
             "those of a second full simulation of the same length."]
    if floor is None:
        lines.append("No floor was given: run the full simulation again with another seed "
                     "and pass it as `--floor`, and each score gets its floor beside it.")
    else:
        lines.append(f"Floor: the reference against `{floor['source']}` (a second "
                     f"reference), over {floor['frames']} frames; a score as good as its floor "
                     "(an overlap as high, a divergence or error as low) is as close to the "
                     "reference as a second full simulation is.")
    return lines
