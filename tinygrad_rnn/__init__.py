"""tinygrad_rnn: a small reverse-mode autodiff engine on numpy for learning, teaching
and checking backpropagation through time.

Everything a user needs is importable from here::

    import numpy as np
    import tinygrad_rnn as tg

    x = tg.Tensor(np.random.randn(3, 4), requires_grad=True)
    y = (x.tanh() ** 2).sum()
    y.backward()          # x.grad now holds dy/dx

Subpackages: [`nn`][tinygrad_rnn.nn] (modules, RNN/LSTM/GRU), [`optim`][tinygrad_rnn.optim],
[`functional`][tinygrad_rnn.functional], [`reference`][tinygrad_rnn.reference] (the documents'
closed-form BPTT), [`scope`][tinygrad_rnn.scope]; [`tinygrad_rnn.testing`][tinygrad_rnn.testing]
(hypothesis strategies, needs the ``dev`` extra) and [`tinygrad_rnn.viz`][tinygrad_rnn.viz] (graph
drawing) are imported on demand.
"""

from tinygrad_rnn import functional, nn, optim, reference, scope
from tinygrad_rnn._grad_mode import enable_grad, is_grad_enabled, no_grad
from tinygrad_rnn.anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled
from tinygrad_rnn.creation import (
    arange,
    eye,
    full,
    full_like,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randn,
    randn_like,
    zeros,
    zeros_like,
)
from tinygrad_rnn.engine import grad
from tinygrad_rnn.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinygrad_rnn.hooks import RemovableHandle
from tinygrad_rnn.jit import jit
from tinygrad_rnn.ops import (
    broadcast_to,
    chunk,
    clip,
    concat,
    logsumexp,
    matmul,
    maximum,
    minimum,
    reshape,
    split,
    stack,
    sum_to,
    transpose,
    where,
)
from tinygrad_rnn.serialization import load, save
from tinygrad_rnn.tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "GradcheckError",
    "RemovableHandle",
    "Tensor",
    "__version__",
    "arange",
    "broadcast_to",
    "chunk",
    "clip",
    "concat",
    "detect_anomaly",
    "enable_grad",
    "eye",
    "full",
    "full_like",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "jit",
    "load",
    "logsumexp",
    "manual_seed",
    "matmul",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "rand_like",
    "randn",
    "randn_like",
    "reference",
    "reshape",
    "save",
    "scope",
    "split",
    "stack",
    "sum_to",
    "transpose",
    "where",
    "zeros",
    "zeros_like",
]
