"""Closed-form BPTT of the vanilla RNN, hand-written in plain numpy (spec §1–3).

The formulas are those of seeds 000 and 002 (softmax + cross-entropy) and seed 003 (linear and
sigmoid output layers), derived in ``docs/bptt.md``. The documents use column
vectors (``a_t = b + W s_{t-1} + U x_t``); here a batch of column vectors is stored as the rows
of a ``(B, ·)`` array, so every product ``M v`` is written ``v @ M.T`` and every outer product
summed over time, ``Σ_t δ_t s_{t-1}ᵀ``, becomes a sum over time *and* batch.

Nothing here uses autograd: this module is the oracle the engine is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["BPTTResult", "init_rnn_params", "rnn_bptt"]

FloatArray = npt.NDArray[np.floating[Any]]

OUTPUTS = ("softmax", "linear", "sigmoid")


class BPTTResult(NamedTuple):
    """What every closed-form BPTT function of [`tinygrad_rnn.reference`][tinygrad_rnn.reference]
    returns.

    Attributes:
        loss: total loss ``L = Σ_t Σ_b mask[t, b] · L_{t,b}``, summed (not averaged) over time
            steps and batch.
        grads: ``∂L/∂p`` for every parameter and initial state ``p``, keyed by the keyword name
            of ``p`` and with ``p``'s shape; also ``"xs"``, the gradient w.r.t. the inputs.
        hidden: ``(T, B, H)`` hidden states of the forward pass (``s_t`` for the RNN, ``h_t`` for
            the LSTM).
        dhidden: ``(T, B, H)`` total ``∂L/∂s_t`` (``∂L/∂h_t``): the output path of step ``t``
            plus the path through all later steps. Its per-step norm shows vanishing or
            exploding gradients (spec §6).
    """

    loss: float
    grads: dict[str, FloatArray]
    hidden: FloatArray
    dhidden: FloatArray


# --------------------------------------------------------------------------------------------
# Helpers shared with lstm.py and errata.py (private to the reference package).
# --------------------------------------------------------------------------------------------


def _as_float_arrays(*arrays: npt.ArrayLike) -> list[FloatArray]:
    """``arrays`` as numpy arrays of their common floating dtype (integers, e.g. a one-hot
    ``xs``, count as float64). Inputs already of that dtype are not copied, and never written."""
    arrs = [np.asarray(a) for a in arrays]
    dtype = np.result_type(*arrs)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float64)
    return [a.astype(dtype, copy=False) for a in arrs]


def _check_shape(
    fn: str, name: str, arr: np.ndarray, symbols: str, expected: Sequence[int | None]
) -> None:
    """Raise ``ValueError`` unless ``arr.shape`` matches ``expected`` (``None`` = any size).

    ``symbols`` spells the expected shape in the spec's letters, e.g. ``"(H, H)"``, so that the
    message reads ``rnn_bptt: W must have shape (H, H) = (4, 4), got (4, 5)``.
    """
    ok = arr.ndim == len(expected) and all(
        want is None or have == want for have, want in zip(arr.shape, expected, strict=False)
    )
    if not ok:
        letters = symbols.strip("()").split(", ")
        sizes = ", ".join(
            letter if want is None else str(want)
            for letter, want in zip(letters, expected, strict=True)
        )
        if len(expected) == 1:
            sizes += ","
        raise ValueError(f"{fn}: {name} must have shape {symbols} = ({sizes}), got {arr.shape}")


def _check_ndim(fn: str, name: str, arr: np.ndarray, symbols: str) -> None:
    """Raise ``ValueError`` unless ``arr`` has as many axes as ``symbols`` names."""
    ndim = len(symbols.strip("()").split(", "))
    if arr.ndim != ndim:
        raise ValueError(f"{fn}: {name} must have shape {symbols} ({ndim}-D), got {arr.shape}")


def _as_mask(fn: str, mask: npt.ArrayLike | None, T: int, B: int, dtype: Any) -> FloatArray:
    """The per-step loss weights; ``None`` means every step carries a loss (spec §3)."""
    if mask is None:
        return np.ones((T, B), dtype=dtype)
    m = np.asarray(mask)
    _check_shape(fn, "mask", m, "(T, B)", (T, B))
    return m.astype(dtype, copy=False)


def _class_targets(fn: str, targets: npt.ArrayLike, T: int, B: int, K: int) -> npt.NDArray[Any]:
    """Validate integer class targets ``(T, B)`` in ``[0, K)``."""
    y = np.asarray(targets)
    _check_shape(fn, "targets", y, "(T, B)", (T, B))
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{fn}: targets must be integer class indices, got dtype {y.dtype}")
    # Checked here so that a bad class index is a ValueError, never a silent negative-index read
    # or an IndexError from deep inside the loss.
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(
            f"{fn}: targets must lie in the range [0, K) = [0, {K}), "
            f"got values in [{y.min()}, {y.max()}]"
        )
    return y


def _softmax_xent(
    logits: FloatArray, y: npt.NDArray[Any], mask: FloatArray
) -> tuple[float, FloatArray]:
    """Masked cross-entropy ``Σ mask·(−log softmax(o)[y])`` and its gradient w.r.t. ``o``.

    ``logits``: ``(T, B, K)``; ``y``: int ``(T, B)``; ``mask``: ``(T, B)``.
    Returns ``(L, ∂L/∂o)`` with ``∂L/∂o_t = mask_t (ŷ_t − onehot(y_t))`` (spec §1, §4).
    """
    # logsumexp with the max subtracted: exp never sees a positive argument, so logits of any
    # size cannot overflow, and −log ŷ[y] = lse − o[y] needs no log of an underflowed 0.
    shift = logits - logits.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(shift).sum(axis=-1, keepdims=True))
    log_probs = shift - lse
    picked = np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]
    loss = float(-(mask * picked).sum())
    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[y]
    return loss, (np.exp(log_probs) - onehot) * mask[..., None]  # ŷ_t − onehot(y_t)


# --------------------------------------------------------------------------------------------
# Output layers of spec §1–2.
# --------------------------------------------------------------------------------------------


def _rnn_targets(
    fn: str, output: str, targets: npt.ArrayLike, T: int, B: int, K: int
) -> npt.NDArray[Any]:
    """Validate the targets of ``output``'s loss (spec §2's table) before any computing."""
    if output == "softmax":
        return _class_targets(fn, targets, T, B, K)
    y = np.asarray(targets)
    _check_shape(fn, "targets", y, "(T, B, K)", (T, B, K))
    if output == "sigmoid" and y.size and (y.min() < 0 or y.max() > 1):
        raise ValueError(
            f"{fn}: sigmoid targets must lie in the range [0, 1], "
            f"got values in [{y.min()}, {y.max()}]"
        )
    return y


def _output_loss(
    output: str, o: FloatArray, y: npt.NDArray[Any], mask: FloatArray
) -> tuple[float, FloatArray]:
    """``(L, ∂L/∂o)`` of spec §2's output layers; in each case ``∂L_t/∂o_t = ŷ_t − y_t``."""
    if output == "softmax":
        return _softmax_xent(o, y, mask)
    y = y.astype(o.dtype, copy=False)
    if output == "linear":
        # ŷ = o, L_t = ½‖y − ŷ‖²
        diff = o - y
        return float(0.5 * (mask * (diff * diff).sum(axis=-1)).sum()), diff * mask[..., None]
    # output == "sigmoid": ŷ = σ(o), L_t = −Σ[y log ŷ + (1−y) log(1−ŷ)].
    # log σ(o) = −log(1 + e^{−o}) and log(1 − σ(o)) = −log(1 + e^{o}) via logaddexp, which never
    # overflows; σ(o) itself is then exp(log σ(o)), which can at most underflow to 0.
    log_p = -np.logaddexp(0.0, -o)
    log_1mp = -np.logaddexp(0.0, o)
    loss = float(-(mask * (y * log_p + (1 - y) * log_1mp).sum(axis=-1)).sum())
    return loss, (np.exp(log_p) - y) * mask[..., None]


# --------------------------------------------------------------------------------------------
# Forward and backward.
# --------------------------------------------------------------------------------------------


class _RNNInputs(NamedTuple):
    xs: FloatArray
    s0: FloatArray
    U: FloatArray
    W: FloatArray
    V: FloatArray
    b: FloatArray
    c: FloatArray


def _validate_rnn(
    fn: str,
    xs: npt.ArrayLike,
    s0: npt.ArrayLike,
    U: npt.ArrayLike,
    W: npt.ArrayLike,
    V: npt.ArrayLike,
    b: npt.ArrayLike,
    c: npt.ArrayLike,
) -> _RNNInputs:
    """Check the shapes of spec §1 and convert everything to one floating dtype."""
    xs_, s0_, U_, W_, V_, b_, c_ = _as_float_arrays(xs, s0, U, W, V, b, c)
    _check_ndim(fn, "xs", xs_, "(T, B, D)")
    _, B, D = xs_.shape
    _check_shape(fn, "U", U_, "(H, D)", (None, D))
    H = U_.shape[0]
    _check_shape(fn, "W", W_, "(H, H)", (H, H))
    _check_ndim(fn, "V", V_, "(K, H)")
    K = V_.shape[0]
    _check_shape(fn, "V", V_, "(K, H)", (K, H))
    _check_shape(fn, "b", b_, "(H,)", (H,))
    _check_shape(fn, "c", c_, "(K,)", (K,))
    _check_shape(fn, "s0", s0_, "(B, H)", (B, H))
    return _RNNInputs(xs_, s0_, U_, W_, V_, b_, c_)


def _rnn_forward(p: _RNNInputs) -> tuple[FloatArray, FloatArray]:
    """Hidden states ``s_t`` ``(T, B, H)`` and logits ``o_t`` ``(T, B, K)`` (spec §1)."""
    T, B, _ = p.xs.shape
    s = np.empty((T, B, p.W.shape[0]), dtype=p.xs.dtype)
    s_prev = p.s0
    for t in range(T):
        a_t = p.b + s_prev @ p.W.T + p.xs[t] @ p.U.T  # a_t = b + W s_{t-1} + U x_t
        s[t] = s_prev = np.tanh(a_t)  # s_t = tanh(a_t)
    o = p.c + s @ p.V.T  # o_t = c + V s_t
    return s, o


def _previous(first: FloatArray, seq: FloatArray) -> FloatArray:
    """``[first, seq_0, …, seq_{T-2}]``: the state each step starts from, e.g. ``s_{t-1}``."""
    # Concatenate then drop the last, rather than ``seq[:-1]``, so that T = 0 stays empty.
    return np.concatenate([first[None], seq], axis=0)[:-1]


def _recurrent_grads(p: _RNNInputs, s: FloatArray, delta: FloatArray) -> dict[str, FloatArray]:
    """Spec §1's hidden-layer gradients from the error terms ``δ_t`` ``(T, B, H)``."""
    return {
        "U": np.einsum("tbh,tbd->hd", delta, p.xs),  # Σ_t δ_t x_tᵀ
        "W": np.einsum("tbh,tbj->hj", delta, _previous(p.s0, s)),  # Σ_t δ_t s_{t-1}ᵀ
        "b": delta.sum(axis=(0, 1)),  # Σ_t δ_t
    }


def _tanh_grad(s: FloatArray) -> FloatArray:
    """``1 − s²`` for ``s = tanh(a)``, factored as ``(1 − s)(1 + s)``.

    The factored form keeps its relative accuracy when ``|s|`` is close to 1, where ``1 − s²``
    would cancel.
    """
    return (1 - s) * (1 + s)


def rnn_bptt(
    xs: npt.ArrayLike,
    targets: npt.ArrayLike,
    s0: npt.ArrayLike,
    U: npt.ArrayLike,
    W: npt.ArrayLike,
    V: npt.ArrayLike,
    b: npt.ArrayLike,
    c: npt.ArrayLike,
    *,
    output: str = "softmax",
    mask: npt.ArrayLike | None = None,
    ds_last: npt.ArrayLike | None = None,
) -> BPTTResult:
    """Loss and exact gradients of a vanilla tanh RNN by closed-form BPTT.

    Spec §1 (seeds 000 and 002), §2 (seed 003's output layers) and §3 (seed 001: which steps
    carry a loss). Column-vector parameters as in the documents, batched as rows::

        a_t = b + W s_{t-1} + U x_t     s_t = tanh(a_t)     o_t = c + V s_t
        L   = Σ_t Σ_b mask[t, b] · L_t(o_t, y_t)

    Args:
        xs: ``(T, B, D)`` inputs ``x_t``, time first.
        targets: ``output="softmax"``: int ``(T, B)`` classes in ``[0, K)``;
            ``"linear"``: float ``(T, B, K)``; ``"sigmoid"``: float ``(T, B, K)`` in ``[0, 1]``.
            Every entry is validated, also at steps whose mask is 0.
        s0: ``(B, H)`` initial state ``s_{-1}``.
        U: ``(H, D)`` input→hidden.
        W: ``(H, H)`` hidden→hidden.
        V: ``(K, H)`` hidden→output.
        b: ``(H,)`` hidden bias.
        c: ``(K,)`` output bias.
        output: ``"softmax"`` (cross-entropy ``−log ŷ[y]``), ``"linear"`` (``½‖y − o‖²``) or
            ``"sigmoid"`` (binary cross-entropy summed over the ``K`` outputs).
        mask: optional ``(T, B)`` weights of each step's loss (0/1 picks the steps that carry a
            loss, spec §3); default all ones.
        ds_last: optional ``(B, H)`` gradient arriving at the last state ``s_T`` from outside the
            network, e.g. from a decoder that starts from ``s_T`` (spec §3, seed 001's
            encoder–decoder). It seeds the recursion in place of 0; the loss is unchanged.

    Returns:
        [`BPTTResult`][tinygrad_rnn.reference.BPTTResult] whose ``grads`` has keys
        ``"U", "W", "V", "b", "c", "s0", "xs"``, ``hidden`` the states ``s_t`` and ``dhidden`` the
        total ``∂L/∂s_t``.

    Raises:
        ValueError: inconsistent shapes, an unknown ``output`` or targets out of range.
    """
    fn = "rnn_bptt"
    if output not in OUTPUTS:
        raise ValueError(f"{fn}: output must be one of {OUTPUTS}, got {output!r}")
    p = _validate_rnn(fn, xs, s0, U, W, V, b, c)
    T, B, _ = p.xs.shape
    y = _rnn_targets(fn, output, targets, T, B, p.V.shape[0])
    mask_ = _as_mask(fn, mask, T, B, p.xs.dtype)

    s, o = _rnn_forward(p)
    loss, do = _output_loss(output, o, y, mask_)
    # do[t] = ∂L/∂o_t: ŷ_t − y_t at steps with a loss, 0 at steps without one (spec §2, §3).

    ds = np.empty_like(s)  # ∂L/∂s_t
    delta = np.empty_like(s)  # δ_t = ∂L/∂a_t, seed 002's error term (seed 003's dhraw)
    # Wᵀ δ_{t+1}; only ds_last (if any) flows back into the last step.
    dhnext = np.zeros_like(p.s0)
    if ds_last is not None:
        _check_shape(fn, "ds_last", np.asarray(ds_last), "(B, H)", (B, p.W.shape[0]))
        dhnext = dhnext + np.asarray(ds_last, dtype=p.s0.dtype)
    for t in reversed(range(T)):
        ds[t] = do[t] @ p.V + dhnext  # ∂L/∂s_t = Vᵀ ∂L/∂o_t + Wᵀ δ_{t+1}
        delta[t] = _tanh_grad(s[t]) * ds[t]  # δ_t = (1 − s_t²) ⊙ ∂L/∂s_t
        # Uses the forward pass's W: seed 002 updates W inside this loop, which is not ∂L/∂W.
        dhnext = delta[t] @ p.W  # Wᵀ δ_t, the recurrent part of ∂L/∂s_{t-1}

    grads = _recurrent_grads(p, s, delta)  # U, W, b
    grads["V"] = np.einsum("tbk,tbh->kh", do, s)  # Σ_t ∂L/∂o_t s_tᵀ
    grads["c"] = do.sum(axis=(0, 1))  # Σ_t ∂L/∂o_t
    grads["s0"] = dhnext  # Wᵀ δ_0
    grads["xs"] = delta @ p.U  # ∂L/∂x_t = Uᵀ δ_t
    return BPTTResult(loss, grads, s, ds)


def init_rnn_params(
    D: int,
    H: int,
    K: int,
    rng: np.random.Generator,
    dtype: npt.DTypeLike = np.float64,
    *,
    scale: float = 0.01,
    random_biases: bool = False,
) -> dict[str, FloatArray]:
    """Random parameters for [`rnn_bptt`][tinygrad_rnn.reference.rnn_bptt], as min-char-rnn
    initialises them.

    Spec §1–2: seed 003 mirrors min-char-rnn, whose weights are ``N(0, 1) · 0.01`` and whose
    biases are 0 (seeds 000 and 002 give no initialisation).

    Args:
        D, H, K: input, hidden and output sizes.
        rng: the source of randomness.
        dtype: floating dtype of the arrays.
        scale: standard deviation of the weights (min-char-rnn's 0.01 by default).
        random_biases: draw ``b`` and ``c`` from ``N(0, 1) · scale`` instead of zeros, so that
            tests exercise the bias paths.

    Returns:
        ``{"U": (H, D), "W": (H, H), "V": (K, H), "b": (H,), "c": (K,)}``, so that
        ``rnn_bptt(xs, targets, s0, **params)`` works.
    """

    def draw(*shape: int) -> FloatArray:
        return (rng.standard_normal(shape) * scale).astype(dtype)

    def bias(n: int) -> FloatArray:
        return draw(n) if random_biases else np.zeros(n, dtype=dtype)

    return {"U": draw(H, D), "W": draw(H, H), "V": draw(K, H), "b": bias(H), "c": bias(K)}
