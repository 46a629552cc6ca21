"""Spec §1–3: autograd through ``nn`` equals the documents' closed-form RNN BPTT.

Every gradient of the vanilla RNN (softmax + cross-entropy, linear + quadratic,
sigmoid + binary cross-entropy, with a loss mask) computed by the engine's
autograd through ``nn.RNNCell`` (step by step) and ``nn.RNN`` (the hoisted
layer) is compared with ``tinygrad_rnn.reference.rnn_bptt`` — hand-written
numpy, no autograd — to 1e-10 relative error in float64.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
from _models import (
    assert_grads_equal,
    projection_chunks,
    rel_error,
    rnn_grads_in_document_layout,
    rnn_layer_from_cell,
    stable_scale,
)
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.reference import init_rnn_params, rnn_bptt

TOL = 1e-10
sizes = st.integers(1, 40)
small = st.integers(1, 12)


def _problem(seed: int, B: int, D: int, H: int, K: int, T: int, output: str, mask_kind: str):
    rng = np.random.default_rng(seed)
    params = init_rnn_params(D, H, K, rng, scale=stable_scale(H), random_biases=True)
    xs = rng.standard_normal((T, B, D))
    s0 = rng.standard_normal((B, H))
    if output == "softmax":
        targets: Any = rng.integers(0, K, (T, B))
    elif output == "linear":
        targets = rng.standard_normal((T, B, K))
    else:
        targets = rng.uniform(0, 1, (T, B, K))
    mask = {
        "none": None,
        "random": (rng.uniform(size=(T, B)) < 0.6).astype(np.float64),
        "last": np.eye(T)[-1][:, None].repeat(B, axis=1),
    }[mask_kind]
    return params, xs, s0, targets, mask


def _autograd_loss(logits: tg.Tensor, targets: Any, output: str, mask: Any) -> tg.Tensor:
    """The documents' per-step losses summed over time and batch, written with the library."""
    if output == "softmax":
        return F.cross_entropy(logits, targets, reduction="sum", mask=mask)
    per_elem_mask = None if mask is None else np.broadcast_to(mask[..., None], logits.shape)
    if output == "linear":  # ½‖y − o‖²
        return F.mse_loss(logits, targets, reduction="sum", mask=per_elem_mask) * 0.5
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum", mask=per_elem_mask)


def _run_autograd(params, xs, s0, targets, mask, output: str, path: str):
    cell, head = nn.rnn_from_document(params, dtype=np.float64)
    x_t = tg.Tensor(xs, requires_grad=True)
    s0_t = tg.Tensor(s0, requires_grad=True)
    if path == "cell":
        module: Any = cell
        hs = tg.stack(nn.unroll(cell, x_t, s0_t))
    else:
        module = rnn_layer_from_cell(cell)
        # layer_chunked: the input projection 1, 2 or 3 steps at a time, each chunk released
        # after use (what long sequences do).
        T, B, H = xs.shape[0], xs.shape[1], s0.shape[1]
        chunked = path == "layer_chunked"
        if path != "layer_jit":
            with projection_chunks(1 + T % 3, B, H) if chunked else contextlib.nullcontext():
                hs, _ = module(x_t, s0_t.reshape(1, *s0.shape))
    if path == "layer_jit":  # the second call replays the traced program
        layer = module

        @tg.jit
        def step(x: Any, s: Any) -> Any:
            out, _ = layer(x, s.reshape(1, *s.shape))
            loss = _autograd_loss(head(out), targets, output, mask)
            loss.backward()
            return loss

        step(x_t, s0_t)
        for p in [x_t, s0_t, *layer.parameters(), *head.parameters()]:
            p.grad = None
        loss = step(x_t, s0_t)
    else:
        loss = _autograd_loss(head(hs), targets, output, mask)
        loss.backward()
    suffix = "" if path == "cell" else "_l0"
    grads = rnn_grads_in_document_layout(module, head, suffix)
    grads["s0"] = s0_t.grad.data
    grads["xs"] = x_t.grad.data
    bias_hh = getattr(module, f"bias_hh{suffix}").grad.data
    return loss.item(), grads, bias_hh


@pytest.mark.parametrize("path", ["cell", "layer", "layer_chunked", "layer_jit"])
@pytest.mark.parametrize("output", ["softmax", "linear", "sigmoid"])
@given(
    B=sizes,
    D=sizes,
    H=sizes,
    K=sizes,
    T=sizes,
    seed=st.integers(0, 2**32 - 1),
    mask_kind=st.sampled_from(["none", "random", "last"]),
)
def test_rnn_autograd_equals_closed_form(output, path, B, D, H, K, T, seed, mask_kind) -> None:
    params, xs, s0, targets, mask = _problem(seed, B, D, H, K, T, output, mask_kind)
    ref = rnn_bptt(xs, targets, s0, **params, output=output, mask=mask)
    loss, grads, bias_hh = _run_autograd(params, xs, s0, targets, mask, output, path)
    assert abs(loss - ref.loss) <= TOL * max(1.0, abs(ref.loss))
    assert_grads_equal(grads, ref.grads, TOL)
    # The documents have one hidden bias b = b_ih + b_hh: both receive ∂L/∂b.
    assert rel_error(bias_hh, ref.grads["b"]) <= TOL


@given(B=small, D=small, H=small, K=small, T=small, seed=st.integers(0, 2**32 - 1))
def test_hidden_grad_norms_equal_closed_form_dhidden(B, D, H, K, T, seed) -> None:
    """The diagnostics' ‖∂L/∂s_t‖ (autograd) equal the closed form's total ∂L/∂s_t."""
    params, xs, s0, targets, _ = _problem(seed, B, D, H, K, T, "softmax", "none")
    ref = rnn_bptt(xs, targets, s0, **params)
    cell, head = nn.rnn_from_document(params, dtype=np.float64)
    hs = nn.unroll(cell, tg.Tensor(xs), tg.Tensor(s0))
    loss = F.cross_entropy(head(tg.stack(hs)), targets, reduction="sum")
    norms = nn.hidden_grad_norms(loss, hs)
    expected = np.linalg.norm(ref.dhidden.reshape(T, -1), axis=1)
    assert rel_error(norms, expected) <= TOL


def test_zero_recurrent_weight_cuts_the_chain() -> None:
    """With W = 0 and a loss only at the last step, ∂L/∂s_t = 0 for every t < T−1."""
    rng = np.random.default_rng(7)
    params = init_rnn_params(3, 4, 5, rng, scale=stable_scale(4), random_biases=True)
    params["W"] = np.zeros((4, 4))
    xs = rng.standard_normal((6, 2, 3))
    cell, head = nn.rnn_from_document(params, dtype=np.float64)
    hs = nn.unroll(cell, tg.Tensor(xs), None)
    loss = F.cross_entropy(head(hs[-1]), np.array([1, 3]), reduction="sum")
    norms = nn.hidden_grad_norms(loss, hs)
    assert np.all(norms[:-1] == 0.0)
    assert norms[-1] > 0


def _tbptt_chunks(xs: np.ndarray, targets: np.ndarray, size: int):
    for start in range(0, len(xs), size):
        yield xs[start : start + size], targets[start : start + size]


@given(
    B=small,
    D=small,
    H=small,
    K=small,
    chunk=st.integers(1, 6),
    n_chunks=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_truncated_bptt_equals_closed_form_per_chunk(B, D, H, K, chunk, n_chunks, seed) -> None:
    """min-char-rnn's truncated BPTT: the state is carried into the next chunk, the gradient
    is not. Each chunk's autograd gradient equals the closed form started from the carried
    state (``hprev``) with ``dhnext`` starting at 0."""
    T = chunk * n_chunks
    params, xs, s0, targets, _ = _problem(seed, B, D, H, K, T, "softmax", "none")
    cell, head = nn.rnn_from_document(params, dtype=np.float64)
    layer = rnn_layer_from_cell(cell)
    hprev_t = tg.Tensor(s0)
    hprev = s0
    for x_chunk, y_chunk in _tbptt_chunks(xs, targets, chunk):
        layer.zero_grad()
        head.zero_grad()
        out, h_n = layer(tg.Tensor(x_chunk), hprev_t.reshape(1, B, H))
        F.cross_entropy(head(out), y_chunk, reduction="sum").backward()
        ref = rnn_bptt(x_chunk, y_chunk, hprev, **params)
        grads = rnn_grads_in_document_layout(layer, head, "_l0")
        assert_grads_equal(grads, ref.grads, TOL)
        hprev_t = nn.detach_state(h_n[0])
        assert not hprev_t.requires_grad
        hprev = ref.hidden[-1]
        assert rel_error(hprev_t.data, hprev) <= TOL


@pytest.mark.skipif(
    np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
    reason="this platform's long double is no wider than float64",
)
def test_exploding_regime_agrees_to_the_closed_forms_own_accuracy() -> None:
    """With a recurrent spectral radius of ~3 (H=35, T=37) rounding error grows like the
    gradient does. Against the closed form evaluated in extended precision, autograd's
    float64 error stays within a small factor of the float64 closed form's own error."""
    B, D, H, K, T = 13, 1, 35, 3, 37
    rng = np.random.default_rng(3)
    params = init_rnn_params(D, H, K, rng, scale=0.5, random_biases=True)
    xs, s0 = rng.standard_normal((T, B, D)), rng.standard_normal((B, H))
    targets = rng.integers(0, K, (T, B))
    ld = np.longdouble
    exact = rnn_bptt(
        xs.astype(ld), targets, s0.astype(ld), **{k: v.astype(ld) for k, v in params.items()}
    )
    ref64 = rnn_bptt(xs, targets, s0, **params)
    _, grads, _ = _run_autograd(params, xs, s0, targets, None, "softmax", "layer")
    for key in ("U", "W", "b", "V", "c", "s0"):
        exact_k = np.asarray(exact.grads[key], dtype=ld)
        ours = rel_error(grads[key].astype(ld), exact_k)
        closed = rel_error(ref64.grads[key].astype(ld), exact_k)
        assert ours <= 10 * closed + 1e-13, (key, float(ours), float(closed))
