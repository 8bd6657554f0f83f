"""The frames of a stream: one coarse frame per segment end in (the hybrid loop's frame: the
worker reads its phase space and interior frames, the loop's bookkeeping travels with it),
fine frames out (what the worker writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Origin = Literal["sim", "ml"]

#: where a frame's energy and forces come from (``energy_source`` in the trajectories' info)
CALCULATOR_SOURCE = "calculator"
LEARNED_SOURCE = "learned force field"


def energy_source(exact: bool) -> str:
    """``calculator`` for the expensive calculator's results, else ``learned force field``."""
    return CALCULATOR_SOURCE if exact else LEARNED_SOURCE


@dataclass
class CoarseFrame:
    """The phase-space point at coarse step ``index`` (ASE units; times in fs).

    ``momenta`` is the state the next segment starts from (after any thermostat O-step at the
    boundary); ``arrival_momenta`` the momenta with which the previous segment arrived here
    (before that O-step); ``None`` means the same as ``momenta`` (no thermostat, or NVE).
    """

    index: int  #: coarse step k
    time_fs: float
    positions: np.ndarray  #: (N, 3) Å
    momenta: np.ndarray  #: (N, 3) amu·Å/ASE-time, departure state
    arrival_momenta: np.ndarray | None = None  #: (N, 3), arrival state; None: ``momenta``
    forces: np.ndarray | None = None  #: (N, 3) eV/Å
    energy: float | None = None  #: potential energy, eV
    origin: Origin = "sim"  #: what made the segment that ended here: simulation or forecaster
    #: (n-1, N, 3) positions and momenta of the simulated frames inside the segment that ended
    #: here: written as they are instead of interpolated (None: interpolate)
    interior_positions: np.ndarray | None = None
    interior_momenta: np.ndarray | None = None
    interior_method: str = "simulation"  #: what made the interior frames (the fine file's method)
    #: the hybrid loop's bookkeeping: "verified" (simulated or monitored) or "unverified"
    status: str = "verified"
    rng_state: dict[str, Any] = field(default_factory=dict)  #: generators after the O-step
    thermostat_energy: float = 0.0  #: energy the thermostat took out so far, eV
    exact: bool = True  #: forces and energy from the expensive calculator (not a learned one)
    raw_uncertainty: float | None = None  #: an ML frame's committee spread (calibration)
    #: (n-1, N, 3) forces and (n-1,) potential energies of the interior frames, where whatever
    #: made them computed them (same source as the frame's own: ``exact``); None: not known
    interior_forces: np.ndarray | None = None
    interior_energies: np.ndarray | None = None

    def __post_init__(self) -> None:
        # own copies: a driver may go on integrating in the arrays it passed (atoms.positions)
        self.positions = np.array(self.positions, dtype=float)
        shape = self.positions.shape
        if len(shape) != 2 or shape[1] != 3:
            raise ValueError(f"coarse frame {self.index}: positions have shape {shape}, "
                             "expected (atoms, 3)")
        for name in ("momenta", "arrival_momenta", "forces"):
            value = getattr(self, name)
            if value is None:
                if name == "momenta":
                    raise ValueError(f"coarse frame {self.index}: momenta are required")
                continue
            value = np.array(value, dtype=float)
            if value.shape != shape:
                raise ValueError(f"coarse frame {self.index}: {name} have shape {value.shape}, "
                                 f"positions {shape}")
            setattr(self, name, value)
        if (self.interior_positions is None) != (self.interior_momenta is None):
            raise ValueError(f"coarse frame {self.index}: give both interior positions and "
                             "momenta, or neither")
        if self.interior_positions is not None:
            self.interior_positions = np.array(self.interior_positions, dtype=float)
            self.interior_momenta = np.array(self.interior_momenta, dtype=float)
            ishape = self.interior_positions.shape
            if ishape[1:] != shape or self.interior_momenta.shape != ishape:
                raise ValueError(f"coarse frame {self.index}: interior frames have shapes "
                                 f"{ishape} and {self.interior_momenta.shape}, expected "
                                 f"(n-1, {shape[0]}, 3)")
        elif self.interior_forces is not None or self.interior_energies is not None:
            raise ValueError(f"coarse frame {self.index}: interior forces or energies without "
                             "the interior frames")
        if (self.interior_forces is None) != (self.interior_energies is None):
            raise ValueError(f"coarse frame {self.index}: give both interior forces and "
                             "energies, or neither")
        if self.interior_forces is not None:
            self.interior_forces = np.array(self.interior_forces, dtype=float)
            self.interior_energies = np.array(self.interior_energies, dtype=float)
            ishape = self.interior_positions.shape
            if (self.interior_forces.shape != ishape
                    or self.interior_energies.shape != ishape[:1]):
                raise ValueError(f"coarse frame {self.index}: interior forces and energies "
                                 f"have shapes {self.interior_forces.shape} and "
                                 f"{self.interior_energies.shape}, expected {ishape} and "
                                 f"({ishape[0]},)")
        if self.energy is not None:
            self.energy = float(self.energy)
        if self.origin not in ("sim", "ml"):
            raise ValueError(f"coarse frame {self.index}: origin must be 'sim' or 'ml', "
                             f"got {self.origin!r}")

    @property
    def arrival(self) -> np.ndarray:
        """The momenta the previous segment arrived with (``momenta`` when not given)."""
        return self.momenta if self.arrival_momenta is None else self.arrival_momenta


@dataclass
class FineFrame:
    """One frame of the fine trajectory (ASE units; times in fs)."""

    index: int  #: fine step: coarse index · n + j
    time_fs: float
    positions: np.ndarray  #: (N, 3) Å
    momenta: np.ndarray  #: (N, 3)
    origin: str  #: origin of the coarse frame, or of the segment an interior frame lies in
    method: str  #: "coarse" for a coarse frame, else the interpolant's name
    coarse: CoarseFrame | None = None  #: the coarse frame itself, for coarse frames
    #: the frame's forces (N, 3) eV/Å and potential energy (eV) where they were computed (a
    #: coarse frame, a simulated or learned segment's interior frame; None: interpolated), and
    #: by what (``energy_source``)
    forces: np.ndarray | None = None
    energy: float | None = None
    energy_source: str | None = None
