"""The general compound ops (``addmm``, ``linear``, ``softmax_cross_entropy``) against the
elementary formulas they stand for, and the elementary LSTM gates at huge values.

``addmm`` is ``c + a @ b``, ``linear`` is ``x Wᵀ + b``. The oracle is plain numpy (values and
gradients, float64), plus clear errors for shapes that do not fit. Finite-difference checks
of their rules live in the op registry (tests/test_ops_properties.py).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import ops

Tensor = tg.Tensor


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_gates_are_stable_and_exact_for_huge_values(dtype: Any) -> None:
    z = np.array([[-1e4, -100.0, -20.0, -3.0, 0.0, 3.0, 20.0, 1e4] * 4], dtype=dtype)  # H = 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        i, f, g, o = ops.chunk(Tensor(z), 4, axis=-1)
        gates = (i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid())
        acts = np.concatenate([a.data for a in gates], axis=-1)
    assert acts.dtype == dtype
    x = z[0, :8].astype(np.float64)
    sigmoid = np.exp(-np.logaddexp(0.0, -x))  # an independent, overflow-free σ
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    for k, want in enumerate([sigmoid, sigmoid, np.tanh(x), sigmoid]):
        # relative accuracy in the tails too (σ(-20) ≈ 2e-9, σ(-100) ≈ 4e-44 in float64)
        np.testing.assert_allclose(acts[0, 8 * k : 8 * (k + 1)], want.astype(dtype), rtol=rtol)


def test_addmm_equals_c_plus_a_at_b_and_keeps_float32() -> None:
    rng = np.random.default_rng(0)
    c = rng.standard_normal(3).astype(np.float32)
    a, b = rng.standard_normal((4, 2)).astype(np.float32), rng.standard_normal((2, 3))
    tc, ta = Tensor(c, requires_grad=True), Tensor(a, requires_grad=True)
    tb = Tensor(b.astype(np.float32), requires_grad=True)
    out = ops.addmm(tc, ta, tb)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, c + a @ b.astype(np.float32), rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(tc.grad.data, np.full(3, 4.0))  # type: ignore[union-attr]
    assert tc.grad.dtype == np.float32  # type: ignore[union-attr]


def test_addmm_does_not_write_into_its_inputs() -> None:
    c = np.ones((2, 2))
    before = c.copy()
    ops.addmm(Tensor(c), Tensor(np.eye(2)), Tensor(np.eye(2)))
    ops.addmm(c, np.eye(2), np.eye(2))  # the array path too
    np.testing.assert_array_equal(c, before)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ops.addmm(np.ones(3), np.ones((2, 4)), np.ones((3, 3))), "addmm: inner"),
        (lambda: ops.addmm(np.ones((5, 3)), np.ones((2, 3)), np.ones((3, 3))), "addmm: c of"),
        (lambda: ops.addmm(np.ones(3), np.ones(3), np.ones((3, 3))), "addmm: a and b must be 2-D"),
    ],
)
def test_bad_shapes_name_the_op_and_the_shapes(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "(" in str(info.value)  # the shapes are in the message


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
def test_linear_equals_x_at_w_transposed_plus_b(lead: tuple[int, ...], with_bias: bool) -> None:
    """``linear`` against ``x @ w.T + b`` from elementary ops, values and gradients."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((*lead, 4)), rng.standard_normal((5, 4))]
    if with_bias:
        arrays.append(rng.standard_normal(5))
    g_out = rng.standard_normal((*lead, 5))
    results = []
    for fused in (False, True):
        leaves = [Tensor(a, requires_grad=True) for a in arrays]
        if fused:
            out = ops.linear(*leaves)
        else:
            out = leaves[0] @ leaves[1].T
            out = out + leaves[2] if with_bias else out
        (out * g_out).sum().backward()
        results.append([out.data, *(leaf.grad.data for leaf in leaves)])  # type: ignore[union-attr]
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (
            ((2, 3), (4, 5)),
            r"linear: the input's last axis must be in_features=5, got input \(2, 3\)",
        ),
        (((2, 3), (3,)), r"linear: weight must be 2-D"),
        (((2, 3), (4, 3), (3,)), r"linear: bias must have shape \(4,\), got \(3,\)"),
    ],
)
def test_linear_shape_errors_name_the_op(shapes: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ops.linear(*(Tensor(np.ones(s)) for s in shapes))


@pytest.mark.parametrize("layout", ["transposed", "batch_first_view", "class_axis_0"])
def test_cross_entropy_gradient_is_right_for_logits_of_any_memory_layout(layout: str) -> None:
    """Logits that are a transposed or permuted view (not C-ordered) get the same gradient
    as a C-ordered copy of them: ``softmax - onehot``, checked against numpy."""
    rng = np.random.default_rng(4)
    if layout == "transposed":  # (C, N) array used as (N, C)
        base, view, axis = rng.standard_normal((5, 6)), (lambda t: t.T), -1
    elif layout == "batch_first_view":  # (T, B, C) used as (B, T, C)
        base, view, axis = rng.standard_normal((3, 2, 5)), (lambda t: t.permute(1, 0, 2)), -1
    else:  # classes on axis 0 of a transposed (N, C) array
        base, view, axis = rng.standard_normal((6, 5)), (lambda t: t.T), 0
    x = Tensor(base, requires_grad=True)
    logits = view(x)
    assert not logits.data.flags.c_contiguous
    n_classes = logits.shape[axis]
    targets = rng.integers(0, n_classes, np.delete(np.array(logits.shape), axis % logits.ndim))
    tg.functional.cross_entropy(logits, targets, axis=axis, reduction="sum").backward()
    # Oracle: numpy on a C-ordered copy, classes moved last.
    z = np.moveaxis(np.ascontiguousarray(logits.data), axis, -1)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.put_along_axis(p, targets[..., None], np.take_along_axis(p, targets[..., None], -1) - 1, -1)
    want_view_grad = np.moveaxis(p, -1, axis)
    got_view_grad = view(Tensor(x.grad.data)).data  # type: ignore[union-attr]
    np.testing.assert_allclose(got_view_grad, want_view_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("targets", "axis", "error", "message"),
    [
        (np.array([3, 0]), 1, IndexError, r"softmax_cross_entropy: targets must lie in \[0, 3\)"),
        (np.array([-1, 0]), 1, IndexError, r"softmax_cross_entropy: targets must lie"),
        (np.array([0, 1, 2, 0]), 1, ValueError, r"targets have shape \(4,\) .* need \(2,\)"),
        (np.array([0.0, 1.0]), 1, TypeError, "softmax_cross_entropy: targets must be an integer"),
        ([0, 1], 1, TypeError, "softmax_cross_entropy: targets must be an integer array"),
        (np.array([0, 1]), -1, ValueError, r"softmax_cross_entropy: axis must be in \[0, 2\)"),
    ],
)
def test_softmax_cross_entropy_checks_its_targets(
    targets: Any, axis: int, error: Any, message: str
) -> None:
    """Called directly (not through F.cross_entropy), bad targets still name the op."""
    logits = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        ops.softmax_cross_entropy(logits, targets=targets, axis=axis)


def test_scope_works_as_a_decorator_and_decides_when_entered() -> None:
    from tinygrad_rnn import viz
    from tinygrad_rnn.scope import current_scope, scope

    @scope("encoder")
    def inside() -> tuple[str, ...]:
        return current_scope()

    early = scope("made-before-recording")
    assert inside() == ()  # nothing records: nothing is stored
    with viz.trace():
        assert inside() == ("encoder",)
        with early:
            assert current_scope() == ("made-before-recording",)
    assert current_scope() == ()
