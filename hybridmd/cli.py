"""The `hybridmd` command line: one sub-command per task."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hybridmd import __version__

log = logging.getLogger("hybridmd")


def _simulate(args: argparse.Namespace) -> int:
    from hybridmd.calculators import CalculatorMismatchError
    from hybridmd.config import ConfigError, SimulationConfig, load_config
    from hybridmd.simulate import Simulation

    cfg = load_config(args.input, SimulationConfig)
    try:
        simulation = Simulation(cfg)
    except CalculatorMismatchError as exc:
        raise ConfigError(str(args.input), [("calculator.model", str(exc))]) from None
    result = simulation.run(resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    status = "interrupted" if result.interrupted else "finished"
    print(f"{status}: {result.steps} steps, {result.frames} frames in {result.trajectory} "
          f"({result.wall_time_s:.1f} s)")
    return 130 if result.interrupted else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridmd", description="Hybrid MD: coarse simulation plus ML time super-resolution.")
    parser.add_argument("--version", action="version", version=f"hybridmd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="thermostated MD from a YAML input")
    sim.add_argument("input", type=Path, help="YAML input file")
    sim.add_argument("--resume", action="store_true",
                     help="continue the run in the output folder from its last checkpoint")
    sim.add_argument("--overwrite", action="store_true",
                     help="replace an earlier run in the output folder")
    sim.set_defaults(func=_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from hybridmd.config import ConfigError
    from hybridmd.safety import SimulationError

    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SimulationError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
