"""The forward pass of [`RNN`][tinygrad_rnn.nn.RNN], [`LSTM`][tinygrad_rnn.nn.LSTM] and
[`GRU`][tinygrad_rnn.nn.GRU] over a
[`PackedSequence`][tinygrad_rnn.nn.utils.rnn.PackedSequence].

Every direction runs all ``T`` steps of the padded form ``x (T, B, D)`` with the layer's own
step function, and a mask ``m_t (B, 1)`` (1 while sequence ``b`` has step ``t``) decides
what each step keeps::

    state_t  = m_t · step(x_t, state_{t-1}) + (1 − m_t) · state_{t-1}
    output_t = m_t · h_t

With ``m ∈ {0, 1}`` both products are exact. So the state passes unchanged through the
padding: after the last step the forward direction holds each sequence's state at its own
last step, and the reverse direction, which meets the padding first, starts each sequence
from ``h0`` at that sequence's own last step. The output is zero at the padding, and no
gradient reaches a padded step (its ``step(...)`` is multiplied by 0), so the weights and
the input get exactly what PyTorch's packed kernels give them. The mask is a Tensor built
from the lengths with engine ops, so [`tinygrad_rnn.jit`][tinygrad_rnn.jit] replays it.

The steps, the layer loop and everything configured on the layer (``proj_size``, dropout
between layers in training, ``bias``, ``nonlinearity``) are the padded path's own
(``_RNNBase._run_layers`` with masks), so the two cannot drift apart. Dropout acts on the
padded form ``(T, B, dirs·R)`` where PyTorch's acts on the packed rows: the same
distribution for every real step, and the padding, 0, stays 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinygrad_rnn.nn.module import _as_input
from tinygrad_rnn.nn.utils.rnn import PackedSequence
from tinygrad_rnn.tensor import Tensor

if TYPE_CHECKING:
    from tinygrad_rnn.nn.recurrent import _RNNBase

# ``(keep, skip)``: per step ``m_t (B, 1)`` and ``1 − m_t``.
Masks = tuple[list[Tensor], list[Tensor]]


def _carry(keep: Tensor, skip: Tensor, new: Any, old: Any) -> Any:
    """``keep·new + skip·old`` for a state (a Tensor, or LSTM's ``(h, c)``)."""
    if isinstance(new, tuple):
        return tuple(keep * n + skip * o for n, o in zip(new, old))
    return keep * new + skip * old


def forward_packed(layer: _RNNBase, packed: PackedSequence, hx: Any) -> tuple[PackedSequence, Any]:
    """``layer(packed, hx)``: the output as a PackedSequence of the same lengths, and the
    final states ``(L·dirs, B, R)`` (LSTM's ``c_n``: ``(L·dirs, B, H)``) in the batch's
    original order (as PyTorch); ``hx`` as for a padded input (never batch-first)."""
    where = type(layer).__name__
    padded, mask = packed._padded_form()
    x = _as_input(padded, layer.dtype, where, "input")
    if x.ndim != 3 or x.shape[-1] != layer.input_size:
        raise ValueError(
            f"{where}: a packed input's data must be (sum of lengths, input_size) with "
            f"input_size={layer.input_size}, got data of shape "
            f"{(int(packed._lengths.sum()), *x.shape[2:])}"
        )
    T, batch = x.shape[0], x.shape[1]
    states = layer._initial_states(hx, batch, False)
    skip_all = 1 - mask
    masks = ([mask[t] for t in range(T)], [skip_all[t] for t in range(T)])
    out, finals = layer._run_layers(x, states, masks)
    return packed._like(out), layer._format_final(finals, False)
