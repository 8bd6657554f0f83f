"""Where the hybrid loop's background tasks run: spawned processes, a thread, or inline.

Monitors (whole-segment re-simulations) and the learner (force-field fits) are tasks handed to
a ``concurrent.futures`` executor made here, or to one passed in (``mpi4py.futures`` ranks under
``mpiexec``). Spawned processes ignore SIGINT/SIGTERM (the driver stops them in order) and end
with the driver however it ends (``hybridmd.signals``). The interpolator worker is not a task
but a long-lived consumer of the stream; ``hybridmd.streaming.launchers`` starts it the same
three ways (thread, spawned process, MPI rank).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Literal

from hybridmd.signals import Terminated, child_process_setup

Kind = Literal["process", "thread", "inline"]

#: seconds a process running a hybrid run is given to stop at its checkpoint on SIGTERM
#: (``run_all``) before it is killed
RUN_STOP_S = 60.0


class InlineExecutor(Executor):
    """Runs each task when submitted, in the caller's process and thread."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 (delivered through the future)
            future.set_exception(exc)
        return future


def make_executor(kind: Kind, workers: int = 1, name: str = "hybridmd",
                  initializer: Callable[..., None] = child_process_setup,
                  initargs: tuple = ()) -> Executor:
    """An executor of ``workers`` spawned processes (each set up by ``initializer``, which
    must call ``child_process_setup``), of one thread, or inline."""
    if kind == "inline":
        return InlineExecutor()
    if kind == "thread":
        return ThreadPoolExecutor(1, thread_name_prefix=name)
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                               initializer=initializer, initargs=initargs)


def process_ids(executor: Executor) -> list[int]:
    """The processes of a process pool (none for a thread, inline or MPI executor)."""
    return [p.pid for p in _processes(executor)]


def stop_processes(executor: Executor, ask_first_s: float = 0.0) -> None:
    """Shut an executor down without waiting for its running task: its processes are killed
    (SIGKILL: they ignore SIGTERM, which a shell sends to the whole process group, and a pool
    would otherwise wait for the running task at the interpreter's exit). ``ask_first_s``:
    first send each SIGTERM and give them that long to end (a pool of ``hybridmd run``s, each
    stopping at its checkpoint)."""
    processes = _processes(executor)
    manager = getattr(executor, "_executor_manager_thread", None)  # shutdown forgets it
    executor.shutdown(wait=False, cancel_futures=True)
    try:
        if ask_first_s > 0:
            for process in processes:
                process.terminate()
            deadline = time.monotonic() + ask_first_s
            for process in processes:
                process.join(timeout=max(0.0, deadline - time.monotonic()))
    finally:  # killed also when a second stop signal cuts the wait short
        for process in processes:
            process.kill()
            process.join(timeout=10)
    # the pool's manager thread closes its wake-up pipe once it sees the dead processes; left
    # running, it races the interpreter's exit hook writing to that pipe (CPython 3.11: "OSError:
    # Bad file descriptor" printed at exit), so it is let finish here
    if manager is not None:
        manager.join(timeout=10)


def run_all(calls: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]],
            processes: int) -> dict[str, Any]:
    """Each ``name: (function, arguments)`` in a pool of ``processes`` processes; the results
    by name (a benchmark's runs). Stopped by Ctrl-C or ``Terminated`` (SIGTERM under
    ``signals.stoppable_script``), the processes are sent SIGTERM (a hybrid run stops at its
    checkpoint; an idle worker, which takes SIGTERM's default, ends), given ``RUN_STOP_S``,
    then killed, before the exception goes on: nothing is left running."""
    with ProcessPoolExecutor(processes, initializer=signal.signal,
                             initargs=(signal.SIGTERM, signal.SIG_DFL)) as pool:
        try:
            futures = {name: pool.submit(fn, *args) for name, (fn, args) in calls.items()}
            return {name: f.result() for name, f in futures.items()}
        except (KeyboardInterrupt, Terminated):
            stop_processes(pool, ask_first_s=RUN_STOP_S)
            raise


def _processes(executor: Executor) -> list[Any]:
    return list((getattr(executor, "_processes", None) or {}).values())
