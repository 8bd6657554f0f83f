"""The figures of docs/reliability.md: bad inputs, kills, signals, dead children.

1. Every case of the bad-input table (tests/bad_inputs.py, all seven sub-commands) through
   ``hybridmd.cli.main``: how many end with exit code 2, one message that names the key, flag
   or file, and no traceback; in all and per class (issue 28's classes, ``Case.cls``).
2. ``--kills`` SIGKILLs of a real `hybridmd run` (ethanol, shipped sGDML model and forecaster,
   the interpolator worker and a monitor in their own processes) at random moments, each
   followed by --resume: processes left 15 s after each kill, the longest any child took to
   go, and, once the run is resumed to its end, frames of the coarse and fine trajectories
   lost, duplicated or changed against the uninterrupted run.
3. SIGINT and SIGTERM to the run's process group: the exit codes, and the same comparison.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reliability.py --kills 12
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hybridmd.cli import main  # noqa: E402

import faults  # noqa: E402
from bad_inputs import CASES, Workspace  # noqa: E402
from faults import RUN  # noqa: E402


def bad_inputs(root: Path) -> tuple[int, int, list[str], dict[str, tuple[int, int]]]:
    """Cases tried, clear errors, the ids of the others, and per class (``Case.cls``) the
    cases tried and the clear errors."""
    ws = Workspace(root)
    clear, unclear = 0, []
    per_class: dict[str, tuple[int, int]] = {}
    for case in CASES:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(["-q", *case.argv(ws)])
            except SystemExit as exc:
                code = exc.code
        text = err.getvalue()
        ok = (code == 2 and "Traceback" not in text and all(w in text for w in case.says))
        clear += ok
        tried_here, clear_here = per_class.get(case.cls, (0, 0))
        per_class[case.cls] = (tried_here + 1, clear_here + ok)
        if not ok:
            unclear.append(case.id)
    return len(CASES), clear, unclear, per_class


def _input(folder: Path, name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**RUN, "output": {**RUN["output"],
                                                      "directory": str(folder / name)}}))
    return path


def _gone_within(tree: list, timeout: float) -> tuple[int, float]:
    """Processes of ``tree`` left after ``timeout`` s, and how long the others took to go."""
    start = time.monotonic()
    while time.monotonic() - start < timeout and any(faults.is_alive(p) for p in tree):
        time.sleep(0.05)
    left = [p for p in tree if faults.is_alive(p)]
    faults.kill_all(left)
    return len(left), time.monotonic() - start


def kills(root: Path, reference: Path, n: int, seed: int) -> dict:
    """``n`` kill -9 at random moments, resumed each time; the run then finished."""
    rng = random.Random(seed)
    path, out = _input(root, "killed"), root / "killed"
    left, slowest, killed, with_children, refused = 0, 0.0, 0, 0, 0
    for k in range(n):
        flag = "--resume" if (out / "checkpoint.json").exists() else "--overwrite"
        command = faults.start(["run", str(path), flag], root / f"kill-{k}.log", cwd=root)
        if k % 2:  # every other kill once its children are up, the others during start-up
            with contextlib.suppress(AssertionError):  # the run may end first
                faults.wait_until(lambda c=command: bool(faults.descendants(c.pid)), command)
        time.sleep(rng.uniform(0.3, 3.0))
        if command.proc.poll() is not None:  # ended before the kill: start it again
            refused += command.proc.returncode != 0 and flag == "--resume"
            (out / "checkpoint.json").unlink(missing_ok=True)
            continue
        tree = faults.kill(command)
        killed += 1
        with_children += bool(tree)
        n_left, seconds = _gone_within(tree, faults.GONE_WITHIN_S)
        left += n_left
        slowest = max(slowest, seconds)
    flag = "--resume" if (out / "checkpoint.json").exists() else "--overwrite"
    done = faults.run(["run", str(path), flag], cwd=root)
    lost = sum(faults.frames_lost(reference / name, out / name)
               for name in ("coarse.traj", "fine.traj")) if done.returncode == 0 else None
    refused += done.returncode != 0
    return {"tries": n, "kills": killed, "with children": with_children, "left": left,
            "slowest_s": slowest, "lost": lost, "refused": refused}


def signals(root: Path, reference: Path) -> dict:
    """SIGINT, then SIGTERM, to the process group; then --resume to the end."""
    path, out = _input(root, "signalled"), root / "signalled"
    codes = {}
    checkpoint = out / "checkpoint.json"
    for signum, extra in ((signal.SIGINT, []), (signal.SIGTERM, ["--resume"])):
        before = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
        command = faults.start(["run", str(path), *extra], root / f"{signum}.log", cwd=root,
                               new_session=True)
        faults.wait_until(lambda b=before: checkpoint.exists()
                          and checkpoint.stat().st_mtime_ns != b
                          and faults.frames_in(out / "coarse.traj") > 20, command)
        faults.signal_group(command, signum)
        codes[signal.Signals(signum).name] = command.wait(120)
    done = faults.run(["run", str(path), "--resume"], cwd=root)
    lost = sum(faults.frames_lost(reference / name, out / name)
               for name in ("coarse.traj", "fine.traj")) if done.returncode == 0 else None
    return {**codes, "lost": lost}


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hybridmd-reliability-"))
    t0 = time.perf_counter()
    tried, clear, unclear, per_class = bad_inputs(root / "bad-inputs")
    done = faults.run(["run", str(_input(root, "ref"))], cwd=root)
    assert done.returncode == 0, done.stderr
    k = kills(root, root / "ref", args.kills, args.seed)
    s = signals(root, root / "ref")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text(
        ).splitlines() if line.startswith("model name")), platform.machine())
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{time.perf_counter() - t0:.0f} s")
    print("| figure | value |\n|---|---|")
    print(f"| bad inputs tried (7 sub-commands) | {tried} |")
    print(f"| clear errors (exit 2, names key or file, no traceback) | {clear} |")
    for cls, (n, ok) in per_class.items():
        print(f"| bad inputs of class {cls!r}: clear / tried | {ok} / {n} |")
    if unclear:
        print(f"| not clear | {', '.join(unclear)} |")
    print(f"| kill -9 of `hybridmd run` at random moments | {k['kills']} of {k['tries']} "
          f"tries (the rest ended before the kill); {k['with children']} with children running |")
    print(f"| processes left {faults.GONE_WITHIN_S:g} s after a kill | {k['left']} |")
    print(f"| longest wait for the children to go | {k['slowest_s']:.1f} s |")
    print(f"| resumes refused after a kill | {k['refused']} |")
    print(f"| frames lost, duplicated or changed after the kills and resumes | "
          f"{'(not resumed)' if k['lost'] is None else k['lost']} |")
    print(f"| Ctrl-C (SIGINT) to the process group: exit code | {s['SIGINT']} |")
    print(f"| SIGTERM to the process group: exit code | {s['SIGTERM']} |")
    print(f"| frames lost after SIGINT, SIGTERM and resumes | {s['lost']} |")


if __name__ == "__main__":
    main_()
