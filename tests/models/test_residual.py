"""The residual (Bi-)LSTM: starts as the quintic spline, its endpoint envelope and its exact
time-reversal symmetry (tiny sizes, one thread)."""

from __future__ import annotations

import pytest
import torch

from hybridmd.models.base import reverse_time
from hybridmd.models.registry import build_net
from hybridmd.models.residual import ResidualLSTM

N_ATOMS, N, D = 3, 8, 18
pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(b: int = 4, c: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ctx_x = torch.randn(b, 2 * c, D, generator=g)
    ctx_a = torch.randn(b, 2 * c, 3 * N_ATOMS, generator=g)
    base = torch.randn(b, N + 1, D, generator=g)
    base[:, 0], base[:, -1] = ctx_x[:, c - 1], ctx_x[:, c]
    return ctx_x, ctx_a, base, torch.arange(N + 1, dtype=torch.float32) / N


def _net(**hyper) -> ResidualLSTM:
    """A small network whose output layer is random (a trained one is not zero)."""
    torch.manual_seed(0)
    net = build_net("bilstm-residual", N_ATOMS, N, 2, hidden=16, frames_per_cell=3, **hyper)
    torch.nn.init.normal_(net.head.weight, std=0.3)
    return net


def test_untrained_network_is_its_interpolant():
    ctx_x, ctx_a, base, s = _inputs()
    net = build_net("bilstm-residual", N_ATOMS, N, 2, hidden=16)
    assert torch.equal(net(ctx_x, ctx_a, base, s), base)


@pytest.mark.parametrize("symmetric", [False, True])
def test_envelope_makes_the_correction_vanish_to_third_order_at_the_ends(symmetric: bool):
    """Positions are corrected by g(s)·(4s(1-s))³, velocities by g(s)·(4s(1-s))²: the spline
    already matches r, v and a at both ends, and so does the true path."""
    ctx_x, ctx_a, base, s = _inputs()
    plain = _net(envelope=False, symmetric=symmetric)
    enveloped = _net(envelope=True, symmetric=symmetric)
    enveloped.load_state_dict(plain.state_dict())
    raw = plain(ctx_x, ctx_a, base, s) - base
    corr = enveloped(ctx_x, ctx_a, base, s) - base
    assert raw[:, 1:-1].abs().min() > 0
    bump = (4 * s * (1 - s)).view(1, -1, 1)
    h = D // 2
    torch.testing.assert_close(corr[..., :h], raw[..., :h] * bump**3, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(corr[..., h:], raw[..., h:] * bump**2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("envelope", [False, True])
def test_symmetric_network_commutes_with_time_reversal(envelope: bool):
    """Reconstructing the time-reversed window gives the time-reversed reconstruction."""
    ctx_x, ctx_a, base, s = _inputs(seed=1)
    for symmetric in (False, True):
        net = _net(envelope=envelope, symmetric=symmetric)
        out = net(ctx_x, ctx_a, base, s)
        back = net(reverse_time(ctx_x, N_ATOMS), torch.flip(ctx_a, dims=(1,)),
                   reverse_time(base, N_ATOMS), s)
        gap = (reverse_time(back, N_ATOMS) - out).abs().max()
        if symmetric:
            assert gap < 1e-5
        else:  # the plain bidirectional LSTM is only approximately symmetric
            assert gap > 1e-3


def test_hyperparameters_rebuild_the_same_network():
    net = _net(envelope=True, symmetric=True)
    again = build_net(net.kind, N_ATOMS, N, 2, **net.hyperparameters())
    again.load_state_dict(net.state_dict())
    ctx_x, ctx_a, base, s = _inputs()
    assert torch.equal(again(ctx_x, ctx_a, base, s), net(ctx_x, ctx_a, base, s))


def test_a_forward_only_model_is_not_symmetrised():
    assert not build_net("lstm-residual", N_ATOMS, N, 2, hidden=8).symmetric
    with pytest.raises(ValueError, match="forward only"):
        build_net("lstm-residual", N_ATOMS, N, 2, hidden=8, symmetric=True)
