"""Cells: equations against plain numpy, gradchecks (float64) and error paths."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn

B, D, H = 2, 3, 2


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def np_rnn(p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, act: Any = np.tanh) -> Any:
    return act(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])


def np_lstm(p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray) -> Any:
    g = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    i, f, gg, o = np.split(g, 4, axis=-1)
    c2 = sigmoid(f) * c + sigmoid(i) * np.tanh(gg)
    return sigmoid(o) * np.tanh(c2), c2


def np_gru(p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray) -> Any:
    ir, iz, in_ = np.split(x @ p["weight_ih"].T + p["bias_ih"], 3, axis=-1)
    hr, hz, hn = np.split(h @ p["weight_hh"].T + p["bias_hh"], 3, axis=-1)
    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
    n = np.tanh(in_ + r * hn)
    return (1 - z) * n + z * h


def make(cls: Any, **kw: Any) -> Any:
    return cls(D, H, dtype=np.float64, rng=np.random.default_rng(0), **kw)


def data(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, D)), rng.standard_normal((B, H)), rng.standard_normal((B, H))


# ---------------------------------------------------------------------------- equations


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_equation(nonlinearity: str) -> None:
    cell = make(nn.RNNCell, nonlinearity=nonlinearity)
    x, h, _ = data()
    act = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    expected = np_rnn(cell.state_dict(), x, h, act)
    np.testing.assert_allclose(cell(x, h).data, expected, rtol=1e-13, atol=1e-15)


def test_lstm_cell_equation_and_layout() -> None:
    cell = make(nn.LSTMCell)
    assert {n: p.shape for n, p in cell.named_parameters()} == {
        "weight_ih": (4 * H, D),
        "weight_hh": (4 * H, H),
        "bias_ih": (4 * H,),
        "bias_hh": (4 * H,),
    }
    x, h, c = data()
    h2, c2 = cell(x, (h, c))
    eh, ec = np_lstm(cell.state_dict(), x, h, c)
    np.testing.assert_allclose(h2.data, eh, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c2.data, ec, rtol=1e-13, atol=1e-15)


def test_gru_cell_equation() -> None:
    cell = make(nn.GRUCell)
    x, h, _ = data()
    np.testing.assert_allclose(
        cell(x, h).data, np_gru(cell.state_dict(), x, h), rtol=1e-13, atol=1e-15
    )


def test_lstm_cell_is_its_equations_in_elementary_ops() -> None:
    cell = make(nn.LSTMCell)
    x, h, c = data()
    h2, _ = cell(tg.Tensor(x), (tg.Tensor(h), tg.Tensor(c)))
    ops: list[str] = []
    seen: set[int] = set()
    stack = [h2]
    while stack:
        t = stack.pop()
        if id(t) in seen or t._node is None or t._node.inputs is None:
            continue
        seen.add(id(t))
        ops.append(t._node.prim.name)
        stack.extend(p for p in t._node.inputs if p is not None)
    # x W_ihᵀ + b is one linear op and gi + h W_hhᵀ one addmm: one matrix product per
    # weight, all four gates at once; then σ, tanh, ⊙ and + as the equations read.
    counts = {name: ops.count(name) for name in set(ops)}
    assert counts == {
        "linear": 1,  # x W_ihᵀ + (b_ih + b_hh)
        "add": 2,  # b_ih + b_hh, and f ⊙ c + i ⊙ g
        "transpose": 1,  # W_hhᵀ
        "addmm": 1,  # z = gi + h W_hhᵀ
        "getitem": 4,  # z_i, z_f, z_g, z_o
        "sigmoid": 3,  # i, f, o
        "tanh": 2,  # g and tanh(c')
        "mul": 3,  # f ⊙ c, i ⊙ g, o ⊙ tanh(c')
    }


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_none_state_means_zeros_and_unbatched(cls: Any) -> None:
    cell = make(cls)
    x, _, _ = data()
    zeros = np.zeros((B, H))
    state = (zeros, zeros) if cls is nn.LSTMCell else zeros
    a, b = cell(x), cell(x, state)
    flat = (lambda s: s[0]) if cls is nn.LSTMCell else (lambda s: s)
    np.testing.assert_array_equal(flat(a).data, flat(b).data)
    single = cell(x[0], None)
    assert flat(single).shape == (H,)
    np.testing.assert_allclose(flat(single).data, flat(a).data[0], rtol=1e-14)


def test_init_range_and_dtype() -> None:
    cell = nn.LSTMCell(3, 16, rng=np.random.default_rng(0))
    for p in cell.parameters():
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= 0.25  # U(-1/√16, 1/√16)
    assert make(nn.GRUCell, bias=False).bias_ih is None
    assert [n for n, _ in make(nn.GRUCell, bias=False).named_parameters()] == [
        "weight_ih",
        "weight_hh",
    ]


# ----------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_gradcheck(bias: bool, nonlinearity: str) -> None:
    cell = make(nn.RNNCell, bias=bias, nonlinearity=nonlinearity)
    x, h, _ = data(5)
    xt, ht = tg.Tensor(x, requires_grad=True), tg.Tensor(h, requires_grad=True)
    assert tg.gradcheck(lambda x, h, *_: cell(x, h), [xt, ht, *cell.parameters()])


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_gradcheck(bias: bool) -> None:
    cell = make(nn.LSTMCell, bias=bias)
    x, h, c = (tg.Tensor(a, requires_grad=True) for a in data(6))
    assert tg.gradcheck(lambda x, h, c, *_: cell(x, (h, c)), [x, h, c, *cell.parameters()])


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_gradcheck(bias: bool) -> None:
    cell = make(nn.GRUCell, bias=bias)
    x, h, _ = (tg.Tensor(a, requires_grad=True) for a in data(7))
    assert tg.gradcheck(lambda x, h, *_: cell(x, h), [x, h, *cell.parameters()])


def test_two_steps_gradcheck_through_state() -> None:
    cell = make(nn.LSTMCell)
    x, h, c = (tg.Tensor(a, requires_grad=True) for a in data(8))

    def two_steps(x: tg.Tensor, h: tg.Tensor, c: tg.Tensor, *_: Any) -> Any:
        return cell(x * 0.5, cell(x, (h, c)))

    assert tg.gradcheck(two_steps, [x, h, c, *cell.parameters()])


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_input_errors(cls: Any) -> None:
    cell = make(cls)
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: input .*input_size=3.*\(2, 4\)"):
        cell(np.zeros((B, 4)))
    with pytest.raises(ValueError, match=name):
        cell(np.zeros((1, B, D)))
    with pytest.raises(TypeError, match=f"{name}: input must be a Tensor"):
        cell({"x": 1})
    with pytest.raises(TypeError, match="float32"):
        cell(tg.Tensor(np.zeros((B, D), dtype=np.float32)))


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.GRUCell])
def test_state_shape_error_names_cell_argument_and_shapes(cls: Any) -> None:
    cell = make(cls)
    with pytest.raises(
        ValueError, match=rf"{cls.__name__}: state must have shape \(2, 2\).*\(3, 2\)"
    ):
        cell(np.zeros((B, D)), np.zeros((3, H)))
    with pytest.raises(ValueError, match=r"state must have shape \(2,\)"):
        cell(np.zeros(D), np.zeros((1, H)))
    with pytest.raises(TypeError, match="state"):
        cell(np.zeros((B, D)), "h")


def test_lstm_state_errors() -> None:
    cell = make(nn.LSTMCell)
    x = np.zeros((B, D))
    with pytest.raises(TypeError, match=r"LSTMCell: state must be None or a tuple \(h, c\)"):
        cell(x, np.zeros((B, H)))
    with pytest.raises(ValueError, match=r"LSTMCell: state\[1\] \(c\) must have shape"):
        cell(x, (np.zeros((B, H)), np.zeros((B, H + 1))))


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(2, 2, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        nn.LSTMCell(2, 0)
    with pytest.raises(TypeError, match="input_size"):
        nn.GRUCell("2", 2)  # type: ignore[arg-type]


def test_reprs() -> None:
    assert repr(nn.RNNCell(2, 3, nonlinearity="relu")) == "RNNCell(2, 3, nonlinearity='relu')"
    assert repr(nn.LSTMCell(2, 3, bias=False)) == "LSTMCell(2, 3, bias=False)"
