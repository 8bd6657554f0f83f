"""Bad inputs of issue 28, by class: each case's ``cls`` says which (benchmarks/reliability.py
counts them per class).

1. ``silent``: input that used to be accepted and run as something else than meant: a key or
   section given twice (the last won), a YAML boolean where a number goes (``yes`` is 1), an
   output stride longer than the run, a non-finite fit or training setting, nothing to score.
2. ``numbers``: non-finite and huge numbers in every kind of numeric key and flag (durations,
   frictions, queue sizes, replicas, threads, hidden sizes, temperatures, ...): one line with
   the key and its range, before anything is written.
3. ``files``: files that are not what they seem: a device or a named pipe given as a file, an
   unreadable file, a NaN in one frame of a trajectory, an output that is the command's input.

The files they need (``make_files``) are made in the workspace's folder; inputs with a key
given twice are written as text, as no YAML writer makes them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ase.io import read, write

from hybridmd.data import interpolator_path

if TYPE_CHECKING:
    from bad_inputs import Workspace

#: the classes, in the order of issue 28
CLASSES = ("silent", "numbers", "files")
#: the frame of nan-frame.traj whose positions are NaN
NAN_FRAME = 7
#: a shipped interpolator (10 fs coarse frames, as coarse.traj's)
SHIPPED = str(interpolator_path("ethanol-bilstm-10fs"))


def make_files(root: Path) -> None:
    """nan-frame.traj (fine.traj with NaN positions in one frame), named pipes with the names
    of a YAML input, a trajectory and a model, and (for a user that permissions bind, not
    root) a structure file that cannot be read."""
    frames = read(root / "fine.traj", ":")
    frames[NAN_FRAME].positions[3] = np.nan
    write(root / "nan-frame.traj", frames)
    for name in ("pipe.yaml", "pipe.traj", "pipe.npz"):
        os.mkfifo(root / name)
    unreadable = root / "unreadable.xyz"
    write(unreadable, frames[0])
    unreadable.chmod(0)


def permissions_bind() -> bool:
    """Whether a file without read permission is unreadable to this user (not to root)."""
    return os.geteuid() != 0


def twice(path: str, section: str, line: str) -> str:
    """The input at ``path`` with ``line`` (``key: value``) added again at the end of
    ``section`` (a top-level key; the line goes in at the section's indentation)."""
    text = Path(path).read_text()
    lines = text.splitlines()
    start = lines.index(f"{section}:")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")),
               len(lines))
    indent = re.match(r" *", lines[start + 1]).group(0)
    lines.insert(end, indent + line)
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def again(path: str, text: str) -> str:
    """The input at ``path`` with ``text`` (a whole top-level section) added at its end."""
    Path(path).write_text(Path(path).read_text() + text)
    return path


Case = Callable[..., None]


def add_cases(case: Case, drop: object) -> None:
    """The cases of the three classes; ``case(id, says, argv, cls)`` adds one, ``drop``
    leaves a key out of an input."""
    _silent(lambda id, says, argv: case(id, says, argv, cls="silent"), drop)
    _numbers(lambda id, says, argv: case(id, says, argv, cls="numbers"), drop)
    _files(lambda id, says, argv: case(id, says, argv, cls="files"), drop)


def _silent(case: Callable, drop: object) -> None:
    case("simulate/key-given-twice", ("dynamics.timestep_fs", "given twice", "lines"),
         lambda w: ["simulate", twice(w.sim("d0"), "dynamics", "timestep_fs: 2.0")])
    case("run/section-given-twice", ("dynamics", "given twice", "lines"),
         lambda w: ["run", again(w.run("d1"), "dynamics:\n  seed: 7\n")])
    case("train/key-given-twice", ("training.batch_size", "given twice"),
         lambda w: ["train", twice(w.train("d2"), "training", "batch_size: 8")])
    case("serve/section-given-twice", ("calculator", "given twice"),
         lambda w: ["serve", again(w.sim("d3"), "calculator: {type: xtb}\n"), "--address", "x"])
    case("simulate/boolean-timestep", ("dynamics.timestep_fs", "YAML boolean"),
         lambda w: ["simulate", w.sim("b0", dynamics={"timestep_fs": True})])
    case("simulate/boolean-in-cell", ("system.cell", "YAML boolean"),
         lambda w: ["simulate", w.sim("b1", system={"cell": [9.0, True, 9.0]})])
    case("run/boolean-stride", ("hybrid.stride", "YAML boolean"),
         lambda w: ["run", w.run("b2", hybrid={"stride": True})])
    case("train/boolean-hidden-size", ("model.hyperparameters", "hidden", "YAML boolean"),
         lambda w: ["train", w.train("b3", model={"hyperparameters": {"hidden": True}})])
    case("simulate/output-stride-longer-than-the-run", ("output.stride", "longer than the run"),
         lambda w: ["simulate", w.sim("b4", output={"stride": 50})])
    case("run/kernel-width-inf", ("hybrid.learn.kernel_width", "finite"),
         lambda w: ["run", w.run("b6", hybrid={"forecaster": "learn",
                                               "learn": {"kernel_width": float("inf")}})])
    case("run/fine-tune-learning-rate-absurd", ("hybrid.fine_tune.learning_rate", "at most 1"),
         lambda w: ["run", w.run("b7", hybrid={"fine_tune": {"learning_rate": 1e3}})])
    case("train/learning-rate-inf", ("training.learning_rate", "finite"),
         lambda w: ["train", w.train("b8", training={"learning_rate": float("inf")})])
    case("train/gradient-clip-nan", ("training.gradient_clip", "finite"),
         lambda w: ["train", w.train("b9", training={"gradient_clip": float("nan")})])
    case("evaluate/nothing-to-score", ("nothing to score", "--model", "--stride"),
         lambda w: ["evaluate", "--reference", w.path("fine.traj")])


def _numbers(case: Callable, drop: object) -> None:
    case("simulate/replicas-huge", ("replicas", "at most 10000"),
         lambda w: ["simulate", w.sim("h0", replicas=100_000_000)])
    case("simulate/duration-inf", ("dynamics.duration_fs", "finite"),
         lambda w: ["simulate", w.sim("h1", dynamics={"steps": drop,
                                                      "duration_fs": float("inf")})])
    case("simulate/duration-of-too-many-steps", ("duration_fs", "shorter"),
         lambda w: ["simulate", w.sim("h2", dynamics={"steps": drop, "duration_fs": 1e11})])
    case("simulate/friction-nan", ("dynamics.friction_per_fs", "finite"),
         lambda w: ["simulate", w.sim("h3", dynamics={"integrator": "langevin",
                                                      "friction_per_fs": float("nan")})])
    case("simulate/seed-huge", ("dynamics.seed", "at most"),
         lambda w: ["simulate", w.sim("h4", dynamics={"seed": 10**30})])
    case("simulate/queue-size-huge", ("interpolation.queue_size", "at most"),
         lambda w: ["simulate", w.sim("h5", output={"stride": 2}, interpolation={
             "interpolator": "quintic", "queue_size": 10**9})])
    case("simulate/charge-inf", ("calculator.charge", "finite"),
         lambda w: ["simulate", w.sim("h6", calculator={"type": "xtb", "model": drop,
                                                        "charge": float("inf")})])
    case("run/temperature-inf", ("dynamics.temperature_K", "finite"),
         lambda w: ["run", w.run("h7", dynamics={"temperature_K": float("inf")})])
    case("run/learn-threads-huge", ("hybrid.learn.threads", "at most 256"),
         lambda w: ["run", w.run("h8", hybrid={"forecaster": "learn",
                                               "learn": {"threads": 100_000}})])
    case("run/monitor-workers-huge", ("hybrid.monitor.workers", "at most 256"),
         lambda w: ["run", w.run("h9", hybrid={"monitor": {"workers": 10**6}})])
    case("run/replicas-huge", ("replicas", "at most 10000"),
         lambda w: ["run", w.run("h10", replicas=10**8)])
    case("train/threads-huge", ("training.threads", "at most 256"),
         lambda w: ["train", w.train("h11", training={"threads": 100_000})])
    case("train/hidden-size-huge", ("model.hyperparameters", "hidden", "4096"),
         lambda w: ["train", w.train("h12", model={"hyperparameters": {"hidden": 10**7}})])
    case("train/max-epochs-huge", ("training.max_epochs", "at most"),
         lambda w: ["train", w.train("h13", training={"max_epochs": 10**12})])
    case("train/max-minutes-inf", ("training.max_minutes", "finite"),
         lambda w: ["train", w.train_forecaster("h14", training={"max_minutes": float("inf")})])
    case("serve/timeout-inf", ("--timeout", "finite"),
         lambda w: ["serve", w.sim("h15"), "--address", "x", "--timeout", "inf"])
    case("interpolate/dt-nan", ("--dt-fs", "finite"),
         lambda w: ["interpolate", "--model", SHIPPED, w.path("coarse.traj"), "-o",
                    w.path("out/fine.traj"), "--dt-fs", "nan"])
    case("evaluate/temperature-bin-inf", ("--temperature-bin", "finite"),
         lambda w: ["evaluate", "--reference", w.path("fine.traj"), "--stride", "20",
                    "--temperature-bin", "inf"])
    case("evaluate/stride-huge", ("--stride", "at most"),
         lambda w: ["evaluate", "--reference", w.path("fine.traj"), "--stride", "100000000"])
    case("analyze/temperature-inf", ("--temperature-k", "finite"),
         lambda w: analyze_argv(w, "--temperature-k", "inf"))
    case("analyze/dt-huge", ("--dt-fs", "at most"),
         lambda w: analyze_argv(w, "--dt-fs", "1e300"))


def analyze_argv(w: Workspace, *more: str, reference: str = "fine.traj",
                 prediction: str = "fine.traj") -> list[str]:
    """An `analyze` command line on the workspace's files, output in out/analysis."""
    return ["analyze", "--reference", w.path(reference), "--prediction", w.path(prediction),
            "--out", w.path("out/analysis"), *more]


def _files(case: Callable, drop: object) -> None:
    case("simulate/structure-is-dev-null", ("system.file", "/dev/null", "character device"),
         lambda w: ["simulate", w.sim("g0", system={"molecule": drop, "file": "/dev/null"})])
    case("simulate/input-is-a-named-pipe", ("pipe.yaml", "named pipe"),
         lambda w: ["simulate", w.path("pipe.yaml")])
    case("simulate/sgdml-model-is-a-named-pipe", ("calculator.model", "pipe.npz", "named pipe"),
         lambda w: ["simulate", w.sim("g1", calculator={"type": "sgdml",
                                                        "model": w.path("pipe.npz")})])
    case("run/forecaster-is-dev-null", ("hybrid.forecaster", "/dev/null", "character device"),
         lambda w: ["run", w.run("g2", hybrid={"forecaster": "/dev/null"})])
    case("train/data-is-a-named-pipe", ("data.trajectories", "pipe.traj", "named pipe"),
         lambda w: ["train", w.train("g3", data={"trajectories": [
             {"path": w.path("pipe.traj")}]})])
    case("interpolate/coarse-is-dev-null", ("/dev/null", "character device"),
         lambda w: ["interpolate", "--model", SHIPPED, "/dev/null", "-o",
                    w.path("out/fine.traj")])
    case("evaluate/reference-is-a-named-pipe", ("--reference", "pipe.traj", "named pipe"),
         lambda w: ["evaluate", "--reference", w.path("pipe.traj"), "--stride", "20"])
    case("analyze/reference-is-dev-null", ("--reference", "/dev/null", "character device"),
         lambda w: ["analyze", "--reference", "/dev/null", "--prediction",
                    w.path("fine.traj"), "--out", w.path("out/analysis")])
    frame = f"frame {NAN_FRAME}"
    case("train/data-nan-in-one-frame", ("nan-frame.traj", frame, "non-finite"),
         lambda w: ["train", w.train("g4", data={"trajectories": [
             {"path": w.path("nan-frame.traj")}]})])
    case("evaluate/reference-nan-in-one-frame", ("nan-frame.traj", frame, "non-finite"),
         lambda w: ["evaluate", "--reference", w.path("nan-frame.traj"), "--stride", "20"])
    case("analyze/prediction-nan-in-one-frame", ("--prediction", "nan-frame.traj", frame),
         lambda w: analyze_argv(w, prediction="nan-frame.traj"))
    case("interpolate/output-is-its-input", ("-o/--output", "coarse trajectory", "choose"),
         lambda w: ["interpolate", "--model", SHIPPED, w.path("coarse.traj"), "-o",
                    w.path("coarse.traj")])
    case("evaluate/json-is-the-reference", ("--json", "--reference", "choose another"),
         lambda w: ["evaluate", "--reference", w.path("fine.traj"), "--stride", "20",
                    "--json", w.path("fine.traj")])
    case("train/checkpoint-is-its-data", ("output.checkpoint", "fine.traj", "training trajectory"),
         lambda w: ["train", w.train("g6", output={"checkpoint": w.path("fine.traj")}),
                    "--overwrite"])
    case("simulate/output-is-its-structure", ("output.directory", "system.file", "choose another"),
         lambda w: ["simulate", w.sim("sim-done", system={
             "molecule": drop, "file": str(w.out / "sim-done" / "trajectory.traj")}),
             "--overwrite"])
    if permissions_bind():
        case("simulate/structure-unreadable", ("system.file", "unreadable.xyz", "permission"),
             lambda w: ["simulate", w.sim("g5", system={"molecule": drop,
                                                        "file": w.path("unreadable.xyz")})])
