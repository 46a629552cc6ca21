"""Spec §4–5: autograd through ``nn.LSTMCell`` / ``nn.LSTM`` equals seed 004's closed-form
LSTM BPTT (softmax + cross-entropy) and seed 001's squared error on the hidden state."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
from _models import (
    assert_grads_equal,
    lstm_grads_in_document_layout,
    lstm_layer_from_cell,
    projection_chunks,
    rel_error,
)
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.reference import init_lstm_params, lstm_bptt, lstm_hidden_mse_bptt

TOL = 1e-10
sizes = st.integers(1, 40)


def _hidden_states(cell: nn.LSTMCell, path: str, x_t: tg.Tensor, h0: tg.Tensor, c0: tg.Tensor):
    """All h_t stacked (T, B, H), through the cell step by step or through the layer.

    ``layer_chunked``: the layer computes its input projection 1, 2 or 3 steps at a time
    and releases each chunk after use (what it does on long sequences); the last chunk may
    be shorter than the others.
    """
    if path == "cell":
        return cell, tg.stack([h for h, _ in nn.unroll(cell, x_t, (h0, c0))]), ""
    layer = lstm_layer_from_cell(cell)
    T, B, H = x_t.shape[0], x_t.shape[1], h0.shape[1]
    chunked = path == "layer_chunked"
    with projection_chunks(1 + T % 3, B, 4 * H) if chunked else contextlib.nullcontext():
        out, _ = layer(x_t, (h0.reshape(1, *h0.shape), c0.reshape(1, *c0.shape)))
    return layer, out, "_l0"


def _inputs(seed: int, B: int, D: int, H: int, T: int):
    rng = np.random.default_rng(seed)
    return (
        rng,
        rng.standard_normal((T, B, D)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
    )


@pytest.mark.parametrize("path", ["cell", "layer", "layer_chunked", "layer_jit"])
@given(
    B=sizes,
    D=sizes,
    H=sizes,
    K=sizes,
    T=sizes,
    seed=st.integers(0, 2**32 - 1),
    masked=st.booleans(),
)
def test_lstm_softmax_autograd_equals_closed_form(path, B, D, H, K, T, seed, masked) -> None:
    rng, xs, h0, c0 = _inputs(seed, B, D, H, T)
    params = init_lstm_params(D, H, K, rng, random_biases=True)
    targets = rng.integers(0, K, (T, B))
    mask = (rng.uniform(size=(T, B)) < 0.6).astype(np.float64) if masked else None
    ref = lstm_bptt(xs, targets, h0, c0, **params, mask=mask)

    cell, head = nn.lstm_from_document(params, dtype=np.float64)
    x_t = tg.Tensor(xs, requires_grad=True)
    h0_t, c0_t = tg.Tensor(h0, requires_grad=True), tg.Tensor(c0, requires_grad=True)
    if path == "layer_jit":  # the second call replays the traced program
        module, suffix = lstm_layer_from_cell(cell), "_l0"

        @tg.jit
        def step(x: Any, h: Any, c: Any) -> Any:
            out, _ = module(x, (h.reshape(1, *h.shape), c.reshape(1, *c.shape)))
            loss = F.cross_entropy(head(out), targets, reduction="sum", mask=mask)
            loss.backward()
            return loss

        step(x_t, h0_t, c0_t)
        for p in [x_t, h0_t, c0_t, *module.parameters(), *head.parameters()]:
            p.grad = None
        loss = step(x_t, h0_t, c0_t)
    else:
        module, hs, suffix = _hidden_states(cell, path, x_t, h0_t, c0_t)
        loss = F.cross_entropy(head(hs), targets, reduction="sum", mask=mask)
        loss.backward()

    assert abs(loss.item() - ref.loss) <= TOL * max(1.0, abs(ref.loss))
    grads: dict[str, Any] = lstm_grads_in_document_layout(module, head, H, suffix)
    grads |= {"h0": h0_t.grad.data, "c0": c0_t.grad.data, "xs": x_t.grad.data}
    assert_grads_equal(grads, ref.grads, TOL)


@pytest.mark.parametrize("path", ["cell", "layer", "layer_chunked"])
@given(B=sizes, D=sizes, H=sizes, T=sizes, seed=st.integers(0, 2**32 - 1))
def test_lstm_hidden_squared_error_equals_closed_form(path, B, D, H, T, seed) -> None:
    rng, xs, h0, c0 = _inputs(seed, B, D, H, T)
    params = init_lstm_params(D, H, 1, rng, random_biases=True)
    del params["W_y"], params["b_y"]
    ys = rng.standard_normal((T, B, H))
    ref = lstm_hidden_mse_bptt(xs, ys, h0, c0, **params)

    # No output layer in §5: a dummy head is built and never used.
    no_head = {"W_y": np.zeros((H, 1)), "b_y": np.zeros(1)}
    cell, _ = nn.lstm_from_document({**params, **no_head}, dtype=np.float64)
    x_t = tg.Tensor(xs, requires_grad=True)
    h0_t, c0_t = tg.Tensor(h0, requires_grad=True), tg.Tensor(c0, requires_grad=True)
    module, hs, suffix = _hidden_states(cell, path, x_t, h0_t, c0_t)
    loss = F.mse_loss(hs, ys, reduction="sum")  # Σ_t ‖h_t − y_t‖², no ½ (seed 001)
    loss.backward()

    assert abs(loss.item() - ref.loss) <= TOL * max(1.0, abs(ref.loss))
    grads: dict[str, Any] = lstm_grads_in_document_layout(module, None, H, suffix)
    grads |= {"h0": h0_t.grad.data, "c0": c0_t.grad.data, "xs": x_t.grad.data}
    assert_grads_equal(grads, ref.grads, TOL)
    assert rel_error(hs.data, ref.hidden) <= TOL
