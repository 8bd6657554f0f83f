"""The frames the expensive calculator labeled in a run: what the learner fits to.

Every expensive call gives one frame (positions, forces, potential energy): a simulated segment
of n steps gives n of them, a monitor's re-simulation n + 1, a single-point check one. Frames
are kept in the order they were made; the set only grows (rollbacks discard ML frames, never
labeled ones), so a checkpoint records it by its length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: where a frame came from; an earlier run's (a warm start's) single-point checks stay apart
#: from its dynamics: they sit where that run's forecasts went, not where its calculator did
SOURCES = ("simulation", "monitor", "earlier run", "check", "earlier check")
#: the sources that are single-point checks (this run's and an earlier run's)
CHECKS = (SOURCES.index("check"), SOURCES.index("earlier check"))


@dataclass
class ExpensiveFrames:
    """Labeled frames of one molecule: positions (Å), forces (eV/Å), energies (eV)."""

    n_atoms: int
    _positions: list[np.ndarray] = field(default_factory=list)
    _forces: list[np.ndarray] = field(default_factory=list)
    _energies: list[np.ndarray] = field(default_factory=list)
    _sources: list[np.ndarray] = field(default_factory=list)  #: index into SOURCES
    _length: int = 0

    def __len__(self) -> int:
        return self._length

    def add(self, positions: np.ndarray, forces: np.ndarray, energies: np.ndarray,
            source: str) -> None:
        """Frames (k, N, 3), (k, N, 3), (k,) made by ``source`` (see ``SOURCES``)."""
        positions = np.array(positions, dtype=float).reshape(-1, self.n_atoms, 3)
        forces = np.array(forces, dtype=float).reshape(positions.shape)
        energies = np.array(energies, dtype=float).reshape(len(positions))
        self._positions.append(positions)
        self._forces.append(forces)
        self._energies.append(energies)
        self._sources.append(np.full(len(positions), SOURCES.index(source), dtype=np.int8))
        self._length += len(positions)

    def arrays(self, length: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(R, F, E) of the first ``length`` frames (all by default)."""
        self._join()
        n = self._length if length is None else length
        return self._positions[0][:n], self._forces[0][:n], self._energies[0][:n]

    def arrays_sources(self) -> np.ndarray:
        """(M,) index into ``SOURCES`` of every frame."""
        self._join()
        return self._sources[0][:self._length]

    def count(self, source: str, length: int | None = None) -> int:
        """Frames from ``source`` among the first ``length``."""
        self._join()
        n = self._length if length is None else length
        return int((self._sources[0][:n] == SOURCES.index(source)).sum())

    def head(self, length: int) -> ExpensiveFrames:
        """A copy of the first ``length`` frames."""
        r, f, e = (a.copy() for a in self.arrays(length))
        return ExpensiveFrames(self.n_atoms, [r], [f], [e], [self._sources[0][:length].copy()],
                               len(r))

    def _join(self) -> None:
        if len(self._positions) == 1:
            return
        if not self._positions:
            n = self.n_atoms
            self._positions = [np.zeros((0, n, 3))]
            self._forces = [np.zeros((0, n, 3))]
            self._energies = [np.zeros(0)]
            self._sources = [np.zeros(0, dtype=np.int8)]
            return
        for part in (self._positions, self._forces, self._energies, self._sources):
            part[:] = [np.concatenate(part)]


def pick_frames(n: int, most: int, preferred: np.ndarray | None = None) -> np.ndarray:
    """At most ``most`` of ``n`` frames for a fit, sorted: evenly spread in the order they
    were made, but the ``preferred`` ones (a boolean mask: the frames single-point checks
    labeled, where the model was unsure) first, up to half of them, evenly spread among
    themselves; the rest evenly spread over the others. Deterministic."""
    def spread(indices: np.ndarray, k: int) -> np.ndarray:
        """``k`` (at most all) of ``indices``, evenly spaced."""
        return indices[np.linspace(0, len(indices), min(k, len(indices)),
                                   endpoint=False).astype(int)]

    everything = np.arange(n)
    if preferred is None or not preferred[:n].any():
        return spread(everything, most)
    first = spread(np.flatnonzero(preferred[:n]), min(most, n) // 2)
    fill = spread(np.setdiff1d(everything, first), min(most, n) - len(first))
    return np.sort(np.concatenate([first, fill]))
