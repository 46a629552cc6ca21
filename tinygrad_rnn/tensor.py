"""The ``Tensor``: an ``np.ndarray`` plus the link to the op that made it.

Everything a Tensor can compute is a primitive in [`tinygrad_rnn.ops`][tinygrad_rnn.ops]; the
methods here only forward to those ops so that ``x.tanh()`` and ``tanh(x)`` are
the same thing.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, SupportsIndex

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tinygrad_rnn.autograd import Node

Axis = int | tuple[int, ...] | None


def _shape_arg(shape: tuple[Any, ...], where: str = "shape") -> tuple[int, ...]:
    """Accept both ``f(6, 2)`` and ``f((6, 2))`` like numpy's reshape does."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        return tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"{where}: sizes and axes must be integers, got {shape!r:.80}") from None


# Stand-ins for values no rule will read: arrays with the original's shape and dtype and
# no memory of their own (one read-only NaN per dtype, seen through zero strides; zero for
# integer dtypes). Ops whose rules read only an input's shape save one instead of the input
# (``Primitive(shape_only=...)``), and the recurrent layers put one into their input
# projection once every step has read its row, so that its memory can go before the
# backward pass. NaN, not zero: anything that computes with a released value gets NaN,
# not a plausible number. A stand-in is recognised by its base, the dtype's NaN.
_FILLS: dict[np.dtype[Any], np.ndarray] = {}
# The last original and its stand-in: an RNN's steps all save the same projection, and a
# stand-in costs microseconds to make. Keyed by a weak reference, so it never keeps the
# original alive, and one stand-in per original (graph drawings tell them apart by id).
_LAST: list[Any] = [None, None]
# Below this size values are kept even where a stand-in could replace them (see above).
_RELEASE_MIN_BYTES = 64 * 2**10


def _stand_in(a: np.ndarray) -> np.ndarray:
    """A zero-byte read-only array with ``a``'s shape and dtype (all NaN, or 0 for integers)."""
    ref, s = _LAST
    if ref is not None and ref() is a:
        return s
    fill = _FILLS.get(a.dtype)
    if fill is None:
        value = np.nan if a.dtype.kind in "fc" else 0
        made = np.full((), value, dtype=a.dtype)
        made.flags.writeable = False
        fill = _FILLS.setdefault(a.dtype, made)  # one per dtype, also with threads
    s = np.broadcast_to(fill, a.shape)
    _LAST[:] = [weakref.ref(a), s]
    return s


def _is_stand_in(a: Any) -> bool:
    """True when ``a`` is a stand-in made by `_stand_in` (its values are gone)."""
    return isinstance(a, np.ndarray) and a.base is not None and a.base is _FILLS.get(a.dtype)


class Tensor:
    """An n-dimensional array that can record the ops applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)`` copies ``data`` (a scalar,
    nested list, ``np.ndarray`` or Tensor) into a new array, so later changes to
    what you passed in never reach the tensor. The dtype is numpy's choice
    unless given: Python floats become float64, which is what gradient checks
    want; pass ``dtype=np.float32`` for speed. Ops keep float32 as float32
    (Python and numpy scalars never upcast a tensor). Only floating-point
    tensors can require grad; integer tensors hold targets and indices.

    Attributes:
        data: the ``np.ndarray`` with the values.
        grad: ``None`` or a Tensor of the same shape, filled by ``backward``.
        requires_grad: whether ops on this tensor are recorded.
        name: optional label used by error messages and graph drawings.
    """

    # ``autograd.apply`` builds its results without ``__init__`` (the engine's fast path)
    # and sets every slot itself: a new slot must be set there too.
    __slots__ = ("__weakref__", "_node", "data", "grad", "name", "requires_grad")

    # numpy must hand ``ndarray + Tensor`` back to Tensor.__radd__ instead of
    # iterating over the tensor element by element.
    __array_ufunc__ = None

    data: np.ndarray
    grad: Tensor | None
    requires_grad: bool
    name: str | None
    _node: Node | None

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: npt.DTypeLike | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(data, Tensor):
            if _is_stand_in(data.data):
                raise RuntimeError(data._released_message("Tensor"))
            data = data.data
        try:
            array = np.array(data, dtype=dtype, copy=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"Tensor: cannot make an array from {type(data).__name__}: {exc}"
            ) from None
        except OverflowError as exc:
            raise ValueError(
                f"Tensor: {data!r:.80} does not fit in dtype {np.dtype(dtype)}: {exc}"
            ) from None
        if array.dtype.kind not in "biufc":
            raise TypeError(
                f"Tensor: data must be numeric, got an array of dtype {array.dtype} "
                f"from {data!r:.80}"
            )
        if requires_grad and not np.issubdtype(array.dtype, np.floating):
            raise TypeError(
                f"Tensor: only floating-point tensors can require grad, got dtype {array.dtype}"
            )
        self.data = array
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.name = name
        self._node = None

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Wrap an array without copying or checking (the engine's fast path)."""
        t = object.__new__(cls)
        t.data = data
        t.requires_grad = requires_grad
        t.grad = None
        t.name = None
        t._node = None
        return t

    # ------------------------------------------------------------------ info
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``data``."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of ``data``."""
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded op (parameters, inputs)."""
        return self._node is None

    @property
    def op(self) -> str | None:
        """Name of the primitive that produced this tensor, or None for a leaf."""
        return None if self._node is None else self._node.prim.name

    def numpy(self) -> np.ndarray:
        """Return ``data`` itself (not a copy): the array shares memory with the tensor."""
        if _is_stand_in(self.data):
            raise RuntimeError(self._released_message("numpy"))
        return self.data

    def _release_values(self) -> None:
        """Drop the values of an intermediate that nothing will read again (private).

        The tensor keeps its shape, dtype and place in the graph; ``data`` becomes a
        zero-byte stand-in. Used by the recurrent layers for their input projection once
        every step has read its row: no derivative rule reads it (only its shape).
        Values under ``_RELEASE_MIN_BYTES`` are kept: their memory is not worth the time,
        and small graphs, the ones people draw, keep every value to show.
        """
        if self.data.nbytes >= _RELEASE_MIN_BYTES:
            self.data = _stand_in(self.data)

    def _released_message(self, where: str) -> str:
        return (
            f"{where}: the values of this tensor (shape {self.shape}, op {self.op}) were "
            "released after use to save memory; only its shape is kept in the graph"
        )

    def item(self) -> float | int | bool:
        """Return the single element as a Python number (shape must have size 1)."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only a tensor with one element can be converted, got shape {self.shape}"
            )
        return self.data.item()  # type: ignore[no-any-return,unused-ignore]

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        if _is_stand_in(self.data):
            raise RuntimeError(self._released_message("np.asarray"))
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(len(self.data)):
            yield self[i]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() or .all() on .data"
            )
        return bool(self.data)

    def __repr__(self) -> str:
        if _is_stand_in(self.data):
            shape, dtype, op = self.shape, self.dtype, self.op
            return f"Tensor(<values released>, shape={shape}, dtype={dtype}, op={op})"
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=50)
        extra = [f"dtype={self.dtype}"]
        if self._node is not None:
            extra.append(f"op={self._node.prim.name}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self.name:
            extra.append(f"name={self.name!r}")
        return f"Tensor({body}, {', '.join(extra)})"

    __hash__ = object.__hash__

    # --------------------------------------------------------------- graph
    def detach(self) -> Tensor:
        """A new leaf sharing ``data`` with this tensor, cut from the graph."""
        return Tensor._make(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf and return ``self``."""
        if requires_grad and not np.issubdtype(self.dtype, np.floating):
            raise TypeError(
                f"requires_grad_: only floating-point tensors can require grad, got {self.dtype}"
            )
        if not self.is_leaf:
            raise RuntimeError("requires_grad_: can only change requires_grad of a leaf tensor")
        self.requires_grad = requires_grad
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (sets ``grad`` to None)."""
        self.grad = None

    def backward(
        self,
        grad: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        Args:
            grad: the upstream gradient, same shape as ``self``; may be omitted
                only when ``self`` has one element (it is then 1).
            retain_graph: keep the saved arrays so backward can run again
                (default: the value of ``create_graph``).
            create_graph: record the backward pass itself, so the gradients are
                Tensors with a graph and can be differentiated again.
        """
        from tinygrad_rnn.engine import backward

        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    # ---------------------------------------------------- arithmetic operators
    def __add__(self, other: Any) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    # Comparisons are not differentiable: they return boolean tensors with no graph.
    def __lt__(self, other: Any) -> Tensor:
        return _ops.less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return _ops.less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _ops.greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _ops.greater_equal(self, other)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.equal(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.not_equal(self, other)

    # ------------------------------------------------------ elementwise methods
    def exp(self) -> Tensor:
        """Elementwise e**x."""
        return _ops.exp(self)

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        return _ops.log(self)

    def log1p(self) -> Tensor:
        """Elementwise log(1 + x), accurate for small x."""
        return _ops.log1p(self)

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent."""
        return _ops.tanh(self)

    def sigmoid(self) -> Tensor:
        """Elementwise logistic sigmoid 1 / (1 + e**-x), stable for any x."""
        return _ops.sigmoid(self)

    def relu(self) -> Tensor:
        """Elementwise max(x, 0)."""
        return _ops.relu(self)

    def abs(self) -> Tensor:
        """Elementwise absolute value."""
        return _ops.abs(self)

    def sqrt(self) -> Tensor:
        """Elementwise square root (``x ** 0.5``)."""
        return _ops.pow(self, 0.5)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Elementwise clamp into [min, max]; the gradient is zero where clamped."""
        return _ops.clip(self, min, max)

    # ------------------------------------------------------------ reductions
    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (int, tuple or None for all)."""
        return _ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (int, tuple or None for all)."""
        return _ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; ties share the gradient equally."""
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``; ties share the gradient equally."""
        return _ops.min(self, axis=axis, keepdims=keepdims)

    # ------------------------------------------------------------ shape ops
    def reshape(self, *shape: Any) -> Tensor:
        """Same data, new shape: ``x.reshape(6, 2)`` or ``x.reshape((6, 2))``."""
        return _ops.reshape(self, _shape_arg(shape, "reshape"))

    def transpose(self, *axes: Any) -> Tensor:
        """Permute axes (all reversed when none are given), like ``np.transpose``."""
        return _ops.transpose(self, _shape_arg(axes, "transpose") if axes else None)

    def permute(self, *axes: Any) -> Tensor:
        """Alias of [`transpose`][tinygrad_rnn.Tensor.transpose] with explicit axes, as in
        PyTorch."""
        return _ops.transpose(self, _shape_arg(axes, "permute"))

    @property
    def T(self) -> Tensor:
        """All axes reversed (numpy's ``.T``)."""
        return _ops.transpose(self, None)

    def expand(self, *shape: Any) -> Tensor:
        """Broadcast to ``shape`` without copying (``broadcast_to``)."""
        return _ops.broadcast_to(self, _shape_arg(shape, "expand"))

    def broadcast_to(self, *shape: Any) -> Tensor:
        """Broadcast to ``shape`` without copying."""
        return _ops.broadcast_to(self, _shape_arg(shape, "broadcast_to"))

    def split(self, sections: int | Sequence[int], axis: SupportsIndex = 0) -> list[Tensor]:
        """Split like ``np.split``: ``sections`` equal parts or at the given indices."""
        return _ops.split(self, sections, axis=int(axis))

    def chunk(self, chunks: int, axis: SupportsIndex = 0) -> list[Tensor]:
        """Split into ``chunks`` equal parts along ``axis``."""
        return _ops.chunk(self, chunks, axis=int(axis))


# Imported last: ops needs the Tensor class defined above.
from tinygrad_rnn import ops as _ops  # noqa: E402

__all__ = ["Tensor"]
