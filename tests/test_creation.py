"""Creation functions: PyTorch's shapes, values and default dtypes; random draws under jit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn.creation import _bernoulli_scaled

torch = pytest.importorskip("torch")

TORCH_DTYPE = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64}
TORCH_DTYPE[torch.bool] = np.bool_

small_shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


def same_as_torch(ours: tg.Tensor, theirs: torch.Tensor, rtol: float = 0.0) -> None:
    assert ours.dtype == TORCH_DTYPE[theirs.dtype], (ours.dtype, theirs.dtype)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=rtol, atol=rtol * 10)


@given(small_shapes)
def test_zeros_ones_full_match_torch_in_shape_value_and_dtype(shape: tuple[int, ...]) -> None:
    if shape:  # torch.zeros() with no size is an error; ours is a 0-d tensor
        same_as_torch(tg.zeros(*shape), torch.zeros(*shape))
    same_as_torch(tg.zeros(shape), torch.zeros(shape))
    same_as_torch(tg.ones(shape), torch.ones(shape))
    for fill in (2, 2.5, True, -7):
        same_as_torch(tg.full(shape, fill), torch.full(shape, fill))


@given(
    st.integers(-5, 5),
    st.integers(-5, 12),
    st.sampled_from([1, 2, 3, -1, 0.5, 0.3, -0.7]),
)
def test_arange_matches_torch(start: int, end: int, step: float) -> None:
    if (end - start) * step < 0:
        with pytest.raises(ValueError, match="arange: the range"):
            tg.arange(start, end, step)
        return
    # Same length and dtype; float32 values within rounding (torch splits the range in
    # halves and counts from both ends, numpy from the start).
    same_as_torch(tg.arange(start, end, step), torch.arange(start, end, step), rtol=1e-6)


def test_arange_with_one_argument_counts_from_zero() -> None:
    same_as_torch(tg.arange(6), torch.arange(6))
    same_as_torch(tg.arange(2.5), torch.arange(2.5), rtol=1e-6)


@pytest.mark.parametrize(("n", "m"), [(0, None), (3, None), (2, 4), (4, 2)])
def test_eye_matches_torch(n: int, m: int | None) -> None:
    theirs = torch.eye(n) if m is None else torch.eye(n, m)
    same_as_torch(tg.eye(n, m), theirs)


def test_like_forms_keep_shape_and_dtype() -> None:
    x = tg.Tensor(np.arange(6.0).reshape(2, 3))  # float64
    for t, value in ((tg.zeros_like(x), 0.0), (tg.ones_like(x), 1.0), (tg.full_like(x, 4), 4.0)):
        assert t.shape == (2, 3) and t.dtype == np.float64
        assert (t.data == value).all()
    assert tg.zeros_like(x, dtype=np.float32).dtype == np.float32
    r = tg.randn_like(x, rng=np.random.default_rng(0))
    assert r.shape == (2, 3) and r.dtype == np.float64
    u = tg.rand_like(x, dtype=np.float32, rng=np.random.default_rng(0))
    assert u.dtype == np.float32 and ((u.data >= 0) & (u.data < 1)).all()


def test_requires_grad_makes_a_leaf_that_collects_gradients() -> None:
    w = tg.ones(3, dtype=np.float64, requires_grad=True)
    (w * tg.arange(3.0, dtype=np.float64)).sum().backward()
    assert w.grad is not None
    np.testing.assert_array_equal(w.grad.data, [0.0, 1.0, 2.0])


@pytest.mark.parametrize("fn", [tg.randn, tg.rand])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_draws_use_the_given_generator(fn, dtype) -> None:  # type: ignore[no-untyped-def]
    a = fn(3, 4, dtype=dtype, rng=np.random.default_rng(7))
    b = fn((3, 4), dtype=dtype, rng=np.random.default_rng(7))
    assert a.dtype == dtype and a.shape == (3, 4)
    np.testing.assert_array_equal(a.data, b.data)
    gen = np.random.default_rng(7)
    draw = gen.standard_normal if fn is tg.randn else gen.random
    direct = draw((3, 4), dtype=dtype)
    np.testing.assert_array_equal(a.data, direct)


def test_manual_seed_makes_the_default_generator_reproducible() -> None:
    tg.manual_seed(3)
    first = tg.randn(5).data
    tg.manual_seed(3)
    np.testing.assert_array_equal(tg.randn(5).data, first)
    assert not np.array_equal(tg.randn(5).data, first)


def test_random_draws_have_the_right_distribution() -> None:
    rng = np.random.default_rng(0)
    n = tg.randn(200_000, dtype=np.float64, rng=rng).data
    u = tg.rand(200_000, dtype=np.float64, rng=rng).data
    # Standard errors: mean 1/sqrt(n) ≈ 0.0022; six of them bound a correct draw.
    assert abs(n.mean()) < 0.014 and abs(n.std() - 1) < 0.01
    assert abs(u.mean() - 0.5) < 0.004 and u.min() >= 0 and u.max() < 1


def test_a_jitted_function_draws_fresh_values_on_every_replay() -> None:
    """Each replay draws what the next eager call would draw from the same generator."""
    w = tg.Tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True)

    def step(x: tg.Tensor, gen: np.random.Generator) -> tg.Tensor:
        noise = tg.randn(3, 4, dtype=np.float64, rng=gen)
        mask = _bernoulli_scaled((3, 4), 0.6, np.dtype(np.float64), gen)
        y = ((x * w + noise) * mask).sum()
        y.backward()
        return y

    gen_jit, gen_eager = np.random.default_rng(11), np.random.default_rng(11)
    jitted = tg.jit(lambda x: step(x, gen_jit))
    x = tg.Tensor(np.ones((3, 4)))
    outs, grads = [], []
    for _ in range(4):
        w.grad = None
        outs.append(jitted(x).item())
        assert w.grad is not None
        grads.append(w.grad.data.copy())
    for k in range(4):
        w.grad = None
        assert step(x, gen_eager).item() == pytest.approx(outs[k], rel=1e-12)
        assert w.grad is not None
        np.testing.assert_allclose(w.grad.data, grads[k], rtol=1e-12)
    assert len({round(o, 9) for o in outs}) == 4  # four different draws


def test_the_package_generator_is_read_at_replay_time() -> None:
    jitted = tg.jit(lambda x: x + tg.rand(4, dtype=np.float64))
    x = tg.Tensor(np.zeros(4))
    tg.manual_seed(5)
    first = jitted(x).data  # the trace
    tg.manual_seed(5)
    np.testing.assert_array_equal(jitted(x).data, first)  # a replay, after a new seed


def test_dropout_mask_keeps_the_expected_fraction_and_scale() -> None:
    m = _bernoulli_scaled((400, 500), 0.7, np.dtype(np.float32), np.random.default_rng(1)).data
    assert m.dtype == np.float32
    assert set(np.unique(m)) == {np.float32(0), np.float32(1 / 0.7)}
    kept = (m != 0).mean()
    assert abs(kept - 0.7) < 0.004  # 6 standard errors of 200k Bernoulli draws


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: tg.zeros(2, -1), ValueError, "zeros: sizes must be non-negative"),
        (lambda: tg.ones(2.5), TypeError, "ones: sizes"),
        (lambda: tg.full((2,), "a"), TypeError, "full: fill_value"),
        (lambda: tg.arange(0, 5, 0), ValueError, "arange: step"),
        (lambda: tg.arange(0, float("inf")), ValueError, "arange: end must be finite"),
        (lambda: tg.eye(-1), ValueError, "eye: n"),
        (lambda: tg.randn(2, dtype=np.int64), TypeError, "randn: random values need a floating"),
        (lambda: tg.rand(2, rng=0), TypeError, "rand: rng must be"),
        (lambda: tg.zeros(2, dtype="U3"), TypeError, "zeros: dtype must be a number"),
        (lambda: tg.arange(3, requires_grad=True), TypeError, "arange: only floating"),
        (lambda: tg.zeros_like(np.zeros(2)), TypeError, "zeros_like: expected a Tensor"),
    ],
)
def test_bad_arguments_are_named(call, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        call()


def test_a_parameter_made_inside_a_jitted_function_is_refused() -> None:
    @tg.jit
    def f(x: tg.Tensor) -> tg.Tensor:
        return x * tg.randn(2, dtype=np.float64, requires_grad=True)

    with pytest.raises(RuntimeError, match="randn: a tensor that requires grad made inside a jit"):
        f(tg.Tensor(np.ones(2)))
