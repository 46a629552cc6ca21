"""Truncated BPTT: train on a long sequence in chunks, carrying the state, cutting the gradient.

This is min-char-rnn's loop (seed 003): the text is read 25 characters at a
time; the last hidden state of one chunk (``hprev``) becomes the initial state
of the next, but the backward pass of a chunk stops at the chunk's start. So
the gradient of chunk ``k`` is exactly the full BPTT gradient of chunk ``k``
alone, started from the (constant) state chunk ``k − 1`` ended in::

    state = None
    for start in range(0, T, chunk_len):
        loss, final = forward(xs[start:start + chunk_len], ys[...], state)
        loss.backward(); optimizer.step(); optimizer.zero_grad()
        state = detach_state(final)     # carried forward, gradient cut

[`run_tbptt`][tinygrad_rnn.nn.run_tbptt] is that loop.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from tinygrad_rnn.tensor import Tensor

__all__ = ["TBPTTResult", "chunk_bounds", "detach_state", "run_tbptt"]


def detach_state(state: Any) -> Any:
    """A copy of a recurrent state cut from the graph: the values carry on, the gradient stops.

    ``state`` is None, a Tensor (``h``) or a tuple/list of Tensors (an LSTM's
    ``(h, c)``, possibly nested); the structure is kept (lists become tuples).
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return tuple(detach_state(s) for s in state)
    raise TypeError(
        "detach_state: state must be None, a Tensor or a tuple of Tensors, "
        f"got {type(state).__name__}"
    )


def chunk_bounds(length: int, chunk_len: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive chunks covering ``range(length)`` (last may be shorter)."""
    try:
        chunk_len = operator.index(chunk_len)
    except TypeError:
        raise TypeError(
            f"chunk_bounds: chunk_len must be an int, got {type(chunk_len).__name__}"
        ) from None
    if chunk_len <= 0:
        raise ValueError(f"chunk_bounds: chunk_len must be positive, got {chunk_len}")
    for start in range(0, length, chunk_len):
        yield start, min(start + chunk_len, length)


class TBPTTResult(NamedTuple):
    """What [`run_tbptt`][tinygrad_rnn.nn.run_tbptt] returns."""

    losses: list[float]  # one per chunk
    state: Any  # the final state, detached: pass it as ``state`` to continue


def _time_slice(x: Any, start: int, stop: int, time_axis: int) -> Any:
    if x is None:
        return None
    index = (slice(None),) * time_axis + (slice(start, stop),)
    return x[index]


def run_tbptt(
    forward: Callable[[Any, Any, Any], tuple[Tensor, Any]],
    inputs: Any,
    targets: Any = None,
    *,
    chunk_len: int,
    state: Any = None,
    time_axis: int = 0,
    after_backward: Callable[[int, Tensor], None] | None = None,
) -> TBPTTResult:
    """Truncated BPTT over ``inputs`` in chunks of ``chunk_len`` steps (min-char-rnn's loop).

    For each chunk ``k``: ``loss, final = forward(x_chunk, y_chunk, state)``,
    then ``loss.backward()``, then ``after_backward(k, loss)`` (take the
    optimizer step and zero the gradients there, or inspect them), then
    ``state = detach_state(final)`` for the next chunk. Gradients therefore
    never flow across a chunk boundary, while the state does.

    Args:
        forward: ``(inputs chunk, targets chunk or None, state) -> (loss, final state)``;
            ``state`` is None for the first chunk (unless given), e.g.
            ``lambda x, y, h: (loss_fn(head(out := rnn(x, h))[0]), y), out[1])``.
        inputs: anything sliceable along ``time_axis`` (array, Tensor), e.g. ``(T, B, D)``.
        targets: sliced the same way, or None.
        chunk_len: steps per chunk (min-char-rnn: 25); the last chunk may be shorter.
        state: the initial state (detached before use).
        time_axis: the time axis of ``inputs`` and ``targets`` (1 for batch-first).
        after_backward: called as ``after_backward(chunk_index, loss)`` after each backward.
            Without it the gradients of all chunks accumulate in ``.grad``.

    Returns:
        [`TBPTTResult`][tinygrad_rnn.nn.TBPTTResult] ``(losses, state)``: each chunk's loss and the
        final detached state.
    """
    try:
        chunk_len = operator.index(chunk_len)
        time_axis = operator.index(time_axis)
    except TypeError:
        raise TypeError(
            "run_tbptt: chunk_len and time_axis must be ints, got "
            f"{type(chunk_len).__name__} and {type(time_axis).__name__}"
        ) from None
    if hasattr(inputs, "shape"):
        ndim = len(inputs.shape)
        if not 0 <= time_axis < ndim:
            raise ValueError(
                f"run_tbptt: time_axis {time_axis} is out of range for inputs of shape "
                f"{tuple(inputs.shape)}"
            )
        length = inputs.shape[time_axis]
    elif hasattr(inputs, "__len__") and not isinstance(inputs, (str, bytes)):
        if time_axis != 0:
            raise ValueError(
                f"run_tbptt: time_axis must be 0 for inputs without a shape, got {time_axis}"
            )
        length = len(inputs)
    else:
        raise TypeError(
            "run_tbptt: inputs must be a Tensor, an array or a sequence, "
            f"got {type(inputs).__name__}"
        )
    if length == 0:
        raise ValueError("run_tbptt: inputs is an empty sequence (T=0)")
    state = detach_state(state)
    losses: list[float] = []
    for k, (start, stop) in enumerate(chunk_bounds(length, chunk_len)):
        x = _time_slice(inputs, start, stop, time_axis)
        y = _time_slice(targets, start, stop, time_axis)
        result = forward(x, y, state)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError(
                "run_tbptt: forward must return a pair (one-element loss Tensor, state), "
                f"got {type(result).__name__}"
            )
        loss, final = result
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError("run_tbptt: forward must return (one-element loss Tensor, state)")
        loss.backward()
        if after_backward is not None:
            after_backward(k, loss)
        losses.append(float(loss.item()))
        state = detach_state(final)
    return TBPTTResult(losses, state)
