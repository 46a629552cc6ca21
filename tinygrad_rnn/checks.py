"""The main job's checks: autograd gradients against the documents' closed-form BPTT and
against finite differences, for every variant derived in ``docs/bptt.md``.

``run_checks(seed)`` draws random sizes and parameters (float64), builds each network from
[`tinygrad_rnn.nn`][tinygrad_rnn.nn], and reports the worst relative error of autograd against the
closed form of [`tinygrad_rnn.reference`][tinygrad_rnn.reference] (where the documents give one) and
against central finite differences (always), for the eager backward and for the same step
compiled by [`jit`][tinygrad_rnn.jit.jit] (its gradients from a replay, not from the trace).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tinygrad_rnn import functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.jit import jit
from tinygrad_rnn.ops import stack
from tinygrad_rnn.reference import (
    init_lstm_params,
    init_rnn_params,
    lstm_bptt,
    lstm_hidden_mse_bptt,
    rnn_bptt,
)
from tinygrad_rnn.tensor import Tensor

__all__ = ["CLOSED_FORM_TOL", "FINITE_DIFF_TOL", "CheckResult", "run_checks"]

CLOSED_FORM_TOL = 1e-10
FINITE_DIFF_TOL = 1e-6
_EPS = 1e-5  # central-difference step: truncation ~eps², rounding ~1e-16/eps


@dataclass
class CheckResult:
    """One row of the ``check`` table."""

    variant: str
    source: str
    sizes: str
    n_params: int
    closed_form_error: float | None
    finite_diff_error: float
    passed: bool
    jit_error: float = 0.0  # the jitted step's gradients against the same oracle

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form of the row."""
        return asdict(self)


def _rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = float(np.max(np.abs(expected), initial=0.0))
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    return err / scale if scale > 1e-12 else err


def _worst(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> float:
    """Worst relative error over the parameters in ``actual`` (the reference also has states)."""
    return max(_rel_error(actual[k], expected[k]) for k in actual)


def _numeric_grads(loss_fn: Callable[[], Tensor], module: nn.Module) -> list[np.ndarray]:
    """Central differences of the loss for every parameter entry (float64)."""
    out = []
    for p in module.parameters():
        original = p.data
        numeric = np.empty(p.shape)
        for idx in np.ndindex(*p.shape):
            plus, minus = original.copy(), original.copy()
            plus[idx] += _EPS
            minus[idx] -= _EPS
            p.data = plus
            f_plus = loss_fn().item()
            p.data = minus
            numeric[idx] = (f_plus - loss_fn().item()) / (2 * _EPS)
        p.data = original
        out.append(numeric)
    return out


def _fd_error(module: nn.Module, numeric: list[np.ndarray]) -> float:
    """Worst relative error of the parameters' ``.grad`` against ``numeric``."""
    worst = 0.0
    for p, n in zip(module.parameters(), numeric):
        assert p.grad is not None
        worst = max(worst, _rel_error(p.grad.data, n))
    return worst


def _runners(loss_fn: Callable[[], Tensor], module: nn.Module) -> dict[str, Callable[[], None]]:
    """Fill every parameter's ``.grad``: eagerly, and by a replay of the jitted step."""

    def eager() -> None:
        module.zero_grad()
        loss_fn().backward()

    def step() -> Tensor:
        loss = loss_fn()
        loss.backward()
        return loss

    compiled = jit(step)

    def jitted() -> None:
        module.zero_grad()
        compiled()  # the trace (its gradients come from the trace's run of the rules)
        module.zero_grad()
        compiled()  # a replay: the program alone

    return {"eager": eager, "jit": jitted}


class _Model(nn.Module):
    """A recurrent part and an optional head as one module, so its parameters are one list."""

    def __init__(self, rnn: nn.Module, head: nn.Module | None) -> None:
        super().__init__()
        self.rnn = rnn
        if head is not None:
            self.head = head


def _rnn_variant(rng: np.random.Generator, output: str, last_only: bool) -> tuple[Any, ...]:
    # K >= 2: with one class, softmax cross-entropy is 0 whatever the weights, and a check of
    # its (zero) gradients would pass whatever the engine computed.
    B, D, H, K, T = (
        int(rng.integers(lo, n)) for lo, n in ((1, 4), (1, 6), (1, 8), (2, 6), (1, 10))
    )
    params = init_rnn_params(D, H, K, rng, scale=0.9 / np.sqrt(H), random_biases=True)
    xs, s0 = rng.standard_normal((T, B, D)), rng.standard_normal((B, H))
    if output == "softmax":
        targets: Any = rng.integers(0, K, (T, B))
    elif output == "linear":
        targets = rng.standard_normal((T, B, K))
    else:
        targets = rng.uniform(0, 1, (T, B, K))
    mask = np.ones((T, B))
    if last_only:
        mask[:-1] = 0
    cell, head = nn.rnn_from_document(params, dtype=np.float64)
    model = _Model(cell, head)
    elem_mask = np.broadcast_to(mask[..., None], (T, B, K))

    def loss_fn() -> Tensor:
        logits = head(stack(nn.unroll(cell, xs, Tensor(s0))))
        if output == "softmax":
            return F.cross_entropy(logits, targets, reduction="sum", mask=mask)
        if output == "linear":
            return F.mse_loss(logits, targets, reduction="sum", mask=elem_mask) * 0.5
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum", mask=elem_mask)

    def closed_form(run: Callable[[], None]) -> float:
        run()
        ref = rnn_bptt(xs, targets, s0, **params, output=output, mask=mask)
        return _worst(nn.rnn_grads_to_document(cell, head), ref.grads)

    return model, loss_fn, closed_form, f"B={B} D={D} H={H} K={K} T={T}"


def _lstm_variant(rng: np.random.Generator, hidden_mse: bool) -> tuple[Any, ...]:
    # K >= 2: with one class, softmax cross-entropy is 0 whatever the weights, and a check of
    # its (zero) gradients would pass whatever the engine computed.
    B, D, H, K, T = (
        int(rng.integers(lo, n)) for lo, n in ((1, 4), (1, 6), (1, 8), (2, 6), (1, 10))
    )
    params = init_lstm_params(D, H, K, rng, random_biases=True)
    xs = rng.standard_normal((T, B, D))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    cell, head = nn.lstm_from_document(params, dtype=np.float64)
    targets: Any = rng.standard_normal((T, B, H)) if hidden_mse else rng.integers(0, K, (T, B))
    model = _Model(cell, None if hidden_mse else head)

    def loss_fn() -> Tensor:
        hs = stack([h for h, _ in nn.unroll(cell, xs, (Tensor(h0), Tensor(c0)))])
        if hidden_mse:
            return F.mse_loss(hs, targets, reduction="sum")
        return F.cross_entropy(head(hs), targets, reduction="sum")

    def closed_form(run: Callable[[], None]) -> float:
        head.zero_grad()
        run()
        if hidden_mse:
            doc = {k: v for k, v in params.items() if k not in ("W_y", "b_y")}
            ref = lstm_hidden_mse_bptt(xs, targets, h0, c0, **doc)
            for p in head.parameters():  # §5 has no output layer: its slots read as zeros
                p.grad = Tensor(np.zeros(p.shape))
            ours = nn.lstm_grads_to_document(cell, head)
            return _worst({k: ours[k] for k in doc}, ref.grads)
        ref = lstm_bptt(xs, targets, h0, c0, **params)
        return _worst(nn.lstm_grads_to_document(cell, head), ref.grads)

    return model, loss_fn, closed_form, f"B={B} D={D} H={H} K={K} T={T}"


def _layer_variant(
    rng: np.random.Generator, kind: str, num_layers: int, bidirectional: bool
) -> tuple[Any, ...]:
    B, D, H, T = (int(rng.integers(1, n)) for n in (3, 4, 4, 6))
    layer_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    layer = layer_cls(
        D, H, num_layers=num_layers, bidirectional=bidirectional, dtype=np.float64, rng=rng
    )
    xs = rng.standard_normal((T, B, D))
    weights = rng.standard_normal((T, B, H * (2 if bidirectional else 1)))

    def loss_fn() -> Tensor:
        out, _ = layer(xs)
        return (out * weights).sum()

    return layer, loss_fn, None, f"B={B} D={D} H={H} T={T} layers={num_layers}"


_VARIANTS: list[tuple[str, str, Callable[[np.random.Generator], tuple[Any, ...]]]] = [
    (
        "rnn softmax + cross-entropy",
        "§1 seeds 000/002",
        lambda r: _rnn_variant(r, "softmax", False),
    ),
    ("rnn linear + quadratic", "§2 seed 003", lambda r: _rnn_variant(r, "linear", False)),
    ("rnn sigmoid + binary CE", "§2 seed 003", lambda r: _rnn_variant(r, "sigmoid", False)),
    ("rnn many-to-one (masked)", "§3 seed 001", lambda r: _rnn_variant(r, "softmax", True)),
    ("lstm softmax + cross-entropy", "§4 seed 004", lambda r: _lstm_variant(r, False)),
    ("lstm squared error on h", "§5 seed 001", lambda r: _lstm_variant(r, True)),
    ("gru layer", "finite diff.", lambda r: _layer_variant(r, "gru", 1, False)),
    ("rnn 2 layers, bidirectional", "finite diff.", lambda r: _layer_variant(r, "rnn", 2, True)),
    ("lstm 2 layers", "finite diff.", lambda r: _layer_variant(r, "lstm", 2, False)),
]


def run_checks(seed: int = 0) -> list[CheckResult]:
    """Check every variant with sizes and parameters drawn from ``seed`` (float64).

    Returns:
        One `CheckResult` per variant; ``passed`` is true when, for the eager backward and
        for a replay of the jitted step alike, the closed-form error is at most
        ``CLOSED_FORM_TOL`` and the finite-difference error at most ``FINITE_DIFF_TOL``.
        ``jit_error`` is the jitted step's error against the closed form (finite
        differences where the documents give none).
    """
    results = []
    for k, (name, source, build) in enumerate(_VARIANTS):
        rng = np.random.default_rng([seed, k])
        model, loss_fn, closed_form, sizes = build(rng)
        runs = _runners(loss_fn, model)
        numeric = _numeric_grads(loss_fn, model)
        errors = {}
        for mode, run in runs.items():
            closed = closed_form(run) if closed_form is not None else None
            run()
            errors[mode] = (closed, _fd_error(model, numeric))
        closed, fd = errors["eager"]
        jit_closed, jit_fd = errors["jit"]
        # The jitted step answers to the same oracle: the closed form where there is one.
        jit_error = jit_closed if jit_closed is not None else jit_fd
        jit_tol = CLOSED_FORM_TOL if jit_closed is not None else FINITE_DIFF_TOL
        passed = (
            fd <= FINITE_DIFF_TOL
            and (closed is None or closed <= CLOSED_FORM_TOL)
            and jit_fd <= FINITE_DIFF_TOL
            and jit_error <= jit_tol
        )
        n_params = sum(p.size for p in model.parameters())
        results.append(CheckResult(name, source, sizes, n_params, closed, fd, passed, jit_error))
    return results
