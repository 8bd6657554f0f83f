"""The bad-input table of the fault-injection suite: every sub-command, every file it reads.

``Workspace`` makes, once, real files to break (a fine ethanol trajectory from the shipped sGDML
model, its coarse frames, finished run folders) and broken ones (empty, truncated, corrupt,
wrong type, wrong molecule or atom order, NaN, overlapping atoms). Each ``Case`` is the command
line of one bad input and the words its error must contain: the key, flag or file it names.
The test (tests/test_reliability.py) and benchmarks/reliability.py run them all and require
exit code 2, no traceback and those words.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from ase import Atoms
from ase.build import molecule
from ase.io import read, write

from hybridmd.data import forecaster_path, interpolator_path

import bad_input_classes

#: a key to leave out of an input
DROP = object()

SIMULATE: dict[str, Any] = {
    "system": {"molecule": "ethanol"},
    "calculator": {"type": "sgdml", "model": "ethanol"},
    "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "steps": 10, "temperature_K": 300,
                 "seed": 1},
    "output": {"checkpoint_interval_s": 0},
}
RUN: dict[str, Any] = {
    "system": {"molecule": "ethanol"},
    "calculator": {"type": "sgdml", "model": "ethanol"},
    "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "duration_fs": 20,
                 "temperature_K": 300, "seed": 1},
    "hybrid": {"stride": 20, "interpolator": "quintic", "transport": "thread",
               "monitor": {"workers": 0}},
    "output": {"checkpoint_interval_s": 0},
}
TRAIN: dict[str, Any] = {
    "data": {"validation_fraction": 0.3},
    "model": {"kind": "bilstm-residual", "stride": 20, "context": 2,
              "hyperparameters": {"hidden": 8, "layers": 1}},
    "training": {"max_epochs": 1, "batches_per_epoch": 1, "batch_size": 4, "threads": 1},
}
#: a `train` input of the hybrid loop's forecaster: only the keys its training uses
TRAIN_FORECASTER: dict[str, Any] = {
    "data": {"validation_fraction": 0.3},
    "model": {"kind": "forecaster", "stride": 20, "hyperparameters": {"hidden": 8, "layers": 1}},
    "training": {"max_minutes": 0.05, "batches_per_epoch": 1, "batch_size": 4, "threads": 1},
}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied section by section (``DROP`` removes a key)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class Workspace:
    """Real files, good and broken, in one folder; inputs are written on demand."""

    def __init__(self, root: Path):
        self.root = root
        self.out = root / "out"
        self.out.mkdir(parents=True)
        self._make_files()

    # -- files ---------------------------------------------------------------------------------
    def path(self, name: str) -> str:
        return str(self.root / name)

    def _bytes(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)

    def _make_files(self) -> None:
        from hybridmd.config import SimulationConfig, parse_config
        from hybridmd.simulate import Simulation

        fine = _merge(SIMULATE, {"dynamics": {"steps": 300},
                                 "output": {"directory": str(self.root / "made-fine")}})
        Simulation(parse_config(fine, SimulationConfig, "fine.yaml")).run(progress=False)
        shutil.copy(self.root / "made-fine" / "trajectory.traj", self.root / "fine.traj")
        frames = read(self.root / "fine.traj", ":")
        write(self.root / "coarse.traj", frames[::20])
        write(self.root / "one-frame.traj", frames[:1])
        write(self.root / "short.traj", frames[:10])
        order = [2, 1, 0, *range(3, 9)]
        write(self.root / "reordered.traj", [self._permuted(a, order) for a in frames])
        write(self.root / "reordered-coarse.traj",
              [self._permuted(a, order) for a in frames[::20]])
        write(self.root / "water.traj", self._water(len(frames), 0.5))
        write(self.root / "water-coarse.traj", self._water(8, 10.0))
        write(self.root / "no-momenta.xyz", molecule("CH3CH2OH"))
        start = frames[0].copy()
        start.positions[4] = np.nan
        write(self.root / "nan.xyz", start)
        start = frames[0].copy()
        start.positions[5] = start.positions[4] + 0.05
        write(self.root / "overlap.xyz", start)
        write(self.root / "one-atom.xyz", Atoms("H", positions=[[0, 0, 0]]))
        fine_bytes = (self.root / "fine.traj").read_bytes()
        self._bytes("truncated.traj", fine_bytes[: len(fine_bytes) // 2])
        # a header that announces 2**40 frames: ASE's reader raises MemoryError
        self._bytes("huge-header.traj", fine_bytes[:32] + struct.pack("<q", 2**40)
                    + fine_bytes[40:])
        self._bytes("garbage.traj", bytes(range(256)) * 8)
        self._bytes("garbage.xyz", b"this is\nnot a molecule\n")
        self._bytes("garbage.npz", b"PK\x03\x04 not really a zip")
        self._bytes("garbage.pt", bytes(range(256)) * 8)
        self._bytes("notes.pt", b"a text file with a .pt name\n")
        self._bytes("structure.foo", b"9\nethanol\n")
        self._bytes("garbage.yaml", bytes(range(256)))
        self._bytes("malformed.yaml", b"system: {molecule: ethanol\ncalculator: [\n")
        self._bytes("list.yaml", b"- system\n- calculator\n")
        for name in ("empty.traj", "empty.xyz", "empty.pt", "empty.npz", "empty.yaml"):
            self._bytes(name, b"")
        model = (Path(__file__).parents[1] / "hybridmd/data/models/ethanol.npz").read_bytes()
        self._bytes("truncated.npz", model[: len(model) // 2])
        net = interpolator_path("ethanol-bilstm-10fs").read_bytes()
        self._bytes("truncated.pt", net[: len(net) // 2])
        torch.save({"weights": torch.zeros(3)}, self.root / "pickle.pt")
        shutil.copy(interpolator_path("ethanol-bilstm-10fs"), self.root / "model.pt")
        self._make_periodic_files()
        (self.root / "a-folder").mkdir()
        (self.root / "empty-folder").mkdir()
        self._bytes("a-file", b"a file, not a folder\n")
        bad_input_classes.make_files(self.root)
        self._make_run_folders()

    def _make_periodic_files(self) -> None:
        """Two waters in a 7 Å box; one in a box narrower than MACE's cutoff; two whose atoms
        meet across the face x = 0; a MACE model file that knows hydrogen only."""
        from ase.calculators.emt import EMT

        from hybridmd.hybrid.mace_force_field import MaceSettings, fit_mace

        water = molecule("H2O")
        box = Atoms(cell=[7.0] * 3, pbc=True)
        for shift in ([1.5, 1.5, 1.5], [5.0, 5.0, 5.0]):
            w = water.copy()
            w.positions += shift
            box += w
        write(self.root / "water-box.extxyz", box)
        small = water.copy()
        small.set_cell([4.0] * 3)
        small.pbc = True
        small.positions += 2.0
        write(self.root / "small-box.extxyz", small)
        across = box.copy()  # the two oxygens 0.3 Å apart through the face x = 0
        across.positions[:3] += [0.2, 2.0, 2.0] - across.positions[0]
        across.positions[3:] += [6.9, 2.0, 2.0] - across.positions[3]
        write(self.root / "overlap-box.extxyz", across)
        frames = []
        rng = np.random.default_rng(0)
        for _ in range(6):
            h2 = Atoms("H2", positions=[[0, 0, 0], [0.74 + 0.1 * rng.standard_normal(), 0, 0]])
            h2.calc = EMT()
            frames.append((h2.positions, h2.get_forces(), h2.get_potential_energy()))
        r, f, e = (np.array(x) for x in zip(*frames, strict=True))
        model = fit_mace(r, f, e, np.array([1, 1]), MaceSettings(epochs=1, committee=1),
                         version=1)
        torch.save(model.modules[0], self.root / "hydrogen.model")

    @staticmethod
    def _permuted(atoms: Atoms, order: list[int]) -> Atoms:
        out = atoms[order]
        out.info = dict(atoms.info)
        return out

    @staticmethod
    def _water(n: int, dt_fs: float) -> list[Atoms]:
        rng = np.random.default_rng(0)
        frames = []
        for k in range(n):
            atoms = molecule("H2O")
            atoms.positions += 0.01 * rng.standard_normal((3, 3))
            atoms.set_momenta(0.01 * rng.standard_normal((3, 3)))
            atoms.info["time_fs"] = k * dt_fs
            frames.append(atoms)
        return frames

    def _make_run_folders(self) -> None:
        """Finished runs, some then damaged, each with the input that made it."""
        from hybridmd.cli import main

        with contextlib.redirect_stdout(io.StringIO()):  # their summaries
            self._make_runs(main)
            self._make_foreign_files(main)

    def _make_runs(self, main: Callable[[list[str]], int]) -> None:
        for name in ("sim-done", "sim-bad-checkpoint", "sim-bad-trajectory"):
            assert main(["-q", "simulate", self.sim(name)]) == 0
        for name in ("run-done", "run-bad-state", "run-bad-checkpoint", "run-bad-coarse",
                     "run-no-checkpoint"):
            assert main(["-q", "run", self.run(name)]) == 0
        (self.out / "run-no-checkpoint" / "checkpoint.json").unlink()  # as if killed early
        (self.out / "sim-bad-checkpoint" / "checkpoint.json").write_text('{"step": 4, "fra')
        traj = self.out / "sim-bad-trajectory" / "trajectory.traj"
        traj.write_bytes(traj.read_bytes()[:300])
        (self.out / "run-bad-state" / "resume-state.pkl").write_bytes(b"\x80\x04garbage")
        (self.out / "run-bad-checkpoint" / "checkpoint.json").write_text("")
        (self.out / "run-bad-coarse" / "coarse.traj").write_bytes(bytes(range(256)))
        record = self.out / "run-bad-record"  # for `analyze`: fine.traj intact, run.json not
        record.mkdir()
        shutil.copy(self.out / "run-done" / "fine.traj", record / "fine.traj")
        (record / "run.json").write_text(json.dumps({"input": {}})[:-3])

    def _make_foreign_files(self, main: Callable[[list[str]], int]) -> None:
        """Run folders holding another run's files (issue 28, class 4), a folder another run
        holds, and a training to resume with other data or settings."""
        from hybridmd.run_lock import RunLock

        shutil.copy(interpolator_path("ethanol-bilstm-10fs"), self.root / "interp.pt")
        for name in ("run-foreign-checkpoint", "run-foreign-state", "run-foreign-coarse",
                     "run-foreign-fine", "run-other-molecule", "run-other-time-step"):
            assert main(["-q", "run", self.run(name)]) == 0
        assert main(["-q", "run", self.run("run-other-seed", dynamics={"seed": 2})]) == 0
        assert main(["-q", "run", self.run("run-interp", hybrid={
            "interpolator": self.path("interp.pt")})]) == 0
        for name in ("sim-foreign-checkpoint", "sim-foreign-trajectory"):
            assert main(["-q", "simulate", self.sim(name)]) == 0
        assert main(["-q", "simulate", self.sim("sim-other-seed", dynamics={"seed": 2})]) == 0
        out, done = self.out, self.out / "run-done"
        shutil.copy(done / "checkpoint.json", out / "run-foreign-checkpoint")
        shutil.copy(done / "resume-state.pkl", out / "run-foreign-state")
        shutil.copy(out / "run-other-seed" / "coarse.traj", out / "run-foreign-coarse")
        shutil.copy(out / "run-other-seed" / "fine.traj", out / "run-foreign-fine")
        shutil.copy(out / "sim-done" / "checkpoint.json", out / "sim-foreign-checkpoint")
        shutil.copy(out / "sim-other-seed" / "trajectory.traj", out / "sim-foreign-trajectory")
        # the interpolator file swapped for another network under the same name
        shutil.copy(interpolator_path("ethanol-bilstm-10fs-100-600K"), self.root / "interp.pt")
        # this run's own checkpoint (its run id), holding another molecule or time grid
        path = out / "run-other-molecule" / "checkpoint.json"
        state = json.loads(path.read_text())
        for key in ("positions", "arrival", "departure", "forces"):
            state["frame"][key] = state["frame"][key][:3]
        path.write_text(json.dumps(state))
        path = out / "run-other-time-step" / "checkpoint.json"
        state = json.loads(path.read_text())
        state["frame"]["time_fs"] *= 2
        path.write_text(json.dumps(state))
        #: a run folder another run holds (the lock, for the workspace's life)
        assert main(["-q", "run", self.run("run-in-use")]) == 0
        self.held = RunLock.of_folder(out / "run-in-use").claim()
        self.held_training = RunLock(out / "train-in-use" / ".model.pt.lock",
                                     "output.checkpoint", "a training").claim()
        assert main(["-q", "train", self.train("train-done")]) == 0
        write(self.root / "fine-later.traj", read(self.root / "fine.traj", "50:"))

    # -- inputs --------------------------------------------------------------------------------
    def _input(self, kind: str, base: dict[str, Any], name: str, changes: dict[str, Any]) -> str:
        data = _merge(base, changes)
        if kind == "train":
            data["data"].setdefault("trajectories", [{"path": self.path("fine.traj")}])
            data.setdefault("output", {}).setdefault("checkpoint",
                                                     str(self.out / name / "model.pt"))
        else:
            data.setdefault("output", {}).setdefault("directory", str(self.out / name))
        path = self.root / f"{kind}-{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    def sim(self, name: str, **changes: Any) -> str:
        """A `simulate` input (10 steps of ethanol) with ``changes``; its output in out/NAME."""
        return self._input("simulate", SIMULATE, name, changes)

    def run(self, name: str, **changes: Any) -> str:
        """A `run` input (two segments, quintic, no forecaster) with ``changes``."""
        return self._input("run", RUN, name, changes)

    def train(self, name: str, **changes: Any) -> str:
        """A `train` input (fine.traj, a tiny Bi-LSTM) with ``changes``."""
        return self._input("train", TRAIN, name, changes)

    def train_forecaster(self, name: str, **changes: Any) -> str:
        """A `train` input of a tiny forecaster (fine.traj) with ``changes``."""
        return self._input("train", TRAIN_FORECASTER, name, changes)


@dataclass(frozen=True)
class Case:
    """One bad input: its command line (made in a workspace) and what its error must say."""

    id: str
    argv: Callable[[Workspace], list[str]]
    says: tuple[str, ...]  #: words the error must contain (the key, flag or file, the fix)
    #: the class of issue 28 (``bad_input_classes.CLASSES``), or "earlier" for the cases
    #: from before it
    cls: str = "earlier"


def _system(file: str, **more: Any) -> dict[str, Any]:
    return {"system": {"molecule": DROP, "file": file, **more}}


def _cases() -> list[Case]:
    c: list[Case] = []

    def case(id: str, says: tuple[str, ...] | str, argv: Callable[[Workspace], list[str]],
             cls: str = "earlier") -> None:
        c.append(Case(id, argv, (says,) if isinstance(says, str) else says, cls))

    # ---------------------------------------------------------------- simulate: the input file
    case("simulate/input-missing", ("nope.yaml", "not found"),
         lambda w: ["simulate", w.path("nope.yaml")])
    case("simulate/input-empty", ("empty.yaml", "mapping"),
         lambda w: ["simulate", w.path("empty.yaml")])
    case("simulate/input-binary", ("garbage.yaml", "not a text file"),
         lambda w: ["simulate", w.path("garbage.yaml")])
    case("simulate/input-folder", ("a-folder", "folder"),
         lambda w: ["simulate", w.path("a-folder")])
    case("simulate/input-malformed", ("malformed.yaml", "malformed YAML", "line"),
         lambda w: ["simulate", w.path("malformed.yaml")])
    case("simulate/input-a-list", ("list.yaml", "mapping"),
         lambda w: ["simulate", w.path("list.yaml")])
    # ---------------------------------------------------------------- simulate: keys and values
    case("simulate/typo-key", ("dynamics.tmperature_K", "temperature_K"),
         lambda w: ["simulate", w.sim("typo", dynamics={"tmperature_K": 300})])
    case("simulate/timestep-out-of-range", "dynamics.timestep_fs",
         lambda w: ["simulate", w.sim("dt", dynamics={"timestep_fs": 50})])
    case("simulate/negative-temperature", "dynamics.temperature_K",
         lambda w: ["simulate", w.sim("temp", dynamics={"temperature_K": -5})])
    case("simulate/duration-not-whole-steps", ("duration_fs", "whole number of steps"),
         lambda w: ["simulate", w.sim("dur", dynamics={"steps": DROP, "duration_fs": 10.3})])
    case("simulate/steps-and-duration", ("steps", "duration_fs"),
         lambda w: ["simulate", w.sim("both", dynamics={"duration_fs": 5})])
    case("simulate/replicas-zero", "replicas",
         lambda w: ["simulate", w.sim("rep", replicas=0)])
    case("simulate/unknown-calculator", ("calculator", "sgdml"),
         lambda w: ["simulate", w.sim("calc", calculator={"type": "gaussian"})])
    case("simulate/ase-calculator-not-importable", ("calculator", "nope_module"),
         lambda w: ["simulate", w.sim("ase", calculator={
             "type": "ase", "model": DROP, "import_path": "nope_module:Calc"})])
    case("simulate/interpolation-without-stride", ("interpolation", "output.stride"),
         lambda w: ["simulate", w.sim("istride", interpolation={"interpolator": "quintic"})])
    # ---------------------------------------------------------------- simulate: the structure
    case("simulate/structure-missing", ("system.file", "nope.xyz", "not found"),
         lambda w: ["simulate", w.sim("s0", **_system("nope.xyz"))])
    case("simulate/structure-empty", ("system.file", "empty.xyz", "empty"),
         lambda w: ["simulate", w.sim("s1", **_system(w.path("empty.xyz")))])
    case("simulate/structure-empty-traj", ("system.file", "empty.traj", "empty"),
         lambda w: ["simulate", w.sim("s2", **_system(w.path("empty.traj")))])
    case("simulate/structure-corrupt-traj", ("system.file", "garbage.traj"),
         lambda w: ["simulate", w.sim("s3", **_system(w.path("garbage.traj")))])
    case("simulate/structure-truncated-traj", ("system.file", "truncated.traj"),
         lambda w: ["simulate", w.sim("s4", **_system(w.path("truncated.traj")))])
    case("simulate/structure-impossible-header", ("system.file", "huge-header.traj",
                                                   "impossible size"),
         lambda w: ["simulate", w.sim("s15", **_system(w.path("huge-header.traj")))])
    case("simulate/structure-not-xyz", ("system.file", "garbage.xyz"),
         lambda w: ["simulate", w.sim("s5", **_system(w.path("garbage.xyz")))])
    case("simulate/structure-unknown-format", ("system.file", "structure.foo"),
         lambda w: ["simulate", w.sim("s6", **_system(w.path("structure.foo")))])
    case("simulate/structure-index-past-end", ("fine.traj", "out of range", "301 frames"),
         lambda w: ["simulate", w.sim("s7", **_system(w.path("fine.traj"), index=5000))])
    case("simulate/structure-negative-index-past-end", ("fine.traj", "out of range"),
         lambda w: ["simulate", w.sim("s8", **_system(w.path("fine.traj"), index=-400))])
    case("simulate/structure-nan", ("system.file", "nan.xyz", "non-finite", "[4]"),
         lambda w: ["simulate", w.sim("s9", **_system(w.path("nan.xyz")))])
    case("simulate/structure-overlapping-atoms", ("atoms 4 and 5", "safety.min_distance_A"),
         lambda w: ["simulate", w.sim("s10", **_system(w.path("overlap.xyz")))])
    case("simulate/structure-one-atom", ("one-atom.xyz", "needs two"),
         lambda w: ["simulate", w.sim("s11", **_system(w.path("one-atom.xyz")))])
    case("simulate/structure-folder", ("system.file", "a-folder", "folder"),
         lambda w: ["simulate", w.sim("s12", **_system(w.path("a-folder")))])
    case("simulate/structure-npz-corrupt", ("system.file", "garbage.npz"),
         lambda w: ["simulate", w.sim("s13", **_system(w.path("garbage.npz")))])
    case("simulate/structure-wrong-molecule-for-model", ("calculator.model", "C2H6O"),
         lambda w: ["simulate", w.sim("s14", system={"molecule": "malonaldehyde"})])
    # ---------------------------------------------------------------- simulate: momenta
    case("simulate/momenta-missing", ("dynamics.initial_momenta.file", "nope.traj"),
         lambda w: ["simulate", w.sim("m0", dynamics={"initial_momenta": {"file": "nope.traj"}})])
    case("simulate/momenta-corrupt", ("dynamics.initial_momenta.file", "garbage.traj"),
         lambda w: ["simulate", w.sim("m1", dynamics={
             "initial_momenta": {"file": w.path("garbage.traj")}})])
    case("simulate/momenta-none-in-file", ("no-momenta.xyz", "carries no momenta"),
         lambda w: ["simulate", w.sim("m2", dynamics={
             "initial_momenta": {"file": w.path("no-momenta.xyz")}})])
    case("simulate/momenta-wrong-molecule", ("water.traj", "same molecule"),
         lambda w: ["simulate", w.sim("m3", dynamics={
             "initial_momenta": {"file": w.path("water.traj")}})])
    case("simulate/momenta-wrong-order", ("reordered.traj", "same atom order"),
         lambda w: ["simulate", w.sim("m4", dynamics={
             "initial_momenta": {"file": w.path("reordered.traj")}})])
    case("simulate/momenta-index-past-end", ("fine.traj", "out of range"),
         lambda w: ["simulate", w.sim("m5", dynamics={
             "initial_momenta": {"file": w.path("fine.traj"), "index": 999}})])
    case("simulate/momenta-not-a-name", ("dynamics.initial_momenta", "maxwell-boltzmann"),
         lambda w: ["simulate", w.sim("m6", dynamics={"initial_momenta": "boltzmann"})])
    # ---------------------------------------------------------------- simulate: model files
    case("simulate/sgdml-model-corrupt", ("calculator.model", "garbage.npz"),
         lambda w: ["simulate", w.sim("c0", calculator={
             "type": "sgdml", "model": w.path("garbage.npz")})])
    case("simulate/sgdml-model-truncated", ("calculator.model", "truncated.npz"),
         lambda w: ["simulate", w.sim("c1", calculator={
             "type": "sgdml", "model": w.path("truncated.npz")})])
    case("simulate/sgdml-model-empty", ("calculator.model", "empty.npz"),
         lambda w: ["simulate", w.sim("c2", calculator={
             "type": "sgdml", "model": w.path("empty.npz")})])
    case("simulate/interpolator-corrupt", ("interpolation.interpolator", "garbage.pt"),
         lambda w: ["simulate", w.sim("c3", output={"stride": 20}, dynamics={"steps": 40},
                                      interpolation={"interpolator": w.path("garbage.pt")})])
    case("simulate/interpolator-wrong-stride", ("interpolation.interpolator", "20"),
         lambda w: ["simulate", w.sim("c4", output={"stride": 10}, interpolation={
             "interpolator": "ethanol-bilstm-10fs"})])
    # ---------------------------------------------------------------- simulate: output folder
    case("simulate/output-under-a-file", ("output.directory", "a-file", "is a file"),
         lambda w: ["simulate", w.sim("o0", output={"directory": w.path("a-file/run")})])
    case("simulate/output-is-a-file", ("output.directory", "a-file"),
         lambda w: ["simulate", w.sim("o1", output={"directory": w.path("a-file")})])
    case("simulate/existing-run", ("already holds a run", "--resume", "--overwrite"),
         lambda w: ["simulate", w.sim("sim-done")])
    case("simulate/resume-nothing", ("nothing to resume", "without --resume"),
         lambda w: ["simulate", w.sim("fresh"), "--resume"])
    case("simulate/resume-and-overwrite", ("--overwrite", "--resume"),
         lambda w: ["simulate", w.sim("sim-done"), "--resume", "--overwrite"])
    case("simulate/resume-corrupt-checkpoint", ("checkpoint.json", "--overwrite"),
         lambda w: ["simulate", w.sim("sim-bad-checkpoint"), "--resume"])
    case("simulate/resume-truncated-trajectory", ("trajectory.traj", "--overwrite"),
         lambda w: ["simulate", w.sim("sim-bad-trajectory"), "--resume"])
    case("simulate/resume-changed-input", ("input changed", "dynamics.seed"),
         lambda w: ["simulate", w.sim("sim-done", dynamics={"seed": 2}), "--resume"])

    # ---------------------------------------------------------------- run
    case("run/typo-in-hybrid", ("hybrid.strid", "stride"),
         lambda w: ["run", w.run("r0", hybrid={"strid": 20})])
    case("run/length-not-whole-segments", ("hybrid.stride", "multiple"),
         lambda w: ["run", w.run("r1", dynamics={"duration_fs": 25})])
    case("run/duration-not-whole-steps", ("duration_fs", "whole number of steps"),
         lambda w: ["run", w.run("r2", dynamics={"duration_fs": 20.2})])
    case("run/nose-hoover", ("dynamics.integrator", "bussi"),
         lambda w: ["run", w.run("r3", dynamics={"integrator": "nose-hoover"})])
    case("run/monitor-fraction-out-of-range", "hybrid.monitor.fraction",
         lambda w: ["run", w.run("r4", hybrid={"monitor": {"fraction": 1.5}})])
    case("run/check-with-a-forecaster-network", ("hybrid.check", "forecaster: learn"),
         lambda w: ["run", w.run("c0", hybrid={"check": {"fraction": 0.1}})])
    case("run/check-tolerance-not-positive", "hybrid.check.force_tolerance_eV_A",
         lambda w: ["run", w.run("c1", hybrid={"check": {"force_tolerance_eV_A": 0}})])
    case("run/ml-unguarded", ("switch.verified_segments: 0", "hybrid.check.halve_after"),
         lambda w: ["run", w.run("c2", hybrid={"switch": {"verified_segments": 0}})])
    case("run/unknown-interpolator", ("hybrid.interpolator", "spline"),
         lambda w: ["run", w.run("r5", hybrid={"interpolator": "spline"})])
    case("run/forecaster-corrupt", ("hybrid.forecaster", "garbage.pt"),
         lambda w: ["run", w.run("f0", hybrid={"forecaster": w.path("garbage.pt")})])
    case("run/forecaster-empty", ("hybrid.forecaster", "empty.pt", "empty"),
         lambda w: ["run", w.run("f1", hybrid={"forecaster": w.path("empty.pt")})])
    case("run/forecaster-text-file", ("hybrid.forecaster", "notes.pt"),
         lambda w: ["run", w.run("f2", hybrid={"forecaster": w.path("notes.pt")})])
    case("run/forecaster-truncated", ("hybrid.forecaster", "truncated.pt"),
         lambda w: ["run", w.run("f3", hybrid={"forecaster": w.path("truncated.pt")})])
    case("run/forecaster-not-a-checkpoint", ("hybrid.forecaster", "pickle.pt", "dict"),
         lambda w: ["run", w.run("f4", hybrid={"forecaster": w.path("pickle.pt")})])
    case("run/forecaster-is-an-interpolator", ("hybrid.forecaster", "interpolator"),
         lambda w: ["run", w.run("f5", hybrid={
             "forecaster": str(interpolator_path("ethanol-bilstm-10fs"))})])
    case("run/forecaster-wrong-segment", ("hybrid.forecaster", "hybrid.stride 40"),
         lambda w: ["run", w.run("f6", dynamics={"duration_fs": 40}, hybrid={
             "stride": 40, "forecaster": "ethanol-forecaster-10fs"})])
    case("run/forecaster-wrong-molecule", ("hybrid.forecaster", "C3H4O2"),
         lambda w: ["run", w.run("f7", system={"molecule": "malonaldehyde"},
                                 calculator={"type": "sgdml", "model": "malonaldehyde"},
                                 hybrid={"forecaster": "ethanol-forecaster-10fs"})])
    case("run/interpolator-wrong-molecule", ("hybrid.interpolator", "C3H4O2"),
         lambda w: ["run", w.run("i0", system={"molecule": "malonaldehyde"},
                                 calculator={"type": "sgdml", "model": "malonaldehyde"},
                                 hybrid={"interpolator": "ethanol-bilstm-10fs"})])
    case("run/interpolator-empty", ("hybrid.interpolator", "empty.pt"),
         lambda w: ["run", w.run("i1", hybrid={"interpolator": w.path("empty.pt")})])
    case("run/interpolator-is-a-forecaster", ("hybrid.interpolator", "forecaster"),
         lambda w: ["run", w.run("i2", hybrid={
             "interpolator": str(forecaster_path("ethanol-forecaster-10fs"))})])
    case("run/structure-nan", ("nan.xyz", "non-finite"),
         lambda w: ["run", w.run("n0", **_system(w.path("nan.xyz")))])
    case("run/structure-overlapping-atoms", ("safety.min_distance_A", "overlap.xyz"),
         lambda w: ["run", w.run("n1", **_system(w.path("overlap.xyz")))])
    # ---------------------------------------------------------------- run: periodic cells
    case("run/periodic-dft-with-a-molecular-basis",
         ("calculator.basis", "not a GTH basis", "periodic cell", "gth-dzvp"),
         lambda w: ["run", w.run("p0", calculator={"type": "dft", "basis": "def2-SVP",
                                                   "model": DROP},
                                 **_system(w.path("water-box.extxyz")))], "condensed-phase")
    case("run/periodic-atoms-overlap-across-the-boundary",
         ("overlap-box.extxyz", "across the periodic boundary", "safety.min_distance_A"),
         lambda w: ["run", w.run("p1", calculator={"type": "xtb", "model": DROP},
                                 **_system(w.path("overlap-box.extxyz")))], "condensed-phase")
    case("run/periodic-cell-smaller-than-the-cutoff", ("4.00 Å across", "cutoff", "larger"),
         lambda w: ["run", w.run("p2", calculator={"type": "xtb", "model": DROP},
                                 hybrid={"forecaster": "learn"},
                                 **_system(w.path("small-box.extxyz")))], "condensed-phase")
    case("run/learn-start-from-other-elements",
         ("hybrid.learn.start_from", "hydrogen.model", "does not know the elements O"),
         lambda w: ["run", w.run("p3", calculator={"type": "xtb", "model": DROP},
                                 hybrid={"forecaster": "learn",
                                         "learn": {"start_from": w.path("hydrogen.model")}},
                                 **_system(w.path("water-box.extxyz")))], "condensed-phase")
    case("run/learn-start-from-not-a-mace-model", ("hybrid.learn.start_from", "pickle.pt"),
         lambda w: ["run", w.run("p4", calculator={"type": "xtb", "model": DROP},
                                 hybrid={"forecaster": "learn",
                                         "learn": {"start_from": w.path("pickle.pt")}},
                                 **_system(w.path("water-box.extxyz")))], "condensed-phase")
    case("run/learn-start-from-for-sgdml", ("start_from", "force_field: mace"),
         lambda w: ["run", w.run("p5", hybrid={"forecaster": "learn", "learn": {
             "force_field": "sgdml", "start_from": w.path("hydrogen.model")}})], "condensed-phase")
    case("run/learn-max-L-with-start-from", ("max_L and r_max", "start_from", "remove one"),
         lambda w: ["run", w.run("p6", hybrid={"forecaster": "learn", "learn": {
             "max_L": 1, "r_max": 5.0, "start_from": w.path("hydrogen.model")}})],
         "condensed-phase")
    # ---------------------------------------------------------------- run: i-PI and its clients
    case("run/socket-client-of-the-user-with-monitors",
         ("calculator", "monitors", "calculator.command"),
         lambda w: ["run", w.run("s0", calculator={"type": "socket", "address": "mine",
                                                   "model": DROP},
                                 hybrid={"monitor": {"fraction": 0.1}})], "i-pi-clients")
    case("run/socket-client-file-missing", ("calculator", "files", "nowhere.inp"),
         lambda w: ["run", w.run("s1", calculator={"type": "socket", "command": "x {address}",
                                                   "files": ["nowhere.inp"], "model": DROP})],
         "i-pi-clients")
    case("run/socket-address-is-a-path", ("calculator", "unix socket name, not a path"),
         lambda w: ["run", w.run("s2", calculator={"type": "socket", "address": "/tmp/x",
                                                   "model": DROP},
                                 hybrid={"monitor": {"fraction": 0.0}})], "i-pi-clients")
    case("run/ipi-engine-port-without-inet", ("engine", "`port:` needs `socket: inet`"),
         lambda w: ["run", w.run("s3", engine={"type": "ipi", "port": 4000})], "i-pi-clients")
    case("run/ipi-engine-with-its-own-thermostat",
         ("engine", "thermostat acts at their boundaries", "dynamics.integrator"),
         lambda w: ["run", w.run("s4", engine={"type": "ipi", "thermostat": "svr"})],
         "i-pi-clients")
    case("run/momenta-missing", ("dynamics.initial_momenta.file", "nope.traj"),
         lambda w: ["run", w.run("n2", dynamics={"initial_momenta": {"file": "nope.traj"}})])
    case("run/output-under-a-file", ("output.directory", "a-file"),
         lambda w: ["run", w.run("o0", output={"directory": w.path("a-file/run")})])
    case("run/existing-run", ("already holds a run", "--overwrite"),
         lambda w: ["run", w.run("run-done")])
    case("run/resume-and-overwrite", ("--overwrite", "--resume"),
         lambda w: ["run", w.run("run-done"), "--overwrite", "--resume"])
    case("run/resume-before-the-first-checkpoint", ("nothing to resume", "--overwrite"),
         lambda w: ["run", w.run("run-no-checkpoint"), "--resume"])
    case("run/resume-corrupt-state", ("resume-state.pkl", "--overwrite"),
         lambda w: ["run", w.run("run-bad-state"), "--resume"])
    case("run/resume-empty-checkpoint", ("checkpoint.json", "empty"),
         lambda w: ["run", w.run("run-bad-checkpoint"), "--resume"])
    case("run/resume-corrupt-coarse-frames", ("coarse.traj", "--overwrite"),
         lambda w: ["run", w.run("run-bad-coarse"), "--resume"])
    case("run/resume-changed-input", ("input changed", "hybrid.queue_size"),
         lambda w: ["run", w.run("run-done", hybrid={"queue_size": 3}), "--resume"])
    # ---------------------------------------------------------------- run folders: whose files
    case("run/folder-held-by-another-run", ("output.directory", "another run (pid",
                                            "run-in-use"),
         lambda w: ["run", w.run("run-in-use"), "--resume"])
    case("run/folder-held-by-another-run-overwrite", ("another run (pid", "run-in-use"),
         lambda w: ["run", w.run("run-in-use"), "--overwrite"])
    case("simulate/folder-held-by-another-run", ("another run (pid", "run-in-use"),
         lambda w: ["simulate", w.sim("run-in-use", output={
             "directory": str(w.out / "run-in-use")}), "--overwrite"])
    case("run/resume-checkpoint-of-another-run", ("checkpoint.json", "another run",
                                                  "--overwrite"),
         lambda w: ["run", w.run("run-foreign-checkpoint"), "--resume"])
    case("run/resume-state-of-another-run", ("resume-state.pkl", "another run"),
         lambda w: ["run", w.run("run-foreign-state"), "--resume"])
    case("run/resume-coarse-frames-of-another-run", ("coarse.traj", "another run"),
         lambda w: ["run", w.run("run-foreign-coarse"), "--resume"])
    case("run/resume-fine-frames-of-another-run", ("fine.traj", "another run"),
         lambda w: ["run", w.run("run-foreign-fine"), "--resume"])
    case("run/resume-interpolator-swapped", ("hybrid.interpolator", "interp.pt",
                                             "not the file the run", "sha256"),
         lambda w: ["run", w.run("run-interp", hybrid={"interpolator": w.path("interp.pt")}),
                    "--resume"])
    case("run/resume-checkpoint-of-another-molecule", ("checkpoint.json", "3 atoms", "9"),
         lambda w: ["run", w.run("run-other-molecule"), "--resume"])
    case("run/resume-checkpoint-of-another-time-step", ("checkpoint.json", "stride 20",
                                                        "0.5 fs"),
         lambda w: ["run", w.run("run-other-time-step"), "--resume"])
    case("simulate/resume-checkpoint-of-another-run", ("checkpoint.json", "another run"),
         lambda w: ["simulate", w.sim("sim-foreign-checkpoint"), "--resume"])
    case("simulate/resume-trajectory-of-another-run", ("trajectory.traj", "another run"),
         lambda w: ["simulate", w.sim("sim-foreign-trajectory"), "--resume"])
    case("train/checkpoint-held-by-another-training", ("output.checkpoint",
                                                       "another run (pid"),
         lambda w: ["train", w.train("train-in-use")])
    case("train/resume-with-other-data", ("data.trajectories", "fine-later.traj",
                                          "not the data"),
         lambda w: ["train", w.train("train-done", data={"trajectories": [
             {"path": w.path("fine-later.traj")}]}), "--resume"])
    case("train/resume-with-other-settings", ("input changed", "model.hyperparameters.hidden"),
         lambda w: ["train", w.train("train-done", model={"hyperparameters": {"hidden": 16}}),
                    "--resume"])

    # ---------------------------------------------------------------- serve
    case("serve/typo-in-dynamics", ("dynamics.tmestep_fs", "timestep_fs"),
         lambda w: ["serve", w.sim("v0", dynamics={"tmestep_fs": 0.5}), "--address", "x"])
    case("serve/typo-in-output", ("output.strde", "stride"),
         lambda w: ["serve", w.sim("v1", output={"strde": 2}), "--address", "x"])
    case("serve/unknown-section", ("dynamic", "unknown key"),
         lambda w: ["serve", w.sim("v2", dynamic={"timestep_fs": 0.5}, dynamics=DROP),
                    "--address", "x"])
    case("serve/timeout-negative", ("--timeout", "positive"),
         lambda w: ["serve", w.sim("v3"), "--address", "x", "--timeout", "-1"])
    case("serve/timeout-zero", ("--timeout", "positive"),
         lambda w: ["serve", w.sim("v4"), "--address", "x", "--timeout", "0"])
    case("serve/inet-without-port", ("--inet", "HOST:PORT"),
         lambda w: ["serve", w.sim("v5"), "--inet", "localhost"])
    case("serve/structure-corrupt", ("system.file", "garbage.traj"),
         lambda w: ["serve", w.sim("v6", **_system(w.path("garbage.traj"))), "--address", "x"])
    case("serve/input-missing", ("nope.yaml", "not found"),
         lambda w: ["serve", w.path("nope.yaml"), "--address", "x"])

    # ---------------------------------------------------------------- train
    case("train/unknown-hyperparameter", ("model.hyperparameters", "hiden", "'hidden'"),
         lambda w: ["train", w.train("t0", model={"hyperparameters": {"hiden": 8}})])
    case("train/unknown-forecaster-hyperparameter", ("model.hyperparameters", "dropout"),
         lambda w: ["train", w.train_forecaster("t1", model={
             "hyperparameters": {"dropout": 0.1}})])
    case("train/bad-hyperparameter-value", ("model.hyperparameters", "activation"),
         lambda w: ["train", w.train("t2", model={"kind": "bi-node",
                                                  "hyperparameters": {"activation": "relu"}})])
    case("train/unknown-kind", ("model.kind", "bilstm-residual"),
         lambda w: ["train", w.train("t3", model={"kind": "bilstm"})])
    case("train/validation-fraction-out-of-range", "data.validation_fraction",
         lambda w: ["train", w.train("t4", data={"validation_fraction": 0.7})])
    case("train/step-schedule-without-milestones", ("training", "milestones"),
         lambda w: ["train", w.train("t24", training={"schedule": "step"})])
    case("train/one-reading-of-a-one-way-model",
         ("training.time_reversal", "not symmetric", "symmetric: true"),
         lambda w: ["train", w.train("t25", model={"hyperparameters": {"symmetric": False}},
                                     training={"time_reversal": "random"})])
    case("train/stride-one", "model.stride",
         lambda w: ["train", w.train("t5", model={"stride": 1})])
    case("train/checkpoint-is-a-folder", ("output.checkpoint", "a-folder", "folder"),
         lambda w: ["train", w.train("t6", output={"checkpoint": w.path("a-folder")})])
    case("train/checkpoint-under-a-file", ("output.checkpoint", "a-file"),
         lambda w: ["train", w.train("t7", output={"checkpoint": w.path("a-file/model.pt")})])
    case("train/existing-model", ("output.checkpoint", "already exists", "--overwrite"),
         lambda w: ["train", w.train("t8", output={"checkpoint": w.path("model.pt")})])
    case("train/resume-nothing", ("nothing to resume", "without --resume"),
         lambda w: ["train", w.train("t9"), "--resume"])
    case("train/resume-corrupt-checkpoint", ("output.checkpoint", "garbage.pt"),
         lambda w: ["train", w.train("t10", output={"checkpoint": w.path("garbage.pt")}),
                    "--resume"])
    case("train/resume-final-model", ("output.checkpoint", "no training state"),
         lambda w: ["train", w.train("t11", output={
             "checkpoint": str(interpolator_path("ethanol-bilstm-10fs"))}), "--resume"])
    case("train/resume-and-overwrite", ("--overwrite", "--resume"),
         lambda w: ["train", w.train("t12"), "--resume", "--overwrite"])
    case("train/wrong-spacing", ("coarse.traj", "wrong spacing", "20 MD steps"),
         lambda w: ["train", w.train("t13", data={"trajectories": [
             {"path": w.path("coarse.traj")}]})])
    case("train/forecaster-wrong-spacing", ("coarse.traj", "wrong spacing"),
         lambda w: ["train", w.train_forecaster("t14", data={"trajectories": [
             {"path": w.path("coarse.traj")}]})])
    case("train/too-little-data", ("too little data", "frames"),
         lambda w: ["train", w.train("t15", data={"trajectories": [
             {"path": w.path("short.traj")}]})])
    case("train/data-empty", ("empty.traj", "empty"),
         lambda w: ["train", w.train("t16", data={"trajectories": [
             {"path": w.path("empty.traj")}]})])
    case("train/data-truncated", "truncated.traj",
         lambda w: ["train", w.train("t17", data={"trajectories": [
             {"path": w.path("truncated.traj")}]})])
    case("train/data-impossible-header", ("huge-header.traj", "impossible size"),
         lambda w: ["train", w.train("t23", data={"trajectories": [
             {"path": w.path("huge-header.traj")}]})])
    case("train/data-corrupt", "garbage.traj",
         lambda w: ["train", w.train("t18", data={"trajectories": [
             {"path": w.path("garbage.traj")}]})])
    case("train/data-no-match", ("no file matches", "nope-"),
         lambda w: ["train", w.train("t19", data={"trajectories": [
             {"path": w.path("nope-*.traj")}]})])
    case("train/data-two-molecules", ("water.traj", "differ"),
         lambda w: ["train", w.train("t20", data={"trajectories": [
             {"path": w.path("fine.traj")}, {"path": w.path("water.traj")}]})])
    case("train/data-two-atom-orders", ("reordered.traj", "differ"),
         lambda w: ["train", w.train("t21", data={"trajectories": [
             {"path": w.path("fine.traj")}, {"path": w.path("reordered.traj")}]})])
    case("train/forecaster-resume", ("--resume", "forecaster"),
         lambda w: ["train", w.train_forecaster("t22", output={"checkpoint": w.path("model.pt")}),
                    "--resume"])
    case("train/forecaster-interpolator-keys",
         ("model.context", "training.schedule", "forecaster's training does not use"),
         lambda w: ["train", w.train_forecaster("t26", model={"context": 2},
                                                training={"schedule": "cosine"})])

    # ---------------------------------------------------------------- interpolate
    def interp(w: Workspace, model: str, coarse: str, out: str = "out/fine.traj",
               *more: str) -> list[str]:
        return ["interpolate", "--model", model, w.path(coarse), "-o", w.path(out), *more]

    shipped = str(interpolator_path("ethanol-bilstm-10fs"))
    case("interpolate/model-missing", ("nope.pt",),
         lambda w: interp(w, w.path("nope.pt"), "coarse.traj"))
    case("interpolate/model-corrupt", "garbage.pt",
         lambda w: interp(w, w.path("garbage.pt"), "coarse.traj"))
    case("interpolate/model-text-file", "notes.pt",
         lambda w: interp(w, w.path("notes.pt"), "coarse.traj"))
    case("interpolate/model-truncated", "truncated.pt",
         lambda w: interp(w, w.path("truncated.pt"), "coarse.traj"))
    case("interpolate/model-empty", ("empty.pt", "empty"),
         lambda w: interp(w, w.path("empty.pt"), "coarse.traj"))
    case("interpolate/model-not-a-checkpoint", ("pickle.pt", "not a hybridmd"),
         lambda w: interp(w, w.path("pickle.pt"), "coarse.traj"))
    case("interpolate/model-is-a-forecaster", ("forecaster", "interpolator"),
         lambda w: interp(w, str(forecaster_path("ethanol-forecaster-10fs")), "coarse.traj"))
    case("interpolate/coarse-missing", "nope.traj",
         lambda w: interp(w, shipped, "nope.traj"))
    case("interpolate/coarse-empty", ("empty.traj", "empty"),
         lambda w: interp(w, shipped, "empty.traj"))
    case("interpolate/coarse-corrupt", "garbage.traj",
         lambda w: interp(w, shipped, "garbage.traj"))
    case("interpolate/coarse-truncated", "truncated.traj",
         lambda w: interp(w, shipped, "truncated.traj"))
    case("interpolate/coarse-folder", ("a-folder", "folder"),
         lambda w: interp(w, shipped, "a-folder"))
    case("interpolate/coarse-at-fine-spacing", ("fine.traj", "coarse spacing", "10 fs"),
         lambda w: interp(w, shipped, "fine.traj"))
    case("interpolate/coarse-wrong-molecule", ("water-coarse.traj", "C2H6O"),
         lambda w: interp(w, shipped, "water-coarse.traj"))
    case("interpolate/coarse-wrong-atom-order", ("reordered-coarse.traj", "atom order"),
         lambda w: interp(w, shipped, "reordered-coarse.traj"))
    case("interpolate/coarse-one-frame", ("one-frame.traj",),
         lambda w: interp(w, shipped, "one-frame.traj"))
    case("interpolate/output-missing-folder", ("-o/--output", "no-such-folder", "mkdir"),
         lambda w: interp(w, shipped, "coarse.traj", "no-such-folder/fine.traj"))
    case("interpolate/output-unknown-format", ("-o/--output", ".pdb"),
         lambda w: interp(w, shipped, "coarse.traj", "out/fine.pdb"))
    case("interpolate/output-under-a-file", ("-o/--output", "a-file"),
         lambda w: interp(w, shipped, "coarse.traj", "a-file/fine.traj"))
    case("interpolate/output-is-a-folder", ("-o/--output", "a-folder"),
         lambda w: interp(w, shipped, "coarse.traj", "a-folder"))
    case("interpolate/dt-negative", ("--dt-fs", "positive"),
         lambda w: interp(w, shipped, "coarse.traj", "out/fine.traj", "--dt-fs", "-1"))

    # ---------------------------------------------------------------- evaluate
    def ev(w: Workspace, *more: str, reference: str = "fine.traj") -> list[str]:
        return ["evaluate", "--reference", w.path(reference), *more]

    case("evaluate/plot-into-missing-folder", ("--plot", "no-such-folder", "does not exist"),
         lambda w: ev(w, "--plot", w.path("no-such-folder/error.png")))
    case("evaluate/plot-unknown-format", ("--plot", ".xyz"),
         lambda w: ev(w, "--plot", w.path("out/error.xyz")))
    case("evaluate/json-under-a-file", ("--json", "a-file"),
         lambda w: ev(w, "--json", w.path("a-file/scores.json")))
    case("evaluate/json-is-a-folder", ("--json", "a-folder"),
         lambda w: ev(w, "--json", w.path("a-folder")))
    case("evaluate/reference-missing", "nope.traj",
         lambda w: ev(w, reference="nope.traj"))
    case("evaluate/reference-empty", ("empty.traj", "empty"),
         lambda w: ev(w, reference="empty.traj"))
    case("evaluate/reference-corrupt", "garbage.traj",
         lambda w: ev(w, reference="garbage.traj"))
    case("evaluate/reference-truncated", "truncated.traj",
         lambda w: ev(w, reference="truncated.traj"))
    case("evaluate/reference-too-short", ("short.traj", "too short"),
         lambda w: ev(w, "--stride", "20", reference="short.traj"))
    case("evaluate/reference-wrong-molecule", ("water.traj", "C2H6O"),
         lambda w: ev(w, "--model", shipped, reference="water.traj"))
    case("evaluate/references-differ", ("water.traj", "differ"),
         lambda w: ev(w, w.path("water.traj"), "--stride", "20"))
    case("evaluate/model-corrupt", "garbage.pt",
         lambda w: ev(w, "--model", w.path("garbage.pt")))
    case("evaluate/stride-one", ("--stride", "at least 2"),
         lambda w: ev(w, "--stride", "1"))
    case("evaluate/dt-zero", ("--dt-fs", "positive"),
         lambda w: ev(w, "--dt-fs", "0"))

    # ---------------------------------------------------------------- analyze
    an = bad_input_classes.analyze_argv

    case("analyze/reference-missing", ("--reference", "nope.traj"),
         lambda w: an(w, reference="nope.traj"))
    case("analyze/reference-empty-folder", ("--reference", "empty-folder", "fine.traj"),
         lambda w: an(w, reference="empty-folder"))
    case("analyze/prediction-corrupt", ("--prediction", "garbage.traj"),
         lambda w: an(w, prediction="garbage.traj"))
    case("analyze/prediction-empty", ("--prediction", "empty.traj"),
         lambda w: an(w, prediction="empty.traj"))
    case("analyze/prediction-wrong-molecule", ("different molecules", "water.traj"),
         lambda w: an(w, prediction="water.traj"))
    case("analyze/run-folder-corrupt-record", ("--prediction", "run.json"),
         lambda w: an(w, prediction="out/run-bad-record"))
    case("analyze/out-under-a-file", ("--out", "a-file"),
         lambda w: ["analyze", "--reference", w.path("fine.traj"), "--prediction",
                    w.path("fine.traj"), "--out", w.path("a-file/analysis")])
    case("analyze/dihedral-out-of-range", ("--dihedral", "out of range", "9 atoms"),
         lambda w: an(w, "--dihedral", "0", "1", "2", "40", "--dihedral", "0", "1", "2", "3"))
    case("analyze/dihedral-repeated-atom", ("--dihedral 0 1 1 3", "four different atoms"),
         lambda w: an(w, "--dihedral", "0", "1", "1", "3"))
    case("analyze/stride-zero", ("--stride", "at least 2"),
         lambda w: an(w, "--stride", "0"))
    case("analyze/temperature-negative", ("--temperature-k", "positive"),
         lambda w: an(w, "--temperature-k", "-300"))
    bad_input_classes.add_cases(case, DROP)
    return c


CASES: list[Case] = _cases()

