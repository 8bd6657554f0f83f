"""A classical reconstruction of a fine trajectory from its own coarse frames, to analyse.

``hybridmd interpolate`` needs a trained model; :func:`classical_reconstruction` gives the
same kind of output for the classical baselines, so that a baseline can be judged with
:func:`~hybridmd.analysis.report.analyze` beside a model.
"""

from __future__ import annotations

import numpy as np

from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.windows import make_windows
from hybridmd.trajectory import Trajectory
from hybridmd.units import FS


def classical_reconstruction(reference: Trajectory, stride: int,
                             kind: str = "cubic") -> Trajectory:
    """Every ``stride``-th frame of ``reference`` kept, the frames between filled by ``kind``.

    ``kind`` is "linear", "cubic" or "quintic" (:class:`ClassicalInterpolator`). The result
    runs from the first frame to the last coarse frame, on the reference's time grid, with
    ``metadata["stride"]`` set as ``hybridmd interpolate`` sets it.
    """
    windows = make_windows(reference, stride)
    r, v = ClassicalInterpolator(kind).interpolate(windows)
    positions = np.concatenate([r[:, :-1].reshape(-1, reference.n_atoms, 3), r[-1:, -1]])
    velocities = np.concatenate([v[:, :-1].reshape(-1, reference.n_atoms, 3), v[-1:, -1]])
    return Trajectory(
        numbers=reference.numbers, positions=positions,
        momenta=velocities * reference.masses[None, :, None] / FS, dt_fs=reference.dt_fs,
        masses=reference.masses, t0_fs=reference.t0_fs, **reference.constant_box(),
        metadata={"source": f"{kind} interpolation of {reference.metadata.get('source')} at "
                            f"stride {stride}", "velocities": "reconstructed",
                  "stride": stride, "interpolator": kind})
