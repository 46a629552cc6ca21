"""Gradient clipping: [`clip_grad_norm_`][tinygrad_rnn.optim.clip_grad_norm_] and
[`clip_grad_value_`][tinygrad_rnn.optim.clip_grad_value_], PyTorch's names and semantics.

Both replace ``p.grad`` with a *new* Tensor wrapping a new array; the old gradient array
(which the caller may still hold, or the engine may have given to several leaves at once) is
left as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from tinygrad_rnn.optim._validation import _real
from tinygrad_rnn.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(params: Tensor | Iterable[Tensor], where: str) -> list[tuple[Tensor, np.ndarray]]:
    """``(p, p.grad.data)`` for every distinct Tensor in ``params`` that has a grad."""
    items = [params] if isinstance(params, Tensor) else params
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(
            f"{where}: params must be a Tensor or an iterable of Tensors, "
            f"got {type(items).__name__}"
        )
    out: list[tuple[Tensor, np.ndarray]] = []
    seen: dict[int, int] = {}
    for k, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: params[{k}] is a {type(p).__name__}, expected a Tensor")
        first = seen.get(id(p))
        if first is not None:
            raise ValueError(
                f"{where}: params[{k}] is the same tensor as params[{first}]; "
                "its gradient would be counted twice"
            )
        seen[id(p)] = k
        grad = p.grad
        if grad is None:
            continue
        if not isinstance(grad, Tensor):
            raise TypeError(
                f"{where}: params[{k}].grad is a {type(grad).__name__}, expected a Tensor or None"
            )
        out.append((p, grad.data))
    return out


def _norm64(g: np.ndarray, norm_type: float) -> float:
    """The ``norm_type``-norm of all elements of ``g``, computed in float64."""
    if g.size == 0:
        return 0.0
    flat = g.ravel().astype(np.float64, copy=False)
    return float(np.linalg.norm(flat, ord=norm_type))


def clip_grad_norm_(
    params: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so that their global norm is at most ``max_norm``.

    ::

        total = ||concat(g.ravel() for every p with a grad)||_norm_type
        if total > max_norm:  p.grad = g * (max_norm / total)   for every such p

    The norm is computed in float64 (float32 gradients of size ~1e19 would
    overflow otherwise). Each clipped ``p.grad`` is a *new* Tensor; the old
    gradient array is not changed. Unlike PyTorch there is no ``1e-6`` in the
    denominator, so after clipping the norm is ``max_norm`` up to rounding.
    A non-finite total (inf/nan gradients) gives inf or nan; with an infinite
    total the gradients are multiplied by 0 (inf entries become nan), as in PyTorch.

    Args:
        params: a Tensor or an iterable of Tensors; those with ``grad is None``
            are ignored.
        max_norm: the largest allowed norm, >= 0.
        norm_type: p of the p-norm, > 0 (``float("inf")`` for the max-abs norm).
        error_if_nonfinite: raise RuntimeError instead if the total is inf or nan.

    Returns:
        The total norm *before* clipping, as a Python float (0.0 when no
        parameter has a gradient).
    """
    where = "clip_grad_norm_"
    max_norm_f = _real(where, "max_norm", max_norm)
    if not max_norm_f >= 0.0:
        raise ValueError(f"{where}: max_norm must be >= 0, got {max_norm!r}")
    p_norm = _real(where, "norm_type", norm_type)
    if not p_norm > 0.0:
        raise ValueError(f"{where}: norm_type must be > 0 (or inf), got {norm_type!r}")
    pairs = _grads(params, where)
    if not pairs:
        return 0.0
    norms = np.array([_norm64(g, p_norm) for _, g in pairs], dtype=np.float64)
    total = float(np.linalg.norm(norms, ord=p_norm))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"{where}: the total norm of order {p_norm} of the gradients is {total}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    if total > max_norm_f:
        scale = max_norm_f / total  # a Python float: keeps each gradient's dtype
        for p, g in pairs:
            p.grad = Tensor._make(g * scale)
    return total


def clip_grad_value_(params: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``.

    ::

        p.grad = clip(g, -clip_value, clip_value)   for every p with a grad

    (min-char-rnn does this with ``clip_value=5``.) Each ``p.grad`` becomes a
    *new* Tensor; the old gradient array is not changed. dtypes are kept.

    Args:
        params: a Tensor or an iterable of Tensors; those with ``grad is None``
            are ignored.
        clip_value: the bound, >= 0 (``inf`` leaves values unchanged).
    """
    where = "clip_grad_value_"
    c = _real(where, "clip_value", clip_value)
    if not c >= 0.0:
        raise ValueError(f"{where}: clip_value must be >= 0, got {clip_value!r}")
    for p, g in _grads(params, where):
        p.grad = Tensor._make(np.clip(g, -c, c))
