"""The paper's neural integrators (Winkler et al. 2022, sections 2.2-2.3), uni- and bi-directional.

"Paper form": these networks see only the coarse states, never the Hermite interpolant
(``base_x``) or the accelerations (``ctx_a``). Each integrates learned dynamics from x(t)
forward over the n fine steps of the window; the bi-directional variant also integrates, with the
same weights and in the same batch, from x(t+Δt) on the time-reversed window (``reverse_time``:
order flipped, velocities negated), flips that solution back and blends the two with λ_k = k/n
(``blend``). The uni-directional variant is the forward solution alone. Both are returned with
rows 0 and n pinned to x(t) and x(t+Δt) (``pin_endpoints``): for uni models this overwrites the
free end state, which the evaluation ignores anyway (it scores interior frames).

- ``RecurrentNet``: RNN or LSTM that reads the C coarse context states up to x(t) as its initial
  condition, then rolls out autoregressively: x_{k+1} = x_k + head(h_k).
- ``NeuralODENet``: dx/ds = f_θ(x[, s]), an MLP, solved with ``torchdiffeq`` on the fine grid.
- ``HamiltonianNet``: a scalar MLP H_θ(q, p) with dq/ds = ∂H/∂p, dp/ds = -∂H/∂q, solved likewise.

Time runs over s = k/n in [0, 1] (the window's fraction), so the learned rates are per window.

Output layers start at zero by default (``zero_init``): an untrained uni model holds x(t), an
untrained bi model is the linear interpolation of the two end states. This is no physics prior
(the velocities are not used as derivatives); it only spares autoregressive roll-outs a random
walk of n random increments at the start of training. ``zero_init=False`` keeps PyTorch's default
initialisation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from hybridmd.models.base import InterpolatorNet, blend, pin_endpoints, reverse_time

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "softplus": nn.Softplus}


def _mlp(n_in: int, hidden: int, layers: int, n_out: int, activation: str,
         zero_init: bool, out_bias: bool = True) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with a smooth activation, then a linear map."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, not {activation!r}")
    if layers < 1:
        raise ValueError(f"layers must be at least 1, not {layers}")
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), _ACTIVATIONS[activation]()]
        width = hidden
    last = nn.Linear(width, n_out, bias=out_bias)
    if zero_init:
        nn.init.zeros_(last.weight)
        if out_bias:
            nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


def _fine_times(s: torch.Tensor, substeps: int) -> torch.Tensor:
    """The fine grid ``s`` with ``substeps - 1`` extra points inserted in each interval."""
    if substeps == 1:
        return s
    frac = torch.arange(substeps, dtype=s.dtype, device=s.device) / substeps
    inner = (s[:-1, None] + frac * (s[1:] - s[:-1])[:, None]).reshape(-1)
    return torch.cat([inner, s[-1:]])


def _bi_name(base: str, bidirectional: bool) -> str:
    return f"bi-{base}" if bidirectional else base


class RecurrentNet(InterpolatorNet):
    """RNN/LSTM integrator: reads the context up to x(t), then predicts increments frame by frame.

    Each step's input is the state and its time relative to x(t) in units of Δt (the context
    states sit at -(C-1), ..., 0, the roll-out states at k/n), so the network can tell the coarse
    spacing of its initial trajectory from the fine spacing of its roll-out. The step that reads
    x(t) emits the first increments. With ``steps_per_cell`` = m, one step emits m increments
    (x_{k+j} = x_{k+j-1} + d_j, j = 1..m) and reads back only x_{k+m}: about m times cheaper, at
    the price of a coarser recurrence. The bi-directional model runs the same network on
    ``reverse_time(ctx_x)`` (its past is the flipped future context) in the same batch.
    """

    def __init__(self, n_atoms: int, stride: int, context: int, kind: str = "lstm",
                 bidirectional: bool = True, hidden: int = 128, layers: int = 2,
                 steps_per_cell: int = 1, zero_init: bool = True):
        super().__init__(n_atoms, stride, context)
        if kind not in ("rnn", "lstm"):
            raise ValueError(f"kind must be 'rnn' or 'lstm', not {kind!r}")
        if steps_per_cell < 1:
            raise ValueError(f"steps_per_cell must be at least 1, not {steps_per_cell}")
        self.cell, self.bidirectional = kind, bidirectional
        self.hidden, self.layers = hidden, layers
        self.steps_per_cell, self.zero_init = steps_per_cell, zero_init
        self.kind = _bi_name(kind, bidirectional)
        rnn = nn.LSTM if kind == "lstm" else nn.RNN
        self.rnn = rnn(self.dim + 1, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, steps_per_cell * self.dim)
        if zero_init:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def hyperparameters(self) -> dict:
        # no "kind": build_net takes the registry name ("bi-lstm") as its first argument
        return {"bidirectional": self.bidirectional, "hidden": self.hidden,
                "layers": self.layers, "steps_per_cell": self.steps_per_cell,
                "zero_init": self.zero_init}

    def rollout(self, ctx: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(B, C, D) states up to and including the start state -> (B, n+1, D) roll-out."""
        b, c, d = ctx.shape
        n, m = s.numel() - 1, self.steps_per_cell
        s = s.to(device=ctx.device, dtype=ctx.dtype)
        t_ctx = torch.arange(1 - c, 1, dtype=ctx.dtype, device=ctx.device)
        out, hx = self.rnn(torch.cat([ctx, t_ctx.view(1, c, 1).expand(b, c, 1)], dim=-1))
        h, x = out[:, -1], ctx[:, -1]
        frames = [x.unsqueeze(1)]
        k = 0
        while True:
            steps = x.unsqueeze(1) + torch.cumsum(self.head(h).view(b, m, d), dim=1)
            frames.append(steps)
            k += m
            if k >= n:
                break
            x = steps[:, -1]
            inp = torch.cat([x, s[k].expand(b, 1)], dim=-1).unsqueeze(1)
            out, hx = self.rnn(inp, hx)
            h = out[:, 0]
        return torch.cat(frames, dim=1)[:, :n + 1]

    def forward(self, ctx_x: torch.Tensor, ctx_a: torch.Tensor, base_x: torch.Tensor,
                s: torch.Tensor) -> torch.Tensor:
        c = ctx_x.shape[1] // 2
        x0, x1 = ctx_x[:, c - 1], ctx_x[:, c]
        if not self.bidirectional:
            return pin_endpoints(self.rollout(ctx_x[:, :c], s), x0, x1)
        b = ctx_x.shape[0]
        both = torch.cat([ctx_x[:, :c], reverse_time(ctx_x, self.n_atoms)[:, :c]], dim=0)
        sol = self.rollout(both, s)
        fwd, bwd = sol[:b], reverse_time(sol[b:], self.n_atoms)
        return pin_endpoints(blend(fwd, bwd, s), x0, x1)


class _Integrator(InterpolatorNet):
    """Shared part of the ODE-type models: solve from x(t) (and from reversed x(t+Δt)), blend."""

    def __init__(self, n_atoms: int, stride: int, context: int, bidirectional: bool,
                 method: str, substeps: int, adjoint: bool, rtol: float, atol: float):
        super().__init__(n_atoms, stride, context)
        if substeps < 1:
            raise ValueError(f"substeps must be at least 1, not {substeps}")
        self.bidirectional, self.method, self.substeps = bidirectional, method, substeps
        self.adjoint, self.rtol, self.atol = adjoint, rtol, atol

    def dynamics(self) -> nn.Module:
        """The module ``f(s, x) -> dx/ds`` that the solver integrates."""
        raise NotImplementedError

    def solve(self, x0: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(B, D) start states -> (B, n+1, D) states at the times ``s``."""
        t = _fine_times(s.to(device=x0.device, dtype=x0.dtype), self.substeps)
        solver = odeint_adjoint if self.adjoint else odeint
        kw = {} if self.method in ("euler", "midpoint", "rk4", "explicit_adams",
                                   "implicit_adams") else {"rtol": self.rtol, "atol": self.atol}
        xs = solver(self.dynamics(), x0, t, method=self.method, **kw)  # (T, B, D)
        return xs[::self.substeps].transpose(0, 1)

    def forward(self, ctx_x: torch.Tensor, ctx_a: torch.Tensor, base_x: torch.Tensor,
                s: torch.Tensor) -> torch.Tensor:
        c = ctx_x.shape[1] // 2
        x0, x1 = ctx_x[:, c - 1], ctx_x[:, c]
        if not self.bidirectional:
            return pin_endpoints(self.solve(x0, s), x0, x1)
        b = x0.shape[0]
        start_back = reverse_time(x1.unsqueeze(1), self.n_atoms)[:, 0]
        sol = self.solve(torch.cat([x0, start_back], dim=0), s)
        fwd, bwd = sol[:b], reverse_time(sol[b:], self.n_atoms)
        return pin_endpoints(blend(fwd, bwd, s), x0, x1)


class _ODEField(nn.Module):
    """f_θ(s, x) for the neural ODE; ``s`` enters only if ``time_input``."""

    def __init__(self, mlp: nn.Module, time_input: bool):
        super().__init__()
        self.mlp, self.time_input = mlp, time_input

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.time_input:
            x = torch.cat([x, t.to(x.dtype).expand(x.shape[0], 1)], dim=-1)
        return self.mlp(x)


class NeuralODENet(_Integrator):
    """Neural ODE integrator: dx/ds = f_θ(x[, s]), an MLP, solved over the fine grid.

    Default solver: classical RK4 with the fine frames as steps (``substeps`` more per frame):
    a fixed grid, so cost and memory are known in advance and backpropagation through the
    solver is cheap at this size. Adaptive methods ("dopri5", ...) use ``rtol``/``atol``;
    ``adjoint=True`` backpropagates with the adjoint method (constant memory, slower).
    """

    def __init__(self, n_atoms: int, stride: int, context: int, bidirectional: bool = True,
                 hidden: int = 128, layers: int = 3, activation: str = "tanh",
                 time_input: bool = False, method: str = "rk4", substeps: int = 1,
                 adjoint: bool = False, rtol: float = 1e-4, atol: float = 1e-5,
                 zero_init: bool = True):
        super().__init__(n_atoms, stride, context, bidirectional, method, substeps, adjoint,
                         rtol, atol)
        self.hidden, self.layers, self.activation = hidden, layers, activation
        self.time_input, self.zero_init = time_input, zero_init
        self.kind = _bi_name("node", bidirectional)
        self.field = _ODEField(_mlp(self.dim + int(time_input), hidden, layers, self.dim,
                                    activation, zero_init), time_input)

    def dynamics(self) -> nn.Module:
        return self.field

    def hyperparameters(self) -> dict:
        return {"bidirectional": self.bidirectional, "hidden": self.hidden,
                "layers": self.layers, "activation": self.activation,
                "time_input": self.time_input, "method": self.method,
                "substeps": self.substeps, "adjoint": self.adjoint, "rtol": self.rtol,
                "atol": self.atol, "zero_init": self.zero_init}


class _HamiltonianField(nn.Module):
    """(dq/ds, dp/ds) = (∂H/∂p, -∂H/∂q) of a scalar network H(q, p) on x = (q, p)."""

    def __init__(self, energy: nn.Module, half: int):
        super().__init__()
        self.energy, self.half = energy, half

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # a graph through the derivative only when the caller records one (training, adjoint)
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy(x).sum(), x, create_graph=create_graph)
        return torch.cat([grad[:, self.half:], -grad[:, :self.half]], dim=-1)


class HamiltonianNet(_Integrator):
    """Hamiltonian NN integrator: learned scalar H_θ(q, p), Hamilton's equations, RK4.

    q is the first 3N entries of the normalised state (positions), p the last 3N (the normalised
    velocities stand in for momenta: masses and the per-coordinate scales are folded into the
    normalisation, as in the paper, which rescales momenta to unit variance; the dynamics is
    exactly canonical in these variables only if that scaling is, so H_θ is an effective energy
    of the normalised variables). H_θ uses smooth activations: it is differentiated once in the
    forward pass and once more by backpropagation. The derivatives come from
    ``torch.autograd.grad`` with grad enabled locally, so the model also runs under
    ``torch.no_grad()`` (its output is then detached).

    Solver: RK4 on the fine grid by default. A learned H(q, p) is in general not separable
    (H ≠ T(p) + V(q)), so leapfrog would be implicit; explicit RK4 is not symplectic but
    conserves H to O(h⁴) per unit time, which ``substeps`` tightens.
    """

    def __init__(self, n_atoms: int, stride: int, context: int, bidirectional: bool = True,
                 hidden: int = 128, layers: int = 3, activation: str = "tanh",
                 method: str = "rk4", substeps: int = 1, adjoint: bool = False,
                 rtol: float = 1e-4, atol: float = 1e-5, zero_init: bool = True):
        super().__init__(n_atoms, stride, context, bidirectional, method, substeps, adjoint,
                         rtol, atol)
        self.hidden, self.layers, self.activation = hidden, layers, activation
        self.zero_init = zero_init
        self.kind = _bi_name("hnn", bidirectional)
        # no output bias: a constant offset of H changes no derivative and would get no gradient
        self.energy = _mlp(self.dim, hidden, layers, 1, activation, zero_init, out_bias=False)
        self.field = _HamiltonianField(self.energy, 3 * n_atoms)

    def dynamics(self) -> nn.Module:
        return self.field

    def hamiltonian(self, x: torch.Tensor) -> torch.Tensor:
        """H_θ of states (..., D) -> (...)."""
        return self.energy(x).squeeze(-1)

    def forward(self, ctx_x: torch.Tensor, ctx_a: torch.Tensor, base_x: torch.Tensor,
                s: torch.Tensor) -> torch.Tensor:
        out = super().forward(ctx_x, ctx_a, base_x, s)
        return out if torch.is_grad_enabled() else out.detach()

    def hyperparameters(self) -> dict:
        return {"bidirectional": self.bidirectional, "hidden": self.hidden,
                "layers": self.layers, "activation": self.activation, "method": self.method,
                "substeps": self.substeps, "adjoint": self.adjoint, "rtol": self.rtol,
                "atol": self.atol, "zero_init": self.zero_init}


def _constructor(name: str, cls: type[InterpolatorNet], bidirectional: bool,
                 **fixed) -> Callable[..., InterpolatorNet]:
    """A registry entry: ``f(n_atoms, stride, context, **hyper)`` with the direction fixed."""

    def build(n_atoms: int, stride: int, context: int, **hyper) -> InterpolatorNet:
        if hyper.pop("bidirectional", bidirectional) != bidirectional:
            raise ValueError(f"bidirectional={not bidirectional} contradicts model kind {name!r}")
        return cls(n_atoms, stride, context, bidirectional=bidirectional, **fixed, **hyper)

    build.network_class, build.fixed_arguments = cls, set(fixed)  # for hyper-parameter checks
    return build


def _entries(base: str, cls: type[InterpolatorNet], **fixed) -> dict:
    return {_bi_name(base, bi): _constructor(_bi_name(base, bi), cls, bi, **fixed)
            for bi in (False, True)}


#: the paper's eight integrators by kind name; each entry is f(n_atoms, stride, context, **hyper)
PAPER_MODELS: dict[str, Callable[..., InterpolatorNet]] = {
    **_entries("rnn", RecurrentNet, kind="rnn"),
    **_entries("lstm", RecurrentNet, kind="lstm"),
    **_entries("node", NeuralODENet),
    **_entries("hnn", HamiltonianNet),
}
