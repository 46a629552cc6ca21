"""Layout converters: the documents' RNN/LSTM parameters <-> our (= PyTorch's) layout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn

T, B, D, H, K = 5, 2, 3, 4, 6


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def doc_rnn_forward(p: dict[str, np.ndarray], xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spec §1 in the documents' column-vector form, one example at a time."""
    hs, os = np.zeros((*xs.shape[:2], H)), np.zeros((*xs.shape[:2], K))
    for b in range(xs.shape[1]):
        s = np.zeros(H)
        for t in range(xs.shape[0]):
            s = np.tanh(p["b"] + p["W"] @ s + p["U"] @ xs[t, b])
            hs[t, b], os[t, b] = s, p["c"] + p["V"] @ s
    return hs, os


def doc_lstm_forward(p: dict[str, np.ndarray], xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spec §4 (seed 004), row vectors, z_t = [h_{t-1}, x_t]."""
    h, c = np.zeros((xs.shape[1], H)), np.zeros((xs.shape[1], H))
    hs, ys = [], []
    for t in range(xs.shape[0]):
        z = np.concatenate([h, xs[t]], axis=1)
        f, i = sigmoid(z @ p["W_f"] + p["b_f"]), sigmoid(z @ p["W_i"] + p["b_i"])
        cbar, o = np.tanh(z @ p["W_c"] + p["b_c"]), sigmoid(z @ p["W_o"] + p["b_o"])
        c = f * c + i * cbar
        h = o * np.tanh(c)
        hs.append(h)
        ys.append(h @ p["W_y"] + p["b_y"])
    return np.stack(hs), np.stack(ys)


def rnn_doc_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "U": rng.standard_normal((H, D)),
        "W": rng.standard_normal((H, H)) * 0.5,
        "V": rng.standard_normal((K, H)),
        "b": rng.standard_normal(H),
        "c": rng.standard_normal(K),
    }


def lstm_doc_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    p = {f"W_{g}": rng.standard_normal((H + D, H)) for g in "fico"}
    p.update({f"b_{g}": rng.standard_normal(H) for g in "fico"})
    p.update({"W_y": rng.standard_normal((H, K)), "b_y": rng.standard_normal(K)})
    return p


def run_rnn(rnn: Any, head: nn.Linear, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(rnn, (nn.RNN, nn.LSTM)):
        out, _ = rnn(xs)
    else:
        states = nn.unroll(rnn, xs)
        out = tg.stack([s[0] if isinstance(s, tuple) else s for s in states])
    return out.data, head(out).data


# ------------------------------------------------------------------------------------ RNN


@pytest.mark.parametrize("as_layer", [False, True])
def test_rnn_from_document_computes_the_documents_forward(as_layer: bool) -> None:
    rng = np.random.default_rng(0)
    p = rnn_doc_params(rng)
    rnn, head = nn.rnn_from_document(p, as_layer=as_layer)
    assert isinstance(rnn, nn.RNN if as_layer else nn.RNNCell) and rnn.dtype == np.float64
    xs = rng.standard_normal((T, B, D))
    hs, os = run_rnn(rnn, head, xs)
    e_hs, e_os = doc_rnn_forward(p, xs)
    np.testing.assert_allclose(hs, e_hs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(os, e_os, rtol=1e-12, atol=1e-14)
    assert rnn.state_dict()["bias_hh_l0" if as_layer else "bias_hh"].tolist() == [0.0] * H


def test_rnn_document_round_trips() -> None:
    rng = np.random.default_rng(1)
    p = rnn_doc_params(rng)
    back = nn.rnn_to_document(*nn.rnn_from_document(p))
    assert list(back) == ["U", "W", "V", "b", "c"]
    for k in p:
        np.testing.assert_array_equal(back[k], p[k])
    # ours -> document -> ours: same function (the two biases are merged into b).
    cell = nn.RNNCell(D, H, dtype=np.float64, rng=rng)
    head = nn.Linear(H, K, dtype=np.float64, rng=rng)
    doc = nn.rnn_to_document(cell, head)
    np.testing.assert_array_equal(doc["b"], cell.bias_ih.data + cell.bias_hh.data)  # type: ignore[union-attr]
    cell2, head2 = nn.rnn_from_document(doc)
    np.testing.assert_array_equal(cell2.weight_ih.data, cell.weight_ih.data)
    np.testing.assert_array_equal(head2.weight.data, head.weight.data)
    xs = rng.standard_normal((T, B, D))
    np.testing.assert_allclose(run_rnn(cell2, head2, xs)[1], run_rnn(cell, head, xs)[1], rtol=1e-13)


def test_rnn_to_document_without_biases_and_dtype() -> None:
    cell = nn.RNNCell(D, H, bias=False)
    head = nn.Linear(H, K, bias=False)
    doc = nn.rnn_to_document(cell, head)
    assert np.all(doc["b"] == 0) and np.all(doc["c"] == 0) and doc["U"].dtype == np.float32
    cell32, _ = nn.rnn_from_document(doc)
    assert cell32.dtype == np.float32
    cell64, _ = nn.rnn_from_document(doc, dtype=np.float64)
    assert cell64.weight_hh.dtype == np.float64


def test_rnn_grads_match_reference_bptt() -> None:
    reference = pytest.importorskip("tinygrad_rnn.reference")
    rng = np.random.default_rng(2)
    p = rnn_doc_params(rng)
    xs, ys = rng.standard_normal((T, B, D)), rng.integers(0, K, (T, B))
    rnn, head = nn.rnn_from_document(p, as_layer=True)
    out, _ = rnn(xs)
    nn.CrossEntropyLoss(reduction="sum")(head(out), ys).backward()
    ours = nn.rnn_grads_to_document(rnn, head)
    ref = reference.rnn_bptt(xs, ys, np.zeros((B, H)), **p)
    for k in ["U", "W", "V", "b", "c"]:
        np.testing.assert_allclose(ours[k], ref.grads[k], rtol=1e-10, atol=1e-12, err_msg=k)


# ----------------------------------------------------------------------------------- LSTM


@pytest.mark.parametrize("as_layer", [False, True])
def test_lstm_from_document_computes_seed_004s_forward(as_layer: bool) -> None:
    rng = np.random.default_rng(3)
    p = lstm_doc_params(rng)
    lstm, head = nn.lstm_from_document(p, as_layer=as_layer)
    assert isinstance(lstm, nn.LSTM if as_layer else nn.LSTMCell)
    xs = rng.standard_normal((T, B, D))
    hs, ys = run_rnn(lstm, head, xs)
    e_hs, e_ys = doc_lstm_forward(p, xs)
    np.testing.assert_allclose(hs, e_hs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ys, e_ys, rtol=1e-12, atol=1e-14)


def test_lstm_document_round_trips() -> None:
    rng = np.random.default_rng(4)
    p = lstm_doc_params(rng)
    back = nn.lstm_to_document(*nn.lstm_from_document(p))
    assert list(back) == ["W_f", "W_i", "W_c", "W_o", "b_f", "b_i", "b_c", "b_o", "W_y", "b_y"]
    for k in p:
        np.testing.assert_array_equal(back[k], p[k], err_msg=k)
    lstm = nn.LSTM(D, H, dtype=np.float64, rng=rng)
    head = nn.Linear(H, K, dtype=np.float64, rng=rng)
    doc = nn.lstm_to_document(lstm, head)
    assert doc["W_i"].shape == (H + D, H) and doc["W_y"].shape == (H, K)
    # Gate i is rows 0:H of the fused weights; its h-part comes first in W_i.
    np.testing.assert_array_equal(doc["W_i"][:H], lstm.weight_hh_l0.data[:H].T)
    np.testing.assert_array_equal(doc["W_c"][H:], lstm.weight_ih_l0.data[2 * H : 3 * H].T)
    lstm2, head2 = nn.lstm_from_document(doc, as_layer=True)
    np.testing.assert_array_equal(lstm2.weight_ih_l0.data, lstm.weight_ih_l0.data)
    np.testing.assert_array_equal(lstm2.weight_hh_l0.data, lstm.weight_hh_l0.data)
    xs = rng.standard_normal((T, B, D))
    np.testing.assert_allclose(run_rnn(lstm2, head2, xs)[1], run_rnn(lstm, head, xs)[1], rtol=1e-13)


def test_lstm_grads_match_reference_bptt() -> None:
    reference = pytest.importorskip("tinygrad_rnn.reference")
    rng = np.random.default_rng(5)
    p = lstm_doc_params(rng)
    xs, ys = rng.standard_normal((T, B, D)), rng.integers(0, K, (T, B))
    lstm, head = nn.lstm_from_document(p)
    hs = [s[0] for s in nn.unroll(lstm, xs)]
    nn.CrossEntropyLoss(reduction="sum")(head(tg.stack(hs)), ys).backward()
    ours = nn.lstm_grads_to_document(lstm, head)
    ref = reference.lstm_bptt(xs, ys, np.zeros((B, H)), np.zeros((B, H)), **p)
    for k in p:
        np.testing.assert_allclose(ours[k], ref.grads[k], rtol=1e-10, atol=1e-12, err_msg=k)


# --------------------------------------------------------------------------------- errors


def test_document_key_and_shape_errors() -> None:
    rng = np.random.default_rng(6)
    p = rnn_doc_params(rng)
    del p["V"]
    with pytest.raises(KeyError, match=r"missing \['V'\]"):
        nn.rnn_from_document(p)
    p = rnn_doc_params(rng)
    p["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        nn.rnn_from_document(p)
    p = rnn_doc_params(rng)
    p["W"] = np.zeros((H, H + 1))
    with pytest.raises(ValueError, match=r"W must have shape \(H, H\) = \(4, 4\), got \(4, 5\)"):
        nn.rnn_from_document(p)
    q = lstm_doc_params(rng)
    q["b_o"] = np.zeros(H + 1)
    with pytest.raises(ValueError, match="b_o must have shape"):
        nn.lstm_from_document(q)
    q = lstm_doc_params(rng)
    q["W_y"] = np.zeros((H + 1, K))
    with pytest.raises(ValueError, match="W_y"):
        nn.lstm_from_document(q)


def test_to_document_refuses_what_the_documents_do_not_describe() -> None:
    head = nn.Linear(H, K)
    with pytest.raises(ValueError, match="num_layers=2"):
        nn.rnn_to_document(nn.RNN(D, H, num_layers=2), head)
    with pytest.raises(ValueError, match="tanh"):
        nn.rnn_to_document(nn.RNNCell(D, H, nonlinearity="relu"), head)
    with pytest.raises(TypeError, match="LSTMCell or LSTM"):
        nn.lstm_to_document(nn.GRUCell(D, H), head)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"head\.in_features=4 must equal hidden_size=5"):
        nn.lstm_to_document(nn.LSTMCell(D, 5), head)
    with pytest.raises(ValueError, match="run backward first"):
        nn.rnn_grads_to_document(nn.RNNCell(D, H), head)


def test_cell_from_layer() -> None:
    rng = np.random.default_rng(7)
    gru = nn.GRU(D, H, num_layers=2, bidirectional=True, bias=False, dtype=np.float64, rng=rng)
    cell = nn.cell_from_layer(gru, 1, reverse=True)
    assert isinstance(cell, nn.GRUCell) and cell.input_size == 2 * H and cell.bias_ih is None
    np.testing.assert_array_equal(cell.weight_hh.data, gru.weight_hh_l1_reverse.data)
    assert cell.weight_hh is not gru.weight_hh_l1_reverse  # a copy
    relu = nn.cell_from_layer(nn.RNN(D, H, nonlinearity="relu"))
    assert relu.nonlinearity == "relu"
    with pytest.raises(ValueError, match="bidirectional"):
        nn.cell_from_layer(nn.LSTM(D, H), reverse=True)
    with pytest.raises(ValueError, match="layer_index"):
        nn.cell_from_layer(nn.LSTM(D, H), 1)
    with pytest.raises(TypeError, match="RNN, LSTM or GRU"):
        nn.cell_from_layer(nn.LSTMCell(D, H))  # type: ignore[arg-type]


def test_torch_state_dict_helpers_without_torch() -> None:
    rng = np.random.default_rng(8)
    lstm = nn.LSTM(D, H, num_layers=2, rng=rng)
    sd = nn.to_torch_state_dict(lstm)
    assert list(sd) == [n for n, _ in lstm.named_parameters()]
    other = nn.LSTM(D, H, num_layers=2, rng=rng)
    nn.load_torch_state_dict(other, sd)
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    with pytest.raises(KeyError, match="weight_ih_l1"):
        nn.load_torch_state_dict(nn.LSTM(D, H), sd)
    with pytest.raises(TypeError, match="Module"):
        nn.to_torch_state_dict(sd)  # type: ignore[arg-type]
