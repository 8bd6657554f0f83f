"""Structure changes must not change results: digests of reference runs, recorded and checked.

Runs a fixed set of hybrid runs and prints, for each, a digest of its fine and coarse
trajectories (positions, momenta, energies, forces and per-frame info, read back with ASE),
its timeline and its summary (wall-clock keys left out). ``--record FILE`` keeps the digests;
``--check FILE`` reruns and compares, exit 1 where any differs. A refactoring records on the
commit before it and checks after.

- ``quickstart``: inputs/quickstart.yaml (forecaster network, monitor process, Bi-LSTM stream);
- ``cold-start``: inputs/malonaldehyde-cold-start.yaml shortened to 3 ps (learner, rollbacks);
- ``cold-start-mpi``: the same under ``mpiexec -n 4`` (learner and monitor ranks);
- ``api-resume``: ``HybridDynamics`` ethanol, ``run(40)`` twice (the second call resumes).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/same_runs.py --record /tmp/before.json
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/same_runs.py --check /tmp/before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from ase.io import read

REPO = Path(__file__).resolve().parent.parent
#: summary keys that hold wall-clock figures or the run folder's path
UNSTABLE = {"wall_time_s", "learner_s", "waited_s", "directory", "path", "run"}


def _digest_frames(path: Path) -> str:
    h = hashlib.sha256()
    for atoms in read(path, index=":"):
        for a in (atoms.positions, atoms.get_momenta()):
            h.update(np.ascontiguousarray(a, dtype=float).tobytes())
        if atoms.calc is not None:
            h.update(np.ascontiguousarray(atoms.get_forces(), dtype=float).tobytes())
            h.update(np.float64(atoms.get_potential_energy()).tobytes())
        h.update(json.dumps(atoms.info, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _stable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in UNSTABLE}
    return value


def digests(folder: Path) -> dict[str, str]:
    """Digests of a run folder's fine and coarse trajectories, timeline and summary."""
    summary = _stable(json.loads((folder / "summary.json").read_text()))
    return {
        "fine": _digest_frames(folder / "fine.traj"),
        "coarse": _digest_frames(folder / "coarse.traj"),
        "timeline": hashlib.sha256((folder / "timeline.tsv").read_bytes()).hexdigest()[:16],
        "summary": hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()[:16],
    }


def _input(name: str, out: Path, **dynamics: float) -> Path:
    data = yaml.safe_load((REPO / "inputs" / name).read_text())
    data["dynamics"].update(dynamics)
    data["output"] = {"directory": str(out)}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str | Path, mpi: int = 0) -> None:
    exe = Path(sys.executable).parent
    cmd = ([str(exe / "mpiexec"), "-n", str(mpi)] if mpi else []) + [
        str(exe / "hybridmd"), *map(str, args)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=1800)


def quickstart(tmp: Path) -> Path:
    out = tmp / "quickstart"
    _cli("run", _input("quickstart.yaml", out), "--overwrite")
    return out


def cold_start(tmp: Path) -> Path:
    out = tmp / "cold-start"
    _cli("run", _input("malonaldehyde-cold-start.yaml", out, duration_fs=3000), "--overwrite")
    return out


def cold_start_mpi(tmp: Path) -> Path:
    out = tmp / "cold-start-mpi"
    _cli("run", _input("malonaldehyde-cold-start.yaml", out, duration_fs=3000), "--overwrite",
         mpi=4)
    return out


def api_resume(tmp: Path) -> Path:
    from hybridmd.ase_interface import HybridDynamics
    from hybridmd.calculators import build_calculator
    from hybridmd.config import SGDMLConfig, SystemConfig
    from hybridmd.structures import build_structure

    atoms = build_structure(SystemConfig(molecule="ethanol"))
    atoms.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), atoms)
    out = tmp / "api-resume"
    dyn = HybridDynamics(atoms, timestep_fs=0.5, stride=20, directory=out,
                         forecaster="ethanol-forecaster-10fs",
                         interpolator="ethanol-bilstm-10fs", seed=3)
    dyn.run(40)
    dyn.run(40)
    return out


CASES: dict[str, Callable[[Path], Path]] = {
    "quickstart": quickstart, "cold-start": cold_start, "cold-start-mpi": cold_start_mpi,
    "api-resume": api_resume}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--record", type=Path, help="write the digests to this file")
    what.add_argument("--check", type=Path, help="compare with the digests in this file")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    expected = json.loads(args.check.read_text()) if args.check else {}
    found: dict[str, dict[str, str]] = {}
    differs = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            found[name] = digests(CASES[name](Path(tmp)))
            for part, value in found[name].items():
                want = expected.get(name, {}).get(part)
                same = "" if not args.check else ("same" if want == value else
                                                  f"DIFFERS (was {want})")
                differs |= bool(args.check) and want != value
                print(f"{name:15s} {part:9s} {value} {same}", flush=True)
    if args.record:
        args.record.write_text(json.dumps(found, indent=1) + "\n")
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
