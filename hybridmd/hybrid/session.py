"""`hybridmd run`: a hybrid loop in its run folder.

The session owns everything around the loop (``hybridmd.hybrid.loop``): the run folder and its
rules for --resume and --overwrite, the timeline, the coarse trajectory, the stream to the
interpolator worker, signals, when to checkpoint (``hybridmd.hybrid.run_state``: the
state at the last quiet commit, so a killed run resumes there and continues the very same
trajectory, with the same counts), the learned force field's file, and the final summary.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator
from tqdm import tqdm

from hybridmd.calculators import describe_calculator
from hybridmd.config import RunConfig
from hybridmd.errors import SimulationError
from hybridmd.hybrid.build import build_loop
from hybridmd.hybrid.files import (
    COARSE_NAME,
    FINE_NAME,
    RunFolder,
    Timeline,
    coarse_atoms,
)
from hybridmd.hybrid.learner import LearnerError
from hybridmd.hybrid.run_state import Checkpointer
from hybridmd.hybrid.summary import build_summary
from hybridmd.hybrid.timeline_plot import write_timeline_plot
from hybridmd.output import FrameWriter
from hybridmd.run_lock import RunLock
from hybridmd.signals import stop_on_signals
from hybridmd.streaming import StreamingInterpolation
from hybridmd.streaming.frames import CoarseFrame

log = logging.getLogger(__name__)


@dataclass
class HybridResult:
    """Where the outputs are and the summary printed at the end."""

    directory: Path
    summary: dict[str, Any]
    interrupted: bool = False
    signal: int | None = None  #: the signal that stopped the run (exit code 128 + it)


class HybridRun:
    """A hybrid run of a validated input in its folder: ``run`` it, or ``advance`` it."""

    def __init__(self, cfg: RunConfig, calculator: Calculator | None = None,
                 context: dict[str, Any] | None = None,
                 monitor_calculator: Calculator | None = None,
                 monitor_executor: Any = None, learner_executor: Any = None,
                 recorded: RunConfig | None = None, lock: RunLock | None = None):
        """``calculator``: use this one instead of building the input's (the ASE API);
        ``monitor_calculator``: a second instance for monitors run in the driver;
        ``monitor_executor``/``learner_executor`` (``mpi4py.futures`` executors): run the
        monitors and the learner on other MPI ranks (``hybridmd.hybrid.mpi``);
        ``recorded``: the input as the user gave it, recorded in ``run.json`` and compared on
        --resume, where ``cfg`` differs from it (an MPI run's rank layout); ``lock``: the
        folder's lock, already held (the ASE API), else taken by ``run``."""
        self.cfg = cfg
        self.recorded = recorded or cfg
        built = build_loop(cfg, calculator, monitor_calculator, context, monitor_executor,
                           learner_executor)
        self.loop = built.loop
        self.stream_interpolator, self.context_frames = (built.stream_interpolator,
                                                         built.context_frames)
        self.folder = RunFolder(cfg.output.directory)
        self.out = self.folder.directory
        self.checkpointer = Checkpointer(self.folder)
        self.lock = lock or RunLock.of_folder(self.out)
        self._own_lock = lock is None
        self.fine_before = 0  #: fine frames already on disk when a resumed run started
        #: wall time of the run's earlier parts (to its last checkpoint), and when this one began
        self.wall_before, self._t0 = 0.0, time.perf_counter()
        self.timeline: Timeline | None = None
        self.stream: StreamingInterpolation | None = None
        self._coarse: FrameWriter | None = None
        self.loop.on_commit(self._write_frame)
        self.loop.on_event(self._event)

    def wall_s(self) -> float:
        """The run's wall time so far, across resumes (a killed part counts to its last
        checkpoint)."""
        return self.wall_before + time.perf_counter() - self._t0

    # ------------------------------------------------------------------ observers

    def _write_frame(self, frame: CoarseFrame) -> None:
        self._coarse.write(coarse_atoms(frame, self.loop.numbers, self.loop.masses,
                                        self.loop.cell))
        self.stream.submit(frame)

    def _event(self, row: dict[str, Any]) -> None:
        self.timeline.write(**row)
        if row["event"] == "learn":
            self._save_learned()

    def _save_learned(self) -> None:
        predictor = self.loop.predictor
        if predictor is not None and predictor.learns:
            predictor.save(self.out, {
                "calculator": describe_calculator(self.cfg.calculator),
                "calculator_config": self.cfg.calculator.model_dump(mode="json"),
                "run": str(self.out)})

    def _checkpoint(self, write: bool = False) -> None:
        """Remember the quiet state now; ``write`` it to the folder too."""
        self.checkpointer.snapshot(self.loop, self.timeline.lines, self.wall_s())
        if write:
            self.checkpointer.write(self.loop)

    # ------------------------------------------------------------------ the run

    def run(self, resume: bool = False, overwrite: bool = False, progress: bool = True,
            comm: Any = None) -> HybridResult:
        """Run (or continue) the hybrid loop to the configured length. ``comm``: the MPI
        communicator whose rank 1 is the interpolator worker."""
        self._t0 = time.perf_counter()
        try:
            state = self._start(resume, overwrite)
            self.timeline = Timeline(self.folder.paths["timeline"],
                                     state["timeline_lines"] if state else None)
            tail = None
            if state:
                tail, self.fine_before = self.checkpointer.restore(
                    self.loop, state, self.context_frames)
                self.wall_before = state.get("wall_s", 0.0)
            return self._drive(tail, comm, progress)
        finally:
            self.close()

    def _start(self, resume: bool, overwrite: bool) -> dict[str, Any] | None:
        """The folder locked for this run and checked for the flags (refused while another
        run holds it), prepared for a fresh run; the checkpoint to resume from."""
        probed = self.lock.probe().held  # another run's folder: refused before any reading
        state = self._checked(resume, overwrite)
        self.lock.claim()
        if not probed:  # the folder had no lock file: checked again, now that it is this run's
            state = self._checked(resume, overwrite)
        if not resume:
            self.folder.prepare(self.recorded)
        return state

    def _checked(self, resume: bool, overwrite: bool) -> dict[str, Any] | None:
        """The folder checked for the flags; on --resume the checkpoint, checked (reads only)."""
        self.folder.check(self.cfg, resume, overwrite, self.recorded)
        return self.checkpointer.load(self.loop) if resume else None

    def advance(self, segments: int) -> HybridResult:
        """``segments`` more segments in memory (the first call starts the run in a fresh
        folder); each call ends with the outputs complete, and the next goes on."""
        if self.timeline is None:
            self._t0 = time.perf_counter()
            self.lock.probe()
            self.folder.check(self.cfg, resume=False, overwrite=True)
            self.lock.claim()
            self.folder.prepare(self.recorded)
            self.timeline = Timeline(self.folder.paths["timeline"], None)
            tail = None
        else:
            tail = (list(self.loop.committed), [])
            self.fine_before = self.loop.current.index * self.loop.n + 1
        self.loop.settings.n_segments = self.loop.current.index + segments if (
            self.loop.current is not None) else segments
        return self._drive(tail, None, progress=False)

    def _drive(self, tail: tuple[list, list] | None, comm: Any,
               progress: bool) -> HybridResult:
        """Open the outputs, make segments to the end or a signal, close; the result."""
        loop, paths = self.loop, self.folder.paths
        # opened after a restore has cut the file back to the committed frames
        self._coarse = FrameWriter(paths["coarse"])
        self.stream = StreamingInterpolation(
            self.stream_interpolator, paths["fine"], loop.numbers, loop.n, loop.dt_fs,
            loop.masses, transport="mpi" if comm else self.cfg.hybrid.transport,
            maxsize=self.cfg.hybrid.queue_size, threads=1, comm=comm, worker_rank=1,
            resume_frames=tail[0] if tail else None, cell=loop.cell)
        stopped_by = None
        try:
            self.stream.start()
            if tail:
                for frame in tail[1]:
                    self.stream.submit(frame)
            else:
                loop.start()
                self._checkpoint(write=True)
            with stop_on_signals() as stop, tqdm(
                    total=loop.settings.n_segments, initial=loop.current.index, unit="seg",
                    disable=not progress, mininterval=1.0, desc="hybrid") as bar:
                last_write = time.monotonic()

                def after_segment() -> bool:
                    nonlocal last_write
                    bar.update(loop.current.index - bar.n)
                    bar.set_postfix(mode=loop.switch.mode,
                                    ml=loop.stats.ml_segments + len(loop.pending))
                    if loop.quiet:
                        due = (time.monotonic() - last_write
                               >= self.cfg.output.checkpoint_interval_s)
                        self._checkpoint(write=due)
                        if due:
                            last_write = time.monotonic()
                    return stop.signal is not None

                loop.advance(stop=after_segment)
                stopped_by = stop.signal
            if stopped_by is not None:
                log.warning("stopped by signal %d at segment %d; resume with --resume",
                            stopped_by, loop.current.index)
            else:
                self._checkpoint()
                self._save_learned()
            # stopped after a resume before any quiet point: the checkpoint on disk is the last
            if self.checkpointer.quiet is not None:
                self.checkpointer.write(loop, finished=stopped_by is None)
            fine_frames = self.fine_before + self.stream.close()
        except (SimulationError, LearnerError) as exc:
            self._on_failure(exc)
            raise
        except BaseException:
            self.stream.abort()
            if self.checkpointer.quiet is not None:
                self.checkpointer.write(loop)
            raise
        finally:
            self._coarse.close()
        summary = build_summary(loop, self.cfg, str(self.out), self.wall_s(), fine_frames)
        self.folder.write_summary(summary)
        write_timeline_plot(self.out)
        return HybridResult(self.out, summary, stopped_by is not None, stopped_by)

    def close(self) -> None:
        """Stop the monitors and the learner, close the timeline, let the folder go."""
        try:
            self.loop.close()
            if self.timeline is not None:
                self.timeline.close()
        finally:
            if self._own_lock:
                self.lock.release()

    def _on_failure(self, exc: SimulationError | LearnerError) -> None:
        """Frames committed so far are on disk; the failing state goes to failure.extxyz."""
        if self.checkpointer.quiet is not None:
            self.checkpointer.write(self.loop)
        try:
            self.stream.close()
        except Exception:  # noqa: BLE001 (the original error is the one to report)
            self.stream.abort()
        failure = self.loop.failure
        if failure is not None:
            index, positions, momenta = failure
            atoms = Atoms(numbers=self.loop.numbers, positions=positions,
                          masses=self.loop.masses)
            atoms.set_momenta(momenta)
            atoms.write(self.out / "failure.extxyz", format="extxyz")
        write_timeline_plot(self.out, with_summary=False)
        exc.args = (f"{exc.args[0]}. The {self.loop.n_committed} coarse frames before it are "
                    f"in {self.out / COARSE_NAME}, their fine frames in {self.out / FINE_NAME}"
                    + ("; the failing state is in failure.extxyz" if failure else "")
                    + ("" if failure else "; --resume continues from the last checkpoint"),)


def run_hybrid(cfg: RunConfig, resume: bool = False, overwrite: bool = False,
               progress: bool = True, context: dict[str, Any] | None = None) -> HybridResult:
    """Set up and run the hybrid loop from a validated input."""
    return HybridRun(cfg, context=context).run(resume=resume, overwrite=overwrite,
                                               progress=progress)
