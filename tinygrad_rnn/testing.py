"""Hypothesis strategies for property-based derivative tests of your own functions and cells.

Everything here draws small, well-conditioned inputs: finite, bounded values that
can be kept away from zero (for ``log``, division, ``pow``) and away from kinks
(``relu``, ``abs``, ``clip``), so that finite differences are trustworthy. A
typical test::

    from hypothesis import given
    import tinygrad_rnn as tg
    from tinygrad_rnn.testing import tensors, shapes

    @given(tensors(shapes(max_dims=3, max_side=4), min_magnitude=0.5))
    def test_my_function(x):
        assert tg.gradcheck(lambda t: (t * t.abs().log()).tanh(), [x])

For recurrent code there are strategies for the sizes of a problem
([`rnn_sizes`][tinygrad_rnn.testing.rnn_sizes]), input sequences
([`sequences`][tinygrad_rnn.testing.sequences]), sequence lengths
([`lengths`][tinygrad_rnn.testing.lengths]) and per-step loss masks
([`masks`][tinygrad_rnn.testing.masks]), and
[`check_cell_gradients`][tinygrad_rnn.testing.check_cell_gradients], which checks a cell's
gradients through a whole unrolled sequence (BPTT) against finite differences::

    import numpy as np
    from hypothesis import given, strategies as st
    from tinygrad_rnn import nn
    from tinygrad_rnn.testing import check_cell_gradients, rnn_sizes, sequences

    @given(st.data())
    def test_my_cell(data):
        s = data.draw(rnn_sizes())
        xs = data.draw(sequences(s.seq_len, s.batch, s.input_size))
        cell = nn.GRUCell(s.input_size, s.hidden_size, dtype=np.float64)
        assert check_cell_gradients(cell, xs)  # every parameter, the inputs

Needs the optional dependency ``hypothesis`` (``pip install 'tinygrad-rnn[dev]'``).
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401 - imported first so a missing package gets a clear message
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
    from hypothesis.extra import numpy as hnp
except ImportError as e:  # pragma: no cover - exercised only without hypothesis
    raise ImportError(
        "tinygrad_rnn.testing needs hypothesis: pip install 'tinygrad-rnn[dev]'"
    ) from e

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from tinygrad_rnn.engine import grad
from tinygrad_rnn.gradcheck import (
    GradcheckError,
    _central_differences,
    _check_eps,
    _describe_mismatch,
    _worst_mismatch,
)
from tinygrad_rnn.tensor import Tensor

__all__ = [
    "RNNSizes",
    "broadcastable_shapes",
    "check_cell_gradients",
    "distinct_float_arrays",
    "float_arrays",
    "lengths",
    "masks",
    "rnn_sizes",
    "sequences",
    "shapes",
    "tensors",
]

Shape = tuple[int, ...]
ShapeLike = int | Sequence[int] | st.SearchStrategy[Shape]

#: How far values are kept from each point of ``avoid`` (a guaranteed lower bound).
AVOID_DISTANCE = 1e-3
# Internal margins are a little wider than promised, so rounding a drawn float64 to
# float32 can never bring a value inside the promised distance.
_MARGIN = 1.01


def shapes(
    min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5
) -> st.SearchStrategy[Shape]:
    """Array shapes with ``min_dims..max_dims`` axes of length ``min_side..max_side``.

    Example: ``shapes(max_dims=2, max_side=3)`` draws shapes such as ``()``, ``(3,)``
    or ``(2, 1)``.
    """
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    num_shapes: int = 2,
    min_dims: int = 0,
    max_dims: int = 4,
    min_side: int = 1,
    max_side: int = 5,
) -> st.SearchStrategy[tuple[Shape, ...]]:
    """Tuples of ``num_shapes`` shapes that broadcast together under numpy's rules.

    Example: ``broadcastable_shapes(2, max_dims=3)`` draws pairs such as
    ``((4, 1, 3), (2, 3))`` or ``((), (5,))``; ``np.broadcast_shapes(*pair)`` never
    raises. Sides of length 1 and missing leading axes both occur.
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes,
        min_dims=min_dims,
        max_dims=max_dims,
        min_side=min_side,
        max_side=max_side,
    ).map(lambda bs: tuple(bs.input_shapes))


def _allowed_intervals(
    min_value: float, max_value: float, min_magnitude: float, avoid: Sequence[float]
) -> list[tuple[float, float]]:
    """[min_value, max_value] minus (-min_magnitude, min_magnitude) and the avoid zones."""
    holes = [(-min_magnitude * _MARGIN, min_magnitude * _MARGIN)] if min_magnitude > 0 else []
    holes += [(p - AVOID_DISTANCE * _MARGIN, p + AVOID_DISTANCE * _MARGIN) for p in avoid]
    intervals = [(float(min_value), float(max_value))]
    for lo_h, hi_h in holes:
        nxt: list[tuple[float, float]] = []
        for lo, hi in intervals:
            if hi_h <= lo or lo_h >= hi:  # the hole misses this interval
                nxt.append((lo, hi))
                continue
            if lo < lo_h:
                nxt.append((lo, lo_h))
            if hi_h < hi:
                nxt.append((hi_h, hi))
        intervals = nxt
    return intervals


def _round_inward(lo: float, hi: float, dt: np.dtype[Any]) -> tuple[float, float] | None:
    """[lo, hi] shrunk to bounds exactly representable in ``dt`` (None if nothing is left)."""
    flo, fhi = dt.type(lo), dt.type(hi)
    if float(flo) < lo:
        flo = np.nextafter(flo, dt.type(np.inf))
    if float(fhi) > hi:
        fhi = np.nextafter(fhi, dt.type(-np.inf))
    return (float(flo), float(fhi)) if flo <= fhi else None


def _check_bounds(min_value: float, max_value: float) -> None:
    if not (math.isfinite(min_value) and math.isfinite(max_value)):
        raise InvalidArgument(f"bounds must be finite, got [{min_value}, {max_value}]")
    if min_value > max_value:
        raise InvalidArgument(f"min_value={min_value} is larger than max_value={max_value}")


def _as_shape(shape: ShapeLike) -> Shape | st.SearchStrategy[Shape]:
    if isinstance(shape, st.SearchStrategy):
        return shape
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def float_arrays(
    shape: ShapeLike,
    dtype: npt.DTypeLike = np.float64,
    min_value: float = -3.0,
    max_value: float = 3.0,
    min_magnitude: float = 0.0,
    avoid: Sequence[float] = (),
) -> st.SearchStrategy[np.ndarray]:
    """Well-conditioned floating-point arrays of ``shape`` (a tuple, an int or a strategy).

    Every value is finite and lies in ``[min_value, max_value]``; with
    ``min_magnitude > 0`` also ``|x| >= min_magnitude`` (for ``log``, division,
    negative powers); and every value is at least ``1e-3`` away from each point of
    ``avoid`` (kinks: ``avoid=(0.0,)`` for ``relu``/``abs``, ``avoid=(-1.0, 1.0)`` for
    ``clip(-1, 1)``). Values may repeat (use
    [`distinct_float_arrays`][tinygrad_rnn.testing.distinct_float_arrays] for ties-free data).

    Examples:
        ``float_arrays((2, 3))`` -> a float64 array of shape (2, 3) with values in [-3, 3].
        ``float_arrays(shapes(), min_value=0.1)`` -> positive arrays of any small shape.
        ``float_arrays(4, np.float32, min_magnitude=0.5)`` -> float32 with |x| >= 0.5.
    """
    _check_bounds(min_value, max_value)
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise InvalidArgument(f"float_arrays: dtype must be floating point, got {dt}")
    intervals = _allowed_intervals(min_value, max_value, min_magnitude, avoid)
    if not intervals:
        raise InvalidArgument(
            f"float_arrays: no value of [{min_value}, {max_value}] has |x| >= {min_magnitude} "
            f"and keeps {AVOID_DISTANCE} away from {tuple(avoid)}"
        )
    if dt.itemsize not in (2, 4, 8):
        raise InvalidArgument(f"float_arrays: dtype must be float16, float32 or float64, got {dt}")
    width = cast(Literal[16, 32, 64], 8 * dt.itemsize)
    inward = [_round_inward(lo, hi, dt) for lo, hi in intervals]
    representable = [iv for iv in inward if iv is not None]
    if not representable:
        raise InvalidArgument(f"float_arrays: no {dt} value satisfies the constraints")
    elements = st.one_of(
        *(
            st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=width)
            for lo, hi in representable
        )
    )
    return hnp.arrays(dt, _as_shape(shape), elements=elements)


@st.composite
def _distinct(
    draw: Any,
    shape: ShapeLike,
    dtype: np.dtype[Any],
    min_value: float,
    max_value: float,
    min_gap: float,
) -> np.ndarray:
    shp = _as_shape(shape)
    if isinstance(shp, st.SearchStrategy):
        shp = draw(shp)
    size = math.prod(shp)
    bounds = _round_inward(min_value, max_value, dtype)
    step = min_gap * _MARGIN
    # Sorted offsets u_0 <= u_1 <= ... in [0, free], then value_i = lo + u_i + i * step:
    # consecutive values are at least ``step`` apart and the last stays <= hi.
    free = -1.0 if bounds is None else bounds[1] - bounds[0] - (size - 1) * step
    if free < 0:
        raise InvalidArgument(
            f"distinct_float_arrays: {size} values {min_gap} apart (shape {shp}) do not fit "
            f"in [{min_value}, {max_value}]"
        )
    assert bounds is not None
    u = np.sort(draw(hnp.arrays(np.float64, (size,), elements=st.floats(0.0, free))))
    values = np.clip(bounds[0] + u + step * np.arange(size), bounds[0], bounds[1])
    order = draw(st.permutations(range(size)))
    return values[list(order)].reshape(shp).astype(dtype)


def distinct_float_arrays(
    shape: ShapeLike,
    dtype: npt.DTypeLike = np.float64,
    min_value: float = -3.0,
    max_value: float = 3.0,
    min_gap: float = 1e-3,
) -> st.SearchStrategy[np.ndarray]:
    """Arrays whose values are pairwise at least ``min_gap`` apart: no ties.

    For ``max``/``min`` reductions and ``maximum``/``minimum``, whose derivative
    jumps where two values are equal; the gap keeps finite differences (steps of
    ~1e-6) from swapping the order. Values lie in ``[min_value, max_value]``.

    Example: ``distinct_float_arrays((3, 4))`` -> 12 distinct float64 values in [-3, 3].
    Draw the operands of a binary op as one array and split it, so that they are
    distinct from each other as well.
    """
    _check_bounds(min_value, max_value)
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise InvalidArgument(f"distinct_float_arrays: dtype must be floating point, got {dt}")
    if not min_gap > 0:
        raise InvalidArgument(f"distinct_float_arrays: min_gap must be positive, got {min_gap}")
    return _distinct(shape, dt, float(min_value), float(max_value), float(min_gap))


def tensors(
    shape: ShapeLike,
    dtype: npt.DTypeLike = np.float64,
    requires_grad: bool = True,
    **float_array_kwargs: Any,
) -> st.SearchStrategy[Tensor]:
    """Tensors over [`float_arrays`][tinygrad_rnn.testing.float_arrays] (same keyword arguments), by
    default requiring grad.

    Example: ``tensors((2, 3), min_value=0.1)`` -> a float64 leaf of shape (2, 3),
    positive, with ``requires_grad=True``, ready for ``tinygrad_rnn.gradcheck``.
    """
    return float_arrays(shape, dtype=dtype, **float_array_kwargs).map(
        lambda a: Tensor(a, requires_grad=requires_grad)
    )


# ------------------------------------------------------------------ recurrent problems
IntLike = int | st.SearchStrategy[int]


class RNNSizes(NamedTuple):
    """The sizes of a recurrent problem, drawn by [`rnn_sizes`][tinygrad_rnn.testing.rnn_sizes].

    Inputs are ``(seq_len, batch, input_size)`` (time first), states ``(batch, hidden_size)``.
    """

    seq_len: int
    batch: int
    input_size: int
    hidden_size: int


def _size_range(name: str, lo: int, hi: int) -> st.SearchStrategy[int]:
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo < 1 or lo > hi:
        raise InvalidArgument(f"rnn_sizes: need 1 <= min_{name} <= max_{name}, got [{lo}, {hi}]")
    return st.integers(lo, hi)


def rnn_sizes(
    max_seq_len: int = 5,
    max_batch: int = 3,
    max_input_size: int = 4,
    max_hidden_size: int = 4,
    min_seq_len: int = 1,
    min_batch: int = 1,
    min_input_size: int = 1,
    min_hidden_size: int = 1,
) -> st.SearchStrategy[RNNSizes]:
    """Sizes of a recurrent problem, each within its ``[min, max]`` (all at least 1).

    The defaults are small enough for finite differences over a whole sequence (a few
    hundred entries): an LSTM of hidden size 4 has 144 parameters. ``T = 1`` (a single step)
    and ``batch = 1`` are drawn too.

    Example: ``rnn_sizes(max_seq_len=3)`` draws values such as
    ``RNNSizes(seq_len=2, batch=1, input_size=3, hidden_size=4)``.
    """
    return st.builds(
        RNNSizes,
        _size_range("seq_len", min_seq_len, max_seq_len),
        _size_range("batch", min_batch, max_batch),
        _size_range("input_size", min_input_size, max_input_size),
        _size_range("hidden_size", min_hidden_size, max_hidden_size),
    )


def _int_strategy(value: IntLike, name: str, where: str, low: int) -> st.SearchStrategy[int]:
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidArgument(
            f"{where}: {name} must be an int >= {low} or a strategy, got {value!r}"
        )
    return st.just(int(value))


def sequences(
    seq_len: IntLike,
    batch: IntLike | None,
    features: IntLike,
    dtype: npt.DTypeLike = np.float64,
    min_value: float = -1.0,
    max_value: float = 1.0,
    **float_array_kwargs: Any,
) -> st.SearchStrategy[np.ndarray]:
    """Input sequences: float arrays of shape ``(seq_len, batch, features)``, time first.

    Each size is an int or a strategy of ints; ``batch=None`` gives unbatched ``(seq_len,
    features)``. Values lie in ``[min_value, max_value]`` (default ``[-1, 1]``, inputs of
    unit scale, which keep ``tanh`` and ``sigmoid`` gates away from saturation); the other
    keyword arguments are those of [`float_arrays`][tinygrad_rnn.testing.float_arrays].

    Example: ``sequences(4, 2, 3)`` -> a float64 array of shape (4, 2, 3) in [-1, 1].
    """
    parts = [_int_strategy(seq_len, "seq_len", "sequences", 1)]
    if batch is not None:
        parts.append(_int_strategy(batch, "batch", "sequences", 1))
    parts.append(_int_strategy(features, "features", "sequences", 1))
    return st.tuples(*parts).flatmap(
        lambda shape: float_arrays(
            shape, dtype, min_value=min_value, max_value=max_value, **float_array_kwargs
        )
    )


@st.composite
def _lengths(
    draw: Any,
    batch: st.SearchStrategy[int],
    max_len: st.SearchStrategy[int],
    min_len: int,
    order: bool,
) -> np.ndarray:
    b, top = draw(batch), draw(max_len)
    if top < min_len:
        raise InvalidArgument(f"lengths: max_len={top} is smaller than min_len={min_len}")
    values = draw(st.lists(st.integers(min_len, top), min_size=b, max_size=b))
    if order:
        values.sort(reverse=True)
    return np.array(values, dtype=np.int64)


def lengths(
    batch: IntLike, max_len: IntLike, min_len: int = 1, sorted: bool = False
) -> st.SearchStrategy[np.ndarray]:
    """The lengths of ``batch`` sequences padded to ``max_len`` steps: int64 arrays ``(batch,)``.

    Every length lies in ``[min_len, max_len]`` (so no sequence is empty by default); the
    longest need not equal ``max_len``. With ``sorted=True`` they are non-increasing, the
    order ``pack_padded_sequence(..., enforce_sorted=True)`` expects. ``batch`` and
    ``max_len`` are ints or strategies of ints.

    Example: ``lengths(3, 5, sorted=True)`` draws arrays such as ``[5, 2, 2]``.
    """
    if isinstance(min_len, bool) or not isinstance(min_len, (int, np.integer)) or min_len < 0:
        raise InvalidArgument(f"lengths: min_len must be an int >= 0, got {min_len!r}")
    return _lengths(
        _int_strategy(batch, "batch", "lengths", 1),
        _int_strategy(max_len, "max_len", "lengths", 0),
        int(min_len),
        bool(sorted),
    )


@st.composite
def _masks(
    draw: Any,
    seq_len: st.SearchStrategy[int],
    batch: st.SearchStrategy[int],
    dtype: np.dtype[Any],
    prefix: bool,
) -> np.ndarray:
    t, b = draw(seq_len), draw(batch)
    if prefix:  # each column: ones for its sequence's steps, then zeros (padding)
        steps = draw(lengths(b, t))
        return (np.arange(t)[:, None] < steps[None, :]).astype(dtype)
    m = np.array(draw(st.lists(st.booleans(), min_size=t * b, max_size=t * b))).reshape(t, b)
    if not m.any():  # at least one step carries a loss, so a mean over the mask is defined
        m.reshape(-1)[draw(st.integers(0, t * b - 1))] = True
    return m.astype(dtype)


def masks(
    seq_len: IntLike, batch: IntLike, dtype: npt.DTypeLike = np.float64, prefix: bool = False
) -> st.SearchStrategy[np.ndarray]:
    """Per-step loss masks: 0/1 arrays of shape ``(seq_len, batch)`` with at least one 1.

    ``mask[t, b] = 1`` where step ``t`` of sequence ``b`` carries a loss, the ``mask=`` of
    [`cross_entropy`][tinygrad_rnn.functional.cross_entropy] and the losses of
    [`tinygrad_rnn.nn`][tinygrad_rnn.nn]. By default any pattern with at least one 1
    (many-to-one, sparse labels, ...); with ``prefix=True`` every column is ones then
    zeros, at least one 1 each: the mask of a batch of sequences of different lengths padded
    at the end (``mask[t, b] = t < lengths[b]``).

    Example: ``masks(4, 2, prefix=True)`` draws arrays such as
    ``[[1, 1], [1, 1], [1, 0], [0, 0]]``.
    """
    dt = np.dtype(dtype)
    if dt.kind not in "biuf":
        raise InvalidArgument(f"masks: dtype must be boolean, integer or float, got {dt}")
    return _masks(
        _int_strategy(seq_len, "seq_len", "masks", 1),
        _int_strategy(batch, "batch", "masks", 1),
        dt,
        bool(prefix),
    )


# --------------------------------------------------------- the gradients of a user's cell
def _state_leaves(state: Any, where: str) -> Any:
    """The initial state as float64 leaf copies requiring grad, in the same structure."""
    if isinstance(state, (tuple, list)):
        return type(state)(_state_leaves(s, where) for s in state)
    data = state.data if isinstance(state, Tensor) else np.asarray(state)
    if data.dtype != np.float64:
        raise TypeError(f"{where}: state0 has dtype {data.dtype}; finite differences need float64")
    return Tensor(data, requires_grad=True)


def _flat_tensors(value: Any, name: str) -> list[tuple[str, Tensor]]:
    """The Tensors in a state (a Tensor or nested tuples/lists), each with its name."""
    if isinstance(value, Tensor):
        return [(name, value)]
    if isinstance(value, (tuple, list)):
        return [pair for i, v in enumerate(value) for pair in _flat_tensors(v, f"{name}[{i}]")]
    raise TypeError(
        f"check_cell_gradients: the cell must return a Tensor or a tuple of Tensors (its "
        f"new state), got {type(value).__name__} in {name}"
    )


def _named_params(params: Any, cell: Any) -> list[tuple[str, Tensor]]:
    """``params`` with names: the cell's own names for its parameters, else ``.name``."""
    own = dict(cell.named_parameters()) if hasattr(cell, "named_parameters") else {}
    if params is None:
        return [(f"parameter {n!r}", p) for n, p in own.items()]
    if hasattr(params, "named_parameters"):  # another Module
        return [(f"parameter {n!r}", p) for n, p in params.named_parameters()]
    if isinstance(params, Tensor):
        params = [params]
    if not isinstance(params, Iterable) or isinstance(params, (str, bytes)):
        raise TypeError(
            "check_cell_gradients: params must be a Module or a sequence of Tensors, got "
            f"{type(params).__name__}"
        )
    names = {id(p): n for n, p in own.items()}
    named = []
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(
                f"check_cell_gradients: params[{i}] is a {type(p).__name__}, not a Tensor"
            )
        name = names.get(id(p)) or p.name
        named.append((f"parameter {name!r}" if name else f"params[{i}]", p))
    return named


def check_cell_gradients(
    cell: Callable[[Tensor, Any], Any],
    inputs: Any,
    params: Any = None,
    state0: Any = None,
    loss: Callable[[list[Any]], Tensor] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check a recurrent cell's gradients through a whole sequence against finite differences.

    Unrolls ``state_t = cell(inputs[t], state_{t-1})`` over all ``T`` steps from ``state0``,
    takes a loss of every step's state, and compares autograd's gradient of that loss (BPTT,
    through every step) with float64 central differences, for every parameter in
    ``params``, for the input sequence and for the initial state. The default loss is
    ``Σ_t Σ v_t ⊙ state_t`` with fixed random weights ``v_t`` (every component of every
    state, ``c_t`` of an LSTM too), which tests the whole vector-Jacobian product.
    It is the property test of a hand-written cell: a wrong derivative rule, a
    ``.detach()`` on the recurrent path or numpy arithmetic on ``.data`` inside the cell
    all fail it. Uses the machinery of [`gradcheck`][tinygrad_rnn.gradcheck.gradcheck].

    Args:
        cell: ``cell(x_t, state) -> new state``, as the cells of
            [`tinygrad_rnn.nn`][tinygrad_rnn.nn] (a Tensor, or a tuple such as LSTM's
            ``(h, c)``); it reads its parameters itself.
        inputs: the sequence, float64 ``(T, B, D)`` (or ``(T, D)``), an array or a Tensor
            (copied: the caller's is not changed).
        params: the parameters to check: a sequence of float64 Tensors (those a cell
            function reads from its closure) or a Module. None (the default) takes every
            parameter of ``cell`` if it is a Module, else none (``()`` checks none). Their
            values are perturbed during the check and put back exactly; ``.grad`` is
            left alone.
        state0: the initial state in the cell's structure (float64 arrays or Tensors,
            copied), or None for the cell's default (whose gradient is then not checked).
        loss: optional ``loss(states) -> 0-d Tensor`` of the list of the ``T`` states
            (e.g. a head and a cross-entropy) instead of the random weighted sum.
        eps: the finite-difference step.
        atol, rtol: an entry passes when ``|analytic − numeric| <= atol + rtol·|numeric|``.
        seed: seeds the default loss's weights.

    Returns:
        True when every entry passes.

    Raises:
        GradcheckError: (an ``AssertionError``) some entry fails: the message names the
            tensor (``parameter 'weight_hh'``, ``inputs``, ``state0[1]``), the index and the
            two values of the worst entry of all, and every tensor that fails.
        TypeError: a tensor that is not float64; a cell that does not return Tensors.
        ValueError: an empty sequence, a bad ``eps``, a loss that is not one number.
    """
    where = "check_cell_gradients"
    eps = _check_eps(eps, where)
    if not callable(cell):
        raise TypeError(f"{where}: cell must be callable, got {type(cell).__name__}")
    data = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
    if data.dtype != np.float64:
        raise TypeError(f"{where}: inputs have dtype {data.dtype}; finite differences need float64")
    if data.ndim < 2 or data.shape[0] == 0:
        raise ValueError(
            f"{where}: inputs must be a sequence (T, B, D) or (T, D) with T >= 1, "
            f"got shape {data.shape}"
        )
    xs = Tensor(data, requires_grad=True)  # a copy: the check perturbs it
    h0 = None if state0 is None else _state_leaves(state0, where)
    checked: list[tuple[str, Tensor]] = [("inputs", xs)]
    if h0 is not None:
        checked += _flat_tensors(h0, "state0")
    named_params = _named_params(params, cell)
    for name, p in named_params:
        if p.dtype != np.float64:
            raise TypeError(
                f"{where}: {name} has dtype {p.dtype}; finite differences need float64 "
                "(build the cell with dtype=np.float64)"
            )
    checked += named_params
    weights: list[np.ndarray] = []
    rng = np.random.default_rng(seed)

    def total() -> Tensor:
        state, states = h0, []
        for t in range(data.shape[0]):
            state = cell(xs[t], state)
            states.append(state)
        if loss is not None:
            out = loss(states)
            if not isinstance(out, Tensor) or out.size != 1:
                raise ValueError(f"{where}: loss must return a Tensor with one element")
            return out
        parts = [t for i, s in enumerate(states) for _, t in _flat_tensors(s, f"state_{i}")]
        if not weights:
            weights.extend(rng.standard_normal(t.shape) for t in parts)
        return sum(((t * w).sum() for t, w in zip(parts, weights)), Tensor(0.0))

    value = total()
    tensors_ = [t for _, t in checked]
    analytic = grad(value, tensors_, allow_unused=True) if value.requires_grad else None
    failures: list[tuple[float, str, str]] = []  # (excess, name, the worst entry described)
    for k, (name, t) in enumerate(checked):
        a = None if analytic is None else analytic[k]
        a_arr = np.zeros(t.shape) if a is None else np.asarray(a.data, dtype=np.float64)
        numeric = _central_differences(lambda: float(total().item()), t, eps)
        worst = _worst_mismatch(a_arr, numeric, atol, rtol)
        if worst is not None:
            idx, excess = worst
            entry = _describe_mismatch(a_arr, numeric, idx, atol, rtol)
            failures.append((excess, name, f"{name} (shape {t.shape}) at index {idx}: {entry}"))
    if failures:
        failures.sort(key=lambda f: -f[0])
        others = ", ".join(name for _, name, _ in failures[1:])
        raise GradcheckError(
            f"{where}: autograd's gradient through {data.shape[0]} steps disagrees with "
            f"central differences; the worst entry is {failures[0][2]}"
            + (f". Also failing: {others}" if others else "")
        )
    return True
