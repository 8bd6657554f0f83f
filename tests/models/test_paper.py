"""The paper's integrators: the tensor contract, time-reversal consistency, Hamiltonian structure,
and that each family learns harmonic motion (tiny sizes, one thread, a few seconds in all)."""

from __future__ import annotations

import pytest
import torch

from hybridmd.models.base import blend, reverse_time
from hybridmd.models.paper import PAPER_MODELS, HamiltonianNet, NeuralODENet, RecurrentNet
from hybridmd.models.registry import build_net, model_kinds

N_ATOMS, N, D = 3, 5, 18
SMALL = {"hidden": 16}
KINDS = ["rnn", "bi-rnn", "lstm", "bi-lstm", "node", "bi-node", "hnn", "bi-hnn"]
pytestmark = pytest.mark.usefixtures("one_thread")


def _s(n: int = N) -> torch.Tensor:
    return torch.arange(n + 1, dtype=torch.float32) / n


def _oscillator_windows(b: int, c: int, seed: int, n: int = N, dt: float = 1.0):
    """Each coordinate r = A cos(ωt + φ), v = dr/dt; ω fixed per coordinate, A and φ random.

    Returns ctx_x (b, 2C, D), ctx_a, base_x (linear interpolant), s and the true states."""
    g = torch.Generator().manual_seed(seed)
    d3 = 3 * N_ATOMS
    omega = 0.7 + 0.6 * torch.rand(d3, generator=torch.Generator().manual_seed(0))
    amp = 0.5 + torch.rand(b, 1, d3, generator=g)
    phase = 2 * torch.pi * torch.rand(b, 1, d3, generator=g)

    def states(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        arg = omega * t.view(1, -1, 1) + phase
        r, v = amp * torch.cos(arg), -amp * omega * torch.sin(arg)
        return torch.cat([r, v], dim=-1), -omega ** 2 * r

    s = _s(n)
    ctx_x, ctx_a = states(dt * torch.arange(1 - c, c + 1, dtype=torch.float32))
    target, _ = states(dt * s)
    lam = s.view(1, -1, 1)
    base = (1 - lam) * ctx_x[:, c - 1:c] + lam * ctx_x[:, c:c + 1]
    return ctx_x, ctx_a, base, s, target


def _random_inputs(b: int, c: int, seed: int = 0, n: int = N):
    g = torch.Generator().manual_seed(seed)
    ctx_x = torch.randn(b, 2 * c, D, generator=g)
    ctx_a = torch.randn(b, 2 * c, 3 * N_ATOMS, generator=g)
    lam = _s(n).view(1, -1, 1)
    base = (1 - lam) * ctx_x[:, c - 1:c] + lam * ctx_x[:, c:c + 1]
    return ctx_x, ctx_a, base, _s(n)


def test_registry_has_every_kind():
    assert set(PAPER_MODELS) == set(KINDS)
    assert set(KINDS) <= set(model_kinds())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("c", [1, 2])
def test_shape_and_pinned_endpoints(kind: str, c: int):
    torch.manual_seed(0)
    net = build_net(kind, N_ATOMS, N, c, zero_init=False, **SMALL)
    assert net.kind == kind
    ctx_x, ctx_a, base, s = _random_inputs(4, c)
    out = net(ctx_x, ctx_a, base, s)
    assert out.shape == (4, N + 1, D) and out.dtype == torch.float32
    assert torch.equal(out[:, 0], ctx_x[:, c - 1]) and torch.equal(out[:, -1], ctx_x[:, c])
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_several_frames_per_lstm_step(bidirectional: bool):
    torch.manual_seed(0)
    net = RecurrentNet(N_ATOMS, N, 2, bidirectional=bidirectional, hidden=16,
                       steps_per_cell=2, zero_init=False)  # n = 5 is not a multiple of 2
    ctx_x, ctx_a, base, s = _random_inputs(3, 2)
    out = net(ctx_x, ctx_a, base, s)
    assert out.shape == (3, N + 1, D)
    assert torch.equal(out[:, 0], ctx_x[:, 1]) and torch.equal(out[:, -1], ctx_x[:, 2])


@pytest.mark.parametrize("kind", KINDS)
def test_hyperparameters_rebuild_the_same_network(kind: str):
    net = build_net(kind, N_ATOMS, N, 2, hidden=8, layers=1)
    again = build_net(net.kind, N_ATOMS, N, 2, **net.hyperparameters())
    assert again.kind == kind and again.hyperparameters() == net.hyperparameters()
    again.load_state_dict(net.state_dict())
    with pytest.raises(ValueError, match="contradicts"):
        build_net(kind, N_ATOMS, N, 2, bidirectional=not kind.startswith("bi-"))


def test_untrained_zero_init_is_constant_or_linear():
    ctx_x, ctx_a, base, s = _random_inputs(2, 2)
    uni = build_net("lstm", N_ATOMS, N, 2, **SMALL)(ctx_x, ctx_a, base, s)
    torch.testing.assert_close(uni[:, :-1], ctx_x[:, 1:2].expand(-1, N, -1))
    for kind in ("bi-lstm", "bi-node", "bi-hnn"):
        torch.testing.assert_close(build_net(kind, N_ATOMS, N, 2, **SMALL)(ctx_x, ctx_a, base, s),
                                   base)


def test_blend_gives_forward_at_start_and_backward_at_end():
    g = torch.Generator().manual_seed(1)
    fwd, bwd = torch.randn(2, N + 1, D, generator=g), torch.randn(2, N + 1, D, generator=g)
    out = blend(fwd, bwd, _s())
    assert torch.equal(out[:, 0], fwd[:, 0]) and torch.equal(out[:, -1], bwd[:, -1])


@pytest.mark.parametrize("kind", ["bi-rnn", "bi-lstm", "bi-node", "bi-hnn"])
@pytest.mark.parametrize("c", [1, 2])
def test_bidirectional_output_is_time_reversal_consistent(kind: str, c: int):
    """On a window that equals its own time reversal, so must the reconstruction."""
    torch.manual_seed(0)
    net = build_net(kind, N_ATOMS, N, c, zero_init=False, **SMALL)
    ctx_x, ctx_a, base, s = _random_inputs(4, c, seed=3)
    ctx_x = torch.cat([ctx_x[:, :c], reverse_time(ctx_x[:, :c], N_ATOMS)], dim=1)
    torch.testing.assert_close(reverse_time(ctx_x, N_ATOMS), ctx_x, rtol=0, atol=0)
    out = net(ctx_x, ctx_a, base, s)
    assert (out - out[:, :1]).abs().max() > 1e-2  # not trivially constant
    torch.testing.assert_close(reverse_time(out, N_ATOMS), out, rtol=0, atol=1e-6)


def test_hnn_runs_under_no_grad_and_matches():
    torch.manual_seed(0)
    net = HamiltonianNet(N_ATOMS, N, 2, hidden=16, zero_init=False).eval()
    inputs = _random_inputs(3, 2)
    with_grad = net(*inputs)
    with torch.no_grad():
        without = net(*inputs)
    assert with_grad.requires_grad and not without.requires_grad
    torch.testing.assert_close(without, with_grad.detach())


def test_hnn_conserves_its_hamiltonian():
    """Random weights: H_θ stays constant along the trajectory up to the RK4 error, which falls
    as h⁴ (float64, so round-off does not hide it); a plain neural ODE does not conserve it."""
    s = _s(10).double()
    x0 = torch.randn(8, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    drifts = []
    for substeps in (1, 2):
        torch.manual_seed(0)
        net = HamiltonianNet(N_ATOMS, 10, 1, bidirectional=False, hidden=32, substeps=substeps,
                             zero_init=False).double()
        with torch.no_grad():
            net.energy[-1].weight.mul_(50.0)  # fast dynamics: the states move by O(1)
            xs = net.solve(x0, s)
            h = net.hamiltonian(xs)
        assert (xs[:, -1] - xs[:, 0]).norm(dim=-1).min() > 1.0
        drifts.append((h - h[:, :1]).abs().max())
    assert drifts[0] < 1e-3 * h[:, 0].std()
    assert drifts[0] > 8 * drifts[1]  # fourth order: 16x smaller at half the step
    node = NeuralODENet(N_ATOMS, 10, 1, bidirectional=False, hidden=32, zero_init=False).double()
    with torch.no_grad():
        assert (net.hamiltonian(node.solve(x0, s)) - h[:, :1]).abs().max() > 1e3 * drifts[0]


def test_node_adjoint_gradients_match_direct():
    torch.manual_seed(0)
    direct = NeuralODENet(N_ATOMS, N, 1, hidden=16, zero_init=False, substeps=2)
    adjoint = NeuralODENet(N_ATOMS, N, 1, hidden=16, zero_init=False, substeps=2, adjoint=True)
    adjoint.load_state_dict(direct.state_dict())
    inputs = _random_inputs(4, 1)
    grads = []
    for net in (direct, adjoint):
        net(*inputs).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-2, atol=1e-4)


def _interior_mse(net, windows) -> torch.Tensor:
    *inputs, target = windows
    return (net(*inputs)[:, 1:-1] - target[:, 1:-1]).square().mean()


@pytest.mark.parametrize("kind", ["lstm", "bi-lstm", "bi-node", "bi-hnn"])
def test_short_training_learns_harmonic_motion(kind: str):
    torch.manual_seed(1)
    net = build_net(kind, N_ATOMS, N, 2, **SMALL)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    train = _oscillator_windows(64, 2, seed=1)
    before = _interior_mse(net, train).item()
    for _ in range(60):
        opt.zero_grad()
        loss = _interior_mse(net, train)
        loss.backward()
        opt.step()
    after = _interior_mse(net, train).item()
    assert after < 0.5 * before, (before, after)
    if kind == "bi-lstm":  # and it generalises beyond linear interpolation of the end states
        ctx_x, ctx_a, base, s, target = test = _oscillator_windows(256, 2, seed=2)
        lam = s.view(1, -1, 1)
        linear = (1 - lam) * ctx_x[:, 1:2] + lam * ctx_x[:, 2:3]
        linear_mse = (linear[:, 1:-1] - target[:, 1:-1]).square().mean()
        with torch.no_grad():
            assert _interior_mse(net, test) < 0.5 * linear_mse
