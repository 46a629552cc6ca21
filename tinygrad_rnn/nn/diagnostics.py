"""Gradient diagnostics: how much gradient reaches each time step (vanishing/exploding).

Seed 001 explains why plain RNNs forget: ``∂s_T/∂s_t = Π_{k=t+1..T} diag(1 − s_k²) W``
shrinks (or grows) geometrically with ``T − t``.
[`hidden_grad_norms`][tinygrad_rnn.nn.hidden_grad_norms] makes that visible: run a cell with
[`unroll`][tinygrad_rnn.nn.unroll], build a loss, and plot the norm of the total ``∂L/∂h_t`` against
``t`` for an RNN and an LSTM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_rnn.engine import grad
from tinygrad_rnn.nn.module import Module
from tinygrad_rnn.tensor import Tensor

__all__ = ["hidden_grad_norms", "parameter_grad_norms"]


def _hidden_tensor(step: Any, t: int) -> Tensor:
    """The hidden tensor of one step: ``h_t`` itself, or ``h`` of an LSTM's ``(h, c)``."""
    h = step[0] if isinstance(step, (tuple, list)) else step
    if not isinstance(h, Tensor):
        raise TypeError(
            f"hidden_grad_norms: hidden_steps[{t}] is a {type(h).__name__}, not a Tensor"
        )
    if not h.requires_grad:
        raise ValueError(
            f"hidden_grad_norms: hidden_steps[{t}] does not require grad (was it computed "
            "under no_grad, or from parameters that do not require grad?)"
        )
    return h


def hidden_grad_norms(
    loss: Tensor, hidden_steps: Sequence[Any], per_example: bool = False
) -> np.ndarray:
    """Norms of the total gradient ``∂L/∂h_t`` for each step ``t``.

    "Total" means through every path: the output at step ``t`` and all later
    steps (seed 001's ``∂L/∂h_t = ∂l_t/∂h_t + ∂L_{>t}/∂h_t``), i.e. the
    gradient BPTT carries into step ``t``. Computed with
    ``tinygrad_rnn.grad(loss, hidden_steps, retain_graph=True, allow_unused=True)``,
    so ``loss.backward()`` can still be called afterwards.

    Args:
        loss: a one-element Tensor.
        hidden_steps: ``[h_0, ..., h_{T-1}]``, the graph's own per-step hidden
            tensors, each ``(B, H)`` or ``(H,)``, e.g. from
            [`unroll`][tinygrad_rnn.nn.unroll] (an LSTM's ``(h_t, c_t)`` entries use ``h_t``).
        per_example: one norm per batch row instead of one per step.

    Returns:
        ``(T,)`` Euclidean (Frobenius over batch and hidden) norms, or ``(T, B)``
        with ``per_example``. A step the loss does not depend on gets 0.
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"hidden_grad_norms: loss must be a Tensor, got {type(loss).__name__}")
    if loss.size != 1:
        raise ValueError(f"hidden_grad_norms: loss must have one element, got shape {loss.shape}")
    if len(hidden_steps) == 0:
        raise ValueError("hidden_grad_norms: hidden_steps is empty")
    hs = [_hidden_tensor(s, t) for t, s in enumerate(hidden_steps)]
    grads = grad(loss, hs, retain_graph=True, allow_unused=True)
    rows = []
    for h, g in zip(hs, grads):
        # Norms in float64 so a float32 model's tiny (vanishing) values are not rounded to 0.
        arr = np.zeros(h.shape) if g is None else g.data.astype(np.float64)
        arr = arr.reshape(1, -1) if arr.ndim < 2 else arr.reshape(arr.shape[0], -1)
        rows.append(np.linalg.norm(arr, axis=1) if per_example else np.linalg.norm(arr))
    return np.stack(rows) if per_example else np.asarray(rows)


def parameter_grad_norms(module: Module) -> dict[str, float]:
    """``{dotted parameter name: ‖grad‖₂}`` after a backward (0.0 where ``grad`` is None)."""
    return {
        name: 0.0 if p.grad is None else float(np.linalg.norm(p.grad.data.astype(np.float64)))
        for name, p in module.named_parameters()
    }
