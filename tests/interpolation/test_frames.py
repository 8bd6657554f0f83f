"""Canonical frames: a round trip is exact, and rigid motions of the input do not matter."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hybridmd.interpolation.frames import Canonicaliser, kabsch_rotation
from hybridmd.interpolation.neural import prepare_batch
from hybridmd.interpolation.windows import make_windows
from hybridmd.readers import read_trajectory

from conftest import DATA


def _setup():
    traj = read_trajectory(DATA / "6h2o_orca_mp2_md_300k.npz", dt_fs=1.0)
    w = make_windows(traj, 5, context=2)
    masses = torch.as_tensor(traj.masses)
    ref = torch.as_tensor(traj.positions[0])
    ref = ref - (ref * (masses / masses.sum())[:, None]).sum(0)
    scales = {"r": torch.full((18, 3), 0.1), "v": torch.full((18, 3), 0.01),
              "a": torch.full((18, 3), 0.001)}
    return w, Canonicaliser(masses, ref, scales)


def test_kabsch_recovers_a_rotation() -> None:
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(5, 3)))
    q = torch.as_tensor(Rotation.random(random_state=1).as_matrix())
    rot = kabsch_rotation((x @ q.T).unsqueeze(0), x, torch.ones(5) / 5)
    torch.testing.assert_close(rot[0], q)
    assert torch.linalg.det(rot[0]) > 0


def test_round_trip_is_exact() -> None:
    w, canon = _setup()
    r, v, a = (torch.as_tensor(x) for x in (w.r, w.v, w.a))
    frame = canon.frame(r[:, 1], r[:, 2], 5.0)
    s = torch.arange(-1, 3, dtype=torch.float64)
    rc, vc = canon.to_canonical(frame, r, v, s)
    rl, vl = canon.to_lab(frame, rc, vc, s)
    torch.testing.assert_close(rl, r, rtol=0, atol=1e-12)
    torch.testing.assert_close(vl, v, rtol=0, atol=1e-12)


def test_inputs_invariant_to_rigid_motion() -> None:
    """Rotating and translating a window leaves the network inputs unchanged."""
    w, canon = _setup()
    q = Rotation.random(random_state=3).as_matrix()
    shift = np.array([3.0, -2.0, 1.0])
    inputs = []
    for rot, d in ((np.eye(3), 0.0), (q, shift)):
        r = torch.as_tensor(w.r @ rot.T + d)
        v, a = torch.as_tensor(w.v @ rot.T), torch.as_tensor(w.a @ rot.T)
        inputs.append(prepare_batch(canon, r, v, a, 5, 1.0, dtype=torch.float64))
    torch.testing.assert_close(inputs[1].ctx_x, inputs[0].ctx_x, rtol=0, atol=1e-9)
    torch.testing.assert_close(inputs[1].base_x, inputs[0].base_x, rtol=0, atol=1e-9)
