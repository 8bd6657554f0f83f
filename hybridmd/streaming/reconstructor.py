"""Fine frames from coarse frames fed in order, emitted in time order as soon as each
interval has the context the interpolator needs (C coarse frames on each side); at the end of
the stream the last intervals, which never get their right-hand context, are filled by the
quintic Hermite interpolant, as offline ``reconstruct`` does.

Velocities at the interval ends: interval k runs from the *departure* momenta of frame k (after
the boundary thermostat) to the *arrival* momenta of frame k+1 (before it), so the interpolant
follows the deterministic NVE segment between the two O-steps. Context frames left of the
interval use departure momenta, those right of it arrival momenta, which keeps the window
symmetric under time reversal.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.temperature import check_range, context_temperatures
from hybridmd.interpolation.windows import Windows
from hybridmd.streaming.frames import CoarseFrame, FineFrame, energy_source
from hybridmd.streaming.interpolators import Interpolator
from hybridmd.trajectory import SPACING_RTOL, Trajectory
from hybridmd.units import FS

#: the stream's messages, from each of its modules, under the worker's one logger name
log = logging.getLogger("hybridmd.streaming.worker")


class IncrementalReconstructor:
    """Fine frames from coarse frames fed one at a time, emitted strictly in time order.

    Interval k (coarse frames k to k+1) is reconstructed as soon as frame k + C has arrived,
    with frames k-C+1 .. k+C as context; the first C-1 and (at ``finish``) the last C-1
    intervals lack context and are filled by the quintic Hermite interpolant.
    ``interval_delay_s`` sleeps before each interval (to test backpressure).
    """

    def __init__(self, interpolator: Interpolator, numbers: np.ndarray, masses: np.ndarray,
                 stride: int, dt_fs: float, interval_delay_s: float = 0.0):
        if stride < 2:
            raise ValueError(f"stride must be at least 2 (got {stride}): nothing to interpolate")
        if not dt_fs > 0:
            raise ValueError(f"dt_fs must be positive, got {dt_fs}")
        self.model = interpolator
        self.numbers = np.asarray(numbers, dtype=int)
        self.masses = np.asarray(masses, dtype=float)
        self.stride, self.dt_fs = stride, float(dt_fs)
        self.context = interpolator.context
        self.interval_delay_s = interval_delay_s
        self._edge = ClassicalInterpolator("quintic")
        if not isinstance(interpolator, ClassicalInterpolator):
            self._check_model()
        self._buffer: list[CoarseFrame] = []  #: frames next-C+1 .. last, in order
        self._start: int | None = None  #: index of the stream's first frame
        self._next = 0  #: the next interval to reconstruct (coarse index of its left end)
        self._finished = False
        self._outside = 0  #: intervals whose window lay outside the model's temperature range
        self._checked = 0

    def _check_model(self) -> None:
        from hybridmd.interpolator_file import check_compatible

        model = self.model
        if model.stride != self.stride:
            raise ValueError(f"{model.metadata.get('checkpoint')} interpolates {model.stride} "
                             f"fine steps per coarse step, the stream {self.stride}")
        n = len(self.numbers)
        probe = Trajectory(self.numbers, np.zeros((1, n, 3)), np.zeros((1, n, 3)),
                           dt_fs=self.stride * self.dt_fs, masses=self.masses,
                           metadata={"source": "the coarse frame stream"})
        check_compatible(model, probe, coarse=True)

    @property
    def buffered(self) -> int:
        """Coarse frames held back (context of the intervals still to do)."""
        return len(self._buffer)

    def _validate(self, frame: CoarseFrame) -> None:
        where = f"coarse frame {frame.index} (t = {frame.time_fs:g} fs)"
        if frame.forces is None:
            raise ValueError(f"{where} has no forces: the interpolator needs the accelerations "
                             "F/m at every coarse frame; send the forces of each segment end")
        if frame.positions.shape != (len(self.numbers), 3):
            raise ValueError(f"{where} has {frame.positions.shape[0]} atoms, the stream "
                             f"{len(self.numbers)}")
        interior = frame.interior_positions
        if interior is not None and interior.shape[0] != self.stride - 1:
            raise ValueError(f"{where} carries {interior.shape[0]} interior frames, the stream "
                             f"has {self.stride - 1} per segment")
        if not self._buffer:
            return
        last = self._buffer[-1]
        if frame.index != last.index + 1:
            raise ValueError(f"{where} follows coarse frame {last.index}: frames must come in "
                             "order without gaps")
        step, expected = frame.time_fs - last.time_fs, self.stride * self.dt_fs
        if not np.isclose(step, expected, rtol=SPACING_RTOL, atol=1e-9):
            raise ValueError(f"{where} is {step:g} fs after the previous one, expected "
                             f"{expected:g} fs (n = {self.stride} steps of {self.dt_fs:g} fs)")

    def feed(self, frame: CoarseFrame) -> list[FineFrame]:
        """Take the next coarse frame; return the fine frames that became final."""
        if self._finished:
            raise RuntimeError("the stream has ended: no more frames can be fed")
        self._validate(frame)
        out: list[FineFrame] = []
        if self._start is None:
            self._start = self._next = frame.index
            out.append(self._coarse(frame))
        self._buffer.append(frame)
        while self._ready():
            out.extend(self._interval(edge=self._next - self._start < self.context - 1))
        return out

    def finish(self) -> list[FineFrame]:
        """The end of the stream: the intervals still waiting for context, by quintic Hermite."""
        out: list[FineFrame] = []
        if self._start is not None:
            while self._next < self._buffer[-1].index:
                out.extend(self._interval(edge=True))
        self._finished = True
        if self._outside:
            log.warning("%d of %d intervals lay outside the temperatures %s was trained on",
                        self._outside, self._checked, self.model.name)
        return out

    def _check_range(self, windows: Windows, time_fs: float) -> None:
        """Count the interval if its window leaves the model's training temperatures; warn at
        the first one (the network's error there is not measured)."""
        check = check_range(getattr(self.model, "metadata", {}),
                            context_temperatures(windows.v, self.masses))
        if check is None:
            return
        self._checked += 1
        if check.outside:
            if not self._outside:
                log.warning(check.message(self.model.name,
                                          f"the interval from t = {time_fs:g} fs"))
            self._outside += 1

    def resume(self, frames: list[CoarseFrame], stream_start: int = 0) -> None:
        """Continue a stream whose fine frames up to ``frames[-1]`` are already written.

        ``frames``: the last coarse frames already streamed, in order (at least C of them,
        fewer only at the stream's start), the last one being where the fine output ends.
        """
        if self._start is not None:
            raise RuntimeError("resume() continues a stream: call it before any feed()")
        need = min(self.context, frames[-1].index - stream_start + 1)
        if len(frames) < need:
            raise ValueError(f"resuming at coarse frame {frames[-1].index} needs the last {need} "
                             f"coarse frames as context, got {len(frames)}")
        for frame in frames:
            self._validate(frame)
            self._buffer.append(frame)
        self._start, self._next = stream_start, frames[-1].index

    def _ready(self) -> bool:
        last = self._buffer[-1].index
        if self._next + 1 <= last and self._frame(self._next + 1).interior_positions is not None:
            return True  # a simulated segment: its frames are known, no context needed
        if self._next - self._start < self.context - 1:  # an edge interval at the start
            return self._next + 1 <= last
        return self._next + self.context <= last

    def _frame(self, index: int) -> CoarseFrame:
        return self._buffer[index - self._buffer[0].index]

    def _coarse(self, frame: CoarseFrame) -> FineFrame:
        known = frame.energy is not None or frame.forces is not None
        return FineFrame(frame.index * self.stride, frame.time_fs, frame.positions,
                         frame.momenta, frame.origin, "coarse", frame, frame.forces,
                         frame.energy, energy_source(frame.exact) if known else None)

    def _interval(self, edge: bool) -> list[FineFrame]:
        """The interior frames of interval ``self._next`` and the coarse frame that ends it."""
        if self.interval_delay_s > 0:
            time.sleep(self.interval_delay_s)
        k, model = self._next, (self._edge if edge else self.model)
        m = self.masses[:, None]
        right = self._frame(k + 1)
        if right.interior_positions is not None:
            return self._emit(k, self._frame(k), right, right.interior_positions,
                              right.interior_momenta, right.interior_method,
                              right.interior_forces, right.interior_energies)
        c = 1 if edge else self.context
        frames = [self._frame(i) for i in range(k - c + 1, k + c + 1)]
        momenta = [f.momenta if i < c else f.arrival for i, f in enumerate(frames)]
        windows = Windows(
            r=np.stack([f.positions for f in frames])[None],
            v=np.stack([p / m * FS for p in momenta])[None],
            a=np.stack([f.forces / m * FS**2 for f in frames])[None],
            stride=self.stride, dt_fs=self.dt_fs, masses=self.masses, numbers=self.numbers)
        if not edge:
            self._check_range(windows, frames[c - 1].time_fs)
        r, v = model.interpolate(windows)
        return self._emit(k, frames[c - 1], frames[c], r[0, 1:-1], v[0, 1:-1] * m / FS,
                          model.name)

    def _emit(self, k: int, left: CoarseFrame, right: CoarseFrame, positions: np.ndarray,
              momenta: np.ndarray, method: str, forces: np.ndarray | None = None,
              energies: np.ndarray | None = None) -> list[FineFrame]:
        """The n-1 interior frames of interval k (with their forces and energies where
        known) and its right coarse frame; advance."""
        out = []
        source = None if energies is None else energy_source(right.exact)
        for j in range(1, self.stride):
            t = left.time_fs + (right.time_fs - left.time_fs) * j / self.stride
            out.append(FineFrame(
                k * self.stride + j, t, positions[j - 1], momenta[j - 1], right.origin, method,
                forces=None if forces is None else forces[j - 1],
                energy=None if energies is None else float(energies[j - 1]),
                energy_source=source))
        out.append(self._coarse(right))
        self._next = k + 1
        keep = self._next - max(self.context - 1, 0)  # the next interval's first context frame
        self._buffer = [f for f in self._buffer if f.index >= keep]
        return out
