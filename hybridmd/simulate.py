"""`hybridmd simulate`: a thermostated MD run from a validated input, resumable after a kill."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.io import read, write
from tqdm import tqdm

from hybridmd.calculators import build_calculator, close_calculator, describe_calculator
from hybridmd.config import IPIEngineConfig, SimulationConfig
from hybridmd.engines.ase_md import (
    ASEEngine,
    internal_degrees_of_freedom,
    maxwell_boltzmann_momenta,
)
from hybridmd.engines.ipi import RESTART_NAME, IPIEngine, ipi_cell
from hybridmd.errors import RunInputError, SimulationError, reading
from hybridmd.fingerprint import RUN_ID, check_files, check_run_id, record
from hybridmd.output import (
    CHECKPOINT_NAME,
    LOG_NAME,
    METADATA_NAME,
    TRAJECTORY_STEM,
    FrameWriter,
    MDLog,
    run_metadata,
    truncate_frames,
    write_json_atomic,
)
from hybridmd.periodic import Cell
from hybridmd.preflight import check_run_folder, check_unchanged_input, input_files, read_json
from hybridmd.run_lock import RunLock
from hybridmd.safety import check_state
from hybridmd.signals import stop_on_signals
from hybridmd.streaming import CoarseFrame, StreamingInterpolation
from hybridmd.structures import build_structure, check_start_geometry, load_momenta

log = logging.getLogger(__name__)

FINE_NAME = "fine.traj"  #: the interpolated trajectory of ``interpolation:``

@dataclass
class SimulationResult:
    """Where a finished run's outputs are and what it cost."""

    directory: Path
    trajectory: Path
    steps: int
    frames: int
    wall_time_s: float
    interrupted: bool = False
    signal: int | None = None  #: the signal that interrupted the run


def _output_paths(cfg: SimulationConfig) -> dict[str, Path]:
    out = cfg.output.directory
    return {
        "trajectory": out / f"{TRAJECTORY_STEM}.{cfg.output.format}",
        "log": out / LOG_NAME,
        "metadata": out / METADATA_NAME,
        "checkpoint": out / CHECKPOINT_NAME,
        "failure": out / "failure.extxyz",
    }


def check_simulation_folder(cfg: SimulationConfig, resume: bool, overwrite: bool) -> None:
    """The output folder fits the flags (``RunInputError`` otherwise); see
    ``hybridmd.preflight.check_run_folder``. On --resume the input must be the run's."""
    paths = _output_paths(cfg)
    out = cfg.output.directory
    if resume and isinstance(cfg.engine, IPIEngineConfig):
        raise RunInputError(
            f"--resume is not supported with engine: ipi; i-PI's restart file is in "
            f"{out / RESTART_NAME} (continue it with `i-pi {RESTART_NAME}` and "
            "`hybridmd serve`), or start again with --overwrite")
    outputs = [p for k, p in paths.items() if k != "failure"]
    check_run_folder(out, outputs, paths["checkpoint"], resume, overwrite,
                     inputs=input_files(cfg))
    if resume:
        check_unchanged_input(paths["metadata"], cfg.model_dump(mode="json"), out)
        meta = read_json(paths["metadata"], "this run's record")
        checkpoint = read_json(paths["checkpoint"], "a checkpoint of this run")
        check_run_id(paths["checkpoint"], checkpoint.get(RUN_ID), meta, out)
        check_files(meta, cfg, out)
        _check_last_frame(paths["trajectory"], checkpoint)


def _check_last_frame(trajectory: Path, checkpoint: dict[str, Any]) -> None:
    """The last frame the checkpoint counts is the trajectory's (recorded since run ids)."""
    frames, last = checkpoint.get("frames"), checkpoint.get("last_frame")
    if last is None or not frames:
        return
    with reading(trajectory, "the trajectory of this run", fix="start again with --overwrite"):
        atoms = read(trajectory, index=int(frames) - 1)
        expected = np.array(last, dtype=float)
    if atoms.positions.shape != expected.shape or not np.allclose(atoms.positions, expected,
                                                                  rtol=0, atol=1e-6):
        raise RunInputError(
            f"{trajectory}: its frame {int(frames) - 1} is not the last frame the checkpoint "
            "counts: the trajectory belongs to another run; put back the run's own, or start "
            "again with --overwrite")


class Simulation:
    """A simulation set up from an input: structure, calculator and engine, ready to run."""

    def __init__(self, cfg: SimulationConfig, calculator: Calculator | None = None):
        self.cfg = cfg
        self.paths = _output_paths(cfg)
        self.atoms: Atoms = build_structure(cfg.system)
        self.cell = Cell.of(self.atoms)
        check_start_geometry(self.atoms, cfg.safety, cfg.system.file or cfg.system.molecule)
        if isinstance(cfg.engine, IPIEngineConfig):
            try:
                ipi_cell(self.atoms)
            except ValueError as exc:
                raise RunInputError(f"engine: ipi: {exc}") from None
        # The calculator is built (and an sGDML model checked against the structure) before
        # anything is written or computed.
        self.atoms.calc = calculator or build_calculator(cfg.calculator, self.atoms)
        #: built here, so closed here (an external client process ends with the run)
        self._closes_calculator = calculator is None
        seeds = np.random.SeedSequence(cfg.dynamics.seed).spawn(2)
        self._init_rng, thermostat_rng = (np.random.default_rng(s) for s in seeds)
        self._initial_momenta()
        # the i-PI engine starts a server and threads: only in `run`, once the folder is ready
        self.engine: ASEEngine | IPIEngine | None = (
            None if isinstance(cfg.engine, IPIEngineConfig)
            else ASEEngine(self.atoms, cfg.dynamics, thermostat_rng))
        self.step_index = 0
        self.frames_written = 0
        self.stream: StreamingInterpolation | None = None
        self.run_id: str | None = None  #: the run's id (run.json), once the folder is ready
        self._last_frame: np.ndarray | None = None  #: positions of the last frame written
        self.lock = RunLock.of_folder(cfg.output.directory)

    def _initial_momenta(self) -> None:
        dyn = self.cfg.dynamics
        if dyn.initial_momenta == "maxwell-boltzmann":
            ndof = internal_degrees_of_freedom(self.atoms)
            momenta = maxwell_boltzmann_momenta(self.atoms, dyn.temperature_K, ndof,
                                                self._init_rng)
        else:
            momenta = load_momenta(dyn.initial_momenta, self.atoms)
        self.atoms.set_momenta(momenta)

    # ------------------------------------------------------------------ output folder

    def _prepare_output(self, resume: bool, overwrite: bool) -> None:
        """The folder locked for this run (refused while another run holds it) and checked
        for the flags; cleared for a fresh run."""
        probed = self.lock.probe().held
        check_simulation_folder(self.cfg, resume, overwrite)
        self.lock.claim()
        if not probed:  # the folder had no lock file: checked again, now that it is this run's
            check_simulation_folder(self.cfg, resume, overwrite)
        if resume:
            return
        for path in self.paths.values():
            path.unlink(missing_ok=True)
        self.cfg.output.directory.mkdir(parents=True, exist_ok=True)

    def _restore(self) -> None:
        ckpt = read_json(self.paths["checkpoint"], "a checkpoint of this run")
        meta = read_json(self.paths["metadata"], "this run's record")
        meta["input"].setdefault("engine", {"type": "ase"})  # runs from before engines
        with reading(self.paths["checkpoint"], "a checkpoint of this run",
                     fix="start again with --overwrite"):
            self.atoms.set_positions(np.array(ckpt["positions"]))
            self.atoms.set_momenta(np.array(ckpt["momenta"]))
            self.engine = ASEEngine(self.atoms, self.cfg.dynamics, self.engine.rng)
            self.engine.set_state(ckpt["engine"])
            self.step_index = ckpt["step"]
            self.frames_written = ckpt["frames"]
        self.run_id = meta.get(RUN_ID)
        if ckpt.get("last_frame") is not None:
            self._last_frame = np.array(ckpt["last_frame"])
        with reading(self.paths["trajectory"], "the trajectory of this run",
                     fix="start again with --overwrite"):
            dropped = truncate_frames(self.paths["trajectory"], self.frames_written)
        MDLog.truncate_after(self.paths["log"], self.step_index)
        meta.setdefault("resumed", []).append({"step": self.step_index, "dropped_frames": dropped})
        write_json_atomic(self.paths["metadata"], meta)
        log.info("resuming at step %d (%d frames on disk, %d partial frames dropped)",
                 self.step_index, self.frames_written, dropped)

    def _input_echo(self) -> dict[str, Any]:
        return self.cfg.model_dump(mode="json")

    def _checkpoint(self, finished: bool = False) -> None:
        write_json_atomic(self.paths["checkpoint"], {
            "step": self.step_index,
            "frames": self.frames_written,
            "time_fs": self.step_index * self.cfg.dynamics.timestep_fs,
            "positions": self.atoms.positions.tolist(),
            "momenta": self.atoms.get_momenta().tolist(),
            "engine": self.engine.get_state(),
            "finished": finished,
            "last_frame": None if self._last_frame is None else self._last_frame.tolist(),
            RUN_ID: self.run_id,
        })

    # ------------------------------------------------------------------ the run

    def run(self, resume: bool = False, overwrite: bool = False,
            progress: bool = True) -> SimulationResult:
        """Run (or continue) the simulation to ``dynamics.n_steps`` steps (the folder locked
        for it while it runs)."""
        try:
            self._prepare_output(resume, overwrite)
            return self._run(resume, progress)
        finally:
            if self._closes_calculator:
                close_calculator(self.atoms.calc)
            self.lock.release()

    def _run(self, resume: bool, progress: bool) -> SimulationResult:
        cfg = self.cfg
        if resume:
            self._restore()
        else:
            identity = record(cfg)
            self.run_id = identity[RUN_ID]
            write_json_atomic(self.paths["metadata"], {**run_metadata(
                self._input_echo(), describe_calculator(cfg.calculator)), **identity})
        n_steps = cfg.dynamics.n_steps
        stride, log_stride = cfg.output.stride, cfg.output.log_stride or cfg.output.stride
        self.stream = self._start_stream(resume)
        writer = FrameWriter(self.paths["trajectory"])
        md_log = MDLog(self.paths["log"])
        start_step, t_start, last_ckpt = self.step_index, time.perf_counter(), time.monotonic()
        interrupted, stopped_by = False, None
        try:
            if self.engine is None:
                self.engine = IPIEngine(self.atoms, cfg.dynamics, cfg.engine, cfg.output.directory)
            if not resume:
                self._observe(writer, md_log, write_frame=True, write_log=True)
                self._checkpoint()
            with stop_on_signals() as stop, tqdm(
                total=n_steps, initial=self.step_index, unit="step", disable=not progress,
                mininterval=1.0, desc="MD",
            ) as bar:
                while self.step_index < n_steps:
                    self.engine.step()
                    self.step_index += 1
                    wrote = self._observe(writer, md_log,
                                          write_frame=self.step_index % stride == 0,
                                          write_log=self.step_index % log_stride == 0)
                    bar.update()
                    if stop.signal is not None:
                        interrupted, stopped_by = True, stop.signal
                        log.warning("stopped by signal %d at step %d; %s", stop.signal,
                                    self.step_index, "i-PI's restart file is in the output "
                                    "folder" if isinstance(self.engine, IPIEngine)
                                    else "resume with --resume")
                        break
                    if wrote and (time.monotonic() - last_ckpt
                                  >= cfg.output.checkpoint_interval_s):
                        self._checkpoint()
                        last_ckpt = time.monotonic()
            self._checkpoint(finished=not interrupted)
            if self.stream is not None:
                self.stream.close()
        except BaseException:
            if self.stream is not None:
                self.stream.abort()
            raise
        finally:
            writer.close()
            md_log.close()
            if isinstance(self.engine, IPIEngine):
                self.engine.close()
        wall = time.perf_counter() - t_start
        self._record_timing(start_step, wall)
        return SimulationResult(cfg.output.directory, self.paths["trajectory"], self.step_index,
                                self.frames_written, wall, interrupted, stopped_by)

    def _observe(self, writer: FrameWriter, md_log: MDLog, write_frame: bool,
                 write_log: bool) -> bool:
        """Check the new state; write it to the trajectory and log where due."""
        atoms = self.atoms
        # Every integrator ends a step with a force call at the new positions, so the
        # calculator's results are current; reading them skips ASE's per-call state check.
        results = atoms.calc.results
        forces = results["forces"] if "forces" in results else atoms.get_forces()
        temperature = self.engine.temperature()
        problem = check_state(atoms.positions, forces, temperature, self.cfg.safety, self.cell)
        time_fs = self.step_index * self.cfg.dynamics.timestep_fs
        atoms.info.update(time_fs=time_fs, step=self.step_index)
        if problem:
            write(self.paths["failure"], atoms, format="extxyz")
            raise SimulationError(
                f"step {self.step_index} (t = {time_fs:.2f} fs): {problem}. "
                f"The {self.frames_written} frames before it are in {self.paths['trajectory']}; "
                f"the failing state is in {self.paths['failure']}")
        if write_log:
            epot = float(results["energy"] if "energy" in results
                         else atoms.get_potential_energy())
            md_log.write(time_fs, self.step_index, temperature, epot,
                         atoms.get_kinetic_energy(), self.engine.conserved_energy(epot))
        if write_frame:
            writer.write(atoms)
            self.frames_written += 1
            self._last_frame = atoms.positions.copy()
            if self.stream is not None:
                self.stream.submit(self._coarse_frame(atoms, forces))
        return write_frame

    def _coarse_frame(self, atoms: Atoms, forces: np.ndarray) -> CoarseFrame:
        energy = atoms.calc.results.get("energy") if atoms.calc is not None else None
        return CoarseFrame(self.step_index // self.cfg.output.stride,
                           self.step_index * self.cfg.dynamics.timestep_fs, atoms.positions,
                           atoms.get_momenta(), forces=forces, energy=energy)

    def _start_stream(self, resume: bool) -> StreamingInterpolation | None:
        """The interpolator worker of ``interpolation:``; on resume it is fed the frames on
        disk first, so fine.traj is made again from the start."""
        spec = self.cfg.interpolation
        if spec is None:
            return None
        stream = StreamingInterpolation(
            spec.interpolator, self.cfg.output.directory / FINE_NAME, self.atoms.numbers,
            self.cfg.output.stride, self.cfg.dynamics.timestep_fs, self.atoms.get_masses(),
            transport=spec.transport, maxsize=spec.queue_size, threads=1,
            cell=self.cell).start()
        if resume:
            for k, frame in enumerate(read(self.paths["trajectory"], ":")):
                stream.submit(CoarseFrame(
                    k, float(frame.info["time_fs"]), frame.positions, frame.get_momenta(),
                    forces=frame.get_forces(), energy=frame.get_potential_energy()))
        return stream

    def _record_timing(self, start_step: int, wall: float) -> None:
        meta = json.loads(self.paths["metadata"].read_text())
        steps = self.step_index - start_step
        meta.setdefault("sessions", []).append({
            "steps": steps, "wall_time_s": round(wall, 3),
            "ms_per_step": round(1e3 * wall / steps, 4) if steps else None,
        })
        write_json_atomic(self.paths["metadata"], meta)


def run_simulation(cfg: SimulationConfig, resume: bool = False, overwrite: bool = False,
                   progress: bool = True) -> SimulationResult:
    """Set up and run a simulation from a validated input."""
    return Simulation(cfg).run(resume=resume, overwrite=overwrite, progress=progress)
