"""Tensor methods of PyTorch's (var, std, argmax, argmin, softmax, log_softmax, square,
flatten, squeeze, unsqueeze, expand with -1) against PyTorch in float64 to 1e-9.

Values and gradients (for a random upstream gradient) over shapes and axes drawn by
hypothesis; bad arguments raise errors that name the method and the shape; jit equals eager.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import ops  # noqa: E402

TOL = 1e-9
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)


def pair(shape: tuple[int, ...], seed: int, scale: float = 1.0) -> tuple[tg.Tensor, Any]:
    """The same float64 leaf in both libraries (normal values: no ties)."""
    a = np.random.default_rng(seed).standard_normal(shape) * scale
    return tg.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def check(ours: tg.Tensor, theirs: Any, x: tg.Tensor, x_t: Any, seed: int, what: str) -> None:
    """Same values, then the same gradient of ``sum(y * w)`` for a random ``w``."""
    assert ours.shape == tuple(theirs.shape), what
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=TOL, atol=TOL, err_msg=what)
    w = np.random.default_rng(seed + 1).standard_normal(ours.shape)
    (ours * w).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(
        x.grad.data, x_t.grad.numpy(), rtol=TOL, atol=TOL, err_msg=f"{what}: gradient"
    )


@st.composite
def reduction_axes(draw: Any, shape: tuple[int, ...]) -> Any:
    """None, one axis (maybe negative) or a tuple of distinct axes of ``shape``."""
    ndim = max(len(shape), 1)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int" or len(shape) == 0:
        return draw(st.integers(-ndim, ndim - 1))
    picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in picked)


@given(data=st.data(), shape=shapes, seed=st.integers(0, 2**16))
def test_var_and_std_match_torch(data: Any, shape: tuple[int, ...], seed: int) -> None:
    axis = data.draw(reduction_axes(shape))
    keepdims = data.draw(st.booleans())
    correction = data.draw(st.sampled_from([0, 1, 2, 0.5]))
    if axis is None or len(shape) == 0:
        count = int(np.prod(shape))
    else:
        count = int(np.prod([shape[a] for a in np.atleast_1d(axis)]))
    assume(count - correction > 0)
    # std at a zero variance (one element reduced) has an infinite derivative: var only.
    for name in ("var", "std") if count > 1 else ("var",):
        x, x_t = pair(shape, seed)
        ours = getattr(x, name)(axis=axis, keepdims=keepdims, correction=correction)
        theirs = getattr(x_t, name)(dim=axis, keepdim=keepdims, correction=correction)
        check(ours, theirs, x, x_t, seed, f"{name}(axis={axis}, keepdims={keepdims})")


def test_var_default_correction_is_one_and_float32_stays() -> None:
    a = np.random.default_rng(0).standard_normal((5, 3))
    x = tg.Tensor(a)
    np.testing.assert_allclose(x.var().data, np.var(a, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(x.std(axis=0).data, np.std(a, axis=0, ddof=1), rtol=1e-12)
    x32 = tg.Tensor(a, dtype=np.float32)
    for y in (x32.var(), x32.std(axis=1), x32.softmax(), x32.log_softmax(0), x32.square()):
        assert y.dtype == np.float32


def test_var_with_no_degrees_of_freedom_is_nan_like_torch() -> None:
    x, x_t = pair((1, 3), 0)
    with np.errstate(all="ignore"):
        ours = x.var(axis=0)
    with pytest.warns(UserWarning):
        theirs = x_t.var(dim=0)
    np.testing.assert_array_equal(np.isnan(ours.data), np.isnan(theirs.detach().numpy()))
    assert np.isnan(ours.data).all()


@given(data=st.data(), shape=shapes, seed=st.integers(0, 2**16))
def test_argmax_and_argmin_match_torch(data: Any, shape: tuple[int, ...], seed: int) -> None:
    ndim = max(len(shape), 1)
    axis = data.draw(st.none() | st.integers(-ndim, ndim - 1))
    keepdims = data.draw(st.booleans())
    x, x_t = pair(shape, seed)
    for name in ("argmax", "argmin"):
        ours = getattr(x, name)(axis=axis, keepdims=keepdims)
        theirs = getattr(x_t, name)(dim=axis, keepdim=keepdims)
        assert ours.shape == tuple(theirs.shape)
        assert ours.dtype == np.int64 and not ours.requires_grad and ours.is_leaf
        np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_argmax_ties_and_nan_like_torch() -> None:
    a = np.array([[1.0, 3.0, 3.0], [np.nan, 0.0, np.nan], [2.0, 2.0, 2.0]])
    x, x_t = tg.Tensor(a), torch.tensor(a)
    for name in ("argmax", "argmin"):
        for axis in (None, 0, 1):
            ours = getattr(x, name)(axis=axis)
            np.testing.assert_array_equal(ours.data, getattr(x_t, name)(dim=axis).numpy())


def test_argmax_rule_is_zero_as_finite_differences_say() -> None:
    # argmax is piecewise constant: away from ties finite differences give 0, and so does
    # its rule (the public functions never record it, but the rule must still be right).
    a = np.random.default_rng(4).standard_normal((3, 4))
    for prim in (ops._argmax, ops._argmin):
        for axis in (None, 0, 1):
            ans = prim.forward(a, axis=axis, keepdims=False)
            g = np.ones(ans.shape)
            rule = prim.vjps[0](g, ans, a, axis=axis, keepdims=False)
            fd = np.zeros_like(a)
            eps = 1e-6
            for i in np.ndindex(a.shape):
                up, down = a.copy(), a.copy()
                up[i] += eps
                down[i] -= eps
                diff = prim.forward(up, axis=axis, keepdims=False) - prim.forward(
                    down, axis=axis, keepdims=False
                )
                fd[i] = (g * diff).sum() / (2 * eps)
            np.testing.assert_array_equal(rule, fd)
            assert rule.shape == a.shape


@given(
    shape=shapes.filter(lambda s: len(s) > 0),
    axis_seed=st.integers(0, 100),
    scale=st.sampled_from([1.0, 1e4]),
    seed=st.integers(0, 2**16),
)
def test_softmax_and_log_softmax_match_torch(
    shape: tuple[int, ...], axis_seed: int, scale: float, seed: int
) -> None:
    axis = axis_seed % (2 * len(shape)) - len(shape)  # negative and positive axes
    for name in ("softmax", "log_softmax"):
        x, x_t = pair(shape, seed, scale)  # logits of ±1e4: finite, exact gradients
        ours = getattr(x, name)(axis=axis)
        theirs = getattr(x_t, name)(dim=axis)
        assert np.isfinite(ours.data).all()
        check(ours, theirs, x, x_t, seed, f"{name}(axis={axis}), scale {scale}")
    x, _ = pair(shape, seed)
    assert x.softmax().shape == x.shape  # the default axis is the last


@given(shape=shapes, seed=st.integers(0, 2**16))
def test_square_matches_torch(shape: tuple[int, ...], seed: int) -> None:
    x, x_t = pair(shape, seed)
    check(x.square(), x_t.square(), x, x_t, seed, "square")


@given(data=st.data(), shape=shapes, seed=st.integers(0, 2**16))
def test_flatten_matches_torch(data: Any, shape: tuple[int, ...], seed: int) -> None:
    ndim = max(len(shape), 1)
    start = data.draw(st.integers(-ndim, ndim - 1))
    end = data.draw(st.integers(-ndim, ndim - 1))
    assume(start % ndim <= end % ndim)
    x, x_t = pair(shape, seed)
    check(x.flatten(start, end), x_t.flatten(start, end), x, x_t, seed, f"flatten({start}, {end})")
    x, x_t = pair(shape, seed)
    check(x.flatten(), x_t.flatten(), x, x_t, seed, "flatten()")


squeezable = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3)


@given(data=st.data(), shape=squeezable, seed=st.integers(0, 2**16))
def test_squeeze_matches_torch(data: Any, shape: tuple[int, ...], seed: int) -> None:
    axis = data.draw(reduction_axes(shape))  # includes axes whose size is not 1: unchanged
    x, x_t = pair(shape, seed)
    theirs = x_t.squeeze() if axis is None else x_t.squeeze(axis)
    check(x.squeeze(axis), theirs, x, x_t, seed, f"squeeze({axis})")


@given(data=st.data(), shape=shapes, seed=st.integers(0, 2**16))
def test_unsqueeze_matches_torch(data: Any, shape: tuple[int, ...], seed: int) -> None:
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    x, x_t = pair(shape, seed)
    check(x.unsqueeze(axis), x_t.unsqueeze(axis), x, x_t, seed, f"unsqueeze({axis})")


@given(
    data=st.data(),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
    seed=st.integers(0, 2**16),
)
def test_expand_with_minus_one_matches_torch(data: Any, shape: tuple[int, ...], seed: int) -> None:
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2))
    sizes = list(lead)
    for n in shape:
        if n == 1:
            sizes.append(data.draw(st.sampled_from([-1, 1, 2, 3])))
        else:
            sizes.append(data.draw(st.sampled_from([-1, n])))
    x, x_t = pair(shape, seed)
    as_tuple = data.draw(st.booleans())
    ours = x.expand(tuple(sizes)) if as_tuple else x.expand(*sizes)
    check(ours, x_t.expand(sizes), x, x_t, seed, f"expand{tuple(sizes)}")


def test_methods_do_not_modify_their_input() -> None:
    a = np.random.default_rng(0).standard_normal((2, 1, 3))
    x = tg.Tensor(a, requires_grad=True)
    before = x.data.copy()
    for y in (
        x.var(),
        x.std(axis=2),
        x.square(),
        x.softmax(0),
        x.log_softmax(),
        x.flatten(),
        x.squeeze(),
        x.unsqueeze(0),
        x.expand(4, -1, 5, -1),
    ):
        y.sum().backward()
    x.argmax()
    x.argmin(axis=1)
    np.testing.assert_array_equal(x.data, before)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda x: x.var(axis=3), IndexError, r"var: axis 3 is out of range .*\(2, 1, 3\)"),
        (lambda x: x.std(axis=(0, -3)), ValueError, r"std: axis \(0, -3\) names an axis more"),
        (lambda x: x.var(axis=1.5), TypeError, "var: axis must be an int"),
        (lambda x: x.var(correction="1"), TypeError, "var: correction must be a number"),
        (lambda x: x.argmax(axis=-4), IndexError, r"argmax: axis -4 is out of range .*\(2, 1, 3\)"),
        (lambda x: x.argmin(axis=(0, 1)), TypeError, "argmin: axis must be an int"),
        (lambda x: x.softmax(axis=3), IndexError, r"softmax: axis 3 .*\(2, 1, 3\)"),
        (lambda x: x.log_softmax(axis=-4), IndexError, r"log_softmax: axis -4 .*\(2, 1, 3\)"),
        (lambda x: x.flatten(3), IndexError, r"flatten: axis 3 .*\(2, 1, 3\)"),
        (lambda x: x.flatten(2, 1), ValueError, "flatten: start_axis 2 comes after end_axis 1"),
        (lambda x: x.squeeze(3), IndexError, r"squeeze: axis 3 .*\(2, 1, 3\)"),
        (lambda x: x.squeeze((1, -2)), ValueError, r"squeeze: axis \(1, -2\) names an axis"),
        (lambda x: x.unsqueeze(4), IndexError, r"unsqueeze: axis 4 .*\[-4, 3\]"),
        (lambda x: x.expand(2, 3), ValueError, r"expand: 2 sizes \(2, 3\) .*\(2, 1, 3\)"),
        (lambda x: x.expand(3, 1, 3), ValueError, r"expand: size 3 at axis 0 .*size 2"),
        (lambda x: x.expand(-1, 2, 1, 3), ValueError, "expand: size -1 .*new leading axis"),
        (lambda x: x.expand(2, -2, 3), ValueError, "expand: size -2 is not allowed for axis 1"),
    ],
)
def test_bad_arguments_name_the_method(call: Any, error: type[Exception], message: str) -> None:
    x = tg.Tensor(np.zeros((2, 1, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        call(x)


def test_axis_errors_are_index_and_value_errors() -> None:
    x = tg.Tensor(np.zeros((2, 3)))
    for error in (IndexError, ValueError):  # PyTorch raises IndexError, numpy AxisError
        with pytest.raises(error):
            x.unsqueeze(5)


def test_other_bad_inputs() -> None:
    ints = tg.Tensor(np.arange(6).reshape(2, 3))
    with pytest.raises(TypeError, match=r"var: only floating-point tensors.*int64"):
        ints.var()
    with pytest.raises(TypeError, match="std: only floating-point tensors"):
        ints.std()
    np.testing.assert_array_equal(ints.argmax(axis=1).data, [2, 2])  # integers are fine here
    empty = tg.Tensor(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"argmax: .*empty tensor of shape \(0, 3\)"):
        empty.argmax()
    with pytest.raises(ValueError, match=r"argmin: .*axis 0 of an empty tensor"):
        empty.argmin(axis=0)
    assert empty.argmax(axis=1).shape == (0,)  # as torch: nothing to reduce over is fine


def test_squeeze_of_a_non_one_axis_leaves_it_like_torch() -> None:
    x, x_t = pair((2, 1, 3), 0)
    assert x.squeeze(0).shape == tuple(x_t.squeeze(0).shape) == (2, 1, 3)
    assert x.squeeze((0, 1)).shape == tuple(x_t.squeeze((0, 1)).shape) == (2, 3)


def test_jit_equals_eager() -> None:
    def step(x: tg.Tensor) -> tg.Tensor:
        probs = x.expand(2, -1, -1).softmax(axis=-1)
        spread = x.var(axis=1, keepdims=True) + x.std(axis=0).unsqueeze(-1).square().sum()
        y = probs.flatten(0, 1).unsqueeze(0).squeeze() * spread.squeeze().sum()
        y = y + x.log_softmax(axis=0).flatten().sum()
        y.sum().backward()
        return y

    def indices(x: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
        return x.argmax(axis=1), x.argmin()

    jitted, jitted_indices = tg.jit(step), tg.jit(indices)
    rng = np.random.default_rng(0)
    for _ in range(3):  # traced once, then replayed on new values
        a = rng.standard_normal((3, 4))
        x_eager, x_jit = tg.Tensor(a, requires_grad=True), tg.Tensor(a, requires_grad=True)
        want = step(x_eager)
        got = jitted(x_jit)
        np.testing.assert_allclose(got.data, want.data, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(x_jit.grad.data, x_eager.grad.data, rtol=1e-12, atol=1e-12)
        for ours, eager in zip(jitted_indices(tg.Tensor(a)), indices(tg.Tensor(a))):
            np.testing.assert_array_equal(ours.data, eager.data)  # the index of this call's values
    assert len(jitted.programs) == 1 and len(jitted_indices.programs) == 1
