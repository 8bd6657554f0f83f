"""`hybridmd interpolate`: the fine trajectory between the frames of a coarse one."""

from __future__ import annotations

import logging

import numpy as np

from hybridmd.errors import InputError
from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.neural import NeuralInterpolator
from hybridmd.interpolation.temperature import context_temperatures, warn_outside
from hybridmd.interpolation.windows import coarse_windows
from hybridmd.interpolator_file import check_compatible
from hybridmd.trajectory import Trajectory
from hybridmd.units import FS

log = logging.getLogger(__name__)


def reconstruct(model: NeuralInterpolator, coarse: Trajectory) -> Trajectory:
    """All fine frames (positions and momenta) from the first coarse frame to the last.

    Intervals too close to either end of the coarse trajectory for the model's context are
    filled by the quintic Hermite interpolant; the metadata lists them.
    """
    check_compatible(model, coarse, coarse=True)
    n, c, m = model.stride, model.context, len(coarse)
    if m < 2:
        raise InputError(f"{coarse.metadata.get('source', 'the coarse trajectory')} has {m} "
                         "frame; a coarse trajectory needs at least two to interpolate between")
    r = np.empty(((m - 1) * n + 1, coarse.n_atoms, 3))
    v = np.empty_like(r)
    edges = list(range(0, min(c - 1, m - 1))) + list(range(max(m - c, c - 1), m - 1))
    if m >= 2 * c:
        windows = coarse_windows(coarse, n, c)
        warn_outside(model.metadata, context_temperatures(windows.v, windows.masses),
                     coarse.metadata.get("source") or "the coarse trajectory")
        wr, wv = model.interpolate(windows)
        for k in range(len(wr)):
            i = k + c - 1
            r[i * n:(i + 1) * n + 1], v[i * n:(i + 1) * n + 1] = wr[k], wv[k]
    else:
        edges = list(range(m - 1))
    if edges:
        log.info("%d of %d intervals lack context for the model: quintic Hermite there",
                 len(edges), m - 1)
        wr, wv = ClassicalInterpolator("quintic").interpolate(coarse_windows(coarse, n, 1))
        for i in edges:
            r[i * n:(i + 1) * n + 1], v[i * n:(i + 1) * n + 1] = wr[i], wv[i]
    return Trajectory(
        numbers=coarse.numbers, positions=r, momenta=v * coarse.masses[None, :, None] / FS,
        dt_fs=coarse.dt_fs / n, masses=coarse.masses, t0_fs=coarse.t0_fs,
        **coarse.constant_box(),
        metadata={"source": coarse.metadata.get("source"), "velocities": "reconstructed",
                  "model": model.metadata.get("checkpoint"), "stride": n,
                  "quintic_intervals": edges})
