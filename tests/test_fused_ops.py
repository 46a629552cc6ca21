"""The fused ops of the recurrent steps against the elementary ops they replace.

``addmm`` is ``c + a @ b``; ``lstm_gates``, ``lstm_cell`` and ``lstm_hidden`` are the LSTM
equations written out with ``sigmoid``, ``tanh``, ``*`` and ``+``. The oracle is that
composition (values and gradients, float64), plus stability at huge gate values and clear
errors for shapes that do not fit. Finite-difference checks of their rules live in the
op registry (tests/test_ops_properties.py).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import ops
from tinygrad_rnn.testing import float_arrays

Tensor = tg.Tensor


def _composed_step(z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The LSTM update from elementary ops (the formulation the fused ops replace)."""
    i, f, g, o = ops.chunk(z, 4, axis=-1)
    c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_new.tanh(), c_new


def _fused_step(z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    acts = ops.lstm_gates(z)
    c_new = ops.lstm_cell(acts, c)
    return ops.lstm_hidden(acts, c_new), c_new


@st.composite
def _step_inputs(draw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    B, H = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    big = draw(st.sampled_from([3.0, 30.0]))  # 30: gates deep in their saturated tails
    z = draw(float_arrays((B, 4 * H), min_value=-big, max_value=big))
    c = draw(float_arrays((B, H)))
    gh, gc = draw(float_arrays((B, H))), draw(float_arrays((B, H)))
    return z, c, gh, gc


@given(_step_inputs())
def test_fused_lstm_step_equals_the_composition_of_elementary_ops(
    inputs: tuple[np.ndarray, ...],
) -> None:
    z0, c0, gh, gc = inputs
    results = []
    for step in (_composed_step, _fused_step):
        z, c = Tensor(z0, requires_grad=True), Tensor(c0, requires_grad=True)
        h_new, c_new = step(z, c)
        (h_new * gh + c_new * gc).sum().backward()
        results.append((h_new.data, c_new.data, z.grad.data, c.grad.data))  # type: ignore[union-attr]
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_gates_are_stable_and_exact_for_huge_values(dtype: Any) -> None:
    z = np.array([[-1e4, -100.0, -20.0, -3.0, 0.0, 3.0, 20.0, 1e4] * 4], dtype=dtype)  # H = 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acts = ops.lstm_gates(Tensor(z)).data
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
        (lambda: ops.lstm_gates(Tensor(np.ones((2, 6)))), "lstm_gates: the last axis"),
        (lambda: ops.lstm_cell(Tensor(np.ones((2, 8))), Tensor(np.ones((2, 3)))), "lstm_cell"),
        (lambda: ops.lstm_hidden(Tensor(np.ones((2, 8))), Tensor(np.ones(()))), "lstm_hidden"),
    ],
)
def test_bad_shapes_name_the_op_and_the_shapes(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "(" in str(info.value)  # the shapes are in the message


@pytest.mark.parametrize("activation", ["tanh", "relu", "lstm"])
@pytest.mark.parametrize("t", [None, 0, 2, -1])
def test_recurrent_affine_equals_its_elementary_ops(activation: str, t: int | None) -> None:
    """``act(gi[t] + h @ w)`` against getitem + addmm + the activation, values and gradients."""
    rng = np.random.default_rng(1)
    B, K, H = 2, 3, 4
    width = 4 * H if activation == "lstm" else H
    gi0 = rng.standard_normal((B, width) if t is None else (3, B, width)) * 3
    h0, w0 = rng.standard_normal((B, K)), rng.standard_normal((K, width))
    g_out = rng.standard_normal((B, width))

    def elementary(gi: Tensor, h: Tensor, w: Tensor) -> Tensor:
        z = ops.addmm(gi if t is None else gi[t], h, w)
        if activation == "tanh":
            return z.tanh()
        if activation == "relu":
            return z.relu()
        return ops.lstm_gates(z)

    def fused(gi: Tensor, h: Tensor, w: Tensor) -> Tensor:
        return ops.recurrent_affine(gi, h, w, t=t, activation=activation)

    results = []
    for fn in (elementary, fused):
        leaves = [Tensor(a, requires_grad=True) for a in (gi0, h0, w0)]
        out = fn(*leaves)
        (out * g_out).sum().backward()
        results.append([out.data, *(leaf.grad.data for leaf in leaves)])  # type: ignore[union-attr]
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_recurrent_affine_keeps_float32_and_its_inputs() -> None:
    rng = np.random.default_rng(2)
    gi = rng.standard_normal((3, 2, 8)).astype(np.float32)
    h, w = rng.standard_normal((2, 5)).astype(np.float32), rng.standard_normal((5, 8))
    before = gi.copy()
    out = ops.recurrent_affine(
        Tensor(gi, requires_grad=True),
        Tensor(h),
        Tensor(w.astype(np.float32)),
        t=1,
        activation="lstm",
    )
    assert out.dtype == np.float32
    np.testing.assert_array_equal(gi, before)  # the pre-activation is overwritten, not gi


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"t": 0, "activation": "sigmoid"}, ValueError, "recurrent_affine: activation"),
        ({"t": 5, "activation": "tanh"}, IndexError, r"recurrent_affine: step 5 .* \(3, 2, 4\)"),
        ({"t": None, "activation": "tanh"}, ValueError, r"recurrent_affine: c of shape"),
    ],
)
def test_recurrent_affine_errors_name_the_op(kwargs: Any, error: Any, message: str) -> None:
    gi, h, w = Tensor(np.ones((3, 2, 4))), Tensor(np.ones((2, 4))), Tensor(np.ones((4, 4)))
    with pytest.raises(error, match=message):
        ops.recurrent_affine(gi, h, w, **kwargs)


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
