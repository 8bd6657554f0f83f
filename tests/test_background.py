"""Background processes: a pool is stopped at once, its running task abandoned."""

from __future__ import annotations

import time
from multiprocessing.connection import wait
from pathlib import Path

from hybridmd.background import _processes, make_executor, stop_processes


def _busy(started: str) -> None:
    """A long task (a fit) that says when it has begun."""
    Path(started).touch()
    time.sleep(600)


def test_stopping_a_pool_ends_a_process_that_is_busy_and_ignores_sigterm(tmp_path) -> None:
    """A learner's fit runs for minutes in a child that ignores SIGTERM (the shell's stop
    signal goes to the driver, which stops its children): stopping the pool ends it now,
    so the driver does not wait for the fit at its exit."""
    executor = make_executor("process", name="hybridmd-test")
    started = tmp_path / "started"
    executor.submit(_busy, str(started))
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists()  # the task under way, past the setup that ignores SIGTERM
    processes = _processes(executor)
    stop_processes(executor)
    # exited = its sentinel is ready (is_alive() can read True for a child that the pool's
    # own thread reaped first: waitpid then fails and multiprocessing takes it as running)
    sentinels = [p.sentinel for p in processes]
    assert sentinels and len(wait(sentinels, timeout=0)) == len(sentinels)


def _stops_on_sigterm(started: str) -> None:
    """A task that ends cleanly on SIGTERM (as a hybrid run stops at its checkpoint)."""
    import signal

    def stop(signum: int, frame: object) -> None:
        Path(started).with_suffix(".stopped").touch()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    Path(started).touch()
    time.sleep(600)


def test_a_pool_asked_first_lets_its_tasks_stop_on_sigterm(tmp_path) -> None:
    """A benchmark's pool of runs, stopped with ``ask_first_s``: each task gets SIGTERM and
    ends its own way before anything is killed."""
    from concurrent.futures import ProcessPoolExecutor

    executor = ProcessPoolExecutor(1)
    started = tmp_path / "started"
    executor.submit(_stops_on_sigterm, str(started))
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists()
    processes = _processes(executor)
    stop_processes(executor, ask_first_s=30)
    assert (tmp_path / "started.stopped").exists()
    sentinels = [p.sentinel for p in processes]
    assert sentinels and len(wait(sentinels, timeout=0)) == len(sentinels)


PROGRAM = '''
import time
from multiprocessing.connection import wait
from pathlib import Path
from tqdm import tqdm
from hybridmd.background import make_executor, stop_processes

def busy(started):
    for k in tqdm(range(600), desc="fit"):  # a fit's progress bar
        Path(started).touch()
        time.sleep(1)

if __name__ == "__main__":
    executor = make_executor("process")
    executor.submit(busy, "{started}")
    while not Path("{started}").exists():
        time.sleep(0.1)
    stop_processes(executor)
'''


def test_a_child_killed_in_a_fit_leaves_nothing_behind_at_exit(tmp_path) -> None:
    """The killed child's progress bar held no multiprocessing lock, and the pool's thread is
    done with its pipes before the interpreter exits: the program exits with nothing on stderr
    but the bar (no "leaked semaphore" from multiprocessing's tracker, no "Bad file descriptor"
    from the pool's exit hook). The second was a race lost about one time in six: 20 tries."""
    import subprocess
    import sys

    program = tmp_path / "stop.py"
    started = tmp_path / "started"
    program.write_text(PROGRAM.format(started=started))
    for _ in range(20):
        started.unlink(missing_ok=True)
        done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0 and "fit" in done.stderr
        assert "leaked" not in done.stderr and "Traceback" not in done.stderr, done.stderr


SCRIPT = '''
import os, signal
from hybridmd.signals import stoppable_script

def main():
    # Python leaves SIGINT ignored when started with it ignored (a background job): as a
    # terminal's Ctrl-C would find it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.kill(os.getpid(), signal.{name})
    raise AssertionError("not stopped")

stoppable_script(main, "stopped; run it again")
'''


def test_a_stopped_script_says_what_next_with_the_signals_exit_code(tmp_path) -> None:
    """A benchmark stopped by SIGTERM or Ctrl-C prints its one line (no traceback) and exits
    143 or 130, as a batch system reads it."""
    import subprocess
    import sys

    for name, code in (("SIGTERM", 143), ("SIGINT", 130)):
        script = tmp_path / f"{name}.py"
        script.write_text(SCRIPT.format(name=name))
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=120)
        assert (done.returncode, done.stderr) == (code, "stopped; run it again\n")


POOL = '''
import os, signal, sys, time
from pathlib import Path
from hybridmd.background import run_all
from hybridmd.signals import stoppable_script

def task(folder):
    def stop(signum, frame):
        Path(folder, "stopped").touch()
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)  # as a hybrid run stops at its checkpoint
    Path(folder, str(os.getpid())).touch()
    time.sleep(600)

def main():
    print(run_all({"double": (pow, (2, 2))}, 1), flush=True)
    run_all({"run": (task, ("{folder}",))}, 1)

if __name__ == "__main__":
    stoppable_script(main, "stopped")
'''


def test_a_pool_of_runs_gives_results_by_name_and_stops_with_nothing_left(tmp_path) -> None:
    """``run_all``: results by name; a SIGTERM to the script asks the run under way to stop,
    and the script exits 143 with its worker gone."""
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(POOL.replace("{folder}", str(tmp_path)))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not [p for p in tmp_path.iterdir() if p.name.isdigit()] and time.monotonic() < deadline:
        time.sleep(0.1)
    worker = int(next(p.name for p in tmp_path.iterdir() if p.name.isdigit()))
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=120)
    assert (child.returncode, out, err) == (143, "{'double': 4}\n", "stopped\n")
    assert (tmp_path / "stopped").exists()
    try:
        os.kill(worker, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"the pool's worker {worker} is still running")
