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
(:func:`~hybridmd.trajectory.finite_difference_momenta`; in a periodic cell, of the positions
unwrapped frame to frame) and ``metadata["velocities"]`` is ``"finite-difference"``; otherwise
it is ``"file"``.

A periodic file gives the trajectory its ``cell`` and ``pbc``: ``.traj``/extxyz from the
frames' cell (extxyz ``Lattice``) and pbc, i-PI from the ``CELL(abcABC)``/``CELL(H)`` header,
npz from a ``lattice`` (or ``cell``) array; the writers write them back.

Layout: ``registry`` maps each format name to its reader and writer (``KNOWN_FORMATS`` and
``WRITE_FORMATS`` are its names); one module per family of formats (``ase_formats``, ``xyz``,
``ipi``, ``npz``) reads a whole file into arrays, which ``assemble`` turns into the
``Trajectory``; ``frame_times`` and ``file_units`` hold the checks and unit tables they share.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hybridmd.errors import InputError, MissingFileError, reading
from hybridmd.readers.assemble import Index, assemble
from hybridmd.readers.registry import (
    KNOWN_FORMATS,
    READERS,
    WRITE_FORMATS,
    WRITERS,
    ReadRequest,
    read_format,
    write_format,
)
from hybridmd.trajectory import Trajectory

logger = logging.getLogger(__name__)


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
    fmt = read_format(path, format)
    if velocities is not None and fmt != "ipi":
        raise InputError(
            f"a separate velocities file is only read for i-PI outputs (format 'ipi'), "
            f"not for format {fmt!r}"
        )
    if energy_unit is not None and fmt != "xyz":
        raise InputError(f"energy_unit applies to plain xyz comment lines, not format {fmt!r}")
    logger.info("reading %s as %s", path, fmt)

    raw = READERS[fmt](ReadRequest(path, dt_fs, None if velocities is None else Path(velocities),
                                   energy_unit))

    if not use_file_velocities and raw["momenta"] is not None:
        logger.info("%s: ignoring the velocities in the file (use_file_velocities=False)", path)
        raw["momenta"] = None
    raw["metadata"] = {"source": str(path), "format": fmt, **raw.get("metadata", {})}
    return assemble(raw, index, path)


def write_trajectory(traj: Trajectory, path: str | Path, format: str | None = None) -> None:
    """Write ``traj`` so that :func:`read_trajectory` reads it back unchanged.

    ``.traj`` goes through ``ase.io.write``; ``.extxyz`` (or ``.xyz``) is written at full
    double precision (ASE's extxyz writer keeps only 8 decimals) in a form ``ase.io.read``
    understands, frame times in ``time_fs``; ``.npz`` holds ``z``, ``R`` (Å), ``V`` (Å/fs),
    ``dt_fs``, ``t0_fs``, ``masses`` (amu) and ``E`` (eV), ``F`` (eV/Å) when known, plus unit
    strings. A periodic trajectory's cell and pbc go into each format (extxyz ``Lattice`` and
    ``pbc``, npz ``lattice`` and ``pbc``).
    """
    path = Path(path)
    format = write_format(path, format)
    WRITERS[format](traj, path)
    logger.info("wrote %d frames to %s (%s)", len(traj), path, format)


__all__ = ["KNOWN_FORMATS", "WRITE_FORMATS", "read_trajectory", "write_trajectory"]
