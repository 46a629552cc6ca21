"""The hand-written BPTT of ``tinygrad_rnn.reference`` against central finite differences.

Pure numpy, float64. The finite differences are taken of losses written here a second time,
independently of the reference's batched code: the RNN in the documents' column-vector form
(spec §1–2), the LSTM step by step in seed 004's row form (spec §4–5). So a test passes only
if the reference's forward pass (its loss) and its backward pass (its gradients) are both right.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn.reference import (
    BPTTResult,
    init_lstm_params,
    init_rnn_params,
    lstm_bptt,
    lstm_hidden_mse_bptt,
    rnn_bptt,
)
from tinygrad_rnn.reference.errata import (
    seed000_grad_b,
    seed000_output_layer,
    seed000_recursion,
    seed002_update_in_loop,
)

Arrays = dict[str, np.ndarray]

# Central differences err by about EPS²·|L'''|/6 (truncation) plus 1e-16·|L|/EPS (rounding of
# the loss). On these problems EPS = 1e-6 leaves the worst relative error near 2e-7, too close
# to RTOL for a randomised test; EPS = 1e-5 balances the two terms and leaves it near 2e-8.
EPS = 1e-5
RTOL = 1e-6
# Below this norm a gradient is compared in absolute terms (error < RTOL·NORM_FLOOR = 1e-9):
# the rounding noise above, ~1e-10 here, is all a finite difference can say about a gradient
# that small (e.g. exactly zero, as with a one-class softmax).
NORM_FLOOR = 1e-3

sizes = st.integers(min_value=1, max_value=5)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
# The number of examples comes from the hypothesis profile of tests/conftest.py (25 in CI, 40 in
# development, 500 with HYPOTHESIS_PROFILE=thorough); finite differences have no deadline.
FD_SETTINGS = settings(deadline=None)


# --------------------------------------------------------------------------------------------
# Finite differences.
# --------------------------------------------------------------------------------------------


def central_diff(loss: Callable[[], float], arrays: Arrays, eps: float = EPS) -> Arrays:
    """``∂loss/∂a`` for every array ``a`` of ``arrays``, one entry at a time.

    ``loss`` reads ``arrays``; each entry is moved by ``±eps`` in place and put back.
    """
    grads: Arrays = {}
    for name, a in arrays.items():
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            orig = a[idx]
            a[idx] = orig + eps
            up = loss()
            a[idx] = orig - eps
            down = loss()
            a[idx] = orig
            g[idx] = (up - down) / (2 * eps)
        grads[name] = g
    return grads


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """``‖got − want‖ / max(‖got‖, ‖want‖, NORM_FLOOR)``."""
    scale = max(float(np.linalg.norm(got)), float(np.linalg.norm(want)), NORM_FLOOR)
    return float(np.linalg.norm(got - want)) / scale


def assert_grads_match(result: BPTTResult, fd: Arrays, keys: set[str]) -> None:
    assert set(result.grads) == keys
    for name in sorted(keys):
        assert result.grads[name].shape == fd[name].shape, name
        err = rel_error(result.grads[name], fd[name])
        assert err < RTOL, f"{name}: relative error {err:.2e}"


# --------------------------------------------------------------------------------------------
# Independent forward passes (the losses differentiated by finite differences).
# --------------------------------------------------------------------------------------------


def rnn_loss_columns(
    a: Arrays, targets: np.ndarray, output: str, mask: np.ndarray, pert: np.ndarray | None = None
) -> float:
    """Spec §1–2 in the documents' column form: ``s_t`` is an ``(H, B)`` stack of columns.

    ``pert[t]`` (``(T, B, H)``) is added to ``s_t`` after the tanh, so ``∂L/∂pert[t]`` is the
    total ``∂L/∂s_t``.
    """
    s = a["s0"].T
    total = 0.0
    for t in range(a["xs"].shape[0]):
        s = np.tanh(a["b"][:, None] + a["W"] @ s + a["U"] @ a["xs"][t].T)
        if pert is not None:
            s = s + pert[t].T
        o = a["c"][:, None] + a["V"] @ s  # (K, B)
        if output == "softmax":
            cols = np.arange(o.shape[1])
            per_example = np.log(np.exp(o).sum(axis=0)) - o[targets[t], cols]
        elif output == "linear":
            per_example = 0.5 * ((targets[t].T - o) ** 2).sum(axis=0)
        else:
            y_hat = 1 / (1 + np.exp(-o))
            y = targets[t].T
            per_example = -(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat)).sum(axis=0)
        total += float((mask[t] * per_example).sum())
    return total


def lstm_loss_rows(
    a: Arrays,
    targets: np.ndarray,
    mask: np.ndarray,
    hidden_mse: bool,
    pert: np.ndarray | None = None,
) -> float:
    """Spec §4 (softmax on ``h_t W_y + b_y``) or §5 (``‖h_t − y_t‖²``), seed 004's rows.

    ``pert[t]`` is added to ``h_t``, so ``∂L/∂pert[t]`` is the total ``∂L/∂h_t``.
    """

    def sigmoid(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    h, c = a["h0"], a["c0"]
    total = 0.0
    for t in range(a["xs"].shape[0]):
        z = np.hstack([h, a["xs"][t]])
        f = sigmoid(z @ a["W_f"] + a["b_f"])
        i = sigmoid(z @ a["W_i"] + a["b_i"])
        c_bar = np.tanh(z @ a["W_c"] + a["b_c"])
        o = sigmoid(z @ a["W_o"] + a["b_o"])
        c = f * c + i * c_bar
        h = o * np.tanh(c)
        if pert is not None:
            h = h + pert[t]
        if hidden_mse:
            per_example = ((h - targets[t]) ** 2).sum(axis=1)
        else:
            logits = h @ a["W_y"] + a["b_y"]
            rows = np.arange(logits.shape[0])
            per_example = np.log(np.exp(logits).sum(axis=1)) - logits[rows, targets[t]]
        total += float((mask[t] * per_example).sum())
    return total


# --------------------------------------------------------------------------------------------
# Random problems.
# --------------------------------------------------------------------------------------------


def make_mask(rng: np.random.Generator, T: int, B: int, kind: str) -> np.ndarray | None:
    """``None`` (every step), 0/1 steps (spec §3), many-to-one, or non-negative weights."""
    if kind == "none":
        return None
    if kind == "binary":
        return rng.integers(0, 2, size=(T, B)).astype(np.float64)
    if kind == "last":
        m = np.zeros((T, B))
        m[-1] = 1.0
        return m
    return rng.uniform(0.0, 2.0, size=(T, B))


mask_kinds = st.sampled_from(["none", "binary", "last", "weights"])


def rnn_problem(
    seed: int, T: int, B: int, D: int, H: int, K: int, output: str
) -> tuple[Arrays, np.ndarray]:
    """Parameters of a size where tanh is neither linear nor saturated, and matching targets."""
    rng = np.random.default_rng(seed)
    a = init_rnn_params(D, H, K, rng, scale=0.6, random_biases=True)
    a["xs"] = rng.standard_normal((T, B, D))
    a["s0"] = 0.5 * rng.standard_normal((B, H))
    targets: np.ndarray
    if output == "softmax":
        targets = rng.integers(0, K, size=(T, B))
    elif output == "linear":
        targets = rng.standard_normal((T, B, K))
    else:
        targets = rng.uniform(0.0, 1.0, size=(T, B, K))
    return a, targets


RNNArgs = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]


def rnn_args(a: Arrays, targets: np.ndarray) -> RNNArgs:
    """The positional arguments ``(xs, targets, s0, U, W, V, b, c)`` of ``rnn_bptt``."""
    return (a["xs"], targets, a["s0"], a["U"], a["W"], a["V"], a["b"], a["c"])


def rnn_call(a: Arrays, targets: np.ndarray, **kwargs: Any) -> BPTTResult:
    return rnn_bptt(*rnn_args(a, targets), **kwargs)


def lstm_problem(
    seed: int, T: int, B: int, D: int, H: int, K: int, hidden_mse: bool
) -> tuple[Arrays, np.ndarray]:
    rng = np.random.default_rng(seed)
    a: Arrays = init_lstm_params(D, H, K, rng, random_biases=True)
    if hidden_mse:
        del a["W_y"], a["b_y"]
    a["xs"] = rng.standard_normal((T, B, D))
    a["h0"] = 0.5 * rng.standard_normal((B, H))
    a["c0"] = 0.5 * rng.standard_normal((B, H))
    targets: np.ndarray
    if hidden_mse:
        targets = 0.5 * rng.standard_normal((T, B, H))
    else:
        targets = rng.integers(0, K, size=(T, B))
    return a, targets


def lstm_call(a: Arrays, targets: np.ndarray, hidden_mse: bool, **kwargs: Any) -> BPTTResult:
    params = {k: v for k, v in a.items() if k not in ("xs", "h0", "c0")}
    fn = lstm_hidden_mse_bptt if hidden_mse else lstm_bptt
    return fn(a["xs"], targets, a["h0"], a["c0"], **params, **kwargs)


# --------------------------------------------------------------------------------------------
# Gradients against finite differences.
# --------------------------------------------------------------------------------------------

RNN_KEYS = {"U", "W", "V", "b", "c", "s0", "xs"}
LSTM_GATE_KEYS = {"W_f", "W_i", "W_c", "W_o", "b_f", "b_i", "b_c", "b_o", "h0", "c0", "xs"}


@FD_SETTINGS
@given(
    seed=seeds,
    T=sizes,
    B=sizes,
    D=sizes,
    H=sizes,
    K=sizes,
    output=st.sampled_from(["softmax", "linear", "sigmoid"]),
    mask_kind=mask_kinds,
)
def test_rnn_grads_match_fd(
    seed: int, T: int, B: int, D: int, H: int, K: int, output: str, mask_kind: str
) -> None:
    """Spec §1–3: every gradient of ``rnn_bptt``, all output layers, with and without mask."""
    a, targets = rnn_problem(seed, T, B, D, H, K, output)
    mask = make_mask(np.random.default_rng(seed + 1), T, B, mask_kind)
    m = np.ones((T, B)) if mask is None else mask

    result = rnn_call(a, targets, output=output, mask=mask)

    def loss() -> float:
        return rnn_loss_columns(a, targets, output, m)

    assert result.loss == pytest.approx(loss(), rel=1e-12, abs=1e-12)
    assert_grads_match(result, central_diff(loss, a), RNN_KEYS)


@FD_SETTINGS
@given(seed=seeds, T=sizes, B=sizes, D=sizes, H=sizes, K=sizes, mask_kind=mask_kinds)
def test_lstm_grads_match_fd(
    seed: int, T: int, B: int, D: int, H: int, K: int, mask_kind: str
) -> None:
    """Spec §4, seed 004: every gradient of ``lstm_bptt``, with and without mask."""
    a, targets = lstm_problem(seed, T, B, D, H, K, hidden_mse=False)
    mask = make_mask(np.random.default_rng(seed + 1), T, B, mask_kind)
    m = np.ones((T, B)) if mask is None else mask

    result = lstm_call(a, targets, hidden_mse=False, mask=mask)

    def loss() -> float:
        return lstm_loss_rows(a, targets, m, hidden_mse=False)

    assert result.loss == pytest.approx(loss(), rel=1e-12, abs=1e-12)
    assert_grads_match(result, central_diff(loss, a), LSTM_GATE_KEYS | {"W_y", "b_y"})


@FD_SETTINGS
@given(seed=seeds, T=sizes, B=sizes, D=sizes, H=sizes, mask_kind=mask_kinds)
def test_lstm_hidden_mse_grads_match_fd(
    seed: int, T: int, B: int, D: int, H: int, mask_kind: str
) -> None:
    """Spec §5, seed 001: every gradient of ``lstm_hidden_mse_bptt``, with and without mask."""
    a, targets = lstm_problem(seed, T, B, D, H, 1, hidden_mse=True)
    mask = make_mask(np.random.default_rng(seed + 1), T, B, mask_kind)
    m = np.ones((T, B)) if mask is None else mask

    result = lstm_call(a, targets, hidden_mse=True, mask=mask)

    def loss() -> float:
        return lstm_loss_rows(a, targets, m, hidden_mse=True)

    assert result.loss == pytest.approx(loss(), rel=1e-12, abs=1e-12)
    assert_grads_match(result, central_diff(loss, a), LSTM_GATE_KEYS)


# --------------------------------------------------------------------------------------------
# dhidden: the total ∂L/∂s_t (∂L/∂h_t), checked by perturbing the hidden state itself.
# --------------------------------------------------------------------------------------------


@FD_SETTINGS
@given(
    seed=seeds,
    T=sizes,
    B=sizes,
    D=sizes,
    H=sizes,
    K=sizes,
    output=st.sampled_from(["softmax", "linear", "sigmoid"]),
    mask_kind=mask_kinds,
)
def test_rnn_dhidden_matches_fd(
    seed: int, T: int, B: int, D: int, H: int, K: int, output: str, mask_kind: str
) -> None:
    """``dhidden`` is the total ∂L/∂s_t: finite differences of a perturbation added to s_t."""
    a, targets = rnn_problem(seed, T, B, D, H, K, output)
    mask = make_mask(np.random.default_rng(seed + 1), T, B, mask_kind)
    m = np.ones((T, B)) if mask is None else mask
    result = rnn_call(a, targets, output=output, mask=mask)

    pert = {"s": np.zeros((T, B, H))}
    fd = central_diff(lambda: rnn_loss_columns(a, targets, output, m, pert["s"]), pert)["s"]
    assert result.hidden.shape == result.dhidden.shape == (T, B, H)
    assert rel_error(result.dhidden, fd) < RTOL

    # Spec §1: ∂L/∂s0 = Wᵀ δ_0 with δ_0 = (1 − s_0²) ⊙ ∂L/∂s_0.
    delta0 = (1 - result.hidden[0] ** 2) * result.dhidden[0]
    np.testing.assert_allclose(result.grads["s0"], delta0 @ a["W"], rtol=1e-12, atol=1e-15)


@FD_SETTINGS
@given(seed=seeds, T=sizes, B=sizes, D=sizes, H=sizes, K=sizes, hidden_mse=st.booleans())
def test_lstm_dhidden_matches_fd(
    seed: int, T: int, B: int, D: int, H: int, K: int, hidden_mse: bool
) -> None:
    """``dhidden`` is the total ∂L/∂h_t (spec §4–5): finite differences of a perturbation of h_t."""
    a, targets = lstm_problem(seed, T, B, D, H, K, hidden_mse)
    mask = make_mask(np.random.default_rng(seed + 1), T, B, "binary")
    assert mask is not None
    result = lstm_call(a, targets, hidden_mse, mask=mask)

    pert = {"h": np.zeros((T, B, H))}
    fd = central_diff(lambda: lstm_loss_rows(a, targets, mask, hidden_mse, pert["h"]), pert)["h"]
    assert result.hidden.shape == result.dhidden.shape == (T, B, H)
    assert rel_error(result.dhidden, fd) < RTOL


def test_rnn_mask_selects_the_steps_with_a_loss() -> None:
    """Spec §3, many-to-one: with a loss only at the last step the loss is that step's alone and
    ∂L/∂o_t = 0 before it, so ∂L/∂s_t there is only the recurrent path Wᵀ δ_{t+1}; a fully
    masked sequence has zero loss and exactly zero gradients."""
    a, targets = rnn_problem(3, T=4, B=2, D=3, H=3, K=3, output="softmax")
    last = np.zeros((4, 2))
    last[-1] = 1.0
    full = rnn_call(a, targets)
    only_last = rnn_call(a, targets, mask=last)
    assert only_last.loss == pytest.approx(
        rnn_call({**a, "xs": a["xs"][-1:], "s0": full.hidden[-2]}, targets[-1:]).loss
    )
    delta = (1 - only_last.hidden**2) * only_last.dhidden
    np.testing.assert_allclose(only_last.dhidden[:-1], delta[1:] @ a["W"], rtol=1e-12)
    none = rnn_call(a, targets, mask=np.zeros((4, 2)))
    assert none.loss == 0.0
    assert all(not g.any() for g in none.grads.values())


def test_empty_sequence_has_zero_loss_and_gradients() -> None:
    """T = 0: no step, no loss; every gradient exists with its input's shape and is zero."""
    a, targets = rnn_problem(0, 0, 2, 3, 4, 5, "softmax")
    results = [rnn_call(a, targets)]
    for hidden_mse in (False, True):
        lstm, lstm_targets = lstm_problem(0, 0, 2, 3, 4, 5, hidden_mse)
        results.append(lstm_call(lstm, lstm_targets, hidden_mse))
        a |= lstm
    for result in results:
        assert result.loss == 0.0
        assert result.hidden.shape == result.dhidden.shape == (0, 2, 4)
        for name, g in result.grads.items():
            assert g.shape == a[name].shape and not g.any(), name


# --------------------------------------------------------------------------------------------
# Errata (spec §1): each printed form cannot be evaluated or disagrees with the true gradient.
# --------------------------------------------------------------------------------------------


def softmax_rnn(seed: int, T: int, B: int, D: int, H: int, K: int) -> tuple[Arrays, np.ndarray]:
    return rnn_problem(seed, T, B, D, H, K, "softmax")


def differs(x: np.ndarray, y: np.ndarray) -> bool:
    return rel_error(x, y) > 1e-3


@pytest.mark.parametrize(("D", "H", "K"), [(3, 4, 4), (4, 4, 3), (2, 4, 5)])
def test_seed000_output_layer_unevaluable_shapes(D: int, H: int, K: int) -> None:
    a, _ = softmax_rnn(0, 2, 2, D, H, K)
    s = np.zeros((2, 2, H))
    with pytest.raises(ValueError, match=r"seed000_output_layer: .*o_t = c \+ U s_t"):
        seed000_output_layer(s, a["U"], a["c"])


@pytest.mark.parametrize("seed", range(5))
def test_seed000_output_layer_is_not_the_output(seed: int) -> None:
    """With D == H == K the printed ``c + U s_t`` evaluates, but is not ``c + V s_t``."""
    a, targets = softmax_rnn(seed, 3, 2, 4, 4, 4)
    s = rnn_call(a, targets).hidden
    printed = seed000_output_layer(s, a["U"], a["c"])
    assert printed.shape == (3, 2, 4)
    assert differs(printed, a["c"] + s @ a["V"].T)


@pytest.mark.parametrize(("H", "K"), [(3, 4), (4, 2), (1, 3)])
def test_seed000_grad_b_unevaluable_when_k_differs_from_h(H: int, K: int) -> None:
    a, targets = softmax_rnn(1, 3, 2, 2, H, K)
    with pytest.raises(ValueError, match=r"seed000_grad_b: .*needs K == H"):
        seed000_grad_b(*rnn_args(a, targets))


@pytest.mark.parametrize("seed", range(5))
def test_seed000_grad_b_differs_from_true_gradient(seed: int) -> None:
    """With K == H it evaluates to something else; the corrected form, with ``∇_{s_t} L`` in
    place of ``∇_{o_t} L``, is exactly ``rnn_bptt``'s (finite-difference-checked) ∂L/∂b."""
    a, targets = softmax_rnn(seed, 4, 3, 2, 3, 3)
    result = rnn_call(a, targets)
    assert differs(seed000_grad_b(*rnn_args(a, targets)), result.grads["b"])
    corrected = ((1 - result.hidden**2) * result.dhidden).sum(axis=(0, 1))
    np.testing.assert_allclose(corrected, result.grads["b"], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_seed000_recursion_differs_from_true_gradient(seed: int) -> None:
    """Applying ``diag(1 − s_{t+1}²)`` after ``Wᵀ`` gives wrong gradients of W, U, b and s0."""
    a, targets = softmax_rnn(seed, 4, 2, 3, 4, 3)
    printed = seed000_recursion(*rnn_args(a, targets))
    true = rnn_call(a, targets).grads
    for name in ("W", "U", "b", "s0"):
        assert printed[name].shape == true[name].shape
        assert differs(printed[name], true[name]), name


@pytest.mark.parametrize(("T", "H"), [(1, 4), (4, 1)])
def test_seed000_recursion_harmless_when_order_cannot_matter(T: int, H: int) -> None:
    """With H = 1 (scalars commute) the printed order is harmless, and with one step the
    recursion is only used for ∂L/∂s0; so the disagreement above is the order of the diagonal
    factor and nothing else."""
    a, targets = softmax_rnn(7, T, 2, 3, H, 3)
    printed = seed000_recursion(*rnn_args(a, targets))
    true = rnn_call(a, targets).grads
    if H > 1:
        assert differs(printed["s0"], true["s0"])
    for name in ("W", "U", "b", "s0") if H == 1 else ("W", "U", "b"):
        np.testing.assert_allclose(printed[name], true[name], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_seed002_update_in_loop_is_not_gradient_descent(seed: int) -> None:
    """Seed 002's in-loop updates differ from one step along the true gradient (at order
    lr²); at lr = 0 both leave the parameters alone."""
    a, targets = softmax_rnn(seed, 4, 2, 3, 4, 3)
    true = rnn_call(a, targets).grads
    lr = 0.5
    printed = seed002_update_in_loop(*rnn_args(a, targets), lr)
    descent = {name: a[name] - lr * true[name] for name in printed}
    for name in ("U", "W", "b"):
        assert differs(printed[name] - a[name], descent[name] - a[name]), name
    # The output layer is updated before the loop, from the forward pass: that part is right.
    for name in ("V", "c"):
        np.testing.assert_allclose(printed[name], descent[name], rtol=1e-12)
    unchanged = seed002_update_in_loop(*rnn_args(a, targets), 0.0)
    for name, value in unchanged.items():
        np.testing.assert_array_equal(value, a[name])


def test_seed002_difference_is_second_order_in_lr() -> None:
    """Halving lr quarters the gap to true gradient descent: the error is O(lr²), i.e. the
    in-loop updates are exact to first order but not the gradient step."""
    a, targets = softmax_rnn(11, 5, 2, 3, 4, 3)
    true = rnn_call(a, targets).grads

    def gap(lr: float) -> float:
        printed = seed002_update_in_loop(*rnn_args(a, targets), lr)
        return float(np.linalg.norm(printed["W"] - (a["W"] - lr * true["W"])))

    assert gap(1e-3) / gap(5e-4) == pytest.approx(4.0, rel=1e-2)


# --------------------------------------------------------------------------------------------
# Numerical stability of the losses.
# --------------------------------------------------------------------------------------------


def finite(result: BPTTResult) -> bool:
    arrays = [result.hidden, result.dhidden, *result.grads.values()]
    return bool(np.isfinite(result.loss) and all(np.isfinite(x).all() for x in arrays))


# Underflow is left at numpy's default (ignore): exp(−1e4) rounding to 0 is the correct float64
# result for a probability of e^−10000. Overflow, division by zero and invalid operations (inf,
# nan) are what an unstable softmax or sigmoid would produce, and they raise here (warnings are
# errors in the project's pytest configuration as well).
def raise_on_overflow() -> np.errstate:
    return np.errstate(over="raise", divide="raise", invalid="raise")


@pytest.mark.parametrize("output", ["softmax", "linear", "sigmoid"])
def test_rnn_huge_logits_are_finite(output: str) -> None:
    a, targets = rnn_problem(5, 4, 3, 3, 4, 3, output)
    a["V"] = a["V"] * 1e4  # logits of order ±1e4
    with raise_on_overflow():
        result = rnn_call(a, targets, output=output)
    assert finite(result)


def test_rnn_huge_logits_softmax_exact() -> None:
    """Logits ``[1e4, −1e4]`` and class 1: ``L_t = 2e4``, ``∂L_t/∂c = ŷ − onehot = [1, −1]``."""
    T, B = 3, 2
    a, _ = rnn_problem(0, T, B, 2, 3, 2, "softmax")
    a["V"] = np.zeros_like(a["V"])
    a["c"] = np.array([1e4, -1e4])
    with raise_on_overflow():
        result = rnn_call(a, np.ones((T, B), dtype=np.int64))
    assert result.loss == pytest.approx(T * B * 2e4)
    np.testing.assert_allclose(result.grads["c"], T * B * np.array([1.0, -1.0]))


def test_rnn_huge_logits_sigmoid_exact() -> None:
    """Logit ``1e4`` with target 0: ``L_t = 1e4`` and ``∂L_t/∂o_t = σ(o) − y = 1``."""
    T, B = 3, 2
    a, _ = rnn_problem(0, T, B, 2, 3, 2, "sigmoid")
    a["V"] = np.zeros_like(a["V"])
    a["c"] = np.array([1e4, -1e4])
    targets = np.zeros((T, B, 2))
    with raise_on_overflow():
        result = rnn_call(a, targets, output="sigmoid")
    assert result.loss == pytest.approx(T * B * 1e4)
    np.testing.assert_allclose(result.grads["c"], T * B * np.array([1.0, 0.0]))


@pytest.mark.parametrize("hidden_mse", [False, True])
def test_lstm_huge_preactivations_are_finite(hidden_mse: bool) -> None:
    a, targets = lstm_problem(5, 4, 3, 3, 4, 3, hidden_mse)
    for name in a:
        if name.startswith("W_"):
            a[name] = a[name] * 1e4  # gates and logits of order ±1e4: σ, tanh saturate
    with raise_on_overflow():
        result = lstm_call(a, targets, hidden_mse)
    assert finite(result)


# --------------------------------------------------------------------------------------------
# Input validation and purity.
# --------------------------------------------------------------------------------------------

T0, B0, D0, H0, K0 = 3, 2, 5, 4, 6


def rnn_valid() -> tuple[Arrays, np.ndarray]:
    return rnn_problem(0, T0, B0, D0, H0, K0, "softmax")


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("xs", (T0, D0)),
        ("U", (H0, D0 + 1)),
        ("W", (H0, H0 + 1)),
        ("V", (K0,)),
        ("V", (K0, H0 + 1)),
        ("b", (H0 + 1,)),
        ("c", (K0, 1)),
        ("s0", (B0 + 1, H0)),
    ],
)
def test_rnn_wrong_shape_names_the_argument(name: str, shape: tuple[int, ...]) -> None:
    a, targets = rnn_valid()
    a[name] = np.zeros(shape)
    with pytest.raises(ValueError, match=rf"^rnn_bptt: {name} must have shape"):
        rnn_call(a, targets)


def test_rnn_shape_message_spells_the_expected_shape() -> None:
    a, targets = rnn_valid()
    a["W"] = np.zeros((H0, H0 + 1))
    expected = "rnn_bptt: W must have shape (H, H) = (4, 4), got (4, 5)"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        rnn_call(a, targets)


def test_rnn_targets_and_mask_validation() -> None:
    a, targets = rnn_valid()
    with pytest.raises(ValueError, match=r"rnn_bptt: output must be one of"):
        rnn_call(a, targets, output="tanh")
    with pytest.raises(ValueError, match=r"rnn_bptt: targets must lie in the range \[0, K\)"):
        rnn_call(a, np.full((T0, B0), K0))
    with pytest.raises(ValueError, match=r"rnn_bptt: targets must lie in the range \[0, K\)"):
        rnn_call(a, np.full((T0, B0), -1))
    with pytest.raises(ValueError, match=r"rnn_bptt: targets must be integer"):
        rnn_call(a, targets.astype(np.float64))
    with pytest.raises(ValueError, match=r"rnn_bptt: targets must have shape \(T, B\)"):
        rnn_call(a, targets[:, :1])
    with pytest.raises(ValueError, match=r"rnn_bptt: targets must have shape \(T, B, K\)"):
        rnn_call(a, np.zeros((T0, B0, K0 + 1)), output="linear")
    with pytest.raises(ValueError, match=r"rnn_bptt: sigmoid targets must lie in the range"):
        rnn_call(a, np.full((T0, B0, K0), 1.5), output="sigmoid")
    with pytest.raises(ValueError, match=r"rnn_bptt: mask must have shape \(T, B\)"):
        rnn_call(a, targets, mask=np.ones((T0, B0 + 1)))


LSTM_BAD_SHAPES = [
    ("xs", (T0, B0)),
    ("W_f", (H0 + D0 + 1, H0)),
    ("W_i", (H0 + D0, H0 + 1)),
    ("W_c", (D0, H0)),  # forgot the hidden rows of z_t
    ("W_o", (H0 + D0,)),
    ("b_f", (H0 + 1,)),
    ("b_c", (1, H0)),
    ("h0", (B0, H0 + 1)),
    ("c0", (B0 + 1, H0)),
]


@pytest.mark.parametrize(
    ("hidden_mse", "name", "shape"),
    [(True, name, shape) for name, shape in LSTM_BAD_SHAPES]
    + [
        (False, name, shape)
        for name, shape in [*LSTM_BAD_SHAPES, ("W_y", (H0 + 1, K0)), ("b_y", (K0 + 1,))]
    ],
)
def test_lstm_wrong_shape_names_the_argument(
    hidden_mse: bool, name: str, shape: tuple[int, ...]
) -> None:
    a, targets = lstm_problem(0, T0, B0, D0, H0, K0, hidden_mse)
    a[name] = np.zeros(shape)
    fn = "lstm_hidden_mse_bptt" if hidden_mse else "lstm_bptt"
    with pytest.raises(ValueError, match=rf"^{fn}: {name} must have shape"):
        lstm_call(a, targets, hidden_mse)


def test_lstm_targets_validation() -> None:
    a, targets = lstm_problem(0, T0, B0, D0, H0, K0, hidden_mse=False)
    with pytest.raises(ValueError, match=r"lstm_bptt: targets must lie in the range \[0, K\)"):
        lstm_call(a, targets + K0, hidden_mse=False)
    with pytest.raises(ValueError, match=r"lstm_bptt: mask must have shape"):
        lstm_call(a, targets, hidden_mse=False, mask=np.ones(T0))
    a, targets = lstm_problem(0, T0, B0, D0, H0, K0, hidden_mse=True)
    with pytest.raises(ValueError, match=r"lstm_hidden_mse_bptt: targets must have shape"):
        lstm_call(a, targets[..., :-1], hidden_mse=True)


def read_only(a: Arrays) -> Arrays:
    """Copies that raise on any in-place write."""
    out = {k: v.copy() for k, v in a.items()}
    for v in out.values():
        v.flags.writeable = False
    return out


def test_inputs_are_never_written() -> None:
    rnn, y = rnn_problem(2, T0, B0, D0, H0, H0, "softmax")
    frozen = read_only(rnn)
    mask = np.ones((T0, B0))
    mask.flags.writeable = False
    y.flags.writeable = False
    for output, targets in (
        ("softmax", y),
        ("linear", np.zeros((T0, B0, H0))),
        ("sigmoid", np.zeros((T0, B0, H0))),
    ):
        targets.flags.writeable = False
        rnn_call(frozen, targets, output=output, mask=mask)
    seed000_grad_b(*rnn_args(frozen, y))
    seed000_recursion(*rnn_args(frozen, y))
    seed002_update_in_loop(*rnn_args(frozen, y), 0.1)
    for hidden_mse in (False, True):
        lstm, targets = lstm_problem(2, T0, B0, D0, H0, K0, hidden_mse)
        targets.flags.writeable = False
        lstm_call(read_only(lstm), targets, hidden_mse, mask=mask)
    for name, value in frozen.items():
        np.testing.assert_array_equal(value, rnn[name])


def test_init_params_splat_into_the_functions() -> None:
    rng = np.random.default_rng(0)
    rnn = init_rnn_params(D0, H0, K0, rng, dtype=np.float32)
    assert {k: v.shape for k, v in rnn.items()} == {
        "U": (H0, D0),
        "W": (H0, H0),
        "V": (K0, H0),
        "b": (H0,),
        "c": (K0,),
    }
    assert all(v.dtype == np.float32 for v in rnn.values())
    assert not rnn["b"].any() and not rnn["c"].any()
    xs = rng.standard_normal((T0, B0, D0)).astype(np.float32)
    y = rng.integers(0, K0, size=(T0, B0))
    out = rnn_bptt(xs, y, np.zeros((B0, H0), np.float32), **rnn)  # type: ignore[arg-type]
    assert all(g.dtype == np.float32 for g in out.grads.values())

    lstm = init_lstm_params(D0, H0, K0, rng)
    Z = H0 + D0
    assert lstm["W_f"].shape == (Z, H0) and lstm["W_y"].shape == (H0, K0)
    assert not any(lstm[f"b_{g}"].any() for g in "fico") and not lstm["b_y"].any()
    h0 = np.zeros((B0, H0))
    lstm_bptt(xs, y, h0, h0, **lstm)
    # Seed 004's scales: W_* ~ N(0,1)/sqrt(Z/2), W_y ~ N(0,1)/sqrt(D/2).
    big = init_lstm_params(50, 60, 40, np.random.default_rng(1))
    assert big["W_i"].std() == pytest.approx(1 / np.sqrt(110 / 2), rel=0.05)
    assert big["W_y"].std() == pytest.approx(1 / np.sqrt(50 / 2), rel=0.05)
