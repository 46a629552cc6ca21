"""Gradient checking for users: analytic gradients against central differences.

The function's outputs are reduced to one number with fixed random weights
(``L = Σ v ⊙ f(x)``), which tests the whole vector-Jacobian product with one
backward pass and two evaluations per input element.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn.engine import grad
from tinygrad_rnn.tensor import Tensor

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(AssertionError):
    """Raised when analytic and numerical gradients disagree."""


def _outputs(result: Any, where: str) -> list[Tensor]:
    if isinstance(result, Tensor):
        outs = [result]
    elif isinstance(result, Iterable) and not isinstance(result, (str, bytes)):
        outs = list(result)
    else:
        raise TypeError(
            f"{where}: fn must return a Tensor or a sequence of Tensors, "
            f"got {type(result).__name__}"
        )
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"{where}: fn must return Tensors, output {k} is {type(o).__name__}")
    return outs


def _inputs(inputs: Any, where: str) -> list[Any]:
    if isinstance(inputs, Tensor):
        return [inputs]
    if not isinstance(inputs, Iterable) or isinstance(inputs, (str, bytes)):
        raise TypeError(
            f"{where}: inputs must be a sequence of Tensors, got {type(inputs).__name__}"
        )
    return list(inputs)


def _weighted_sum(outs: list[Tensor], weights: list[np.ndarray]) -> Tensor:
    total: Any = 0.0
    for o, w in zip(outs, weights):
        total = total + (o * w).sum()
    return total if isinstance(total, Tensor) else Tensor(total)


def _check_eps(eps: Any, where: str) -> float:
    """The finite-difference step as a positive finite float."""
    try:
        value = float(eps)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: eps must be a positive number, got {eps!r:.40}") from None
    if not value > 0 or not np.isfinite(value):
        raise ValueError(f"{where}: eps must be a positive number, got {eps!r}")
    return value


def _central_differences(objective: Callable[[], float], x: Tensor, eps: float) -> np.ndarray:
    """``(f(x + eps e_i) - f(x - eps e_i)) / 2 eps`` for every entry ``i`` of ``x`` (float64).

    ``x.data`` is replaced by perturbed copies while ``objective`` runs, and the caller's
    array is put back exactly afterwards (even if ``objective`` raises).
    """
    original = x.data
    numeric = np.zeros(x.shape)
    try:
        for idx in np.ndindex(*x.shape):
            plus = original.copy()
            plus[idx] += eps
            x.data = plus
            f_plus = objective()
            minus = original.copy()
            minus[idx] -= eps
            x.data = minus
            numeric[idx] = (f_plus - objective()) / (2 * eps)
    finally:
        x.data = original  # the caller's tensor is left exactly as it was
    return numeric


def _excess(analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """``|analytic - numeric| - (atol + rtol |numeric|)``: positive where an entry fails.

    A NaN anywhere is a failure, not a pass: its excess is infinite.
    """
    err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    return np.where(np.isnan(err), np.inf, err)


def _worst_mismatch(
    analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float
) -> tuple[tuple[int, ...], float] | None:
    """The index of the entry that fails by most and its excess, or None if all pass."""
    err = _excess(analytic, numeric, atol, rtol)
    if not err.size or np.max(err) <= 0:
        return None
    flat = int(np.argmax(np.where(np.isfinite(err), err, np.inf)))
    worst = tuple(int(i) for i in np.unravel_index(flat, err.shape))
    return worst, float(err[worst])


def _describe_mismatch(
    analytic: np.ndarray, numeric: np.ndarray, idx: tuple[int, ...], atol: float, rtol: float
) -> str:
    a, n = analytic[idx], numeric[idx]
    return (
        f"analytic {a:.6g}, numeric {n:.6g}, |diff| {abs(a - n):.3g} > atol + rtol*|numeric| = "
        f"{atol + rtol * abs(n):.3g}"
    )


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check ``fn``'s gradients with central finite differences in float64.

    Args:
        fn: a function of the ``inputs`` returning a Tensor or a tuple of Tensors.
        inputs: Tensors; those with ``requires_grad=True`` are checked and must
            be float64.
        eps: the finite-difference step.
        atol, rtol: an entry passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        seed: seeds the random output weights.
        raise_exception: raise [`GradcheckError`][tinygrad_rnn.GradcheckError] on failure (else
            return False).

    Returns:
        True when every entry of every checked input passes.
    """
    eps = _check_eps(eps, "gradcheck")
    inputs = _inputs(inputs, "gradcheck")
    checked = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, nothing to check")
    for k in checked:
        if inputs[k].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {k} has dtype {inputs[k].dtype}; finite differences need "
                "float64 (make it with dtype=np.float64)"
            )
    outs = _outputs(fn(*inputs), "gradcheck")
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(o.shape) for o in outs]
    loss = _weighted_sum(outs, weights)
    if loss.requires_grad:
        analytic = grad(loss, [inputs[k] for k in checked], allow_unused=True)
    else:
        analytic = tuple(None for _ in checked)

    def objective() -> float:
        # Recording stays on: fn may itself take derivatives (gradgradcheck does).
        return float(_weighted_sum(_outputs(fn(*inputs), "gradcheck"), weights).item())

    for k, a in zip(checked, analytic):
        x = inputs[k]
        a_arr = np.zeros(x.shape) if a is None else np.asarray(a.data, dtype=np.float64)
        numeric = _central_differences(objective, x, eps)
        worst = _worst_mismatch(a_arr, numeric, atol, rtol)
        if worst is not None:
            msg = (
                f"gradcheck: input {k} (shape {x.shape}) disagrees at index {worst[0]}: "
                + _describe_mismatch(a_arr, numeric, worst[0], atol, rtol)
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check second derivatives: [`gradcheck`][tinygrad_rnn.gradcheck.gradcheck] applied to ``fn``'s
    gradient.

    The first derivative is taken with ``create_graph=True`` against random
    output weights, giving a function ``x -> (v · f(x))'`` whose own gradient
    (a Hessian-vector product) is then compared with finite differences.
    """
    inputs = _inputs(inputs, "gradgradcheck")
    checked = [k for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    rng = np.random.default_rng(seed + 1)
    weights: list[np.ndarray] = []

    def first_derivative(*xs: Tensor) -> tuple[Tensor, ...]:
        outs = _outputs(fn(*xs), "gradgradcheck")
        if not weights:
            weights.extend(rng.standard_normal(o.shape) for o in outs)
        loss = _weighted_sum(outs, weights)
        wrt = [xs[k] for k in checked]
        if not loss.requires_grad:
            return tuple(Tensor(np.zeros(x.shape)) for x in wrt)
        grads = grad(loss, wrt, create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor(np.zeros(x.shape)) for g, x in zip(grads, wrt))

    return gradcheck(
        first_derivative,
        inputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        seed=seed + 2,
        raise_exception=raise_exception,
    )
