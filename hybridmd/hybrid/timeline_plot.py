"""``timeline.png``: a hybrid run at a glance, drawn from its ``timeline.tsv``.

Five panels over simulated time: what made each segment (simulation, ML, or ML thrown away
by a rollback), the shadow and monitored errors against the tolerance (log scale), the
temperature and the potential energy at the segment ends (``coarse.traj``), and the
expensive calls spent so far beside those of the full simulation. The learned force field's
versions (``learn`` lines; the ``version`` column) are marked where the run learns. The run's
input (``run.json``) gives the tolerance and the time grid; ``summary.json``, where the run
wrote one, the title's figures. The figure is drawn with matplotlib's Agg canvas, so it needs
no display.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from hybridmd.hybrid.files import (
    COARSE_NAME,
    LATER_COLUMNS,
    METADATA_NAME,
    SUMMARY_NAME,
    TIMELINE_COLUMNS,
    TIMELINE_NAME,
)
from hybridmd.streaming.frames import CALCULATOR_SOURCE
from hybridmd.trajectory import degrees_of_freedom_label, internal_degrees_of_freedom
from hybridmd.units import KB

log = logging.getLogger(__name__)

PLOT_NAME = "timeline.png"

#: how each kind of segment is drawn in the mode panel
MODE_COLOURS = {"sim": "tab:blue", "ml": "tab:orange", "rollback": "tab:red"}
MODE_SHORT = {"sim": "simulated", "ml": "ML", "rollback": "rolled back",
              "check": "checked"}
_FLOAT_COLUMNS = ("time_fs", "shadow_error_A", "monitor_error_A", "check_error_eV_A",
                  "uncertainty_A", "energy_jump_eV")
_INT_COLUMNS = ("segment", "version", "force_calls", "monitor_calls")
_DPI = 100
MAX_VERSION_LABELS = 14


@dataclass
class TimelineData:
    """What the plot shows, read from a run folder."""

    rows: list[dict[str, Any]]  #: timeline lines, values typed (None where empty)
    segment_fs: float  #: simulated time of one segment
    stride: int  #: MD steps per segment
    tolerance_A: float  #: the switch's tolerance on forecast errors
    force_tolerance_eV_A: float | None = None  #: single-point checks' tolerance (None: off)
    summary: dict[str, Any] | None = None  #: summary.json, where the run wrote one
    #: segment -> what made it in the end: "sim", "ml", or "rollback" (an ML segment thrown
    #: away and not made again, only at the end of an interrupted run)
    final_mode: dict[int, str] = field(default_factory=dict)
    discarded: list[int] = field(default_factory=list)  #: ML segments thrown away
    ends: SegmentEnds | None = None  #: the segment ends' temperature and energy (coarse.traj)

    @property
    def end_fs(self) -> float:
        """The end of the last segment made."""
        return (max(self.final_mode, default=-1) + 1) * self.segment_fs

    def full_simulation_calls(self, time_fs: float) -> int:
        """Expensive calls the full simulation makes up to ``time_fs``: one a step, and one
        for the start."""
        return round(time_fs / self.segment_fs * self.stride) + 1


@dataclass
class SegmentEnds:
    """The committed segment ends of ``coarse.traj``: kinetic temperature (departure momenta,
    over ``ndof`` degrees of freedom, as the summary counts them) and potential energy, each
    with its source (the calculator, or the learned force field)."""

    time_fs: np.ndarray
    temperature_K: np.ndarray
    energy_eV: np.ndarray
    exact: np.ndarray  #: bool: the energy is the calculator's
    ndof: int
    n_atoms: int
    target_K: float | None


def read_segment_ends(path: Path, record: dict[str, Any],
                      summary: dict[str, Any] | None) -> SegmentEnds | None:
    """``coarse.traj`` as the timeline shows it (None where there is none, or no frame)."""
    if not path.is_file():
        return None
    from ase.io import read

    frames = read(path, index=":")
    if not frames:
        return None
    first = frames[0]
    if summary and summary.get("temperature_dof"):
        ndof = int(summary["temperature_dof"])
    elif record["dynamics"].get("integrator") == "langevin":
        ndof = 3 * len(first)
    else:
        ndof = internal_degrees_of_freedom(first.positions, bool(first.pbc.any()))
    return SegmentEnds(
        np.array([a.info["time_fs"] for a in frames], dtype=float),
        np.array([2 * a.get_kinetic_energy() / (ndof * KB) for a in frames]),
        np.array([a.get_potential_energy() for a in frames]),
        np.array([a.info.get("energy_source", CALCULATOR_SOURCE) == CALCULATOR_SOURCE
                  for a in frames]),
        ndof, len(first), record["dynamics"].get("temperature_K"))


def read_timeline(path: Path) -> list[dict[str, Any]]:
    """The lines of a ``timeline.tsv``, numbers as numbers and empty fields as None."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = set(TIMELINE_COLUMNS) - set(LATER_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a hybridmd timeline (no column "
                             f"{', '.join(sorted(missing))})")
        rows = []
        for raw in reader:
            row: dict[str, Any] = dict.fromkeys(LATER_COLUMNS)
            row.update((k, v if v != "" else None) for k, v in raw.items())
            for key in _FLOAT_COLUMNS:
                row[key] = None if row[key] is None else float(row[key])
            for key in _INT_COLUMNS:
                row[key] = None if row[key] is None else int(row[key])
            rows.append(row)
    return rows


def _made(rows: list[dict[str, Any]]) -> tuple[dict[int, str], list[int]]:
    """What made each segment in the end, and the ML segments a rollback threw away.

    A segment's last ``simulate`` or ``forecast`` line is the one that stands: a rolled-back
    forecast is followed by a ``simulate`` line of the same segment.
    """
    final: dict[int, str] = {}
    discarded: set[int] = set()
    for row in rows:
        k = row["segment"]
        if row["event"] == "simulate":
            final[k] = "sim"
        elif row["event"] == "forecast":
            final[k] = "ml"
        elif row["event"] == "rollback":
            # the ML segments from the frame rolled back to on are thrown away
            back_to = _rolled_back_to(row["reason"])
            for j in [j for j, mode in final.items()
                      if mode == "ml" and back_to is not None and j >= back_to]:
                final[j] = "rollback"
                discarded.add(j)
    return final, sorted(discarded)


def _rolled_back_to(reason: str | None) -> int | None:
    """The frame a rollback line says it went back to ("...; back to frame 12")."""
    if not reason or "back to frame " not in reason:
        return None
    tail = reason.rsplit("back to frame ", 1)[1].split()[0]
    return int(tail) if tail.isdigit() else None


def load(directory: Path, with_summary: bool = True) -> TimelineData:
    """A run folder's timeline, its input's time grid and tolerance, and its summary
    (``with_summary``: a run that failed leaves none of its own, only an earlier stop's)."""
    directory = Path(directory)
    rows = read_timeline(directory / TIMELINE_NAME)
    record = json.loads((directory / METADATA_NAME).read_text())["input"]
    hybrid, dynamics = record["hybrid"], record["dynamics"]
    stride = int(hybrid["stride"])
    summary_path = directory / SUMMARY_NAME
    summary = (json.loads(summary_path.read_text())
               if with_summary and summary_path.is_file() else None)
    final, discarded = _made(rows)
    check = hybrid.get("check") or {}
    return TimelineData(rows, stride * float(dynamics["timestep_fs"]), stride,
                        float(hybrid.get("switch", {}).get("tolerance_A", 0.05)),
                        check.get("force_tolerance_eV_A"), summary, final, discarded,
                        read_segment_ends(directory / COARSE_NAME, record, summary))


def _time_unit(data: TimelineData) -> tuple[float, str]:
    """ps for runs longer than 2 ps, fs otherwise."""
    return (1000.0, "ps") if data.end_fs > 2000.0 else (1.0, "fs")


def _spans(final: dict[int, str]) -> list[tuple[int, int, str]]:
    """Runs of consecutive segments made the same way: (first, last + 1, mode)."""
    spans: list[tuple[int, int, str]] = []
    for k in sorted(final):
        mode = final[k]
        if spans and spans[-1][2] == mode and spans[-1][1] == k:
            spans[-1] = (spans[-1][0], k + 1, mode)
        else:
            spans.append((k, k + 1, mode))
    return spans


def _title(data: TimelineData, directory: Path) -> str:
    s = data.summary
    if not s:
        return f"hybrid run {directory}\nstopped by a failure (no summary)"
    calls = s["force_calls"]
    saved = calls["saved_fraction"]
    cost = f"saved {saved:.0%}" if saved >= 0 else f"{-saved:.0%} more"
    rollbacks = f"{s['rollbacks']} rollback" + ("" if s["rollbacks"] == 1 else "s")
    return (f"hybrid run {s['directory']}\n{s['ml_fraction']:.0%} of {s['segments']} segments "
            f"by ML, {rollbacks}; {calls['total']} expensive calls against "
            f"{calls['full_simulation']} for the full simulation ({cost})")


def learned_versions(data: TimelineData) -> list[tuple[float, int]]:
    """(simulated time, version) of every learned version taken up (the ``learn`` lines that
    changed the version in use; a failed fit keeps the one before)."""
    taken, current = [], None
    for row in data.rows:
        if row["event"] == "learn" and row["version"] is not None and row["version"] != current:
            current = row["version"]
            taken.append((row["time_fs"], current))
    return taken


def _mark_versions(axes: list[Any], data: TimelineData, scale: float) -> None:
    """A dotted line where each learned version was taken up, labelled in the top panel."""
    taken = learned_versions(data)
    every = max(1, -(-len(taken) // MAX_VERSION_LABELS))  # labels that do not overlap
    for i, (time_fs, version) in enumerate(taken):
        t = time_fs / scale
        for ax in axes:
            ax.axvline(t, color="tab:green", ls=":", lw=1.0,
                       label="learned version taken up" if ax is axes[1] and i == 0 else None)
        if i % every and i != len(taken) - 1:
            continue
        axes[0].annotate(f"v{version}", (t, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(2, 2), textcoords="offset points", fontsize=8,
                         color="tab:green")


def checks(data: TimelineData) -> list[tuple[int, float, bool]]:
    """(segment, force error, passed) of every single-point check, in order."""
    return [(r["segment"], r["check_error_eV_A"], r["event"] == "forecast") for r in data.rows
            if r["check_error_eV_A"] is not None and r["event"] in ("forecast", "reject")]


def _mode_panel(ax: Any, data: TimelineData, scale: float) -> None:
    """One row per kind of segment (a Gantt chart): simulated, ML, thrown away by rollbacks,
    and a row of the single-point checks (green passed, red failed): how often the run
    checks, and where."""
    done = checks(data)
    rows = ["sim", "ml"] + (["rollback"] if data.discarded else []) + (
        ["check"] if done else [])
    width = data.segment_fs / scale
    for y, mode in enumerate(reversed(rows)):
        if mode == "check":
            for passed in (True, False):
                ax.broken_barh([(k * width, width) for k, _, ok in done if ok == passed],
                               (y - 0.4, 0.8), color="tab:green" if passed else "tab:red",
                               lw=0)
            continue
        if mode == "rollback":
            bars = [(k * width, width) for k in data.discarded]
        else:
            bars = [(first * width, (end - first) * width)
                    for first, end, m in _spans(data.final_mode) if m == mode]
        ax.broken_barh(bars, (y - 0.4, 0.8), color=MODE_COLOURS[mode], lw=0)
    ax.set_yticks(range(len(rows)), [MODE_SHORT[m] for m in reversed(rows)], fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.tick_params(axis="y", length=0)


def _error_panel(ax: Any, data: TimelineData, scale: float) -> None:
    def points(event: str, column: str, keep: Any = lambda r: True) -> tuple[list, list]:
        picked = [r for r in data.rows if r["event"] == event and r[column] is not None
                  and r[column] > 0 and keep(r)]
        return ([r["time_fs"] / scale for r in picked], [r[column] for r in picked])

    def uncertain(r: dict[str, Any]) -> bool:
        return "uncertain" in (r["reason"] or "")

    series = (
        (points("forecast", "uncertainty_A"), {"s": 6, "color": "0.65", "marker": ".",
                                                "label": "uncertainty of an ML segment"}),
        (points("simulate", "shadow_error_A"), {"s": 14, "color": "tab:blue", "marker": "o",
                                                "label": "shadow forecast error (simulated)"}),
        (points("monitor", "monitor_error_A", lambda r: not uncertain(r)),
         {"s": 26, "color": "tab:orange", "marker": "^",
          "label": "monitored error (drawn at random)"}),
        (points("monitor", "monitor_error_A", uncertain),
         {"s": 26, "color": "tab:purple", "marker": "v",
          "label": "monitored error (chosen as uncertain)"}),
    )
    for (x, y), style in series:
        if x:
            ax.scatter(x, y, zorder=3, **style)
    ax.axhline(data.tolerance_A, color="k", ls="--", lw=1.0,
               label=f"tolerance {data.tolerance_A:g} Å")
    ax.set_yscale("log")
    ax.set_ylim(top=max(ax.get_ylim()[1], 3 * data.tolerance_A))
    ax.set_ylabel("largest atom error (Å)")
    ax.grid(alpha=0.3, which="both", lw=0.5)
    done = checks(data)
    if done:  # the checks' force errors, on their own axis
        forces = ax.twinx()
        for passed, colour in ((True, "tab:green"), (False, "tab:red")):
            picked = [(k, e) for k, e, ok in done if ok == passed and e > 0]
            if picked:
                forces.scatter([(k + 1) * data.segment_fs / scale for k, _ in picked],
                               [e for _, e in picked], s=14, marker="x", color=colour,
                               zorder=3)
        if data.force_tolerance_eV_A:
            forces.axhline(data.force_tolerance_eV_A, color="tab:red", ls=":", lw=1.0)
        forces.set_yscale("log")
        forces.set_ylabel("single-point checks: largest force error (eV/Å)\n"
                          "green x passed, red x failed, dotted: tolerance", fontsize=8)


def _temperature_panel(ax: Any, data: TimelineData, scale: float) -> None:
    ends = data.ends
    if ends is not None:
        ax.plot(ends.time_fs / scale, ends.temperature_K, color="tab:red", lw=0.8,
                label="segment ends")
        if ends.target_K:
            ax.axhline(ends.target_K, color="k", ls="--", lw=1.0,
                       label=f"target {ends.target_K:g} K")
        ax.legend(fontsize=8, loc="upper right", ncols=2)
        ax.set_title(f"kinetic temperature over {degrees_of_freedom_label(ends.ndof, ends.n_atoms)}"
                     " (as the summary counts)", fontsize=8, loc="left")
    ax.set_ylabel("temperature (K)")
    ax.grid(alpha=0.3, lw=0.5)


def _energy_panel(ax: Any, data: TimelineData, scale: float) -> None:
    ends = data.ends
    if ends is not None:
        e0 = ends.energy_eV[0]
        t = ends.time_fs / scale
        for keep, style in ((ends.exact, {"color": "tab:blue", "label": "the calculator's"}),
                            (~ends.exact, {"color": "tab:orange",
                                           "label": "the learned force field's"})):
            if keep.any():
                ax.scatter(t[keep], ends.energy_eV[keep] - e0, s=4, zorder=3, **style)
        ax.legend(fontsize=8, loc="upper right", ncols=2, markerscale=2)
    ax.set_ylabel("E_pot − E_pot(0) (eV)")
    ax.grid(alpha=0.3, lw=0.5)


def driver_times(data: TimelineData) -> list[float]:
    """For each timeline line, how far the run had got (fs): the end of the furthest segment
    made so far. Monitor results come in after their segment, and the segments a rollback
    makes again cost calls at a time already reached: both show as a rise at that time."""
    reached, times = 0.0, []
    for row in data.rows:
        if row["event"] in ("simulate", "forecast"):
            reached = max(reached, (row["segment"] + 1) * data.segment_fs)
        times.append(reached)
    return times


def _calls_panel(ax: Any, data: TimelineData, scale: float, unit: str) -> None:
    keep = [i for i, r in enumerate(data.rows) if r["force_calls"] is not None]
    reached = driver_times(data)
    t = [reached[i] / scale for i in keep]
    driver = np.array([data.rows[i]["force_calls"] for i in keep])
    total = driver + np.array([data.rows[i]["monitor_calls"] or 0 for i in keep])
    end = data.end_fs
    ax.plot([0, end / scale], [1, data.full_simulation_calls(end)], color="k",
            lw=1.2, ls="--", label="the full simulation")
    ax.step(t, total, where="post", color="tab:red", lw=1.4,
            label="this run, all expensive calls")
    ax.step(t, driver, where="post", color="tab:blue", lw=1.0,
            label="this run, without the monitors' calls")
    ax.set_ylabel("expensive calls so far")
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3, lw=0.5)


def plot_timeline(directory: Path, output: Path | None = None,
                  with_summary: bool = True) -> Path:
    """Draw ``timeline.png`` of the run in ``directory`` (or to ``output``); its path."""
    directory = Path(directory)
    data = load(directory, with_summary)
    output = Path(output) if output is not None else directory / PLOT_NAME
    scale, unit = _time_unit(data)
    fig = Figure(figsize=(9, 10.4), layout="constrained")
    axes = list(fig.subplots(5, 1, sharex=True, height_ratios=(0.9, 3, 1.6, 1.6, 2.4)))
    _mode_panel(axes[0], data, scale)
    _error_panel(axes[1], data, scale)
    _temperature_panel(axes[2], data, scale)
    _energy_panel(axes[3], data, scale)
    _calls_panel(axes[4], data, scale, unit)
    _mark_versions(axes, data, scale)
    axes[1].legend(fontsize=8, loc="best", ncols=2, framealpha=0.9)
    axes[4].legend(fontsize=8, loc="upper left")
    axes[4].set_xlim(0, data.end_fs / scale)
    fig.suptitle(_title(data, directory), fontsize=10)
    tmp = output.with_name(output.name + ".tmp.png")
    fig.savefig(tmp, dpi=_DPI)
    tmp.replace(output)
    return output


def write_timeline_plot(directory: Path, with_summary: bool = True) -> Path | None:
    """``plot_timeline`` at the end of a run: a plot that fails is logged, never raised (the
    run's own outcome is what the user must see)."""
    try:
        return plot_timeline(directory, with_summary=with_summary)
    except Exception as exc:  # noqa: BLE001 (a picture must not turn a finished run into a failure)
        # after a failure the run's error is the one line to see (an early one has nothing
        # to draw); at a finished run a missing picture is worth a warning
        log.log(logging.WARNING if with_summary else logging.INFO,
                "timeline.png was not drawn: %s (%s)", exc, type(exc).__name__)
        return None
