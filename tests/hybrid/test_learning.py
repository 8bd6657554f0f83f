"""`forecaster: learn` on real ethanol: the shipped sGDML model is the expensive calculator,
the force field is learned from the run's own frames by a real sGDML fit, in a background
learner process (or thread, where a test injects a failure)."""

from __future__ import annotations

import copy
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from hybridmd.config import ConfigError, RunConfig, parse_config
from hybridmd.hybrid.dataset import ExpensiveFrames
from hybridmd.hybrid.force_field import FitSettings, fit_force_field
from hybridmd.hybrid.learned_file import load_learned
from hybridmd.hybrid.learner import FitFailure, Learner, LearnerError
from hybridmd.hybrid.session import HybridRun

from counting_calculators import CountingSGDML

#: small fits (40 frames, well under a second) and loose tolerances, so that a few hundred fs
#: of ethanol go through every stage: simulate, fit, shadow, ML, monitors, refits
LEARN_INPUT = {
    "system": {"molecule": "ethanol"},
    "calculator": {"type": "sgdml", "model": "ethanol"},
    "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "duration_fs": 400,
                 "temperature_K": 300, "tau_fs": 100, "seed": 5},
    "hybrid": {"stride": 20, "interpolator": "learn", "forecaster": "learn",
               "transport": "thread",
               "learn": {"first_fit_frames": 60, "refit_frames": 80, "lag_segments": 1,
                         "max_frames": 40},
               "switch": {"tolerance_A": 0.3, "disagreement_A": 0.3, "verified_segments": 2,
                          "max_ml_segments": 6},
               "monitor": {"workers": 0, "fraction": 0.3, "uncertain_fraction": 0.2,
                           "lag_segments": 2}},
    "output": {"checkpoint_interval_s": 0},
}


def learn_input(out: Path, transport: str = "process", **hybrid) -> dict:
    data = copy.deepcopy(LEARN_INPUT)
    data["hybrid"]["learn"]["transport"] = transport
    for key, value in hybrid.items():
        if isinstance(value, dict):
            data["hybrid"].setdefault(key, {}).update(value)
        else:
            data["hybrid"][key] = value
    data["output"]["directory"] = str(out)
    return data


def make_run(out: Path, transport: str = "process", **hybrid) -> HybridRun:
    return HybridRun(parse_config(learn_input(out, transport, **hybrid), RunConfig, "t.yaml"))


def timeline(out: Path) -> list[dict[str, str]]:
    lines = (out / "timeline.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


def decisions(out: Path) -> str:
    """The timeline: every decision, with no wall-clock figure in it."""
    return (out / "timeline.tsv").read_text()


def positions(out: Path, name: str = "coarse.traj") -> np.ndarray:
    return np.array([a.positions for a in read(out / name, ":")])


def interrupted_at(run: HybridRun, index: int) -> HybridRun:
    """``run``, which sends itself SIGINT (as Ctrl-C would) once it reaches coarse frame index."""
    def interrupt() -> None:
        if run.loop.current.index == index:
            os.kill(os.getpid(), signal.SIGINT)

    run.loop.attach(interrupt)
    return run


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory):
    """A learning run with the learner in its own process."""
    out = tmp_path_factory.mktemp("learn") / "run"
    return out, make_run(out).run(progress=False)


def test_a_run_learns_its_force_field_and_uses_it(learned_run):
    out, result = learned_run
    s = result.summary
    learning = s["learning"]
    assert learning["version"] >= 3
    assert s["ml_segments"] > 0 and s["simulated_segments"] > 0
    assert s["segments"] == 40
    rows = timeline(out)
    learns = [r for r in rows if r["event"] == "learn"]
    assert len(learns) == learning["version"]
    assert any(r["event"] == "monitor" for r in rows)
    # every expensive call labeled exactly one frame, and all of them were kept
    calls = s["force_calls"]
    assert learning["frames"] == calls["total"]
    assert learning["frames_by_source"]["simulation"] == calls["simulation"]
    assert learning["frames_by_source"]["monitor"] == calls["monitors"]
    assert calls["ml_segment_ends"] == 0 and calls["training"] == 0
    assert learning["ml_first_at_call"] is not None
    # ML segments carry the learned force field's own fine frames
    fine = read(out / "fine.traj", ":")
    assert len(fine) == 801
    methods = {a.info["method"] for a in fine}
    assert "learned force field" in methods and "simulation" in methods
    coarse = read(out / "coarse.traj", ":")
    sources = {a.info["origin"]: a.info["energy_source"] for a in coarse[1:]}
    assert sources == {"sim": "calculator", "ml": "learned force field"}


def test_every_fine_frame_of_a_learning_run_has_its_energy_marked_by_source(learned_run):
    """With `interpolator: learn` every fine frame was computed: each has energy and forces,
    the calculator's in simulated segments, the model's (so marked) in ML segments, and the
    segment ends' are coarse.traj's; the reader reads E(t) whole."""
    from hybridmd.readers import read_trajectory

    out, _ = learned_run
    fine, coarse = read(out / "fine.traj", ":"), read(out / "coarse.traj", ":")
    assert all(a.calc is not None for a in fine)
    for a in fine:
        if a.info["method"] != "coarse":
            expected = "learned force field" if a.info["origin"] == "ml" else "calculator"
            assert a.info["energy_source"] == expected
    ends = [a for a in fine if "coarse_index" in a.info]
    assert [a.info["energy_source"] for a in ends] == [a.info["energy_source"] for a in coarse]
    assert [a.get_potential_energy() for a in ends] == [a.get_potential_energy()
                                                        for a in coarse]
    traj = read_trajectory(out / "fine.traj")
    assert traj.energies is not None and traj.forces is not None and len(traj.energies) == 801


def test_the_timeline_picture_marks_each_learned_version(learned_run):
    from hybridmd.hybrid.timeline_plot import learned_versions, load

    out, result = learned_run
    assert (out / "timeline.png").is_file()
    versions = learned_versions(load(out))
    assert [v for _, v in versions] == list(range(1, result.summary["learning"]["version"] + 1))
    assert [t for t, _ in versions] == sorted(t for t, _ in versions)


def test_the_run_leaves_its_force_field_for_the_next_run(learned_run, tmp_path):
    out, result = learned_run
    model, dataset, data = load_learned(out / "forecaster.pt")
    assert model.version == result.summary["learning"]["version"]
    assert len(dataset) == result.summary["learning"]["frames"]
    assert data["numbers"] == [6, 6, 8, 1, 1, 1, 1, 1, 1]
    assert data["stride"] == 20 and data["dt_fs"] == 0.5
    assert data["provenance"]["calculator"]["type"] == "sgdml"
    frames = np.load(out / "frames.npz")
    assert frames["R"].shape == (len(dataset), 9, 3)
    # the force field is an ordinary sGDML model file
    from ase import Atoms

    from hybridmd.calculators import build_calculator
    from hybridmd.config import SGDMLConfig

    atoms = Atoms(numbers=data["numbers"], positions=frames["R"][-1])
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model=str(out / "force-field.npz")),
                                  atoms)
    e, f = model.force_fields[0](frames["R"][-1:])
    assert np.allclose(atoms.get_forces(), f[0]) and np.isclose(atoms.get_potential_energy(), e[0])
    # a warm start goes on learning from those frames
    warm = make_run(tmp_path / "warm", forecaster=str(out / "forecaster.pt"))
    again = warm.run(progress=False)
    learning = again.summary["learning"]
    assert learning["frames_by_source"]["earlier run"] == len(dataset)
    assert learning["learned_from"]["path"] == str(out / "forecaster.pt")
    assert learning["ml_first_at_call"] < result.summary["learning"]["ml_first_at_call"]
    # the summary line says the total and both of its parts, which add up to it
    from hybridmd.hybrid.summary import format_summary

    mine = learning["frames"] - len(dataset)
    assert mine == again.summary["force_calls"]["total"] > 0
    assert (f"{learning['frames']} labeled frames ({mine} by this run, {len(dataset)} from "
            f"{out / 'forecaster.pt'})") in format_summary(again.summary)


def test_a_warm_start_from_another_calculator_is_refused(learned_run, tmp_path):
    from hybridmd.errors import SimulationError

    out, _ = learned_run
    data = learn_input(tmp_path / "other", forecaster=str(out / "forecaster.pt"))
    data["calculator"]["use_torch"] = True
    with pytest.raises(SimulationError, match="another calculator"):
        HybridRun(parse_config(data, RunConfig, "t.yaml"))


def test_same_seed_same_trajectory_with_the_learner(learned_run, tmp_path):
    out, result = learned_run
    again = make_run(tmp_path / "again").run(progress=False)
    assert np.array_equal(positions(out, "fine.traj"), positions(tmp_path / "again", "fine.traj"))
    assert again.summary["force_calls"] == result.summary["force_calls"]
    assert decisions(out) == decisions(tmp_path / "again")


def test_killed_and_resumed_run_is_the_same_run(learned_run, tmp_path):
    out, result = learned_run
    part = tmp_path / "part"
    first = interrupted_at(make_run(part), 23).run(progress=False)
    assert first.interrupted
    resumed = make_run(part).run(resume=True, progress=False)
    assert np.array_equal(positions(out), positions(part))
    assert np.array_equal(positions(out, "fine.traj"), positions(part, "fine.traj"))
    assert np.array_equal(*(np.array([a.get_potential_energy() for a in read(d / "fine.traj",
                                                                              ":")])
                            for d in (out, part)))
    for key in ("force_calls", "segments", "ml_segments", "rollbacks", "fine_frames"):
        assert resumed.summary[key] == result.summary[key], key
    assert resumed.summary["learning"]["frames"] == result.summary["learning"]["frames"]
    assert decisions(out) == decisions(part)


def test_a_version_is_taken_up_between_segments_only(learned_run):
    """Every ML segment says which version made it, and that version is the one taken up
    last before it: versions change at segment boundaries, never inside a segment."""
    out, _ = learned_run
    current = None
    for row in timeline(out):
        if row["event"] == "learn":
            current = row["version"]
        elif row["event"] in ("forecast", "simulate", "reject") and current is not None:
            assert row["version"] == current, row


def test_a_learner_that_raises_ends_the_run_and_resume_continues(learned_run, tmp_path,
                                                                 monkeypatch):
    import hybridmd.hybrid.learner as learner

    out, result = learned_run
    real = learner.run_fit

    def failing(*args):
        if args[6] == 3:  # the third version
            raise RuntimeError("no memory for the kernel")
        return real(*args)

    monkeypatch.setattr(learner, "run_fit", failing)
    part = tmp_path / "failed"
    with pytest.raises(LearnerError, match="version 3: RuntimeError: no memory for the kernel"
                                           ".*--resume continues"):
        make_run(part, transport="thread").run(progress=False)
    assert (part / "checkpoint.json").exists()
    assert (part / "timeline.png").is_file() and not (part / "summary.json").exists()
    committed = len(read(part / "coarse.traj", ":"))
    assert committed > 1
    monkeypatch.setattr(learner, "run_fit", real)
    resumed = make_run(part, transport="thread").run(resume=True, progress=False)
    assert resumed.summary["force_calls"] == result.summary["force_calls"]
    assert np.array_equal(positions(out), positions(part))


def test_a_learner_process_that_dies_ends_the_run_and_resume_continues(learned_run, tmp_path):
    out, result = learned_run
    part = tmp_path / "died"
    run = make_run(part)

    def kill_the_learner() -> None:
        learner = run.loop.predictor.learner
        if learner.pending is not None and learner.pending.version == 2:
            for pid in learner.process_ids():
                os.kill(pid, signal.SIGKILL)

    run.loop.attach(kill_the_learner)
    with pytest.raises(LearnerError, match="learner process died"):
        run.run(progress=False)
    resumed = make_run(part).run(resume=True, progress=False)
    assert resumed.summary["force_calls"] == result.summary["force_calls"]
    assert np.array_equal(positions(out), positions(part))


def test_a_request_to_a_learner_that_died_since_its_last_fit_is_learner_error(broken_pool):
    frames = ExpensiveFrames(2)
    frames.add(np.zeros((3, 2, 3)), np.zeros((3, 2, 3)), np.zeros(3), "simulation")
    fit = partial(fit_force_field, settings=FitSettings(max_frames=3))
    learner = Learner(fit, 1, np.array([1, 1]), first_fit_frames=3,
                      refit_frames=3, lag_segments=1, executor=broken_pool, owns_executor=False)
    with pytest.raises(LearnerError, match="learner process died"):
        learner.request(0, frames)


@pytest.mark.parametrize("forecaster", ["learn", "ethanol-forecaster-10fs"])
def test_every_expensive_call_is_counted_once(tmp_path, forecaster):
    """total = the sum of its parts = the calculator's own count (driver and monitors)."""
    data = learn_input(tmp_path / "count", transport="thread")
    if forecaster != "learn":  # a shipped network forecaster: ML segment ends cost a call
        data["hybrid"].update(forecaster=forecaster, interpolator="quintic",
                              switch={"verified_segments": 2, "max_ml_segments": 8})
        del data["hybrid"]["learn"]
    else:  # single-point checks too
        data["hybrid"]["check"] = {"fraction": 0.4, "force_tolerance_eV_A": 0.5}
    data["calculator"] = {"type": "ase", "import_path": "counting_calculators:CountingSGDML"}
    CountingSGDML.calls = 0
    result = HybridRun(parse_config(data, RunConfig, "t.yaml")).run(progress=False)
    calls = result.summary["force_calls"]
    assert calls["total"] == (calls["simulation"] + calls["ml_segment_ends"] + calls["monitors"]
                              + calls["checks"] + calls["training"])
    assert calls["total"] == CountingSGDML.calls
    assert calls["monitors"] > 0 and result.summary["ml_segments"] > 0
    assert (calls["ml_segment_ends"] > 0) == (forecaster != "learn")
    assert (calls["checks"] > 0) == (forecaster == "learn")
    assert json.loads((tmp_path / "count" / "summary.json").read_text())["force_calls"] == calls


def test_learning_inputs_are_checked(tmp_path):
    data = learn_input(tmp_path, forecaster="ethanol-forecaster-10fs")
    with pytest.raises(ConfigError, match="interpolator: learn .* needs forecaster: learn"):
        parse_config(data, RunConfig, "x.yaml")
    data = learn_input(tmp_path, interpolator="quintic", forecaster="ethanol-forecaster-10fs")
    with pytest.raises(ConfigError, match="hybrid.learn: configures the learner"):
        parse_config(data, RunConfig, "x.yaml")
    data = learn_input(tmp_path, fine_tune={"every_segments": 5})
    with pytest.raises(ConfigError, match="fine_tune: tunes a forecaster network"):
        parse_config(data, RunConfig, "x.yaml")


def _slow_fit(positions, forces, energies, numbers, version, release):
    release.wait(60)
    return FitFailure(version, "released")


def test_a_stop_signal_ends_the_wait_for_a_late_learner():
    """A fit can take minutes (MACE): Ctrl-C while the loop waits for it stops the run now,
    at its last checkpoint, instead of after the fit."""
    import threading

    from hybridmd.signals import stop_on_signals

    release = threading.Event()
    frames = ExpensiveFrames(2)
    frames.add(np.zeros((3, 2, 3)), np.zeros((3, 2, 3)), np.zeros(3), "simulation")
    with ThreadPoolExecutor(1) as pool:
        learner = Learner(partial(_slow_fit, release=release), 1, np.array([1, 1]),
                          first_fit_frames=3, refit_frames=3, lag_segments=0, executor=pool,
                          owns_executor=False)
        learner.request(0, frames)
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            with stop_on_signals(), pytest.raises(KeyboardInterrupt):
                learner.take_up()
            assert not release.is_set()  # it stopped waiting before the fit ended
        finally:
            release.set()


def _recording_fit(positions, forces, energies, numbers, version, start_from="none"):
    return FitFailure(version, f"from {start_from}")


@pytest.mark.parametrize("continues", [False, True])
def test_a_continuing_learner_trains_on_from_the_version_in_use(continues):
    """MACE's learner (``continues``) hands each fit the version in use, also when a resume
    asks again for the fit that was pending; sGDML's fits start afresh (no ``start_from``)."""
    frames = ExpensiveFrames(2)
    frames.add(np.zeros((3, 2, 3)), np.zeros((3, 2, 3)), np.zeros(3), "simulation")
    learner = Learner(_recording_fit, 1, np.array([1, 1]), first_fit_frames=3, refit_frames=3,
                      lag_segments=0, executor=ThreadPoolExecutor(1), continues=continues)
    learner.request(0, frames, in_use="version 4")
    expected = "from version 4" if continues else "from none"
    assert learner.take_up().message == expected
    learner.request(1, frames, in_use="version 4")
    state = learner.state_dict()
    learner.close()
    again = Learner(_recording_fit, 1, np.array([1, 1]), first_fit_frames=3, refit_frames=3,
                    lag_segments=0, executor=ThreadPoolExecutor(1), continues=continues)
    again.load_state_dict(state, frames, in_use="version 4")
    assert again.take_up().message == expected
    again.close()


@pytest.mark.parametrize(("growth", "expected"), [(0.0, list(range(200, 2100, 200))),
                                                  (0.5, [200, 400, 600, 900, 1350, 2025])])
def test_refit_growth_spaces_fits_by_a_share_of_the_frames(growth, expected):
    """``refit_growth`` 0.5: a fit when the frames grew by half since the last one, but never
    sooner than ``refit_frames``; the schedule follows from the frames alone (a resume asks
    at the same points)."""
    learner = Learner(_recording_fit, 1, np.array([1, 1]), first_fit_frames=200,
                      refit_frames=200, lag_segments=0, executor=ThreadPoolExecutor(1),
                      refit_growth=growth)
    asked = []
    for n in range(1, 2100):
        if learner.request_due(n):
            asked.append(n)
            learner.pending, learner.last_request_frames = None, n  # as a request leaves it
    learner.close()
    assert asked == expected
