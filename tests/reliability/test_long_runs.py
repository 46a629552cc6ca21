"""Long runs: very long unrolls backprop without recursion and with the right gradient.

* a 100,000-step ``nn.RNN`` unroll (one layer call; and 100 calls of 1,000 steps passing the
  state on with its graph) backprops (with Python's recursion limit lowered to just above the
  test's own depth) and its gradient equals the closed-form BPTT of
  ``tinygrad_rnn.reference.rnn_bptt`` on the same weights;
* a 100,000-step graph can also be dropped without backward;
* a 1,000-step LSTM trained with truncated BPTT learns, and each spot-checked chunk's
  gradient equals ``reference.lstm_bptt`` started from the state carried into the chunk.

All are marked slow (run in CI); each takes well under a minute.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim, reference
from tinygrad_rnn.tensor import Tensor

pytestmark = pytest.mark.slow


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


@contextmanager
def _shallow_recursion(headroom: int = 60) -> Iterator[None]:
    """Allow only ``headroom`` frames below the caller: any recursion over the graph fails."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_depth() + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(actual - expected))) / scale


def _rnn_problem(seed: int) -> tuple[Any, ...]:
    """A tiny RNN from the documents' parameters and a 100,000-step sequence (D=2, H=2, K=3)."""
    T, B, D, H, K = 100_000, 1, 2, 2, 3
    rng = np.random.default_rng(seed)
    params = reference.init_rnn_params(D, H, K, rng, scale=0.5, random_biases=True)
    rnn, head = nn.rnn_from_document(params, dtype=np.float64, as_layer=True)
    xs = rng.standard_normal((T, B, D))
    ys = rng.integers(0, K, (T, B))
    s0 = rng.standard_normal((B, H))
    return params, rnn, head, xs, ys, s0


def _check_against_closed_form(
    loss: Tensor, h0: Tensor, params: Any, rnn: Any, head: Any, xs: Any, ys: Any, s0: Any
) -> None:
    ref = reference.rnn_bptt(xs, ys, s0, **params)
    np.testing.assert_allclose(loss.item(), ref.loss, rtol=1e-12)
    ours = nn.rnn_grads_to_document(rnn, head)
    for key, expected in ref.grads.items():
        if key in ours:
            assert _rel_err(ours[key], expected) < 1e-10, key
    assert h0.grad is not None
    assert _rel_err(h0.grad.data[0], ref.grads["s0"]) < 1e-10


def test_one_100k_step_rnn_call_backprops_and_matches_the_closed_form() -> None:
    """One ``nn.RNN`` call over T=100,000 steps, cross-entropy at every step, vs rnn_bptt.

    Also the regression test of the backward of ``stack`` (the layer stacks its 100,000
    outputs), which used to be quadratic in the number of stacked tensors (minutes here).
    """
    params, rnn, head, xs, ys, s0 = _rnn_problem(0)
    h0 = Tensor(s0[None], requires_grad=True)
    out, _ = rnn(xs, h0)
    loss = F.cross_entropy(head(out), ys, reduction="sum")
    del out
    with _shallow_recursion():
        loss.backward()
    _check_against_closed_form(loss, h0, params, rnn, head, xs, ys, s0)


def test_100k_step_rnn_unroll_backprops_and_matches_the_closed_form() -> None:
    """nn.RNN (D=2, H=2, K=3) over T=100,000 steps, one graph, cross-entropy at every step.

    The layer is called on 100 consecutive slices of 1,000 steps with the state passed on
    *without* detaching it, so the graph is a single 100,000-step BPTT chain.
    """
    piece = 1_000
    params, rnn, head, xs, ys, s0 = _rnn_problem(1)
    T = xs.shape[0]
    h0 = Tensor(s0[None], requires_grad=True)
    state: Tensor = h0
    loss: Tensor | None = None
    for start in range(0, T, piece):
        out, state = rnn(xs[start : start + piece], state)
        chunk = F.cross_entropy(head(out), ys[start : start + piece], reduction="sum")
        loss = chunk if loss is None else loss + chunk
    assert loss is not None
    del out, state, chunk
    with _shallow_recursion():
        loss.backward()
    _check_against_closed_form(loss, h0, params, rnn, head, xs, ys, s0)


def test_a_100k_step_graph_can_be_dropped_without_backward() -> None:
    rng = np.random.default_rng(1)
    w = Tensor(rng.standard_normal((2, 2)) * 0.5, requires_grad=True)
    xs = rng.standard_normal((100_000, 1, 2))
    h = Tensor(np.zeros((1, 2)))
    first = None
    for t in range(100_000):
        h = (h @ w + xs[t]).tanh()
        if first is None:
            first = weakref.ref(h)
    assert first is not None and first() is not None
    with _shallow_recursion():
        del h  # 200,000 nodes freed one after the other, no recursion
    assert first() is None
    assert w.data.flags.writeable


def test_lstm_trained_with_truncated_bptt_over_1000_steps() -> None:
    """Predict the previous token of a random sequence (D = K = 4, H = 8, B = 4, T = 1,000)
    with ``nn.run_tbptt`` in chunks of 25 steps and Adam, three passes over the sequence.

    Chunks 0, 1, 17 and 39 of the first pass and chunk 39 of the last are checked against
    ``reference.lstm_bptt`` on that chunk alone, from the (detached) state the chunk received
    and with the weights it ran with (before that chunk's optimizer step).
    """
    T, B, V, H, chunk_len = 1_000, 4, 4, 8, 25
    rng = np.random.default_rng(2)
    doc = reference.init_lstm_params(V, H, V, rng, random_biases=True)
    lstm, head = nn.lstm_from_document(doc, dtype=np.float64, as_layer=True)
    tokens = rng.integers(0, V, (T + 1, B))
    xs = np.eye(V)[tokens[1:]]  # (T, B, V) one-hot
    ys = tokens[:-1]  # the previous token
    opt = optim.Adam([*lstm.parameters(), *head.parameters()], lr=0.02)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    checks = {(0, 0), (0, 1), (0, 17), (0, 39), (2, 39)}
    pending: dict[str, Any] = {}
    checked: list[tuple[int, int, float]] = []
    epoch_losses: list[float] = []

    for epoch in range(3):

        def forward(x: Any, y: Any, state: Any, epoch: int = epoch) -> tuple[Tensor, Any]:
            k = len(pending.setdefault("losses", []))
            if (epoch, k) in checks:
                pending["check"] = (epoch, k, x, y, state, nn.lstm_to_document(lstm, head))
            out, final = lstm(x, state)
            return loss_fn(head(out), y), final

        def after_backward(k: int, loss: Tensor) -> None:
            pending["losses"].append(loss.item())
            check = pending.pop("check", None)
            if check is not None:
                ep, kk, x, y, state, weights = check
                if state is None:
                    h0 = c0 = np.zeros((B, H))
                else:
                    assert not state[0].requires_grad and state[0].is_leaf  # cut, not carried
                    h0, c0 = state[0].data[0], state[1].data[0]
                ref = reference.lstm_bptt(x, y, h0, c0, **weights)
                np.testing.assert_allclose(loss.item(), ref.loss, rtol=1e-12)
                ours = nn.lstm_grads_to_document(lstm, head)
                worst = max(_rel_err(ours[key], ref.grads[key]) for key in ours)
                assert worst < 1e-10, (ep, kk, worst)
                checked.append((ep, kk, worst))
            opt.step()
            opt.zero_grad()

        pending.clear()
        result = nn.run_tbptt(forward, xs, ys, chunk_len=chunk_len, after_backward=after_backward)
        assert len(result.losses) == T // chunk_len
        assert result.state[0].shape == (1, B, H) and not result.state[0].requires_grad
        epoch_losses.append(float(np.mean(result.losses)) / (chunk_len * B))

    assert sorted((e, k) for e, k, _ in checked) == sorted(checks)
    # It learns: the per-token loss falls well below log(4) ~ 1.386 (chance).
    assert epoch_losses[-1] < 0.5 * epoch_losses[0], epoch_losses


def test_truncated_bptt_carries_the_exact_state_across_1000_steps() -> None:
    """Without updates, the state carried chunk to chunk is the untruncated forward's state."""
    T, B, D, H = 1_000, 2, 3, 5
    rng = np.random.default_rng(3)
    lstm = nn.LSTM(D, H, dtype=np.float64, rng=rng)
    xs = rng.standard_normal((T, B, D))
    seen: list[Any] = []

    def forward(x: Any, y: Any, state: Any) -> tuple[Tensor, Any]:
        out, final = lstm(x, state)
        seen.append(out.data)
        return out.sum(), final

    result = nn.run_tbptt(forward, xs, chunk_len=64, after_backward=lambda k, _: lstm.zero_grad())
    full, (h_n, c_n) = lstm(xs)
    np.testing.assert_allclose(np.concatenate(seen), full.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(result.state[0].data, h_n.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(result.state[1].data, c_n.data, rtol=1e-12, atol=1e-14)
