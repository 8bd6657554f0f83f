"""The end-of-run summary of `hybridmd run`, as the lines printed to the terminal."""

from __future__ import annotations

from typing import Any


def format_summary(s: dict[str, Any]) -> str:
    """A short human-readable account of a hybrid run's summary dictionary."""
    calls = s["force_calls"]
    lines = [
        f"hybrid run in {s['directory']}: {s['segments']} segments of {s['segment_fs']:g} fs "
        f"({s['fine_frames']} fine frames), {s['wall_time_s']:.1f} s",
        f"  segments: {s['simulated_segments']} simulated, {s['ml_segments']} ML "
        f"({s['ml_fraction']:.0%}; {s['ml_verified_segments']} of them monitored), "
        f"{s['rollbacks']} rollbacks ({s['discarded_ml_segments']} ML segments discarded)",
        f"  force calls: {calls['driver']} driver + {calls['monitors']} monitors = "
        f"{calls['total']}, against {calls['full_simulation']} for the full simulation "
        f"(saved {calls['saved_driver']:.1%} in the driver, {calls['saved_total']:.1%} in all)",
    ]
    for key, label in (("shadow_error_A", "shadow forecast error"),
                       ("monitor_error_A", "monitored forecast error")):
        st = s.get(key)
        if st:
            lines.append(f"  {label}: mean {st['mean']:.3g} Å, p95 {st['p95']:.3g} Å, max "
                         f"{st['max']:.3g} Å over {st['count']} segments")
    if s["rejected_forecasts"]:
        rejected = ", ".join(f"{k}: {v}" for k, v in s["rejected_forecasts"].items())
        lines.append(f"  rejected forecasts: {rejected}")
    if s["mean_temperature_K"] is not None:
        lines.append(f"  mean temperature {s['mean_temperature_K']:.1f} K "
                     f"(target {s['target_temperature_K']:g} K)")
    return "\n".join(lines)
