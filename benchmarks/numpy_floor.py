"""Hand-written numpy BPTT for the benchmark's character model: the floor to compare with.

The model: inputs ``xs (T, B, V)``, a tanh RNN or an LSTM (PyTorch's gate order i, f, g, o)
of hidden size H starting from zero state, a ``Linear(H, V)`` head on every step and
softmax cross-entropy summed over time and batch. Parameters use PyTorch's layout (as
``tinygrad_rnn.nn``), so the same arrays drive both implementations and their gradients can
be compared.

What makes it a floor:

* Everything that does not depend on the recurrence is batched over all T·B rows: the input
  projection, the head, the softmax/cross-entropy, ``∂L/∂h_t`` from the head, the LSTM's
  derivative factors, every weight gradient (``h_{t-1}`` and the pre-activation gradients of
  all steps are stacked, one matmul each) and every bias gradient (one ``ones @ dZ``).
* Only the recurrence runs per step, as a few ufunc calls with ``out=`` on preallocated
  buffers and precomputed per-step views: no array is allocated inside the time loops.
* The buffers are allocated once per problem (shapes, dtype) and reused by later calls
  (``clear_cache()`` drops them). Only the returned gradients are fresh arrays, so a result
  stays valid after the next call.
* The forward matmuls use contiguous copies of the transposed weights: here OpenBLAS's NN
  gemm is faster than its NT gemm, up to 2× for the per-step ``(32, 128) @ (128, 128)`` of
  size M (1.1-1.3× at L); the copies cost less than that.
* σ(x) = ½·tanh(x/2) + ½: never overflows, for any x, and costs one tanh. For the LSTM the
  x/2 is folded into a copy of the weights (exact: a power of two) and the gates are
  reordered (i, o, f, g), so one tanh call covers all four gates of a step and ½·u + ½ is
  two calls on the three sigmoid gates. Step-independent factors of the backward
  (σ', 1 − tanh², their products) are computed for all steps at once after the forward.

Not thread-safe: two concurrent calls on the same problem would share buffers.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

# Problems whose buffers are kept (least recently used dropped first). bptt_step.py runs the
# problems one after the other (one shape at a time); two entries also serve a caller that
# alternates between two problems without keeping every size it ever saw.
_CACHE_SIZE = 2
_cache: OrderedDict[tuple, Any] = OrderedDict()


def clear_cache() -> None:
    """Drop every cached buffer (the next call of each problem allocates them again)."""
    _cache.clear()


def _workspace(cls: type, T: int, B: int, V: int, H: int, dtype: np.dtype) -> Any:
    """The cached buffers of ``cls`` for these sizes and dtype, allocated on first use."""
    key = (cls.__name__, T, B, V, H, dtype.str)
    ws = _cache.get(key)
    if ws is None:
        ws = _cache[key] = cls(T, B, V, H, dtype)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    return ws


class _Head:
    """Buffers of the head and the softmax cross-entropy over all ``N = T·B`` rows."""

    def __init__(self, T: int, B: int, V: int, H: int, dtype: np.dtype) -> None:
        N = T * B
        self.WyT = np.empty((H, V), dtype)  # contiguous W_yᵀ (NN gemm)
        self.logits = np.empty((N, V), dtype)  # logits, then softmax − onehot in place
        self.rowmax = np.empty((N, 1), dtype)
        self.rowsum = np.empty((N, 1), dtype)
        self.logsum = np.empty((N, 1), dtype)
        self.picked = np.empty(N, dtype)  # the target's shifted logit
        self.idx = np.empty(N, np.intp)  # flat index of each row's target in logits
        self.row_base = np.arange(N, dtype=np.intp) * V
        self.ones_N = np.ones(N, dtype)  # row sums as one gemv (much faster than sum(0))
        self.ones_V = np.ones((V, 1), dtype)
        self.dH = np.empty((T, B, H), dtype)  # ∂L/∂h_t through the head
        self.half = np.array(0.5, dtype)  # 0-d: a Python float costs a conversion per call
        self.one = np.array(1, dtype)

    def forward_backward(
        self, Hs: np.ndarray, W_y: np.ndarray, b_y: np.ndarray, targets: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """Loss and ``dlogits (N, V)`` (a cached buffer) for the outputs ``Hs (N, H)``.

        Also leaves ``∂L/∂h_t = dlogits @ W_y`` in ``self.dH (T, B, H)``.
        """
        L, flat = self.logits, self.logits.reshape(-1)
        np.copyto(self.WyT, W_y.T)
        np.matmul(Hs, self.WyT, out=L)
        L += b_y
        np.maximum.reduce(L, axis=1, out=self.rowmax[:, 0])  # less overhead than np.max
        L -= self.rowmax  # shifted: exp cannot overflow
        np.add(self.row_base, targets.reshape(-1), out=self.idx)
        np.take(flat, self.idx, out=self.picked)
        np.exp(L, out=L)
        np.matmul(L, self.ones_V, out=self.rowsum)
        np.log(self.rowsum, out=self.logsum)
        loss = float(self.logsum.sum() - self.picked.sum())  # Σ log Σ exp − Σ shifted target
        np.reciprocal(self.rowsum, out=self.rowsum)
        L *= self.rowsum  # softmax (one reciprocal per row, then multiplies)
        np.subtract.at(flat, self.idx, self.one)  # softmax − onehot(target)
        np.matmul(L, W_y, out=self.dH.reshape(-1, W_y.shape[1]))
        return loss, L


def _param_grads(
    dZ: np.ndarray,
    Hprev: np.ndarray,
    X: np.ndarray,
    dlogits: np.ndarray,
    Hs: np.ndarray,
    ones_N: np.ndarray,
    loss: float,
) -> dict:
    """The result dict: every weight gradient one matmul over all rows, each a fresh array."""
    return {
        "loss": loss,
        "W_y": dlogits.T @ Hs,
        "b_y": ones_N @ dlogits,
        "W_hh": dZ.T @ Hprev,
        "W_ih": dZ.T @ X,
        "b": ones_N @ dZ,
    }


class _RNNWork(_Head):
    """Buffers of one RNN problem, and per-step views of them."""

    def __init__(self, T: int, B: int, V: int, H: int, dtype: np.dtype) -> None:
        super().__init__(T, B, V, H, dtype)
        N = T * B
        self.WihT = np.empty((V, H), dtype)
        self.WhhT = np.empty((H, H), dtype)
        self.b = np.empty(H, dtype)
        self.hs = np.zeros((T + 1, B, H), dtype)  # hs[0] = h_0 = 0 is never written
        self.Hs = self.hs[1:].reshape(N, H)  # views, no copies (hs is contiguous)
        self.Hprev = self.hs[:-1].reshape(N, H)
        self.D = np.empty((T, B, H), dtype)  # 1 − h_t², tanh's derivative
        self.tmp = np.empty((B, H), dtype)
        hs, dH, D = self.hs, self.dH, self.D
        # Step t = 0 needs no matmul (h_0 = 0); the backward's t = 0 sends nothing further.
        self.fwd_steps = [(hs[t], hs[t + 1]) for t in range(1, T)]
        self.bwd_steps = [(dH[t + 1], dH[t], D[t]) for t in reversed(range(T - 1))]


def rnn_step(p: dict[str, np.ndarray], xs: np.ndarray, targets: np.ndarray) -> dict:
    """Loss and gradients of a tanh RNN + linear head, CE summed over time and batch.

    ``p``: ``W_ih (H, V)``, ``W_hh (H, H)``, ``b_ih (H,)``, ``b_hh (H,)``, ``W_y (V, H)``,
    ``b_y (V,)``; ``xs (T, B, V)``; ``targets (T, B)`` ints in ``[0, V)``. Returns ``loss``
    (float) and fresh arrays ``W_ih``, ``W_hh``, ``b`` (the gradient of either bias), ``W_y``,
    ``b_y`` of the parameters' shapes.
    """
    T, B, V = xs.shape
    W_ih, W_hh, W_y, b_y = p["W_ih"], p["W_hh"], p["W_y"], p["b_y"]
    H = W_hh.shape[0]
    ws = _workspace(_RNNWork, T, B, V, H, np.result_type(xs, W_ih, W_hh, W_y))
    X = xs.reshape(T * B, V)
    np.copyto(ws.WihT, W_ih.T)
    np.copyto(ws.WhhT, W_hh.T)
    np.add(p["b_ih"], p["b_hh"], out=ws.b)
    hs, WhhT, tmp = ws.hs, ws.WhhT, ws.tmp

    # Forward: the input projection of all steps goes where h_t will be, then in place
    # h_t = tanh(x_t W_ihᵀ + b + h_{t-1} W_hhᵀ).
    np.matmul(X, ws.WihT, out=ws.Hs)
    ws.Hs += ws.b
    np.tanh(hs[1], out=hs[1])
    for h_prev, h in ws.fwd_steps:
        np.dot(h_prev, WhhT, out=tmp)  # np.dot: less overhead than matmul at B = 1
        h += tmp
        np.tanh(h, out=h)

    loss, dlogits = ws.forward_backward(ws.Hs, W_y, b_y, targets)
    np.multiply(ws.Hs, ws.Hs, out=ws.D.reshape(T * B, H))
    np.subtract(ws.one, ws.D, out=ws.D)

    # Backward, in place in dH: δ_t = (∂L/∂h_t + δ_{t+1} W_hh) ⊙ (1 − h_t²).
    dH = ws.dH
    dH[T - 1] *= ws.D[T - 1]
    for d_next, d, Dt in ws.bwd_steps:
        np.dot(d_next, W_hh, out=tmp)
        d += tmp
        d *= Dt
    return _param_grads(dH.reshape(T * B, H), ws.Hprev, X, dlogits, ws.Hs, ws.ones_N, loss)


class _LSTMWork(_Head):
    """Buffers of one LSTM problem, and per-step views of them.

    ``A (T, 8, B, H)`` holds, per step, eight ``(B, H)`` planes. The forward writes
    ``0: σ(i), 1: σ(o), 2: σ(f), 3: tanh(g), 4: tanh(c_t)``: one step's four gates are one
    contiguous block (one tanh call), the three sigmoids another. Once the forward is done,
    the backward's factors replace them, for all steps at once::

        3: i ⊙ (1 − g²)   4: o ⊙ (1 − tanh²(c))   5: c_{t-1} ⊙ σ'(f)   6: tanh(c) ⊙ σ'(o)
        7: g ⊙ σ'(i)      (planes 0-2 stay: σ(f) is still needed)

    so that the i, f, g factors are the evenly spaced planes 7, 5, 3 (one broadcast multiply
    per step in the backward). ``gz (T, B, 4H)`` holds the input projection in the forward
    and the pre-activation gradients dz (PyTorch's order i, f, g, o) in the backward.
    """

    def __init__(self, T: int, B: int, V: int, H: int, dtype: np.dtype) -> None:
        super().__init__(T, B, V, H, dtype)
        N = T * B
        self.Wih_r = np.empty((4 * H, V), dtype)  # gate blocks in our order, see _gates
        self.Whh_r = np.empty((4 * H, H), dtype)
        self.WihT = np.empty((V, 4 * H), dtype)
        self.WhhT = np.empty((4, H, H), dtype)  # per gate block, transposed (NN gemms)
        self.tmp = np.empty((4, B, H), dtype)
        self.b_sum = np.empty(4 * H, dtype)
        self.b = np.empty(4 * H, dtype)
        self.hs = np.zeros((T + 1, B, H), dtype)  # hs[0] = h_0 = 0, never written
        self.cs = np.zeros((T + 1, B, H), dtype)  # cs[0] = c_0 = 0, never written
        self.Hs = self.hs[1:].reshape(N, H)
        self.Hprev = self.hs[:-1].reshape(N, H)
        self.A = np.empty((T, 8, B, H), dtype)
        self.gz = np.empty((T, B, 4 * H), dtype)
        self.ig = np.empty((B, H), dtype)
        self.dh = np.empty((B, H), dtype)
        self.dc = np.empty((B, H), dtype)
        self.dc_next = np.empty((B, H), dtype)
        A, hs, cs, gz, dH = self.A, self.hs, self.cs, self.gz, self.dH
        gi = gz.reshape(T, B, 4, H).transpose(0, 2, 1, 3)  # (T, 4, B, H) views
        self.fwd_steps = [
            (gi[t], A[t, :4], A[t, :3], *A[t, :5], cs[t], cs[t + 1], hs[t], hs[t + 1])
            for t in range(T)
        ]
        dz4 = gz.reshape(T, B, 4, H)
        self.bwd_steps = [
            (
                gz[t + 1] if t + 1 < T else None,
                dH[t],
                A[t, 4],  # P
                A[t, 6],  # Qo
                A[t, 2] if t > 0 else None,  # σ(f), for dc_{t-1}
                A[t, 7:2:-2].transpose(1, 0, 2),  # (B, 3, H): the i, f, g factors
                dz4[t, :, 3],  # dz_o
                dz4[t, :, :3],  # (B, 3, H): dz_i, dz_f, dz_g
            )
            for t in reversed(range(T))
        ]


def _lstm_factors(A: np.ndarray, c_prev: np.ndarray, one: np.ndarray) -> None:
    """The backward's factors of all steps, in place in ``A (T, 8, B, H)`` (see _LSTMWork).

    ``c_prev (T, B, H)``: every step's c_{t-1}. Seven ufunc calls over all steps.
    """
    sig, dsig = A[:, 0:3], A[:, 7:4:-1]  # σ(i), σ(o), σ(f) -> σ'(i), σ'(o), σ'(f)
    np.subtract(one, sig, out=dsig)
    dsig *= sig
    A[:, 7:5:-1] *= A[:, 3:5]  # 7: g ⊙ σ'(i), 6: tanh(c) ⊙ σ'(o)
    A[:, 5] *= c_prev  # 5: c_{t-1} ⊙ σ'(f)
    gt = A[:, 3:5]  # g, tanh(c) -> i ⊙ (1 − g²), o ⊙ (1 − tanh²(c))
    np.multiply(gt, gt, out=gt)
    np.subtract(one, gt, out=gt)
    gt *= A[:, 0:2]


def _gates(src: np.ndarray, dst: np.ndarray, H: int, half: np.ndarray) -> None:
    """``dst`` = the gate blocks (rows) of ``src`` from PyTorch's i, f, g, o to our i, o, f, g,
    the sigmoid gates' halved (so that tanh gives tanh(x/2) there)."""
    for k, j in enumerate((0, 3, 1, 2)):
        if k < 3:
            np.multiply(src[j * H : (j + 1) * H], half, out=dst[k * H : (k + 1) * H])
        else:
            np.copyto(dst[k * H : (k + 1) * H], src[j * H : (j + 1) * H])


def lstm_step(p: dict[str, np.ndarray], xs: np.ndarray, targets: np.ndarray) -> dict:
    """Loss and gradients of an LSTM (gates i, f, g, o fused) + linear head, CE summed.

    ``p``: ``W_ih (4H, V)``, ``W_hh (4H, H)``, ``b_ih (4H,)``, ``b_hh (4H,)``, ``W_y (V, H)``,
    ``b_y (V,)`` (PyTorch's layout); ``xs (T, B, V)``; ``targets (T, B)`` ints in ``[0, V)``.
    Returns ``loss`` (float) and fresh arrays ``W_ih``, ``W_hh``, ``b`` (the gradient of
    either bias), ``W_y``, ``b_y`` of the parameters' shapes.
    """
    T, B, V = xs.shape
    W_ih, W_hh, W_y, b_y = p["W_ih"], p["W_hh"], p["W_y"], p["b_y"]
    H = W_hh.shape[1]
    ws = _workspace(_LSTMWork, T, B, V, H, np.result_type(xs, W_ih, W_hh, W_y))
    X = xs.reshape(T * B, V)
    A, WhhT, tmp, ig, half = ws.A, ws.WhhT, ws.tmp, ws.ig, ws.half
    _gates(W_ih, ws.Wih_r, H, half)
    np.copyto(ws.WihT, ws.Wih_r.T)
    _gates(W_hh, ws.Whh_r, H, half)
    np.copyto(WhhT, ws.Whh_r.reshape(4, H, H).transpose(0, 2, 1))
    np.add(p["b_ih"], p["b_hh"], out=ws.b_sum)
    _gates(ws.b_sum, ws.b, H, half)

    # Forward. z_t = x_t W_ihᵀ + b + h_{t-1} W_hhᵀ (sigmoid gates halved), then in place
    # tanh(z_t) for all four gates and ½·tanh(x/2) + ½ = σ(x) for the sigmoid ones.
    gz2 = ws.gz.reshape(T * B, 4 * H)
    np.matmul(X, ws.WihT, out=gz2)
    gz2 += ws.b
    for t, (gi, z, s, i, o, f, g, tc, c_prev, c, h_prev, h) in enumerate(ws.fwd_steps):
        if t:
            np.matmul(h_prev, WhhT, out=tmp)  # four (B, H) @ (H, H), one per gate
            np.add(gi, tmp, out=z)
            np.tanh(z, out=z)
        else:  # h_0 = c_0 = 0
            np.tanh(gi, out=z)
        np.multiply(s, half, out=s)
        np.add(s, half, out=s)
        if t:
            np.multiply(f, c_prev, out=c)
            np.multiply(i, g, out=ig)
            c += ig  # c_t = f ⊙ c_{t-1} + i ⊙ g
        else:
            np.multiply(i, g, out=c)
        np.tanh(c, out=tc)
        np.multiply(o, tc, out=h)

    loss, dlogits = ws.forward_backward(ws.Hs, W_y, b_y, targets)
    _lstm_factors(A, ws.cs[:-1], ws.one)  # all steps at once: they need only the forward

    # Backward: dh = ∂L/∂h_t + dz_{t+1} W_hh, dc = dh ⊙ P + dc_{t+1} ⊙ f_{t+1},
    # dz_t = [dc ⊙ Qi, dc ⊙ Qf, dc ⊙ Qg, dh ⊙ Qo] (PyTorch's order), written over gz.
    dc, dc_next = ws.dc, ws.dc_next
    dc3 = dc[:, None, :]
    for dz_next, dh_out, P, Qo, f, Qifg, dz_o, dz_ifg in ws.bwd_steps:
        if dz_next is None:  # t = T - 1: nothing comes back from after the end
            dh = dh_out
        else:
            dh = ws.dh
            np.dot(dz_next, W_hh, out=dh)
            dh += dh_out
        np.multiply(dh, P, out=dc)
        if dz_next is not None:
            dc += dc_next
        np.multiply(dh, Qo, out=dz_o)
        np.multiply(dc3, Qifg, out=dz_ifg)
        if f is not None:
            np.multiply(dc, f, out=dc_next)
    return _param_grads(gz2, ws.Hprev, X, dlogits, ws.Hs, ws.ones_N, loss)
