"""Cold start: a hybrid run that learns as it goes, against the full simulation.

A molecule nothing was trained for (malonaldehyde by default), its sGDML model standing in for
the expensive calculator: every call of it is counted as a DFT call would be, training data
included. Three runs of the same length, Bussi at the 10 fs segment boundaries, 0.5 fs steps:

- full A: every segment simulated (``forecaster: none``), seed 1: the reference;
- full B: the same with seed 2: the floor of the distribution scores for this length (with
  ``--full-runs N`` also full C, D, ... with seeds 3, 4, ...: every pair of full runs is a
  floor, and their range says how much the floor itself varies);
- hybrid A: the cold-start input (``forecaster: learn``), seed 1, nothing trained beforehand
  (``--hybrid-seed S`` makes it with seed S: a second hybrid run, scored against the same
  full runs hard-linked into its own folder).

Any cold-start input works (``--input``): a periodic box adds the partial g(r) of every element
pair (O-O, O-H, H-H for water; minimum image) to the distribution scores.

Prints the expensive calls by purpose against the full simulation's, the wall clock, the ML
share, rollbacks, monitored errors and mean temperatures; the distribution scores of the fine
trajectories (VDOS overlap, h(r) and speed Jensen-Shannon divergences) against full A and full
B next to the floor; and the learning curve: shadow and monitored forecast errors against the
expensive calls spent, and the call at which ML mode first held.

With more than three full runs the scores are summarised instead of listed pair by pair: the
floor's range over every pair of full runs, and each run's mean score against the full runs
(leave one out: a full run against the others). Where the hybrid's mean lies within the full
runs' means, it is as far from them as one of them is from the rest: a system whose own runs
differ widely (a cluster that sheds a molecule in some seeds) needs such a floor, as two runs
can both happen to be on one side.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cold_start.py --ps 20
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import signal
from datetime import date
from pathlib import Path

import numpy as np
import yaml
from ase import Atoms

from hybridmd.analysis.compare import VACF_LAGS_FS, distribution_scores
from hybridmd.analysis.observables import cluster_size, kinetic_temperature, largest_gap
from hybridmd.config import RunConfig, parse_config
from hybridmd.hybrid.build import molecules
from hybridmd.hybrid.session import HybridRun
from hybridmd.readers import read_trajectory
from hybridmd.signals import Terminated, received, stoppable_script
from hybridmd.trajectory import Trajectory

REPO = Path(__file__).resolve().parent.parent


def run(data: dict, out: Path, ps: float, seed: int, learn: bool, base_dir: Path,
        resume: bool = False) -> dict:
    """One run of the table; ``resume`` continues a run of it that was stopped."""
    data = json.loads(json.dumps(data))
    data["dynamics"].update(duration_fs=1000 * ps, seed=seed)
    data["output"] = {"directory": str(out)}
    if not learn:
        data["hybrid"] = {"stride": data["hybrid"]["stride"], "interpolator": "quintic",
                          "forecaster": None}
    cfg = parse_config(data, RunConfig, f"{out.name}.yaml", base_dir=base_dir)
    done = out / "summary.json"
    if resume and done.exists():  # a stopped run writes its summary too: finished = all segments
        summary = json.loads(done.read_text())
        if summary["segments"] * summary["segment_fs"] >= cfg.dynamics.duration_fs - 1e-6:
            return summary
    resume = resume and (out / "checkpoint.json").exists()
    result = HybridRun(cfg).run(resume=resume, overwrite=not resume, progress=False)
    if result.interrupted:  # stopped at a checkpoint by SIGINT/SIGTERM: no table from part
        raise KeyboardInterrupt if received() == signal.SIGINT else Terminated(received())
    return result.summary


def learning_curve(timeline: Path, bin_calls: int) -> list[dict]:
    """Shadow, monitored and check errors by bins of expensive calls spent (driver, checks
    and monitors)."""
    lines = timeline.read_text().splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]
    bins: dict[int, dict[str, list[float]]] = {}
    for r in rows:
        spent = int(r["force_calls"] or 0) + int(r["monitor_calls"] or 0)
        b = bins.setdefault(spent // bin_calls, {"shadow": [], "monitor": [], "ml": [],
                                                 "check": []})
        if r["event"] == "simulate" and r["shadow_error_A"]:
            b["shadow"].append(float(r["shadow_error_A"]))
        if r["event"] == "monitor" and r["monitor_error_A"]:
            b["monitor"].append(float(r["monitor_error_A"]))
        if r["event"] == "forecast":
            b["ml"].append(1.0)
        if r.get("check_error_eV_A"):
            b["check"].append(float(r["check_error_eV_A"]))
    return [{"calls": f"{k * bin_calls}-{(k + 1) * bin_calls}",
             "shadow": float(np.mean(v["shadow"])) if v["shadow"] else None,
             "monitor": float(np.mean(v["monitor"])) if v["monitor"] else None,
             "check": float(np.mean(v["check"])) if v["check"] else None,
             "checks": len(v["check"]), "ml_segments": len(v["ml"])}
            for k, v in sorted(bins.items())]


def plot_learning_curve(timeline: Path, summary: dict, path: Path) -> None:
    """Shadow and monitored errors of every segment against the expensive calls spent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = timeline.read_text().splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]
    fig, ax = plt.subplots(figsize=(7, 4))
    for event, column, label, style in (
            ("simulate", "shadow_error_A", "shadow (simulated segments)", "."),
            ("monitor", "monitor_error_A", "monitored (ML segments)", "x")):
        points = [(int(r["force_calls"]) + int(r["monitor_calls"]), float(r[column]))
                  for r in rows if r["event"] == event and r[column]]
        if points:
            ax.plot(*zip(*points, strict=True), style, label=label, alpha=0.7)
    tolerance = 0.05
    ax.axhline(tolerance, color="grey", lw=1, ls="--", label=f"tolerance {tolerance} Å")
    checks = [(int(r["force_calls"]) + int(r["monitor_calls"]), float(r["check_error_eV_A"]))
              for r in rows if r.get("check_error_eV_A")]
    if checks:  # the single-point checks' force errors, on their own axis
        forces = ax.twinx()
        forces.plot(*zip(*checks, strict=True), "+", color="tab:purple", alpha=0.6)
        forces.set_yscale("log")
        forces.set_ylabel("single-point check: largest force error (eV/Å, +)", fontsize=8,
                          color="tab:purple")
    first = summary["learning"]["ml_first_at_call"]
    if first is not None:
        ax.axvline(first, color="tab:green", lw=1, label=f"ML mode first holds ({first} calls)")
    ax.set_yscale("log")
    ax.set_xlabel("expensive calls spent (simulation, checks and monitors)")
    ax.set_ylabel("end-position error after 10 fs (Å)")
    ax.set_title("learning as it goes: the learned force field's error")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_scores(comparisons: dict[str, dict[str, float]]) -> None:
    """The distribution scores of each comparison as a markdown table."""
    heads = " | ".join(f"VDOS overlap, VACF {lag:g} fs" for lag in VACF_LAGS_FS)
    print(f"| comparison | {heads} | h(r) JS (bits) | speed JS (bits) |")
    print("|---|" + "---|" * (len(VACF_LAGS_FS) + 2))
    for name, s in comparisons.items():
        overlaps = " | ".join(f"{s[f'vdos_overlap_{lag:g}fs']:.4f}" for lag in VACF_LAGS_FS)
        print(f"| {name} | {overlaps} | {s['hr_js_bits']:.2e} | {s['speed_js_bits']:.2e} |")


#: letters of the full runs' names (full A, seed 1; full B, seed 2; ...)
FULL_LETTERS = "ABCDEFGHIJKL"


def _closer(key: str) -> int:
    """+1 where a higher score means two runs are closer (an overlap), -1 where lower (a
    divergence or an RMS difference)."""
    return 1 if key.startswith("vdos_overlap") else -1


def print_leave_one_out(comparisons: dict[str, dict[str, float]], fulls: list[str],
                        hybrid: str = "hybrid A") -> None:
    """The floor's range over pairs of full runs, the hybrid's scores against each full run,
    and each run's mean score against the full runs (a full run against the others): the
    hybrid's place among them, 1 the closest of the ``len(fulls) + 1``."""
    def score(a: str, b: str, key: str) -> float:
        pair = comparisons.get(f"{a} vs {b} (floor)") or comparisons[f"{b} vs {a} (floor)"]
        return pair[key]

    keys = list(next(iter(comparisons.values())))
    print("| score | floor: pairs of full runs, min / median / max | hybrid vs each full run, "
          "min / median / max | mean against the full runs: full runs' range | hybrid's | "
          f"hybrid's place of {len(fulls) + 1} (1 closest) |")
    print("|---|---|---|---|---|---|")
    for key in keys:
        floor = [score(a, b, key) for i, a in enumerate(fulls) for b in fulls[i + 1:]]
        against = [comparisons[f"{hybrid} vs {f}"][key] for f in fulls]
        means = [float(np.mean([score(f, g, key) for g in fulls if g != f])) for f in fulls]
        mine = float(np.mean(against))
        place = 1 + sum(_closer(key) * (m - mine) > 0 for m in means)
        spec = ".4f" if _closer(key) > 0 else ".2e"

        def span(v: list[float], spec: str = spec) -> str:
            return " / ".join(format(x, spec) for x in (min(v), float(np.median(v)), max(v)))

        print(f"| {key} | {span(floor)} | {span(against)} | {min(means):{spec}}-"
              f"{max(means):{spec}} | {mine:{spec}} | {place} |")


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "–" if x is None else format(x, spec)


def _periodic(traj: Trajectory) -> bool:
    return traj.cell is not None and bool(traj.pbc.any())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path,
                        default=REPO / "inputs" / "malonaldehyde-cold-start.yaml")
    parser.add_argument("--ps", type=float, default=20.0, help="length of each run, ps")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-cold-start"))
    parser.add_argument("--reuse-full", action="store_true",
                        help="take the two full simulations from an earlier run of this script")
    parser.add_argument("--bin-calls", type=int, default=500,
                        help="expensive calls per row of the learning curve")
    parser.add_argument("--full-runs", type=int, default=2,
                        choices=range(2, len(FULL_LETTERS) + 1), metavar="N",
                        help="full simulations (seeds 1 to N, 2 to 12); every pair is a floor")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip full B (the second full simulation): for DFT, an hour less")
    parser.add_argument("--resume", action="store_true",
                        help="continue the runs of an earlier, stopped call of this script (a "
                             "resumed run's wall clock counts its last part only)")
    parser.add_argument("--only", choices=[f"full-{x.lower()}" for x in FULL_LETTERS]
                        + ["hybrid-a"],
                        help="make this one run and stop (start the runs as processes of "
                             "their own, then collect them with --resume)")
    parser.add_argument("--hybrid-seed", type=int, default=1,
                        help="seed of hybrid A (default 1, full A's)")
    parser.add_argument("--plot", type=Path,
                        help="draw the learning curve (errors against expensive calls) here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = yaml.safe_load(args.input.read_text())
    base = args.input.resolve().parent

    n_full = 1 if args.no_floor else args.full_runs
    fulls = {f"full {x}": (f"full-{x.lower()}", i + 1)
             for i, x in enumerate(FULL_LETTERS[:n_full])}
    if args.only:
        seed = (args.hybrid_seed if args.only == "hybrid-a"
                else FULL_LETTERS.lower().index(args.only[-1]) + 1)
        run(data, args.out / args.only, args.ps, seed, args.only == "hybrid-a", base,
            args.resume)
        return
    summaries = {}
    for name, (folder, seed) in fulls.items():
        summaries[name] = (json.loads((args.out / folder / "summary.json").read_text())
                           if args.reuse_full else
                           run(data, args.out / folder, args.ps, seed, False, base, args.resume))
    summaries["hybrid A"] = hybrid = run(data, args.out / "hybrid-a", args.ps, args.hybrid_seed,
                                         True, base, args.resume)
    full_a = summaries["full A"]
    traj = {name: read_trajectory(args.out / folder / "fine.traj")
            for name, (folder, _) in {**fulls, "hybrid A": ("hybrid-a", 1)}.items()}
    # the scores need runs longer than the longest VACF lag (a short run prints the calls)
    scored = 1000 * args.ps > max(VACF_LAGS_FS)
    comparisons = {f"hybrid A vs {name}": distribution_scores(traj[name], traj["hybrid A"])
                   for name in fulls} if scored else {}
    if scored:
        names = list(fulls)
        comparisons = {**{f"{a} vs {b} (floor)": distribution_scores(traj[a], traj[b])
                          for i, a in enumerate(names) for b in names[i + 1:]},
                       **comparisons}

    molecule = data["system"].get("molecule") or data["system"].get("file")
    print(f"# cold start, {molecule}, {data['calculator']['type']} as the expensive "
          f"calculator, {data['dynamics']['temperature_K']:g} K, {args.ps:g} ps, {date.today()}, "
          f"{platform.processor() or platform.machine()}"
          f"{f', hybrid A with seed {args.hybrid_seed}' if args.hybrid_seed != 1 else ''}\n")
    print("| run | simulation | ML ends | monitors | checks | training | total | saved | "
          "calls/ps | wall s | mean T (K) | ML share | rollbacks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, s in summaries.items():
        c = s["force_calls"]
        print(f"| {name} | {c['simulation']} | {c['ml_segment_ends']} | {c['monitors']} | "
              f"{c.get('checks', 0)} | {c['training']} | {c['total']} | "
              f"{c['saved_fraction']:.1%} | {c['total'] / args.ps:.0f} | "
              f"{s['wall_time_s']:.0f} | {s['mean_temperature_K']:.1f} | "
              f"{s['ml_fraction']:.0%} | {s['rollbacks']} |")
    learning = hybrid["learning"]
    print(f"\nlearned force field: version {learning['version']}, {learning['frames']} frames "
          f"labeled, {learning['fitted_to']} fitted to; learner {learning['learner_s']:.0f} s, "
          f"the driver waited {learning['waited_s']:.0f} s for it; ML mode first held after "
          f"{learning['ml_first_at_call']} expensive calls")
    for key, label in (("shadow_error_A", "shadow"), ("monitor_error_A", "monitored, random"),
                       ("uncertain_monitor_error_A", "monitored, uncertain")):
        st = hybrid[key] or {}
        print(f"{label} forecast error: {st.get('count', 0)} segments, mean "
              f"{_fmt(st.get('mean'))} Å, p95 {_fmt(st.get('p95'))} Å, max {_fmt(st.get('max'))} Å")
    st = hybrid.get("check_force_error_eV_A") or {}
    print(f"single-point checks: {st.get('count', 0)} frames, force error mean "
          f"{_fmt(st.get('mean'))} eV/Å, p95 {_fmt(st.get('p95'))} eV/Å, max "
          f"{_fmt(st.get('max'))} eV/Å; {hybrid.get('ml_checked_segments', 0)} ML segments "
          "checked and kept")
    rejected = hybrid['rejected_forecasts']
    print("rejected forecasts: " + (", ".join(f"{k}: {v}" for k, v in rejected.items()) or "none"))
    t_full, t_hyb = full_a["mean_temperature_K"], hybrid["mean_temperature_K"]
    t_fulls = [summaries[name]["mean_temperature_K"] for name in fulls]
    print(f"mean temperature: hybrid {t_hyb:.1f} K, full A {t_full:.1f} K "
          f"({t_hyb / t_full - 1:+.1%}), full runs {min(t_fulls):.1f}-{max(t_fulls):.1f} K, "
          f"target {hybrid['target_temperature_K']:g} K\n")

    if not scored:
        print(f"(no distribution scores: {args.ps:g} ps is shorter than the longest VACF lag, "
              f"{max(VACF_LAGS_FS):g} fs)\n")
    elif len(fulls) > 3:
        print_leave_one_out(comparisons, list(fulls))
    else:
        print_scores(comparisons)
    pairs = sorted({k.removeprefix("gr_js_bits_") for s in comparisons.values() for k in s
                    if k.startswith("gr_js_bits_")})
    if pairs and len(fulls) <= 3:  # a periodic system: partial g(r) under the minimum image
        print("\n| comparison | " + " | ".join(f"g(r) {p} JS (bits) | g(r) {p} RMS"
                                            for p in pairs) + " |")
        print("|---|" + "---|---|" * len(pairs))
        for name, s in comparisons.items():
            print(f"| {name} | " + " | ".join(
                f"{s[f'gr_js_bits_{p}']:.2e} | {s[f'gr_rms_{p}']:.3f}" for p in pairs) + " |")
    temps = {k: kinetic_temperature(t) for k, t in traj.items()}
    print("\nkinetic temperature of the fine trajectories (internal degrees of freedom, as "
          "the summaries): "
          + ", ".join(f"{k} {v:.1f} K" for k, v in temps.items()))

    gaps = {k: f"{largest_gap(t):.2f}".replace("inf", "beyond reach") for k, t in traj.items()}
    print("largest gap between groups of atoms (Å, every 10 fs; a molecule leaving a cluster "
          "widens it): " + ", ".join(f"{k} {v}" for k, v in gaps.items()))
    first = next(iter(traj.values()))
    if (not any(_periodic(t) for t in traj.values())
            and molecules(Atoms(numbers=first.numbers, positions=first.positions[0])) > 1):
        sizes = {k: cluster_size(t) for k, t in traj.items()}
        print("radius of gyration, mean / largest mean over 250 fs (Å, every 10 fs; a cluster "
              "loosened as a whole grows it): "
              + ", ".join(f"{k} {mean:.3f} / {most:.2f}" for k, (mean, most) in sizes.items()))

    curve = learning_curve(args.out / "hybrid-a" / "timeline.tsv", args.bin_calls)
    print("\n| expensive calls spent | mean shadow error (Å) | mean monitored error (Å) | "
          "checks | mean check force error (eV/Å) | ML segments made |")
    print("|---|---|---|---|---|---|")
    for row in curve:
        print(f"| {row['calls']} | {_fmt(row['shadow'])} | {_fmt(row['monitor'])} | "
              f"{row['checks']} | {_fmt(row['check'])} | {row['ml_segments']} |")
    if args.plot:
        plot_learning_curve(args.out / "hybrid-a" / "timeline.tsv", hybrid, args.plot)
        print(f"\nlearning curve: {args.plot}")
    (args.out / "scores.json").write_text(json.dumps(
        {"summaries": summaries, "comparisons": comparisons, "fine_temperatures": temps,
         "learning_curve": curve}, indent=1))


if __name__ == "__main__":
    stoppable_script(main, "stopped; the same command with --resume continues")
