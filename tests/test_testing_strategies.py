"""Tests of the public hypothesis strategies in ``tinygrad_rnn.testing``.

Each strategy's promise is checked on every drawn example (bounds, dtypes,
distances), and ``hypothesis.find`` checks that the promise is not kept by being
over-cautious: the edges of the allowed region are actually reached.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import tinygrad_rnn as tg
import tinygrad_rnn.testing as tt
from tinygrad_rnn.testing import (
    broadcastable_shapes,
    distinct_float_arrays,
    float_arrays,
    shapes,
    tensors,
)

DTYPES = [np.float64, np.float32, np.float16]


def test_all_names_exported() -> None:
    assert sorted(tt.__all__) == sorted(
        [
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
    )
    for name in tt.__all__:
        assert callable(getattr(tt, name))


def test_missing_hypothesis_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # makes `import hypothesis` fail
    monkeypatch.delitem(sys.modules, "tinygrad_rnn.testing")
    with pytest.raises(ImportError, match=r"pip install 'tinygrad-rnn\[dev\]'"):
        importlib.import_module("tinygrad_rnn.testing")


# ------------------------------------------------------------------------- shapes
@given(data=st.data(), lo=st.integers(0, 3), extra=st.integers(0, 2), side=st.integers(1, 3))
def test_shapes_respect_bounds(data: st.DataObject, lo: int, extra: int, side: int) -> None:
    s = data.draw(shapes(min_dims=lo, max_dims=lo + extra, min_side=side, max_side=side + 2))
    assert isinstance(s, tuple)
    assert lo <= len(s) <= lo + extra
    assert all(side <= n <= side + 2 for n in s)


@given(data=st.data(), num=st.integers(1, 4), max_dims=st.integers(0, 4))
def test_broadcastable_shapes_broadcast(data: st.DataObject, num: int, max_dims: int) -> None:
    shs = data.draw(broadcastable_shapes(num, max_dims=max_dims, min_side=2, max_side=4))
    assert isinstance(shs, tuple) and len(shs) == num
    out = np.broadcast_shapes(*shs)  # raises if they do not broadcast
    assert len(out) <= max_dims
    for s in shs:
        assert len(s) <= max_dims
        assert all(n == 1 or 2 <= n <= 4 for n in s)
    # numpy agrees on actual arrays too
    assert np.broadcast(*(np.empty(s) for s in shs)).shape == out


def test_broadcastable_shapes_reach_real_broadcasting() -> None:
    strat = broadcastable_shapes(2, min_dims=1, max_dims=3)
    # different ranks, and a side of 1 against a longer side
    find(strat, lambda s: len(s[0]) != len(s[1]))
    find(
        strat,
        lambda s: any(a == 1 and b > 1 for a, b in zip(s[0][::-1], s[1][::-1])),
    )


# ------------------------------------------------------------------- float_arrays
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_float_arrays_honour_dtype_shape_and_bounds(dtype: Any, data: st.DataObject) -> None:
    shape = data.draw(shapes(max_dims=3, max_side=4))
    lo = data.draw(st.floats(-10, 10))
    hi = lo + data.draw(st.floats(0.01, 10))
    a = data.draw(float_arrays(shape, dtype=dtype, min_value=lo, max_value=hi))
    assert isinstance(a, np.ndarray)
    assert a.dtype == np.dtype(dtype) and a.shape == shape
    assert np.all(np.isfinite(a))
    assert np.all(a >= lo) and np.all(a <= hi)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_float_arrays_keep_magnitude_and_avoid_points(dtype: Any, data: st.DataObject) -> None:
    m = data.draw(st.floats(0.001, 1.0))
    avoid = tuple(data.draw(st.lists(st.floats(-3, 3), max_size=3)))
    a = data.draw(float_arrays((4, 3), dtype=dtype, min_magnitude=m, avoid=avoid))
    values = a.astype(np.float64)
    assert np.all(np.abs(values) >= m)
    assert np.all((values >= -3) & (values <= 3))
    for p in avoid:
        assert np.all(np.abs(values - p) >= 1e-3), (p, values)


@given(float_arrays(5, avoid=(0.0,)))
def test_int_shape_and_default_range(a: np.ndarray) -> None:
    assert a.shape == (5,) and a.dtype == np.float64
    assert np.all(np.abs(a) <= 3) and np.all(np.abs(a) >= 1e-3)


@given(float_arrays(shapes(min_dims=2, max_dims=2, max_side=3), min_value=0.25))
def test_shape_may_be_a_strategy(a: np.ndarray) -> None:
    assert a.ndim == 2 and all(1 <= n <= 3 for n in a.shape)
    assert np.all(a >= 0.25)


def test_float_arrays_reach_the_edges_of_the_allowed_region() -> None:
    # both sides of the hole around 0, right at its edge
    find(float_arrays((1,), min_magnitude=0.5), lambda a: -0.51 < a[0] < 0)
    find(float_arrays((1,), min_magnitude=0.5), lambda a: 0 < a[0] < 0.51)
    # close to (but not inside) an avoided kink, from both sides
    find(float_arrays((1,), avoid=(1.0,)), lambda a: 1.0 < a[0] < 1.01)
    find(float_arrays((1,), avoid=(1.0,)), lambda a: 0.99 < a[0] < 1.0)
    # the bounds themselves
    find(float_arrays((1,), np.float32, min_value=-0.1, max_value=0.7), lambda a: a[0] == 0.7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_value": 1.0, "max_value": 0.0},
        {"min_value": -np.inf},
        {"min_value": -1.0, "max_value": 1.0, "min_magnitude": 2.0},
        {"min_value": 0.0, "max_value": 1e-4, "avoid": (0.0,)},
        {"dtype": np.int64},
    ],
)
def test_float_arrays_reject_impossible_requests(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        float_arrays((2,), **kwargs)


# ------------------------------------------------------------ distinct_float_arrays
@pytest.mark.parametrize("dtype", DTYPES[:2], ids=lambda d: np.dtype(d).name)
@given(data=st.data(), gap=st.sampled_from([1e-3, 0.01, 0.1]))
def test_distinct_float_arrays_have_no_near_ties(
    dtype: Any, data: st.DataObject, gap: float
) -> None:
    # at most 27 values: they fit in [-3, 3] even 0.1 apart (up to 60 would)
    a = data.draw(distinct_float_arrays(shapes(max_dims=3, max_side=3), dtype, min_gap=gap))
    assert a.dtype == np.dtype(dtype)
    v = np.sort(a.astype(np.float64).ravel())
    assert np.all(np.diff(v) >= gap)
    assert np.all((v >= -3) & (v <= 3))


def test_distinct_float_arrays_reject_impossible_requests() -> None:
    with pytest.raises(InvalidArgument):
        distinct_float_arrays((3,), min_gap=0.0)
    with pytest.raises(InvalidArgument):
        distinct_float_arrays((3,), np.int32)
    with pytest.raises(InvalidArgument):  # 4 values 1 apart do not fit in [0, 2]
        find(distinct_float_arrays((4,), min_value=0, max_value=2, min_gap=1), lambda a: True)
    # ... but 3 do (with a little room)
    a = find(distinct_float_arrays((3,), min_value=0, max_value=2.05, min_gap=1), lambda a: True)
    assert np.all(np.diff(np.sort(a)) >= 1) and 0 <= a.min() and a.max() <= 2.05


# ------------------------------------------------------------------------ tensors
@pytest.mark.parametrize("dtype", DTYPES[:2], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("requires_grad", [True, False])
@given(data=st.data())
def test_tensors(dtype: Any, requires_grad: bool, data: st.DataObject) -> None:
    t = data.draw(
        tensors((2, 3), dtype=dtype, requires_grad=requires_grad, min_value=0.5, max_value=2)
    )
    assert isinstance(t, tg.Tensor)
    assert t.requires_grad is requires_grad and t.is_leaf and t.grad is None
    assert t.dtype == np.dtype(dtype) and t.shape == (2, 3)
    assert np.all((t.data >= 0.5) & (t.data <= 2))


@settings(max_examples=10)
@given(tensors(shapes(max_dims=3, max_side=4), min_magnitude=0.5))
def test_docstring_example_runs(x: tg.Tensor) -> None:
    assert tg.gradcheck(lambda t: (t * t.abs().log()).tanh(), [x])
