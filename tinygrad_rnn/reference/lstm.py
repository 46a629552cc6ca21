"""Closed-form BPTT of the LSTM, hand-written in plain numpy (spec §4–5).

Seed 004's notation and row-vector convention: ``z_t = [h_{t-1}, x_t]`` (hidden state first),
gate weights ``W_f, W_i, W_c, W_o: Z×H`` applied as ``z_t W``, output ``W_y: H×K``. A batch is
a stack of those rows, so the formulas carry over unchanged; the per-step outer products
``z_tᵀ dg`` then also sum over the batch.

Section 5 (seed 001) is the same network with the loss ``‖h_t − y_t‖²`` on the hidden state and
no output layer; both share the forward pass and the backward recursion below, which differ
only in the gradient ``∂L_t/∂h_t`` that enters the recursion at each step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .rnn import (
    BPTTResult,
    FloatArray,
    _as_float_arrays,
    _as_mask,
    _check_ndim,
    _check_shape,
    _class_targets,
    _previous,
    _softmax_xent,
    _tanh_grad,
)

__all__ = ["init_lstm_params", "lstm_bptt", "lstm_hidden_mse_bptt"]

GATES = ("f", "i", "c", "o")


def _sigmoid(x: FloatArray) -> FloatArray:
    """σ(x) as ``exp(−log(1 + e^{−x}))``: never overflows, for any sign or size of ``x``."""
    return np.exp(-np.logaddexp(0.0, -x))


class _LSTMInputs(NamedTuple):
    xs: FloatArray
    h0: FloatArray
    c0: FloatArray
    W: dict[str, FloatArray]  # gate -> (Z, H)
    b: dict[str, FloatArray]  # gate -> (H,)


class _LSTMCache(NamedTuple):
    """What the backward pass needs from the forward pass, each ``(T, B, ·)``."""

    z: FloatArray  # z_t = [h_{t-1}, x_t]
    f: FloatArray
    i: FloatArray
    c_bar: FloatArray  # c̃_t
    o: FloatArray
    c_prev: FloatArray  # c_{t-1}
    tanh_c: FloatArray  # tanh(c_t)
    h: FloatArray  # h_t


def _validate_lstm(
    fn: str,
    xs: npt.ArrayLike,
    h0: npt.ArrayLike,
    c0: npt.ArrayLike,
    weights: dict[str, npt.ArrayLike],
    biases: dict[str, npt.ArrayLike],
    extra: dict[str, npt.ArrayLike],
) -> tuple[_LSTMInputs, dict[str, FloatArray]]:
    """Check the shapes of spec §4 and convert everything to one floating dtype.

    ``extra`` holds the output layer (``W_y``, ``b_y``) or nothing; it is returned converted.
    """
    names = ["xs", "h0", "c0", *weights, *biases, *extra]
    arrs = dict(
        zip(
            names,
            _as_float_arrays(xs, h0, c0, *weights.values(), *biases.values(), *extra.values()),
            strict=True,
        )
    )
    _check_ndim(fn, "xs", arrs["xs"], "(T, B, D)")
    _, B, D = arrs["xs"].shape
    _check_ndim(fn, "W_f", arrs["W_f"], "(Z, H)")
    H = arrs["W_f"].shape[1]
    Z = H + D  # the hidden state comes first in z_t = [h_{t-1}, x_t]
    for g in GATES:
        _check_shape(fn, f"W_{g}", arrs[f"W_{g}"], "(Z, H)", (Z, H))
        _check_shape(fn, f"b_{g}", arrs[f"b_{g}"], "(H,)", (H,))
    _check_shape(fn, "h0", arrs["h0"], "(B, H)", (B, H))
    _check_shape(fn, "c0", arrs["c0"], "(B, H)", (B, H))
    if extra:
        _check_ndim(fn, "W_y", arrs["W_y"], "(H, K)")
        K = arrs["W_y"].shape[1]
        _check_shape(fn, "W_y", arrs["W_y"], "(H, K)", (H, K))
        _check_shape(fn, "b_y", arrs["b_y"], "(K,)", (K,))
    inputs = _LSTMInputs(
        arrs["xs"],
        arrs["h0"],
        arrs["c0"],
        {g: arrs[f"W_{g}"] for g in GATES},
        {g: arrs[f"b_{g}"] for g in GATES},
    )
    return inputs, {name: arrs[name] for name in extra}


def _lstm_forward(p: _LSTMInputs) -> _LSTMCache:
    """The forward pass of spec §4, keeping every intermediate the backward pass reads."""
    T, B, D = p.xs.shape
    H = p.h0.shape[1]
    z = np.empty((T, B, H + D), dtype=p.xs.dtype)
    f, i, c_bar, o, c, tanh_c, h = (np.empty((T, B, H), dtype=p.xs.dtype) for _ in range(7))
    h_prev, c_prev = p.h0, p.c0
    for t in range(T):
        z[t] = np.concatenate([h_prev, p.xs[t]], axis=-1)  # z_t = [h_{t-1}, x_t]
        f[t] = _sigmoid(z[t] @ p.W["f"] + p.b["f"])  # f_t = σ(z_t W_f + b_f)
        i[t] = _sigmoid(z[t] @ p.W["i"] + p.b["i"])  # i_t = σ(z_t W_i + b_i)
        c_bar[t] = np.tanh(z[t] @ p.W["c"] + p.b["c"])  # c̃_t = tanh(z_t W_c + b_c)
        o[t] = _sigmoid(z[t] @ p.W["o"] + p.b["o"])  # o_t = σ(z_t W_o + b_o)
        c[t] = c_prev = f[t] * c_prev + i[t] * c_bar[t]  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t
        tanh_c[t] = np.tanh(c[t])
        h[t] = h_prev = o[t] * tanh_c[t]  # h_t = o_t ⊙ tanh(c_t)
    return _LSTMCache(z, f, i, c_bar, o, _previous(p.c0, c), tanh_c, h)


def _lstm_backward(
    p: _LSTMInputs, cache: _LSTMCache, dh_out: FloatArray
) -> tuple[dict[str, FloatArray], FloatArray]:
    """Spec §4's per-step recursion, from ``t = T`` down, carrying ``dh_next`` and ``dc_next``.

    ``dh_out[t]`` is the output path's ``∂L_t/∂h_t`` (``dy W_yᵀ`` in §4, ``2(h_t − y_t)`` in §5).
    Returns the gradients of the gates, ``h0``, ``c0`` and ``xs``, and the total ``∂L/∂h_t``.
    """
    T, _, H = dh_out.shape
    dW = {g: np.zeros_like(p.W[g]) for g in GATES}
    db = {g: np.zeros_like(p.b[g]) for g in GATES}
    dxs = np.empty_like(p.xs)
    dh_total = np.empty_like(dh_out)
    dh_next = np.zeros_like(p.h0)  # both 0 at t = T: nothing comes back from after the end
    dc_next = np.zeros_like(p.c0)
    for t in reversed(range(T)):
        f, i, c_bar, o, tanh_c = cache.f[t], cache.i[t], cache.c_bar[t], cache.o[t], cache.tanh_c[t]
        dh = dh_total[t] = dh_out[t] + dh_next  # dh = dy W_yᵀ (§4) or 2(h_t − y_t) (§5) + dh_next
        do = dh * tanh_c * o * (1 - o)  # do = dh ⊙ tanh(c_t) ⊙ o_t(1−o_t)
        dc = dh * o * _tanh_grad(tanh_c) + dc_next  # dc = dh ⊙ o_t ⊙ (1 − tanh²(c_t)) + dc_next
        d = {
            "f": dc * cache.c_prev[t] * f * (1 - f),  # df = dc ⊙ c_{t-1} ⊙ f_t(1−f_t)
            "i": dc * c_bar * i * (1 - i),  # di = dc ⊙ c̃_t ⊙ i_t(1−i_t)
            "c": dc * i * _tanh_grad(c_bar),  # dc̃ = dc ⊙ i_t ⊙ (1 − c̃_t²)
            "o": do,
        }
        for g in GATES:
            dW[g] += cache.z[t].T @ d[g]  # dW_g += z_tᵀ dg (summed over the batch)
            db[g] += d[g].sum(axis=0)  # db_g += dg
        # dz = df W_fᵀ + di W_iᵀ + dc̃ W_cᵀ + do W_oᵀ
        dz = d["f"] @ p.W["f"].T + d["i"] @ p.W["i"].T + d["c"] @ p.W["c"].T + do @ p.W["o"].T
        dh_next = dz[:, :H]  # the h_{t-1} part of z_t
        dxs[t] = dz[:, H:]  # the x_t part: ∂L/∂x_t
        dc_next = f * dc  # dc_next = f_t ⊙ dc
    grads = {f"W_{g}": dW[g] for g in GATES} | {f"b_{g}": db[g] for g in GATES}
    grads |= {"h0": dh_next, "c0": dc_next, "xs": dxs}
    return grads, dh_total


def lstm_bptt(
    xs: npt.ArrayLike,
    targets: npt.ArrayLike,
    h0: npt.ArrayLike,
    c0: npt.ArrayLike,
    W_f: npt.ArrayLike,
    W_i: npt.ArrayLike,
    W_c: npt.ArrayLike,
    W_o: npt.ArrayLike,
    b_f: npt.ArrayLike,
    b_i: npt.ArrayLike,
    b_c: npt.ArrayLike,
    b_o: npt.ArrayLike,
    W_y: npt.ArrayLike,
    b_y: npt.ArrayLike,
    *,
    mask: npt.ArrayLike | None = None,
) -> BPTTResult:
    """Loss and exact gradients of an LSTM with a softmax output by closed-form BPTT.

    Spec §4 (seed 004), in the document's row-vector convention::

        z_t = [h_{t-1}, x_t]
        f_t = σ(z_t W_f + b_f)   i_t = σ(z_t W_i + b_i)   c̃_t = tanh(z_t W_c + b_c)
        o_t = σ(z_t W_o + b_o)   c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t   h_t = o_t ⊙ tanh(c_t)
        y_t = h_t W_y + b_y      L = Σ_t Σ_b mask[t, b] · (−log softmax(y_t)[target_t])

    Args:
        xs: ``(T, B, D)`` inputs, time first.
        targets: int ``(T, B)`` classes in ``[0, K)`` (validated at every step, masked or not).
        h0, c0: ``(B, H)`` initial hidden and cell states.
        W_f, W_i, W_c, W_o: ``(Z, H)`` gate weights, ``Z = H + D``; rows ``:H`` act on
            ``h_{t-1}``, rows ``H:`` on ``x_t``. ``W_c`` is the candidate ``c̃``'s weight.
        b_f, b_i, b_c, b_o: ``(H,)`` gate biases.
        W_y: ``(H, K)`` and b_y: ``(K,)`` output layer (the document has ``K = D``).
        mask: optional ``(T, B)`` weights of each step's loss (spec §3); default all ones.

    Returns:
        [`BPTTResult`][tinygrad_rnn.reference.BPTTResult]; ``grads`` has keys
        ``"W_f", "W_i", "W_c", "W_o", "b_f", "b_i", "b_c", "b_o", "W_y", "b_y", "h0", "c0", "xs"``,
        ``hidden`` is ``h_t`` and ``dhidden`` the total ``∂L/∂h_t``.

    Raises:
        ValueError: inconsistent shapes or targets out of range.
    """
    fn = "lstm_bptt"
    p, out = _validate_lstm(
        fn,
        xs,
        h0,
        c0,
        {"W_f": W_f, "W_i": W_i, "W_c": W_c, "W_o": W_o},
        {"b_f": b_f, "b_i": b_i, "b_c": b_c, "b_o": b_o},
        {"W_y": W_y, "b_y": b_y},
    )
    T, B, _ = p.xs.shape
    K = out["W_y"].shape[1]
    y_t = _class_targets(fn, targets, T, B, K)
    mask_ = _as_mask(fn, mask, T, B, p.xs.dtype)

    cache = _lstm_forward(p)
    logits = cache.h @ out["W_y"] + out["b_y"]  # y_t = h_t W_y + b_y
    loss, dy = _softmax_xent(logits, y_t, mask_)  # dy = p_t − onehot(target_t)
    grads, dh_total = _lstm_backward(p, cache, dy @ out["W_y"].T)  # the dy W_yᵀ term of dh
    grads["W_y"] = np.einsum("tbh,tbk->hk", cache.h, dy)  # dW_y += h_tᵀ dy
    grads["b_y"] = dy.sum(axis=(0, 1))  # db_y += dy
    return BPTTResult(loss, grads, cache.h, dh_total)


def lstm_hidden_mse_bptt(
    xs: npt.ArrayLike,
    targets: npt.ArrayLike,
    h0: npt.ArrayLike,
    c0: npt.ArrayLike,
    W_f: npt.ArrayLike,
    W_i: npt.ArrayLike,
    W_c: npt.ArrayLike,
    W_o: npt.ArrayLike,
    b_f: npt.ArrayLike,
    b_i: npt.ArrayLike,
    b_c: npt.ArrayLike,
    b_o: npt.ArrayLike,
    *,
    mask: npt.ArrayLike | None = None,
) -> BPTTResult:
    """Loss and exact gradients of an LSTM trained on its hidden state by closed-form BPTT.

    Spec §5 (seed 001): the forward pass of §4 without the output layer and the loss
    ``L = Σ_t Σ_b mask[t, b] · ‖h_t − y_t‖²`` (no ½, as in the document). The backward pass
    is §4's recursion with ``dh = 2(h_t − y_t) + dh_next``, i.e. seed 001's
    ``∂L(t)/∂h_t = ∂l(t)/∂h_t + ∂L(t+1)/∂h_t``.

    Args:
        xs: ``(T, B, D)`` inputs, time first.
        targets: float ``(T, B, H)`` targets ``y_t`` for the hidden states.
        h0, c0: ``(B, H)`` initial hidden and cell states.
        W_f, W_i, W_c, W_o: ``(Z, H)`` gate weights, ``Z = H + D``, hidden rows first.
        b_f, b_i, b_c, b_o: ``(H,)`` gate biases.
        mask: optional ``(T, B)`` weights of each step's loss (spec §3); default all ones.

    Returns:
        [`BPTTResult`][tinygrad_rnn.reference.BPTTResult]; ``grads`` has keys
        ``"W_f", "W_i", "W_c", "W_o", "b_f", "b_i", "b_c", "b_o", "h0", "c0", "xs"``, ``hidden`` is
        ``h_t`` and ``dhidden`` the total ``∂L/∂h_t``.

    Raises:
        ValueError: inconsistent shapes.
    """
    fn = "lstm_hidden_mse_bptt"
    p, _ = _validate_lstm(
        fn,
        xs,
        h0,
        c0,
        {"W_f": W_f, "W_i": W_i, "W_c": W_c, "W_o": W_o},
        {"b_f": b_f, "b_i": b_i, "b_c": b_c, "b_o": b_o},
        {},
    )
    T, B, _ = p.xs.shape
    H = p.h0.shape[1]
    y = np.asarray(targets)
    _check_shape(fn, "targets", y, "(T, B, H)", (T, B, H))
    mask_ = _as_mask(fn, mask, T, B, p.xs.dtype)

    cache = _lstm_forward(p)
    diff = cache.h - y.astype(p.xs.dtype, copy=False)
    loss = float((mask_ * (diff * diff).sum(axis=-1)).sum())  # Σ_t ‖h_t − y_t‖²
    grads, dh_total = _lstm_backward(p, cache, 2 * diff * mask_[..., None])  # ∂l(t)/∂h_t
    return BPTTResult(loss, grads, cache.h, dh_total)


def init_lstm_params(
    D: int,
    H: int,
    K: int,
    rng: np.random.Generator,
    dtype: npt.DTypeLike = np.float64,
    *,
    random_biases: bool = False,
) -> dict[str, FloatArray]:
    """Random parameters for [`lstm_bptt`][tinygrad_rnn.reference.lstm_bptt], initialised as seed
    004 does.

    Spec §4, seed 004: ``W_* ~ N(0, 1)/sqrt(Z/2)`` with ``Z = H + D``, ``W_y ~ N(0, 1)/sqrt(D/2)``
    (literally ``D``, the document's output size, even when ``K ≠ D``), biases 0.

    Args:
        D, H, K: input, hidden and output sizes.
        rng: the source of randomness.
        dtype: floating dtype of the arrays.
        random_biases: draw each bias from the distribution of the weights it is added to,
            instead of zeros, so that tests exercise the bias paths.

    Returns:
        ``{"W_f", "W_i", "W_c", "W_o": (Z, H), "b_f", "b_i", "b_c", "b_o": (H,),
        "W_y": (H, K), "b_y": (K,)}``, so that ``lstm_bptt(xs, targets, h0, c0, **params)``
        works; drop ``W_y`` and ``b_y`` for
        [`lstm_hidden_mse_bptt`][tinygrad_rnn.reference.lstm_hidden_mse_bptt].
    """
    Z = H + D
    gate_std = 1 / np.sqrt(Z / 2.0)
    out_std = 1 / np.sqrt(D / 2.0)

    def draw(std: float, *shape: int) -> FloatArray:
        return (rng.standard_normal(shape) * std).astype(dtype)

    def bias(std: float, n: int) -> FloatArray:
        return draw(std, n) if random_biases else np.zeros(n, dtype=dtype)

    params: dict[str, FloatArray] = {f"W_{g}": draw(gate_std, Z, H) for g in GATES}
    params |= {f"b_{g}": bias(gate_std, H) for g in GATES}
    params |= {"W_y": draw(out_std, H, K), "b_y": bias(out_std, K)}
    return params
