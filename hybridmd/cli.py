"""The `hybridmd` command line: one sub-command per task.

Exit codes: 0 done, 2 bad input (an input, file or flag; the message names it and says the
fix, found before any expensive work wherever it can be), 130 stopped by SIGINT (Ctrl-C), 143
stopped by SIGTERM, 1 a failure while running. A problem is one message, no traceback; ``--debug``
adds the traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from hybridmd import __version__
from hybridmd.errors import InputError
from hybridmd.parallel import mpi_size, mpi_world
from hybridmd.run_lock import RunLock
from hybridmd.signals import Terminated, exit_code, received, terminate_raises

if TYPE_CHECKING:
    from hybridmd.config import RunConfig, SimulationConfig

log = logging.getLogger("hybridmd")

#: what a run's folder lets a user do after a failure that stopped it
_RESUME_HINT = "the frames so far are on disk: continue with --resume"


def _stop_code(interrupted: bool, signum: int | None) -> int:
    """0, or the exit code of the signal that stopped a run (SIGINT when unknown)."""
    if not interrupted:
        return 0
    return exit_code(signum or received() or 2)


# ----------------------------------------------------------------------------- commands


def _simulate(args: argparse.Namespace) -> int:
    from hybridmd.config import SimulationConfig, load_config
    from hybridmd.preflight import preflight_simulate
    from hybridmd.simulate import Simulation, check_simulation_folder

    cfg = load_config(args.input, SimulationConfig)
    args.writes = cfg.output.directory
    preflight_simulate(cfg)
    if cfg.replicas > 1 or mpi_size() > 1:
        return _simulate_replicas(cfg, args)
    with RunLock.of_folder(cfg.output.directory).probe():  # another run's: said first
        check_simulation_folder(cfg, args.resume, args.overwrite)
    result = Simulation(cfg).run(resume=args.resume, overwrite=args.overwrite,
                                 progress=not args.quiet)
    status = "interrupted" if result.interrupted else "finished"
    print(f"{status}: {result.steps} steps, {result.frames} frames in {result.trajectory} "
          f"({result.wall_time_s:.1f} s)")
    return _stop_code(result.interrupted, result.signal)


def _simulate_replicas(cfg: SimulationConfig, args: argparse.Namespace) -> int:
    """``replicas: N``: this rank's replicas (all of them without MPI), one line each."""
    from hybridmd.replicas import replica_config, run_replicas, this_rank_replicas
    from hybridmd.simulate import check_simulation_folder

    for k in this_rank_replicas(cfg.replicas):
        replica = replica_config(cfg, k)
        with RunLock.of_folder(replica.output.directory).probe():  # another run's: said first
            check_simulation_folder(replica, args.resume, args.overwrite)
    results = run_replicas(cfg, resume=args.resume, overwrite=args.overwrite,
                           progress=not args.quiet)
    for k, result in results:
        status = "interrupted" if result.interrupted else "finished"
        print(f"replica {k}: {status}: {result.steps} steps, {result.frames} frames in "
              f"{result.trajectory} ({result.wall_time_s:.1f} s)")
    stopped = [result for _, result in results if result.interrupted]
    return _stop_code(bool(stopped), stopped[0].signal if stopped else None)


def _run(args: argparse.Namespace) -> int:
    from hybridmd.config import RunConfig, load_config
    from hybridmd.hybrid.build import build_loop
    from hybridmd.hybrid.files import RunFolder
    from hybridmd.hybrid.mpi import run_hybrid_mpi
    from hybridmd.hybrid.session import HybridRun
    from hybridmd.hybrid.summary import format_summary
    from hybridmd.replicas import replica_config, run_replicas, this_rank_replicas

    cfg = load_config(args.input, RunConfig)
    args.writes = cfg.output.directory
    comm = mpi_world()
    context = _input_context(args.input)
    if cfg.replicas > 1:
        for k in this_rank_replicas(cfg.replicas):  # every folder before any replica runs
            replica = replica_config(cfg, k)
            with RunLock.of_folder(replica.output.directory).probe():
                RunFolder(replica.output.directory).check(replica, args.resume, args.overwrite)

        def one(replica: RunConfig) -> object:
            return HybridRun(replica, context=context).run(
                resume=args.resume, overwrite=args.overwrite,
                progress=not args.quiet and (comm is None or comm.Get_size() == 1))

        results = run_replicas(cfg, runner=one)
        for k, result in results:
            print(f"replica {k}:\n{format_summary(result.summary)}")
        return _stop_code(any(result.interrupted for _, result in results), None)
    if comm is not None and comm.Get_size() > 1:
        if comm.Get_rank() != 0:  # every rank refuses a bad input with the same line
            build_loop(cfg, context=context).loop.close()
        result = run_hybrid_mpi(cfg, comm, args.resume, args.overwrite, not args.quiet,
                                context)
        if result is None:  # the interpolator and monitor ranks
            return 0
    else:
        result = HybridRun(cfg, context=context).run(resume=args.resume,
                                                     overwrite=args.overwrite,
                                                     progress=not args.quiet)
    print(format_summary(result.summary))
    if result.interrupted:
        print("interrupted: continue with --resume")
    return _stop_code(result.interrupted, getattr(result, "signal", None))


def _input_context(path: Path) -> dict:
    """What a monitor process needs to validate the input again as ``load_config`` did."""
    return {"base_dir": str(path.resolve().parent), "input_name": path.stem}


def _serve(args: argparse.Namespace) -> int:
    from hybridmd.calculators import build_calculator
    from hybridmd.config import load_serve_config
    from hybridmd.engines.ipi import serve
    from hybridmd.structures import build_structure

    cfg = load_serve_config(args.input)
    atoms = build_structure(cfg.system)
    calculator = build_calculator(cfg.calculator, atoms)
    host, port = args.inet or (None, None)
    calls = serve(atoms, calculator, address=args.address, host=host, port=port,
                  timeout_s=args.timeout)
    print(f"i-PI closed the connection after {calls} force evaluations")
    return 0


def _train(args: argparse.Namespace) -> int:
    from hybridmd.config import TrainConfig, load_config
    from hybridmd.preflight import preflight_train
    from hybridmd.training import train

    cfg = load_config(args.input, TrainConfig)
    args.writes = cfg.output.checkpoint
    path = cfg.output.checkpoint
    lock = RunLock(path.with_name(f".{path.name}.lock"), "output.checkpoint",
                   f"the checkpoint {path}")
    probed = lock.probe().held  # another training of this checkpoint: refused first
    preflight_train(cfg, args.resume, args.overwrite, args.start_from)

    def on_start() -> None:  # the data read and checked: the checkpoint is this training's
        lock.claim()
        if not probed:
            preflight_train(cfg, args.resume, args.overwrite, args.start_from)

    with lock:
        result = train(cfg, resume=args.resume, progress=not args.quiet,
                       start_from=args.start_from, on_start=on_start)
    print(f"trained {result.epochs} epochs in {result.minutes:.1f} min: best validation "
          f"position MAE {result.best_val_position_mae:.2e} Å -> {result.checkpoint}")
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    from hybridmd.interpolation.reconstruct import reconstruct
    from hybridmd.interpolator_file import load_interpolator
    from hybridmd.preflight import check_input_file, check_not_an_input, check_output_file
    from hybridmd.readers import read_trajectory, write_trajectory

    check_input_file(args.coarse, "coarse trajectory")
    check_output_file(args.output, "-o/--output", existing_folder=True,
                      suffixes=(".traj", ".extxyz", ".xyz", ".npz"))
    check_not_an_input(args.output, "-o/--output",
                       [("the coarse trajectory", args.coarse), ("the --model file", args.model)])
    model = load_interpolator(args.model)
    coarse = read_trajectory(args.coarse, dt_fs=args.dt_fs)
    fine = reconstruct(model, coarse)
    write_trajectory(fine, args.output)
    print(f"{len(coarse)} coarse frames -> {len(fine)} fine frames ({fine.dt_fs:g} fs apart) "
          f"in {args.output}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from hybridmd.interpolation.evaluate import (
        evaluate,
        format_table,
        format_temperature_table,
        scores_as_dicts,
    )
    from hybridmd.interpolator_file import load_interpolator
    from hybridmd.preflight import check_input_file, check_not_an_input, check_output_file
    from hybridmd.readers import read_trajectory

    for path in args.reference:
        check_input_file(path, "--reference")
    inputs = ([("a --reference file", p) for p in args.reference]
              + [("a --model file", p) for p in args.model])
    if args.json:
        check_output_file(args.json, "--json", existing_folder=True)
        check_not_an_input(args.json, "--json", inputs)
    if args.plot:
        from hybridmd.interpolation.evaluate import plot_formats

        check_output_file(args.plot, "--plot", existing_folder=True, suffixes=plot_formats())
        check_not_an_input(args.plot, "--plot", inputs)
    models = [load_interpolator(path) for path in args.model]
    references = [read_trajectory(path, dt_fs=args.dt_fs) for path in args.reference]
    if not models and not args.stride:
        raise InputError("nothing to score: give --model (an interpolator to score against "
                         "the baselines) or --stride N (the baselines at N steps), or both")
    scores = evaluate(models, references, strides=tuple(args.stride),
                      bin_k=args.temperature_bin or None)
    print(format_table(scores))
    if args.temperature_bin:
        print(f"\nby window temperature (bins of {args.temperature_bin:g} K):\n")
        print(format_temperature_table(scores))
    if args.json:
        args.json.write_text(json.dumps(scores_as_dicts(scores), indent=1))
    if args.plot:
        from hybridmd.interpolation.evaluate import plot_error_vs_dt

        plot_error_vs_dt(scores, args.plot)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from hybridmd.analysis.report import analyze
    from hybridmd.analysis.sources import hybrid_run_folder, read_source
    from hybridmd.preflight import check_output_folder

    check_output_folder(args.out, "--out")
    reference, ref_notes = read_source(args.reference, args.dt_fs, "--reference")
    prediction, pred_notes = read_source(args.prediction, args.dt_fs, "--prediction")
    floor = None
    if args.floor is not None:
        floor, _ = read_source(args.floor, args.dt_fs, "--floor")
    _check_dihedrals(args.dihedral, reference.n_atoms)
    scores = analyze(reference, prediction, args.out, dihedrals=args.dihedral or None,
                     interpolated_stride=args.stride, temperature_K=args.temperature_k,
                     notes=ref_notes + pred_notes,
                     runs={role: path for role, path in (("prediction", args.prediction),
                                                         ("reference", args.reference))
                           if hybrid_run_folder(path)}, floor=floor)
    print(f"{scores['frames']} frames compared: position MAE {scores['position_mae']:.2e} Å, "
          f"VDOS overlap {scores['vdos_overlap']:.4f} -> {args.out / 'report.md'}")
    if scores["floor"]:
        f = scores["floor"]
        print(f"floor (reference against {args.floor}): position MAE {f['position_mae']:.2e} "
              f"Å, VDOS overlap {f['vdos_overlap']:.4f}")
    if scores["rdf"]:
        density = scores["density"]
        print(f"periodic cell: density {density['reference']['g_cm3']:.4f} g/cm³ (reference), "
              f"{density['prediction']['g_cm3']:.4f} (prediction); g(r) JS "
              + ", ".join(f"{pair} {s['js_bits']:.2e} bit" if s["js_bits"] is not None
                          else f"{pair} n/a" for pair, s in scores["rdf"]["pairs"].items()))
    for note in scores["notes"]:
        print(f"note: {note}")
    return 0


def _check_dihedrals(dihedrals: list[list[int]] | None, n_atoms: int) -> None:
    """--dihedral: four different atoms of the molecule each."""
    for atoms in dihedrals or []:
        bad = [i for i in atoms if not 0 <= i < n_atoms]
        if bad:
            raise InputError(f"--dihedral {' '.join(map(str, atoms))}: atom index {bad[0]} is "
                             f"out of range; the molecule has {n_atoms} atoms (0 to "
                             f"{n_atoms - 1})")
        if len(set(atoms)) != 4:
            raise InputError(f"--dihedral {' '.join(map(str, atoms))}: give four different "
                             "atoms")


# ----------------------------------------------------------------------------- arguments


def _number(kind: type, minimum: float, strict: bool, maximum: float, what: str):
    """An argparse type: a finite number of ``kind`` above (``strict``) or at least
    ``minimum``, at most ``maximum`` (a huge value is a typo: it would hang or overflow)."""
    what = f"{what}, at most {maximum:g}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what} (a finite number), got {text!r}")
        if value < minimum or (strict and value == minimum) or value > maximum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


#: the largest frame spacing (fs), temperature (K), time-out (s) and stride the flags take
_MAX_FS, _MAX_K, _MAX_S, _MAX_STRIDE = 1e6, 1e6, 1e7, 10**6
_positive = _number(float, 0, True, _MAX_FS, "a positive number of fs")
_positive_kelvin = _number(float, 0, True, _MAX_K, "a positive temperature in K")
_kelvin_or_zero = _number(float, 0, False, _MAX_K, "a number of K, 0 or more")
_positive_seconds = _number(float, 0, True, _MAX_S, "a positive number of seconds")
_stride = _number(int, 2, False, _MAX_STRIDE, "a whole number of steps, at least 2")


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. localhost:31415; got {text!r}")
    return host, int(port)


def _common(parser: argparse.ArgumentParser) -> None:
    """Options that work after the sub-command too (``hybridmd run x.yaml --debug``)."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars and no INFO lines: warnings, errors and the "
                             "result only")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error (and debug logging)")


def _resume_flags(parser: argparse.ArgumentParser, resume: str, overwrite: str) -> None:
    flags = parser.add_mutually_exclusive_group()
    flags.add_argument("--resume", action="store_true", help=resume)
    flags.add_argument("--overwrite", action="store_true", help=overwrite)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybridmd", description="Hybrid MD: coarse simulation plus ML time super-resolution.",
        epilog="exit codes: 0 done, 1 failed while running, 2 bad input, 130 SIGINT, 143 SIGTERM")
    parser.add_argument("--version", action="version", version=f"hybridmd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars and no INFO lines: warnings, errors and the "
                             "result only")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (and debug logging)")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, func, text in (
            ("simulate", _simulate, "thermostated MD from a YAML input"),
            ("run", _run, "the hybrid loop: simulation and ML forecasts, monitored, with the "
                          "fine trajectory streamed by the interpolator")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("input", type=Path, help="YAML input file")
        _resume_flags(cmd, "continue the run in the output folder from its last checkpoint",
                      "replace an earlier run in the output folder")
        cmd.set_defaults(func=func)

    sv = sub.add_parser("serve", help="serve the input's calculator to a running i-PI "
                        "simulation (an i-PI force client, until i-PI sends EXIT)")
    sv.add_argument("input", type=Path,
                    help="YAML input; its system: and calculator: sections are used (the atom "
                         "order must be that of the i-PI simulation); a simulate or run input "
                         "is checked whole")
    where = sv.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", "--unix", metavar="NAME",
                       help="unix socket: i-PI's <ffsocket mode='unix'><address> "
                            "(the socket file is /tmp/ipi_NAME)")
    where.add_argument("--inet", type=_host_port, metavar="HOST:PORT",
                       help="inet socket of an <ffsocket mode='inet'>")
    sv.add_argument("--timeout", type=_positive_seconds, default=60.0, metavar="S",
                    help="seconds to wait for the i-PI server (default: 60)")
    sv.set_defaults(func=_serve)

    tr = sub.add_parser("train", help="train an interpolator network from fine trajectories")
    tr.add_argument("input", type=Path, help="YAML training input")
    _resume_flags(tr, "continue the training in output.checkpoint",
                  "replace an existing output.checkpoint")
    tr.add_argument("--from", dest="start_from", metavar="CHECKPOINT",
                    help="start from this checkpoint's network (a file or a shipped name) and "
                         "fine-tune it on the input's data")
    tr.set_defaults(func=_train)

    ip = sub.add_parser("interpolate", help="reconstruct the fine trajectory of a coarse one")
    ip.add_argument("--model", required=True, type=Path, metavar="MODEL",
                    help="interpolator: a shipped name (e.g. ethanol-bilstm-10fs) or a "
                         "checkpoint file written by hybridmd train")
    ip.add_argument("coarse", type=Path, help="coarse trajectory (any format hybridmd reads)")
    ip.add_argument("-o", "--output", required=True, type=Path,
                    help="fine trajectory to write (.traj, .extxyz or .npz)")
    ip.add_argument("--dt-fs", type=_positive,
                    help="coarse frame spacing where the file has none")
    ip.set_defaults(func=_interpolate)

    ev = sub.add_parser("evaluate", help="score models and classical baselines on a reference")
    ev.add_argument("--model", action="append", default=[], type=Path, metavar="MODEL",
                    help="interpolator: a shipped name (e.g. ethanol-bilstm-10fs) or a "
                         "checkpoint file (repeatable; none: baselines only)")
    ev.add_argument("--reference", required=True, type=Path, nargs="+",
                    help="fine reference trajectory, or several (e.g. NVE segments): windows "
                    "are cut from each, none spans two")
    ev.add_argument("--stride", action="append", default=[], type=_stride,
                    help="also score the baselines at this stride (repeatable)")
    ev.add_argument("--dt-fs", type=_positive,
                    help="reference frame spacing where the file has none")
    ev.add_argument("--temperature-bin", type=_kelvin_or_zero, default=100.0, metavar="K",
                    help="also the position error by window temperature, in bins this many K "
                    "wide, each marked inside or outside the model's training range "
                    "(default 100; 0: off)")
    ev.add_argument("--json", type=Path, help="write the scores as JSON")
    ev.add_argument("--plot", type=Path, help="plot position MAE against Δt to this PNG")
    ev.set_defaults(func=_evaluate)

    an = sub.add_parser("analyze", help="figures, scores and a report of a reconstruction "
                        "against its reference (VDOS, h(r), speeds, FES, internal coordinates; "
                        "g(r) and density of a periodic cell)")
    an.add_argument("--reference", required=True, type=Path,
                    help="fine reference trajectory, or a run's output folder")
    an.add_argument("--prediction", required=True, type=Path,
                    help="reconstructed trajectory (e.g. from `hybridmd interpolate`), or the "
                         "output folder of `hybridmd run`")
    an.add_argument("--out", type=Path, default=Path("analysis"),
                    help="folder for the figures, scores.json and report.md (default: analysis)")
    an.add_argument("--floor", type=Path,
                    help="a second reference (a second full simulation with another seed, a "
                         "trajectory or run folder): each score gets beside it what the "
                         "reference scores against this one, the floor two full simulations "
                         "set")
    an.add_argument("--dt-fs", type=_positive, help="frame spacing where a file has none")
    an.add_argument("--dihedral", action="append", nargs=4, type=int,
                    metavar=("I", "J", "K", "L"),
                    help="dihedral of the free-energy surface, 0-based atom indices (give two; "
                         "default: the two most flexible)")
    an.add_argument("--stride", type=_stride,
                    help="fine frames per interpolated window (default: from the prediction "
                         "file's metadata, if any)")
    an.add_argument("--temperature-k", type=_positive_kelvin,
                    help="temperature of the free-energy surface (default: the reference's "
                         "kinetic temperature over its internal degrees of freedom, 3N-6 for a "
                         "molecule, as a run's summary counts them)")
    an.set_defaults(func=_analyze)
    for cmd in sub.choices.values():
        _common(cmd)
    return parser


# ----------------------------------------------------------------------------- errors


def _report(exc: BaseException, debug: bool, hint: str = "", text: str = "") -> None:
    """The error (or ``text`` about it) as one message on stderr; its traceback first with
    ``debug``."""
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    text = text or str(exc).strip() or type(exc).__name__
    print(f"error: {text}" + (f"; {hint}" if hint else ""), file=sys.stderr)


def _failures() -> tuple[type[BaseException], ...]:
    """Errors of a run that stopped: said in one line (the frames so far are on disk)."""
    from hybridmd.engines.ipi import IPIClientError
    from hybridmd.errors import SimulationError
    from hybridmd.hybrid.monitor import MonitorDiedError
    from hybridmd.streaming import WorkerDiedError

    return SimulationError, IPIClientError, WorkerDiedError, MonitorDiedError


def _run_command(args: argparse.Namespace) -> int:
    """The sub-command, with every way it can end turned into an exit code; under MPI a rank
    that ends with an error ends the whole job (the others may be waiting for it)."""
    with terminate_raises():
        code, failed = _outcome(args)
    if failed:
        _abort_the_job(code)
    return code


def _outcome(args: argparse.Namespace) -> tuple[int, bool]:
    """The exit code, and whether the command ended with an error (each said in one line)."""
    try:
        return args.func(args), False
    except InputError as exc:
        _after_rank_0()
        _report(exc, args.debug)
        return 2, True
    except (KeyboardInterrupt, Terminated) as exc:
        return _stopped(exc, args), True
    except Exception as exc:  # noqa: BLE001 (every failure ends in one line and exit code 1)
        stopped = _interrupt_behind(exc)
        return (_failed(exc, args) if stopped is None else _stopped(exc, args, stopped)), True


def _after_rank_0() -> None:
    """On an MPI rank other than 0, which finds the same bad input as rank 0: wait a moment
    for rank 0 to say it and end the job (one line in all), then say it anyway (a problem of
    this rank's own)."""
    import time

    if mpi_size() > 1 and mpi_world().Get_rank() != 0:
        time.sleep(2.0)


def _abort_the_job(code: int) -> None:
    """Under ``mpiexec``: end every rank with ``code`` (one rank's error would leave the
    others waiting for it); nothing without MPI."""
    if mpi_size() <= 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    mpi_world().Abort(code)


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or Terminated an exception was raised while handling, if any
    (a library's clean-up can fail on the way out of an interrupted write)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt | Terminated):
            return exc
        seen.add(id(exc))
        exc = exc.__context__
    return None


def _stopped(exc: BaseException, args: argparse.Namespace,
             signal_exc: BaseException | None = None) -> int:
    """Stopped by SIGINT (130) or SIGTERM (143) outside a run's own signal handling."""
    if args.debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    sigint = isinstance(signal_exc or exc, KeyboardInterrupt)
    print(("interrupted (SIGINT)" if sigint else "terminated (SIGTERM)")
          + ("; continue with --resume" if _resumable(args) else ""), file=sys.stderr)
    return 130 if sigint else 143


def _disk_full(exc: BaseException) -> OSError | None:
    """The "no space left" (or quota) error behind ``exc``, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _written(args: argparse.Namespace) -> Path | None:
    """What the command writes: its output folder or file (known once its input is read)."""
    for name in ("writes", "output", "json", "plot", "out"):
        path = getattr(args, name, None)
        if path is not None:
            return Path(path)
    return None


def _failed(exc: Exception, args: argparse.Namespace) -> int:
    """A command that failed while running: one line (exit code 1)."""
    from hybridmd.hybrid.monitor import MonitorDiedError
    from hybridmd.streaming import WorkerDiedError

    full = _disk_full(exc)
    if full is not None:  # not a bug: say where, and how to go on
        where = full.filename or _written(args) or "the output"
        then = "continue with --resume" if _resumable(args) else "run the command again"
        _report(exc, args.debug, text=f"no space left on the device writing {where} "
                f"([Errno {full.errno}] {full.strerror}); free some space, then {then}")
        return 1
    if isinstance(exc, _failures()):
        dead = isinstance(exc, WorkerDiedError | MonitorDiedError)
        _report(exc, args.debug, _RESUME_HINT if dead and _resumable(args) else "")
    else:  # a bug or an unforeseen failure: still one line, the traceback with --debug
        _report(exc, args.debug, "" if args.debug else "rerun with --debug for the traceback")
    return 1


def _resumable(args: argparse.Namespace) -> bool:
    return args.command in ("simulate", "run", "train")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = (logging.DEBUG if args.verbose or args.debug
             else logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return _run_command(args)


if __name__ == "__main__":
    sys.exit(main())
