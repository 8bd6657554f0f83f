"""Signals and process lifetime: exit codes a batch system reads, and no orphaned children.

- ``stop_on_signals``: SIGINT/SIGTERM become a flag the MD loops check between steps, so a run
  stops at a clean point with its checkpoint; ``received`` says which signal stopped it, and
  ``exit_code`` gives the conventional 128 + signal number (130 for SIGINT, 143 for SIGTERM).
- ``terminate_raises``: elsewhere SIGTERM raises ``Terminated`` (as SIGINT raises
  ``KeyboardInterrupt``), so every command ends through the same clean-up and exit code.
- Child processes (the interpolator worker, monitors) must not act on a Ctrl-C or a SIGTERM
  sent to the whole process group: the parent stops them in order. ``spawning_children``
  blocks both signals while a child is started (the child inherits the mask, so a signal
  during its start-up waits), and the child calls ``child_process_setup`` first thing: it
  ignores both, then unblocks them, and starts ``watch_parent``.
- ``watch_parent``: a daemon thread that ends the child as soon as its parent is gone (the
  pipe multiprocessing keeps to the parent closes when the parent dies, even by SIGKILL), so a
  killed run never leaves workers holding cores.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: exit code of a child that ended because its parent died
PARENT_GONE_EXIT = 70


class Terminated(BaseException):
    """SIGTERM, raised like ``KeyboardInterrupt`` so clean-up runs and the exit code is 143."""


def exit_code(signum: int) -> int:
    """The shell's code for a process ended by ``signum``: 128 + its number."""
    return 128 + int(signum)


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the MD loop checks between steps (never mid-step)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        global _received
        self.signal = _received = signum


_received: int | None = None


def received() -> int | None:
    """The last signal a ``stop_on_signals`` block received (None if none)."""
    return _received


def raise_if_stopped() -> None:
    """Within a ``stop_on_signals`` block, where the loop waits (a late learner) rather than
    steps: SIGINT raises ``KeyboardInterrupt`` and SIGTERM ``Terminated``, so the run stops
    at its last checkpoint instead of after the wait."""
    if _received == signal.SIGINT:
        raise KeyboardInterrupt
    if _received == signal.SIGTERM:
        raise Terminated(_received)


@contextmanager
def stop_on_signals() -> Iterator[_StopRequest]:
    """SIGINT/SIGTERM set ``.signal`` of the yielded request instead of interrupting."""
    global _received
    _received = None
    stop = _StopRequest()
    try:
        previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signal handling to the caller
        previous = {}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block SIGTERM raises ``Terminated`` (main thread only; else a no-op)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def stoppable_script(main: Callable[[], None], note: str) -> None:
    """Run a script's ``main`` with SIGTERM raising ``Terminated``; stopped by Ctrl-C or
    SIGTERM it prints ``note`` (what to do next) and exits 130 or 143, with no traceback."""
    try:
        with terminate_raises():
            main()
    except (KeyboardInterrupt, Terminated) as exc:
        print(note, file=sys.stderr)
        signum = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
        raise SystemExit(exit_code(signum)) from None


@contextmanager
def spawning_children() -> Iterator[None]:
    """Block SIGINT/SIGTERM in this thread while children start (they inherit the mask).

    A signal that arrives meanwhile waits and is delivered when the block ends; the child
    discards it when ``child_process_setup`` ignores the signals.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def ignoring_stop_signals() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM within the block (an MPI rank that serves the driver's rank,
    which stops the job in order); a no-op outside the main thread."""
    try:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    except ValueError:
        previous = {}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def child_process_setup() -> None:
    """First thing in a child process: ignore SIGINT/SIGTERM, and end with the parent.

    Its progress bars take a thread lock, not tqdm's default multiprocessing one: a child may
    be killed in a fit (a stopped run abandons it), and a semaphore it held would be reported
    as leaked when the run exits."""
    from tqdm import tqdm

    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    tqdm.set_lock(threading.RLock())
    watch_parent()


def watch_parent(poll_s: float = 1.0) -> threading.Thread:
    """A daemon thread that ends this process (``os._exit``) once its parent is gone.

    It waits on multiprocessing's pipe to the parent (closed by the kernel when the parent
    dies) where there is one, and checks that the parent's pid is still this one's parent
    every ``poll_s`` seconds.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    parent = mp.parent_process()
    parent_pid = parent.pid if parent is not None else os.getppid()
    sentinel = getattr(parent, "sentinel", None)

    def gone() -> bool:
        return os.getppid() != parent_pid

    def watch() -> None:
        while not gone():
            if sentinel is not None and wait([sentinel], timeout=poll_s):
                break
            if sentinel is None:
                threading.Event().wait(poll_s)
        os._exit(PARENT_GONE_EXIT)

    thread = threading.Thread(target=watch, name="hybridmd-watch-parent", daemon=True)
    thread.start()
    return thread
