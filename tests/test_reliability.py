"""The fault-injection suite: bad input everywhere, kills, signals, dead workers and monitors.

What it keeps true (docs/reliability.md):
- every bad input of the table in tests/bad_inputs.py, over all seven sub-commands, ends with
  exit code 2, one message that names the key, flag or file, no traceback, and nothing
  written (in-process for the whole table, as real processes for one case per sub-command);
- a full disk ([Errno 28]) is one line that names the path written and how to go on;
- a `hybridmd run` killed with SIGKILL at random points leaves no process behind (its
  interpolator worker, monitor and multiprocessing's resource tracker end within a bounded
  time), and resuming it gives the uninterrupted run's trajectories frame for frame; the same
  for `simulate` with an interpolator worker, and for MPI jobs;
- Ctrl-C to the whole process group exits 130, SIGTERM 143, each at a clean point from which
  --resume continues;
- a dead interpolator worker or monitor stops the run with one line that says so and that
  --resume continues, and --resume then finishes the run exactly.

Real processes throughout: ethanol with the shipped sGDML model and forecaster.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import psutil
import pytest
import yaml

from hybridmd.cli import main

import faults
from bad_input_classes import CLASSES
from bad_inputs import CASES, Workspace
from faults import RUN

#: seeds the moments at which runs are killed (fixed: the same points every time)
KILL_SEED = 15
MPIEXEC = Path(sys.executable).parent / "mpiexec"



# ----------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("bad-inputs"))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _main(argv: list[str]) -> int:
    try:
        return main(["-q", *argv])
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


def test_the_table_covers_every_sub_command() -> None:
    commands = {case.id.split("/")[0] for case in CASES}
    assert commands == {"simulate", "run", "serve", "train", "interpolate", "evaluate",
                        "analyze"}
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)
    for cls in CLASSES:  # issue 28's classes, each over several sub-commands
        assert len({case.id.split("/")[0] for case in CASES if case.cls == cls}) >= 4, cls


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_is_one_clear_error(case, workspace: Workspace, capsys) -> None:
    argv = case.argv(workspace)
    before = _snapshot(workspace.out)
    code = _main(argv)
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert code == 2, text
    assert "Traceback" not in text
    for words in case.says:
        assert words in captured.err, f"{words!r} not in: {captured.err}"
    assert len(re.findall(r"(?m)^(?:hybridmd \w+: )?error:", captured.err)) == 1, captured.err
    assert _snapshot(workspace.out) == before, "a bad input must not write anything"


#: one case per sub-command, run as a real `hybridmd` process
IN_A_PROCESS = ("simulate/structure-truncated-traj", "run/forecaster-text-file",
                "serve/typo-in-dynamics", "train/wrong-spacing",
                "interpolate/model-not-a-checkpoint", "evaluate/plot-into-missing-folder",
                "analyze/prediction-corrupt")


def test_bad_input_in_real_processes(workspace: Workspace, tmp_path: Path) -> None:
    """One case per sub-command, each a `hybridmd` process of its own (all started at once)."""
    cases = [c for c in CASES if c.id in IN_A_PROCESS]
    assert len(cases) == len(IN_A_PROCESS)
    commands = [faults.start(case.argv(workspace), tmp_path / f"{k}.log", cwd=workspace.root)
                for k, case in enumerate(cases)]
    for case, command in zip(cases, commands, strict=True):
        code, text = command.wait(120), command.output()
        assert code == 2, f"{case.id}: {text}"
        assert "Traceback" not in text, f"{case.id}: {text}"
        for words in case.says:
            assert words in text, f"{case.id}: {words!r} not in {text}"
        assert len(faults.error_lines(text)) == 1, f"{case.id}: {text}"


def test_a_full_disk_names_the_file(workspace: Workspace, capsys) -> None:
    """/dev/full: every write ends with [Errno 28], as on a full disk."""
    code = _main(["evaluate", "--reference", workspace.path("fine.traj"), "--stride", "20",
                  "--json", "/dev/full"])
    err = capsys.readouterr().err
    assert code == 1, err
    (line,) = faults.error_lines(err)
    assert "no space left" in line and "/dev/full" in line and "free some space" in line
    assert "Traceback" not in err


def test_a_full_disk_in_a_run_says_resume(workspace: Workspace, capsys, monkeypatch) -> None:
    from hybridmd.simulate import Simulation

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Simulation, "run", full)
    code = _main(["simulate", workspace.sim("disk-full")])
    err = capsys.readouterr().err
    assert code == 1, err
    (line,) = faults.error_lines(err)
    assert "no space left" in line and "disk-full" in line and "--resume" in line, line


# ----------------------------------------------------------------------------- processes


def _input(folder: Path, name: str) -> Path:
    """The process tests' run input, writing to ``folder/name``."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**RUN, "output": {**RUN["output"],
                                                      "directory": str(folder / name)}}))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run: what every killed and resumed run must end up with."""
    folder = tmp_path_factory.mktemp("reference")
    done = faults.run(["run", str(_input(folder, "ref"))], cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "ref"


def _assert_same_run(reference: Path, resumed: Path) -> None:
    """No frame lost, duplicated or changed, in the coarse and the fine trajectory; the same
    summary (but for the wall time) and the same timeline, counts included."""
    for name in ("coarse.traj", "fine.traj"):
        assert faults.frames_lost(reference / name, resumed / name) == 0, name
    a, b = (json.loads((d / "summary.json").read_text()) for d in (reference, resumed))
    for s in (a, b):  # wall-clock figures
        del s["wall_time_s"], s["directory"]
        if s["learning"]:
            del s["learning"]["learner_s"], s["learning"]["waited_s"]
    assert a == b
    assert (reference / "timeline.tsv").read_text() == (resumed / "timeline.tsv").read_text()


def _spawned(command: faults.Command) -> list:
    """The command's multiprocessing children (worker, monitors), not the resource tracker."""
    return [p for p in faults.descendants(command.pid) if "spawn_main" in faults.cmdline(p)]


def _worker_pid(command: faults.Command) -> int | None:
    """The interpolator worker: the spawned child that holds fine.traj open (-q prints no
    INFO line that would name it)."""
    for child in _spawned(command):
        try:
            if any(f.path.endswith("fine.traj") for f in child.open_files()):
                return child.pid
        except psutil.Error:  # ended meanwhile
            continue
    return None


def _monitor_running(command: faults.Command) -> bool:
    worker = _worker_pid(command)
    return worker is not None and any(p.pid != worker for p in _spawned(command))


def _assert_nothing_left(tree: list, where: str) -> None:
    left = faults.left_after(tree)
    faults.kill_all(left)
    assert not left, f"{where}: still running {faults.describe(left)}"


def test_kill_9_at_random_points_leaves_no_process_and_loses_no_frame(reference: Path,
                                                                        tmp_path: Path) -> None:
    rng = random.Random(KILL_SEED)
    path, out = _input(tmp_path, "killed"), tmp_path / "killed"
    checkpoint = out / "checkpoint.json"

    def resume_flag() -> str:
        return "--resume" if checkpoint.exists() else "--overwrite"

    #: where each kill happens: a point to reach (None: right after the start), then a delay
    #: (short beside the 2 s the whole run takes, so the kill still finds the point's state)
    coarse_frames = rng.randint(25, 45)
    moments = [
        ("during start-up", None, rng.uniform(0.3, 1.5)),
        ("with a monitor running",
         lambda c: _monitor_running(c) and faults.frames_in(out / "fine.traj") > 0,
         rng.uniform(0.0, 0.2)),
        (f"after a resume, at {coarse_frames} coarse frames",
         lambda c: faults.frames_in(out / "coarse.traj") >= coarse_frames, rng.uniform(0, 0.2)),
    ]
    for k, (where, point, delay) in enumerate(moments):
        command = faults.start(["run", str(path), resume_flag()], tmp_path / f"kill-{k}.log",
                               cwd=tmp_path)
        if point is not None:
            faults.wait_until(lambda c=command, p=point: p(c), command)
            # the point is reached with the worker, the monitor and the resource tracker up
            running = [faults.cmdline(p) for p in faults.descendants(command.pid)]
            assert len(running) >= 3, running
            assert any("resource_tracker" in line for line in running), running
        time.sleep(delay)
        tree = faults.kill(command)
        _assert_nothing_left(tree, f"kill -9 {where}")
    done = faults.run(["run", str(path), resume_flag()], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _assert_same_run(reference, out)


def test_a_second_run_into_a_held_folder_is_refused_and_kill_9_frees_it(tmp_path: Path
                                                                         ) -> None:
    """Issue 28, class 4: while a run writes its folder, a second `run` (another seed,
    --overwrite), a `simulate` and a `run --resume` into it are refused in one line naming
    the first run's pid, and touch none of its files; kill -9 of the first frees the folder
    (the OS drops the lock with the process)."""
    from hybridmd.run_lock import RunLock

    out = tmp_path / "held"
    long = {**RUN, "dynamics": {**RUN["dynamics"], "duration_fs": 20000},
            "output": {**RUN["output"], "directory": str(out)}}
    path, other, simulate = (tmp_path / f"{name}.yaml" for name in ("held", "other", "sim"))
    path.write_text(yaml.safe_dump(long))
    other.write_text(yaml.safe_dump({**long, "dynamics": {**long["dynamics"], "seed": 9}}))
    simulate.write_text(yaml.safe_dump({key: RUN[key] for key in ("system", "calculator")}
                                       | {"dynamics": {"timestep_fs": 0.5, "steps": 10},
                                          "output": {"directory": str(out)}}))
    first = faults.start(["run", str(path)], tmp_path / "first.log", cwd=tmp_path)
    faults.wait_until(lambda: (out / "checkpoint.json").exists()
                      and faults.frames_in(out / "coarse.traj") >= 5, first)
    record = (out / "run.json").read_text()
    frames = faults.positions(out / "coarse.traj")
    for argv in (["run", str(other), "--overwrite"], ["simulate", str(simulate), "--overwrite"],
                 ["run", str(path), "--resume"]):
        second = faults.run(argv, cwd=tmp_path)
        text = second.stdout + second.stderr
        assert second.returncode == 2, text
        assert "Traceback" not in text, text
        (line,) = faults.error_lines(second.stderr)
        assert f"another run (pid {first.pid}) holds the run folder {out}" in line, line
    assert first.proc.poll() is None, first.output()  # the first goes on, its files its own
    assert (out / "run.json").read_text() == record
    assert (faults.positions(out / "coarse.traj")[:len(frames)] == frames).all()
    tree = faults.kill(first)
    _assert_nothing_left(tree, "kill -9 of the first run")
    with RunLock.of_folder(out).claim():
        pass  # free: nobody holds it any more


def test_a_folder_the_run_cannot_write_is_one_input_line(tmp_path: Path, monkeypatch,
                                                         capsys) -> None:
    """A lock file that cannot be made (a read-only or foreign folder; root passes permission
    bits, so the OS's refusal is made here) is exit 2 with the folder and the fix, not the
    generic failure."""
    import hybridmd.run_lock as run_lock

    from bad_inputs import RUN as SHORT

    def refused(self, create: bool) -> None:
        raise PermissionError(13, "Permission denied")

    path = tmp_path / "ro.yaml"
    path.write_text(yaml.safe_dump({**SHORT, "output": {"directory": str(tmp_path / "ro")}}))
    monkeypatch.setattr(run_lock.RunLock, "_take", refused)
    assert main(["-q", "run", str(path)]) == 2
    (line,) = faults.error_lines(capsys.readouterr().err)
    assert f"output.directory: cannot write in {tmp_path / 'ro'} (Permission denied)" in line


def test_resume_before_the_worker_wrote_a_frame(tmp_path: Path) -> None:
    """A run killed after its first checkpoint but before the interpolator worker (still
    starting) wrote anything: --resume makes the fine trajectory from the start."""
    from bad_inputs import RUN as SHORT

    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump({**SHORT, "output": {"directory": str(tmp_path / "short")}}))
    assert main(["-q", "run", str(path)]) == 0
    fine = tmp_path / "short" / "fine.traj"
    expected = faults.positions(fine)
    fine.unlink()
    assert main(["-q", "run", str(path), "--resume"]) == 0
    assert (faults.positions(fine) == expected).all()


def _interrupted_after(run, steps: int):
    """``run``, which sends itself SIGINT (a Ctrl-C) after ``steps`` segments."""
    done = []

    def interrupt() -> None:
        done.append(1)
        if len(done) == steps:
            os.kill(os.getpid(), signal.SIGINT)

    run.loop.attach(interrupt)
    return run


def test_stop_right_after_a_resume(tmp_path: Path) -> None:
    """Ctrl-C in the first segment after a resume (forecasts pending, so no quiet point yet):
    the run stops cleanly, and the next --resume ends as the uninterrupted run."""
    from hybridmd.config import RunConfig, parse_config
    from hybridmd.hybrid.session import HybridRun

    def config(name: str) -> RunConfig:
        return parse_config({**RUN, "dynamics": {**RUN["dynamics"], "duration_fs": 300},
                             "hybrid": {**RUN["hybrid"], "transport": "thread", "monitor": {
                                 "workers": 0, "fraction": 1.0, "lag_segments": 1}},
                             "output": {"directory": str(tmp_path / name),
                                        "checkpoint_interval_s": 0}}, RunConfig, "t.yaml")

    assert _interrupted_after(HybridRun(config("split")), 8).run(progress=False).interrupted
    checkpoint = json.loads((tmp_path / "split" / "checkpoint.json").read_text())
    assert checkpoint["switch"]["mode"] == "ml"
    again = _interrupted_after(HybridRun(config("split")), 1).run(resume=True, progress=False)
    assert again.interrupted
    HybridRun(config("split")).run(resume=True, progress=False)
    HybridRun(config("through")).run(progress=False)
    _assert_same_run(tmp_path / "through", tmp_path / "split")


def test_ctrl_c_and_sigterm_to_the_process_group(reference: Path, tmp_path: Path) -> None:
    """SIGINT to the whole group (a terminal's Ctrl-C) exits 130, SIGTERM 143, both cleanly."""
    path, out = _input(tmp_path, "signalled"), tmp_path / "signalled"
    checkpoint = out / "checkpoint.json"
    flags = [[], ["--resume"]]
    for (signum, code), extra in zip(((signal.SIGINT, 130), (signal.SIGTERM, 143)), flags,
                                     strict=True):
        before = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
        command = faults.start(["run", str(path), *extra], tmp_path / f"{signum}.log",
                               cwd=tmp_path, new_session=True)
        # a monitor at work, and a checkpoint written by this session (a quiet point reached)
        faults.wait_until(lambda c=command, b=before: _monitor_running(c) and checkpoint.exists()
                          and checkpoint.stat().st_mtime_ns != b, command)
        tree = faults.descendants(command.pid)
        faults.signal_group(command, signum)
        assert command.wait(120) == code, command.output()
        text = command.output()
        assert "Traceback" not in text and "--resume" in text, text
        assert not faults.error_lines(text), text
        _assert_nothing_left(tree, signal.Signals(signum).name)
    done = faults.run(["run", str(path), "--resume"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _assert_same_run(reference, out)


@pytest.mark.parametrize("victim", ["worker", "monitor"])
def test_a_dead_child_is_one_line_and_resume_finishes_the_run(victim: str, reference: Path,
                                                              tmp_path: Path) -> None:
    path, out = _input(tmp_path, victim), tmp_path / victim
    command = faults.start(["run", str(path)], tmp_path / "run.log", cwd=tmp_path)
    faults.wait_until(lambda: _monitor_running(command)
                      and faults.frames_in(out / "coarse.traj") >= 10, command)
    worker = _worker_pid(command)
    target = next(p for p in _spawned(command) if (p.pid == worker) == (victim == "worker"))
    tree = faults.descendants(command.pid)
    target.send_signal(signal.SIGKILL)
    assert command.wait(120) == 1, command.output()
    text = command.output()
    assert "Traceback" not in text, text
    (line,) = faults.error_lines(text)
    expected = "interpolator worker died" if victim == "worker" else "monitor process ended"
    assert expected in line and "continue with --resume" in line, line
    _assert_nothing_left(tree, f"after the {victim} died")
    done = faults.run(["run", str(path), "--resume"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _assert_same_run(reference, out)


#: a learning run (forecaster: learn, the learner in its own process): 40 segments
LEARN = {**RUN, "dynamics": {**RUN["dynamics"], "duration_fs": 400, "seed": 5},
         "hybrid": {"stride": 20, "interpolator": "learn", "forecaster": "learn",
                    "transport": "process",
                    "learn": {"first_fit_frames": 60, "refit_frames": 80, "lag_segments": 1,
                              "max_frames": 40},
                    "switch": {"tolerance_A": 0.3, "disagreement_A": 0.3,
                               "verified_segments": 2, "max_ml_segments": 6},
                    "monitor": {"fraction": 0.3, "uncertain_fraction": 0.2, "workers": 1}}}


def test_kill_9_of_a_learning_run_leaves_no_learner_and_resume_is_the_same_run(tmp_path: Path
                                                                                ) -> None:
    """The learner process ends with a killed driver like the worker and the monitor, and
    the resumed run (which asks the learner for the pending fit again) is the uninterrupted
    one: trajectories, summary and timeline."""
    def write(name: str) -> Path:
        return _input_into(tmp_path, LEARN, name)

    done = faults.run(["run", str(write("whole"))], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path, out = write("killed"), tmp_path / "killed"
    command = faults.start(["run", str(path)], tmp_path / "killed.log", cwd=tmp_path)
    # the learner has fitted (a version is in the timeline) and the run goes on
    faults.wait_until(lambda: (out / "timeline.tsv").exists()
                      and "\tlearn\t" in (out / "timeline.tsv").read_text()
                      and faults.frames_in(out / "coarse.traj") >= 15, command)
    tree = faults.kill(command)
    assert len(tree) >= 3, faults.describe(tree)  # worker, monitor or learner, tracker
    _assert_nothing_left(tree, "kill -9 of a learning run")
    resumed = faults.run(["run", str(path), "--resume"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(tmp_path / "whole", out)


def test_kill_9_of_simulate_with_an_interpolator_worker_leaves_no_process(tmp_path: Path
                                                                          ) -> None:
    out = tmp_path / "sim"
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({
        "system": {"molecule": "ethanol"}, "calculator": {"type": "sgdml", "model": "ethanol"},
        "dynamics": {"timestep_fs": 0.5, "steps": 100000, "seed": 1},
        "output": {"directory": str(out), "stride": 20},
        "interpolation": {"interpolator": "quintic", "transport": "process"}}))
    command = faults.start(["simulate", str(path)], tmp_path / "sim.log", cwd=tmp_path)
    faults.wait_until(lambda: faults.frames_in(out / "fine.traj") > 40, command)
    tree = faults.kill(command)
    assert len(tree) >= 2, faults.describe(tree)  # the worker and the resource tracker
    _assert_nothing_left(tree, "kill -9 of simulate")


needs_mpi = pytest.mark.skipif(not (MPIEXEC.exists() and find_spec("mpi4py")),
                               reason=f"needs mpi4py and {MPIEXEC}")


def _input_into(folder: Path, base: dict, name: str) -> Path:
    """``base`` written as folder/NAME.yaml, its output in folder/NAME."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**base, "output": {**base["output"],
                                                       "directory": str(folder / name)}}))
    return path


def _mpi_start(ranks: int, args: list[str], log: Path, cwd: Path,
               env: dict[str, str] = faults.ENV) -> faults.Command:
    """``mpiexec -n RANKS hybridmd -q ARGS`` in a session of its own (a terminal's group)."""
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(MPIEXEC), "-n", str(ranks), *faults.cli(*args)], cwd=cwd,
                                env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return faults.Command(proc, log)


def _mpi_end(command: faults.Command) -> None:
    """Clean-up: whatever of the job is left, killed."""
    faults.kill_all(faults.descendants(command.pid))
    if command.proc.poll() is None:
        command.proc.kill()
    command.proc.wait(30)


@needs_mpi
@pytest.mark.parametrize("target", ["mpiexec", "driver rank"])
def test_kill_9_of_an_mpi_job_leaves_no_rank(target: str, tmp_path: Path) -> None:
    """mpiexec -n 3 hybridmd run: driver, interpolator rank, monitor rank; kill -9 either the
    launcher or the driver's rank and every rank ends."""
    path = _input(tmp_path, "mpi")
    command = _mpi_start(3, ["run", str(path)], tmp_path / "mpi.log", tmp_path)
    proc = command.proc
    try:
        faults.wait_until(lambda: faults.frames_in(tmp_path / "mpi" / "coarse.traj") >= 10,
                          command)
        tree = faults.descendants(proc.pid)
        ranks = [p for p in tree if "hybridmd.cli" in faults.cmdline(p)]
        assert len(ranks) == 3, faults.describe(tree)
        victim = (proc if target == "mpiexec"
                  else next(p for p in ranks if p.environ().get("PMI_RANK") == "0"))
        victim.send_signal(signal.SIGKILL)
        _assert_nothing_left(tree, f"kill -9 of the {target}")
    finally:
        _mpi_end(command)


def _same_trajectory(reference: Path, resumed: Path) -> None:
    """The coarse and fine trajectories frame for frame, bit for bit, and the timeline."""
    for name in ("coarse.traj", "fine.traj"):
        assert faults.frames_lost(reference / name, resumed / name) == 0, name
    assert (reference / "timeline.tsv").read_text() == (resumed / "timeline.tsv").read_text()


@needs_mpi
@pytest.mark.parametrize("ranks, how", [(2, "ctrl-c"), (3, "kill -9"), (4, "ctrl-c")],
                         ids=["2 ranks, Ctrl-C", "3 ranks learning, kill -9",
                              "4 ranks learning, Ctrl-C"])
def test_an_mpi_job_stopped_and_resumed_is_the_same_run(ranks: int, how: str, tmp_path: Path
                                                         ) -> None:
    """Issue 28, class 5: on 2 ranks (no monitor rank), on 3 with a learner rank (no monitor
    rank either) and on 4 (learner and monitor ranks), the input recorded is the user's, so
    --resume with the unchanged input is taken, and the resumed job ends as the run that went
    through (serially)."""
    base = RUN if ranks == 2 else {**LEARN, "dynamics": {**LEARN["dynamics"],
                                                         "duration_fs": 300}}

    def write(name: str) -> Path:
        return _input_into(tmp_path, base, name)

    done = faults.run(["run", str(write("whole"))], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path, out = write("mpi"), tmp_path / "mpi"
    command = _mpi_start(ranks, ["run", str(path)], tmp_path / "mpi.log", tmp_path)
    try:
        faults.wait_until(lambda: (out / "checkpoint.json").exists()
                          and faults.frames_in(out / "coarse.traj") >= 12, command)
        tree = faults.descendants(command.pid)
        if how == "ctrl-c":
            faults.signal_group(command, signal.SIGINT)
            command.wait(120)
            text = command.output()
            assert "--resume" in text and "Traceback" not in text, text
        else:
            command.proc.send_signal(signal.SIGKILL)
            command.wait(30)
        _assert_nothing_left(tree, f"{how} of mpiexec -n {ranks}")
    finally:
        _mpi_end(command)
    recorded = json.loads((out / "run.json").read_text())["input"]
    assert recorded["hybrid"]["monitor"]["workers"] == base["hybrid"]["monitor"]["workers"]
    resumed = _mpi_start(ranks, ["run", str(path), "--resume"], tmp_path / "resumed.log",
                         tmp_path)
    try:
        assert resumed.wait(300) == 0, resumed.output()
    finally:
        _mpi_end(resumed)
    _same_trajectory(tmp_path / "whole", out)


@needs_mpi
def test_nan_forces_under_mpiexec_are_one_line_and_end_every_rank(tmp_path: Path) -> None:
    """A runtime failure on the driver's rank: one `error:` line, as in a serial run, no
    traceback, exit code 1, and no rank left waiting."""
    data = {**RUN, "calculator": {"type": "ase", "import_path": "faulty_calculators:NaNAfter",
                                  "kwargs": {"good_calls": 30}},
            "hybrid": {**RUN["hybrid"], "forecaster": None},
            "output": {**RUN["output"], "directory": str(tmp_path / "nan")}}
    path = tmp_path / "nan.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {**faults.ENV, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), faults.ENV.get("PYTHONPATH", "")])}
    command = _mpi_start(2, ["run", str(path)], tmp_path / "nan.log", tmp_path, env=env)
    try:
        code = command.wait(180)
        tree = faults.descendants(command.pid)
    finally:
        _mpi_end(command)
    text = command.output()
    assert code == 1, text
    assert "Traceback" not in text, text
    (line,) = faults.error_lines(text)
    assert "non-finite forces" in line, line
    _assert_nothing_left(tree, "after the failure")
