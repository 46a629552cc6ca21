"""Neural-network modules built on the autodiff engine (PyTorch-like API and layouts).

Everything here is composed from the engine's ops (matmul, tanh, sigmoid,
slicing, concat, stack, ``+``, ``*``): there is no hand-written backward, the
gradients come from autograd alone. Parameter names, shapes and gate orders
match ``torch.nn`` so state_dicts move between the two::

    import numpy as np
    from tinygrad_rnn import nn

    rng = np.random.default_rng(0)
    lstm = nn.LSTM(input_size=3, hidden_size=5, num_layers=2, dtype=np.float64, rng=rng)
    head = nn.Linear(5, 4, dtype=np.float64, rng=rng)
    out, (h_n, c_n) = lstm(rng.standard_normal((7, 2, 3)))   # (T, B, D) -> (T, B, H)
    loss = nn.CrossEntropyLoss()(head(out), rng.integers(0, 4, (7, 2)))
    loss.backward()

Contents: [`Module`][tinygrad_rnn.nn.Module], [`Parameter`][tinygrad_rnn.nn.Parameter],
[`Sequential`][tinygrad_rnn.nn.Sequential]; [`Linear`][tinygrad_rnn.nn.Linear],
[`Embedding`][tinygrad_rnn.nn.Embedding], [`Dropout`][tinygrad_rnn.nn.Dropout]; cells
[`RNNCell`][tinygrad_rnn.nn.RNNCell],
[`LSTMCell`][tinygrad_rnn.nn.LSTMCell], [`GRUCell`][tinygrad_rnn.nn.GRUCell]; layers
[`RNN`][tinygrad_rnn.nn.RNN], [`LSTM`][tinygrad_rnn.nn.LSTM], [`GRU`][tinygrad_rnn.nn.GRU] and
[`unroll`][tinygrad_rnn.nn.unroll]; losses; converters to the documents' and PyTorch's layouts
([`.convert`][tinygrad_rnn.nn.convert]); gradient diagnostics
([`.diagnostics`][tinygrad_rnn.nn.diagnostics]); truncated BPTT ([`.tbptt`][tinygrad_rnn.nn.tbptt]);
batches of sequences of different lengths ([`.utils.rnn`][tinygrad_rnn.nn.utils.rnn], as in
``torch.nn.utils.rnn``); initialisation ([`.init`][tinygrad_rnn.nn.init]).
"""

from tinygrad_rnn.nn import init
from tinygrad_rnn.nn import utils as utils  # nn.utils.rnn, as torch.nn.utils.rnn
from tinygrad_rnn.nn.cells import GRUCell, LSTMCell, RNNCell
from tinygrad_rnn.nn.convert import (
    cell_from_layer,
    load_torch_state_dict,
    lstm_from_document,
    lstm_grads_to_document,
    lstm_to_document,
    module_from_torch,
    rnn_from_document,
    rnn_grads_to_document,
    rnn_to_document,
    to_torch_state_dict,
)
from tinygrad_rnn.nn.diagnostics import hidden_grad_norms, parameter_grad_norms
from tinygrad_rnn.nn.dropout import Dropout
from tinygrad_rnn.nn.layers import Embedding, Linear
from tinygrad_rnn.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinygrad_rnn.nn.module import IncompatibleKeys, Module, Parameter, Sequential, StateDictError
from tinygrad_rnn.nn.recurrent import GRU, LSTM, RNN, unroll
from tinygrad_rnn.nn.tbptt import TBPTTResult, chunk_bounds, detach_state, run_tbptt

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "GRUCell",
    "IncompatibleKeys",
    "LSTMCell",
    "Linear",
    "MSELoss",
    "Module",
    "Parameter",
    "RNNCell",
    "Sequential",
    "StateDictError",
    "TBPTTResult",
    "cell_from_layer",
    "chunk_bounds",
    "detach_state",
    "hidden_grad_norms",
    "init",
    "load_torch_state_dict",
    "lstm_from_document",
    "lstm_grads_to_document",
    "lstm_to_document",
    "module_from_torch",
    "parameter_grad_norms",
    "rnn_from_document",
    "rnn_grads_to_document",
    "rnn_to_document",
    "run_tbptt",
    "to_torch_state_dict",
    "unroll",
]
