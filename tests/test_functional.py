"""Tests of ``tinygrad_rnn.functional``: softmax family, losses, one-hot, embedding.

Oracles are independent of the engine: numpy formulas written here (stable
log-softmax by max shift, ``np.logaddexp`` for softplus, ``np.eye`` for one-hot),
closed-form gradients (``softmax - onehot``, ``sigmoid - y``, ``2 (p - t) / n``),
identities (rows sum to 1, the softmax Jacobian annihilates the ones vector) and
finite differences. ``filterwarnings = error`` turns any numpy RuntimeWarning
(overflow, invalid value) into a failure, so the stability tests also check silence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn.testing import float_arrays, shapes

Tensor = tg.Tensor


# ------------------------------------------------------------------ numpy oracles
def np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    return np.exp(np_log_softmax(x, axis))


def np_onehot(t: np.ndarray, classes: int, axis: int) -> np.ndarray:
    return np.moveaxis(np.eye(classes)[t], -1, axis)


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))  # never overflows


def np_reduce(per_elem: np.ndarray, reduction: Any, mask: np.ndarray | None) -> np.ndarray:
    w = np.ones_like(per_elem) if mask is None else mask
    if reduction == "none":
        return per_elem * w
    if reduction == "sum":
        return np.sum(per_elem * w)
    return np.sum(per_elem * w) / np.sum(w)


def leaf(x: Any, dtype: Any = np.float64) -> Tensor:
    return Tensor(np.asarray(x, dtype=dtype), requires_grad=True)


def grad_of(loss: Tensor, x: Tensor) -> np.ndarray:
    (g,) = tg.grad(loss, [x])
    assert g is not None
    return np.asarray(g.data)


# --------------------------------------------------------------------- strategies
@st.composite
def softmax_inputs(draw: Any) -> tuple[np.ndarray, int]:
    x = draw(float_arrays(shapes(min_dims=1, max_dims=3, max_side=5), min_value=-5, max_value=5))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@st.composite
def ce_inputs(draw: Any, scale: float = 5.0) -> tuple[np.ndarray, np.ndarray, int]:
    """(logits, int targets, class axis) for (N, C) with axis -1 or (N, C, L) with axis 1."""
    layout = draw(st.sampled_from(["NC", "NCL"]))
    n, c, length = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    shape, axis = ((n, c), -1) if layout == "NC" else ((n, c, length), 1)
    logits = draw(float_arrays(shape, min_value=-scale, max_value=scale))
    tshape = shape[:1] + shape[2:] if axis == 1 else shape[:-1]
    targets = draw(hnp.arrays(np.int64, tshape, elements=st.integers(0, c - 1)))
    return logits, targets, axis


def ce_oracle(logits: np.ndarray, targets: np.ndarray, axis: int) -> np.ndarray:
    picked = np.take_along_axis(np_log_softmax(logits, axis), np.expand_dims(targets, axis), axis)
    return -np.squeeze(picked, axis)


# ------------------------------------------------------------------------ softmax
@given(softmax_inputs())
def test_softmax_rows_sum_to_one_and_match_numpy(inp: tuple[np.ndarray, int]) -> None:
    x, axis = inp
    p = F.softmax(leaf(x), axis=axis).data
    np.testing.assert_allclose(np.sum(p, axis=axis), 1.0, rtol=1e-12)
    assert np.all(p > 0)
    np.testing.assert_allclose(p, np_softmax(x, axis), rtol=1e-12, atol=1e-300)


@given(softmax_inputs(), st.floats(-50, 50))
def test_softmax_is_shift_invariant(inp: tuple[np.ndarray, int], c: float) -> None:
    x, axis = inp
    np.testing.assert_allclose(
        F.softmax(leaf(x + c), axis).data, F.softmax(leaf(x), axis).data, rtol=1e-10, atol=1e-15
    )


@given(softmax_inputs())
def test_softmax_vjp_of_ones_is_zero(inp: tuple[np.ndarray, int]) -> None:
    """J^T 1 = 0: moving all probabilities' upstream gradient equally changes nothing."""
    x, axis = inp
    t = leaf(x)
    (g,) = tg.grad(F.softmax(t, axis), [t], grad_outputs=np.ones(x.shape))
    assert g is not None
    np.testing.assert_allclose(g.data, 0.0, atol=1e-14)


@given(softmax_inputs(), st.integers(0, 2**32 - 1))
def test_softmax_jvp_along_ones_is_zero(inp: tuple[np.ndarray, int], seed: int) -> None:
    """J 1 = 0: for any w, <grad of (softmax(x) * w).sum(), ones along the axis> = w . J 1 = 0."""
    x, axis = inp
    w = np.random.default_rng(seed).standard_normal(x.shape)
    t = leaf(x)
    g = grad_of((F.softmax(t, axis) * w).sum(), t)
    np.testing.assert_allclose(np.sum(g, axis=axis), 0.0, atol=1e-12)
    # and the gradient itself is the closed form p * (w - sum(p * w))
    p = np_softmax(x, axis)
    expected = p * (w - np.sum(p * w, axis=axis, keepdims=True))
    np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-12)


@given(softmax_inputs())
def test_log_softmax_matches_numpy_and_exponentiates_to_softmax(
    inp: tuple[np.ndarray, int],
) -> None:
    x, axis = inp
    ls = F.log_softmax(leaf(x), axis).data
    np.testing.assert_allclose(ls, np_log_softmax(x, axis), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(ls), F.softmax(leaf(x), axis).data, rtol=1e-12)


@settings(max_examples=10)
@given(softmax_inputs())
def test_softmax_family_derivatives(inp: tuple[np.ndarray, int]) -> None:
    x, axis = inp
    for fn in (F.softmax, F.log_softmax):
        assert tg.gradcheck(lambda t, fn=fn: fn(t, axis), [leaf(x)])
        assert tg.gradgradcheck(lambda t, fn=fn: fn(t, axis), [leaf(x)])


@pytest.mark.parametrize("scale", [1e4, 1e300])
def test_softmax_of_huge_logits_is_finite_and_exact(scale: float) -> None:
    x = np.array([[1.0, -1.0, 0.0, 0.5], [-1.0, -1.0, -0.5, -1.0]]) * scale
    t = leaf(x)
    p = F.softmax(t, axis=-1)
    np.testing.assert_array_equal(p.data, [[1, 0, 0, 0], [0, 0, 1, 0]])
    w = np.arange(8.0).reshape(2, 4)
    g = grad_of((p * w).sum(), t)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g, 0.0)  # saturated: p (w - p.w) is exactly 0
    ls = F.log_softmax(leaf(x), axis=-1).data
    assert np.all(np.isfinite(ls))
    np.testing.assert_allclose(ls, np_log_softmax(x, -1), rtol=1e-15)


# ---------------------------------------------------------------------- logsumexp
def test_functional_logsumexp_is_the_primitive() -> None:
    assert F.logsumexp is tg.logsumexp


@given(softmax_inputs(), st.booleans())
def test_logsumexp_matches_numpy(inp: tuple[np.ndarray, int], keepdims: bool) -> None:
    x, axis = inp
    out = F.logsumexp(leaf(x), axis=axis, keepdims=keepdims).data
    expected = np.logaddexp.reduce(x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)


def test_logsumexp_of_huge_values_has_no_overflow() -> None:
    x = np.array([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4]])
    t = leaf(x)
    out = F.logsumexp(t, axis=1)
    np.testing.assert_allclose(out.data, [1e4 + np.log1p(np.exp(-1.0)), -1e4 + np.log(3)])
    g = grad_of(out.sum(), t)
    np.testing.assert_allclose(g, np_softmax(x, 1), rtol=1e-12, atol=1e-300)


# ------------------------------------------------------------------ cross entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(inp=ce_inputs())
def test_cross_entropy_is_minus_log_softmax_at_target(
    inp: tuple[np.ndarray, np.ndarray, int], reduction: Any
) -> None:
    logits, targets, axis = inp
    per_elem = ce_oracle(logits, targets, axis)
    out = F.cross_entropy(leaf(logits), targets, axis=axis, reduction=reduction)
    np.testing.assert_allclose(
        out.data, np_reduce(per_elem, reduction, None), rtol=1e-12, atol=1e-13
    )
    assert out.shape == (per_elem.shape if reduction == "none" else ())


@given(inp=ce_inputs())
def test_cross_entropy_accepts_int_tensor_targets(inp: tuple[np.ndarray, np.ndarray, int]) -> None:
    logits, targets, axis = inp
    a = F.cross_entropy(leaf(logits), targets, axis=axis, reduction="none").data
    b = F.cross_entropy(leaf(logits), Tensor(targets), axis=axis, reduction="none").data
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, ce_oracle(logits, targets, axis), rtol=1e-12, atol=1e-14)


@given(inp=ce_inputs())
def test_cross_entropy_gradient_is_softmax_minus_onehot(
    inp: tuple[np.ndarray, np.ndarray, int],
) -> None:
    logits, targets, axis = inp
    c = logits.shape[axis]
    closed_form = np_softmax(logits, axis) - np_onehot(targets, c, axis)
    t = leaf(logits)
    g = grad_of(F.cross_entropy(t, Tensor(targets), axis=axis, reduction="sum"), t)
    np.testing.assert_allclose(g, closed_form, rtol=1e-10, atol=1e-14)
    t = leaf(logits)
    g = grad_of(F.cross_entropy(t, targets, axis=axis), t)  # mean: divided by the count
    np.testing.assert_allclose(g, closed_form / targets.size, rtol=1e-10, atol=1e-14)


@given(inp=ce_inputs(), data=st.data())
def test_cross_entropy_mask_weights_the_elements(
    inp: tuple[np.ndarray, np.ndarray, int], data: st.DataObject
) -> None:
    logits, targets, axis = inp
    mask = data.draw(hnp.arrays(np.float64, targets.shape, elements=st.sampled_from([0.0, 1.0])))
    per_elem = ce_oracle(logits, targets, axis)
    for reduction in ("sum", "none"):
        out = F.cross_entropy(leaf(logits), targets, axis=axis, reduction=reduction, mask=mask)
        np.testing.assert_allclose(
            out.data, np_reduce(per_elem, reduction, mask), rtol=1e-12, atol=1e-13
        )
    if mask.sum() == 0:
        with pytest.raises(ValueError, match="mask"):
            F.cross_entropy(leaf(logits), targets, axis=axis, mask=mask)
        return
    t = leaf(logits)
    out = F.cross_entropy(t, targets, axis=axis, mask=Tensor(mask))
    np.testing.assert_allclose(out.data, np_reduce(per_elem, "mean", mask), rtol=1e-12, atol=1e-13)
    c = logits.shape[axis]
    closed = (np_softmax(logits, axis) - np_onehot(targets, c, axis)) * np.expand_dims(mask, axis)
    np.testing.assert_allclose(grad_of(out, t), closed / mask.sum(), rtol=1e-10, atol=1e-14)


@settings(max_examples=10)
@given(inp=ce_inputs())
def test_cross_entropy_derivatives_by_finite_differences(
    inp: tuple[np.ndarray, np.ndarray, int],
) -> None:
    logits, targets, axis = inp
    assert tg.gradcheck(lambda t: F.cross_entropy(t, targets, axis=axis), [leaf(logits)])
    assert tg.gradgradcheck(lambda t: F.cross_entropy(t, targets, axis=axis), [leaf(logits)])


def test_cross_entropy_with_huge_logits_is_finite_and_exact() -> None:
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]])
    targets = np.array([0, 0, 1, 2])
    t = leaf(logits)
    loss = F.cross_entropy(t, targets, reduction="none")
    assert np.all(np.isfinite(loss.data))
    np.testing.assert_allclose(loss.data, [0.0, 2e4, np.log(2), np.log(3)], rtol=1e-12)
    t = leaf(logits)
    g = grad_of(F.cross_entropy(t, targets, reduction="sum"), t)
    closed = (
        np.array(
            [[1.0, 0, 0], [0, 1, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]]  # softmax of the rows
        )
        - np.eye(3)[targets]
    )
    np.testing.assert_allclose(g, closed, rtol=1e-12, atol=1e-300)


@given(inp=ce_inputs(scale=1e4))
def test_cross_entropy_with_huge_random_logits(inp: tuple[np.ndarray, np.ndarray, int]) -> None:
    logits, targets, axis = inp
    t = leaf(logits)
    loss = F.cross_entropy(t, targets, axis=axis, reduction="sum")
    np.testing.assert_allclose(
        loss.data, np.sum(ce_oracle(logits, targets, axis)), rtol=1e-12, atol=1e-12
    )
    closed = np_softmax(logits, axis) - np_onehot(targets, logits.shape[axis], axis)
    np.testing.assert_allclose(grad_of(loss, t), closed, rtol=1e-9, atol=1e-12)


def test_cross_entropy_keeps_float32() -> None:
    t = leaf(np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 1e4]]), np.float32)
    loss = F.cross_entropy(t, np.array([2, 0]), mask=np.array([1.0, 0.5]))
    assert loss.dtype == np.float32
    loss.backward()
    assert t.grad is not None and t.grad.dtype == np.float32


def test_cross_entropy_errors() -> None:
    logits = leaf(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.cross_entropy(logits, np.array([-1, 0]))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(logits, Tensor(np.array([0.0, 1.0])))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(2, 1\).*\(2, 3\)"):
        F.cross_entropy(logits, np.zeros((2, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="mask"):
        F.cross_entropy(logits, np.array([0, 1]), mask=np.ones(3))
    with pytest.raises(ValueError, match="0-d"):
        F.cross_entropy(leaf(1.0), np.array(0))


def test_cross_entropy_rejects_out_of_range_axis() -> None:
    """Once ``axis % logits.ndim`` silently wrapped axis 2 of a 2-D input to axis 0."""
    logits = leaf(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="axis"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.int64), axis=2)
    with pytest.raises(ValueError, match="axis"):
        F.cross_entropy(logits, np.zeros(3, dtype=np.int64), axis=-3)


# --------------------------------------------------- binary cross-entropy (logits)
@st.composite
def bce_inputs(draw: Any, scale: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(shapes(min_dims=0, max_dims=3, max_side=4))
    x = draw(float_arrays(shape, min_value=-scale, max_value=scale))
    y = draw(float_arrays(shape, min_value=0.0, max_value=1.0))
    return x, y


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(inp=bce_inputs())
def test_bce_with_logits_matches_softplus_form(
    inp: tuple[np.ndarray, np.ndarray], reduction: Any
) -> None:
    x, y = inp
    per_elem = np.logaddexp(0.0, x) - x * y  # softplus(x) - x y
    out = F.binary_cross_entropy_with_logits(leaf(x), y, reduction=reduction)
    np.testing.assert_allclose(
        out.data, np_reduce(per_elem, reduction, None), rtol=1e-12, atol=1e-12
    )


@given(inp=bce_inputs())
def test_bce_gradient_is_sigmoid_minus_target(inp: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = inp
    t = leaf(x)
    g = grad_of(F.binary_cross_entropy_with_logits(t, Tensor(y), reduction="sum"), t)
    np.testing.assert_allclose(g, np_sigmoid(x) - y, rtol=1e-10, atol=1e-15)


@given(inp=bce_inputs(scale=1e4))
def test_bce_with_huge_logits_is_finite_and_exact(inp: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = inp
    t = leaf(x)
    loss = F.binary_cross_entropy_with_logits(t, y, reduction="sum")
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.data, np.sum(np.logaddexp(0.0, x) - x * y), rtol=1e-12)
    np.testing.assert_allclose(grad_of(loss, t), np_sigmoid(x) - y, rtol=1e-10, atol=1e-15)


def test_bce_with_mixed_extreme_logits() -> None:
    x = np.array([1e4, -1e4, 1e3, -1e3, 800.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.25])
    t = leaf(x)
    loss = F.binary_cross_entropy_with_logits(t, y, reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, 0.0, 1e3, 1e3, 600.0], rtol=1e-15)
    g = grad_of(loss.sum(), t)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, -1.0, 0.75])


def test_bce_errors_and_mask() -> None:
    x = leaf(np.array([1.0, -2.0]))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        F.binary_cross_entropy_with_logits(x, np.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        F.binary_cross_entropy_with_logits(x, np.zeros(2), reduction="max")
    out = F.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0]), mask=np.array([0.0, 1.0]))
    np.testing.assert_allclose(out.data, np.logaddexp(0.0, -2.0), rtol=1e-14)


def test_bce_gradient_at_zero_logit() -> None:
    """Once relu'(0) = sign(0) = 0 dropped sigmoid(0) = 1/2: the gradient at 0 was -y."""
    t = leaf(np.zeros(3))
    y = np.array([0.0, 1.0, 0.25])
    g = grad_of(F.binary_cross_entropy_with_logits(t, y, reduction="sum"), t)
    np.testing.assert_allclose(g, 0.5 - y, rtol=1e-15)
    assert tg.gradgradcheck(
        lambda x: F.binary_cross_entropy_with_logits(x, y, reduction="sum"), [leaf(np.zeros(3))]
    )


# ------------------------------------------------------------------------ sigmoid
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_saturates_exactly_without_warnings(dtype: Any) -> None:
    x = leaf([1e3, -1e3, 1e4, -1e4, 100.0, -100.0], dtype)
    s = x.sigmoid()
    assert s.dtype == dtype
    np.testing.assert_array_equal(s.data[:4], [1.0, 0.0, 1.0, 0.0])
    s.sum().backward()
    assert x.grad is not None
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_array_equal(x.grad.data[:4], 0.0)
    np.testing.assert_allclose(s.data[4:], np_sigmoid(np.array([100.0, -100.0])), atol=1e-40)


# ----------------------------------------------------------------------- mse loss
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_mse_loss_value_and_gradient(reduction: Any, data: st.DataObject) -> None:
    shape = data.draw(shapes(max_dims=3, max_side=4))
    p, y = data.draw(float_arrays(shape)), data.draw(float_arrays(shape))
    t = leaf(p)
    out = F.mse_loss(t, y, reduction=reduction)
    np.testing.assert_allclose(out.data, np_reduce((p - y) ** 2, reduction, None), rtol=1e-12)
    w = np.ones(shape) if reduction == "none" else np.ones(())
    (g,) = tg.grad(out, [t], grad_outputs=w)
    assert g is not None
    closed = 2 * (p - y) / (p.size if reduction == "mean" else 1)
    np.testing.assert_allclose(g.data, closed, rtol=1e-12, atol=1e-15)


def test_mse_loss_target_tensor_mask_and_errors() -> None:
    p, y = leaf([1.0, 2.0, 4.0]), Tensor([0.0, 0.0, 1.0])
    out = F.mse_loss(p, y, mask=np.array([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(out.data, (1 + 9) / 2)
    out.backward()
    assert p.grad is not None
    np.testing.assert_allclose(p.grad.data, [1.0, 0.0, 3.0])
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        F.mse_loss(p, np.zeros(2))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(p, y, reduction="avg")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_mask_over_leading_axes_weighs_every_trailing_element(
    reduction: Any, data: st.DataObject
) -> None:
    """A (T, B) mask on a (T, B, K) loss weighs all K outputs of a step alike."""
    shape = data.draw(shapes(min_dims=2, max_dims=3, max_side=4))
    lead = data.draw(st.integers(1, len(shape)))
    mask = data.draw(hnp.arrays(np.float64, shape[:lead], elements=st.sampled_from([0.0, 1.0])))
    p, y = data.draw(float_arrays(shape)), data.draw(float_arrays(shape))
    full = np.broadcast_to(mask.reshape(mask.shape + (1,) * (len(shape) - lead)), shape)
    if reduction == "mean" and full.sum() == 0:
        with pytest.raises(ValueError, match="mask"):
            F.mse_loss(leaf(p), y, reduction=reduction, mask=mask)
        return
    out = F.mse_loss(leaf(p), y, reduction=reduction, mask=mask)
    np.testing.assert_allclose(out.data, np_reduce((p - y) ** 2, reduction, full), rtol=1e-12)


# ------------------------------------------------------------------------ one-hot
@given(data=st.data())
def test_one_hot_matches_eye(data: st.DataObject) -> None:
    c = data.draw(st.integers(1, 5))
    idx = data.draw(
        hnp.arrays(np.int64, shapes(max_dims=3, max_side=4), elements=st.integers(0, c - 1))
    )
    oh = F.one_hot(idx, c)
    assert oh.shape == (*idx.shape, c) and oh.dtype == np.float64
    assert not oh.requires_grad
    np.testing.assert_array_equal(oh.data, np.eye(c)[idx])
    np.testing.assert_array_equal(F.one_hot(Tensor(idx), c, dtype=np.float32).data, np.eye(c)[idx])
    assert F.one_hot(idx, c, dtype=np.float32).dtype == np.float32


def test_one_hot_errors() -> None:
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.one_hot(np.array([0, 3]), 3)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.one_hot(np.array([-1]), 3)
    with pytest.raises(TypeError, match="integers"):
        F.one_hot(np.array([0.0, 1.0]), 3)


# ---------------------------------------------------------------------- embedding
@given(data=st.data())
def test_embedding_picks_rows_and_repeated_indices_accumulate(data: st.DataObject) -> None:
    v, e = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    weight = data.draw(float_arrays((v, e)))
    idx = data.draw(
        hnp.arrays(
            np.int64, shapes(min_dims=1, max_dims=2, max_side=5), elements=st.integers(0, v - 1)
        )
    )
    w = leaf(weight)
    out = F.embedding(Tensor(idx) if data.draw(st.booleans()) else idx, w)
    np.testing.assert_array_equal(out.data, weight[idx])
    g = data.draw(float_arrays(out.shape))
    out.backward(g)
    expected = np.zeros((v, e))
    for pos in np.ndindex(*idx.shape):  # each lookup adds its row of g
        expected[idx[pos]] += g[pos]
    assert w.grad is not None
    np.testing.assert_allclose(w.grad.data, expected, rtol=1e-15, atol=0)


def test_embedding_repeated_index_counts() -> None:
    w = leaf(np.arange(6.0).reshape(3, 2))
    F.embedding(np.array([[2, 2], [2, 0]]), w).sum().backward()
    assert w.grad is not None
    np.testing.assert_array_equal(w.grad.data, [[1, 1], [0, 0], [3, 3]])


def test_embedding_errors() -> None:
    w = leaf(np.zeros((3, 2)))
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.embedding(np.array([3]), w)
    with pytest.raises(TypeError, match="integers"):
        F.embedding(np.array([0.0]), w)
    with pytest.raises(ValueError, match="2-D"):
        F.embedding(np.array([0]), leaf(np.zeros(3)))
