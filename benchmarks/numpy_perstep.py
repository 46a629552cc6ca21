"""Per-step numpy BPTT (Karpathy's min-char-rnn style): a second, naive numpy reference.

Unlike the floor (``numpy_floor.py``), nothing is hoisted out of the time loops: every step
does its own input projection, its own output head and softmax, and every weight gradient is
accumulated step by step (``dW += dz.T @ x``). This is how BPTT is usually first written by
hand, so it shows what the floor's batching across time is worth. Same inputs, parameters
(PyTorch layout) and returned gradients as ``numpy_floor.rnn_step`` / ``lstm_step``.
"""

from __future__ import annotations

import numpy as np


def _step_xent(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed cross-entropy of one step's ``logits (B, V)`` and its gradient."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(len(targets))
    loss = float(np.log(s[:, 0]).sum() - shifted[rows, targets].sum())
    dlogits = e / s
    dlogits[rows, targets] -= 1
    return loss, dlogits


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


def rnn_step(p: dict[str, np.ndarray], xs: np.ndarray, targets: np.ndarray) -> dict:
    """Loss and gradients of a tanh RNN + linear head, CE summed, one step at a time."""
    T, B, _ = xs.shape
    W_ih, W_hh, W_y, b_y = p["W_ih"], p["W_hh"], p["W_y"], p["b_y"]
    b = p["b_ih"] + p["b_hh"]
    H = W_hh.shape[0]
    hs = [np.zeros((B, H), dtype=xs.dtype)]
    dys = []
    loss = 0.0
    for t in range(T):
        h = np.tanh(xs[t] @ W_ih.T + hs[-1] @ W_hh.T + b)
        hs.append(h)
        step_loss, dy = _step_xent(h @ W_y.T + b_y, targets[t])
        loss += step_loss
        dys.append(dy)
    g = {k: np.zeros_like(v) for k, v in (("W_ih", W_ih), ("W_hh", W_hh), ("W_y", W_y))}
    g["b"], g["b_y"] = np.zeros_like(b), np.zeros_like(b_y)
    dh_next = np.zeros((B, H), dtype=xs.dtype)
    for t in reversed(range(T)):
        dy, h = dys[t], hs[t + 1]
        g["W_y"] += dy.T @ h
        g["b_y"] += dy.sum(0)
        da = (dy @ W_y + dh_next) * (1 - h * h)
        g["b"] += da.sum(0)
        g["W_ih"] += da.T @ xs[t]
        g["W_hh"] += da.T @ hs[t]
        dh_next = da @ W_hh
    g["loss"] = loss
    return g


def lstm_step(p: dict[str, np.ndarray], xs: np.ndarray, targets: np.ndarray) -> dict:
    """Loss and gradients of an LSTM (gates i, f, g, o) + linear head, one step at a time."""
    T, B, _ = xs.shape
    W_ih, W_hh, W_y, b_y = p["W_ih"], p["W_hh"], p["W_y"], p["b_y"]
    b = p["b_ih"] + p["b_hh"]
    H = W_hh.shape[1]
    hs = [np.zeros((B, H), dtype=xs.dtype)]
    cs = [np.zeros((B, H), dtype=xs.dtype)]
    cache = []
    loss = 0.0
    for t in range(T):
        z = xs[t] @ W_ih.T + hs[-1] @ W_hh.T + b
        i, f = _sigmoid(z[:, :H]), _sigmoid(z[:, H : 2 * H])
        g, o = np.tanh(z[:, 2 * H : 3 * H]), _sigmoid(z[:, 3 * H :])
        c = f * cs[-1] + i * g
        tc = np.tanh(c)
        h = o * tc
        cs.append(c)
        hs.append(h)
        step_loss, dy = _step_xent(h @ W_y.T + b_y, targets[t])
        loss += step_loss
        cache.append((i, f, g, o, tc, dy))
    grads = {k: np.zeros_like(v) for k, v in (("W_ih", W_ih), ("W_hh", W_hh), ("W_y", W_y))}
    grads["b"], grads["b_y"] = np.zeros_like(b), np.zeros_like(b_y)
    dh_next = np.zeros((B, H), dtype=xs.dtype)
    dc_next = np.zeros((B, H), dtype=xs.dtype)
    for t in reversed(range(T)):
        i, f, g, o, tc, dy = cache[t]
        grads["W_y"] += dy.T @ hs[t + 1]
        grads["b_y"] += dy.sum(0)
        dh = dy @ W_y + dh_next
        dc = dh * o * (1 - tc * tc) + dc_next
        dz = np.concatenate(
            [
                dc * g * i * (1 - i),
                dc * cs[t] * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tc * o * (1 - o),
            ],
            axis=1,
        )
        grads["b"] += dz.sum(0)
        grads["W_ih"] += dz.T @ xs[t]
        grads["W_hh"] += dz.T @ hs[t]
        dh_next = dz @ W_hh
        dc_next = dc * f
    grads["loss"] = loss
    return grads
