"""The ``Tensor``: an ``np.ndarray`` plus the link to the op that made it.

Everything a Tensor can compute is a primitive in [`tinygrad_rnn.ops`][tinygrad_rnn.ops]; the
methods here only forward to those ops so that ``x.tanh()`` and ``tanh(x)`` are
the same thing.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, SupportsIndex

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tinygrad_rnn.autograd import Node
    from tinygrad_rnn.hooks import Hook, RemovableHandle, _Hooks

Axis = int | tuple[int, ...] | None


def _shape_arg(shape: tuple[Any, ...], where: str = "shape") -> tuple[int, ...]:
    """Accept both ``f(6, 2)`` and ``f((6, 2))`` like numpy's reshape does."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        return tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"{where}: sizes and axes must be integers, got {shape!r:.80}") from None


def _axis_index(where: str, axis: Any, ndim: int, shape: tuple[int, ...], extra: int = 0) -> int:
    """``axis`` as an index in ``[0, ndim + extra)``; negative axes count from the end.

    ``extra`` is 1 where the axis may also be one past the last (``unsqueeze``). As in
    numpy and PyTorch a 0-d tensor takes axis 0 or -1. The error for an axis out of range is
    numpy's ``AxisError``: both an IndexError (PyTorch's) and a ValueError (numpy's).
    """
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{where}: axis must be an int, got {axis!r:.60}")
    n = max(ndim + extra, 1)
    if not -n <= axis < n:
        raise np.exceptions.AxisError(
            f"{where}: axis {axis} is out of range for a tensor of shape {shape} "
            f"(expected an axis in [{-n}, {n - 1}])"
        )
    return int(axis) % n


def _axes_tuple(where: str, axis: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """An int or a tuple of ints as sorted, distinct axis indices of ``shape``."""
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    found = tuple(_axis_index(where, a, len(shape), shape) for a in axes)
    if len(set(found)) != len(found):
        raise ValueError(f"{where}: axis {tuple(axis)} names an axis more than once")
    return tuple(sorted(found))


# Stand-ins for values no rule will read: arrays with the original's shape and dtype and
# no memory of their own (one read-only NaN per dtype, seen through zero strides; zero for
# integer dtypes). Ops whose rules read only an input's shape save one instead of the input
# (``Primitive(shape_only=...)``), and the recurrent layers put one into their input
# projection once every step has read its row, so that its memory can go before the
# backward pass. NaN, not zero: anything that computes with a released value gets NaN,
# not a plausible number. A stand-in is recognised by its base, the dtype's NaN.
_FILLS: dict[np.dtype[Any], np.ndarray] = {}
# Stand-ins by shape and dtype: they hold nothing, so one serves every array of that shape
# (a layer's steps save rows of one projection; making a stand-in costs about a
# microsecond, looking one up a tenth of that). A few shapes recur; the table is bounded.
_STAND_INS: dict[tuple[tuple[int, ...], np.dtype[Any]], np.ndarray] = {}
# Below this size values are kept even where a stand-in could replace them (see above).
_RELEASE_MIN_BYTES = 16 * 2**10


def _stand_in(a: np.ndarray) -> np.ndarray:
    """A zero-byte read-only array with ``a``'s shape and dtype (all NaN, or 0 for integers)."""
    key = (a.shape, a.dtype)
    s = _STAND_INS.get(key)
    if s is not None:
        return s
    fill = _FILLS.get(a.dtype)
    if fill is None:
        value = np.nan if a.dtype.kind in "fc" else 0
        made = np.full(1, value, dtype=a.dtype)
        made.flags.writeable = False
        fill = _FILLS.setdefault(a.dtype, made)  # one per dtype, also with threads
    # The element seen through zero strides (3x faster to make than np.broadcast_to's view).
    s = np.ndarray(a.shape, a.dtype, buffer=fill, strides=(0,) * a.ndim)
    if len(_STAND_INS) > 64:
        _STAND_INS.clear()
    _STAND_INS[key] = s
    return s


def _memory_of(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    base = a.base
    return a if base is None else base if type(base) is np.ndarray else a


def _holds_large(a: np.ndarray) -> bool:
    """Whether ``a`` holds, or is a view of, ``_RELEASE_MIN_BYTES`` or more: worth a
    stand-in (a slice counts the array it is a view of, which it keeps alive)."""
    least = _RELEASE_MIN_BYTES
    return a.nbytes >= least or _memory_of(a).nbytes >= least


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
    __slots__ = ("__weakref__", "_hooks", "_node", "data", "grad", "name", "requires_grad")

    # numpy must hand ``ndarray + Tensor`` back to Tensor.__radd__ instead of
    # iterating over the tensor element by element.
    __array_ufunc__ = None

    data: np.ndarray
    grad: Tensor | None
    requires_grad: bool
    name: str | None
    _node: Node | None
    # None unless the tensor has gradient hooks or retains its gradient (``hooks._Hooks``):
    # the backward pass checks only this.
    _hooks: _Hooks | None

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
        self._hooks = None

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Wrap an array without copying or checking (the engine's fast path)."""
        t = object.__new__(cls)
        t.data = data
        t.requires_grad = requires_grad
        t.grad = None
        t.name = None
        t._node = None
        t._hooks = None
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
        every step has read its row, and by an LSTM step for its pre-activations and their
        four slices once the gates are computed: no derivative rule reads them (only their
        shapes). Values in memory under ``_RELEASE_MIN_BYTES`` (a slice counts the array it
        is a view of) are kept: their memory is not worth the time, and small graphs, the
        ones people draw, keep every value to show.
        """
        if _holds_large(self.data):
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

    # ------------------------------------------------------------------ hooks
    def register_hook(self, hook: Hook) -> RemovableHandle:
        """Call ``hook(grad)`` with this tensor's gradient each time a backward pass computes it.

        ``grad`` is a Tensor of this tensor's shape and dtype: the total gradient of the
        backward's output with respect to this tensor, through every path (for an RNN's
        ``h_t``, the ∂L/∂h_t that BPTT carries into step ``t``). It is called once that
        gradient is complete, before it flows on to the ops that made this tensor. If the
        hook returns a Tensor (same shape and dtype), that replaces the gradient from then
        on: for the inputs upstream, for ``.grad`` and for later hooks; returning None keeps
        it. Hooks run in the order they were registered; a hook should not modify ``grad``
        in place.

        On a leaf the hooks run before the gradient is added into ``.grad``. They also run in
        [`grad`][tinygrad_rnn.grad], whose result for an input is always the gradient after
        that input's hooks (PyTorch returns it before them for an intermediate input whose
        graph the pass also walks further). As in PyTorch, a
        [`retain_grad`][tinygrad_rnn.Tensor.retain_grad] ``.grad`` is stored after all the
        hooks, whatever the order they were registered in.

        Hooks are not replayed by [`jit`][tinygrad_rnn.jit] (its recorded backward does not
        call them).

        Args:
            hook: ``hook(grad: Tensor) -> Tensor | None``.

        Returns:
            A [`RemovableHandle`][tinygrad_rnn.RemovableHandle]: ``handle.remove()``
            unregisters the hook.

        Raises:
            RuntimeError: the tensor does not require grad (no gradient ever reaches it).
            TypeError: ``hook`` is not callable.
        """
        from tinygrad_rnn import hooks

        if not self.requires_grad:
            raise RuntimeError(
                f"register_hook: cannot register a hook on a tensor that does not require grad "
                f"(shape {self.shape}); no gradient is computed for it"
            )
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        return hooks.add_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward, as leaves do.

        Gradients of intermediates (an RNN's hidden states) are normally dropped as soon as
        they have flowed on. After ``h.retain_grad()``, every backward pass (and
        [`grad`][tinygrad_rnn.grad]) that computes ∂L/∂h adds it into ``h.grad``: two
        backward passes through a retained graph accumulate, as for leaves. The value stored
        is the one after all of the tensor's hooks. On a leaf this does nothing (a leaf keeps
        its ``.grad`` anyway).

        Raises:
            RuntimeError: the tensor does not require grad.
        """
        from tinygrad_rnn import hooks

        if not self.requires_grad:
            raise RuntimeError(
                f"retain_grad: cannot retain the gradient of a tensor that does not require "
                f"grad (shape {self.shape})"
            )
        if self._node is not None:
            hooks.set_retain(self)

    @property
    def retains_grad(self) -> bool:
        """True for a non-leaf tensor on which [`retain_grad`][tinygrad_rnn.Tensor.retain_grad]
        was called (False for leaves, as in PyTorch)."""
        return self._hooks is not None and self._hooks.retain

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

    def square(self) -> Tensor:
        """Elementwise ``x * x``."""
        return _ops.mul(self, self)

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

    def var(self, axis: Axis = None, keepdims: bool = False, correction: float = 1) -> Tensor:
        """Variance over ``axis``: ``sum((x - mean)**2) / (N - correction)``, as in PyTorch.

        Composed of [`mean`][tinygrad_rnn.Tensor.mean], subtraction, a product and a sum,
        so its gradient comes from those ops' rules. ``N`` is the number of elements
        reduced; when ``N - correction <= 0`` the divisor is 0 and the result inf or nan
        (numpy warns), as in PyTorch.

        Args:
            axis: an int, a tuple of ints, or None for every element.
            keepdims: keep the reduced axes as size 1.
            correction: subtracted from ``N`` in the divisor: 1 (the default) for the
                unbiased sample variance, 0 for the population variance.

        Returns:
            A Tensor of the input's shape without the reduced axes (kept as 1 with
            ``keepdims``), in the input's dtype.

        Raises:
            TypeError: the tensor is not floating-point.
            IndexError: an axis is out of range (the error is also a ValueError).
        """
        axes, count = self._reduced("var", axis)
        if isinstance(correction, (bool, np.bool_)) or not isinstance(correction, (int, float)):
            raise TypeError(f"var: correction must be a number, got {correction!r:.60}")
        centered = self - _ops.mean(self, axis=axes, keepdims=True)
        total = _ops.sum(centered * centered, axis=axes, keepdims=keepdims)
        return total / max(count - correction, 0)

    def std(self, axis: Axis = None, keepdims: bool = False, correction: float = 1) -> Tensor:
        """Standard deviation over ``axis``: the square root of
        [`var`][tinygrad_rnn.Tensor.var] (same arguments, same errors)."""
        self._reduced("std", axis)  # the errors name std
        return _ops.pow(self.var(axis, keepdims, correction), 0.5)

    def _reduced(self, where: str, axis: Axis) -> tuple[tuple[int, ...] | None, int]:
        """Checked axes of a float reduction (None: all) and the number of elements reduced."""
        if self.dtype.kind != "f":
            raise TypeError(
                f"{where}: only floating-point tensors have a {where}, got dtype {self.dtype}"
            )
        if axis is None:
            return None, self.size
        axes = _axes_tuple(where, axis, self.shape)
        if self.ndim == 0:  # numpy's axis 0 of a 0-d array: its one element
            return None, 1
        count = 1
        for a in axes:
            count *= self.shape[a]
        return axes, count

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Indices of the maxima (int64, no grad); see
        [`ops.argmax`][tinygrad_rnn.ops.argmax]."""
        return _ops.argmax(self, axis, keepdims)

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Indices of the minima (int64, no grad); see
        [`ops.argmin`][tinygrad_rnn.ops.argmin]."""
        return _ops.argmin(self, axis, keepdims)

    def softmax(self, axis: int = -1) -> Tensor:
        """``exp(x) / sum(exp(x))`` along ``axis``, finite for any finite logits; see
        [`functional.softmax`][tinygrad_rnn.functional.softmax]."""
        _axis_index("softmax", axis, self.ndim, self.shape)
        return _functional.softmax(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """``x - logsumexp(x)`` along ``axis``, finite for any finite logits; see
        [`functional.log_softmax`][tinygrad_rnn.functional.log_softmax]."""
        _axis_index("log_softmax", axis, self.ndim, self.shape)
        return _functional.log_softmax(self, axis=axis)

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

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast to ``sizes`` without copying, as PyTorch's ``expand``.

        ``x.expand(2, -1)`` or ``x.expand((2, -1))``: ``-1`` keeps the size of that axis;
        an axis of size 1 can take any size; new axes may be added in front (not as -1).
        The gradient sums back over the broadcast axes
        ([`broadcast_to`][tinygrad_rnn.ops.broadcast_to]).

        Raises:
            ValueError: fewer sizes than axes, a size that does not match a non-1 axis,
                -1 for a new leading axis, or a negative size other than -1.
        """
        target = _shape_arg(sizes, "expand")
        lead = len(target) - self.ndim
        if lead < 0:
            raise ValueError(
                f"expand: {len(target)} sizes {target} for a tensor of shape {self.shape}; "
                f"give at least one size per axis ({self.ndim})"
            )
        resolved = []
        for i, size in enumerate(target):
            old = self.shape[i - lead] if i >= lead else None
            if size == -1 and old is not None:
                size = old
            elif size < 0:
                where = "a new leading axis" if old is None and size == -1 else f"axis {i}"
                raise ValueError(
                    f"expand: size {size} is not allowed for {where} (sizes {target}, "
                    f"tensor of shape {self.shape})"
                )
            elif old is not None and old != 1 and size != old:
                raise ValueError(
                    f"expand: size {size} at axis {i} does not match the tensor's size {old} "
                    f"there (sizes {target}, tensor of shape {self.shape}); only axes of size 1 "
                    "can be expanded"
                )
            resolved.append(size)
        return _ops.broadcast_to(self, tuple(resolved))

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        """Merge the axes ``start_axis`` to ``end_axis`` (both included) into one.

        ``x`` of shape ``(B, T, H)``: ``x.flatten()`` is ``(B*T*H,)``, ``x.flatten(1)`` is
        ``(B, T*H)``. A 0-d tensor becomes shape ``(1,)``, as in PyTorch.

        Raises:
            IndexError: an axis is out of range (the error is also a ValueError).
            ValueError: ``start_axis`` comes after ``end_axis``.
        """
        start = _axis_index("flatten", start_axis, self.ndim, self.shape)
        end = _axis_index("flatten", end_axis, self.ndim, self.shape)
        if start > end:
            raise ValueError(
                f"flatten: start_axis {start_axis} comes after end_axis {end_axis} for a tensor "
                f"of shape {self.shape}"
            )
        if self.ndim == 0:
            return _ops.reshape(self, (1,))
        shape = self.shape
        merged = 1
        for n in shape[start : end + 1]:
            merged *= n
        return _ops.reshape(self, (*shape[:start], merged, *shape[end + 1 :]))

    def squeeze(self, axis: int | tuple[int, ...] | None = None) -> Tensor:
        """Drop axes of size 1: all of them (``axis=None``) or those named.

        A named axis whose size is not 1 is left as it is, as in PyTorch.

        Raises:
            IndexError: an axis is out of range (the error is also a ValueError).
            ValueError: an axis is named twice.
        """
        if axis is None:
            drop = {i for i, n in enumerate(self.shape) if n == 1}
        else:
            drop = {
                a
                for a in _axes_tuple("squeeze", axis, self.shape)
                if self.ndim and self.shape[a] == 1
            }
        return _ops.reshape(self, tuple(n for i, n in enumerate(self.shape) if i not in drop))

    def unsqueeze(self, axis: int) -> Tensor:
        """Insert an axis of size 1 at ``axis`` (in ``[-ndim - 1, ndim]``; -1 appends it).

        Raises:
            IndexError: ``axis`` is out of range (the error is also a ValueError).
        """
        a = _axis_index("unsqueeze", axis, self.ndim, self.shape, extra=1)
        return _ops.reshape(self, (*self.shape[:a], 1, *self.shape[a:]))

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
from tinygrad_rnn import functional as _functional  # noqa: E402
from tinygrad_rnn import ops as _ops  # noqa: E402

__all__ = ["Tensor"]
