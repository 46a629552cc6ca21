"""The backward engine: accumulation, freeing, errors, no_grad, higher order, long chains."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import engine, ops
from tinygrad_rnn.autograd import Primitive
from tinygrad_rnn.tensor import Tensor


def _randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def test_leaf_gradients_accumulate_across_backward_calls() -> None:
    x = Tensor(_randn(3), requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 3.0)
    x.zero_grad()
    assert x.grad is None


def test_node_used_many_times_gets_the_sum_of_its_gradients() -> None:
    x = Tensor(_randn(4), requires_grad=True)
    y = x.tanh()
    (y * y * y + y).sum().backward()  # y feeds four uses
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad.data, (3 * t**2 + 1) * (1 - t**2), rtol=1e-12)


def test_second_backward_through_freed_graph_raises_clear_error() -> None:
    x = Tensor(_randn(2), requires_grad=True)
    loss = x.tanh().sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"freed.*retain_graph=True"):
        loss.backward()


def test_retain_graph_allows_a_second_backward_and_frees_otherwise() -> None:
    x = Tensor(_randn(2), requires_grad=True)
    y = x.exp()
    loss = y.sum()
    loss.backward(retain_graph=True)
    assert y._node is not None and not y._node.freed
    loss.backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.exp(x.data))
    assert y._node.freed and y._node.arrays is None


def test_backward_of_non_scalar_needs_a_gradient() -> None:
    x = Tensor(_randn(2, 3), requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))
    y.backward(np.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad.data, np.ones((2, 3)))


def test_integer_tensors_cannot_require_grad() -> None:
    with pytest.raises(TypeError, match=r"floating-point.*int"):
        Tensor(np.arange(3), requires_grad=True)
    t = Tensor(np.arange(3))
    assert t.dtype.kind == "i" and not t.requires_grad


def test_backward_on_tensor_without_graph_raises() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(_randn(1)).backward()


def test_mismatched_shapes_name_the_op_and_both_shapes() -> None:
    a, b = Tensor(np.zeros((2, 3))), Tensor(np.zeros(4))
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4,\)"):
        _ = a + b
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\) @ \(4, 5\)"):
        _ = a @ Tensor(np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for shape \(2, 3\)"):
        a.sum(axis=2)


def test_grad_returns_gradients_without_touching_dot_grad() -> None:
    x = Tensor(_randn(3), requires_grad=True)
    w = Tensor(_randn(3, seed=1), requires_grad=True)
    h = x * w
    loss = h.tanh().sum()
    gx, gh = tg.grad(loss, [x, h])
    assert x.grad is None and w.grad is None
    dh = 1 - np.tanh(x.data * w.data) ** 2
    np.testing.assert_allclose(gh.data, dh)
    np.testing.assert_allclose(gx.data, dh * w.data)


def test_grad_unused_input_raises_unless_allowed() -> None:
    x = Tensor(_randn(2), requires_grad=True)
    unused = Tensor(_randn(2), requires_grad=True)
    loss = x.sum()
    with pytest.raises(ValueError, match=r"inputs\[1\].*allow_unused=True"):
        tg.grad(loss, [x, unused], retain_graph=True)
    gx, gu = tg.grad(loss, [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.data, np.ones(2))


def test_grad_with_several_outputs_and_grad_outputs_is_linear() -> None:
    x = Tensor(_randn(3), requires_grad=True)
    a, b = x.exp(), x * x
    ga, gb = _randn(3, seed=2), _randn(3, seed=3)
    (gx,) = tg.grad([a, b], [x], grad_outputs=[ga, gb])
    np.testing.assert_allclose(gx.data, ga * np.exp(x.data) + gb * 2 * x.data)


def test_no_grad_records_nothing_as_context_and_decorator() -> None:
    x = Tensor(_randn(2), requires_grad=True)
    with tg.no_grad():
        y = x * 2
        with tg.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad and not z.is_leaf

    @tg.no_grad()
    def f(t: Tensor) -> Tensor:
        return t.exp()

    assert not f(x).requires_grad
    assert tg.is_grad_enabled()


def test_create_graph_gives_hessian_vector_products() -> None:
    x = Tensor(_randn(5), requires_grad=True)
    v = _randn(5, seed=4)
    loss = (x**3).sum() + (x.tanh() * x).sum()
    (g,) = tg.grad(loss, [x], create_graph=True)
    (hv,) = tg.grad(g, [x], grad_outputs=v)
    t = np.tanh(x.data)
    # d²/dx² [x³ + x tanh x] = 6x + 2(1 - t²) - 2 x t (1 - t²)
    hess_diag = 6 * x.data + 2 * (1 - t**2) - 2 * x.data * t * (1 - t**2)
    np.testing.assert_allclose(hv.data, hess_diag * v, rtol=1e-12)


def test_backward_create_graph_leaves_differentiable_grads() -> None:
    x = Tensor(np.array([0.3, -1.2]), requires_grad=True)
    (x.sigmoid().sum()).backward(create_graph=True)
    assert x.grad is not None and x.grad.requires_grad
    g2 = tg.grad(x.grad.sum(), [x])[0]
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(g2.data, s * (1 - s) * (1 - 2 * s), rtol=1e-12)


def test_third_derivative_of_exp_is_exp() -> None:
    x = Tensor(np.array([0.7]), requires_grad=True)
    y = x.exp().sum()
    (g1,) = tg.grad(y, [x], create_graph=True)
    (g2,) = tg.grad(g1.sum(), [x], create_graph=True)
    (g3,) = tg.grad(g2.sum(), [x])
    np.testing.assert_allclose(g3.data, np.exp(0.7), rtol=1e-14)


def test_float32_preserved_through_ops_and_grads() -> None:
    x = Tensor(_randn(2, 3), requires_grad=True, dtype=np.float32)
    w = Tensor(_randn(3, 4), requires_grad=True, dtype=np.float32)
    y = ((x @ w) * 2.0 + np.float64(1.0)).tanh() / 3 - 1
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_mixed_precision_inputs_get_grads_in_their_own_dtype() -> None:
    a = Tensor(_randn(3), requires_grad=True, dtype=np.float32)
    b = Tensor(_randn(3, seed=1), requires_grad=True, dtype=np.float64)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.data, b.data.astype(np.float32), rtol=1e-6)


def test_inputs_passed_in_are_not_modified() -> None:
    arr = _randn(3)
    before = arr.copy()
    x = Tensor(arr, requires_grad=True)
    g = np.ones(3)
    (x * 2).backward(g)
    x.data += 1  # the tensor owns a copy
    np.testing.assert_array_equal(arr, before)
    np.testing.assert_array_equal(g, np.ones(3))


def test_graph_is_released_when_the_loss_goes_away() -> None:
    gc.disable()
    try:
        x = Tensor(_randn(3), requires_grad=True)
        h = x.tanh()
        ref = weakref.ref(h)
        loss = (h * 2).sum()
        del h
        assert ref() is not None  # held by the graph
        del loss
        assert ref() is None  # no reference cycle kept it alive
    finally:
        gc.enable()


def test_backward_frees_intermediates_even_while_loss_is_alive() -> None:
    gc.disable()
    try:
        x = Tensor(_randn(3), requires_grad=True)
        h = x.tanh()
        ref = weakref.ref(h)
        loss = (h * 2).sum()
        del h
        loss.backward()
        assert ref() is None
    finally:
        gc.enable()


@pytest.mark.slow
def test_100k_step_chain_backprops_without_recursion() -> None:
    x = Tensor(np.array([0.5]), requires_grad=True)
    h = x
    for _ in range(100_000):
        h = (h * 0.999).tanh()
    h.sum().backward()
    # Oracle: the same chain rule product accumulated in plain numpy.
    v, d = 0.5, 1.0
    for _ in range(100_000):
        v = np.tanh(v * 0.999)
        d *= 0.999 * (1 - v * v)
    np.testing.assert_allclose(x.grad.data, [d], rtol=1e-9)


def test_tensor_basics() -> None:
    t = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.shape == (2, 2) and t.ndim == 2 and t.dtype == np.float64 and len(t) == 2
    assert t.is_leaf and (t * 1).is_leaf is False
    np.testing.assert_array_equal(t.T.data, [[1, 3], [2, 4]])
    np.testing.assert_array_equal(np.asarray(t), t.data)
    assert Tensor(3.5).item() == 3.5
    assert "requires_grad=True" in repr(t) and "op=mul" in repr(t * 2)
    d = t.detach()
    assert not d.requires_grad and d.data is t.data
    mask = t > 2
    assert mask.dtype == np.bool_ and not mask.requires_grad
    np.testing.assert_array_equal((t == 1.0).data, [[True, False], [False, False]])
    np.testing.assert_array_equal((2 - t).data, 2 - t.data)
    np.testing.assert_array_equal((np.ones(2) + t).data, 1 + t.data)
    np.testing.assert_array_equal(t.reshape(4).data, t.reshape((4,)).data)
    with pytest.raises(ValueError, match="one element"):
        t.item()


def test_gradcheck_catches_a_wrong_rule() -> None:
    bad_square = Primitive("bad_square", np.square, lambda g, ans, x: g * x)  # missing the 2
    x = Tensor(_randn(3), requires_grad=True)
    with pytest.raises(tg.GradcheckError, match=r"input 0 \(shape \(3,\)\) disagrees at index"):
        tg.gradcheck(lambda t: bad_square(t), [x])


def test_gradgradcheck_catches_a_rule_that_is_not_differentiable() -> None:
    # Right first derivative, but written on raw arrays: its own derivative is lost.
    opaque_square = Primitive("opaque_square", np.square, lambda g, ans, x: g * 2 * ops._value(x))
    x = Tensor(_randn(3), requires_grad=True)
    assert tg.gradcheck(lambda t: opaque_square(t), [x])
    with pytest.raises(tg.GradcheckError):
        tg.gradgradcheck(lambda t: opaque_square(t), [x])


def test_gradcheck_requires_float64() -> None:
    x = Tensor(_randn(2), requires_grad=True, dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        tg.gradcheck(lambda t: t * 2, [x])


def test_leaf_gradients_never_share_memory_with_each_other_or_the_caller() -> None:
    a = Tensor(np.zeros(3), requires_grad=True)
    b = Tensor(np.zeros(3), requires_grad=True)
    g = np.ones(3)
    (a + b).backward(g)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(a.grad.data, g)
    c = Tensor(np.zeros((2, 3)), requires_grad=True)
    gg = np.arange(6.0)
    (gc_,) = tg.grad(c.reshape(6), [c], grad_outputs=gg)
    assert not np.shares_memory(gc_.data, gg)


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 8 * 4 * 8, 2**30])
def test_shared_weight_gradient_is_the_same_however_its_terms_are_grouped(
    monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    """A weight used by T matmuls gets T terms ``x_tᵀ g_t``; the engine multiplies them out in
    groups (every term alone, a few at a time, all at once): the sum must not change."""
    monkeypatch.setattr(engine, "_FACTOR_CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(0)
    T, B, D, H = 7, 3, 4, 5
    xs, w0 = rng.standard_normal((T, B, D)), rng.standard_normal((D, H))
    w = Tensor(w0, requires_grad=True)
    loss = sum(((Tensor(xs[t]) @ w).tanh() ** 2).sum() for t in range(T))
    loss.backward()  # type: ignore[union-attr]
    # Oracle: the chain rule in plain numpy, d/dW Σ_t Σ tanh(x_t W)² = Σ_t x_tᵀ (2 y_t (1 - y_t²)).
    want = np.zeros((D, H))
    for t in range(T):
        y = np.tanh(xs[t] @ w0)
        want += xs[t].T @ (2 * y * (1 - y * y))
    np.testing.assert_allclose(w.grad.data, want, rtol=1e-12)  # type: ignore[union-attr]


def test_reused_gradient_buffers_are_never_handed_out_while_referenced() -> None:
    """Large zeroed gradient buffers are reused between backward passes, but a buffer that
    became someone's ``.grad`` (or is held in any other way) must never be overwritten."""
    T, B, H = 8, 64, 128  # 256 KiB of float32: large enough to be pooled
    grads = []
    for seed in range(3):
        rows = Tensor(np.random.default_rng(seed).standard_normal((T, B, H)), requires_grad=True)
        loss = sum((rows[t] * float(t + 1 + 10 * seed)).sum() for t in range(T))
        loss.backward()  # type: ignore[union-attr]
        grads.append(rows.grad.data)  # type: ignore[union-attr]
    for seed, g in enumerate(grads):  # each still holds its own gradient: row t is t + 1 + 10 seed
        want = np.arange(1.0, T + 1)[:, None, None] + 10 * seed
        np.testing.assert_array_equal(g, np.broadcast_to(want, g.shape))
    # Accumulating into an existing .grad (no zero_grad) leaves the earlier array alone.
    rows = Tensor(np.ones((T, B, H)), requires_grad=True)
    rows[1].sum().backward()
    first = rows.grad.data  # type: ignore[union-attr]
    rows[2].sum().backward()
    assert first[1].all() and not first[2].any()
    np.testing.assert_array_equal(rows.grad.data[1:3], 1.0)  # type: ignore[union-attr]


def test_a_buffer_that_stayed_inside_the_engine_is_reused_by_the_next_backward() -> None:
    T, B, H = 8, 64, 128
    x = Tensor(np.ones((T, B, H), dtype=np.float32), requires_grad=True)

    def step() -> None:
        y = x * 2.0  # the buffer is y's gradient, consumed by mul's rule: it never leaves
        sum((y[t] * float(t)).sum() for t in range(T)).backward()  # type: ignore[union-attr]

    engine._clear_pools()
    step()
    (free,) = engine._free_buffers()[(T * B * H, "<f4")]
    address = free.__array_interface__["data"][0]
    step()
    step()
    assert len(engine._free_buffers()[(T * B * H, "<f4")]) == 1  # taken and given back
    assert engine._free_buffers()[(T * B * H, "<f4")][0].__array_interface__["data"][0] == address
    np.testing.assert_array_equal(x.grad.data[:, 0, 0], 3 * 2.0 * np.arange(T))  # type: ignore[union-attr]


def test_pooling_does_not_change_a_two_layer_lstms_gradients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every gradient buffer pooled (from 0 bytes) or none (from 2**40 bytes): the same
    gradients, over two training steps, where the second reuses what the first gave back."""
    from tinygrad_rnn import nn

    results = []
    for pooled_from in (0, 2**40):
        monkeypatch.setattr(engine, "_POOLED_MIN_BYTES", pooled_from)
        engine._clear_pools()
        rng = np.random.default_rng(0)
        lstm = nn.LSTM(5, 6, num_layers=2, rng=rng, dtype=np.float64)
        xs = rng.standard_normal((4, 3, 5))
        for _ in range(2):
            lstm.zero_grad()
            out, _ = lstm(xs)
            (out**2).sum().backward()
            results.append([p.grad.data.copy() for p in lstm.parameters()])  # type: ignore[union-attr]
    for step in results[1:]:
        for got, want in zip(step, results[0]):
            np.testing.assert_array_equal(got, want)


def test_an_array_a_rule_returns_is_never_written_into_when_something_else_holds_it() -> None:
    """The engine adds a tensor's second gradient in place into the first when that first
    array is its own; a rule may return an array held elsewhere (here a constant), which
    must then be left untouched."""
    constant = np.ones(3)
    doubling = Primitive("doubling", lambda x: 2 * x, lambda g, ans, x: constant)
    x = Tensor(np.arange(3.0), requires_grad=True)
    (doubling(x) + doubling(x) + x * 3.0).sum().backward()
    np.testing.assert_array_equal(constant, np.ones(3))
    np.testing.assert_array_equal(x.grad.data, np.full(3, 5.0))  # type: ignore[union-attr]


def test_an_intermediate_is_released_during_backward_once_it_has_been_processed() -> None:
    """Backward frees as it goes: when the rule of an earlier op runs, the values of a later
    intermediate (processed already, held by nobody else) must be gone, not kept until
    the pass ends."""
    seen: list[bool] = []
    later: list[weakref.ref[np.ndarray]] = []

    def rule(g: np.ndarray, ans: np.ndarray, x: np.ndarray) -> np.ndarray:
        gc.collect()
        seen.append(later[0]() is None)
        return g * 2.0

    first = Primitive("first", lambda x: 2.0 * x, rule)
    x = Tensor(np.ones((50, 50)), requires_grad=True)
    y = first(x)
    z = y.tanh()  # tanh saves y's values (its input), not its own output z
    later.append(weakref.ref(z.data))
    loss = (z * 1.0).sum()
    del z
    loss.backward()
    assert seen == [True]
    want = 2.0 * (1.0 - np.tanh(2.0) ** 2)  # the chain rule by hand
    np.testing.assert_allclose(x.grad.data, np.full((50, 50), want))  # type: ignore[union-attr]


def test_a_pass_holds_at_most_its_budget_of_buffers_for_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Buffers held for reuse live until the pass ends; beyond the budget they are not held,
    so a long pass does not keep every one of them. Gradients are the same either way."""
    T, B, H = 6, 64, 128  # each buffer: 6 * 64 * 128 * 8 = 384 KiB, large enough to pool
    per_buffer = T * B * H * 8
    results = []
    for budget in (0, per_buffer, 2 * per_buffer + 1, 10 * per_buffer):
        monkeypatch.setattr(engine, "_POOL_BYTES_PER_PASS", budget)
        engine._clear_pools()
        ys = [Tensor(np.full((T, B, H), k + 1.0), requires_grad=True) for k in range(3)]
        # Each product's gradient is a buffer filled row by row and consumed by mul's rule:
        # it never leaves the engine, so every held one goes to the pool at the end.
        products = [y * y for y in ys]
        loss = sum((m[t] * float(t)).sum() for m in products for t in range(T))
        loss.backward()  # type: ignore[union-attr]
        held = sum(len(v) for v in engine._free_buffers().values())
        assert held == min(3, budget // per_buffer)
        results.append([y.grad.data.copy() for y in ys])  # type: ignore[union-attr]
    want = [2 * (k + 1.0) * np.arange(T)[:, None, None] * np.ones((T, B, H)) for k in range(3)]
    for got in results:
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
