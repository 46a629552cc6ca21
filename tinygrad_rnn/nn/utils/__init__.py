"""Utilities for the modules of [`tinygrad_rnn.nn`][tinygrad_rnn.nn], as in ``torch.nn.utils``.

[`.rnn`][tinygrad_rnn.nn.utils.rnn]: batches of sequences of different lengths
([`PackedSequence`][tinygrad_rnn.nn.utils.rnn.PackedSequence],
[`pack_padded_sequence`][tinygrad_rnn.nn.utils.rnn.pack_padded_sequence], ...).
"""

from tinygrad_rnn.nn.utils import rnn

__all__ = ["rnn"]
