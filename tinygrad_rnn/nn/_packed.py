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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinygrad_rnn import ops
from tinygrad_rnn.nn.cells import _input_projection
from tinygrad_rnn.nn.module import _as_input
from tinygrad_rnn.nn.utils.rnn import PackedSequence
from tinygrad_rnn.scope import is_recording_scopes, scope
from tinygrad_rnn.tensor import Tensor

if TYPE_CHECKING:
    from tinygrad_rnn.nn.recurrent import _RNNBase


def _carry(keep: Tensor, skip: Tensor, new: Any, old: Any) -> Any:
    """``keep·new + skip·old`` for a state (a Tensor, or LSTM's ``(h, c)``)."""
    if isinstance(new, tuple):
        return tuple(keep * n + skip * o for n, o in zip(new, old))
    return keep * new + skip * old


def _run_direction(
    layer: _RNNBase,
    x: Tensor,
    keep: list[Tensor],
    skip: list[Tensor],
    state: Any,
    suffix: str,
    reverse: bool,
) -> tuple[list[Tensor], Any]:
    """One layer in one direction over ``x (T, B, ·)``, masked step by step.

    ``keep[t]`` is ``m_t (B, 1)`` and ``skip[t]`` is ``1 − m_t``. Returns the outputs
    ``m_t·h_t`` in time order and the final state, as the layer's own ``_run_direction``.
    """
    from tinygrad_rnn.nn.recurrent import _projection_span  # recurrent imports this module

    w_ih, w_hh, b_ih, b_hh = layer._params(suffix)
    bias = layer._projection_bias(b_ih, b_hh)
    w_hh_t = w_hh.T  # transposed once, not once per step
    T, B = x.shape[0], x.shape[1]
    span = _projection_span(T, B * w_ih.shape[0] * x.dtype.itemsize)
    hs: list[Tensor] = [None] * T  # type: ignore[list-item]
    step, hidden = layer._step, layer._hidden
    recording = is_recording_scopes()
    starts = range(0, T, span)
    for t0 in reversed(starts) if reverse else starts:
        t1 = min(t0 + span, T)
        gi = _input_projection(x if t1 - t0 == T else x[t0:t1], w_ih, bias)
        for t in reversed(range(t0, t1)) if reverse else range(t0, t1):
            if recording:
                with scope(f"t={t}"):
                    new = step(gi, t - t0, state, w_hh_t, b_hh)
                    state = _carry(keep[t], skip[t], new, state)
            else:
                new = step(gi, t - t0, state, w_hh_t, b_hh)
                state = _carry(keep[t], skip[t], new, state)
            hs[t] = hidden(state) * keep[t]
        if layer._steps_read_rows:
            gi._release_values()  # as in the layer's own loop: no rule reads the projection
    return hs, state


def forward_packed(layer: _RNNBase, packed: PackedSequence, hx: Any) -> tuple[PackedSequence, Any]:
    """``layer(packed, hx)``: the output as a PackedSequence of the same lengths, and the
    final states ``(L·dirs, B, H)`` in the batch's original order (as PyTorch)."""
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
    keep = [mask[t] for t in range(T)]
    skip = [skip_all[t] for t in range(T)]
    finals: list[Any] = []
    for k in range(layer.num_layers):
        outputs = []
        for d, suffix in enumerate(layer._suffixes(k)):
            with scope(suffix[1:]):
                hs, final = _run_direction(
                    layer,
                    x,
                    keep,
                    skip,
                    states[k * layer.num_directions + d],
                    suffix,
                    reverse=d == 1,
                )
            outputs.append(ops.stack(hs, axis=0))
            finals.append(final)
        x = outputs[0] if len(outputs) == 1 else ops.concat(outputs, axis=-1)
    return packed._like(x), layer._format_final(finals, False)
