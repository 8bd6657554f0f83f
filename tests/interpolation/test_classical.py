"""Classical interpolants: exact on polynomial motion, and the right order on real MD."""

from __future__ import annotations

import numpy as np
import pytest

from hybridmd.interpolation.classical import ClassicalInterpolator
from hybridmd.interpolation.metrics import reconstruction_errors
from hybridmd.interpolation.windows import Windows, coarse_windows, make_windows
from hybridmd.readers import read_trajectory

from conftest import DATA


def _polynomial_windows(degree: int, n: int = 10, dt: float = 0.5):
    rng = np.random.default_rng(degree)
    c = rng.normal(size=(degree + 1, 2, 3))

    def deriv(t: float, order: int) -> np.ndarray:
        out = np.zeros((2, 3))
        for k in range(order, degree + 1):
            out += c[k] * t ** (k - order) * np.prod(np.arange(k - order + 1, k + 1))
        return out

    t0, h = 0.7, n * dt
    ends = [t0, t0 + h]
    w = Windows(r=np.stack([deriv(t, 0) for t in ends])[None],
                v=np.stack([deriv(t, 1) for t in ends])[None],
                a=np.stack([deriv(t, 2) for t in ends])[None], stride=n, dt_fs=dt,
                masses=np.ones(2), numbers=np.ones(2, int))
    ts = t0 + dt * np.arange(n + 1)
    return w, np.stack([deriv(t, 0) for t in ts]), np.stack([deriv(t, 1) for t in ts])


@pytest.mark.parametrize(("kind", "degree"), [("linear", 1), ("cubic", 3), ("quintic", 5)])
def test_exact_for_polynomials_of_their_degree(kind: str, degree: int) -> None:
    w, r_true, v_true = _polynomial_windows(degree)
    r, v = ClassicalInterpolator(kind).interpolate(w)
    np.testing.assert_allclose(r[0], r_true, atol=1e-10)
    np.testing.assert_allclose(v[0], v_true, atol=1e-10)


def test_cubic_is_not_exact_for_quintic_motion() -> None:
    w, r_true, _ = _polynomial_windows(5)
    r, _ = ClassicalInterpolator("cubic").interpolate(w)
    assert np.abs(r[0] - r_true).max() > 1e-3


def test_order_of_accuracy_on_real_md() -> None:
    """Real MP2 water MD (1 fs): at 6 fs, quintic < cubic < linear, with end frames exact."""
    traj = read_trajectory(DATA / "6h2o_orca_mp2_md_300k.npz", dt_fs=1.0)
    w = make_windows(traj, 6, context=1)
    errors = {}
    for kind in ("linear", "cubic", "quintic"):
        r, v = ClassicalInterpolator(kind).interpolate(w)
        np.testing.assert_allclose(r[:, 0], w.target_r[:, 0])
        np.testing.assert_allclose(r[:, -1], w.target_r[:, -1])
        errors[kind] = reconstruction_errors(r, v, w.target_r, w.target_v)["position_mae"]
    assert errors["quintic"] < 0.5 * errors["cubic"] < 0.5 * errors["linear"]


def test_windows_layout() -> None:
    traj = read_trajectory(DATA / "6h2o_orca_mp2_md_300k.npz", dt_fs=1.0)
    w = make_windows(traj, 5, context=2)
    assert w.r.shape[1:] == (4, 18, 3) and w.target_r.shape[1:] == (6, 18, 3)
    k = 3
    s = w.start[k]
    np.testing.assert_array_equal(w.r[k, 1], traj.positions[s])
    np.testing.assert_array_equal(w.r[k, 2], traj.positions[s + 5])
    np.testing.assert_array_equal(w.r[k, 0], traj.positions[s - 5])
    np.testing.assert_array_equal(w.target_r[k], traj.positions[s:s + 6])
    # the same windows cut from the coarse trajectory
    cw = coarse_windows(traj.subsample(5), 5, 2)
    np.testing.assert_array_equal(cw.r[0], w.r[0])
    assert cw.dt_fs == pytest.approx(1.0)


def test_too_short_for_windows() -> None:
    traj = read_trajectory(DATA / "6h2o_orca_mp2_md_300k.npz", dt_fs=1.0).slice(0, 10)
    with pytest.raises(ValueError, match="too short"):
        make_windows(traj, 5, context=2)
