"""Single-point checks of learned ML segments (`hybrid.check`), on real ethanol: the shipped
sGDML model is the expensive calculator and the learned force field a real sGDML fit."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read
from test_learning import decisions, interrupted_at, learn_input, make_run, positions, timeline

from hybridmd.calculators import build_calculator
from hybridmd.config import (
    CheckConfig,
    ConfigError,
    RunConfig,
    SGDMLConfig,
    SystemConfig,
    parse_config,
)
from hybridmd.hybrid.checks import PointChecks
from hybridmd.hybrid.dataset import SOURCES, pick_frames
from hybridmd.hybrid.files import TIMELINE_COLUMNS, Timeline
from hybridmd.hybrid.learned_file import load_learned
from hybridmd.hybrid.ledger import CallLedger
from hybridmd.hybrid.segments import CallCounter
from hybridmd.hybrid.session import HybridRun
from hybridmd.hybrid.timeline_plot import read_timeline
from hybridmd.structures import build_structure

#: a check at every other ML segment, monitors as in the learning tests
CHECKS = {"fraction": 0.5, "uncertain_fraction": 0.2, "force_tolerance_eV_A": 0.6}


@pytest.fixture(scope="module")
def checked_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("checks") / "run"
    return out, make_run(out, transport="thread", check=CHECKS).run(progress=False)


def test_checks_are_counted_by_purpose_and_learned_from(checked_run):
    out, result = checked_run
    s = result.summary
    calls, rows = s["force_calls"], timeline(out)
    checked = [r for r in rows if r["check_error_eV_A"]]
    assert calls["checks"] == len(checked) == s["check_force_error_eV_A"]["count"] > 0
    assert s["learning"]["frames_by_source"]["check"] == calls["checks"]
    assert s["learning"]["frames"] == calls["total"]
    assert calls["total"] == sum(calls[k] for k in ("simulation", "ml_segment_ends",
                                                    "monitors", "checks", "training"))
    # a check and a monitor look at the same segment only where it is doubtful
    for r in checked:
        assert "monitored" not in r["reason"] or "checked (doubtful)" in r["reason"], r


def test_a_passed_check_marks_the_frame_and_gives_it_the_calculators_forces(checked_run):
    out, result = checked_run
    coarse = read(out / "coarse.traj", ":")
    checked = [a for a in coarse if a.info["status"] == "checked"]
    assert len(checked) == result.summary["ml_checked_segments"] > 0
    reference = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), coarse[0])
    for atoms in checked:
        assert atoms.info["origin"] == "ml"
        assert atoms.info["energy_source"] == "calculator"
        probe = atoms.copy()
        probe.calc = reference
        assert np.allclose(atoms.get_forces(), probe.get_forces(), atol=1e-6)
    passed = [r for r in timeline(out) if r["event"] == "forecast" and r["check_error_eV_A"]]
    assert all(float(r["check_error_eV_A"]) <= CHECKS["force_tolerance_eV_A"] for r in passed)
    # each checked frame ends a segment whose check passed (a monitor that also looked at a
    # doubtful one makes it verified instead; a rollback may discard one)
    ends = {int(r["segment"]) + 1 for r in passed}
    index = [k for k, a in enumerate(coarse) if a.info["status"] == "checked"]
    assert set(index) <= ends


def test_a_failed_check_rejects_the_forecast_and_the_segment_is_simulated(tmp_path):
    out = tmp_path / "strict"
    result = make_run(out, transport="thread",
                      check={"fraction": 1.0, "force_tolerance_eV_A": 1e-6}).run(progress=False)
    s, rows = result.summary, timeline(out)
    failed = [k for k, r in enumerate(rows) if r["event"] == "reject"
              and r["reason"] == "force check"]
    assert failed and s["rejected_forecasts"]["force check"] == len(failed)
    for k in failed:  # the same segment simulated next (an earlier one after a rollback)
        assert float(rows[k]["check_error_eV_A"]) > 1e-6
        j, after = next((j, r) for j, r in enumerate(rows[k + 1:], k + 1)
                        if r["event"] in ("simulate", "forecast"))
        rolled_back = any(r["event"] == "rollback" for r in rows[k:j])
        assert after["event"] == "simulate"
        assert (int(after["segment"]) < int(rows[k]["segment"]) if rolled_back
                else after["segment"] == rows[k]["segment"])
    assert s["ml_checked_segments"] == 0
    statuses = {a.info["status"] for a in read(out / "coarse.traj", ":")}
    assert "checked" not in statuses
    # the rejected forecasts' frames still taught the learner, their calls counted
    assert s["force_calls"]["checks"] == s["learning"]["frames_by_source"]["check"]
    assert s["force_calls"]["checks"] >= len(failed)


@pytest.mark.parametrize("refit", [True, False])
def test_after_a_failed_check_the_learner_refits_and_ml_resumes_under_checks(tmp_path, refit):
    """refit_on_failure: after a failed check's segment is simulated, the next starts with a
    version fitted to its frames, in ML mode, checked; off: only a shadow forecast brings ML
    back. Once ML first holds no shadow forecast agrees here (its tolerance is made tiny), so
    the refit is the only way back."""
    out = tmp_path / "run"
    check = {"halve_after": 3, "fraction": 0.1, "force_tolerance_eV_A": 0.2,
             "refit_on_failure": refit}
    run = make_run(out, transport="thread", check=check)

    def no_shadow_agrees_after_ml_first_holds() -> None:
        switch = run.loop.switch
        if switch.mode == "ml" and switch.cfg.tolerance_A > 1e-9:
            switch.cfg = switch.cfg.model_copy(update={"tolerance_A": 1e-9})

    run.loop.attach(no_shadow_agrees_after_ml_first_holds)
    s = run.run(progress=False).summary
    rows = timeline(out)
    failed = [k for k, r in enumerate(rows) if r["reason"] == "force check"]
    assert failed
    after_first = [r for r in rows[failed[0]:] if r["event"] in ("forecast", "reject")]
    refits = [r for r in rows if r["reason"].endswith("(after a failed check)")]
    if not refit:
        assert not refits and len(after_first) == 1  # never ML again
        return
    for k in failed:
        segment = int(rows[k]["segment"])
        later = [r for r in rows[k + 1:] if r["event"] != "monitor"]
        if any(r["event"] == "rollback" for r in later[:3]) or not later[1:]:
            continue
        simulated, *after = later
        assert simulated["event"] == "simulate" and int(simulated["segment"]) == segment
        learned = [r for r in after[:3] if r["event"] == "learn"]
        assert learned[-1]["reason"].endswith("(after a failed check)")
        assert int(learned[-1]["version"]) > int(rows[k]["version"])
        assert any(r["event"] == "switch" and r["reason"] == "refitted after a failed check"
                   for r in after[:4])
        made = next(r for r in after if r["event"] in ("forecast", "reject", "simulate"))
        assert int(made["segment"]) == segment + 1 and made["event"] != "simulate"
        # every segment is looked at again: checked, or re-simulated by a monitor
        assert made["event"] == "reject" or made["reason"].startswith(("checked", "monitored"))
    assert len(after_first) > len(failed) and s["force_calls"]["checks"] > len(failed)


def test_with_no_shadow_forecast_needed_ml_starts_with_the_first_version(tmp_path):
    """verified_segments: 0: the first learned version is taken up and the next segment is
    already ML, checked; before it every segment is simulated."""
    out = tmp_path / "run"
    s = make_run(out, transport="thread", check={"halve_after": 3, "fraction": 0.1},
                 switch={"verified_segments": 0}).run(progress=False).summary
    rows = timeline(out)
    first = next(k for k, r in enumerate(rows) if r["event"] == "learn")
    assert rows[first + 1]["event"] == "switch"
    assert rows[first + 1]["reason"] == "version 1: the checks guard it"
    assert all(r["event"] == "simulate" for r in rows[:first])
    made = next(r for r in rows[first + 2:] if r["event"] in ("forecast", "reject", "simulate"))
    assert made["event"] != "simulate" and made["segment"] == rows[first]["segment"]
    assert s["learning"]["ml_first_at_call"] == int(rows[first]["force_calls"])


def test_a_forecast_hotter_than_the_safety_limit_is_rejected_not_fatal(tmp_path):
    """A learned segment whose end would be beyond safety.max_temperature_K is the ML's error:
    rejected ("too hot") and simulated, and the run goes on."""
    out = tmp_path / "run"
    data = learn_input(out, transport="thread", check={"halve_after": 3, "fraction": 0.1},
                       switch={"energy_jump_eV": 1e6})
    run = HybridRun(parse_config(data, RunConfig, "t.yaml"))
    forecast = run.loop.predictor.forecast

    def falls_into_a_hole(start, min_distance):
        made = forecast(start, min_distance)
        if not isinstance(made, str) and start.index % 3 == 0:
            made.energy -= 10.0  # eV: the segment's end 10 eV below its start
        return made

    run.loop.predictor.forecast = falls_into_a_hole
    s = run.run(progress=False).summary
    hot = [r for r in timeline(out) if r["reason"].startswith("too hot (")]
    assert hot and s["rejected_forecasts"]["too hot"] == len(hot)
    assert s["mean_temperature_K"] < 600  # the hot ends were never taken


def test_one_seed_one_run_and_resume_continues_it_with_the_checks(checked_run, tmp_path):
    out, result = checked_run
    again = tmp_path / "again"
    assert make_run(again, transport="thread", check=CHECKS).run(progress=False)
    assert decisions(again) == decisions(out)
    part = tmp_path / "part"
    first = interrupted_at(make_run(part, transport="thread", check=CHECKS), 23).run(
        progress=False)
    assert first.interrupted
    resumed = make_run(part, transport="thread", check=CHECKS).run(resume=True,
                                                                   progress=False)
    assert np.array_equal(positions(out), positions(part))
    assert np.array_equal(positions(out, "fine.traj"), positions(part, "fine.traj"))
    assert resumed.summary["force_calls"] == result.summary["force_calls"]
    assert resumed.summary["ml_checked_segments"] == result.summary["ml_checked_segments"]
    assert decisions(out) == decisions(part)


def test_resume_after_a_failed_check_continues_the_refit_exactly(tmp_path):
    """The shipped route (ML from the first version, a refit after each failed check): a run
    stopped right after a failed check's segment was simulated (the refit still due) and
    resumed is the run that was never stopped."""
    check = {"halve_after": 3, "fraction": 0.1, "force_tolerance_eV_A": 0.3,
             "refit_on_failure": True}
    switch = {"verified_segments": 0}
    whole = tmp_path / "whole"
    make_run(whole, transport="thread", check=check, switch=switch).run(progress=False)
    failed = next(int(r["segment"]) for r in timeline(whole) if r["reason"] == "force check")
    part = tmp_path / "part"
    run = interrupted_at(make_run(part, transport="thread", check=check, switch=switch),
                         failed + 1)
    refit_due = []
    run.loop.attach(lambda: refit_due.append(run.loop.refit_due))
    assert run.run(progress=False).interrupted and refit_due[-1]
    make_run(part, transport="thread", check=check, switch=switch).run(resume=True,
                                                                       progress=False)
    assert np.array_equal(positions(whole), positions(part))
    assert np.array_equal(positions(whole, "fine.traj"), positions(part, "fine.traj"))
    assert decisions(whole) == decisions(part)


def test_checks_without_a_learned_force_field_are_refused(tmp_path):
    data = learn_input(tmp_path, interpolator="quintic", forecaster="ethanol-forecaster-10fs",
                       check={"fraction": 0.1})
    del data["hybrid"]["learn"]
    with pytest.raises(ConfigError, match="hybrid.check: single-point checks compare"):
        parse_config(data, RunConfig, "x.yaml")


def test_a_timeline_from_before_the_check_column_resumes_in_todays_columns(tmp_path):
    """A run folder written before `check_error_eV_A` existed: its kept lines get the column
    empty, and the file reads as a timeline."""
    old = [c for c in TIMELINE_COLUMNS if c != "check_error_eV_A"]
    path = tmp_path / "timeline.tsv"
    row = {"segment": "3", "time_fs": "30", "mode": "sim", "event": "simulate",
           "force_calls": "61", "monitor_calls": "0"}
    path.write_text("\t".join(old) + "\n" + "\t".join(row.get(c, "") for c in old) + "\n"
                    + "\t".join(row.get(c, "") for c in old) + "\n")
    timeline_file = Timeline(path, keep_lines=1)
    timeline_file.write(segment=4, time_fs=40.0, mode="ml", event="forecast",
                        check_error_eV_A=0.25, force_calls=61, monitor_calls=0)
    rows = read_timeline(path)
    assert len(rows) == 2
    assert rows[0]["segment"] == 3 and rows[0]["check_error_eV_A"] is None
    assert rows[1]["check_error_eV_A"] == 0.25


@pytest.fixture(scope="module")
def ethanol():
    atoms = build_structure(SystemConfig(molecule="ethanol"))
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), atoms)
    return atoms


def _checks(atoms, **cfg):
    ledger = CallLedger(CallCounter.of(atoms.calc))
    return PointChecks(CheckConfig(**cfg), atoms, ledger, np.random.default_rng(0)), ledger


def test_the_check_share_halves_with_passes_and_is_whole_again_after_a_failure(ethanol):
    checks, ledger = _checks(ethanol, fraction=0.1, halve_after=2, force_tolerance_eV_A=0.5)
    r0 = ethanol.positions.copy()
    twin = ethanol.copy()  # the same model, as the "learned" one
    twin.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), twin)

    def check(k: int, off: float) -> bool:
        """A check at a new frame of learned forces ``off`` from the true ones."""
        twin.positions = r0 + 0.001 * k
        return checks.check(twin.positions, twin.get_forces() + off).ok

    assert checks.rate == 1.0
    rates = []
    for k in range(4):
        assert check(k, 0.1)
        rates.append(checks.rate)
    assert rates == pytest.approx([2 ** -0.5, 0.5, 2 ** -1.5, 0.25])
    assert not check(4, 1.0)
    assert checks.rate == 1.0
    for k in range(5, 45):
        assert check(k, 0.0)
    assert checks.rate == pytest.approx(0.1)  # halved 20 times, but never below `fraction`
    assert ledger.calls["checks"] == 45


def test_an_energy_check_compares_energies_after_the_models_zero(ethanol):
    """Forces right, energy off: passes without an energy tolerance; with one, the error is
    the model's energy minus the calculator's less the model's own zero, per atom, and
    beyond the tolerance the check fails as an energy check (and checks everything again)."""
    twin = ethanol.copy()
    twin.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), twin)
    forces, energy, n = twin.get_forces(), twin.get_potential_energy(), len(twin)
    off = CheckConfig(fraction=0.1, halve_after=2, force_tolerance_eV_A=0.5)
    checks, _ = _checks(ethanol, **off.model_dump())
    result = checks.check(twin.positions, forces, energy + 0.3, energy_zero=0.1)
    assert result.ok and result.energy_error is None
    checks, _ = _checks(ethanol, **{**off.model_dump(), "energy_tolerance_eV_atom": 0.01})
    passed = checks.check(twin.positions, forces, energy + 0.1 + 0.005 * n, energy_zero=0.1)
    assert passed.ok and passed.failed is None
    assert passed.energy_error == pytest.approx(0.005)
    assert checks.rate < 1.0
    failed = checks.check(twin.positions, forces, energy + 0.1 - 0.02 * n, energy_zero=0.1)
    assert not failed.ok and failed.force_ok and failed.failed == "energy check"
    assert failed.energy_error == pytest.approx(0.02)
    assert checks.rate == 1.0
    # a model without an energy zero (no validation frames): energies are not compared
    assert checks.check(twin.positions, forces, energy + 5.0, energy_zero=None).ok
    wrong = checks.check(twin.positions, forces + 1.0, energy, energy_zero=0.0)
    assert wrong.failed == "force check"


def test_a_failed_energy_check_rejects_the_forecast(tmp_path):
    """In a run: a tolerance no learned model meets rejects forecasts as energy checks,
    counted by name, and the segments are simulated."""
    out = tmp_path / "energy"
    result = make_run(out, transport="thread",
                      check={"fraction": 1.0, "energy_tolerance_eV_atom": 1e-9}).run(
                          progress=False)
    rows = timeline(out)
    failed = [r for r in rows if r["event"] == "reject" and r["reason"].startswith("energy check")]
    assert failed and result.summary["rejected_forecasts"]["energy check"] == len(failed)
    assert result.summary["ml_checked_segments"] == 0
    energy = result.summary["check_energy_error_eV_atom"]
    assert energy["count"] == result.summary["force_calls"]["checks"] and energy["max"] > 1e-9


def test_checks_that_are_off_draw_nothing(ethanol):
    checks, _ = _checks(ethanol)
    before = checks.choice.rng.bit_generator.state
    assert checks.choose(0.3) is None
    assert checks.choice.rng.bit_generator.state == before


class _EverySegment:
    """A test's monitor choice: every ML segment re-simulated, a random share of them marked
    as the audit ("random"), the rest as "all"."""

    def __init__(self, fraction: float, rng: np.random.Generator):
        self.fraction, self.rng = fraction, rng

    def choose(self, uncertainty: float) -> str:
        return "random" if self.rng.random() < self.fraction else "all"

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def test_the_random_audit_estimates_the_error_of_every_ml_segment(tmp_path):
    """With checks on, every ML segment re-simulated: the random audit's mean end error
    agrees with the mean over all of them within two of its standard errors."""
    data = learn_input(tmp_path / "all", transport="thread", check=CHECKS)
    data["dynamics"]["duration_fs"] = 2000
    data["hybrid"]["switch"]["max_ml_segments"] = 20
    run = HybridRun(parse_config(data, RunConfig, "t.yaml"))
    run.loop.choice = _EverySegment(0.3, np.random.default_rng(11))
    s = run.run(progress=False).summary
    audit = s["monitor_error_A"]
    everything = (audit["count"], audit["mean"]), (s["uncertain_monitor_error_A"]["count"],
                                                   s["uncertain_monitor_error_A"]["mean"])
    n_all = sum(n for n, _ in everything)
    mean_all = sum(n * m for n, m in everything) / n_all
    assert audit["count"] >= 20 and n_all >= 60
    errors = [float(r["monitor_error_A"]) for r in timeline(tmp_path / "all")
              if r["event"] == "monitor" and r["reason"] in ("ok", "beyond tolerance")]
    assert len(errors) == audit["count"]
    standard_error = np.std(errors, ddof=1) / np.sqrt(len(errors))
    assert abs(audit["mean"] - mean_all) <= 2 * standard_error


def test_a_fit_takes_the_checked_frames_first():
    preferred = np.zeros(1000, bool)
    preferred[[5, 400, 401, 402, 990]] = True
    picked = pick_frames(1000, 100, preferred)
    assert len(picked) == 100 and len(set(picked)) == 100 and (np.diff(picked) > 0).all()
    assert set(np.flatnonzero(preferred)) <= set(picked)
    many = np.zeros(1000, bool)
    many[500:] = True  # more checked frames than half a fit: at least half of it are those
    picked = pick_frames(1000, 100, many)
    assert many[picked].sum() >= 50 and (~many[picked]).sum() >= 20
    assert np.array_equal(pick_frames(1000, 100, None),
                          np.linspace(0, 1000, 100, endpoint=False).astype(int))


def test_the_learned_versions_are_fitted_to_the_checked_frames(checked_run):
    """In the run, every version fitted after checks labeled frames has all of them (fewer
    than half its frames) among those it was fitted to."""
    out, _ = checked_run
    model, _, data = load_learned(out / "forecaster.pt")
    checked = np.flatnonzero(np.asarray(data["frames"]["sources"])[:model.frames]
                             == SOURCES.index("check"))
    assert 0 < len(checked) <= len(model.trained) // 2
    assert set(checked) <= set(model.trained)


def test_a_warm_start_keeps_an_earlier_runs_checks_apart_from_its_dynamics(checked_run):
    """Loaded for a warm start, the earlier run's frames keep their order, its checks counted as
    an earlier run's checks (not dynamics: the reach guard leaves them out, fits prefer them)."""
    out, _ = checked_run
    _, dataset, data = load_learned(out / "forecaster.pt")
    saved = np.asarray(data["frames"]["sources"])
    loaded = dataset.arrays_sources()
    assert np.array_equal(dataset.arrays()[0], data["frames"]["positions"])
    assert np.array_equal(loaded == SOURCES.index("earlier check"), saved == SOURCES.index("check"))
    assert np.array_equal(loaded == SOURCES.index("earlier run"), saved != SOURCES.index("check"))
    assert 0 < dataset.count("earlier check") < len(dataset)
