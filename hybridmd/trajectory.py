"""The in-memory trajectory type shared by readers, training and analysis.

A trajectory is a time series of phase-space points x = (r, p) of one molecule (or one periodic
box of molecules), in ASE units: positions in Å, momenta in amu·Å/(ASE time), energies in eV,
forces in eV/Å, times in fs; a periodic trajectory also carries its cell (Å) and ``pbc``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_masses

from hybridmd.errors import InputError
from hybridmd.units import FS

#: relative difference below which two frame spacings count as one time step (the readers'
#: tolerance for evenly spaced frames)
SPACING_RTOL = 1e-6


@dataclass
class Trajectory:
    """Frames of one molecule or periodic box, equally spaced in time (``dt_fs`` apart).

    ``cell`` holds the lattice vectors as rows (ASE's convention): (3, 3) for a constant cell,
    (T, 3, 3) for one per frame (a stack of equal cells is stored as one). ``pbc`` defaults
    to periodic in all three directions when a cell is given, to none without one.
    """

    numbers: np.ndarray  #: (N,) atomic numbers, in the file's atom order
    positions: np.ndarray  #: (T, N, 3) Å
    momenta: np.ndarray  #: (T, N, 3) amu·Å/ASE-time
    dt_fs: float  #: spacing between consecutive frames in fs
    masses: np.ndarray | None = None  #: (N,) amu; standard masses when None
    energies: np.ndarray | None = None  #: (T,) potential energy, eV
    forces: np.ndarray | None = None  #: (T, N, 3) eV/Å
    t0_fs: float = 0.0  #: time of the first frame
    #: provenance: source file, format, and "velocities": "file" | "finite-difference"
    metadata: dict[str, Any] = field(default_factory=dict)
    cell: np.ndarray | None = None  #: (3, 3) or (T, 3, 3) Å, lattice vectors as rows
    pbc: np.ndarray | None = None  #: (3,) bool: the periodic directions

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=int)
        self.positions = np.asarray(self.positions, dtype=float)
        self.momenta = np.asarray(self.momenta, dtype=float)
        if self.masses is None:
            self.masses = atomic_masses[self.numbers].copy()
        self.masses = np.asarray(self.masses, dtype=float)
        n_frames, n_atoms = self.positions.shape[:2]
        if self.positions.shape != (n_frames, len(self.numbers), 3):
            raise ValueError(
                f"positions have shape {self.positions.shape}, expected "
                f"(frames, {len(self.numbers)}, 3) for {len(self.numbers)} atoms"
            )
        if self.momenta.shape != self.positions.shape:
            raise ValueError(
                f"momenta have shape {self.momenta.shape}, positions {self.positions.shape}"
            )
        if self.forces is not None and np.shape(self.forces) != self.positions.shape:
            raise ValueError(
                f"forces have shape {np.shape(self.forces)}, positions {self.positions.shape}"
            )
        if self.energies is not None and np.shape(self.energies) != (n_frames,):
            raise ValueError(
                f"energies have shape {np.shape(self.energies)}, expected ({n_frames},)")
        if not self.dt_fs > 0:
            raise ValueError(f"dt_fs must be positive, got {self.dt_fs}")
        self._check_cell(n_frames)

    def _check_cell(self, n_frames: int) -> None:
        """Normalise ``cell`` and ``pbc``; refuse shapes that do not fit the frames."""
        if self.cell is not None:
            self.cell = np.asarray(self.cell, dtype=float)
            if self.cell.shape not in ((3, 3), (n_frames, 3, 3)):
                raise ValueError(f"cell has shape {self.cell.shape}, expected (3, 3) or "
                                 f"({n_frames}, 3, 3) for {n_frames} frames")
            if self.cell.ndim == 3 and np.all(self.cell == self.cell[0]):
                self.cell = self.cell[0].copy()
        default = self.cell is not None
        self.pbc = np.broadcast_to(np.asarray(default if self.pbc is None else self.pbc,
                                              dtype=bool), (3,)).copy()
        if self.pbc.any():
            if self.cell is None:
                raise ValueError(f"pbc {self.pbc.tolist()} without a cell")
            lengths = np.linalg.norm(self.cell, axis=-1)
            if np.any(lengths[..., self.pbc] == 0):
                raise ValueError(f"the cell {self.cell.tolist()} has no lattice vector along "
                                 f"a periodic direction (pbc {self.pbc.tolist()})")

    def __len__(self) -> int:
        return self.positions.shape[0]

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def times_fs(self) -> np.ndarray:
        """(T,) time of each frame in fs."""
        return self.t0_fs + self.dt_fs * np.arange(len(self))

    @property
    def velocities(self) -> np.ndarray:
        """(T, N, 3) velocities in Å/fs."""
        return self.momenta / self.masses[None, :, None] * FS

    @property
    def kinetic_energies(self) -> np.ndarray:
        """(T,) kinetic energy of each frame in eV."""
        return 0.5 * (self.momenta**2 / self.masses[None, :, None]).sum(axis=(1, 2))

    @property
    def periodic(self) -> bool:
        """Whether the frames are a bulk system: periodic in all three directions."""
        return bool(self.pbc.all())

    @property
    def degrees_of_freedom(self) -> int:
        """The internal degrees of freedom a temperature is counted over, as a run counts them
        (:func:`internal_degrees_of_freedom` of the first frame)."""
        return internal_degrees_of_freedom(self.positions[0], bool(self.pbc.any()))

    @property
    def cells(self) -> np.ndarray | None:
        """(T, 3, 3) the cell of each frame in Å, or None without a cell."""
        if self.cell is None:
            return None
        return np.broadcast_to(self.cell, (len(self), 3, 3))

    @property
    def symbols(self) -> str:
        return Atoms(numbers=self.numbers).get_chemical_formula(mode="all")

    def _select(self, start: int, stop: int | None, stride: int,
                metadata: dict[str, Any]) -> Trajectory:
        start, stop, _ = slice(start, stop).indices(len(self))  # negative indices too
        sl = slice(start, stop, stride)
        return Trajectory(
            numbers=self.numbers,
            positions=self.positions[sl],
            momenta=self.momenta[sl],
            dt_fs=self.dt_fs * stride,
            masses=self.masses,
            energies=None if self.energies is None else self.energies[sl],
            forces=None if self.forces is None else self.forces[sl],
            t0_fs=self.t0_fs + start * self.dt_fs,
            metadata=metadata,
            cell=self.cell if self.cell is None or self.cell.ndim == 2 else self.cell[sl],
            pbc=self.pbc,
        )

    def subsample(self, stride: int, start: int = 0) -> Trajectory:
        """Every ``stride``-th frame from ``start``: the coarse trajectory at Δt = stride·dt."""
        return self._select(start, None, stride, {
            **self.metadata, "subsampled": {"stride": stride, "start": start}})

    def slice(self, start: int, stop: int | None = None) -> Trajectory:
        """Frames ``start:stop`` as a new trajectory."""
        return self._select(start, stop, 1, dict(self.metadata))

    def constant_box(self) -> dict[str, Any]:
        """``cell`` and ``pbc`` for a trajectory of other frames in the same box (a
        reconstruction between these frames): empty where there is no cell or it varies."""
        if self.cell is None or self.cell.ndim == 3:
            return {}
        return {"cell": self.cell, "pbc": self.pbc}

    def to_atoms_list(self) -> list[Atoms]:
        """The frames as ASE ``Atoms`` with momenta, cell and pbc (and energy/forces when
        known)."""
        from ase.calculators.singlepoint import SinglePointCalculator

        frames = []
        cells = self.cells
        for i in range(len(self)):
            atoms = Atoms(numbers=self.numbers, positions=self.positions[i], masses=self.masses,
                          cell=None if cells is None else cells[i], pbc=self.pbc)
            atoms.set_momenta(self.momenta[i])
            atoms.info["time_fs"] = float(self.times_fs[i])
            if self.energies is not None or self.forces is not None:
                atoms.calc = SinglePointCalculator(
                    atoms,
                    energy=None if self.energies is None else float(self.energies[i]),
                    forces=None if self.forces is None else self.forces[i],
                )
            frames.append(atoms)
        return frames


def internal_degrees_of_freedom(positions: np.ndarray, periodic: bool) -> int:
    """3N - 6 (3N - 5 for a linear molecule, 1 for two atoms): translation and rotation
    removed; 3N - 3 in a periodic cell, which has no rotation to remove."""
    n = len(positions)
    if periodic:
        return 3 * n - 3
    if n == 2:
        return 1
    centred = np.asarray(positions) - np.mean(positions, axis=0)
    linear = np.linalg.matrix_rank(centred, tol=1e-3) <= 1
    return 3 * n - (5 if linear else 6)


def degrees_of_freedom_label(ndof: int, n_atoms: int) -> str:
    """``3N-6 = 21 degrees of freedom``: what a temperature was counted over."""
    removed = 3 * n_atoms - ndof
    formula = "3N" if removed == 0 else f"3N{'-' if removed > 0 else '+'}{abs(removed)}"
    return f"{formula} = {ndof} degrees of freedom"


def finite_difference_momenta(positions: np.ndarray, dt_fs: float,
                              masses: np.ndarray) -> np.ndarray:
    """Momenta from positions by central finite differences (second order at the ends too)."""
    if positions.shape[0] < 3:
        raise ValueError(
            f"need at least 3 frames to derive velocities by finite differences, got "
            f"{positions.shape[0]}"
        )
    velocities = np.gradient(positions, dt_fs * FS, axis=0, edge_order=2)
    return velocities * masses[None, :, None]


def require_one_system(trajectories: Sequence[Trajectory], role: str) -> None:
    """Refuse trajectories that are not one molecule (same atoms in the same order) at one
    time step: callers pool their windows as one data set. ``role`` names them in the error
    (e.g. "training", "reference")."""
    first = trajectories[0]
    for t in trajectories[1:]:
        if (list(t.numbers) != list(first.numbers)
                or not math.isclose(t.dt_fs, first.dt_fs, rel_tol=SPACING_RTOL)):
            raise InputError(
                f"{role} trajectories differ: {t.metadata.get('source', 'one')} has atoms "
                f"{t.symbols} at {t.dt_fs:g} fs, {first.metadata.get('source', 'the first')} "
                f"{first.symbols} at {first.dt_fs:g} fs; give trajectories of one molecule, "
                "atoms in one order, at one time step")
