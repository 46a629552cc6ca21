"""``tinygrad_rnn.nn.init`` against ``torch.nn.init`` (PyTorch 2.13) and identities.

The random functions draw from the ``rng`` they are given, so each is checked against a
second generator with the same seed: ``xavier_uniform_`` must give exactly
``rng.uniform(-bound, bound)`` with torch's bound (torch's own fan computation and
``calculate_gain``), for shapes drawn by hypothesis. ``orthogonal_`` is checked by
``W Wᵀ = gain² I`` (or ``Wᵀ W``) and by being the Q of a QR factorisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402
from tinygrad_rnn.nn import init  # noqa: E402
from tinygrad_rnn.nn.init import _fan_in_and_fan_out  # noqa: E402
from tinygrad_rnn.tensor import Tensor  # noqa: E402

SHAPES = st.lists(st.integers(1, 7), min_size=2, max_size=4).map(tuple)
NONLINEARITIES = ["linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


def _param(shape: tuple[int, ...], dtype: Any = np.float64) -> nn.Parameter:
    return nn.Parameter(np.full(shape, 7.0), dtype=dtype)


def _torch_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    fans: tuple[int, int] = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    return fans


# ------------------------------------------------------------------------- fans and gains
@given(shape=SHAPES)
def test_fans_are_torchs(shape: tuple[int, ...]) -> None:
    assert _fan_in_and_fan_out(shape, "test") == _torch_fans(shape)


@pytest.mark.parametrize("name", NONLINEARITIES)
@pytest.mark.parametrize("param", [None, 0.2, 1, -0.5])
def test_calculate_gain_is_torchs(name: str, param: Any) -> None:
    assert init.calculate_gain(name, param) == pytest.approx(
        torch.nn.init.calculate_gain(name, param), rel=1e-15
    )


# ------------------------------------------------------------- bounds: the same draws as numpy
@given(shape=SHAPES, gain=st.floats(0.1, 3.0), seed=st.integers(0, 2**32 - 1))
def test_xavier_uniform_bound_is_torchs(shape: tuple[int, ...], gain: float, seed: int) -> None:
    fan_in, fan_out = _torch_fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))  # torch.nn.init's documented formula
    w = _param(shape)
    assert init.xavier_uniform_(w, gain=gain, rng=np.random.default_rng(seed)) is w
    want = np.random.default_rng(seed).uniform(-bound, bound, size=shape)
    np.testing.assert_allclose(w.data, want, rtol=1e-14, atol=1e-15)
    assert np.abs(w.data).max() <= bound


@given(
    shape=SHAPES,
    a=st.sampled_from([0.0, 0.01, 0.2, math.sqrt(5)]),
    mode=st.sampled_from(["fan_in", "fan_out", "FAN_OUT"]),
    nonlinearity=st.sampled_from(["leaky_relu", "relu", "tanh", "linear"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_kaiming_uniform_bound_is_torchs(
    shape: tuple[int, ...], a: float, mode: str, nonlinearity: str, seed: int
) -> None:
    fan_in, fan_out = _torch_fans(shape)
    fan = fan_in if mode.lower() == "fan_in" else fan_out
    bound = math.sqrt(3.0) * torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    w = _param(shape)
    init.kaiming_uniform_(
        w, a=a, mode=mode, nonlinearity=nonlinearity, rng=np.random.default_rng(seed)
    )
    want = np.random.default_rng(seed).uniform(-bound, bound, size=shape)
    np.testing.assert_allclose(w.data, want, rtol=1e-14, atol=1e-15)


def test_kaiming_uniform_with_sqrt5_is_the_default_init_of_torch_linear() -> None:
    """torch.nn.Linear initialises its weight by kaiming_uniform_(a=√5): U(±1/√in)."""
    w = _param((6, 9))
    init.kaiming_uniform_(w, a=math.sqrt(5), rng=np.random.default_rng(3))
    want = np.random.default_rng(3).uniform(-1 / 3, 1 / 3, size=(6, 9))
    np.testing.assert_allclose(w.data, want, rtol=1e-14)


def test_the_bounds_agree_with_torchs_own_draws() -> None:
    """On a large tensor torch's values fill the same interval: max |w| within 0.5 %."""
    shape = (300, 200)
    torch.manual_seed(0)
    for ours, theirs in [
        (
            lambda w: init.xavier_uniform_(w, gain=1.7),
            lambda t: torch.nn.init.xavier_uniform_(t, gain=1.7),
        ),
        (
            lambda w: init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"),
            lambda t: torch.nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"),
        ),
    ]:
        w = _param(shape)
        ours(w)
        t = theirs(torch.empty(shape, dtype=torch.float64))
        assert np.abs(w.data).max() == pytest.approx(t.abs().max().item(), rel=5e-3)


@given(
    shape=st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple),
    lo=st.floats(-3, 3),
    width=st.floats(0, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_uniform_and_normal_draw_from_rng(
    shape: tuple[int, ...], lo: float, width: float, seed: int
) -> None:
    w = _param(shape)
    init.uniform_(w, lo, lo + width, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(
        w.data, np.random.default_rng(seed).uniform(lo, lo + width, size=shape)
    )
    assert ((w.data >= lo) & (w.data <= lo + width)).all()
    init.normal_(w, mean=lo, std=width, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(w.data, np.random.default_rng(seed).normal(lo, width, size=shape))


def test_uniform_and_normal_statistics() -> None:
    w = _param((400, 500))
    init.uniform_(w, -2.0, 3.0, rng=np.random.default_rng(0))
    n = w.size
    assert abs(w.data.mean() - 0.5) < 5 * math.sqrt(25 / 12 / n)
    assert abs(w.data.var() - 25 / 12) < 0.01
    init.normal_(w, mean=1.0, std=0.5, rng=np.random.default_rng(1))
    assert abs(w.data.mean() - 1.0) < 5 * 0.5 / math.sqrt(n)
    assert abs(w.data.std() - 0.5) < 0.002


# ------------------------------------------------------------------------------ orthogonal
@given(
    shape=st.lists(st.integers(1, 8), min_size=2, max_size=3).map(tuple),
    gain=st.sampled_from([1.0, 0.5, 2.0, -1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_orthogonal_gives_orthonormal_rows_or_columns(
    shape: tuple[int, ...], gain: float, seed: int
) -> None:
    w = _param(shape)
    assert init.orthogonal_(w, gain=gain, rng=np.random.default_rng(seed)) is w
    rows = shape[0]
    W = w.data.reshape(rows, -1)
    cols = W.shape[1]
    if rows <= cols:
        np.testing.assert_allclose(W @ W.T, gain**2 * np.eye(rows), atol=1e-12)
    if rows >= cols:
        np.testing.assert_allclose(W.T @ W, gain**2 * np.eye(cols), atol=1e-12)


@given(rows=st.integers(1, 8), cols=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_orthogonal_is_the_q_of_the_normal_draw_with_positive_r(
    rows: int, cols: int, seed: int
) -> None:
    """PyTorch's algorithm: G standard normal (transposed when wide), G = Q R with R's
    diagonal made positive; so Qᵀ G is upper triangular with a positive diagonal."""
    w = _param((rows, cols))
    init.orthogonal_(w, rng=np.random.default_rng(seed))
    G = np.random.default_rng(seed).standard_normal((rows, cols))
    Q = w.data
    if rows < cols:
        G, Q = G.T, Q.T
    R = Q.T @ G
    np.testing.assert_allclose(np.tril(R, -1), 0.0, atol=1e-12)
    assert (np.diag(R) > 0).all()


def test_orthogonal_float32_and_torch_agree_on_the_property() -> None:
    w = _param((12, 5), dtype=np.float32)
    init.orthogonal_(w, gain=1.5, rng=np.random.default_rng(0))
    assert w.dtype == np.float32
    t = torch.nn.init.orthogonal_(torch.empty(12, 5, dtype=torch.float64), gain=1.5).numpy()
    np.testing.assert_allclose(w.data.T @ w.data, t.T @ t, atol=1e-5)


# ------------------------------------------------------------------------- in place, dtypes
INITS: dict[str, Callable[[Tensor], Tensor]] = {
    "uniform_": lambda w: init.uniform_(w, -1, 1, rng=np.random.default_rng(0)),
    "normal_": lambda w: init.normal_(w, rng=np.random.default_rng(0)),
    "zeros_": init.zeros_,
    "constant_": lambda w: init.constant_(w, 0.25),
    "xavier_uniform_": lambda w: init.xavier_uniform_(w, rng=np.random.default_rng(0)),
    "kaiming_uniform_": lambda w: init.kaiming_uniform_(w, rng=np.random.default_rng(0)),
    "orthogonal_": lambda w: init.orthogonal_(w, rng=np.random.default_rng(0)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(INITS))
def test_in_place_keeps_identity_shape_and_dtype(name: str, dtype: Any) -> None:
    w = _param((4, 3), dtype=dtype)
    old = w.data
    assert INITS[name](w) is w
    assert w.shape == (4, 3) and w.dtype == dtype and w.requires_grad
    assert not np.array_equal(w.data, old)
    np.testing.assert_array_equal(old, 7.0)  # a new array: the old one is untouched


def test_zeros_and_constant_values() -> None:
    w = _param((2, 3))
    np.testing.assert_array_equal(init.zeros_(w).data, np.zeros((2, 3)))
    np.testing.assert_array_equal(init.constant_(w, -1.5).data, np.full((2, 3), -1.5))
    counts = Tensor(np.arange(4))  # integer tensors can be filled with constants
    assert init.constant_(counts, 2).data.dtype == np.int64


@pytest.mark.parametrize("name", sorted(INITS))
def test_initialising_while_a_graph_holds_the_weight(name: str) -> None:
    """A graph recorded before locks the weight's array read-only (writing into it fails);
    the new array is assigned instead, and backward still uses the values of the forward."""
    w = _param((3, 3))
    x = np.arange(9.0).reshape(3, 3)
    loss = (w * w * x).sum()
    assert not w.data.flags.writeable  # why the init cannot write into the array
    INITS[name](w)
    loss.backward()
    assert w.grad is not None
    np.testing.assert_array_equal(w.grad.data, 2 * 7.0 * x)  # d/dw of w² x at the old w


def test_a_jitted_function_sees_the_new_values() -> None:
    w = _param((3,))

    @tg.jit
    def f(x: Any) -> Any:
        return (w * x).sum()

    assert f(np.ones(3)).item() == 21.0
    assert f(np.ones(3)).item() == 21.0  # replayed
    init.constant_(w, 2.0)
    assert f(np.ones(3)).item() == 6.0


def test_the_default_generator_is_used_without_rng() -> None:
    a, b = _param((5, 5)), _param((5, 5))
    init.orthogonal_(a)
    init.orthogonal_(b)
    assert not np.allclose(a.data, b.data)
    np.testing.assert_allclose(a.data @ a.data.T, np.eye(5), atol=1e-12)


def test_orthogonal_recurrent_weights_of_an_lstm() -> None:
    """The docs' recipe: every weight_hh of an LSTM, each H x H gate block made orthogonal."""
    lstm = nn.LSTM(3, 4, num_layers=2, dtype=np.float64, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for name, p in lstm.named_parameters():
        if name.startswith("weight_hh"):
            blocks = [Tensor(np.zeros((4, 4))) for _ in range(4)]
            p.data = np.concatenate([init.orthogonal_(b, rng=rng).data for b in blocks])
            for k in range(4):
                g = p.data[4 * k : 4 * k + 4]
                np.testing.assert_allclose(g @ g.T, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("name", ["xavier_uniform_", "kaiming_uniform_", "orthogonal_"])
def test_empty_tensors_are_returned_unchanged(name: str) -> None:
    w = nn.Parameter(np.zeros((0, 3)))
    assert INITS[name](w) is w and w.shape == (0, 3)


# ------------------------------------------------------------------------------- bad input
BAD = [
    (lambda: init.zeros_(np.zeros(3)), TypeError, r"zeros_: tensor must be a Tensor .*got ndarray"),
    (
        lambda: init.uniform_(_param((2,)) * 2),
        ValueError,
        r"uniform_: tensor \(shape \(2,\)\) was made by op 'mul'; only leaf tensors",
    ),
    (
        lambda: init.normal_(Tensor(np.arange(3))),
        TypeError,
        r"normal_: tensor has dtype int64; random values need a floating dtype",
    ),
    (
        lambda: init.xavier_uniform_(_param((5,))),
        ValueError,
        r"xavier_uniform_: fan_in and fan_out need a tensor with 2 or more dimensions, "
        r"got shape \(5,\)",
    ),
    (
        lambda: init.kaiming_uniform_(_param((5,))),
        ValueError,
        r"kaiming_uniform_: fan_in and fan_out need a tensor with 2 or more dimensions",
    ),
    (
        lambda: init.orthogonal_(_param((5,))),
        ValueError,
        r"orthogonal_: tensor must have 2 or more dimensions, got shape \(5,\)",
    ),
    (
        lambda: init.kaiming_uniform_(_param((2, 2)), mode="fan_avg"),
        ValueError,
        r"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got 'fan_avg'",
    ),
    (
        lambda: init.kaiming_uniform_(_param((2, 2)), nonlinearity="gelu"),
        ValueError,
        r"calculate_gain: unsupported nonlinearity 'gelu'; supported: linear",
    ),
    (
        lambda: init.calculate_gain("leaky_relu", "steep"),  # type: ignore[arg-type]
        ValueError,
        r"calculate_gain: param \(the negative slope of leaky_relu\) must be a number, got 'steep'",
    ),
    (
        lambda: init.uniform_(_param((2,)), 1.0, 0.0),
        ValueError,
        r"uniform_: a must be <= b, got a=1.0, b=0.0",
    ),
    (lambda: init.uniform_(_param((2,)), 0.0, math.inf), ValueError, r"uniform_: b must be finite"),
    (
        lambda: init.normal_(_param((2,)), std=-1.0),
        ValueError,
        r"normal_: std must be >= 0, got -1.0",
    ),
    (
        lambda: init.orthogonal_(_param((2, 2)), gain="big"),
        TypeError,
        r"orthogonal_: gain must be a real number",
    ),  # type: ignore[arg-type]
    (
        lambda: init.constant_(_param((2,)), None),
        TypeError,
        r"constant_: val must be a real number, got None",
    ),  # type: ignore[arg-type]
    (
        lambda: init.uniform_(_param((2,)), rng=0),
        TypeError,
        r"uniform_: rng must be a numpy\.random\.Generator or None, got int",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_input_is_a_clear_error_and_changes_nothing(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_a_failed_init_leaves_the_tensor_as_it_was() -> None:
    w = _param((2, 2))
    old = w.data
    with pytest.raises(ValueError):
        init.kaiming_uniform_(w, mode="sideways")
    assert w.data is old
