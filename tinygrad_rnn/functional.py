"""Composite functions: softmax family, losses, one-hot and embedding lookup.

All are built from the primitives in [`tinygrad_rnn.ops`][tinygrad_rnn.ops]; stability comes
from the ``logsumexp`` and ``sigmoid`` primitives, which never overflow, so
logits of ±1e4 give finite losses and exact gradients.
"""

from __future__ import annotations

import operator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_rnn import ops
from tinygrad_rnn.autograd import _TRACE
from tinygrad_rnn.ops import logsumexp
from tinygrad_rnn.tensor import Tensor

Reduction = Literal["mean", "sum", "none"]

__all__ = [
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "embedding",
    "log_softmax",
    "logsumexp",
    "mse_loss",
    "one_hot",
    "softmax",
]


def _as_tensor(x: Any, name: str, where: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, list, float, int)):
        return Tensor(x)
    raise TypeError(f"{where}: {name} must be a Tensor or array, got {type(x).__name__}")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis``; same shape as ``x``, rows sum to 1."""
    x = _as_tensor(x, "x", "softmax")
    return ops.exp(x - logsumexp(x, axis=axis, keepdims=True))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``x - logsumexp(x)`` along ``axis``: log-probabilities, finite for any finite logits."""
    x = _as_tensor(x, "x", "log_softmax")
    return x - logsumexp(x, axis=axis, keepdims=True)


def _reduce(loss: Tensor, reduction: str, mask: Any, where: str) -> Tensor:
    """Apply an optional mask (weights) then the reduction.

    The mask has the per-element loss's shape, or a leading part of it: a per-step
    ``(T, B)`` mask weighs every output of a ``(T, B, K)`` loss at that step. With
    ``'mean'`` the weighted sum is divided by the total weight of the stretched mask.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{where}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if mask is not None:
        m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if m.dtype.kind not in "biuf":
            raise TypeError(f"{where}: mask must be numbers or booleans, got dtype {m.dtype}")
        if m.shape != loss.shape[: m.ndim]:
            raise ValueError(
                f"{where}: mask has shape {m.shape} but the per-element loss has shape "
                f"{loss.shape}; the mask must match it or a leading part of it"
            )
        m = np.broadcast_to(m.reshape(m.shape + (1,) * (loss.ndim - m.ndim)), loss.shape)
        loss = loss * m.astype(loss.dtype)
        if reduction == "mean":
            total = float(m.sum())
            if total <= 0:
                raise ValueError(f"{where}: mask selects no element, so the mean is undefined")
            return loss.sum() / total
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if loss.size == 0:
        raise ValueError(f"{where}: the mean of an empty loss is undefined")
    return loss.mean()


def _indices(indices: Any) -> np.ndarray:
    """Integer indices as an array; an empty list (a float array to numpy) selects nothing."""
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.size == 0 and idx.dtype.kind == "f" and not isinstance(indices, (Tensor, np.ndarray)):
        return idx.astype(np.intp)
    return idx


def one_hot(indices: Any, num_classes: int, dtype: npt.DTypeLike = np.float64) -> Tensor:
    """Indices of shape ``S`` -> a ``(*S, num_classes)`` tensor of 0/1 (no grad)."""
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"one_hot: num_classes must be an int, got {type(num_classes).__name__}")
    if num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be >= 0, got {num_classes}")
    idx = _indices(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise IndexError(
            f"one_hot: indices must lie in [0, {num_classes}), got values in "
            f"[{idx.min()}, {idx.max()}]"
        )
    out = np.zeros((*idx.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, idx[..., None], 1, axis=-1)
    return Tensor._make(out)


def cross_entropy(
    logits: Tensor,
    targets: Any,
    axis: int = -1,
    reduction: Reduction = "mean",
    mask: Any = None,
) -> Tensor:
    """Softmax cross-entropy ``-log softmax(logits)[target]``.

    Args:
        logits: unnormalised scores with the classes on ``axis``, e.g. ``(N, C)``
            or ``(T, B, C)``.
        targets: integer class indices (array or integer Tensor) with the shape
            of ``logits`` without ``axis``.
        axis: the class axis.
        reduction: ``'mean'`` (over elements, or over the mask's weight),
            ``'sum'`` or ``'none'`` (per-element losses).
        mask: optional weights of the targets' shape (0 drops a step).

    The gradient with respect to the logits is ``softmax(logits) - onehot``.
    """
    logits = _as_tensor(logits, "logits", "cross_entropy")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"cross_entropy: axis must be an int, got {type(axis).__name__}") from None
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integers, got dtype {t.dtype}")
    if logits.ndim == 0:
        raise ValueError("cross_entropy: logits need a class axis, got a 0-d tensor")
    if not -logits.ndim <= axis < logits.ndim:
        raise ValueError(
            f"cross_entropy: axis {axis} is out of range for logits of shape {logits.shape}"
        )
    ax = axis % logits.ndim
    expected = logits.shape[:ax] + logits.shape[ax + 1 :]
    if t.shape != expected:
        raise ValueError(
            f"cross_entropy: targets have shape {t.shape} but logits {logits.shape} "
            f"with classes on axis {axis} need targets of shape {expected}"
        )
    # (The op checks that the targets lie in [0, classes) itself.)
    # A copy of the targets: the op keeps them for backward, and the caller may reuse theirs.
    # While jit traces, the caller's own array is passed, so that a replay reads each call's.
    tracing = _TRACE[0] is not None and t.dtype == np.intp
    kept = t if tracing else np.array(t, dtype=np.intp)
    loss = ops.softmax_cross_entropy(logits, targets=kept, axis=ax)
    return _reduce(loss, reduction, mask, "cross_entropy")


def binary_cross_entropy_with_logits(
    logits: Tensor, targets: Any, reduction: Reduction = "mean", mask: Any = None
) -> Tensor:
    """``-[y log σ(x) + (1-y) log(1-σ(x))]`` from logits, stable for any x.

    Uses ``softplus(x) - x*y`` with a softplus that never overflows; its gradient
    is ``σ(x) - y`` everywhere (no kink at 0). ``targets`` has the logits' shape,
    values in [0, 1].
    """
    logits = _as_tensor(logits, "logits", "binary_cross_entropy_with_logits")
    if isinstance(targets, Tensor):
        y: Any = targets
    else:
        y = np.asarray(targets)
        if y.dtype.kind not in "biuf":
            raise TypeError(
                "binary_cross_entropy_with_logits: targets must be numbers in [0, 1], "
                f"got dtype {y.dtype}"
            )
        y = y.astype(logits.dtype, copy=False)
    if y.shape != logits.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: targets have shape {y.shape}, "
            f"logits have shape {logits.shape}"
        )
    loss = ops.softplus(logits) - logits * y
    return _reduce(loss, reduction, mask, "binary_cross_entropy_with_logits")


def mse_loss(pred: Tensor, target: Any, reduction: Reduction = "mean", mask: Any = None) -> Tensor:
    """Squared error ``(pred - target)**2`` per element, then reduced; shapes must match."""
    pred = _as_tensor(pred, "pred", "mse_loss")
    tshape = target.shape if isinstance(target, Tensor) else np.shape(target)
    if tshape != pred.shape:
        raise ValueError(f"mse_loss: target has shape {tshape}, pred has shape {pred.shape}")
    diff = pred - target
    return _reduce(diff * diff, reduction, mask, "mse_loss")


def embedding(indices: Any, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (V, E) picked by integer ``indices`` of shape S -> (*S, E).

    The backward adds up the gradient of rows picked more than once.
    """
    if not isinstance(weight, Tensor):
        raise TypeError(f"embedding: weight must be a Tensor, got {type(weight).__name__}")
    idx = _indices(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (V, E), got shape {weight.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= weight.shape[0]):
        raise IndexError(
            f"embedding: indices must lie in [0, {weight.shape[0]}), got values in "
            f"[{idx.min()}, {idx.max()}]"
        )
    return ops.getitem(weight, idx)
