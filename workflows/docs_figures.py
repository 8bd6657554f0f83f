"""The figures of the documentation site (docs/figures/), from real runs.

Runs the quickstart (`hybridmd run inputs/quickstart.yaml`), the same input with every segment
simulated (`forecaster: none`, the full simulation), and `hybridmd analyze` of the one against
the other; copies the hybrid run's timeline.png and the report's VDOS and distributions into
docs/figures/quickstart-*.png. Then 3 ps of the cold-start input
(inputs/malonaldehyde-cold-start.yaml, which learns its force field as it goes) for
docs/figures/cold-start-timeline.png and the summary it prints.
About four minutes on 2 cores.

Run: OMP_NUM_THREADS=1 .venv/bin/python workflows/docs_figures.py
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path

import yaml

from hybridmd.cli import main as hybridmd

REPO = Path(__file__).resolve().parents[1]
#: the figures, by name in docs/figures/, and the file of the runs each is copied from
FIGURES = {
    "quickstart-timeline.png": "quickstart/timeline.png",
    "quickstart-vdos.png": "analysis/vdos.png",
    "quickstart-distributions.png": "analysis/distributions.png",
    "cold-start-timeline.png": "cold-start/timeline.png",
}
log = logging.getLogger("docs_figures")


def _input(work: Path, name: str, source: str = "quickstart.yaml", duration_fs: float | None = None,
           **hybrid: object) -> Path:
    """A shipped input, writing to ``work/name``, with ``hybrid`` keys replaced."""
    data = yaml.safe_load((REPO / "inputs" / source).read_text())
    data["hybrid"].update(hybrid)
    if duration_fs is not None:
        data["dynamics"]["duration_fs"] = duration_fs
    data["output"] = {"directory": str((work / name).relative_to(REPO))}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "docs-figures",
                        help="folder for the runs")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)  # the run folders are named as a user names them: runs/...
    for name, hybrid in (("quickstart", {}), ("full", {"forecaster": None})):
        code = hybridmd(["-q", "run", str(_input(args.work, name, **hybrid)), "--overwrite"])
        if code:
            return code
    analysis = args.work / "analysis"
    code = hybridmd(["-q", "analyze", "--reference", str(args.work / "full"),
                     "--prediction", str(args.work / "quickstart"), "--out", str(analysis)])
    if code:
        return code
    cold = _input(args.work, "cold-start", "malonaldehyde-cold-start.yaml", duration_fs=3000)
    code = hybridmd(["-q", "run", str(cold), "--overwrite"])
    if code:
        return code
    for name, source in FIGURES.items():
        shutil.copy(args.work / source, args.out / name)
        log.info("wrote %s", args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
