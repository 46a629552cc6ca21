"""The source documents' closed-form BPTT, hand-written in plain numpy, with no autograd.

This package is the oracle the autograd engine is tested against: each function implements the
formulas derived in ``docs/bptt.md`` in its document's own notation.

- [`rnn_bptt`][tinygrad_rnn.reference.rnn_bptt] — vanilla RNN with softmax, linear or sigmoid output
  (spec §1–3; seeds 000, 002, 003, 001).
- [`lstm_bptt`][tinygrad_rnn.reference.lstm_bptt] — LSTM with softmax output (spec §4; seed 004).
- [`lstm_hidden_mse_bptt`][tinygrad_rnn.reference.lstm_hidden_mse_bptt] — LSTM with ``‖h_t − y_t‖²``
  on the hidden state (spec §5; seed 001).
- [`tinygrad_rnn.reference.errata`][tinygrad_rnn.reference.errata] — the documents' printed, wrong
  forms.

All return a [`BPTTResult`][tinygrad_rnn.reference.BPTTResult]. Batches are stored time first:
``xs`` is ``(T, B, D)``.
"""

from .lstm import init_lstm_params, lstm_bptt, lstm_hidden_mse_bptt
from .rnn import BPTTResult, init_rnn_params, rnn_bptt

__all__ = [
    "BPTTResult",
    "init_lstm_params",
    "init_rnn_params",
    "lstm_bptt",
    "lstm_hidden_mse_bptt",
    "rnn_bptt",
]
