"""Background processes: a pool is stopped at once, its running task abandoned."""

from __future__ import annotations

import time
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
    assert processes and not any(p.is_alive() for p in processes)


PROGRAM = '''
import time
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


def test_a_child_killed_in_a_fit_leaves_no_semaphore_behind(tmp_path) -> None:
    """The killed child's progress bar held no multiprocessing lock: the program exits with
    nothing on stderr but the bar (no "leaked semaphore" from multiprocessing's tracker)."""
    import subprocess
    import sys

    program = tmp_path / "stop.py"
    program.write_text(PROGRAM.format(started=tmp_path / "started"))
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "fit" in done.stderr
    assert "leaked" not in done.stderr and "Traceback" not in done.stderr
