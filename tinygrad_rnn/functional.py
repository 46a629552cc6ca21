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


def _check_ignore_index(ignore_index: Any, where: str) -> int:
    """``ignore_index`` as a Python int (bools and floats are refused, as by PyTorch)."""
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(
        ignore_index, (int, np.integer)
    ):
        raise TypeError(
            f"{where}: ignore_index must be an int, got {type(ignore_index).__name__} "
            f"{ignore_index!r:.40}"
        )
    value = int(ignore_index)
    if not _INT64.min <= value <= _INT64.max:
        raise ValueError(f"{where}: ignore_index={value} does not fit in int64")
    return value


def _check_label_smoothing(label_smoothing: Any, where: str) -> float:
    """``label_smoothing`` as a float in [0, 1]."""
    if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(
        label_smoothing, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            f"{where}: label_smoothing must be a number in [0, 1], got "
            f"{type(label_smoothing).__name__} {label_smoothing!r:.40}"
        )
    value = float(label_smoothing)
    if not 0.0 <= value <= 1.0:  # (NaN fails this too)
        raise ValueError(f"{where}: label_smoothing must lie in [0, 1], got {value!r}")
    return value


_INT64 = np.iinfo(np.int64)


def _loss_weights(mask: Any, shape: tuple[int, ...], dtype: np.dtype[Any], where: str) -> Any:
    """A mask of ``shape`` or a leading part of it, in ``dtype``, shaped to broadcast.

    Converted with the engine's ops, so that under [`jit`][tinygrad_rnn.jit.jit] a replay reads
    each call's mask; the mask itself is never differentiated.
    """
    m = mask if isinstance(mask, (Tensor, np.ndarray)) else np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{where}: mask must be numbers or booleans, got dtype {m.dtype}")
    if m.shape != shape[: m.ndim]:
        raise ValueError(
            f"{where}: mask has shape {m.shape} but the per-element loss has shape "
            f"{shape}; the mask must match it or a leading part of it"
        )
    if isinstance(m, Tensor) and m.requires_grad:
        m = m.detach()
    w = ops.astype(m, dtype)  # a copy: the caller's mask is never changed or kept
    if m.ndim < len(shape):
        w = ops.reshape(w, m.shape + (1,) * (len(shape) - m.ndim))
    return w


def cross_entropy(
    logits: Tensor,
    targets: Any,
    axis: int = -1,
    reduction: Reduction = "mean",
    mask: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy ``-log softmax(logits)[target]``, with PyTorch's options.

    The loss of one element with target class ``y`` among ``C`` classes, ``p = softmax``::

        (1 - label_smoothing) * (-log p[y]) + label_smoothing * mean_c(-log p[c])

    (the second term is the cross-entropy with the uniform distribution, PyTorch's label
    smoothing). Elements whose target equals ``ignore_index`` count for nothing: their loss
    and gradient are 0, and ``'mean'`` divides by the number of the other elements, as in
    PyTorch. ``mask`` weighs the elements as well: ``'mean'`` is then
    ``Σ w·loss / Σ w`` with ``w = mask · (target != ignore_index)``.

    Unlike PyTorch, whose classes are on axis 1, the classes are on the **last** axis by
    default (``axis=-1``): time-first sequences ``(T, B, C)`` keep their classes last. Pass
    ``axis=1`` for PyTorch's layout ``(N, C, d1, ...)``. Targets are class indices only
    (PyTorch's class-probability targets and ``weight`` are not supported).

    Args:
        logits: unnormalised scores with the classes on ``axis``, e.g. ``(N, C)``
            or ``(T, B, C)``.
        targets: integer class indices (array or integer Tensor) with the shape
            of ``logits`` without ``axis``; each in ``[0, C)`` or equal to ``ignore_index``.
        axis: the class axis.
        reduction: ``'mean'`` (over the counted elements), ``'sum'`` or ``'none'``
            (per-element losses, 0 where ignored).
        mask: optional weights of the targets' shape or a leading part of it (0 drops
            an element; a per-step ``(T, B)`` mask picks the steps that carry a loss).
        ignore_index: a target value that contributes neither loss nor gradient
            (default -100, as in PyTorch; e.g. the padding class).
        label_smoothing: ``ε`` in [0, 1], the weight of the uniform distribution mixed
            into the one-hot target.

    Returns:
        The reduced loss (0-d), or the per-element losses of the targets' shape with
        ``reduction='none'``, in the logits' dtype. A ``'mean'`` over elements that are
        all ignored is NaN with a zero gradient, as in PyTorch (numpy warns of 0/0).

    Raises:
        TypeError: non-integer targets, an ``ignore_index`` that is not an int, a
            ``label_smoothing`` that is not a number, a mask that is not numeric.
        ValueError: a bad ``axis``, ``reduction`` or shape, ``label_smoothing`` outside
            [0, 1]; with ``'mean'``, no targets at all or a mask that selects nothing.
        IndexError: a target outside ``[0, C)`` that is not ``ignore_index``.

    The gradient with respect to the logits is
    ``w · (softmax(logits) - (1 - ε) onehot - ε / C)`` times the reduction's factor.
    """
    where = "cross_entropy"
    logits = _as_tensor(logits, "logits", where)
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"cross_entropy: axis must be an int, got {type(axis).__name__}") from None
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{where}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    ignore_index = _check_ignore_index(ignore_index, where)
    label_smoothing = _check_label_smoothing(label_smoothing, where)
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
    if reduction == "mean" and t.size == 0:
        raise ValueError(f"{where}: the mean of an empty loss is undefined")
    weights = None if mask is None else _loss_weights(mask, t.shape, logits.dtype, where)
    if weights is not None and reduction == "mean":
        total = float(np.sum(weights.data if isinstance(weights, Tensor) else weights))
        if total <= 0:
            raise ValueError(f"{where}: mask selects no element, so the mean is undefined")

    # Everything derived from the targets below is computed with the engine's ops, not
    # numpy: while jit traces, ``targets`` is the caller's argument as a Tensor, so a replay
    # recomputes the ignore mask from each call's targets (a numpy result would be baked in).
    # (No copy of the caller's targets is kept: the op keeps ``classes``, a new array.)
    kept = targets if isinstance(targets, Tensor) else t
    if t.dtype != np.intp:  # e.g. uint8: the op indexes with intp targets
        kept = ops.astype(kept, np.intp)
    # Ignored targets give loss 0 and no gradient inside the op.
    try:
        loss = ops.softmax_cross_entropy(logits, kept, axis=ax, ignore_index=ignore_index)
    except IndexError:  # the op checks the range; name this function's arguments instead
        raise IndexError(_target_range_message(t, logits.shape[ax], ignore_index)) from None
    if weights is None and not label_smoothing:  # the common case: the op and a reduction
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        count = ops.sum(ops.astype(ops.not_equal(kept, ignore_index), logits.dtype))
        return _weighted_mean(loss.sum(), count)
    if label_smoothing:
        # -mean_c log softmax(x)_c = logsumexp(x) - mean_c x: no log of a small probability.
        uniform = logsumexp(logits, axis=ax) - ops.mean(logits, axis=ax)
        loss = loss * (1.0 - label_smoothing) + uniform * label_smoothing
    # The weight of each element: 0 where ignored (for the smoothing term too), times mask.
    w = ops.astype(ops.not_equal(kept, ignore_index), logits.dtype)
    if weights is not None:
        w = w * weights
    loss = loss * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return _weighted_mean(loss.sum(), ops.sum(w))


def _target_range_message(t: np.ndarray, n_classes: int, ignore_index: int) -> str:
    counted = t[t != ignore_index]
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if not bad.any():  # (the op saw other targets than these: not reached from cross_entropy)
        return f"cross_entropy: targets must lie in [0, {n_classes})"
    at = tuple(int(i) for i in np.argwhere(bad)[0])
    return (
        f"cross_entropy: targets must lie in [0, {n_classes}), got values in "
        f"[{counted.min()}, {counted.max()}] (ignore_index={ignore_index} aside): "
        f"{t[at]} at index {at}"
    )


def _weighted_mean(total: Tensor, weight: Any) -> Tensor:
    """``total / weight``; with ``weight == 0`` NaN with a zero gradient, as PyTorch gives.

    The sum of the counted losses is then 0 and every element's weight 0, so dividing
    by ``max(weight, tiny)`` passes a zero gradient; the added ``weight / weight - 1`` is 0
    for any positive weight and NaN (0/0) for none, and is never differentiated.
    """
    tiny = float(np.finfo(total.dtype).tiny)
    undefined = ops.div(weight, weight) - 1
    return total / ops.maximum(weight, tiny) + undefined


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
