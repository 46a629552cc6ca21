"""Truncated BPTT: carried state, cut gradient; chunk k's gradient equals a fresh BPTT on it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn

T, B, D, H, K, CHUNK = 12, 2, 3, 4, 5, 5


class CharModel(nn.Module):
    """min-char-rnn's shape: a recurrent layer and a linear readout."""

    def __init__(self, kind: Any, rng: np.random.Generator) -> None:
        super().__init__()
        self.rnn = kind(D, H, dtype=np.float64, rng=rng)
        self.head = nn.Linear(H, K, dtype=np.float64, rng=rng)

    def forward(self, x: Any, hx: Any = None) -> tuple[tg.Tensor, Any]:
        out, final = self.rnn(x, hx)
        return self.head(out), final


@pytest.mark.parametrize("kind", [nn.RNN, nn.LSTM])
def test_chunk_gradients_equal_fresh_bptt_on_the_chunk(kind: Any) -> None:
    rng = np.random.default_rng(0)
    model = CharModel(kind, rng)
    xs, ys = rng.standard_normal((T, B, D)), rng.integers(0, K, (T, B))
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    received: list[Any] = []
    grads: list[dict[str, np.ndarray]] = []

    def forward(x: Any, y: Any, state: Any) -> tuple[tg.Tensor, Any]:
        received.append(state)
        logits, final = model(x, state)
        return loss_fn(logits, y), final

    def after_backward(k: int, loss: tg.Tensor) -> None:
        grads.append({n: p.grad.data.copy() for n, p in model.named_parameters()})  # type: ignore[union-attr]
        model.zero_grad()

    result = nn.run_tbptt(forward, xs, ys, chunk_len=CHUNK, after_backward=after_backward)
    assert len(result.losses) == len(grads) == 3  # chunks of 5, 5 and 2 steps

    _, full_final = model(xs)  # untruncated forward: the carried values must agree
    full_h = np.concatenate([np.zeros((1, B, H)), model.rnn(xs)[0].data])
    for k, (start, stop) in enumerate(nn.chunk_bounds(T, CHUNK)):
        state = received[k]
        if k == 0:
            assert state is None
        else:  # the carried state is a leaf without grad: nothing flows back across chunks
            h0 = state[0] if kind is nn.LSTM else state
            assert h0.is_leaf and not h0.requires_grad
            np.testing.assert_allclose(h0.data[0], full_h[start], rtol=1e-12, atol=1e-14)
        # A fresh full BPTT on chunk k alone, started from the state chunk k-1 ended in.
        hx = (
            None
            if state is None
            else tuple(s.data for s in state)
            if kind is nn.LSTM
            else state.data
        )
        model.zero_grad()
        logits, _ = model(xs[start:stop], hx)
        loss = loss_fn(logits, ys[start:stop])
        loss.backward()
        assert loss.item() == result.losses[k]
        for n, p in model.named_parameters():
            np.testing.assert_array_equal(p.grad.data, grads[k][n], err_msg=f"chunk {k} {n}")  # type: ignore[union-attr]
    final_h = result.state[0] if kind is nn.LSTM else result.state
    expected = full_final[0] if kind is nn.LSTM else full_final
    np.testing.assert_allclose(final_h.data, expected.data, rtol=1e-12, atol=1e-14)
    assert not final_h.requires_grad


def test_gradients_accumulate_without_callback_and_batch_first() -> None:
    rng = np.random.default_rng(1)
    rnn = nn.GRU(D, H, batch_first=True, dtype=np.float64, rng=rng)
    xs = rng.standard_normal((B, 7, D))

    def forward(x: Any, y: Any, h: Any) -> tuple[tg.Tensor, Any]:
        assert y is None and x.shape[1] <= 3
        out, h_n = rnn(x, h)
        return (out**2).sum(), h_n

    result = nn.run_tbptt(forward, xs, chunk_len=3, time_axis=1)
    assert len(result.losses) == 3 and rnn.weight_ih_l0.grad is not None
    accumulated = rnn.weight_ih_l0.grad.data.copy()
    rnn.zero_grad()
    grads = []

    def keep(k: int, loss: tg.Tensor) -> None:
        grads.append(rnn.weight_ih_l0.grad.data.copy())  # type: ignore[union-attr]
        rnn.zero_grad()

    nn.run_tbptt(forward, xs, chunk_len=3, time_axis=1, after_backward=keep)
    np.testing.assert_allclose(accumulated, sum(grads), rtol=1e-12)


def test_detach_state() -> None:
    x = tg.Tensor(np.ones(2), requires_grad=True)
    h, c = x * 2, x * 3
    assert nn.detach_state(None) is None
    dh = nn.detach_state(h)
    assert dh.is_leaf and not dh.requires_grad and np.all(dh.data == 2)
    pair = nn.detach_state([h, c])
    assert isinstance(pair, tuple) and all(s.is_leaf and not s.requires_grad for s in pair)
    with pytest.raises(TypeError, match="detach_state"):
        nn.detach_state(np.ones(2))


def test_errors_and_bounds() -> None:
    assert list(nn.chunk_bounds(7, 3)) == [(0, 3), (3, 6), (6, 7)]
    with pytest.raises(ValueError, match="chunk_len"):
        list(nn.chunk_bounds(7, 0))
    with pytest.raises(ValueError, match="empty"):
        nn.run_tbptt(lambda x, y, s: (x, s), np.zeros((0, 1)), chunk_len=2)
    with pytest.raises(TypeError, match="one-element loss"):
        nn.run_tbptt(lambda x, y, s: (tg.Tensor(x), s), np.zeros((3, 2)), chunk_len=2)
