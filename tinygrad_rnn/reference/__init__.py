"""The source documents' closed-form BPTT, hand-written in plain numpy, with no autograd.

This package is the oracle the autograd engine is tested against: each function implements the
formulas of ``shared/spec/bptt-formulas.md`` in its document's own notation.

- :func:`rnn_bptt` — vanilla RNN with softmax, linear or sigmoid output (spec §1–3; seeds 000,
  002, 003, 001).
- :func:`lstm_bptt` — LSTM with softmax output (spec §4; seed 004).
- :func:`lstm_hidden_mse_bptt` — LSTM with ``‖h_t − y_t‖²`` on the hidden state (spec §5;
  seed 001).
- :mod:`tinygrad_rnn.reference.errata` — the documents' printed, wrong forms.

All return a :class:`BPTTResult`. Batches are stored time first: ``xs`` is ``(T, B, D)``.
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
