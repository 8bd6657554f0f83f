"""Read MD trajectories from common file formats into :class:`~hybridmd.trajectory.Trajectory`.

Supported inputs (``format`` names in brackets):

- ASE trajectory files ``.traj`` [``traj``] and extended xyz ``.extxyz`` [``extxyz``];
- plain multi-frame xyz [``xyz``], optionally with the energy on each comment line;
- i-PI xyz trajectory outputs [``ipi``] (positions, plus an optional velocities file);
- npz files [``npz``]: MD17/sGDML data sets (R, z, E, F), MD runs with velocities (R, V, ...)
  as in the mbGDML data, and the files :func:`write_trajectory` writes.

A ``.xyz`` file is sniffed: a comment line with ``Properties=`` means extxyz, one with an i-PI
``CELL(abcABC):`` header or an i-PI property tag such as ``x_centroid{angstrom}`` means i-PI,
anything else plain xyz.

Where a file has no velocities, momenta come from central finite differences of the positions
(:func:`~hybridmd.trajectory.finite_difference_momenta`) and ``metadata["velocities"]`` is
``"finite-difference"``; otherwise it is ``"file"``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import ase.io
import numpy as np
from ase import Atoms
from ase import units as _ase_units
from ase.data import atomic_masses, atomic_numbers
from ase.io.formats import string2index

from hybridmd.errors import InputError, MissingFileError, reading
from hybridmd.trajectory import SPACING_RTOL, Trajectory, finite_difference_momenta
from hybridmd.units import BOHR, FS, HARTREE, KCAL_MOL

logger = logging.getLogger(__name__)

#: formats :func:`read_trajectory` understands
KNOWN_FORMATS = ("traj", "extxyz", "xyz", "ipi", "npz")
#: formats :func:`write_trajectory` writes
WRITE_FORMATS = ("traj", "extxyz", "npz")
_EXTENSIONS = {".traj": "traj", ".extxyz": "extxyz", ".xyz": "xyz", ".npz": "npz"}

Index = int | slice | str

# Unit tables, keyed by lower-case spelling: factor to Å, eV, fs.
_LENGTH_UNITS = {"angstrom": 1.0, "ang": 1.0, "a": 1.0, "å": 1.0, "bohr": BOHR, "nm": 10.0}
_ENERGY_UNITS = {
    "ev": 1.0,
    "kcal/mol": KCAL_MOL,
    "kj/mol": _ase_units.kJ / _ase_units.mol,
    "hartree": HARTREE,
    "ha": HARTREE,
    "eh": HARTREE,
}
_TIME_UNITS = {"fs": 1.0, "femtosecond": 1.0, "ps": 1000.0}

_IPI_CELL_RE = re.compile(r"CELL[\(\[\{](abcABC|H|GENH)[\)\]\}]")
_IPI_TAG_RE = re.compile(
    r"\b(positions|x_centroid|velocities|v_centroid|momenta|p_centroid|forces|f_centroid)"
    r"\{[A-Za-z_]*\}"
)
_IPI_STEP_RE = re.compile(r"Step:\s*(\d+)")
_FLOAT_RE = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"
_COMMENT_ENERGY_RE = re.compile(rf"(?:^|\s)(?:energy|e)\s*[=:]\s*({_FLOAT_RE})", re.IGNORECASE)


# ----------------------------------------------------------------------------- public API


def read_trajectory(
    path: str | Path,
    format: str | None = None,
    *,
    dt_fs: float | None = None,
    index: Index = ":",
    velocities: str | Path | None = None,
    use_file_velocities: bool = True,
    energy_unit: str | None = None,
) -> Trajectory:
    """Read a trajectory file into a :class:`Trajectory` (ASE units, times in fs).

    Args:
        path: the trajectory file (for i-PI: the positions file, e.g. ``sim.pos_0.xyz``).
        format: one of :data:`KNOWN_FORMATS`; inferred from the extension (and, for ``.xyz``,
            the first comment line) when None.
        dt_fs: time step in fs. Its meaning per format:

            - ``traj``/``extxyz``/``xyz``/``npz``: spacing between consecutive frames in the file.
              Needed only when the file carries no times (hybridmd-written files carry
              ``time_fs`` per frame or a ``dt_fs`` key; if given too, it must agree).
            - ``ipi``: the MD time step (i-PI's ``<timestep>``, in fs). Frame ``k`` sits at
              ``Step_k * dt_fs``, so the spacing between frames is ``dt_fs`` times the output
              stride, read from the ``Step:`` numbers. Without ``Step:`` tags the frames are
              taken to be ``dt_fs`` apart.

        index: frames to keep, as for ``ase.io.read`` (``":"``, ``"::10"``, ``"-1"``, an int
            or a slice); must select equally spaced frames in increasing order. Frames are
            selected after momenta are known, so finite-difference momenta always use the
            full time resolution of the file: ``read_trajectory(p, index="::k")`` equals
            ``read_trajectory(p).subsample(k)``.
        velocities: i-PI only: the matching velocities (or momenta) file, e.g. ``sim.vel_0.xyz``.
        use_file_velocities: False ignores velocities stored in the file and derives momenta
            by finite differences instead.
        energy_unit: plain xyz only: unit of a number on the comment lines (``"hartree"``,
            ``"eV"``, ``"kcal/mol"``, ``"kJ/mol"``); energies are not read without it.

    Raises:
        MissingFileError (a ``FileNotFoundError``): ``path`` or ``velocities`` does not exist.
        InputError (a ``ValueError``) that names the file: unknown format or unit, no way to
            know the time step, uneven frame times, inconsistent files, fewer than 3 frames
            where finite differences are needed, or a file that cannot be read at all (empty,
            truncated, corrupt, not the format its name says).
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"trajectory file not found: {path}; check the path")
    with reading(path, "a trajectory"):
        return _read_trajectory(path, format, dt_fs, index, velocities, use_file_velocities,
                                energy_unit)


def _read_trajectory(path: Path, format: str | None, dt_fs: float | None, index: Index,
                     velocities: str | Path | None, use_file_velocities: bool,
                     energy_unit: str | None) -> Trajectory:
    fmt = _resolve_format(path, format)
    if velocities is not None and fmt != "ipi":
        raise InputError(
            f"a separate velocities file is only read for i-PI outputs (format 'ipi'), "
            f"not for format {fmt!r}"
        )
    if energy_unit is not None and fmt != "xyz":
        raise InputError(f"energy_unit applies to plain xyz comment lines, not format {fmt!r}")
    logger.info("reading %s as %s", path, fmt)

    if fmt in ("traj", "extxyz"):
        raw = _read_ase(path, fmt, dt_fs)
    elif fmt == "xyz":
        raw = _read_plain_xyz(path, dt_fs, energy_unit)
    elif fmt == "ipi":
        raw = _read_ipi(path, dt_fs, None if velocities is None else Path(velocities))
    else:
        raw = _read_npz(path, dt_fs)

    if not use_file_velocities and raw["momenta"] is not None:
        logger.info("%s: ignoring the velocities in the file (use_file_velocities=False)", path)
        raw["momenta"] = None
    raw["metadata"] = {"source": str(path), "format": fmt, **raw.get("metadata", {})}
    return _assemble(raw, index, path)


def write_trajectory(traj: Trajectory, path: str | Path, format: str | None = None) -> None:
    """Write ``traj`` so that :func:`read_trajectory` reads it back unchanged.

    ``.traj`` goes through ``ase.io.write``; ``.extxyz`` (or ``.xyz``) is written at full
    double precision (ASE's extxyz writer keeps only 8 decimals) in a form ``ase.io.read``
    understands, frame times in ``time_fs``; ``.npz`` holds ``z``, ``R`` (Å), ``V`` (Å/fs),
    ``dt_fs``, ``t0_fs``, ``masses`` (amu) and ``E`` (eV), ``F`` (eV/Å) when known, plus unit
    strings.
    """
    path = Path(path)
    if format is None:
        suffix = path.suffix.lower()
        format = "extxyz" if suffix == ".xyz" else _EXTENSIONS.get(suffix)
        if format is None:
            raise InputError(
                f"cannot tell the format of {path} from its extension; pass format= one of "
                f"{', '.join(WRITE_FORMATS)}"
            )
    if format not in WRITE_FORMATS:
        raise InputError(f"unknown output format {format!r}; known: {', '.join(WRITE_FORMATS)}")
    if format == "traj":
        ase.io.write(path, traj.to_atoms_list(), format="traj")
    elif format == "extxyz":
        with open(path, "w") as fd:
            _write_extxyz(fd, traj.to_atoms_list())
    else:
        data: dict[str, Any] = {
            "z": traj.numbers,
            "R": traj.positions,
            "V": traj.velocities,
            "dt_fs": np.float64(traj.dt_fs),
            "t0_fs": np.float64(traj.t0_fs),
            "masses": traj.masses,
            "r_unit": "Angstrom",
            "v_unit": "Angstrom/fs",
            "e_unit": "eV",
            "type": "hybridmd",
        }
        if traj.energies is not None:
            data["E"] = traj.energies
        if traj.forces is not None:
            data["F"] = traj.forces
        with open(path, "wb") as fd:  # a file object keeps numpy from appending ".npz"
            np.savez(fd, **data)
    logger.info("wrote %d frames to %s (%s)", len(traj), path, format)


# ----------------------------------------------------------------------------- helpers


def _resolve_format(path: Path, format: str | None) -> str:
    """The reader to use for ``path``."""
    if format is not None:
        if format not in KNOWN_FORMATS:
            raise InputError(
                f"unknown format {format!r}; known formats: {', '.join(KNOWN_FORMATS)}"
            )
        return format
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot tell the format of {path} from its extension {path.suffix!r}; known "
            f"extensions: {', '.join(_EXTENSIONS)}; or pass format= one of "
            f"{', '.join(KNOWN_FORMATS)}"
        )
    if fmt == "xyz":
        comment = _first_comment_line(path)
        if "Properties=" in comment:
            return "extxyz"
        if _IPI_CELL_RE.search(comment) or _IPI_TAG_RE.search(comment):
            return "ipi"
    return fmt


def _first_comment_line(path: Path) -> str:
    """The comment line of the first frame of an xyz file ("" if there is none)."""
    with open(path) as fd:
        for line in fd:
            if line.strip():
                return next(fd, "")
    return ""


def _unit_factor(kind: str, unit: Any, table: dict[str, float], path: Path) -> float:
    """Factor converting ``unit`` to hybridmd's unit of ``kind``."""
    key = str(unit).strip().lower()
    if key not in table:
        raise InputError(f"{path}: unknown {kind} unit {str(unit)!r}; known: {', '.join(table)}")
    return table[key]


def _velocity_factor(unit: Any, path: Path) -> float:
    """Factor converting a velocity unit like ``"Angstrom/fs"`` to Å/fs."""
    parts = str(unit).split("/")
    if len(parts) != 2:
        raise InputError(f"{path}: unknown velocity unit {str(unit)!r}; expected length/time")
    length = _unit_factor("length", parts[0], _LENGTH_UNITS, path)
    time = _unit_factor("time", parts[1], _TIME_UNITS, path)
    return length / time


def _frame_spacing(times_fs: np.ndarray, path: Path) -> float:
    """Spacing of equally spaced, increasing frame times; ValueError otherwise."""
    if len(times_fs) < 2:
        raise InputError(f"{path}: cannot infer a time step from {len(times_fs)} frame")
    diffs = np.diff(times_fs)
    dt = float(times_fs[-1] - times_fs[0]) / (len(times_fs) - 1)
    if not dt > 0 or np.max(np.abs(diffs - dt)) > SPACING_RTOL * abs(dt):
        bad = int(np.argmax(np.abs(diffs - dt)))
        raise InputError(
            f"{path}: frames are not equally spaced in time (spacing {diffs.min():g} to "
            f"{diffs.max():g} fs, e.g. {diffs[bad]:g} fs between frames {bad} and {bad + 1}); "
            f"hybridmd needs a uniform time step"
        )
    return dt


#: how a user gives the frame spacing, in every place a trajectory is read
DT_HOW = ("--dt-fs on the command line, dt_fs: in a training input's data.trajectories, "
          "dt_fs= in Python")


def _require_dt(dt_fs: float | None, path: Path, what: str) -> float:
    if dt_fs is None:
        raise InputError(
            f"{path}: {what} stores no time information; give the time between its frames "
            f"in fs ({DT_HOW})"
        )
    if not dt_fs > 0:
        raise InputError(f"the time between frames must be positive ({DT_HOW}), got {dt_fs}")
    return float(dt_fs)


def _check_dt_agrees(dt_file: float, dt_fs: float | None, path: Path) -> None:
    if dt_fs is not None and abs(dt_fs - dt_file) > SPACING_RTOL * dt_file:
        raise InputError(
            f"{path}: the file says its frames are {dt_file:g} fs apart, but {dt_fs:g} fs was "
            f"given as their spacing (--dt-fs, or dt_fs); leave it out to use the file's"
        )


def _select_frames(index: Index, n_frames: int, path: Path) -> np.ndarray:
    """Indices of the frames ``index`` picks, checked to be increasing and equally spaced."""
    if isinstance(index, str):
        index = string2index(index)
    frames = np.atleast_1d(np.arange(n_frames)[index])
    if frames.size == 0:
        raise InputError(f"{path}: index {index!r} selects no frames out of {n_frames}")
    if frames.size > 1:
        steps = np.diff(frames)
        if steps[0] <= 0 or np.any(steps != steps[0]):
            raise InputError(
                f"index {index!r} must select equally spaced frames in increasing order"
            )
    return frames


def _assemble(raw: dict[str, Any], index: Index, path: Path) -> Trajectory:
    """Build the :class:`Trajectory` from a reader's full-file arrays, then select frames."""
    positions = raw["positions"]
    masses = np.asarray(raw["masses"], dtype=float)
    times = np.asarray(raw["times_fs"], dtype=float)
    n_frames = len(positions)
    dt = raw.get("dt_fs") or _frame_spacing(times, path)
    metadata = raw["metadata"]
    momenta = raw["momenta"]
    if momenta is None:
        if n_frames < 3:
            raise InputError(
                f"{path}: has no velocities and only {n_frames} frame(s); finite-difference "
                f"velocities need at least 3"
            )
        momenta = finite_difference_momenta(positions, dt, masses)
        metadata["velocities"] = "finite-difference"
        logger.info("%s: momenta from finite differences of positions (dt %g fs)", path, dt)
    else:
        metadata["velocities"] = "file"

    frames = _select_frames(index, n_frames, path)
    stride = int(frames[1] - frames[0]) if frames.size > 1 else 1
    steps = raw.get("steps")
    if steps is not None and frames.size > 1:
        gaps = np.diff(steps[frames])
        if np.all(gaps == gaps[0]):
            metadata["md_steps_between_frames"] = int(gaps[0])
    energies, forces = raw.get("energies"), raw.get("forces")
    return Trajectory(
        numbers=raw["numbers"],
        positions=positions[frames],
        momenta=momenta[frames],
        dt_fs=dt * stride,
        masses=masses,
        energies=None if energies is None else np.asarray(energies, dtype=float)[frames],
        forces=None if forces is None else np.asarray(forces, dtype=float)[frames],
        t0_fs=float(times[frames[0]]),
        metadata=metadata,
    )


def _numbers_from_symbols(symbols: list[str] | np.ndarray, path: Path) -> np.ndarray:
    try:
        return np.array([atomic_numbers[str(s).strip().capitalize()] for s in symbols])
    except KeyError as err:
        raise InputError(f"{path}: atom label {err.args[0]!r} is not an element symbol") from None


# ----------------------------------------------------------------------------- ASE formats


def _calc_result(atoms: Atoms, key: str) -> Any:
    """A stored calculator result (energy, forces) or None; never triggers a calculation."""
    results = getattr(atoms.calc, "results", None) or {}
    return results.get(key)


def _read_ase(path: Path, fmt: str, dt_fs: float | None) -> dict[str, Any]:
    frames: list[Atoms] = ase.io.read(path, index=":", format=fmt)
    if not frames:
        raise InputError(f"{path}: no frames")
    numbers = frames[0].numbers
    for i, atoms in enumerate(frames):
        if not np.array_equal(atoms.numbers, numbers):
            raise InputError(f"{path}: frame {i} has different atoms than frame 0")
    positions = np.stack([atoms.positions for atoms in frames])

    has_time = ["time_fs" in atoms.info for atoms in frames]
    if all(has_time):
        times = np.array([float(atoms.info["time_fs"]) for atoms in frames])
        if len(frames) > 1:
            _check_dt_agrees(_frame_spacing(times, path), dt_fs, path)
        else:
            _require_dt(dt_fs, path, "a single frame")
    else:
        if any(has_time):
            logger.warning("%s: only some frames carry time_fs; ignoring it", path)
        dt = _require_dt(dt_fs, path, f"this {fmt} file (no 'time_fs' in the frames' info)")
        times = dt * np.arange(len(frames))

    momenta = None
    if all(atoms.has("momenta") for atoms in frames):
        momenta = np.stack([atoms.get_momenta() for atoms in frames])

    def stacked(key: str) -> np.ndarray | None:
        values = [_calc_result(atoms, key) for atoms in frames]
        if all(v is not None for v in values):
            return np.array(values, dtype=float)
        known = [i for i, v in enumerate(values) if v is not None]
        if known:
            _partial_results(path, key, known, frames)
        return None

    infos = [atoms.info for atoms in frames]
    return {
        "numbers": numbers,
        "positions": positions,
        "momenta": momenta,
        "masses": frames[0].get_masses(),
        "times_fs": times,
        "dt_fs": dt_fs if len(frames) == 1 else None,
        "energies": stacked("energy"),
        "forces": stacked("forces"),
        # MD step numbers (hybridmd simulate) and whether these are a hybrid run's coarse frames
        "steps": np.array([i["step"] for i in infos]) if all("step" in i for i in infos)
        else None,
        "metadata": {"coarse_frames": True} if all("coarse_index" in i and "fine_index" not in i
                                                    for i in infos) else {},
    }


def _partial_results(path: Path, key: str, known: list[int], frames: list[Atoms]) -> None:
    """Say which frames carry ``key`` when only some do (the trajectory is read without it).

    A hybrid run's ``fine.traj`` has energy and forces at the segment ends only (the frames
    between them are simulated or reconstructed without a calculator call being stored):
    expected, and said as such, with where the segment ends are.
    """
    ends = [i for i, atoms in enumerate(frames) if "coarse_index" in atoms.info]
    if known == ends:
        logger.info("%s: %s is stored at the %d segment ends (frames with coarse_index) only, "
                    "not at the %d frames between them; read without %s (coarse.traj beside "
                    "it has the segment ends with energy and forces)", path, key, len(known),
                    len(frames) - len(known), key)
        return
    shown = ", ".join(map(str, known[:5])) + (", ..." if len(known) > 5 else "")
    logger.warning("%s: only %d of %d frames have %s (frames %s); read without %s", path,
                   len(known), len(frames), key, shown, key)


def _write_extxyz(fd: IO[str], frames: list[Atoms]) -> None:
    """Extended xyz at full double precision (``repr`` of each float), readable by ASE."""
    from ase.io.extxyz import key_val_dict_to_str

    for atoms in frames:
        forces = _calc_result(atoms, "forces")
        energy = _calc_result(atoms, "energy")
        props = "species:S:1:pos:R:3:masses:R:1:momenta:R:3"
        columns = [atoms.positions, atoms.get_masses()[:, None], atoms.get_momenta()]
        if forces is not None:
            props += ":forces:R:3"
            columns.append(np.asarray(forces))
        info = dict(atoms.info)
        if energy is not None:
            info["energy"] = float(energy)
        info["pbc"] = atoms.pbc
        fd.write(f"{len(atoms)}\nProperties={props} {key_val_dict_to_str(info)}\n")
        table = np.hstack(columns)
        for symbol, row in zip(atoms.get_chemical_symbols(), table, strict=True):
            fd.write(f"{symbol:2s} " + " ".join(repr(float(x)) for x in row) + "\n")


# ----------------------------------------------------------------------------- plain xyz


def _parse_xyz_frames(path: Path) -> Iterator[tuple[list[str], np.ndarray, str]]:
    """(symbols, (N, 3) coordinates, comment) per frame; blank lines between frames skipped."""
    with open(path) as fd:
        lines = fd.read().splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n_atoms = int(lines[i].split()[0])
        except ValueError:
            raise InputError(
                f"{path}, line {i + 1}: expected an atom count, got {lines[i]!r}"
            ) from None
        if i + 2 + n_atoms > len(lines):
            raise InputError(f"{path}: the frame starting at line {i + 1} is incomplete")
        comment = lines[i + 1]
        symbols, coords = [], []
        for j in range(i + 2, i + 2 + n_atoms):
            fields = lines[j].split()
            try:
                coords.append([float(x) for x in fields[1:4]])
                symbols.append(fields[0])
            except (ValueError, IndexError):
                raise InputError(f"{path}, line {j + 1}: not an atom line: {lines[j]!r}") from None
            if len(coords[-1]) != 3:
                raise InputError(f"{path}, line {j + 1}: not an atom line: {lines[j]!r}")
        yield symbols, np.array(coords), comment
        i += 2 + n_atoms


def _comment_energy(comment: str) -> float | None:
    """A bare number on the comment line, or ``energy=<number>`` / ``E: <number>``."""
    text = comment.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _COMMENT_ENERGY_RE.search(text)
    return float(match.group(1)) if match else None


def _read_plain_xyz(path: Path, dt_fs: float | None, energy_unit: str | None) -> dict[str, Any]:
    dt = _require_dt(dt_fs, path, "this plain xyz file")
    frames = list(_parse_xyz_frames(path))
    if not frames:
        raise InputError(f"{path}: no frames")
    symbols = frames[0][0]
    for k, (syms, _, _) in enumerate(frames):
        if syms != symbols:
            raise InputError(f"{path}: frame {k} has different atoms than frame 0")
    numbers = _numbers_from_symbols(symbols, path)
    comment_energies = [_comment_energy(comment) for _, _, comment in frames]
    energies = None
    if energy_unit is not None:
        factor = _unit_factor("energy", energy_unit, _ENERGY_UNITS, path)
        missing = [k for k, e in enumerate(comment_energies) if e is None]
        if missing:
            raise InputError(f"{path}: no energy on the comment line of frame {missing[0]}")
        energies = np.array(comment_energies) * factor
    elif all(e is not None for e in comment_energies):
        logger.warning(
            "%s: the comment lines hold numbers (energies?); pass energy_unit= to read them", path
        )
    return {
        "numbers": numbers,
        "positions": np.stack([coords for _, coords, _ in frames]),
        "momenta": None,
        "masses": atomic_masses[numbers],
        "times_fs": dt * np.arange(len(frames)),
        "dt_fs": dt,
        "energies": energies,
    }


# ----------------------------------------------------------------------------- i-PI


class _CountingLines:
    """Iterator over a file's lines that counts them (to spot a truncated last frame)."""

    def __init__(self, fd: IO[str]) -> None:
        self._fd = fd
        self.count = 0

    def __iter__(self) -> _CountingLines:
        return self

    def __next__(self) -> str:
        line = next(self._fd)
        self.count += 1
        return line


def _read_ipi_file(path: Path, expected: tuple[str, ...]) -> dict[str, Any]:
    """One i-PI xyz output: names, data in ASE units, Step numbers, the dimension read.

    Units come from the comment line's ``key{unit}`` tag through i-PI's own parsing
    (``ipi.utils.io.io_units.auto_units``) and conversion (``ipi.utils.units``): data go to
    i-PI's atomic units and from there to ASE units (Å, Å/ASE-time, amu·Å/ASE-time).
    """
    from ipi.utils.io import iter_file_raw
    from ipi.utils.io.io_units import auto_units
    from ipi.utils.units import unit_to_internal, unit_to_user

    frames: list[dict[str, Any]] = []
    with open(path) as fd:
        lines = _CountingLines(fd)
        before = 0
        try:
            for raw in iter_file_raw("xyz", lines):
                if lines.count - before != 2 + raw["natoms"]:
                    logger.warning("%s: dropping the incomplete last frame", path)
                    break
                before = lines.count
                frames.append(raw)
        except RuntimeError:  # i-PI's reader hit the end of the file inside a frame header
            logger.warning("%s: dropping the incomplete last frame", path)
        except (IndexError, ValueError) as err:
            raise InputError(
                f"{path}, near line {lines.count}: not a readable i-PI xyz file ({err})"
            ) from None
    if not frames:
        raise InputError(f"{path}: no frames")

    names = [str(n) for n in frames[0]["names"]]
    dimension, units, _ = auto_units(comment=frames[0]["comment"], mode="xyz")
    data, steps = [], []
    for k, raw in enumerate(frames):
        if k and auto_units(comment=raw["comment"], mode="xyz")[:2] != (dimension, units):
            raise InputError(f"{path}: frame {k} has other units than frame 0")
        if [str(n) for n in raw["names"]] != names:
            raise InputError(f"{path}: frame {k} has different atoms than frame 0")
        data.append(np.array(raw["data"], dtype=float).reshape(-1, 3))
        step = _IPI_STEP_RE.search(raw["comment"])
        steps.append(None if step is None else int(step.group(1)))
    if dimension == "undefined":
        dimension = expected[0]
        logger.warning(
            "%s: no i-PI unit tag on the comment line; taking the data as %s in atomic units "
            "(i-PI's default)",
            path,
            dimension,
        )
    if dimension not in expected:
        raise InputError(f"{path}: holds {dimension} data, expected {' or '.join(expected)}")
    if dimension == "length" and units.lower() == "angstrom":
        factor = 1.0  # i-PI's 8-digit Bohr would otherwise rescale Å by 1 - 1.3e-8
    else:
        factor = unit_to_user(dimension, "ase", unit_to_internal(dimension, units, 1.0))
    return {
        "names": names,
        "data": np.stack(data) * factor,
        "steps": None if any(s is None for s in steps) else np.array(steps),
        "dimension": dimension,
        "units": units,
    }


def _read_ipi(path: Path, dt_fs: float | None, velocities: Path | None) -> dict[str, Any]:
    md_dt = _require_dt(dt_fs, path, "this i-PI output")
    pos = _read_ipi_file(path, ("length",))
    numbers = _numbers_from_symbols(pos["names"], path)
    masses = atomic_masses[numbers]
    n_frames = len(pos["data"])
    steps = pos["steps"] if pos["steps"] is not None else np.arange(n_frames)
    metadata: dict[str, Any] = {"md_timestep_fs": md_dt, "position_units": pos["units"]}

    momenta = None
    if velocities is not None:
        if not velocities.is_file():
            raise MissingFileError(f"velocities file not found: {velocities}")
        vel = _read_ipi_file(velocities, ("velocity", "momentum"))
        if len(vel["names"]) != len(pos["names"]):
            raise InputError(
                f"{velocities} has {len(vel['names'])} atoms but {path} has {len(pos['names'])}"
            )
        if vel["names"] != pos["names"]:
            raise InputError(f"{velocities} and {path} list different atoms")
        if len(vel["data"]) != n_frames:
            raise InputError(
                f"{velocities} has {len(vel['data'])} frames but {path} has {n_frames}"
            )
        if (
            vel["steps"] is not None
            and pos["steps"] is not None
            and not np.array_equal(vel["steps"], pos["steps"])
        ):
            raise InputError(f"{velocities} and {path} are not at the same Step numbers")
        if vel["dimension"] == "velocity":
            momenta = vel["data"] * masses[None, :, None]
        else:
            momenta = vel["data"]
        metadata.update(velocities_file=str(velocities), velocity_units=vel["units"])

    times = md_dt * steps.astype(float)
    if n_frames > 1:
        spacing = _frame_spacing(times, path)
        metadata["stride"] = int(round(spacing / md_dt))
    return {
        "numbers": numbers,
        "positions": pos["data"],
        "momenta": momenta,
        "masses": masses,
        "times_fs": times,
        "dt_fs": md_dt if n_frames == 1 else None,
        "metadata": metadata,
    }


# ----------------------------------------------------------------------------- npz


def _read_npz(path: Path, dt_fs: float | None) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    for key in ("R", "z"):
        if key not in data:
            raise InputError(
                f"{path}: no {key!r} array; expected an MD17/sGDML-style npz with R (positions) "
                f"and z (atomic numbers); keys present: {', '.join(sorted(data))}"
            )
    numbers = np.asarray(data["z"], dtype=int).ravel()
    r_factor = _unit_factor("length", data.get("r_unit", "Angstrom"), _LENGTH_UNITS, path)
    e_factor = _unit_factor("energy", data.get("e_unit", "kcal/mol"), _ENERGY_UNITS, path)
    positions = np.asarray(data["R"], dtype=float) * r_factor
    if positions.ndim != 3 or positions.shape[1:] != (len(numbers), 3):
        raise InputError(f"{path}: R has shape {positions.shape}, z has {len(numbers)} atoms")
    n_frames = len(positions)
    masses = np.asarray(data["masses"], dtype=float) if "masses" in data else atomic_masses[numbers]

    if "dt_fs" in data:
        dt = float(data["dt_fs"])
        _check_dt_agrees(dt, dt_fs, path)
        layout = "hybridmd"
    else:
        what = "this npz file (e.g. an MD17/sGDML data set)"
        dt = _require_dt(dt_fs, path, what)
        layout = "md-with-velocities" if "V" in data else "md17/sgdml"
    t0 = float(data["t0_fs"]) if "t0_fs" in data else 0.0

    momenta = None
    metadata: dict[str, Any] = {"npz_layout": layout}
    if "V" in data:
        if "v_unit" in data:
            v_factor = _velocity_factor(data["v_unit"], path)
        else:
            v_factor = r_factor
            logger.warning("%s: V has no v_unit; assuming (r_unit)/fs", path)
        velocities = np.asarray(data["V"], dtype=float) * v_factor
        if velocities.shape != positions.shape:
            raise InputError(f"{path}: V has shape {velocities.shape}, R has {positions.shape}")
        momenta = velocities / FS * masses[None, :, None]

    energies = None
    for key in ("E", "E_potential"):
        if key in data:
            energies = np.asarray(data[key], dtype=float) * e_factor
            if energies.size != n_frames:
                raise InputError(f"{path}: {key} has {energies.size} values for {n_frames} frames")
            energies = energies.reshape(n_frames)
            metadata["energy_key"] = key
            break
    forces = None
    if "F" in data:
        forces = np.asarray(data["F"], dtype=float) * (e_factor / r_factor)
    for key in ("name", "theory", "type"):
        if key in data and data[key].dtype.kind == "U":
            metadata[f"npz_{key}"] = str(data[key])
    return {
        "numbers": numbers,
        "positions": positions,
        "momenta": momenta,
        "masses": masses,
        "times_fs": t0 + dt * np.arange(n_frames),
        "dt_fs": dt,
        "energies": energies,
        "forces": forces,
        "metadata": metadata,
    }


__all__ = ["KNOWN_FORMATS", "WRITE_FORMATS", "read_trajectory", "write_trajectory"]
