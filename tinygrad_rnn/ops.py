"""Every primitive op of the engine, each with its derivative rule beside it.

Read this file as a table: ``Primitive(name, forward, rule_for_input_0, ...)``.
A rule ``(g, ans, *inputs, **params)`` returns the gradient for its input; it
is written with the functions of this module and Python operators only, so it
runs on arrays in an ordinary backward and on Tensors (recorded, hence
differentiable again) under ``create_graph=True``.

Broadcasting is undone in exactly one place, [`sum_to`][tinygrad_rnn.ops.sum_to], which every
broadcasting op's rule calls.
"""

from __future__ import annotations

import builtins
import itertools
import math
import numbers
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_rnn import _grad_mode
from tinygrad_rnn.autograd import Primitive
from tinygrad_rnn.tensor import Tensor, _axis_index

Axis = int | tuple[int, ...] | None


# How often a rule read the raw values of a Tensor (a mask such as relu's ``ans > 0``). jit
# runs a rule on Tensors to record it as ops; a rule that read values this way computed part
# of its result outside the ops, which a replay would not recompute, so jit keeps it whole.
_RAW_READS = [0]


def _value(x: Any) -> np.ndarray:
    """The raw array behind a Tensor (or the array itself): for masks, never differentiated."""
    if isinstance(x, Tensor):
        _RAW_READS[0] += 1
        return x.data
    return x


def _array(x: Any, where: str) -> Any:
    """``x`` itself if it is a Tensor, else ``x`` as an array of numbers (TypeError otherwise).

    Only the public wrappers call this, for arguments that are not Tensors or arrays
    (lists, None): the rules always pass Tensors or arrays.
    """
    if isinstance(x, Tensor):
        return x
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{where}: expected a Tensor or an array of numbers, got {type(x).__name__}: {exc}"
        ) from None
    if a.dtype.kind not in "biufc":
        raise TypeError(
            f"{where}: expected a Tensor or an array of numbers, got {type(x).__name__} "
            f"(dtype {a.dtype})"
        )
    return a


def _like(mask: np.ndarray, x: Any) -> np.ndarray:
    """A boolean or float mask in the float dtype of ``x`` so it never upcasts."""
    return mask.astype(_value(x).dtype, copy=False)


def _norm_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(a) % ndim if ndim else 0 for a in axes)


def _keepdims_shape(shape: tuple[int, ...], axis: Axis) -> tuple[int, ...]:
    """``shape`` with the reduced axes kept as 1 (where a reduction's output broadcasts back)."""
    axes = _norm_axes(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


# ----------------------------------------------------------- broadcasting
_ONES: dict[tuple[int, str], np.ndarray] = {}


def _sum_rows(x: np.ndarray) -> np.ndarray | None:
    """``x (..., n)`` summed over its leading axes as ``ones @ x``, or None where that does not
    pay: a bias gradient, the sum of many rows, is 3-4x faster as one BLAS product than as
    ``x.sum(axis=0)``. Used for float32 only, where it rounds like any float32 dot product;
    float64 keeps numpy's pairwise sum (the gradient checks are float64)."""
    rows = x.size // x.shape[-1] if x.shape[-1] else 0
    if rows < 256 or not x.flags.c_contiguous or x.dtype.kind != "f":
        return None
    return _ones(rows, x.dtype) @ x.reshape(rows, x.shape[-1])


def _ones(n: int, dtype: np.dtype[Any]) -> np.ndarray:
    """A cached ``ones(n)`` for sums written as products (a few sizes recur: one per
    layer, sequence length and class count)."""
    key = (n, dtype.str)
    ones = _ONES.get(key)
    if ones is None:
        if len(_ONES) > 32:
            _ONES.clear()
        ones = _ONES[key] = np.ones(n, dtype=dtype)
    return ones


_LEADING_AXES = [tuple(range(n)) for n in range(8)]


def _sum_to_forward(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lead = x.ndim - len(shape)
    if lead and len(shape) == 1 and shape[0] == x.shape[-1]:  # a bias gradient: the usual
        if x.dtype == np.float32:
            summed = _sum_rows(x)
            if summed is not None:
                return summed
        return np.add.reduce(x, axis=_LEADING_AXES[lead] if lead < 8 else tuple(range(lead)))
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1
    )
    out = x.sum(axis=axes, keepdims=True) if axes else x  # (the method skips np.sum's wrapper)
    return out.reshape(shape) if lead else out


_sum_to = Primitive(
    "sum_to",
    _sum_to_forward,
    lambda g, ans, x, shape: broadcast_to(g, x.shape),
)

_broadcast_to = Primitive(
    "broadcast_to",
    np.broadcast_to,
    lambda g, ans, x, shape: sum_to(g, x.shape),
)


def sum_to(x: Any, shape: Sequence[int]) -> Any:
    """Sum ``x`` down to ``shape``: the inverse of broadcasting (used by every rule)."""
    shape = tuple(shape)
    try:
        x_shape = x.shape
    except AttributeError:  # a list or None: only reached on bad input
        x = _array(x, "sum_to")
        x_shape = x.shape
    if x_shape == shape:
        return x
    return _sum_to(x, shape=shape)


def broadcast_to(x: Any, shape: Sequence[int]) -> Any:
    """Broadcast ``x`` to ``shape`` (numpy rules) without copying; the gradient sums back."""
    shape = tuple(shape)
    try:
        x_shape = x.shape
    except AttributeError:  # a list or None: only reached on bad input
        x = _array(x, "broadcast_to")
        x_shape = x.shape
    if x_shape == shape:
        return x
    return _broadcast_to(x, shape=shape)


# -------------------------------------------------------------- arithmetic
def _zero_power_fix(x: Any, y: Any) -> np.ndarray:
    """1 where both base and exponent are 0, else 0 (a constant added to the exponent).

    ``d/dx x**y = y x**(y-1)`` is ``0 * 0**-1 = 0 * inf`` at ``x = y = 0``; raising to
    ``y`` instead of ``y - 1`` there gives the true derivative 0 without a division by 0,
    and leaves every other point (and so every higher derivative there) untouched.
    """
    return _like((_value(x) == 0) & (_value(y) == 0), y)


add = Primitive(
    "add",
    np.add,
    lambda g, ans, x, y: sum_to(g, x.shape),
    lambda g, ans, x, y: sum_to(g, y.shape),
    shape_only=(0, 1),
)
sub = Primitive(
    "sub",
    np.subtract,
    lambda g, ans, x, y: sum_to(g, x.shape),
    lambda g, ans, x, y: sum_to(-g, y.shape),
    shape_only=(0, 1),
)
mul = Primitive(
    "mul",
    np.multiply,
    lambda g, ans, x, y: sum_to(g * y, x.shape),
    lambda g, ans, x, y: sum_to(g * x, y.shape),
)
div = Primitive(
    "div",
    np.divide,
    lambda g, ans, x, y: sum_to(g / y, x.shape),
    lambda g, ans, x, y: sum_to(-g * ans / y, y.shape),
)
neg = Primitive("neg", np.negative, lambda g, ans, x: -g, shape_only=(0,))
pow = Primitive(
    "pow",
    np.power,
    lambda g, ans, x, y: sum_to(g * y * x ** (y - 1 + _zero_power_fix(x, y)), x.shape),
    # d(0**y)/dy = 0 for y > 0: log(0) = -inf there would give 0 * -inf, so log(1) is used.
    lambda g, ans, x, y: sum_to(g * ans * _log(x + _like(_value(x) == 0, x)), y.shape),
)


# ------------------------------------------------------------------ matmul
def _swap_last(x: Any) -> Any:
    if x.ndim == 2:  # ``.T`` is a view for arrays and the transpose op for Tensors
        return x.T
    return _transpose(x, axes=(*range(x.ndim - 2), x.ndim - 1, x.ndim - 2))


def _log(x: Any) -> Any:
    """``log`` for rules defined above the ``log`` primitive."""
    return log(x)


def _matmul_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        a_ndim, b_ndim = a.ndim, b.ndim
    except AttributeError:  # lists or None given to ``matmul`` directly
        a, b = _array(a, "matmul"), _array(b, "matmul")
        a_ndim, b_ndim = a.ndim, b.ndim
    if a_ndim == 0 or b_ndim == 0:
        raise ValueError(f"both operands need at least one dimension, got {a.shape} @ {b.shape}")
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != k_b:
        raise ValueError(f"inner dimensions differ: {a.shape} @ {b.shape} ({a.shape[-1]} != {k_b})")
    if a_ndim == 2 and b_ndim == 2:  # the same product; np.dot has less overhead per call
        return np.dot(a, b)
    return np.matmul(a, b)


def _matmul_grad_a(g: Any, ans: Any, a: Any, b: Any) -> Any:
    if b.ndim == 1:  # (..., k) @ (k,) -> (...): the gradient is an outer product with b
        return sum_to(reshape(g, (*g.shape, 1)) * b, a.shape)
    if a.ndim == 1:  # (k,) @ (..., k, m) -> (..., m)
        g = reshape(g, (*g.shape[:-1], 1, g.shape[-1]))
    return sum_to(g @ _swap_last(b), a.shape)


def _matmul_grad_b(g: Any, ans: Any, a: Any, b: Any) -> Any:
    if a.ndim == 1 and b.ndim == 1:
        return g * a
    if a.ndim == 1:  # (k,) @ (..., k, m): outer product of a with each row of g
        outer = reshape(a, (a.shape[0], 1)) * reshape(g, (*g.shape[:-1], 1, g.shape[-1]))
        return sum_to(outer, b.shape)
    if b.ndim == 1:  # (..., n, k) @ (k,) -> (..., n)
        row = sum_to(reshape(g, (*g.shape[:-1], 1, g.shape[-1])) @ a, (1, b.shape[0]))
        return reshape(row, b.shape)
    return sum_to(_swap_last(a) @ g, b.shape)


def _matmul_factors_b(g: Any, ans: Any, a: Any, b: Any) -> tuple[Any, Any] | None:
    """``_matmul_grad_b`` for 2-D operands, ``aᵀ g``, as its two factors: the engine adds the
    products of all the steps that share a weight with one matmul over all their rows."""
    return (a, g) if a.ndim == 2 and b.ndim == 2 else None


matmul = Primitive(
    "matmul",
    _matmul_forward,
    _matmul_grad_a,
    _matmul_grad_b,
    factors={1: _matmul_factors_b},
)


def _addmm_forward(c: np.ndarray, a: np.ndarray, b: np.ndarray, name: str = "addmm") -> np.ndarray:
    """``c + a @ b`` in a fresh array (which callers may overwrite)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"{name}: a and b must be 2-D, got {a.shape} @ {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"{name}: inner dimensions differ: {a.shape} @ {b.shape} ({a.shape[1]} != {b.shape[0]})"
        )
    out = np.dot(a, b)  # 2-D: matmul's product, with less overhead per call
    if c.shape == out.shape and c.dtype == out.dtype:
        out += c  # the product is a fresh array: adding in place saves one temporary
        return out
    try:
        fits = np.broadcast_shapes(c.shape, out.shape) == out.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name}: c of shape {c.shape} does not broadcast to a @ b's shape {out.shape}"
        )
    return np.add(c, out)


def _addmm_factors_b(g: Any, ans: Any, c: Any, a: Any, b: Any) -> tuple[Any, Any]:
    return a, g


def _linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: the input's last axis must be in_features={w.shape[1]}, got input "
            f"{x.shape} and weight {w.shape}"
        )
    if b is not None and b.shape not in ((w.shape[0],), ()):
        raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {b.shape}")
    # All leading axes as rows of one 2-D product (a batched matmul would run one small
    # product per leading index, and its backward would build and sum a stack of them).
    out = np.dot(x.reshape(-1, w.shape[1]), w.T)
    if b is not None:
        if out.dtype == np.result_type(out, b):
            out += b
        else:
            out = out + b
    return out.reshape(*x.shape[:-1], w.shape[0])


def _rows(a: Any) -> Any:
    """``a (..., n)`` as a 2-D ``(rows, n)`` (a view of an array, the reshape op on a Tensor)."""
    shape = (math.prod(a.shape[:-1]), a.shape[-1])
    return a if a.shape == shape else a.reshape(shape)


# ``x Wᵀ + b`` with PyTorch's weight layout ``(out_features, in_features)``, for any number
# of leading axes: ``nn.Linear`` and the input projection of every time step at once.
linear = Primitive(
    "linear",
    _linear_forward,
    lambda g, ans, x, w, b=None: (_rows(g) @ w).reshape(x.shape),
    lambda g, ans, x, w, b=None: _rows(g).T @ _rows(x),
    lambda g, ans, x, w, b=None: sum_to(g, b.shape),
    factors={1: lambda g, ans, x, w, b=None: (_rows(g), _rows(x))},
)


# ``c + a @ b`` as one op: a recurrent step's pre-activation ``gi_t + h W_hhᵀ`` costs one
# node instead of two. ``c`` broadcasts against ``(n, m)`` like in ``add``.
addmm = Primitive(
    "addmm",
    lambda c, a, b: _addmm_forward(c, a, b),
    lambda g, ans, c, a, b: sum_to(g, c.shape),
    lambda g, ans, c, a, b: g @ b.T,
    lambda g, ans, c, a, b: a.T @ g,
    factors={2: _addmm_factors_b},
    shape_only=(0,),  # c's rule reads its shape: a step's row of a projection is not kept
)


# ------------------------------------------------------------- elementwise
def _sigmoid_forward(x: np.ndarray) -> np.ndarray:
    # σ(x) = 1 / (1 + e^-x): no sum in it cancels digits, so it keeps full relative
    # precision (the form ½ + ½·tanh(x/2) loses them below x = -2 and needs a second pass
    # there), in four ufunc calls on one array. Where e^-x overflows (x below about -88 in
    # float32, -709 in float64) σ(x) = e^x to the last digit, subnormal or 0: that rare
    # case is caught by the overflow itself, so the usual one pays no extra check.
    if x.dtype.kind != "f":  # integers, booleans: σ of their float64 values
        x = x.astype(np.float64)
    out = np.negative(x)
    if out.ndim == 0:  # numpy returns scalars from 0-d work: keep a 1-element view
        out = out.reshape(1)
    try:
        with np.errstate(over="raise"):
            np.exp(out, out=out)
        overflowed = None
    except FloatingPointError:  # out is complete, with inf where e^-x overflowed
        overflowed = np.isinf(out) & np.isfinite(x.reshape(out.shape))
    out += 1
    np.reciprocal(out, out=out)
    if overflowed is not None:
        out[overflowed] = np.exp(x.reshape(out.shape)[overflowed])
    return out.reshape(x.shape)


exp = Primitive("exp", np.exp, lambda g, ans, x: g * ans, shape_only=(0,))
log = Primitive("log", np.log, lambda g, ans, x: g / x)
log1p = Primitive("log1p", np.log1p, lambda g, ans, x: g / (1 + x))
# Written with (1 - y)(1 + y) rather than 1 - y², which loses digits as |y| -> 1.
# The activations' rules read their output only: the input is not kept (``shape_only``).
# The derivative is a factor of its own, g · (y'), so that a jit program can compute the
# factors of all time steps at once (`jit._plan._plan_over_time`).
tanh = Primitive(
    "tanh",
    np.tanh,
    lambda g, ans, x: g * ((1 - ans) * (1 + ans)),
    shape_only=(0,),
)
sigmoid = Primitive(
    "sigmoid",
    _sigmoid_forward,
    lambda g, ans, x: g * (ans * (1 - ans)),
    shape_only=(0,),
)


def _softplus_forward(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) without overflow; its derivative is the (smooth) sigmoid, kink-free at 0."""
    with np.errstate(invalid="ignore"):  # a NaN input gives NaN quietly, as in every other op
        return np.logaddexp(0, x)


softplus = Primitive("softplus", _softplus_forward, lambda g, ans, x: g * sigmoid(x))
relu = Primitive(
    "relu",
    lambda x: np.maximum(x, 0),
    lambda g, ans, x: g * _like(_value(ans) > 0, g),
    shape_only=(0,),
)
abs = Primitive(
    "abs",
    np.abs,
    lambda g, ans, x: g * _like(np.sign(_value(x)), g),
)


def _clip_mask(x: Any, lo: float | None, hi: float | None) -> np.ndarray:
    v = _value(x)
    inside = np.ones(v.shape, dtype=bool)
    if lo is not None:
        inside &= v >= lo
    if hi is not None:
        inside &= v <= hi
    return inside


_clip = Primitive(
    "clip",
    lambda x, lo, hi: np.clip(x, lo, hi),
    lambda g, ans, x, lo, hi: g * _like(_clip_mask(x, lo, hi), g),
)


def clip(x: Any, min: float | None = None, max: float | None = None) -> Any:
    """Clamp ``x`` elementwise into [min, max]; zero gradient where it was clamped."""
    if min is None and max is None:
        raise ValueError("clip: give min, max or both")
    if not isinstance(x, Tensor):
        x = _array(x, "clip")
    # Python floats, so numpy float64 bounds cannot upcast a float32 tensor.
    return _clip(x, lo=_clip_bound(min, "min"), hi=_clip_bound(max, "max"))


def _clip_bound(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        pass  # a one-element array, as before
    elif not isinstance(value, numbers.Real):
        raise TypeError(f"clip: {name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"clip: {name} must be a real number, got {value!r:.60}: {exc}") from None
    except OverflowError:
        raise ValueError(f"clip: {name} must fit in a float, got {value!r:.60}") from None


def _max_share(x: Any, y: Any) -> np.ndarray:
    """Weight of ``x`` in ``maximum(x, y)``: 1 where it wins, 1/2 on ties."""
    xv, yv = _value(x), _value(y)
    return (xv > yv) + 0.5 * (xv == yv)


maximum = Primitive(
    "maximum",
    np.maximum,
    lambda g, ans, x, y: sum_to(g * _like(_max_share(x, y), g), x.shape),
    lambda g, ans, x, y: sum_to(g * _like(_max_share(y, x), g), y.shape),
)


def minimum(x: Any, y: Any) -> Any:
    """Elementwise minimum (``-maximum(-x, -y)``); ties share the gradient."""
    return -maximum(-x, -y)


_where = Primitive(
    "where",
    lambda x, y, cond: np.where(cond, x, y),
    lambda g, ans, x, y, cond: sum_to(g * _like(np.broadcast_to(cond, g.shape), g), x.shape),
    lambda g, ans, x, y, cond: sum_to(g * _like(~np.broadcast_to(cond, g.shape), g), y.shape),
)


def where(cond: Any, x: Any, y: Any) -> Any:
    """``x`` where ``cond`` is true, else ``y`` (broadcasting); ``cond`` is not differentiated."""
    c = np.asarray(_value(cond))
    if c.dtype != np.bool_:
        raise TypeError(f"where: cond must be boolean, got dtype {c.dtype}")
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x, y = _array(x, "where"), _array(y, "where")
    return _where(x, y, cond=c)


# ------------------------------------------------------------- comparisons
# Not differentiable (no rules): boolean outputs without a graph. Ops all the same, so that a
# mask computed inside a jitted function is computed again on every replay.
less = Primitive("less", np.less)
less_equal = Primitive("less_equal", np.less_equal)
greater = Primitive("greater", np.greater)
greater_equal = Primitive("greater_equal", np.greater_equal)
equal = Primitive("equal", np.equal)
not_equal = Primitive("not_equal", np.not_equal)


# -------------------------------------------------------------- reductions
def _expand_reduced(g: Any, shape: tuple[int, ...], axis: Axis, keepdims: bool) -> Any:
    """Reshape a reduction's gradient so it broadcasts against the input."""
    return g if keepdims else reshape(g, _keepdims_shape(shape, axis))


_sum = Primitive(
    "sum",
    lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    lambda g, ans, x, axis, keepdims: broadcast_to(
        _expand_reduced(g, x.shape, axis, keepdims), x.shape
    ),
)


def _max_grad(g: Any, ans: Any, x: Any, axis: Axis, keepdims: bool) -> Any:
    xv = _value(x)
    winners = xv == np.reshape(_value(ans), _keepdims_shape(xv.shape, axis))
    share = winners / np.sum(winners, axis=axis, keepdims=True)  # ties split the gradient
    return _expand_reduced(g, xv.shape, axis, keepdims) * _like(share, g)


_max = Primitive(
    "max",
    lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    _max_grad,
)


def _check_nonempty(name: str, x: Any, axis: Axis) -> None:
    """A max-like reduction of an empty tensor has no value unless no reduced axis is empty."""
    if x.ndim == 0 or builtins.any(x.shape[a] == 0 for a in _norm_axes(axis, x.ndim)):
        raise ValueError(f"{name}: cannot reduce an empty tensor of shape {tuple(x.shape)}")


def _check_axis(name: str, x: Any, axis: Axis) -> Axis:
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axes: tuple[Any, ...] = (axis,)
    else:
        try:
            axes = tuple(axis)
        except TypeError:
            raise TypeError(
                f"{name}: axis must be an int or tuple of ints, got {axis!r:.60}"
            ) from None
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{name}: axis must be an int or tuple of ints, got {axis!r}")
        n = builtins.max(x.ndim, 1)  # numpy lets a 0-d array take axis 0 or -1
        if not -n <= a < n:
            raise ValueError(f"{name}: axis {a} is out of range for shape {tuple(x.shape)}")
    return int(axes[0]) if isinstance(axis, (int, np.integer)) else tuple(int(a) for a in axes)


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (int, tuple of ints, or None for every axis)."""
    return _sum(x, axis=_check_axis("sum", x, axis), keepdims=keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Mean over ``axis``: the sum divided by the number of elements reduced."""
    axis = _check_axis("mean", x, axis)
    # A 0-d tensor takes axis 0 like numpy does; it then reduces its one element.
    count = math.prod(x.shape[a] for a in _norm_axes(axis, x.ndim) if a < x.ndim)
    return _sum(x, axis=axis, keepdims=keepdims) / builtins.max(count, 1)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    axis = _check_axis("max", x, axis)
    if x.size == 0:
        _check_nonempty("max", x, axis)
    return _max(x, axis=axis, keepdims=keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Minimum over ``axis`` (``-max(-x)``); tied minima share the gradient equally."""
    return -max(-x, axis=axis, keepdims=keepdims)


def _arg_reduce_forward(find: Any) -> Any:
    """The forward of argmax/argmin: int64 indices (into the flattened array for axis None)."""

    def forward(x: np.ndarray, axis: int | None, keepdims: bool) -> np.ndarray:
        out = np.asarray(find(x, axis=axis), dtype=np.int64)
        if keepdims:
            out = out.reshape((1,) * x.ndim if axis is None else _keepdims_shape(x.shape, axis))
        return out

    return forward


def _index_grad(g: Any, ans: Any, x: Any, axis: int | None, keepdims: bool) -> Any:
    # An index is a locally constant function of the values: its derivative is zero
    # (where it exists). Exact zeros in x's dtype, also for infinite x (``x * 0`` is NaN
    # there). Never reached through the public functions, which record no graph.
    zero = np.zeros((), dtype=_value(x).dtype)
    return where(np.zeros(np.shape(x), dtype=bool), x, zero)


# Primitives although they have no gradient to speak of: ``tinygrad_rnn.jit`` replays only
# recorded ops, and an index computed outside them would be baked into the program.
_argmax = Primitive("argmax", _arg_reduce_forward(np.argmax), _index_grad)
_argmin = Primitive("argmin", _arg_reduce_forward(np.argmin), _index_grad)


def _arg_reduce(prim: Primitive, x: Any, axis: int | None, keepdims: bool) -> Any:
    if not isinstance(x, Tensor):
        x = _array(x, prim.name)
    if axis is not None:
        axis = _axis_index(prim.name, axis, x.ndim, x.shape)
    if x.size == 0 and (axis is None or x.ndim == 0 or x.shape[axis] == 0):
        where = "the whole tensor" if axis is None else f"axis {axis}"
        raise ValueError(
            f"{prim.name}: cannot take the {prim.name} over {where} of an empty tensor of "
            f"shape {tuple(x.shape)}"
        )
    if isinstance(x, Tensor) and _grad_mode._ENABLED[0]:
        with _grad_mode.no_grad():  # indices never require grad, as in PyTorch
            return prim(x, axis=axis, keepdims=keepdims)
    return prim(x, axis=axis, keepdims=keepdims)


def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Indices of the maxima along ``axis`` (into the flattened tensor when None), as int64.

    The first index wins ties, and NaN counts as the maximum, as in numpy and PyTorch. The
    result never requires grad.

    Args:
        x: a Tensor or array.
        axis: the axis to reduce, or None for the index into ``x`` flattened.
        keepdims: keep the reduced axis (all axes when ``axis`` is None) as size 1.

    Returns:
        An int64 Tensor (an array for an array ``x``) of ``x``'s shape without ``axis``.

    Raises:
        IndexError: ``axis`` is out of range (the error is also a ValueError).
        ValueError: the reduced axis (or the tensor, for None) is empty.
    """
    return _arg_reduce(_argmax, x, axis, keepdims)


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
    """Indices of the minima along ``axis``; see [`argmax`][tinygrad_rnn.ops.argmax]."""
    return _arg_reduce(_argmin, x, axis, keepdims)


def _logsumexp_forward(x: np.ndarray, axis: Axis, keepdims: bool) -> np.ndarray:
    # Shift by the maximum so exp never overflows; an all -inf slice keeps shift 0.
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):  # an all -inf slice sums to 0: its log is -inf
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


_logsumexp = Primitive(
    "logsumexp",
    _logsumexp_forward,
    lambda g, ans, x, axis, keepdims: (
        _expand_reduced(g, x.shape, axis, keepdims)
        * exp(x - _expand_reduced(ans, x.shape, axis, keepdims))
    ),
)


def logsumexp(x: Any, axis: Axis = -1, keepdims: bool = False) -> Any:
    """``log(sum(exp(x), axis))`` computed without overflow for any finite input."""
    if not isinstance(x, Tensor):
        x = _array(x, "logsumexp")
    axis = _check_axis("logsumexp", x, axis)
    if x.size == 0:
        _check_nonempty("logsumexp", x, axis)
    return _logsumexp(x, axis=axis, keepdims=keepdims)


# ------------------------------------------------------------------- dtype
_astype = Primitive(
    "astype",
    lambda x, dtype: x.astype(dtype),
    # The values are unchanged, only their type: the gradient goes back in the input's dtype.
    # (Integer and boolean tensors never require grad, so only float casts reach the rule.)
    lambda g, ans, x, dtype: astype(g, x.dtype),
)


def astype(x: Any, dtype: npt.DTypeLike) -> Any:
    """``x`` converted to ``dtype``, always in a new array (``np.ndarray.astype``).

    The gradient is converted back to ``x``'s dtype. Being an op, it keeps values derived
    from integer data inside the graph: a float mask computed from class indices (as
    [`cross_entropy`][tinygrad_rnn.functional.cross_entropy] does for ``ignore_index``) is
    recomputed from each call's data by a [`jit`][tinygrad_rnn.jit.jit] replay.

    Args:
        x: a Tensor or array of any shape.
        dtype: a boolean, integer or floating-point numpy dtype.

    Returns:
        ``x``'s values in ``dtype``, of ``x``'s shape.

    Raises:
        TypeError: ``dtype`` is not a numpy dtype of booleans, integers or floats.
    """
    if not isinstance(x, (Tensor, np.ndarray)):
        x = _array(x, "astype")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"astype: dtype must be a numpy dtype, got {dtype!r:.60}") from None
    if dt.kind not in "biuf":
        raise TypeError(f"astype: dtype must be boolean, integer or floating point, got {dt}")
    return _astype(x, dtype=dt)


# ------------------------------------------------------------------ losses
def _target_flat_index(shape: tuple[int, ...], targets: np.ndarray, axis: int) -> np.ndarray:
    """Positions of the target entries in a C-ordered array of ``shape`` (classes on ``axis``)."""
    if axis == len(shape) - 1:  # the usual layout: row starts (cached) + targets
        return _row_starts(targets.size, shape[-1]) + targets.reshape(-1)
    positions = np.arange(math.prod(shape)).reshape(shape)
    return np.take_along_axis(positions, np.expand_dims(targets, axis), axis).reshape(-1)


_ROW_STARTS: dict[tuple[int, int], np.ndarray] = {}


def _row_starts(rows: int, stride: int) -> np.ndarray:
    """``arange(rows) * stride``, cached (read-only): the flat position of each row's start,
    the same few shapes on every step of a training loop."""
    key = (rows, stride)
    starts = _ROW_STARTS.get(key)
    if starts is None:
        if len(_ROW_STARTS) > 32:
            _ROW_STARTS.clear()
        starts = _ROW_STARTS[key] = np.arange(rows) * stride
        starts.flags.writeable = False
    return starts


def _checked_classes(
    logits: np.ndarray, targets: Any, axis: int, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """`_check_targets`, then `_kept`; the usual case (every target a class, none equal
    to ``ignore_index``) costs two reductions, the targets' minimum and maximum."""
    if (
        isinstance(targets, np.ndarray)
        and targets.dtype.kind in "iu"
        and targets.size
        and isinstance(axis, int)
        and 0 <= axis < logits.ndim
        and targets.shape == logits.shape[:axis] + logits.shape[axis + 1 :]
    ):
        low, high = targets.min(), targets.max()
        if 0 <= low and high < logits.shape[axis]:
            if ignore_index is None or not low <= ignore_index <= high:
                return targets, None
    _check_targets(logits, targets, axis, ignore_index)
    return _kept(targets, ignore_index)


def _check_targets(
    logits: np.ndarray, targets: Any, axis: int, ignore_index: int | None = None
) -> None:
    """Targets must be integer class indices of the logits' shape without ``axis``
    (or ``ignore_index``)."""
    name = "softmax_cross_entropy"
    if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
        raise TypeError(f"{name}: targets must be an integer array, got {type(targets).__name__}")
    if not (isinstance(axis, int) and 0 <= axis < logits.ndim):
        raise ValueError(f"{name}: axis must be in [0, {logits.ndim}), got {axis!r}")
    expected = logits.shape[:axis] + logits.shape[axis + 1 :]
    if targets.shape != expected:
        raise ValueError(
            f"{name}: targets have shape {targets.shape} but logits {logits.shape} with "
            f"classes on axis {axis} need {expected}"
        )
    n = logits.shape[axis]
    counted = targets if ignore_index is None else targets[targets != ignore_index]
    if counted.size and (counted.min() < 0 or counted.max() >= n):
        low, high = counted.min(), counted.max()
        raise IndexError(f"{name}: targets must lie in [0, {n}), got values in [{low}, {high}]")


def _kept(targets: Any, ignore_index: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The targets with ignored ones as class 0, and the mask of the others (None: all)."""
    t = _value(targets) if isinstance(targets, Tensor) else targets
    if ignore_index is None:
        return t, None
    keep = t != ignore_index
    if keep.all():  # the usual case: nothing to mask
        return t, None
    return np.where(keep, t, 0), keep


def _sum_classes(e: np.ndarray, axis: int, keepdims: bool) -> np.ndarray:
    """Row sums of ``e`` over the class ``axis``. Float32 with classes last: one product with
    ones (5x faster than ``sum(axis=-1)`` for 1,600 rows of 65 on this BLAS, rounded like
    any float32 dot product); otherwise numpy's sum (the float64 gradient checks)."""
    n = e.shape[axis]
    if e.dtype == np.float32 and axis == e.ndim - 1 and e.flags.c_contiguous and n:
        out = np.dot(e, _ones(n, e.dtype))
        return np.expand_dims(out, axis) if keepdims else out
    return e.sum(axis=axis, keepdims=keepdims)


def _softmax_xent(
    logits: np.ndarray,
    targets: np.ndarray,
    axis: int,
    ignore_index: int | None,
    keep_softmax: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The loss per row and, with ``keep_softmax``, the softmax (C order) it went through."""
    targets, keep = _checked_classes(logits, targets, axis, ignore_index)
    # logsumexp(x) - x[target], both taken after shifting by the row maximum, so huge
    # logits neither overflow nor lose the small differences that make up the loss.
    m = logits.max(axis=axis, keepdims=True)
    if not np.isfinite(m).all():  # an all -inf row keeps shift 0 (as in logsumexp)
        m = np.where(np.isfinite(m), m, 0)
    shifted = np.subtract(logits, m, order="C")  # C order: its flat positions are known
    picked = shifted.reshape(-1)[_target_flat_index(shifted.shape, targets, axis)]
    np.exp(shifted, out=shifted)  # the shifted logits are not needed any more
    sums = _sum_classes(shifted, axis, keepdims=False)
    with np.errstate(divide="ignore"):
        lse = np.log(sums)
    loss = lse - picked.reshape(lse.shape)
    if keep is not None:
        loss *= keep  # an ignored target counts for nothing
    if not keep_softmax:
        return loss, None
    with np.errstate(divide="ignore", invalid="ignore"):  # an all -inf row: NaN, as in eager
        shifted *= np.expand_dims(np.reciprocal(sums), axis)
    return loss, shifted


def _softmax_xent_forward(
    logits: np.ndarray, targets: np.ndarray, axis: int, ignore_index: int | None = None
) -> np.ndarray:
    return _softmax_xent(logits, targets, axis, ignore_index, keep_softmax=False)[0]


def _softmax_xent_saving(
    logits: np.ndarray, targets: np.ndarray, axis: int, ignore_index: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    # The softmax the loss computed anyway, kept for the gradient (``Primitive.saving``).
    return _softmax_xent(logits, targets, axis, ignore_index, keep_softmax=True)


def _one_hot_like(logits: Any, targets: Any, axis: int) -> np.ndarray:
    # ``targets`` is a Tensor when the op took them as an input and the rule runs under
    # ``create_graph``: the one-hot is a constant either way.
    out = np.zeros(logits.shape, dtype=logits.dtype)
    out.reshape(-1)[_target_flat_index(out.shape, _value(targets), axis)] = 1
    return out


def _softmax_xent_accumulate(
    buf: np.ndarray,
    g: np.ndarray,
    logits: np.ndarray,
    targets: np.ndarray,
    axis: int,
    ignore_index: int | None = None,
    residual: np.ndarray | None = None,
) -> None:
    # The rule below on arrays, in place: buf += g (softmax(logits) - onehot(targets)),
    # with the forward's softmax when it was kept (``residual``), else computed again.
    # C order whatever the layout of ``logits`` (a transposed view, batch first, ...): the
    # flat positions of the targets below are C-order positions, and ``reshape(-1)`` of
    # anything else would be a copy, so the subtraction would be lost.
    targets, keep = _kept(targets, ignore_index)
    if keep is not None:
        g = g * keep
    if residual is not None:
        p = residual * np.expand_dims(g, axis)  # a new array: the residual may be read again
    else:
        p = np.subtract(logits, logits.max(axis=axis, keepdims=True), order="C")
        np.exp(p, out=p)
        scale = _sum_classes(p, axis, keepdims=True)  # g / Σ exp per row, then one multiply
        np.divide(np.expand_dims(g, axis), scale, out=scale)
        p *= scale
    p.reshape(-1)[_target_flat_index(p.shape, targets, axis)] -= np.reshape(g, -1)
    buf += p


# Softmax cross-entropy per row, ``-log softmax(logits)[target]``, as one op: its gradient
# ``g (softmax - onehot)`` is what every hand-written BPTT uses for the output layer (∇o).
# ``targets`` (integer class indices, never differentiated) may be passed as a keyword or as
# the second input; as an input it may be computed by other ops (``F.cross_entropy`` maps
# ``ignore_index`` to a valid class that way), which a jit replay then recomputes per call.
def _softmax_xent_rule(
    g: Any,
    ans: Any,
    logits: Any,
    targets: Any,
    axis: int,
    ignore_index: int | None = None,
    residual: Any = None,
) -> Any:
    # Written with ops (the definition, differentiable again): the saved softmax
    # (``residual``) is for the array form above.
    classes, keep = _kept(targets, ignore_index)
    if keep is not None:  # a constant mask: an ignored target passes no gradient
        g = g * _like(keep, g)
    return _expand_reduced(g, logits.shape, axis, False) * (
        exp(logits - logsumexp(logits, axis=axis, keepdims=True))
        - _one_hot_like(logits, classes, axis)
    )


# ``ignore_index``: targets equal to it give loss 0 and no gradient (PyTorch's option).
softmax_cross_entropy = Primitive(
    "softmax_cross_entropy",
    _softmax_xent_forward,
    _softmax_xent_rule,
    accumulate=_softmax_xent_accumulate,
    saving=_softmax_xent_saving,
)

# -------------------------------------------------------------- shape ops
_reshape = Primitive(
    "reshape",
    lambda x, shape: np.reshape(x, shape),
    lambda g, ans, x, shape: reshape(g, x.shape),
)


def reshape(x: Any, shape: Sequence[int]) -> Any:
    """Same elements, new ``shape`` (one entry may be -1)."""
    shape = tuple(shape)
    try:
        x_shape = x.shape
    except AttributeError:  # a list or None: only reached on bad input
        x = _array(x, "reshape")
        x_shape = x.shape
    if x_shape == shape:
        return x
    return _reshape(x, shape=shape)


def _inverse_permutation(axes: tuple[int, ...] | None) -> tuple[int, ...] | None:
    return None if axes is None else tuple(int(i) for i in np.argsort(axes))


_transpose = Primitive(
    "transpose",
    lambda x, axes: np.transpose(x, axes),
    lambda g, ans, x, axes: transpose(g, _inverse_permutation(axes)),
)


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute the axes (reverse them when ``axes`` is None), like ``np.transpose``."""
    if not isinstance(x, (Tensor, np.ndarray)):
        x = _array(x, "transpose")
    if axes is None:
        return _transpose(x, axes=None)
    axes = tuple(int(a) for a in axes)
    in_range = all(-x.ndim <= a < x.ndim for a in axes)
    if not in_range or sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of {x.ndim} axes")
    # Normalised, so the backward's inverse permutation is right for negative axes too.
    return _transpose(x, axes=tuple(a % x.ndim for a in axes))


def _is_basic_index(index: Any) -> bool:
    """Basic indices (ints, slices, None, ...) never repeat an element: a plain write scatters."""
    parts = index if isinstance(index, tuple) else (index,)
    basic = (slice, int, np.integer)
    return all(p is None or p is Ellipsis or isinstance(p, basic) for p in parts)


def _scatter_into(out: np.ndarray, g: np.ndarray, index: Any) -> None:
    """Add ``g`` into ``out[index]`` in place; repeated advanced indices add up."""
    if type(index) is int or _is_basic_index(index):
        out[index] += g
    else:
        np.add.at(out, index, g)


def _scatter_forward(g: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    _scatter_into(out, g, index)
    return out


_scatter = Primitive(
    "scatter_add",
    _scatter_forward,
    lambda g, ans, x, shape, index: getitem(g, index),
)
_getitem = Primitive(
    "getitem",
    lambda x, index: np.asarray(x[index]),
    lambda g, ans, x, index: _scatter(g, shape=x.shape, index=index),
    # The same rule, written into the engine's gradient buffer for ``x`` (no zero padding).
    accumulate=lambda buf, g, x, index: _scatter_into(buf, g, index),
    shape_only=(0,),  # the rules read x's shape only: slicing a step never keeps the whole
)


def _normalize_index(index: Any) -> Any:
    """Turn Tensors and lists inside an index into arrays numpy understands."""
    if isinstance(index, tuple):
        return tuple(_normalize_index(i) for i in index)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, list):
        # An empty list would become a float array; it selects nothing.
        try:
            index = np.asarray(index) if len(index) else np.zeros(0, dtype=np.intp)
        except (TypeError, ValueError) as exc:
            raise IndexError(
                f"getitem: cannot make an index array from {index!r:.60}: {exc}"
            ) from None
    if isinstance(index, np.ndarray) and index.dtype.kind not in "biu":
        raise IndexError(f"getitem: index arrays must be integer or boolean, got {index.dtype}")
    return index


def getitem(x: Any, index: Any) -> Any:
    """``x[index]`` for basic slices, integer arrays and boolean masks.

    The backward scatters the gradient into zeros of ``x``'s shape, adding up
    repeated indices.
    """
    if type(index) is int:  # x[t], once per time step: nothing to normalise
        return _getitem(x, index=index)
    return _getitem(x, index=_normalize_index(index))


def _concat_grad(
    i: int, g: Any, ans: Any, xs: tuple[Any, ...], axis: int, bounds: tuple[int, ...] = ()
) -> Any:
    # ``bounds`` (offsets along ``axis``) is computed once by ``concat``, so each input's rule
    # is O(1) and joining n tensors costs O(n), not O(n²); without it they are summed here.
    ax = axis % g.ndim
    if not bounds:
        bounds = (0, *itertools.accumulate(x.shape[ax] for x in xs))
    # Plain indexing: a view of an array, the getitem op on a Tensor.
    return g[(slice(None),) * ax + (slice(bounds[i], bounds[i + 1]),)]


def _stack_grad(i: int, g: Any, ans: Any, xs: tuple[Any, ...], axis: int) -> Any:
    ax = axis % g.ndim
    # The Ellipsis keeps a 0-d result an array (numpy would return a scalar for g[i]).
    return g[i, ...] if ax == 0 else g[(slice(None),) * ax + (i, ...)]


_concat = Primitive(
    "concat", lambda *xs, axis, bounds=(): np.concatenate(xs, axis=axis), vjp_n=_concat_grad
)


def _stack_forward(*xs: np.ndarray, axis: int) -> np.ndarray:
    first = xs[0].shape
    if axis == 0 and first and all(x.shape == first for x in xs):
        # The same result as np.stack, which for many small arrays (a sequence's hidden
        # states) spends most of its time adding an axis to each one.
        return np.concatenate(xs).reshape(len(xs), *first)
    return np.stack(xs, axis=axis)


def _stack_grad_all(g: np.ndarray, ans: Any, xs: tuple[Any, ...], axis: int) -> list[Any]:
    # ``_stack_grad`` for every input in one call: the views g[0], g[1], ... along ``axis``.
    moved = np.moveaxis(g, axis, 0) if axis % g.ndim else g
    return [moved[i, ...] for i in range(len(xs))]


_stack = Primitive("stack", _stack_forward, vjp_n=_stack_grad, vjp_all=_stack_grad_all)


def _join_args(name: str, tensors: Any, axis: Any, new_axis: bool) -> tuple[list[Any], int]:
    """Check ``concat``/``stack`` arguments: a sequence of tensors and an axis in range."""
    if isinstance(tensors, (str, bytes)) or not isinstance(tensors, Iterable):
        raise TypeError(
            f"{name}: tensors must be a sequence of Tensors, got {type(tensors).__name__}"
        )
    items = list(tensors)
    if len(items) == 0:
        raise ValueError(f"{name}: need at least one tensor")
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}: axis must be an int, got {type(axis).__name__}") from None
    first = items[0]
    ndim = first.ndim if isinstance(first, (Tensor, np.ndarray)) else np.ndim(first)
    n = ndim + 1 if new_axis else ndim
    if n and not -n <= ax < n:  # 0-d inputs to concat are left to numpy's own error
        raise ValueError(f"{name}: axis {ax} is out of bounds for array of dimension {n}")
    return items, ax


def concat(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join tensors along an existing ``axis`` (``np.concatenate``)."""
    items, ax = _join_args("concat", tensors, axis, new_axis=False)
    try:
        bounds = (0, *itertools.accumulate(np.shape(x)[ax] for x in items))
    except IndexError:  # 0-d inputs: numpy's concatenate reports it
        bounds = ()
    return _concat(*items, axis=ax, bounds=bounds)


def stack(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Join same-shape tensors along a new ``axis`` (``np.stack``)."""
    items, ax = _join_args("stack", tensors, axis, new_axis=True)
    return _stack(*items, axis=ax)


def split(x: Any, sections: int | Sequence[int], axis: int = 0) -> list[Any]:
    """Split like ``np.split``: ``sections`` equal parts, or at the given indices."""
    if not isinstance(x, Tensor):
        x = _array(x, "split")
    axis = _check_axis("split", x, axis)  # type: ignore[assignment]
    if x.ndim == 0:
        raise ValueError("split: cannot split a 0-d tensor")
    length = x.shape[axis]
    if isinstance(sections, (int, np.integer)):
        if sections <= 0 or length % sections:
            raise ValueError(
                f"split: axis {axis} of length {length} does not split into {sections} equal parts"
            )
        bounds = [length // sections * k for k in range(sections + 1)]
    else:
        try:
            bounds = [0, *(operator.index(s) for s in sections), length]
        except TypeError:
            raise TypeError(
                f"split: sections must be an int or a sequence of int indices, got {sections!r:.60}"
            ) from None
    lead = (slice(None),) * (axis % x.ndim)
    # Plain slices need no normalising (getitem's work for Tensors and lists inside an
    # index): an LSTM step splits its gates this way every step.
    return [_getitem(x, index=(*lead, slice(a, b))) for a, b in itertools.pairwise(bounds)]


def chunk(x: Any, chunks: int, axis: int = 0) -> list[Any]:
    """Split into ``chunks`` parts of equal size (the last may be smaller), as in PyTorch."""
    if not isinstance(x, Tensor):
        x = _array(x, "chunk")
    axis = _check_axis("chunk", x, axis)  # type: ignore[assignment]
    if x.ndim == 0:
        raise ValueError("chunk: cannot chunk a 0-d tensor")
    try:
        chunks = operator.index(chunks)
    except TypeError:
        raise TypeError(f"chunk: chunks must be an int, got {chunks!r:.60}") from None
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    length = x.shape[axis]
    if length == 0:
        return [getitem(x, (slice(None),) * (axis % x.ndim) + (slice(0, 0),))]
    size = -(-length // chunks)
    return split(x, list(range(size, length, size)), axis=axis)
