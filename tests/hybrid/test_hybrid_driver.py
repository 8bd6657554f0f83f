"""The hybrid loop on real ethanol with the shipped sGDML model, forecaster and interpolator."""

from __future__ import annotations

import json
import os
import pickle
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

from hybridmd.config import ConfigError, RunConfig, parse_config
from hybridmd.errors import SimulationError
from hybridmd.hybrid.session import HybridRun
from hybridmd.streaming import WorkerDiedError

FORECASTER = "ethanol-forecaster-10fs"


def run_input(out: Path, **hybrid) -> dict:
    return {
        "system": {"molecule": "ethanol"},
        "calculator": {"type": "sgdml", "model": "ethanol"},
        "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "duration_fs": 300,
                     "temperature_K": 300, "tau_fs": 100, "seed": 3},
        "hybrid": {"stride": 20, "interpolator": "quintic", "forecaster": FORECASTER,
                   "transport": "thread",
                   "switch": {"verified_segments": 2, "max_ml_segments": 8},
                   "monitor": {"workers": 0, "fraction": 0.5, "lag_segments": 2},
                   **hybrid},
        "output": {"directory": str(out), "checkpoint_interval_s": 0},
    }


def make_run(out: Path, **hybrid) -> HybridRun:
    return HybridRun(parse_config(run_input(out, **hybrid), RunConfig, "test.yaml"))


def timeline(out: Path) -> list[dict[str, str]]:
    lines = (out / "timeline.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


def interrupted_at(run: HybridRun, index: int) -> HybridRun:
    """``run``, which sends itself SIGINT (as Ctrl-C would) once it reaches coarse frame index."""
    def interrupt() -> None:
        if run.loop.current.index == index:
            os.kill(os.getpid(), signal.SIGINT)

    run.loop.attach(interrupt)
    return run


class OffsetForecaster:
    """The real forecaster, good in the shadow of simulated segments, shifted in ML mode."""

    def __init__(self, real, run: HybridRun, shift_A: float):
        self.real, self.run, self.shift = real, run, shift_A
        self.horizon_fs = real.horizon_fs

    def predict(self, r, v, a):
        r1, v1 = self.real.predict(r, v, a)
        if self.run.loop.switch.mode == "ml":
            r1 = r1.copy()
            r1[..., 0, :] += self.shift
        return r1, v1

    def disagreement(self, *args) -> float:
        return 0.0


@pytest.fixture(scope="module")
def hybrid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hybrid") / "run"
    result = make_run(out).run(progress=False)
    return out, result


def test_run_writes_fine_coarse_timeline_and_summary(hybrid_run):
    out, result = hybrid_run
    s = result.summary
    assert s["segments"] == 30 and s["fine_frames"] == 601
    fine, coarse = read(out / "fine.traj", ":"), read(out / "coarse.traj", ":")
    assert len(fine) == 601 and len(coarse) == 31
    assert [a.info["coarse_index"] for a in coarse] == list(range(31))
    times = [a.info["time_fs"] for a in fine]
    assert np.allclose(np.diff(times), 0.5)
    origins = [a.info["origin"] for a in coarse[1:]]
    assert origins.count("ml") == s["ml_segments"] > 0
    assert origins.count("sim") == s["simulated_segments"] > 0
    for a in coarse:
        assert a.info["status"] == ("verified" if a.info["origin"] == "sim"
                                    else a.info["status"])
    rows = timeline(out)
    assert {r["event"] for r in rows} >= {"simulate", "switch", "forecast", "monitor"}
    calls = s["force_calls"]
    assert calls["full_simulation"] == 601
    assert calls["simulation"] + calls["ml_segment_ends"] < calls["full_simulation"]
    assert calls["total"] == sum(calls[k] for k in ("simulation", "ml_segment_ends", "monitors",
                                                    "training"))
    assert int(rows[-1]["force_calls"]) <= calls["total"] - calls["monitors"]


def test_the_summary_says_what_its_temperature_is_counted_over(hybrid_run):
    """Ethanol's 9 atoms, rotation and translation removed: 21 degrees of freedom, said in
    the summary line and kept in summary.json."""
    from hybridmd.hybrid.summary import format_summary

    _, result = hybrid_run
    s = result.summary
    assert s["temperature_dof"] == 21 and s["atoms"] == 9
    assert (f"mean temperature {s['mean_temperature_K']:.1f} K (target 300 K; "
            "3N-6 = 21 degrees of freedom)") in format_summary(s)


def test_the_run_draws_its_timeline_from_what_it_recorded(hybrid_run):
    """timeline.png is written; what it shows (the segments by what made them, the calls
    against the full simulation, the tolerance) is what the timeline and summary hold."""
    from PIL import Image

    from hybridmd.hybrid.timeline_plot import driver_times, load

    out, result = hybrid_run
    s = result.summary
    with Image.open(out / "timeline.png") as image:
        assert image.format == "PNG" and image.size == (900, 1040)
    data = load(out)
    assert sorted(data.final_mode) == list(range(s["segments"]))
    modes = list(data.final_mode.values())
    assert modes.count("ml") == s["ml_segments"] and modes.count("sim") == s["simulated_segments"]
    assert data.discarded == [] and data.tolerance_A == 0.05 and data.segment_fs == 10.0
    assert data.full_simulation_calls(s["segments"] * 10.0) == s["force_calls"]["full_simulation"]
    assert data.summary["force_calls"] == s["force_calls"]
    reached = driver_times(data)
    assert reached == sorted(reached) and reached[-1] == s["segments"] * 10.0
    # temperature and potential energy at every segment end, counted as the summary counts
    ends, coarse = data.ends, read(out / "coarse.traj", ":")
    assert ends.ndof == s["temperature_dof"] == 21 and ends.target_K == 300
    assert np.array_equal(ends.time_fs, [a.info["time_fs"] for a in coarse])
    assert np.array_equal(ends.energy_eV, [a.get_potential_energy() for a in coarse])
    assert ends.exact.all()  # a network forecaster's segment ends are the calculator's
    ase_3n = np.array([a.get_temperature() for a in coarse])  # ASE: over 3N = 27
    assert np.allclose(ends.temperature_K, ase_3n * 27 / 21)


def test_reading_the_fine_trajectory_says_where_its_energies_are(hybrid_run, caplog):
    """fine.traj has energy and forces on the computed frames only: said as such, not
    warned."""
    from hybridmd.readers import read_trajectory

    out, _ = hybrid_run
    fine = read(out / "fine.traj", ":")
    computed = sum(a.calc is not None for a in fine)
    with caplog.at_level("INFO", logger="hybridmd.readers"):
        traj = read_trajectory(out / "fine.traj")
    assert len(traj) == 601 and traj.energies is None
    assert (f"energy is stored at the {computed} frames that were computed (segment ends, "
            f"simulated segments, the learned force field's), not at the {601 - computed} "
            "that quintic Hermite filled in") in caplog.text
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_fine_frames_carry_energy_and_forces_where_they_were_computed(hybrid_run):
    """Every frame of a simulated segment has the calculator's energy and forces (so E(t) shows
    the NVE segment conserving its total energy); an interpolated frame has none."""
    out, _ = hybrid_run
    fine, coarse = read(out / "fine.traj", ":"), read(out / "coarse.traj", ":")
    run = make_run(out.parent / "unused-energies")
    checked = 0
    for k in range(1, len(coarse)):
        frames = fine[(k - 1) * 20 + 1:k * 20]
        if coarse[k].info["origin"] != "sim":
            assert all(a.calc is None and "energy_source" not in a.info for a in frames)
            continue
        start = coarse[k - 1]
        seg = run.loop.simulator.segment(start.positions, start.get_momenta())
        assert [a.info["energy_source"] for a in frames] == ["calculator"] * 19
        assert np.array_equal([a.get_potential_energy() for a in frames], seg.energies[1:-1])
        assert np.array_equal([a.get_forces() for a in frames], seg.all_forces[1:-1])
        total = [a.get_potential_energy() + a.get_kinetic_energy() for a in frames]
        assert np.ptp(total) < 0.01  # eV: velocity Verlet at 0.5 fs conserves it
        checked += 1
    assert checked >= 3
    ends = [a for a in fine if "coarse_index" in a.info]
    assert [a.info["energy_source"] for a in ends] == ["calculator"] * 31
    assert [a.get_potential_energy() for a in ends] == [a.get_potential_energy()
                                                        for a in coarse]


def test_simulated_segments_are_the_reference_simulation(hybrid_run):
    """Fine frames of simulated segments equal a fresh simulation from the segment start."""
    out, _ = hybrid_run
    fine, coarse = read(out / "fine.traj", ":"), read(out / "coarse.traj", ":")
    run = make_run(out.parent / "unused")
    checked = 0
    for k in range(1, len(coarse)):
        if coarse[k].info["origin"] != "sim":
            continue
        start = coarse[k - 1]
        seg = run.loop.simulator.segment(start.positions, start.get_momenta())
        got = np.array([a.positions for a in fine[(k - 1) * 20:k * 20 + 1]])
        # the written end frame carries the departure momenta; positions are the simulation's
        assert np.abs(got - seg.positions).max() < 1e-12
        checked += 1
    assert checked >= 3


def test_same_seed_same_result(hybrid_run, tmp_path):
    out, result = hybrid_run
    again = make_run(tmp_path / "again").run(progress=False)
    a, b = read(out / "fine.traj", ":"), read(tmp_path / "again" / "fine.traj", ":")
    assert np.array_equal(np.array([x.positions for x in a]), np.array([x.positions for x in b]))
    assert again.summary["force_calls"] == result.summary["force_calls"]


def test_bad_forecaster_is_caught_by_the_monitor_and_rolled_back(tmp_path):
    out = tmp_path / "bad"
    run = make_run(out, switch={"verified_segments": 2, "max_ml_segments": 8,
                                "disagreement_A": 10, "energy_jump_eV": 10},
                   monitor={"workers": 0, "fraction": 1.0, "lag_segments": 2})
    real = run.loop.predictor.forecaster
    run.loop.predictor.forecaster = OffsetForecaster(real, run, shift_A=0.1)
    result = run.run(progress=False)
    assert result.summary["rollbacks"] >= 1
    assert result.summary["ml_segments"] == 0  # nothing the monitor rejected was committed
    rows = timeline(out)
    assert any(r["event"] == "rollback" for r in rows)
    assert any(r["event"] == "monitor" and r["reason"] == "beyond tolerance" for r in rows)
    coarse = read(out / "coarse.traj", ":")
    assert all(a.info["origin"] == "sim" for a in coarse)
    assert len(coarse) == 31
    # the picture shows every forecast as thrown away, and the run as simulated throughout
    from hybridmd.hybrid.timeline_plot import load

    data = load(out)
    assert set(data.discarded) == {int(r["segment"]) for r in rows if r["event"] == "forecast"}
    assert set(data.final_mode.values()) == {"sim"} and (out / "timeline.png").is_file()


def test_killed_worker_stops_the_run_with_frames_on_disk(tmp_path):
    out = tmp_path / "killed"
    run = make_run(out, transport="process")
    def kill_at_10() -> None:
        if run.loop.current.index == 10:
            os.kill(run.stream.worker_pid, signal.SIGKILL)

    run.loop.attach(kill_at_10)
    with pytest.raises(WorkerDiedError, match="killed by signal 9"):
        run.run(progress=False)
    assert len(read(out / "coarse.traj", ":")) >= 10
    assert (out / "checkpoint.json").exists()


def test_interrupted_run_resumes_to_the_same_trajectory(hybrid_run, tmp_path):
    out, _ = hybrid_run
    part = tmp_path / "part"
    run = interrupted_at(make_run(part), 17)
    assert run.run(progress=False).interrupted
    from hybridmd.hybrid.timeline_plot import load

    assert (part / "timeline.png").is_file()  # drawn at the stop too, up to where it got
    assert max(load(part).final_mode) < 29
    before = json.loads((part / "checkpoint.json").read_text())["wall_s"]
    resumed = make_run(part).run(resume=True, progress=False)
    assert not resumed.interrupted
    assert resumed.summary["wall_time_s"] > before > 0  # the first part's time is counted
    a, b = read(out / "fine.traj", ":"), read(part / "fine.traj", ":")
    assert len(a) == len(b)
    assert np.array_equal(np.array([x.positions for x in a]), np.array([x.positions for x in b]))
    # the energies of the computed frames too, on the same frames
    assert [x.calc is None for x in a] == [x.calc is None for x in b]
    assert [x.get_potential_energy() for x in a if x.calc] == [
        x.get_potential_energy() for x in b if x.calc]
    assert (out / "timeline.tsv").read_text() == (part / "timeline.tsv").read_text()


class _Killed(BaseException):
    """A kill -9 at one point of the checkpoint: nothing written after it."""


def test_a_kill_between_the_saved_state_and_its_checkpoint_resumes_the_same_run(
        hybrid_run, tmp_path, monkeypatch):
    """resume-state.pkl is written before checkpoint.json: a run killed between the two
    leaves a new saved state beside the old checkpoint. The resume pairs the checkpoint with
    the saved state written with it (kept as resume-state.previous.pkl) and ends as the run
    that went through."""
    from hybridmd.hybrid import run_state

    out, _ = hybrid_run
    part = tmp_path / "part"
    real, calls = run_state.write_json_atomic, []

    def dies_at_the_sixth(path, data):  # and writes nothing after: the process is gone
        calls.append(path)
        if len(calls) >= 6:
            raise _Killed
        real(path, data)

    monkeypatch.setattr(run_state, "write_json_atomic", dies_at_the_sixth)
    with pytest.raises(_Killed):
        make_run(part).run(progress=False)
    monkeypatch.undo()
    saved, previous = (pickle.loads((part / name).read_bytes())["generation"]
                       for name in ("resume-state.pkl", "resume-state.previous.pkl"))
    checkpoint = json.loads((part / "checkpoint.json").read_text())["generation"]
    assert saved != checkpoint == previous  # the torn pair the kill left
    make_run(part).run(resume=True, progress=False)
    a, b = read(out / "fine.traj", ":"), read(part / "fine.traj", ":")
    assert len(a) == len(b)
    assert np.array_equal(np.array([x.positions for x in a]), np.array([x.positions for x in b]))
    assert (out / "timeline.tsv").read_text() == (part / "timeline.tsv").read_text()


def test_a_resume_at_the_end_of_an_ml_run_makes_the_same_choices(hybrid_run, tmp_path):
    """The last ML segment of a run of max_ml_segments is committed in the step that made it,
    after the monitor choice drew for it: a checkpoint there must hold the generators as they
    are then, not as they were when the frame was made, or the resumed run monitors other
    segments than the uninterrupted one."""
    out, result = hybrid_run
    ends = [int(r["segment"]) for r in timeline(out)
            if r["event"] == "switch" and r["reason"] == "longest ML run"]
    assert ends
    part = tmp_path / "part"
    assert interrupted_at(make_run(part), ends[0]).run(progress=False).interrupted
    resumed = make_run(part).run(resume=True, progress=False)
    assert (out / "timeline.tsv").read_text() == (part / "timeline.tsv").read_text()
    for key in ("force_calls", "monitor_error_A", "ml_verified_segments", "fine_frames"):
        assert resumed.summary[key] == result.summary[key], key


def test_monitor_processes_give_the_same_result_as_inline(hybrid_run, tmp_path):
    out, result = hybrid_run
    par = make_run(tmp_path / "par", monitor={"workers": 1, "fraction": 0.5,
                                              "lag_segments": 2}).run(progress=False)
    assert par.summary["force_calls"] == result.summary["force_calls"]
    a, b = read(out / "coarse.traj", ":"), read(tmp_path / "par" / "coarse.traj", ":")
    assert np.array_equal(np.array([x.positions for x in a]), np.array([x.positions for x in b]))


def test_existing_output_needs_resume_or_overwrite(hybrid_run):
    out, _ = hybrid_run
    with pytest.raises(SimulationError, match="--resume.*--overwrite"):
        make_run(out).run(progress=False)


def test_input_errors_name_the_key(tmp_path):
    data = run_input(tmp_path)
    data["hybrid"]["forecaster"] = "no-such-forecaster"
    data["hybrid"]["switch"]["tolerance"] = 0.1
    with pytest.raises(ConfigError) as err:
        parse_config(data, RunConfig, "x.yaml")
    text = str(err.value)
    assert "hybrid.forecaster" in text and "no-such-forecaster" in text
    assert "did you mean 'tolerance_A'" in text
    data = run_input(tmp_path)
    data["dynamics"]["duration_fs"] = 305
    with pytest.raises(ConfigError, match="whole number of segments"):
        parse_config(data, RunConfig, "x.yaml")


def test_forecaster_for_another_stride_is_refused(tmp_path):
    with pytest.raises(SimulationError, match="forecasts 20 steps"):
        make_run(tmp_path, stride=10)


def test_analyze_a_run_folder_against_a_reference_simulation(hybrid_run, tmp_path, capsys):
    from hybridmd.cli import main

    out, _ = hybrid_run
    ref = tmp_path / "ref.yaml"
    ref.write_text(yaml.safe_dump({
        "system": {"molecule": "ethanol"}, "calculator": {"type": "sgdml", "model": "ethanol"},
        "dynamics": {"timestep_fs": 0.5, "duration_fs": 300, "seed": 4},
        "output": {"directory": str(tmp_path / "ref")}}))
    assert main(["-q", "simulate", str(ref)]) == 0
    report = tmp_path / "report"
    assert main(["-q", "analyze", "--reference", str(tmp_path / "ref"), "--prediction", str(out),
                 "--out", str(report)]) == 0
    scores = json.loads((report / "scores.json").read_text())
    assert 0 < scores["vdos_overlap"] <= 1
    assert any("is a hybrid run" in note for note in scores["notes"])
    text = (report / "report.md").read_text()
    assert "is a hybrid run" in text
    # the run's timeline picture is part of the report; the simulate folder has none
    assert scores["figures"]["timeline_prediction"] == "timeline-prediction.png"
    assert "timeline_reference" not in scores["figures"]
    assert "![timeline of the prediction](timeline-prediction.png)" in text
    assert (report / "timeline-prediction.png").is_file()
    # another run's segments, not interpolated windows; its ML segments known one by one
    from hybridmd.analysis.sources import read_source

    assert scores["windows"] == "segments"
    origins = [a.info["origin"] == "ml" for a in read(out / "coarse.traj", ":")[1:]]
    assert read_source(out)[0].metadata["ml_segments"] == origins and any(origins)


def test_online_fine_tuning_learns_and_resumes_exactly(tmp_path):
    tune = {"every_segments": 4, "epochs": 5, "learning_rate": 1e-4, "batch_size": 4}
    full = make_run(tmp_path / "full", fine_tune=tune).run(progress=False)
    rows = [r for r in timeline(tmp_path / "full") if r["event"] == "fine-tune"]
    assert rows
    for row in rows:  # "<n> simulated segments; loss <before> -> <after>"
        before, after = (float(x) for x in row["reason"].split("loss ")[1].split(" -> "))
        assert after < before
    part = tmp_path / "part"
    run = interrupted_at(make_run(part, fine_tune=tune), 19)
    assert run.run(progress=False).interrupted
    resumed = make_run(part, fine_tune=tune).run(resume=True, progress=False)
    assert resumed.summary["force_calls"] == full.summary["force_calls"]
    a, b = (read(d / "coarse.traj", ":") for d in (tmp_path / "full", part))
    assert np.array_equal(np.array([x.positions for x in a]), np.array([x.positions for x in b]))


def test_slow_worker_holds_the_driver_back_by_the_queue(tmp_path, monkeypatch):
    """A worker slower than the driver: the driver runs ahead by at most the queue (plus the
    frames the worker holds as context), and nothing is lost."""
    import hybridmd.hybrid.session as session
    from hybridmd.streaming.stream import _count_frames

    real = session.StreamingInterpolation

    def slow(*args, **kwargs):
        return real(*args, **{**kwargs, "interval_delay_s": 0.05})

    monkeypatch.setattr(session, "StreamingInterpolation", slow)
    out = tmp_path / "slow"
    run = make_run(out, queue_size=2)
    ahead = []

    def watch(frame) -> None:
        if frame.index % 3 == 0 and frame.index > 0:
            written = (_count_frames(out / "fine.traj") or 0) // 20
            ahead.append(run.stream.submitted - written)

    run.loop.on_commit(watch)
    result = run.run(progress=False)
    assert result.summary["fine_frames"] == 601
    assert max(ahead) <= 2 + 1 + 2 + 1  # queue + in the worker's hands + context C + this one
    assert max(ahead) >= 2  # the worker did fall behind


def test_replicas_of_a_hybrid_run(tmp_path, capsys):
    from hybridmd.cli import main

    data = run_input(tmp_path / "reps")
    data["dynamics"]["duration_fs"] = 100
    data["replicas"] = 2
    path = tmp_path / "reps.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["-q", "run", str(path)]) == 0
    assert "replica 1:" in capsys.readouterr().out
    a, b = (read(tmp_path / "reps" / f"replica-{k}" / "coarse.traj", ":") for k in (0, 1))
    assert len(a) == len(b) == 11
    assert not np.allclose(a[-1].positions, b[-1].positions)  # seeds 3 and 4
