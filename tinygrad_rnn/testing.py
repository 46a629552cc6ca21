"""Hypothesis strategies for property-based derivative tests of your own functions.

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
from collections.abc import Sequence
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from tinygrad_rnn.tensor import Tensor

__all__ = [
    "broadcastable_shapes",
    "distinct_float_arrays",
    "float_arrays",
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
