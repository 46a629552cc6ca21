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
    try:
        eps = float(eps)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"gradcheck: eps must be a positive number, got {eps!r:.40}") from None
    if not eps > 0 or not np.isfinite(eps):
        raise ValueError(f"gradcheck: eps must be a positive number, got {eps!r}")
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
        err = np.abs(a_arr - numeric) - (atol + rtol * np.abs(numeric))
        err = np.where(np.isnan(err), np.inf, err)  # a NaN anywhere is a failure, not a pass
        if err.size and np.max(err) > 0:
            worst = np.unravel_index(
                int(np.argmax(np.where(np.isfinite(err), err, np.inf))), err.shape
            )
            msg = (
                f"gradcheck: input {k} (shape {x.shape}) disagrees at index "
                f"{tuple(map(int, worst))}: "
                f"analytic {a_arr[worst]:.6g}, numeric {numeric[worst]:.6g}, "
                f"|diff| {abs(a_arr[worst] - numeric[worst]):.3g} > atol + rtol*|numeric| = "
                f"{atol + rtol * abs(numeric[worst]):.3g}"
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
