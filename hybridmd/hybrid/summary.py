"""The end-of-run summary of `hybridmd run`: ``summary.json`` and the lines printed for it."""

from __future__ import annotations

from typing import Any

import numpy as np

from hybridmd.config import RunConfig
from hybridmd.hybrid.dataset import SOURCES
from hybridmd.hybrid.loop import HybridLoop
from hybridmd.trajectory import degrees_of_freedom_label


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values)
    return {"count": len(a), "mean": float(a.mean()), "p95": float(np.quantile(a, 0.95)),
            "max": float(a.max())}


def build_summary(loop: HybridLoop, cfg: RunConfig, directory: str, wall_s: float,
                  fine_frames: int) -> dict[str, Any]:
    """What the run made and spent: segments, expensive calls by purpose, errors, learning."""
    c = loop.stats
    segments = c.sim_segments + c.ml_segments
    summary = {
        "directory": directory, "segments": segments, "stride": loop.n,
        "segment_fs": loop.segment_fs, "simulated_segments": c.sim_segments,
        "ml_segments": c.ml_segments, "ml_verified_segments": c.ml_verified,
        "ml_checked_segments": c.ml_checked,
        "ml_fraction": c.ml_segments / segments if segments else 0.0,
        "rollbacks": c.rollbacks, "discarded_ml_segments": c.discarded_segments,
        "rejected_forecasts": dict(c.rejected),
        "force_calls": loop.ledger.summary(segments * loop.n + 1),
        # the cost of the run's trajectory, to set beside its measured errors
        "calls_per_ps": (loop.ledger.total / (segments * loop.segment_fs / 1000)
                         if segments else None),
        "monitor_workers": cfg.hybrid.monitor.workers,
        "shadow_error_A": _stats(c.shadow_errors),
        "monitor_error_A": _stats(c.monitor_errors),
        "uncertain_monitor_error_A": _stats(c.uncertain_monitor_errors),
        "check_force_error_eV_A": _stats(c.check_errors),
        "check_energy_error_eV_atom": _stats(c.check_energy_errors),
        "mean_temperature_K": float(np.mean(c.temperatures)) if c.temperatures else None,
        "target_temperature_K": cfg.dynamics.temperature_K,
        # what the temperatures are counted over: 3N-6 for a molecule (3N-3 periodic, 3N
        # with Langevin), as md.log and analyze count them
        "temperature_dof": loop.ndof, "atoms": len(loop.numbers),
        "fine_frames": fine_frames, "wall_time_s": wall_s,
        "learning": None,
    }
    maker = loop.predictor
    if maker is not None and maker.learns:
        model, dataset = maker.model, maker.dataset
        summary["learning"] = {
            "version": None if model is None else model.version,
            "frames": len(dataset),
            "frames_by_source": {s: dataset.count(s) for s in SOURCES},
            "fitted_to": None if model is None else len(model.trained),
            "validation_force_mae_eV_A": None if model is None else model.validation_force_mae,
            "learner_s": maker.learner.fit_seconds, "waited_s": maker.learner.wait_seconds,
            "ml_first_at_call": c.first_ml_calls, "learned_from": maker.learned_from,
        }
    return summary


def format_summary(s: dict[str, Any]) -> str:
    """A short human-readable account of a hybrid run's summary dictionary."""
    calls = s["force_calls"]
    monitors = ("monitored by the driver" if s.get("monitor_workers") == 0
                else "monitored")
    lines = [
        f"hybrid run in {s['directory']}: {s['segments']} segments of {s['segment_fs']:g} fs "
        f"({s['fine_frames']} fine frames), {s['wall_time_s']:.1f} s",
        f"  segments: {s['simulated_segments']} simulated, {s['ml_segments']} ML "
        f"({s['ml_fraction']:.0%}; {s['ml_verified_segments']} of them {monitors}"
        + (f", {s['ml_checked_segments']} checked" if s.get("ml_checked_segments") else "")
        + f"), {s['rollbacks']} rollbacks ({s['discarded_ml_segments']} ML segments "
        "discarded)",
        f"  expensive calls: {calls['simulation']} simulation + {calls['ml_segment_ends']} ML "
        f"segment ends + {calls['monitors']} monitors + {calls.get('checks', 0)} checks + "
        f"{calls['training']} training = "
        f"{calls['total']}, against {calls['full_simulation']} for the full simulation "
        f"(saved {calls['saved_fraction']:.1%}"
        + (f"; {s['calls_per_ps']:.0f} calls per ps)" if s.get("calls_per_ps") else ")"),
    ]
    learning = s.get("learning")
    if learning:
        by = learning["frames_by_source"]
        total = learning["frames"]
        earlier = by.get("earlier run", 0) + by.get("earlier check", 0)
        # a warm start's frames are part of the total: say both parts, so none adds them up
        labeled = (f"{total} labeled frames ({total - earlier} by this run, {earlier} from "
                   f"{learning['learned_from']['path']})" if earlier
                   else f"{total} frames labeled")
        first = learning["ml_first_at_call"]
        lines.append(
            f"  learned force field: version {learning['version']}, {labeled}, "
            f"{learning['fitted_to']} fitted to; learner "
            f"{learning['learner_s']:.0f} s, the driver waited {learning['waited_s']:.0f} s; "
            + ("ML mode first held after " + f"{first} expensive calls" if first is not None
               else "ML mode never held"))
    for key, label in (("shadow_error_A", "shadow forecast error"),
                       ("monitor_error_A", "monitored forecast error (random sample)"),
                       ("uncertain_monitor_error_A", "monitored forecast error (uncertain)")):
        st = s.get(key)
        if st:
            lines.append(f"  {label}: mean {st['mean']:.3g} Å, p95 {st['p95']:.3g} Å, max "
                         f"{st['max']:.3g} Å over {st['count']} segments")
    st = s.get("check_force_error_eV_A")
    if st:
        lines.append(f"  single-point checks: force error mean {st['mean']:.3g} eV/Å, p95 "
                     f"{st['p95']:.3g} eV/Å, max {st['max']:.3g} eV/Å over {st['count']} frames")
    st = s.get("check_energy_error_eV_atom")
    if st:
        lines.append(f"  single-point checks: energy error mean {st['mean']:.3g} eV/atom, p95 "
                     f"{st['p95']:.3g}, max {st['max']:.3g} over {st['count']} frames")
    if s["rejected_forecasts"]:
        rejected = ", ".join(f"{k}: {v}" for k, v in s["rejected_forecasts"].items())
        lines.append(f"  rejected forecasts: {rejected}")
    if s["mean_temperature_K"] is not None:
        over = (f"; {degrees_of_freedom_label(s['temperature_dof'], s['atoms'])}"
                if s.get("temperature_dof") else "")
        lines.append(f"  mean temperature {s['mean_temperature_K']:.1f} K "
                     f"(target {s['target_temperature_K']:g} K{over})")
    return "\n".join(lines)
