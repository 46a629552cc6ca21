"""Loss modules: thin wrappers of [`tinygrad_rnn.functional`][tinygrad_rnn.functional] with an
optional mask.

Every loss is called ``loss_fn(input, target, mask=None)``. ``mask`` holds
per-element weights (0 drops an element; 0/1 picks the steps that carry a loss,
spec §3). With ``reduction="mean"`` the result is ``Σ mask·loss / Σ mask``.

For sequences, a per-step ``(T, B)`` mask works directly with
[`CrossEntropyLoss`][tinygrad_rnn.nn.CrossEntropyLoss] on ``(T, B, K)`` logits (the per-element loss
is ``(T, B)``). [`MSELoss`][tinygrad_rnn.nn.MSELoss] and
[`BCEWithLogitsLoss`][tinygrad_rnn.nn.BCEWithLogitsLoss] have a loss per output component
``(T, B, K)``; a ``(T, B)`` mask is broadcast over the trailing axes, so ``"mean"`` averages over
the components of the selected steps.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from tinygrad_rnn import functional as F
from tinygrad_rnn.functional import Reduction, _check_ignore_index, _check_label_smoothing
from tinygrad_rnn.nn.module import Module, _check_torch_type
from tinygrad_rnn.tensor import Tensor

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, where: str) -> Reduction:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{where}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction  # type: ignore[return-value]


def _expand_mask(mask: Any, shape: tuple[int, ...], where: str) -> Any:
    """Broadcast a leading-axes mask, e.g. ``(T, B)``, over the trailing axes of ``shape``."""
    if mask is None:
        return None
    m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if m.shape == shape:
        return m
    if m.ndim < len(shape) and m.shape == shape[: m.ndim]:
        return np.broadcast_to(m.reshape(m.shape + (1,) * (len(shape) - m.ndim)), shape)
    raise ValueError(
        f"{where}: mask has shape {m.shape}; it must be the input's shape {shape} or a "
        f"leading part of it (e.g. per step {shape[:2]})"
    )


def _torch_reduction(torch_module: Any, cls: type, unsupported: dict[str, Any]) -> str:
    """The reduction of a torch loss, refusing options that would change the result."""
    _check_torch_type(torch_module, cls)
    for attr, default in unsupported.items():
        value = getattr(torch_module, attr, default)
        # Compare with `is` for None defaults: a tensor `weight` has no plain truth value.
        if (value is not None) if default is None else (value != default):
            raise ValueError(f"{cls.__name__}.from_torch: {attr}={value!r} is not supported")
    return str(torch_module.reduction)


class CrossEntropyLoss(Module):
    """Softmax cross-entropy ``−log softmax(input)[target]`` per element, then reduced.

    [`cross_entropy`][tinygrad_rnn.functional.cross_entropy] as a module, with PyTorch's
    ``ignore_index`` and ``label_smoothing``: targets equal to ``ignore_index`` count for
    nothing (``"mean"`` divides by the number of the others), and ``label_smoothing = ε``
    gives ``(1 − ε)·(−log p[target]) + ε·mean over classes of (−log p)``.

    Shapes: ``input`` logits with the classes on ``axis`` (``(N, K)``, or
    ``(T, B, K)`` for a sequence), ``target`` integer classes of the input's
    shape without ``axis`` (``(N,)``, ``(T, B)``), ``mask`` the target's shape (or a
    leading part of it). The gradient with respect to the logits is
    ``(softmax(input) − onehot(target))`` times the reduction's weight (with smoothing,
    ``onehot`` becomes ``(1 − ε)·onehot + ε/K``).

    Args:
        reduction: ``"mean"`` (over the counted elements, or over ``Σ mask``), ``"sum"``
            or ``"none"``.
        axis: the class axis (default last, unlike PyTorch's axis 1: time-first
            sequences keep their classes last; ``from_torch`` sets 1).
        ignore_index: a target value that carries no loss (default -100, as in PyTorch).
        label_smoothing: ``ε`` in [0, 1] (default 0).

    Raises:
        ValueError: an unknown ``reduction``, ``label_smoothing`` outside [0, 1].
        TypeError: ``axis`` or ``ignore_index`` not an int, ``label_smoothing`` not a number.
    """

    def __init__(
        self,
        reduction: str = "mean",
        axis: int = -1,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction, "CrossEntropyLoss")
        try:
            self.axis = operator.index(axis)
        except TypeError:
            raise TypeError(
                f"CrossEntropyLoss: axis must be an int, got {type(axis).__name__}"
            ) from None
        self.ignore_index = _check_ignore_index(ignore_index, "CrossEntropyLoss")
        self.label_smoothing = _check_label_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, input: Any, target: Any, mask: Any = None) -> Tensor:
        """``(logits, classes, mask=None) -> loss``."""
        return F.cross_entropy(
            input,
            target,
            axis=self.axis,
            reduction=self.reduction,
            mask=mask,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )

    def extra_repr(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)

    @classmethod
    def from_torch(cls, torch_module: Any) -> CrossEntropyLoss:
        """Copy a ``torch.nn.CrossEntropyLoss``: its reduction, ``ignore_index`` and
        ``label_smoothing``, with the classes on axis 1 as in torch.

        ``weight`` (per-class weights) is not supported (use ``mask`` for per-element ones).
        """
        reduction = _torch_reduction(torch_module, cls, {"weight": None})
        return cls(
            reduction,
            axis=1,
            ignore_index=int(torch_module.ignore_index),
            label_smoothing=float(torch_module.label_smoothing),
        )


class MSELoss(Module):
    """Squared error ``(input − target)²`` per element, then reduced.

    Shapes: ``input`` and ``target`` equal; ``mask`` the same shape or a leading
    part of it (e.g. ``(T, B)`` for ``(T, B, K)``), broadcast over the rest.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction, "MSELoss")

    def forward(self, input: Any, target: Any, mask: Any = None) -> Tensor:
        """``(prediction, target, mask=None) -> loss``."""
        shape = tuple(np.shape(input.data if isinstance(input, Tensor) else input))
        m = _expand_mask(mask, shape, "MSELoss")
        return F.mse_loss(input, target, reduction=self.reduction, mask=m)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

    @classmethod
    def from_torch(cls, torch_module: Any) -> MSELoss:
        """Copy a ``torch.nn.MSELoss`` (its reduction)."""
        return cls(_torch_reduction(torch_module, cls, {}))


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy on logits, ``−[y log σ(x) + (1−y) log(1−σ(x))]``, stable for any x.

    Shapes: ``input`` logits and ``target`` (values in [0, 1]) equal; ``mask``
    the same shape or a leading part of it, broadcast over the rest. The
    gradient with respect to the logits is ``σ(x) − y`` times the reduction's weight.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction, "BCEWithLogitsLoss")

    def forward(self, input: Any, target: Any, mask: Any = None) -> Tensor:
        """``(logits, target, mask=None) -> loss``."""
        shape = tuple(np.shape(input.data if isinstance(input, Tensor) else input))
        m = _expand_mask(mask, shape, "BCEWithLogitsLoss")
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction, mask=m)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

    @classmethod
    def from_torch(cls, torch_module: Any) -> BCEWithLogitsLoss:
        """Copy a ``torch.nn.BCEWithLogitsLoss`` (its reduction; no ``weight``/``pos_weight``)."""
        return cls(_torch_reduction(torch_module, cls, {"weight": None, "pos_weight": None}))
