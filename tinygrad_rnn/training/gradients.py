"""How the gradient reaching each step of an untrained cell falls off with distance."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, tasks


# ------------------------------------------------------------------------------ gradients
def gradient_profile(
    cell: str,
    T: int,
    hidden: int = 32,
    batch: int = 16,
    seed: int = 0,
    scale: float = 1.0,
    forget_bias: float | None = 1.0,
) -> np.ndarray:
    """``‖∂L/∂h_t‖`` for ``t = 0..T-1`` of an untrained cell on one adding-problem batch.

    The cell (``nn.RNNCell``/``LSTMCell``/``GRUCell``, float64, PyTorch's init
    ``U(-1/√H, 1/√H)`` times ``scale``) is unrolled with [`nn.unroll`][tinygrad_rnn.nn.unroll]; a
    linear head reads only the LAST hidden state and the loss is the MSE to the adding targets, so
    whatever gradient reaches step ``t`` has travelled back ``T − 1 − t`` steps.
    Computed with [`nn.hidden_grad_norms`][tinygrad_rnn.nn.hidden_grad_norms].

    Returns:
        ``(T,)`` float64 norms (Frobenius over batch and hidden units).
    """
    cells: dict[str, Any] = {
        "rnn": nn.RNNCell,
        "lstm": nn.LSTMCell,
        "gru": nn.GRUCell,
    }
    if cell not in cells:
        raise ValueError(f"cell must be one of {', '.join(cells)}, got {cell!r}")
    init_rng = np.random.default_rng(seed)
    module: Any = cells[cell](2, hidden, dtype=np.float64, rng=init_rng)
    for p in module.parameters():
        p.data = p.data * scale
    if cell == "lstm" and forget_bias is not None:
        b_ih = module.bias_ih.data.copy()
        b_hh = module.bias_hh.data.copy()
        b_ih[hidden : 2 * hidden] = forget_bias
        b_hh[hidden : 2 * hidden] = 0.0
        module.bias_ih.data, module.bias_hh.data = b_ih, b_hh
    head = nn.Linear(hidden, 1, dtype=np.float64, rng=init_rng)
    # The same data for every cell: the seed, not the cell, decides the batch.
    x, y = tasks.adding_batch(np.random.default_rng(seed + 1), T, batch, np.float64)
    states = nn.unroll(module, x)
    last = states[-1]
    h_last = last[0] if isinstance(last, tuple) else last
    loss = F.mse_loss(head(h_last), y)
    return nn.hidden_grad_norms(loss, states)
