"""Shared helpers for the autograd-vs-closed-form tests: build the documents' models from
``tinygrad_rnn.nn`` and read their gradients back in the documents' layouts.

The gradient mappings here are transcribed from the spec (§1 and §4), independently of
``tinygrad_rnn.nn.convert``, so a wrong converter cannot hide a wrong gradient.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tinygrad_rnn import nn, tensor
from tinygrad_rnn.nn import recurrent

# The documents' gate letters in PyTorch's row-block order i, f, g, o (spec §4: g is c̃).
LSTM_GATE_BLOCKS = {"i": 0, "f": 1, "c": 2, "o": 3}


def stable_scale(hidden: int) -> float:
    """Weight scale giving the recurrent matrix a spectral radius of about 0.9.

    Past 1 the BPTT recursion amplifies rounding error like any exploding gradient: at
    H=35, T=37 the float64 closed form itself is 2e-10 away from the extended-precision
    truth (see ``test_exploding_regime_agrees_to_the_closed_forms_own_accuracy``), so a 1e-10
    comparison there would measure conditioning, not correctness.
    """
    return 0.9 / float(np.sqrt(hidden))


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest entry error relative to the largest entry of ``expected`` (norm-wise)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected), initial=0.0))
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    return err / scale if scale > 1e-13 else err


def assert_grads_equal(actual: dict[str, Any], expected: dict[str, Any], tol: float) -> None:
    """Every key of ``actual`` matches ``expected`` to relative error ``tol``."""
    for key, value in actual.items():
        err = rel_error(value, expected[key])
        assert err <= tol, f"{key}: relative error {err:.3g} > {tol:g}"


def rnn_grads_in_document_layout(
    cell_or_layer: Any, head: nn.Linear, suffix: str = ""
) -> dict[str, np.ndarray]:
    """∂L/∂(U, W, b, V, c) from the module gradients (spec §1: U = W_ih, W = W_hh).

    ``b`` stands for both PyTorch biases (``b_ih + b_hh``), so ∂L/∂b equals the gradient
    of either; we read ``bias_ih`` and the tests check ``bias_hh`` agrees.
    """
    m = cell_or_layer
    return {
        "U": getattr(m, f"weight_ih{suffix}").grad.data,
        "W": getattr(m, f"weight_hh{suffix}").grad.data,
        "b": getattr(m, f"bias_ih{suffix}").grad.data,
        "V": head.weight.grad.data,
        "c": head.bias.grad.data,
    }


def lstm_grads_in_document_layout(
    cell_or_layer: Any, head: nn.Linear | None, hidden: int, suffix: str = ""
) -> dict[str, np.ndarray]:
    """∂L/∂(W_f, W_i, W_c, W_o, b_*, W_y, b_y) in seed 004's layout (spec §4).

    ``W_g (H+D, H)`` acts on ``[h, x]``, so its gradient stacks the transposed
    hidden-to-hidden block over the transposed input-to-hidden block of gate g.
    """
    m = cell_or_layer
    w_ih = getattr(m, f"weight_ih{suffix}").grad.data
    w_hh = getattr(m, f"weight_hh{suffix}").grad.data
    b_ih = getattr(m, f"bias_ih{suffix}").grad.data
    out: dict[str, np.ndarray] = {}
    for gate, block in LSTM_GATE_BLOCKS.items():
        rows = slice(block * hidden, (block + 1) * hidden)
        out[f"W_{gate}"] = np.concatenate([w_hh[rows].T, w_ih[rows].T], axis=0)
        out[f"b_{gate}"] = b_ih[rows]
    if head is not None:
        out["W_y"] = head.weight.grad.data.T
        out["b_y"] = head.bias.grad.data
    return out


def rnn_layer_from_cell(cell: nn.RNNCell) -> nn.RNN:
    """An ``nn.RNN`` (one layer) holding the same weights as ``cell``."""
    layer = nn.RNN(cell.input_size, cell.hidden_size, dtype=np.float64)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    return layer


def lstm_layer_from_cell(cell: nn.LSTMCell) -> nn.LSTM:
    """An ``nn.LSTM`` (one layer) holding the same weights as ``cell``."""
    layer = nn.LSTM(cell.input_size, cell.hidden_size, dtype=np.float64)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    return layer


@contextmanager
def projection_chunks(steps: int, batch: int, width: int, itemsize: int = 8) -> Iterator[None]:
    """Make the layers compute their input projection ``steps`` time steps at a time and
    release each chunk's values once its steps have read it, whatever its size.

    ``width`` is G·H (the projection's last axis). The layers do this for long sequences
    (8 MiB chunks, released from 64 KiB on); at the sizes of these tests they would do all
    steps at once and keep the values, so this is how that path is checked against the
    closed form.
    """
    saved = recurrent._PROJECTION_CHUNK_BYTES, tensor._RELEASE_MIN_BYTES
    recurrent._PROJECTION_CHUNK_BYTES = steps * batch * width * itemsize
    tensor._RELEASE_MIN_BYTES = 0
    try:
        yield
    finally:
        recurrent._PROJECTION_CHUNK_BYTES, tensor._RELEASE_MIN_BYTES = saved
