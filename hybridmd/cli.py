"""The `hybridmd` command line: one sub-command per task."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hybridmd import __version__
from hybridmd.parallel import abort_on_error, mpi_size, mpi_world

if TYPE_CHECKING:
    from hybridmd.config import SimulationConfig

log = logging.getLogger("hybridmd")


def _simulate(args: argparse.Namespace) -> int:
    from hybridmd.calculators import CalculatorMismatchError
    from hybridmd.config import ConfigError, SimulationConfig, load_config
    from hybridmd.simulate import Simulation

    cfg = load_config(args.input, SimulationConfig)
    if cfg.replicas > 1 or mpi_size() > 1:
        return _simulate_replicas(cfg, args)
    try:
        simulation = Simulation(cfg)
    except CalculatorMismatchError as exc:
        raise ConfigError(str(args.input), [("calculator.model", str(exc))]) from None
    result = simulation.run(resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    status = "interrupted" if result.interrupted else "finished"
    print(f"{status}: {result.steps} steps, {result.frames} frames in {result.trajectory} "
          f"({result.wall_time_s:.1f} s)")
    return 130 if result.interrupted else 0


def _run(args: argparse.Namespace) -> int:
    from hybridmd.calculators import CalculatorMismatchError
    from hybridmd.config import ConfigError, RunConfig, load_config
    from hybridmd.hybrid.driver import HybridRun
    from hybridmd.hybrid.mpi import run_hybrid_mpi
    from hybridmd.hybrid.summary import format_summary
    from hybridmd.parallel import run_replicas

    cfg = load_config(args.input, RunConfig)
    comm = mpi_world()
    context = _input_context(args.input)
    try:
        if cfg.replicas > 1:
            def one(replica: RunConfig) -> object:
                return HybridRun(replica, context=context).run(
                    resume=args.resume, overwrite=args.overwrite,
                    progress=not args.quiet and (comm is None or comm.Get_size() == 1))

            for k, result in run_replicas(cfg, runner=one):
                print(f"replica {k}:\n{format_summary(result.summary)}")
            return 0
        if comm is not None and comm.Get_size() > 1:
            result = run_hybrid_mpi(cfg, comm, args.resume, args.overwrite, not args.quiet,
                                    context)
            if result is None:  # the interpolator and monitor ranks
                return 0
        else:
            run = HybridRun(cfg, context=context)
            result = run.run(resume=args.resume, overwrite=args.overwrite,
                             progress=not args.quiet)
    except CalculatorMismatchError as exc:
        raise ConfigError(str(args.input), [("calculator.model", str(exc))]) from None
    print(format_summary(result.summary))
    if result.interrupted:
        print("interrupted: continue with --resume")
    return 130 if result.interrupted else 0


def _input_context(path: Path) -> dict:
    """What a monitor process needs to validate the input again as ``load_config`` did."""
    return {"base_dir": str(path.resolve().parent), "input_name": path.stem}


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. localhost:31415; got {text!r}")
    return host, int(port)


def _serve(args: argparse.Namespace) -> int:
    from hybridmd.calculators import CalculatorMismatchError, build_calculator
    from hybridmd.config import ConfigError, ServeConfig, load_config
    from hybridmd.engines.ipi import serve
    from hybridmd.structures import build_structure

    cfg = load_config(args.input, ServeConfig)
    atoms = build_structure(cfg.system)
    try:
        calculator = build_calculator(cfg.calculator, atoms)
    except CalculatorMismatchError as exc:
        raise ConfigError(str(args.input), [("calculator.model", str(exc))]) from None
    host, port = args.inet or (None, None)
    calls = serve(atoms, calculator, address=args.address, host=host, port=port,
                  timeout_s=args.timeout)
    print(f"i-PI closed the connection after {calls} force evaluations")
    return 0


def _simulate_replicas(cfg: SimulationConfig, args: argparse.Namespace) -> int:
    """``replicas: N``: this rank's replicas (all of them without MPI), one line each."""
    from hybridmd.calculators import CalculatorMismatchError
    from hybridmd.config import ConfigError
    from hybridmd.parallel import run_replicas

    try:
        results = run_replicas(cfg, resume=args.resume, overwrite=args.overwrite,
                               progress=not args.quiet)
    except CalculatorMismatchError as exc:
        raise ConfigError(str(args.input), [("calculator.model", str(exc))]) from None
    for k, result in results:
        status = "interrupted" if result.interrupted else "finished"
        print(f"replica {k}: {status}: {result.steps} steps, {result.frames} frames in "
              f"{result.trajectory} ({result.wall_time_s:.1f} s)")
    return 130 if any(result.interrupted for _, result in results) else 0


def _train(args: argparse.Namespace) -> int:
    from hybridmd.config import TrainConfig, load_config
    from hybridmd.training import train

    cfg = load_config(args.input, TrainConfig)
    result = train(cfg, resume=args.resume, progress=not args.quiet, start_from=args.start_from)
    print(f"trained {result.epochs} epochs in {result.minutes:.1f} min: best validation "
          f"position MAE {result.best_val_position_mae:.2e} Å -> {result.checkpoint}")
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    from hybridmd.checkpoint import load_interpolator
    from hybridmd.interpolation.reconstruct import reconstruct
    from hybridmd.readers import read_trajectory, write_trajectory

    model = load_interpolator(args.model)
    coarse = read_trajectory(args.coarse, dt_fs=args.dt_fs)
    fine = reconstruct(model, coarse)
    write_trajectory(fine, args.output)
    print(f"{len(coarse)} coarse frames -> {len(fine)} fine frames ({fine.dt_fs:g} fs apart) "
          f"in {args.output}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from hybridmd.checkpoint import load_interpolator
    from hybridmd.interpolation.evaluate import evaluate, format_table, scores_as_dicts
    from hybridmd.readers import read_trajectory

    models = [load_interpolator(path) for path in args.model]
    references = [read_trajectory(path, dt_fs=args.dt_fs) for path in args.reference]
    scores = evaluate(models, references, strides=tuple(args.stride))
    print(format_table(scores))
    if args.json:
        args.json.write_text(json.dumps(scores_as_dicts(scores), indent=1))
    if args.plot:
        from hybridmd.interpolation.evaluate import plot_error_vs_dt

        plot_error_vs_dt(scores, args.plot)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from hybridmd.analysis.report import analyze
    from hybridmd.analysis.sources import read_source

    reference, ref_notes = read_source(args.reference, args.dt_fs)
    prediction, pred_notes = read_source(args.prediction, args.dt_fs)
    scores = analyze(reference, prediction, args.out, dihedrals=args.dihedral or None,
                     interpolated_stride=args.stride, temperature_K=args.temperature_k,
                     notes=ref_notes + pred_notes)
    print(f"{scores['frames']} frames compared: position MAE {scores['position_mae']:.2e} Å, "
          f"VDOS overlap {scores['vdos_overlap']:.4f} -> {args.out / 'report.md'}")
    for note in scores["notes"]:
        print(f"note: {note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridmd", description="Hybrid MD: coarse simulation plus ML time super-resolution.")
    parser.add_argument("--version", action="version", version=f"hybridmd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, func, text in (
            ("simulate", _simulate, "thermostated MD from a YAML input"),
            ("run", _run, "the hybrid loop: simulation and ML forecasts, monitored, with the "
                          "fine trajectory streamed by the interpolator")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("input", type=Path, help="YAML input file")
        cmd.add_argument("--resume", action="store_true",
                         help="continue the run in the output folder from its last checkpoint")
        cmd.add_argument("--overwrite", action="store_true",
                         help="replace an earlier run in the output folder")
        cmd.set_defaults(func=func)

    sv = sub.add_parser("serve", help="serve the input's calculator to a running i-PI "
                        "simulation (an i-PI force client, until i-PI sends EXIT)")
    sv.add_argument("input", type=Path,
                    help="YAML input; its system: and calculator: sections are used (the atom "
                         "order must be that of the i-PI simulation)")
    where = sv.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", "--unix", metavar="NAME",
                       help="unix socket: i-PI's <ffsocket mode='unix'><address> "
                            "(the socket file is /tmp/ipi_NAME)")
    where.add_argument("--inet", type=_host_port, metavar="HOST:PORT",
                       help="inet socket of an <ffsocket mode='inet'>")
    sv.add_argument("--timeout", type=float, default=60.0, metavar="S",
                    help="seconds to wait for the i-PI server (default: 60)")
    sv.set_defaults(func=_serve)

    tr = sub.add_parser("train", help="train an interpolator network from fine trajectories")
    tr.add_argument("input", type=Path, help="YAML training input")
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    tr.add_argument("--from", dest="start_from", metavar="CHECKPOINT",
                    help="start from this checkpoint's network (a file or a shipped name) and "
                         "fine-tune it on the input's data")
    tr.set_defaults(func=_train)

    ip = sub.add_parser("interpolate", help="reconstruct the fine trajectory of a coarse one")
    ip.add_argument("--model", required=True, type=Path, help="interpolator checkpoint")
    ip.add_argument("coarse", type=Path, help="coarse trajectory (any format hybridmd reads)")
    ip.add_argument("-o", "--output", required=True, type=Path, help="fine trajectory to write")
    ip.add_argument("--dt-fs", type=float, help="coarse frame spacing where the file has none")
    ip.set_defaults(func=_interpolate)

    ev = sub.add_parser("evaluate", help="score models and classical baselines on a reference")
    ev.add_argument("--model", action="append", default=[], type=Path,
                    help="interpolator checkpoint (repeatable; none: baselines only)")
    ev.add_argument("--reference", required=True, type=Path, nargs="+",
                    help="fine reference trajectory, or several (e.g. NVE segments): windows "
                    "are cut from each, none spans two")
    ev.add_argument("--stride", action="append", default=[], type=int,
                    help="also score the baselines at this stride (repeatable)")
    ev.add_argument("--dt-fs", type=float, help="reference frame spacing where the file has none")
    ev.add_argument("--json", type=Path, help="write the scores as JSON")
    ev.add_argument("--plot", type=Path, help="plot position MAE against Δt to this PNG")
    ev.set_defaults(func=_evaluate)

    an = sub.add_parser("analyze", help="figures, scores and a report of a reconstruction "
                        "against its reference (VDOS, h(r), speeds, FES, internal coordinates)")
    an.add_argument("--reference", required=True, type=Path,
                    help="fine reference trajectory, or a run's output folder")
    an.add_argument("--prediction", required=True, type=Path,
                    help="reconstructed trajectory (e.g. from `hybridmd interpolate`), or the "
                         "output folder of `hybridmd run`")
    an.add_argument("--out", type=Path, default=Path("analysis"),
                    help="folder for the figures, scores.json and report.md (default: analysis)")
    an.add_argument("--dt-fs", type=float, help="frame spacing where a file has none")
    an.add_argument("--dihedral", action="append", nargs=4, type=int,
                    metavar=("I", "J", "K", "L"),
                    help="dihedral of the free-energy surface, 0-based atom indices (give two; "
                         "default: the two most flexible)")
    an.add_argument("--stride", type=int,
                    help="fine frames per interpolated window (default: from the prediction "
                         "file's metadata, if any)")
    an.add_argument("--temperature-k", type=float,
                    help="temperature of the free-energy surface (default: the reference's "
                         "kinetic temperature)")
    an.set_defaults(func=_analyze)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    from hybridmd.config import ConfigError
    from hybridmd.engines.ipi import IPIClientError
    from hybridmd.safety import SimulationError

    try:
        with abort_on_error():  # under MPI: one rank's error ends all ranks, with its message
            return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SimulationError, IPIClientError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
