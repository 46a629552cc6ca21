"""Spec §1's errata: each printed form in the documents disagrees with autograd, or cannot be
evaluated. The correct forms are the ones ``tinygrad_rnn.reference`` implements, which the
other tests in this folder prove equal to autograd."""

from __future__ import annotations

import numpy as np
import pytest
from _models import rel_error, rnn_grads_in_document_layout, stable_scale

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.reference import errata, init_rnn_params


def _problem(D: int, H: int, K: int, T: int = 5, B: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = init_rnn_params(D, H, K, rng, scale=stable_scale(H), random_biases=True)
    xs = rng.standard_normal((T, B, D))
    s0 = rng.standard_normal((B, H))
    targets = rng.integers(0, K, (T, B))
    return params, xs, s0, targets


def _autograd(params, xs, s0, targets):
    """Outputs, hidden states and document-layout gradients, all from the engine."""
    cell, head = nn.rnn_from_document(params, dtype=np.float64)
    s0_t = tg.Tensor(s0, requires_grad=True)
    hs = tg.stack(nn.unroll(cell, tg.Tensor(xs), s0_t))
    logits = head(hs)
    F.cross_entropy(logits, targets, reduction="sum").backward()
    grads = rnn_grads_in_document_layout(cell, head)
    grads["s0"] = s0_t.grad.data
    return logits.data, hs.data, grads


def test_seed000_output_layer_with_U_cannot_be_evaluated_when_sizes_differ() -> None:
    params, xs, s0, targets = _problem(D=3, H=4, K=5)
    _, hs, _ = _autograd(params, xs, s0, targets)
    with pytest.raises(ValueError):
        errata.seed000_output_layer(hs, params["U"], params["c"])


def test_seed000_output_layer_with_U_is_not_the_networks_output() -> None:
    params, xs, s0, targets = _problem(D=4, H=4, K=4)
    logits, hs, _ = _autograd(params, xs, s0, targets)
    printed = errata.seed000_output_layer(hs, params["U"], params["c"])
    assert rel_error(printed, logits) > 1e-2


def test_seed000_grad_b_has_the_wrong_shape_when_K_differs_from_H() -> None:
    params, xs, s0, targets = _problem(D=3, H=4, K=6)
    with pytest.raises(ValueError, match="K == H"):
        errata.seed000_grad_b(xs, targets, s0, **params)


def test_seed000_grad_b_disagrees_with_autograd_when_it_evaluates() -> None:
    params, xs, s0, targets = _problem(D=3, H=5, K=5)
    _, _, grads = _autograd(params, xs, s0, targets)
    printed = errata.seed000_grad_b(xs, targets, s0, **params)
    assert rel_error(printed, grads["b"]) > 1e-2


def test_seed000_recursion_disagrees_with_autograd() -> None:
    params, xs, s0, targets = _problem(D=3, H=4, K=5)
    _, _, grads = _autograd(params, xs, s0, targets)
    printed = errata.seed000_recursion(xs, targets, s0, **params)
    for key in ("U", "W", "b", "s0"):
        assert rel_error(printed[key], grads[key]) > 1e-3, key


def test_seed000_recursion_agrees_with_autograd_in_the_scalar_case() -> None:
    """With H = 1 the diagonal commutes with Wᵀ: the erratum is invisible, which is why the
    test above needs H > 1 (and shows the comparison itself can pass)."""
    params, xs, s0, targets = _problem(D=3, H=1, K=5)
    _, _, grads = _autograd(params, xs, s0, targets)
    printed = errata.seed000_recursion(xs, targets, s0, **params)
    for key in ("U", "W", "b"):
        assert rel_error(printed[key], grads[key]) < 1e-12, key


def test_seed002_updating_inside_the_loop_is_not_gradient_descent() -> None:
    params, xs, s0, targets = _problem(D=3, H=4, K=5)
    _, _, grads = _autograd(params, xs, s0, targets)
    lr = 0.1
    printed = errata.seed002_update_in_loop(xs, targets, s0, **params, lr=lr)
    descent = {k: params[k] - lr * grads[k] for k in ("U", "W", "V", "b", "c")}
    # V and c are updated from the forward pass alone, so they agree ...
    assert rel_error(printed["V"], descent["V"]) < 1e-12
    # ... but the recurrent weights use already-updated weights in later error terms.
    for key in ("U", "W", "b"):
        assert rel_error(printed[key] - params[key], descent[key] - params[key]) > 1e-4, key
