"""Hand-written numpy BPTT for the benchmark's character model: the floor to compare with.

Input and output projections and the weight gradients are done once over all T·B rows; only
the recurrence runs per step. Parameters use PyTorch's layout (as ``tinygrad_rnn.nn``), so the
same arrays drive both implementations and their gradients can be compared.
"""

from __future__ import annotations

import numpy as np


def _softmax_xent(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed cross-entropy and its gradient for ``logits (N, V)``, ``targets (N,)``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(targets))
    loss = float(np.log(s[:, 0]).sum() - shifted[rows, targets].sum())
    dlogits = e / s
    dlogits[rows, targets] -= 1
    return loss, dlogits


def rnn_step(p: dict[str, np.ndarray], xs: np.ndarray, targets: np.ndarray) -> dict:
    """Loss and gradients of a tanh RNN + linear head, CE summed. ``xs (T, B, V)``."""
    T, B, V = xs.shape
    W_ih, W_hh, b, W_y, b_y = p["W_ih"], p["W_hh"], p["b_ih"] + p["b_hh"], p["W_y"], p["b_y"]
    H = W_hh.shape[0]
    X = xs.reshape(T * B, V)
    gi = (X @ W_ih.T + b).reshape(T, B, H)
    hs = np.empty((T + 1, B, H), dtype=xs.dtype)
    hs[0] = 0
    for t in range(T):
        hs[t + 1] = np.tanh(gi[t] + hs[t] @ W_hh.T)
    Hs = hs[1:].reshape(T * B, H)
    loss, dlogits = _softmax_xent(Hs @ W_y.T + b_y, targets.reshape(-1))
    dHs = (dlogits @ W_y).reshape(T, B, H)
    da = np.empty_like(dHs)
    dh_next = np.zeros((B, H), dtype=xs.dtype)
    for t in reversed(range(T)):
        h = hs[t + 1]
        da[t] = (dHs[t] + dh_next) * (1 - h * h)
        dh_next = da[t] @ W_hh
    dA = da.reshape(T * B, H)
    return {
        "loss": loss,
        "W_y": dlogits.T @ Hs,
        "b_y": dlogits.sum(0),
        "W_hh": dA.T @ hs[:-1].reshape(T * B, H),
        "W_ih": dA.T @ X,
        "b": dA.sum(0),
    }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def lstm_step(p: dict[str, np.ndarray], xs: np.ndarray, targets: np.ndarray) -> dict:
    """Loss and gradients of an LSTM (gates i, f, g, o fused) + linear head, CE summed."""
    T, B, V = xs.shape
    W_ih, W_hh, b, W_y, b_y = p["W_ih"], p["W_hh"], p["b_ih"] + p["b_hh"], p["W_y"], p["b_y"]
    H = W_hh.shape[1]
    X = xs.reshape(T * B, V)
    gi = (X @ W_ih.T + b).reshape(T, B, 4 * H)
    hs = np.zeros((T + 1, B, H), dtype=xs.dtype)
    cs = np.zeros((T + 1, B, H), dtype=xs.dtype)
    acts = np.empty((T, B, 4 * H), dtype=xs.dtype)  # σ(i), σ(f), tanh(g), σ(o)
    tcs = np.empty((T, B, H), dtype=xs.dtype)
    for t in range(T):
        z = gi[t] + hs[t] @ W_hh.T
        a = acts[t]
        a[:, : 2 * H] = _sigmoid(z[:, : 2 * H])
        a[:, 2 * H : 3 * H] = np.tanh(z[:, 2 * H : 3 * H])
        a[:, 3 * H :] = _sigmoid(z[:, 3 * H :])
        cs[t + 1] = a[:, H : 2 * H] * cs[t] + a[:, :H] * a[:, 2 * H : 3 * H]
        tcs[t] = np.tanh(cs[t + 1])
        hs[t + 1] = a[:, 3 * H :] * tcs[t]
    Hs = hs[1:].reshape(T * B, H)
    loss, dlogits = _softmax_xent(Hs @ W_y.T + b_y, targets.reshape(-1))
    dHs = (dlogits @ W_y).reshape(T, B, H)
    dz = np.empty((T, B, 4 * H), dtype=xs.dtype)
    dh_next = np.zeros((B, H), dtype=xs.dtype)
    dc_next = np.zeros((B, H), dtype=xs.dtype)
    for t in reversed(range(T)):
        a = acts[t]
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        dh = dHs[t] + dh_next
        dc = dh * o * (1 - tcs[t] ** 2) + dc_next
        d = dz[t]
        d[:, :H] = dc * g * i * (1 - i)
        d[:, H : 2 * H] = dc * cs[t] * f * (1 - f)
        d[:, 2 * H : 3 * H] = dc * i * (1 - g * g)
        d[:, 3 * H :] = dh * tcs[t] * o * (1 - o)
        dh_next = d @ W_hh
        dc_next = dc * f
    dZ = dz.reshape(T * B, 4 * H)
    return {
        "loss": loss,
        "W_y": dlogits.T @ Hs,
        "b_y": dlogits.sum(0),
        "W_hh": dZ.T @ hs[:-1].reshape(T * B, H),
        "W_ih": dZ.T @ X,
        "b": dZ.sum(0),
    }
