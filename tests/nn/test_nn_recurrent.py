"""Sequence layers: equal to their cell unrolled, gradchecks, shapes, structure, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.scope import record_scopes

LAYERS = [nn.RNN, nn.LSTM, nn.GRU]


def graph_ops(*roots: tg.Tensor) -> list[str]:
    """The primitive names of every recorded node reachable from ``roots``."""
    names, seen, stack = [], set(), list(roots)
    while stack:
        t = stack.pop()
        if id(t) in seen or t._node is None or t._node.inputs is None:
            continue
        seen.add(id(t))
        names.append(t._node.prim.name)
        stack.extend(p for p in t._node.inputs if p is not None)
    return names


def dyadic(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Multiples of 1/8 in [-1/2, 1/2]: products and short sums of them are exact in float64,
    so a matmul gives the same bits whatever order or kernel BLAS uses."""
    return rng.integers(-4, 5, size=shape) / 8.0


def make_state(cls: Any, n: int, b: int, h: int, rng: np.random.Generator) -> Any:
    if cls is nn.LSTM:
        return dyadic(rng, (n, b, h)), dyadic(rng, (n, b, h))
    return dyadic(rng, (n, b, h))


def hidden(state: Any) -> Any:
    return state[0] if isinstance(state, tuple) else state


def expected_by_unrolling(layer: Any, x: np.ndarray, hx: Any) -> tuple[np.ndarray, list[Any]]:
    """The layer's output computed with cells and ``unroll``, layer by layer and direction."""
    dirs = layer.num_directions
    inp = np.swapaxes(x, 0, 1) if layer.batch_first else x
    finals = []
    for k in range(layer.num_layers):
        outs = []
        for d in range(dirs):
            cell = nn.cell_from_layer(layer, k, reverse=d == 1)
            idx = k * dirs + d
            state = (
                None
                if hx is None
                else ((hx[0][idx], hx[1][idx]) if isinstance(hx, tuple) else hx[idx])
            )
            seq = inp[::-1] if d == 1 else inp
            states = nn.unroll(cell, seq, state)
            hs = np.stack([hidden(s).data for s in states])
            outs.append(hs[::-1] if d == 1 else hs)
            finals.append(states[-1])
        inp = np.concatenate(outs, axis=-1)
    out = np.swapaxes(inp, 0, 1) if layer.batch_first else inp
    return out, finals


@given(
    kind=st.sampled_from(LAYERS),
    T=st.integers(1, 6),
    B=st.integers(1, 4),
    D=st.integers(1, 4),
    H=st.integers(1, 4),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    bias=st.booleans(),
    with_h0=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_equals_unrolled_cell_exactly(
    kind: Any,
    T: int,
    B: int,
    D: int,
    H: int,
    bidirectional: bool,
    batch_first: bool,
    bias: bool,
    with_h0: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    layer = kind(
        D, H, bias=bias, batch_first=batch_first, bidirectional=bidirectional, dtype=np.float64
    )
    layer.load_state_dict({n: dyadic(rng, p.shape) for n, p in layer.named_parameters()})
    x = dyadic(rng, (B, T, D) if batch_first else (T, B, D))
    n = layer.num_directions
    hx = make_state(kind, n, B, H, rng) if with_h0 else None
    out, final = layer(x, hx)
    expected, finals = expected_by_unrolling(layer, x, hx)
    # Bitwise equal: the hoisted all-steps projection and the per-step cell agree exactly.
    np.testing.assert_array_equal(out.data, expected)
    if kind is nn.LSTM:
        np.testing.assert_array_equal(final[0].data, np.stack([s[0].data for s in finals]))
        np.testing.assert_array_equal(final[1].data, np.stack([s[1].data for s in finals]))
    else:
        np.testing.assert_array_equal(final.data, np.stack([s.data for s in finals]))


@pytest.mark.parametrize("kind", LAYERS)
def test_two_layers_bidirectional_equal_unrolled_cells(kind: Any) -> None:
    rng = np.random.default_rng(11)
    layer = kind(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 2, 3))
    hx = make_state(kind, 4, 2, 4, rng)
    out, _ = layer(x, hx)
    expected, _ = expected_by_unrolling(layer, x, hx)
    # Layer 2 reads tanh outputs, which are not exact in any basis: BLAS may round differently.
    np.testing.assert_allclose(out.data, expected, rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------------------ gradcheck

CONFIGS = [
    {},
    {"num_layers": 2},
    {"bidirectional": True},
    {"batch_first": True},
    {"bias": False},
    {"num_layers": 2, "bidirectional": True, "batch_first": True},
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(c) or "default")
@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("with_h0", [True, False])
def test_layer_gradcheck(kind: Any, config: dict[str, Any], with_h0: bool) -> None:
    rng = np.random.default_rng(3)
    T, B, D, H = 3, 2, 2, 2
    layer = kind(D, H, dtype=np.float64, rng=rng, **config)
    n = layer.num_layers * layer.num_directions
    shape = (B, T, D) if layer.batch_first else (T, B, D)
    x = tg.Tensor(rng.standard_normal(shape), requires_grad=True)
    states = [tg.Tensor(rng.standard_normal((n, B, H)) * 0.5, requires_grad=True) for _ in range(2)]
    params = list(layer.parameters())

    def run(x: tg.Tensor, h0: tg.Tensor, c0: tg.Tensor, *_: Any) -> Any:
        hx = None
        if with_h0:
            hx = (h0, c0) if kind is nn.LSTM else h0
        out, final = layer(x, hx)
        return (out, *final) if kind is nn.LSTM else (out, final)

    inputs = [x, *states, *params] if with_h0 else [x, *(s.detach() for s in states), *params]
    assert tg.gradcheck(run, inputs)


def test_rnn_relu_gradcheck() -> None:
    rng = np.random.default_rng(4)
    layer = nn.RNN(2, 3, nonlinearity="relu", num_layers=2, dtype=np.float64, rng=rng)
    x = tg.Tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    assert tg.gradcheck(lambda x, *_: layer(x), [x, *layer.parameters()])


# ------------------------------------------------------------------------ shapes and layout


@pytest.mark.parametrize("kind", LAYERS)
def test_parameter_names_and_shapes(kind: Any) -> None:
    g = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}[kind]
    layer = kind(3, 5, num_layers=2, bidirectional=True)
    shapes = {n: p.shape for n, p in layer.named_parameters()}
    assert list(shapes)[:8] == [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_ih_l0_reverse",
        "weight_hh_l0_reverse",
        "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
    ]
    assert shapes["weight_ih_l0"] == (g * 5, 3)
    assert shapes["weight_ih_l1_reverse"] == (g * 5, 10)
    assert shapes["weight_hh_l1"] == (g * 5, 5)
    assert shapes["bias_hh_l1_reverse"] == (g * 5,)
    assert len(shapes) == 16
    assert all(np.abs(p.data).max() <= 1 / np.sqrt(5) for p in layer.parameters())


@pytest.mark.parametrize("kind", LAYERS)
def test_output_shapes_batch_first_and_unbatched(kind: Any) -> None:
    rng = np.random.default_rng(5)
    T, B, D, H = 4, 3, 2, 5
    tf = kind(D, H, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng)
    bf = kind(D, H, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64)
    bf.load_state_dict(tf.state_dict())
    x = rng.standard_normal((T, B, D))
    out, final = tf(x)
    assert out.shape == (T, B, 2 * H)
    h_n = final[0] if kind is nn.LSTM else final
    assert h_n.shape == (4, B, H)
    out_bf, final_bf = bf(np.swapaxes(x, 0, 1))
    assert out_bf.shape == (B, T, 2 * H)
    np.testing.assert_array_equal(out_bf.data, np.swapaxes(out.data, 0, 1))
    np.testing.assert_array_equal(hidden(final_bf).data, h_n.data)  # h_n is never batch-first
    # The last forward step and the first reverse step are in h_n.
    np.testing.assert_array_equal(h_n.data[2], out.data[-1, :, :H])
    np.testing.assert_array_equal(h_n.data[3], out.data[0, :, H:])
    single, single_final = tf(x[:, 1])
    assert single.shape == (T, 2 * H) and hidden(single_final).shape == (4, H)
    np.testing.assert_allclose(single.data, out.data[:, 1], rtol=1e-13, atol=1e-15)


def test_unbatched_h0() -> None:
    rng = np.random.default_rng(6)
    layer = nn.LSTM(2, 3, dtype=np.float64, rng=rng)
    x, h0, c0 = rng.standard_normal((4, 2)), *rng.standard_normal((2, 1, 3))
    out, (h_n, c_n) = layer(x, (h0, c0))
    out_b, (h_b, c_b) = layer(x[:, None], (h0[:, None], c0[:, None]))
    assert h_n.shape == c_n.shape == (1, 3)
    np.testing.assert_allclose(out.data, out_b.data[:, 0], rtol=1e-13)
    np.testing.assert_allclose(h_n.data, h_b.data[:, 0], rtol=1e-13)
    np.testing.assert_allclose(c_n.data, c_b.data[:, 0], rtol=1e-13)


def test_float32_stays_float32() -> None:
    layer = nn.GRU(2, 3, rng=np.random.default_rng(0))
    out, h = layer(np.ones((2, 1, 2)))
    assert out.dtype == np.float32 and h.dtype == np.float32


@pytest.mark.parametrize("kind", LAYERS)
def test_projection_is_hoisted_out_of_the_time_loop(kind: Any) -> None:
    """One input matmul per direction for all steps, one W_hh transpose, T recurrent matmuls."""
    T = 5
    layer = kind(2, 3, bidirectional=True, dtype=np.float64)
    out, final = layer(np.ones((T, 2, 2)))
    ops = graph_ops(out, *(final if kind is nn.LSTM else (final,)))
    # x W_ihᵀ + b once per direction for all steps (linear), then gi_t + h W_hhᵀ once per
    # step (an addmm)
    assert ops.count("linear") == 2 and "matmul" not in ops
    assert ops.count("addmm") == 2 * T
    assert ops.count("transpose") == 2  # W_hhᵀ, once per direction


def test_scopes_per_layer_direction_and_step() -> None:
    layer = nn.LSTM(2, 2, num_layers=2, bidirectional=True, dtype=np.float64)
    with record_scopes():
        out, _ = layer(np.ones((3, 1, 2)))
    scopes = set()
    stack, seen = [out], set()
    while stack:
        t = stack.pop()
        if id(t) in seen or t._node is None or t._node.inputs is None:
            continue
        seen.add(id(t))
        scopes.add(t._node.scope)
        stack.extend(p for p in t._node.inputs if p is not None)
    for s in ["l0", "l0_reverse", "l1", "l1_reverse"]:
        for t in range(3):
            assert ("lstm", s, f"t={t}") in scopes
    assert ("lstm", "l1_reverse") in scopes  # the hoisted projection sits outside the steps


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kind", LAYERS)
def test_empty_sequence(kind: Any) -> None:
    with pytest.raises(ValueError, match=rf"{kind.__name__}: input is an empty sequence"):
        kind(2, 3)(np.zeros((0, 1, 2)))
    with pytest.raises(ValueError, match="empty sequence"):
        kind(2, 3, batch_first=True)(np.zeros((1, 0, 2)))


@pytest.mark.parametrize("kind", LAYERS)
def test_input_shape_and_type_errors(kind: Any) -> None:
    name = kind.__name__
    layer = kind(2, 3, dtype=np.float64)
    with pytest.raises(ValueError, match=rf"{name}: input must have shape \(seq_len, batch"):
        layer(np.zeros((4, 1, 3)))
    with pytest.raises(ValueError, match="input"):
        layer(np.zeros(4))
    with pytest.raises(TypeError, match=f"{name}: input must be a Tensor"):
        layer(None)
    with pytest.raises(TypeError, match=f"{name}: input has dtype float32"):
        layer(tg.Tensor(np.zeros((4, 1, 2), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"batch, seq_len"):
        kind(2, 3, batch_first=True)(np.zeros((4, 1, 3)))


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU])
def test_h0_shape_error(kind: Any) -> None:
    layer = kind(2, 3, num_layers=2)
    with pytest.raises(
        ValueError, match=rf"{kind.__name__}: h0 must have shape \(2, 1, 3\).*\(1, 1, 3\)"
    ):
        layer(np.zeros((4, 1, 2)), np.zeros((1, 1, 3)))


def test_lstm_state_errors() -> None:
    layer = nn.LSTM(2, 3, bidirectional=True)
    x = np.zeros((4, 1, 2))
    with pytest.raises(TypeError, match=r"LSTM: hx must be None or a tuple \(h0, c0\)"):
        layer(x, np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match=r"LSTM: c0 must have shape \(2, 1, 3\)"):
        layer(x, (np.zeros((2, 1, 3)), np.zeros((1, 1, 3))))


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="num_layers"):
        nn.LSTM(2, 3, num_layers=0)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(2, 3, nonlinearity="gelu")


def test_unroll_errors_and_states() -> None:
    cell = nn.LSTMCell(2, 3, dtype=np.float64)
    with pytest.raises(ValueError, match="unroll: xs is an empty sequence"):
        nn.unroll(cell, np.zeros((0, 1, 2)))
    with pytest.raises(TypeError, match="unroll: xs"):
        nn.unroll(cell, 3.0)
    states = nn.unroll(cell, [np.ones((1, 2)), np.zeros((1, 2))])
    assert len(states) == 2 and all(isinstance(s, tuple) for s in states)


def test_reprs() -> None:
    assert repr(nn.LSTM(2, 3, num_layers=2, batch_first=True)) == (
        "LSTM(2, 3, num_layers=2, batch_first=True)"
    )
    assert repr(nn.RNN(2, 3, nonlinearity="relu", bias=False, bidirectional=True)) == (
        "RNN(2, 3, bias=False, bidirectional=True, nonlinearity='relu')"
    )
