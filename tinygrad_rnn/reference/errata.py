"""The documents' printed, wrong RNN formulas, reproduced so tests and docs can show each erratum.

Spec §1 lists the errata of seeds 000 and 002. Each function below evaluates one printed form
as literally as its shapes allow; its docstring quotes what the document printed and what the
spec says is correct (the correct form is what [`rnn_bptt`][tinygrad_rnn.reference.rnn_bptt]
computes). A printed form either cannot be evaluated (``ValueError``) or, for generic
parameters, gives a different number from the true gradient.

All functions take the softmax + cross-entropy RNN of spec §1 with the shapes of
[`rnn_bptt`][tinygrad_rnn.reference.rnn_bptt] (``xs: (T, B, D)``, ``targets: int (T, B)``,
``s0: (B, H)``, ``U: (H, D)``, ``W: (H, H)``, ``V: (K, H)``, ``b: (H,)``, ``c: (K,)``), so a
``params`` dict from ``init_rnn_params`` can be splatted into any of them.

Seed 000's ``∇_{o_t} L = y_t * ŷ_t − I_{i=j} * y_t`` is also garbled (spec §1) but has no
unambiguous reading to evaluate, so it has no function here; the correct ``ŷ_t − onehot(y_t)``
is checked against finite differences through ``rnn_bptt``'s gradients of ``V`` and ``c``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .rnn import (
    FloatArray,
    _class_targets,
    _previous,
    _recurrent_grads,
    _rnn_forward,
    _RNNInputs,
    _softmax_xent,
    _tanh_grad,
    _validate_rnn,
)

__all__ = [
    "seed000_grad_b",
    "seed000_output_layer",
    "seed000_recursion",
    "seed002_update_in_loop",
]


def _forward_softmax(
    fn: str,
    xs: npt.ArrayLike,
    targets: npt.ArrayLike,
    s0: npt.ArrayLike,
    U: npt.ArrayLike,
    W: npt.ArrayLike,
    V: npt.ArrayLike,
    b: npt.ArrayLike,
    c: npt.ArrayLike,
) -> tuple[_RNNInputs, FloatArray, FloatArray]:
    """The correct forward pass of spec §1: inputs, states ``s_t`` and ``∂L/∂o_t = ŷ_t − y_t``.

    Every erratum below is in the backward pass (or the output layer), so they all start from
    the true forward pass and the true ``∂L/∂o_t``.
    """
    p = _validate_rnn(fn, xs, s0, U, W, V, b, c)
    s, o = _rnn_forward(p)
    T, B, K = o.shape
    y = _class_targets(fn, targets, T, B, K)
    _, do = _softmax_xent(o, y, np.ones((T, B), dtype=o.dtype))
    return p, s, do


def seed000_output_layer(s: npt.ArrayLike, U: npt.ArrayLike, c: npt.ArrayLike) -> FloatArray:
    """Seed 000's printed output layer ``o_t = c + U s_t`` (spec §1, erratum 1).

    Printed: ``o_t=c+U*s_t``. Correct: ``o_t = c + V s_t`` with ``V: K×H``. ``U`` is the
    input→hidden weight (``H×D``), so ``U s_t`` needs ``D == H`` and adding ``c`` needs
    ``K == H``; otherwise the printed form cannot be evaluated. When ``D == H == K`` it evaluates
    but is not the network's output (unless ``U`` happens to equal ``V``).

    Args:
        s: ``(..., H)`` hidden states ``s_t`` as rows.
        U: ``(H, D)`` input→hidden weight.
        c: ``(K,)`` output bias.

    Returns:
        ``(..., H)`` array ``c + U s_t`` (row form ``c + s @ U.T``).

    Raises:
        ValueError: when ``D ≠ H`` or ``K ≠ H``, naming the mismatch.
    """
    s_, U_, c_ = (np.asarray(a) for a in (s, U, c))
    H = s_.shape[-1]
    if U_.ndim != 2 or c_.ndim != 1 or U_.shape[1] != H or c_.shape[0] != U_.shape[0]:
        raise ValueError(
            "seed000_output_layer: the printed o_t = c + U s_t cannot be evaluated: U s_t needs "
            f"U: (H, D) with D == H = {H} and adding c: (K,) needs K == H; got U {U_.shape}, "
            f"c {c_.shape}. The correct output layer is o_t = c + V s_t with V: (K, H) (spec §1)"
        )
    return np.asarray(c_ + s_ @ U_.T)


def seed000_grad_b(
    xs: npt.ArrayLike,
    targets: npt.ArrayLike,
    s0: npt.ArrayLike,
    U: npt.ArrayLike,
    W: npt.ArrayLike,
    V: npt.ArrayLike,
    b: npt.ArrayLike,
    c: npt.ArrayLike,
) -> FloatArray:
    """Seed 000's printed hidden-bias gradient ``∇_b L = Σ_t diag(1−s_t²) ∇_{o_t} L`` (spec §1).

    Printed: ``\\nabla _bL=\\sum_t diag(1-s_t^2)\\nabla o_tL``. Correct:
    ``∂L/∂b = Σ_t δ_t = Σ_t (1 − s_t²) ⊙ ∂L/∂s_t`` — the vector multiplied is ``∇_{s_t} L``,
    not ``∇_{o_t} L``. The printed form multiplies an ``H×H`` diagonal by a ``K``-vector, so it
    needs ``K == H``; then it evaluates to a different vector from ``rnn_bptt(...).grads["b"]``.

    Args: as [`rnn_bptt`][tinygrad_rnn.reference.rnn_bptt] with ``output="softmax"``, no mask.

    Returns:
        ``(H,)`` array ``Σ_t Σ_b (1 − s_t²) ⊙ (ŷ_t − onehot(y_t))``.

    Raises:
        ValueError: when ``K ≠ H`` (or the shapes are inconsistent with spec §1).
    """
    fn = "seed000_grad_b"
    _, s, do = _forward_softmax(fn, xs, targets, s0, U, W, V, b, c)
    H, K = s.shape[-1], do.shape[-1]
    if K != H:
        raise ValueError(
            f"{fn}: the printed ∇_b L = Σ_t diag(1−s_t²) ∇_{{o_t}} L multiplies an H×H "
            f"diagonal by a K-vector and needs K == H; got K = {K}, H = {H}. The correct "
            "∂L/∂b = Σ_t (1−s_t²) ⊙ ∂L/∂s_t (spec §1)"
        )
    return np.asarray((_tanh_grad(s) * do).sum(axis=(0, 1)))


def seed000_recursion(
    xs: npt.ArrayLike,
    targets: npt.ArrayLike,
    s0: npt.ArrayLike,
    U: npt.ArrayLike,
    W: npt.ArrayLike,
    V: npt.ArrayLike,
    b: npt.ArrayLike,
    c: npt.ArrayLike,
) -> dict[str, FloatArray]:
    """Gradients computed with seed 000's printed recursion for ``∂L/∂s_t`` (spec §1).

    Printed: ``\\nabla s_tL=W^T*s_{t+1}L*diag(1-s_{t+1}^2)+V^T*\\nabla o_tL`` for ``t < τ``.
    Read literally, ``Wᵀ g diag(·)`` (matrix · column · matrix) only has a meaning when
    ``H = 1``; this function reads it, as its order suggests, as the diagonal applied *after*
    ``Wᵀ``::

        ∂L/∂s_t = Vᵀ ∂L/∂o_t + (Wᵀ ∂L/∂s_{t+1}) ⊙ (1 − s_{t+1}²)

    Correct: ``∂L/∂s_t = Vᵀ ∂L/∂o_t + Wᵀ((1 − s_{t+1}²) ⊙ ∂L/∂s_{t+1}) = Vᵀ ∂L/∂o_t + Wᵀ δ_{t+1}``.
    The two agree when ``H = 1`` (or ``W`` diagonal), and with ``T = 1`` except for ``s0``;
    they differ for generic ``W``.
    The weight gradients then follow seed 000's own (correct) ``∇_W L = Σ_t diag(1−s_t²) ∇_{s_t}
    L s_{t-1}ᵀ`` etc., fed with the wrong ``∇_{s_t} L``; ``∂L/∂s0`` continues the printed
    recursion one step, ``(Wᵀ ∂L/∂s_0) ⊙ (1 − s_0²)``. ``V`` and ``c`` do not depend on the
    recursion and are left out.

    Args: as [`rnn_bptt`][tinygrad_rnn.reference.rnn_bptt] with ``output="softmax"``, no mask.

    Returns:
        ``{"U": (H, D), "W": (H, H), "b": (H,), "s0": (B, H)}``, to compare with the same keys
        of ``rnn_bptt(...).grads``.
    """
    p, s, do = _forward_softmax("seed000_recursion", xs, targets, s0, U, W, V, b, c)
    T = s.shape[0]
    ds = np.empty_like(s)  # the printed ∇_{s_t} L
    recurrent = np.zeros_like(p.s0)  # the printed (Wᵀ ∇_{s_{t+1}} L) ⊙ (1 − s_{t+1}²)
    for t in reversed(range(T)):
        ds[t] = do[t] @ p.V + recurrent
        # The erratum: the tanh derivative of step t is applied after Wᵀ instead of before.
        recurrent = (ds[t] @ p.W) * _tanh_grad(s[t])
    grads = _recurrent_grads(p, s, _tanh_grad(s) * ds)  # seed 000's own ∇_U, ∇_W, ∇_b
    grads["s0"] = recurrent
    return grads


def seed002_update_in_loop(
    xs: npt.ArrayLike,
    targets: npt.ArrayLike,
    s0: npt.ArrayLike,
    U: npt.ArrayLike,
    W: npt.ArrayLike,
    V: npt.ArrayLike,
    b: npt.ArrayLike,
    c: npt.ArrayLike,
    lr: float,
) -> dict[str, FloatArray]:
    """Parameters after seed 002's BPTT "algorithm", which updates weights inside the loop.

    Printed (seed 002, section 四)::

        for t = 1..T: forward (x_t, y_t)
        compute the output layer's weight and bias gradients
        update the output layer's weight and bias by gradient descent
        for t = T..1:
            compute the error term δ_t
            compute the recurrent layer's weight and bias gradients from δ_t
            update the recurrent layer's weight and bias by gradient descent

    So every ``δ_t = (1 − s_t²) ⊙ (Vᵀ ∂L/∂o_t + Wᵀ δ_{t+1})`` uses the already-updated ``V``
    and a ``W`` already updated by the steps after ``t``: the sum of the per-step updates is
    not ``lr · ∂L/∂θ``. Correct (spec §1): compute every ``δ_t`` with the forward pass's
    weights, then update once, ``θ − lr · rnn_bptt(...).grads[θ]``. The two agree at
    ``lr = 0`` and differ at order ``lr²`` otherwise.

    The data and parameter arguments are those of ``rnn_bptt`` (softmax output, no mask).

    Args:
        lr: the learning rate of the plain gradient-descent step.

    Returns:
        The parameters after the printed algorithm, ``{"U", "W", "V", "b", "c"}``, each a new
        array with the input's shape (the inputs are not modified).
    """
    p, s, do = _forward_softmax("seed002_update_in_loop", xs, targets, s0, U, W, V, b, c)
    T = s.shape[0]
    V_new = p.V - lr * np.einsum("tbk,tbh->kh", do, s)
    c_new = p.c - lr * do.sum(axis=(0, 1))
    U_new, W_new, b_new = p.U, p.W, p.b
    s_prev = _previous(p.s0, s)
    dhnext = np.zeros_like(p.s0)
    for t in reversed(range(T)):
        delta_t = _tanh_grad(s[t]) * (do[t] @ V_new + dhnext)  # the erratum: updated V and W
        # Rebinding (not -=) so the caller's arrays are never written.
        W_new = W_new - lr * delta_t.T @ s_prev[t]
        U_new = U_new - lr * delta_t.T @ p.xs[t]
        b_new = b_new - lr * delta_t.sum(axis=0)
        dhnext = delta_t @ W_new
    return {"U": U_new, "W": W_new, "V": V_new, "b": b_new, "c": c_new}
