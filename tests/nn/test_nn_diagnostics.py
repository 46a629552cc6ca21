"""hidden_grad_norms: the total ∂L/∂h_t per step, checked on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn

T, B, D, H = 6, 3, 2, 4


def cut_chain_rnn(rng: np.random.Generator) -> nn.RNNCell:
    """An RNN cell with weight_hh = 0: h_t depends on x_t only, so BPTT has no recurrent path."""
    cell = nn.RNNCell(D, H, dtype=np.float64, rng=rng)
    cell.weight_hh = nn.Parameter(np.zeros((H, H)))
    return cell


@pytest.mark.parametrize("steps_with_loss", [[T - 1], [0, 2, 5], list(range(T))])
def test_cut_chain_gives_only_the_direct_path(steps_with_loss: list[int]) -> None:
    rng = np.random.default_rng(0)
    cell = cut_chain_rnn(rng)
    hs = nn.unroll(cell, rng.standard_normal((T, B, D)))
    v = rng.standard_normal((T, B, H))
    # L = Σ_{t with a loss} <v_t, h_t>, so ∂L/∂h_t = v_t there and 0 elsewhere (W_hh = 0).
    loss = sum((hs[t] * v[t]).sum() for t in steps_with_loss)
    norms = nn.hidden_grad_norms(loss, hs)
    per_example = nn.hidden_grad_norms(loss, hs, per_example=True)
    has_loss = np.isin(np.arange(T), steps_with_loss)
    np.testing.assert_allclose(norms, np.linalg.norm(v, axis=(1, 2)) * has_loss, rtol=1e-14)
    np.testing.assert_allclose(
        per_example, np.linalg.norm(v, axis=2) * has_loss[:, None], rtol=1e-14
    )
    assert norms.shape == (T,) and per_example.shape == (T, B)
    assert np.all(norms[~has_loss] == 0.0)  # exactly zero, not merely small


def test_total_gradient_matches_reference_bptt() -> None:
    reference = pytest.importorskip("tinygrad_rnn.reference")
    rng = np.random.default_rng(1)
    K = 5
    p = {
        "U": rng.standard_normal((H, D)),
        "W": rng.standard_normal((H, H)),
        "V": rng.standard_normal((K, H)),
        "b": rng.standard_normal(H),
        "c": rng.standard_normal(K),
    }
    xs, ys = rng.standard_normal((T, B, D)), rng.integers(0, K, (T, B))
    mask = np.zeros((T, B))
    mask[-1] = 1.0  # many-to-one: a loss at the last step only (spec §3)
    cell, head = nn.rnn_from_document(p)
    hs = nn.unroll(cell, xs)
    loss = nn.CrossEntropyLoss(reduction="sum")(head(tg.stack(hs)), ys, mask=mask)
    ref = reference.rnn_bptt(xs, ys, np.zeros((B, H)), **p, mask=mask)
    np.testing.assert_allclose(
        nn.hidden_grad_norms(loss, hs, per_example=True),
        np.linalg.norm(ref.dhidden, axis=-1),
        rtol=1e-10,
    )


def test_vanishing_gradient_with_small_recurrent_weights() -> None:
    rng = np.random.default_rng(2)
    cell = nn.RNNCell(D, H, dtype=np.float64, rng=rng)
    cell.weight_hh = nn.Parameter(np.eye(H) * 0.3)
    hs = nn.unroll(cell, rng.standard_normal((T, B, D)))
    norms = nn.hidden_grad_norms(hs[-1].sum(), hs)
    # ‖∂s_T/∂s_t‖ ≤ 0.3^(T-t): each step back shrinks the gradient by a factor ≥ 1/0.3.
    assert np.all(norms[:-1] <= 0.3 * norms[1:])


def test_lstm_states_unused_steps_and_backward_afterwards() -> None:
    rng = np.random.default_rng(3)
    cell = nn.LSTMCell(D, H, dtype=np.float64, rng=rng)
    states = nn.unroll(cell, rng.standard_normal((T, B, D)))
    loss = (states[2][0] ** 2).sum()  # steps 3.. do not influence the loss
    norms = nn.hidden_grad_norms(loss, states)
    assert np.all(norms[3:] == 0.0) and np.all(norms[:3] > 0)
    loss.backward()  # the graph was retained
    assert cell.weight_ih.grad is not None
    grad_norms = nn.parameter_grad_norms(cell)
    assert list(grad_norms) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    np.testing.assert_allclose(grad_norms["weight_ih"], np.linalg.norm(cell.weight_ih.grad.data))


def test_float32_norms_are_float64() -> None:
    cell = nn.GRUCell(D, H, rng=np.random.default_rng(4))
    hs = nn.unroll(cell, np.ones((3, 1, D), dtype=np.float32))
    norms = nn.hidden_grad_norms(hs[-1].sum(), hs)
    assert norms.dtype == np.float64 and np.all(norms > 0)


def test_errors() -> None:
    cell = nn.RNNCell(D, H, dtype=np.float64)
    hs = nn.unroll(cell, np.ones((2, 1, D)))
    with pytest.raises(ValueError, match="one element"):
        nn.hidden_grad_norms(hs[-1], hs)
    with pytest.raises(ValueError, match="empty"):
        nn.hidden_grad_norms(hs[-1].sum(), [])
    with pytest.raises(TypeError, match=r"hidden_steps\[1\]"):
        nn.hidden_grad_norms(hs[-1].sum(), [hs[0], np.zeros(3)])
    with pytest.raises(ValueError, match=r"hidden_steps\[0\] does not require grad"):
        nn.hidden_grad_norms(hs[-1].sum(), [hs[0].detach()])
    with pytest.raises(TypeError, match="loss"):
        nn.hidden_grad_norms(1.0, hs)  # type: ignore[arg-type]
