"""`hybridmd analyze`: figures, scores and a one-page report of a reconstruction.

:func:`analyze` compares a predicted (reconstructed) trajectory with the reference fine
trajectory on their common frames, with the observables of Winkler et al. (2022): errors over
time, the vibrational density of states (their figure 9), the pair-distance and speed
distributions (figure 5), the free-energy surface over two dihedrals (figure 8) and time
series of internal coordinates with the interpolated windows shaded (figure 4); for periodic
trajectories also the partial g(r) and the density (:mod:`~hybridmd.analysis.rdf_report`). It
writes PNG figures, ``scores.json`` and ``report.md`` into one folder.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridmd.analysis import figures as plots
from hybridmd.analysis import observables as ob
from hybridmd.analysis import rdf_report
from hybridmd.analysis.floor import FLOOR_KEYS, expectation, floor_scores
from hybridmd.errors import InputError
from hybridmd.hybrid.timeline_plot import plot_timeline
from hybridmd.interpolation.metrics import pair_distances
from hybridmd.trajectory import SPACING_RTOL, Trajectory, degrees_of_freedom_label

log = logging.getLogger(__name__)

#: figure name -> file name
FIGURES = {
    "mae": "mae_over_time.png",
    "vdos": "vdos.png",
    "distributions": "distributions.png",
    "fes": "fes.png",
    "coordinates": "coordinates.png",
}
#: keys of ``scores.json`` (and of the dict :func:`analyze` returns). Units: MAEs in Å and
#: Å/fs ("interior": frames between the coarse frames, None without a stride), Jensen–Shannon
#: divergences in bits, ``fes_rmsd`` in kJ/mol (None without two dihedrals), times in fs;
#: ``rdf`` and ``density``: None unless both trajectories are periodic (``rdf_report``);
#: ``floor``: the reference against a second reference (:mod:`~hybridmd.analysis.floor`), or
#: None; ``windows``: what the stride's windows are: "interpolated" (a reconstruction of the
#: reference from its own coarse frames), "segments" (another run's), None without a stride.
SCORE_KEYS = (
    "frames", "dt_fs", "t_start_fs", "t_end_fs", "trimmed", "interpolated_stride",
    "position_mae", "velocity_mae", "position_mae_interior", "velocity_mae_interior",
    "vdos_overlap", "pair_distance_js", "speed_js", "fes_rmsd", "dihedrals", "temperature_K",
    "temperature_dof", "floor", "windows", "rdf", "density", "coordinates", "figures", "notes",
)
Coordinate = plots.Coordinate


# ------------------------------------------------------------------------------ alignment


def _source(traj: Trajectory) -> str:
    return str(traj.metadata.get("source", "?"))


def common_frames(reference: Trajectory,
                  prediction: Trajectory) -> tuple[Trajectory, Trajectory, list[str]]:
    """The two trajectories cut to their common time range, and notes on what was cut.

    Raises InputError (a ValueError) where they differ in atoms or frame spacing, their frames
    do not lie on one time grid, or they share fewer than 4 frames.
    """
    if (reference.numbers.shape != prediction.numbers.shape
            or np.any(reference.numbers != prediction.numbers)):
        raise InputError(
            f"reference and prediction are different molecules: {reference.n_atoms} atoms "
            f"{_formula(reference)} in {_source(reference)} against {prediction.n_atoms} atoms "
            f"{_formula(prediction)} in {_source(prediction)} (same atoms in the same order "
            "needed)")
    if not math.isclose(reference.dt_fs, prediction.dt_fs, rel_tol=SPACING_RTOL):
        raise InputError(
            f"reference frames are {reference.dt_fs:g} fs apart, prediction frames "
            f"{prediction.dt_fs:g} fs: compare trajectories with the same spacing (subsample "
            "the finer one, or pass the right --dt-fs)")
    dt = reference.dt_fs
    shift = (prediction.t0_fs - reference.t0_fs) / dt
    if abs(shift - round(shift)) > 1e-3:
        raise InputError(
            f"the prediction starts at {prediction.t0_fs:g} fs, the reference at "
            f"{reference.t0_fs:g} fs: not on one time grid of {dt:g} fs")
    shift = int(round(shift))
    ref_start = max(0, shift)
    pred_start = max(0, -shift)
    n = min(len(reference) - ref_start, len(prediction) - pred_start)
    if n < 4:
        raise InputError(
            f"reference ({len(reference)} frames from {reference.t0_fs:g} fs) and prediction "
            f"({len(prediction)} frames from {prediction.t0_fs:g} fs) share {max(n, 0)} "
            "frames: at least 4 needed")
    notes = []
    if n != len(reference) or n != len(prediction):
        ref_cut = reference.slice(ref_start, ref_start + n)
        notes.append(
            f"The trajectories cover different times (reference: {len(reference)} frames from "
            f"{reference.t0_fs:g} fs, prediction: {len(prediction)} frames from "
            f"{prediction.t0_fs:g} fs); only their common range, {n} frames from "
            f"{ref_cut.t0_fs:g} to {ref_cut.times_fs[-1]:g} fs, is compared.")
    return (reference.slice(ref_start, ref_start + n),
            prediction.slice(pred_start, pred_start + n), notes)


# ------------------------------------------------------------------------------ coordinates


def default_coordinates(traj: Trajectory,
                        dihedrals: Sequence[Coordinate] = ()) -> list[Coordinate]:
    """At most 4 internal coordinates to plot over time, as in the paper's figure 4.

    The first X–H bond (fast), the first bond between heavy atoms or, without one, the first
    bond angle, and up to two of ``dihedrals``.
    """
    numbers = traj.numbers
    bonds = ob.covalent_bonds(traj)
    coords: list[Coordinate] = []
    xh = [(i, j) if numbers[j] == 1 else (j, i) for i, j in bonds
          if (numbers[i] == 1) != (numbers[j] == 1)]
    heavy = [b for b in bonds if numbers[b[0]] > 1 and numbers[b[1]] > 1]
    if xh:
        coords.append(xh[0])
    if heavy:
        coords.append(heavy[0])
    else:
        neighbours: dict[int, list[int]] = {}
        for i, j in bonds:
            neighbours.setdefault(i, []).append(j)
            neighbours.setdefault(j, []).append(i)
        for j in sorted(neighbours):
            if len(neighbours[j]) >= 2:
                coords.append((neighbours[j][0], j, neighbours[j][1]))
                break
    coords += [tuple(d) for d in dihedrals[:2]]
    return coords[:4]


def _check_indices(coords: Sequence[Coordinate], n_atoms: int, what: str) -> None:
    for c in coords:
        if any(not 0 <= i < n_atoms for i in c) or len(set(c)) != len(c):
            raise ValueError(f"{what} {tuple(c)}: atom indices must be distinct and in "
                             f"0..{n_atoms - 1}")


# ------------------------------------------------------------------------------ report


def _json_ready(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_ready(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(x) else float(x)
    return x


def _fmt(x: float | None, spec: str = ".3e") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def _formula(traj: Trajectory) -> str:
    from ase import Atoms

    return Atoms(numbers=traj.numbers).get_chemical_formula(mode="hill")


def temperature_basis(ndof: int | None, n_atoms: int) -> str:
    """What the free-energy surface's temperature is: given (``ndof`` None), or the reference's
    mean kinetic temperature over its internal degrees of freedom, as a run's summary counts
    them."""
    if ndof is None:
        return "given"
    return ("the reference's mean kinetic temperature over "
            f"{degrees_of_freedom_label(ndof, n_atoms)}, as a run's summary counts them")


def _write_report(path: Path, scores: dict[str, Any], ref: Trajectory, pred: Trajectory,
                  coord_labels: list[str], dihedral_labels: list[str],
                  timeseries_frames: int) -> None:
    fig = scores["figures"]
    temperature_note = f" ({temperature_basis(scores['temperature_dof'], ref.n_atoms)})"
    stride = scores["interpolated_stride"]
    lines = [
        "# Reconstruction analysis",
        "",
        f"- reference: `{ref.metadata.get('source', 'in memory')}`",
        f"- prediction: `{pred.metadata.get('source', 'in memory')}`",
        f"- compared: {scores['frames']} frames of {_formula(ref)} ({ref.n_atoms} atoms), "
        f"{scores['dt_fs']:g} fs apart, {scores['t_start_fs']:g} to {scores['t_end_fs']:g} fs",
        {"interpolated": "- interpolated windows: ", "segments": "- the prediction's segments "
         "(another run, not a reconstruction of the reference): ", None: "- windows: "}[
            scores["windows"]] + (f"{stride} frames ({stride * scores['dt_fs']:g} fs)"
                                  if stride else "unknown (no stride given)"),
        "",
    ]
    lines += [f"> {note}" for note in scores["notes"]] + ([""] if scores["notes"] else [])
    interior = "frames between the coarse frames" if stride else "(needs the stride)"
    rows = [  # (label, key, format, unit, meaning)
        ("position MAE, all frames", "position_mae", ".3e", "Å", "0 is perfect"),
        ("velocity MAE, all frames", "velocity_mae", ".3e", "Å/fs", "0 is perfect"),
        ("position MAE, interior", "position_mae_interior", ".3e", "Å", interior),
        ("velocity MAE, interior", "velocity_mae_interior", ".3e", "Å/fs", interior),
        ("VDOS overlap", "vdos_overlap", ".4f", "–",
         "Σ min(p, q) of unit-sum spectra; 1 is perfect"),
        ("h(r) Jensen–Shannon", "pair_distance_js", ".3e", "bit",
         "JS divergence, base 2; 0 is perfect, 1 disjoint"),
        ("speed Jensen–Shannon", "speed_js", ".3e", "bit",
         "JS divergence, base 2; 0 is perfect, 1 disjoint"),
        ("FES RMS difference", "fes_rmsd", ".3f", "kJ/mol",
         "offset removed, weighted by reference population; 0 is perfect"),
    ]
    floor = scores["floor"]
    lines += ["## Scores", "", *expectation(scores["t_end_fs"] - scores["t_start_fs"], floor),
              ""]
    if floor is None:
        lines += ["| score | value | unit | meaning |", "|---|---|---|---|"]
        lines += [f"| {a} | {_fmt(scores[k], f)} | {u} | {m} |" for a, k, f, u, m in rows]
    else:
        lines += ["| score | value | floor | unit | meaning |", "|---|---|---|---|---|"]
        lines += [f"| {a} | {_fmt(scores[k], f)} | "
                  f"{_fmt(floor[k], f) if k in FLOOR_KEYS else '–'} | {u} | {m} |"
                  for a, k, f, u, m in rows]
    lines += ["", "Scores are also in `scores.json`.", ""]
    for role in ("prediction", "reference"):
        name = fig.get(f"timeline_{role}")
        if name:
            lines += [f"## The hybrid run ({role})", "",
                      "What made each segment (simulation or ML), the shadow and monitored "
                      "errors against the tolerance, the temperature and potential energy at "
                      "the segment ends, and the expensive calls spent beside "
                      "those of the full simulation (the run's own `timeline.png`).", "",
                      f"![timeline of the {role}]({name})", ""]
    lines += ["## Errors over time", "", f"![position and velocity MAE per frame]({fig['mae']})",
              ""]
    lines += ["## Vibrational density of states", "",
              "Fourier transform of the mass-weighted velocity autocorrelation (Hann window); "
              "bottom: prediction − reference."
              + (" Shaded: wavenumbers below the Nyquist wavenumber of the coarse frames."
                 if stride else ""), "", f"![VDOS]({fig['vdos']})", ""]
    lines += ["## Distributions", "", "Pair-distance distribution h(r) over all atom pairs and "
              "speed distribution over all atoms, both over all compared frames.", "",
              f"![h(r) and speed distributions]({fig['distributions']})", ""]
    lines += rdf_report.report_lines(scores, fig.get("rdf"))
    lines += ["## Free-energy surface", ""]
    if "fes" in fig:
        lines += [f"F = −kT ln P(φ, ψ) over {dihedral_labels[0]} and {dihedral_labels[1]}, "
                  f"T = {scores['temperature_K']:.1f} K{temperature_note}.", "",
                  f"![free-energy surface]({fig['fes']})", ""]
    else:
        lines += ["Not drawn: fewer than two dihedrals were given or found (see the notes "
                  "above).", ""]
    lines += ["## Internal coordinates", "", "Reference (solid blue) and prediction (dashed red), "
              f"first {timeseries_frames} frames: " + ", ".join(coord_labels) + ".", "",
              f"![internal coordinates]({fig['coordinates']})", ""]
    path.write_text("\n".join(lines))


def analyze(reference: Trajectory, prediction: Trajectory, out_dir: str | Path,
            dihedrals: Sequence[Coordinate] | None = None,
            coordinates: Sequence[Coordinate] | None = None,
            interpolated_stride: int | None = None, temperature_K: float | None = None,
            fes_bins: int = 36, timeseries_frames: int | None = None,
            notes: Sequence[str] = (), runs: Mapping[str, Path] | None = None,
            floor: Trajectory | None = None) -> dict[str, Any]:
    """Compare ``prediction`` with ``reference``; write figures, scores.json and report.md.

    Args:
        reference: the trajectory compared against.
        prediction: the same atoms, the same frame spacing; where the two cover different
            times only the common range is compared (and the report says so).
        out_dir: folder for the files (created).
        dihedrals: the two (i, j, k, l) of the free-energy surface; default: the two most
            flexible proper dihedrals of the reference (:func:`~hybridmd.analysis.observables.
            most_flexible_dihedrals`).
        coordinates: internal coordinates to plot over time, each 2 (bond), 3 (angle) or 4
            (dihedral) atom indices, at most 4; default :func:`default_coordinates`.
        interpolated_stride: fine frames per interpolated window, counted from the
            prediction's first frame; default: ``prediction.metadata["stride"]`` (written by
            ``hybridmd interpolate``), else unknown (no shading, no interior scores).
        temperature_K: of the free-energy surface; default: the reference's mean kinetic
            temperature.
        fes_bins: bins per angle of the free-energy surface.
        timeseries_frames: frames in the internal-coordinate plot; default: the first
            max(200, 10·stride).
        notes: said first in the report (e.g. what the inputs are).
        runs: the hybrid run folders behind the inputs, by role (``"prediction"``,
            ``"reference"``): each run's timeline picture is drawn into the report.
        floor: a second reference (a second full simulation, another seed): the reference is
            scored against it too, on the same frames and bins, and each score of the
            prediction gets that floor beside it.

    Returns:
        The scores (keys :data:`SCORE_KEYS`), as written to ``scores.json``.
    """
    ref, pred, cut = common_frames(reference, prediction)  # before anything is written
    if floor is not None:
        floor_ref, floor, floor_cut = common_frames(ref, floor)
        cut += [note.replace("prediction", "floor") for note in floor_cut]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes = [*notes, *cut, *rdf_report.periodic_notes(ref, pred)]
    stride = interpolated_stride or prediction.metadata.get("stride")
    stride = int(stride) if stride else None
    if stride is not None and stride < 1:
        raise ValueError(f"interpolated_stride must be positive, got {stride}")
    origin = prediction.t0_fs  # the reconstruction's first frame is a coarse frame
    figures: dict[str, str] = {}

    for role, folder in (runs or {}).items():
        name = f"timeline-{role}.png"
        plot_timeline(folder, out / name)
        figures[f"timeline_{role}"] = name

    # errors over time
    pos, vel = ob.mae_over_time(pred, ref)
    interior = None
    if stride and stride > 1:
        interior = np.round((pred.times_fs - origin) / pred.dt_fs).astype(int) % stride != 0
    windows = None if not stride else plots.Windows(
        stride, stride * pred.dt_fs, origin,
        reconstruction=interior is not None and bool(np.all(
            np.abs(pred.positions[~interior] - ref.positions[~interior]) < 1e-8)),
        ml=prediction.metadata.get("ml_segments"))
    plots.plot_mae(out / FIGURES["mae"], ref.times_fs, pos, vel, windows)
    figures["mae"] = FIGURES["mae"]

    # vibrational density of states
    vdos_ref, vdos_pred = ob.vdos(ref), ob.vdos(pred)
    overlap = ob.vdos_overlap(vdos_ref, vdos_pred)
    coarse_nyquist = (1.0 / (2 * stride * ref.dt_fs * ob.C_CM_PER_FS)
                      if stride and stride > 1 else None)
    plots.plot_vdos(out / FIGURES["vdos"], vdos_ref, vdos_pred, overlap, coarse_nyquist)
    figures["vdos"] = FIGURES["vdos"]

    # distributions on common bins
    sides = (ref, pred) if floor is None else (ref, pred, floor)
    d_all = np.concatenate([pair_distances(t.positions).ravel() for t in sides])
    r_edges = np.linspace(d_all.min(), d_all.max(), 201)
    speeds = np.linalg.norm(np.concatenate([t.velocities for t in sides]), axis=-1)
    s_edges = np.linspace(0.0, speeds.max(), 81)
    h_ref, h_pred = (ob.pair_distance_distribution(t, r_edges) for t in (ref, pred))
    s_ref, s_pred = (ob.speed_distribution(t, s_edges) for t in (ref, pred))
    js_h, js_s = ob.jensen_shannon(h_ref, h_pred), ob.jensen_shannon(s_ref, s_pred)
    plots.plot_distributions(out / FIGURES["distributions"], h_ref, h_pred, s_ref, s_pred,
                             js_h, js_s)
    figures["distributions"] = FIGURES["distributions"]

    # partial g(r) and density of periodic trajectories
    periodic = rdf_report.compare_periodic(ref, pred)
    if periodic is not None:
        rdf_report.plot_rdfs(out / rdf_report.RDF_FIGURE, periodic)
        figures["rdf"] = rdf_report.RDF_FIGURE
    else:
        (out / rdf_report.RDF_FIGURE).unlink(missing_ok=True)

    # free-energy surface
    if dihedrals is None:
        dihedrals = ob.most_flexible_dihedrals(ref, count=2)
        log.info("most flexible dihedrals of the reference: %s", dihedrals)
        covalent = {frozenset(b) for b in ob.covalent_bonds(ref)}
        if any(frozenset(d[m:m + 2]) not in covalent for d in dihedrals for m in range(3)):
            notes.append("The molecule has fewer than two rotatable covalent dihedrals: the "
                         "free-energy surface uses dihedrals across hydrogen bonds "
                         "(donor–acceptor pairs taken as bonds).")
    dihedrals = [tuple(int(i) for i in d) for d in dihedrals]
    if any(len(d) != 4 for d in dihedrals):
        raise ValueError(f"a dihedral has 4 atom indices: got {dihedrals}")
    _check_indices(dihedrals, ref.n_atoms, "dihedral")
    temperature = temperature_K if temperature_K is not None else ob.kinetic_temperature(ref)
    ndof = ref.degrees_of_freedom if temperature_K is None else None
    basis = temperature_basis(ndof, ref.n_atoms)
    fes_rmsd = None
    dihedral_labels = [plots.coordinate_label(ref, d).removesuffix(" (deg)") for d in dihedrals]
    if len(dihedrals) >= 2:
        if len(dihedrals) > 2:
            notes.append(f"{len(dihedrals)} dihedrals given: the free-energy surface uses the "
                         "first two.")
        fes_ref, fes_pred = (
            ob.free_energy_surface(ob.dihedral(t, *dihedrals[0]), ob.dihedral(t, *dihedrals[1]),
                                   temperature, bins=fes_bins) for t in (ref, pred))
        diff = ob.fes_difference(fes_ref, fes_pred)
        fes_rmsd = ob.fes_rmsd(fes_ref, fes_pred)
        axis_labels = (f"{dihedral_labels[0]} (deg)", f"{dihedral_labels[1]} (deg)")
        plots.plot_fes(out / FIGURES["fes"], fes_ref, fes_pred, diff, axis_labels, fes_rmsd,
                       basis)
        figures["fes"] = FIGURES["fes"]
    else:
        notes.append("No free-energy surface: fewer than two dihedrals "
                     f"({len(dihedrals)} found or given).")
        (out / FIGURES["fes"]).unlink(missing_ok=True)  # not a stale one from an earlier run

    floor_result = None if floor is None else floor_scores(
        floor_ref, floor, r_edges, s_edges, dihedrals, temperature, fes_bins)

    # internal coordinates over time
    coords = (default_coordinates(ref, dihedrals) if coordinates is None
              else [tuple(int(i) for i in c) for c in coordinates])
    if not 1 <= len(coords) <= 4:
        raise ValueError(f"plot 1 to 4 internal coordinates, got {len(coords)}")
    _check_indices(coords, ref.n_atoms, "internal coordinate")
    frames = timeseries_frames or max(200, 10 * (stride or 1))
    frames = min(frames, len(ref))
    plots.plot_coordinates(out / FIGURES["coordinates"], ref, pred, coords, frames, windows)
    figures["coordinates"] = FIGURES["coordinates"]

    scores = {
        "frames": len(ref),
        "dt_fs": ref.dt_fs,
        "t_start_fs": float(ref.times_fs[0]),
        "t_end_fs": float(ref.times_fs[-1]),
        "trimmed": bool(len(ref) != len(reference) or len(pred) != len(prediction)),
        "interpolated_stride": stride,
        "position_mae": float(pos.mean()),
        "velocity_mae": float(vel.mean()),
        "position_mae_interior": float(pos[interior].mean()) if interior is not None
        and interior.any() else None,
        "velocity_mae_interior": float(vel[interior].mean()) if interior is not None
        and interior.any() else None,
        "vdos_overlap": overlap,
        "pair_distance_js": js_h,
        "speed_js": js_s,
        "fes_rmsd": fes_rmsd,
        "dihedrals": [list(d) for d in dihedrals],
        "temperature_K": float(temperature),
        "temperature_dof": ndof,
        "floor": floor_result,
        "windows": None if windows is None else (
            "interpolated" if windows.reconstruction else "segments"),
        **(periodic.scores() if periodic else {"rdf": None, "density": None}),
        "coordinates": [list(c) for c in coords],
        "figures": figures,
        "notes": notes,
    }
    scores = _json_ready(scores)
    (out / "scores.json").write_text(json.dumps(scores, indent=1))
    _write_report(out / "report.md", scores, ref, pred,
                  [plots.coordinate_label(ref, c) for c in coords], dihedral_labels, frames)
    return scores
