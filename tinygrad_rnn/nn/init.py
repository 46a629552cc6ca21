"""Initialisation of parameters with PyTorch's names, arguments and formulas (``torch.nn.init``).

Each function fills a tensor (typically a [`Parameter`][tinygrad_rnn.nn.Parameter]) and returns
it, so a model's weights can be re-initialised after construction::

    from tinygrad_rnn import nn

    lstm = nn.LSTM(8, 16, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for name, p in lstm.named_parameters():
        if name.startswith("weight_hh"):
            nn.init.orthogonal_(p, rng=rng)        # the usual choice for recurrent weights
        elif name.startswith("weight_ih"):
            nn.init.xavier_uniform_(p, rng=rng)
        else:
            nn.init.zeros_(p)

"In place" means the tensor's values change and the tensor keeps its identity, shape and
dtype (a float32 parameter stays float32): each function assigns a *new* array to
``tensor.data`` rather than writing into the old one. The old array may be held, read-only,
by a graph recorded before (an op that saved a leaf's array makes it read-only until backward
frees the graph), and a ``backward`` of that graph still sees the values its forward used;
writing into it would fail. Optimizers hold the tensor, not
the array, so an initialisation between steps is seen by the next step.

Random values come from ``rng``: a ``numpy.random.Generator`` (or ``RandomState``), by
default one module-level generator (unseeded: pass ``rng=np.random.default_rng(seed)`` for
reproducible weights). Values are drawn in float64 and then cast to the tensor's dtype.

``fan_in`` and ``fan_out`` are PyTorch's: for a weight of shape ``(out, in, *kernel)``,
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``, which for the
``(G*H, D)`` weights of RNN/LSTM/GRU layers means ``fan_in = D`` (the layer's input size).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from tinygrad_rnn.tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_uniform_",
    "normal_",
    "orthogonal_",
    "uniform_",
    "xavier_uniform_",
    "zeros_",
]

# The generator used when no ``rng`` is given.
_default_rng = np.random.default_rng()

_LINEAR_NAMES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)
_NONLINEARITIES = (*_LINEAR_NAMES, "tanh", "relu", "leaky_relu", "selu")


# ------------------------------------------------------------------------------ helpers
def _check_tensor(where: str, tensor: Any, random: bool = True) -> Tensor:
    """``tensor`` if it is a leaf Tensor (of a floating dtype, for random values)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(
            f"{where}: tensor must be a Tensor (such as an nn.Parameter), "
            f"got {type(tensor).__name__}"
        )
    if not tensor.is_leaf:
        raise ValueError(
            f"{where}: tensor (shape {tensor.shape}) was made by op '{tensor.op}'; only leaf "
            "tensors (parameters, inputs) can be initialised"
        )
    if random and tensor.dtype.kind != "f":
        raise TypeError(
            f"{where}: tensor has dtype {tensor.dtype}; random values need a floating dtype"
        )
    return tensor


def _check_rng(where: str, rng: Any) -> Any:
    if rng is None:
        return _default_rng
    if not isinstance(rng, (np.random.Generator, np.random.RandomState)):
        raise TypeError(
            f"{where}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}"
        )
    return rng


def _number(where: str, name: str, value: Any, finite: bool = True) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{where}: {name} must be a real number, got {value!r:.60} ({type(value).__name__})"
        )
    x = float(value)
    if finite and not math.isfinite(x):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    return x


def _assign(tensor: Tensor, values: Any) -> Tensor:
    """Give ``tensor`` a new array of ``values`` in its own dtype and shape (never in place)."""
    tensor.data = np.array(values, dtype=tensor.dtype).reshape(tensor.shape)
    return tensor


def _fan_in_and_fan_out(shape: tuple[int, ...], where: str) -> tuple[int, int]:
    """PyTorch's fans of a weight of shape ``(out, in, *kernel)``."""
    if len(shape) < 2:
        raise ValueError(
            f"{where}: fan_in and fan_out need a tensor with 2 or more dimensions, "
            f"got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


# ------------------------------------------------------------------------------- public
def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    ``linear``, the ``conv*`` names and ``sigmoid``: 1; ``tanh``: 5/3; ``relu``: √2;
    ``leaky_relu``: √(2 / (1 + slope²)) with ``slope = param`` (default 0.01); ``selu``: 3/4.

    Args:
        nonlinearity: the function's name, as in ``torch.nn.functional``.
        param: the negative slope of ``leaky_relu`` (ignored for the others).

    Returns:
        The gain, a Python float.

    Raises:
        ValueError: an unknown nonlinearity, or a ``param`` that is not a number.
    """
    where = "calculate_gain"
    if not isinstance(nonlinearity, str) or nonlinearity not in _NONLINEARITIES:
        raise ValueError(
            f"{where}: unsupported nonlinearity {nonlinearity!r:.60}; "
            f"supported: {', '.join(_NONLINEARITIES)}"
        )
    if nonlinearity in _LINEAR_NAMES:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    if param is None:
        slope = 0.01
    elif isinstance(param, (bool, np.bool_)) or not isinstance(param, numbers.Real):
        raise ValueError(
            f"{where}: param (the negative slope of leaky_relu) must be a number, got {param!r:.60}"
        )
    else:
        slope = float(param)
    return math.sqrt(2.0 / (1 + slope**2))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, *, rng: Any = None) -> Tensor:
    """Fill ``tensor`` with values drawn from the uniform distribution U(a, b).

    Args:
        tensor: a leaf Tensor of a floating dtype, any shape.
        a: the lower bound.
        b: the upper bound, >= ``a``.
        rng: a ``numpy.random.Generator`` (default: the module's generator).

    Returns:
        ``tensor``, with a new array of the same shape and dtype.

    Raises:
        TypeError: not a Tensor, not floating point, bounds that are not numbers, a bad rng.
        ValueError: a non-leaf tensor, bounds not finite or ``a > b``.
    """
    where = "uniform_"
    _check_tensor(where, tensor)
    lo, hi = _number(where, "a", a), _number(where, "b", b)
    if lo > hi:
        raise ValueError(f"{where}: a must be <= b, got a={a!r}, b={b!r}")
    gen = _check_rng(where, rng)
    return _assign(tensor, gen.uniform(lo, hi, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, *, rng: Any = None) -> Tensor:
    """Fill ``tensor`` with values drawn from the normal distribution N(mean, std²).

    Args:
        tensor: a leaf Tensor of a floating dtype, any shape.
        mean: the mean.
        std: the standard deviation, >= 0.
        rng: a ``numpy.random.Generator`` (default: the module's generator).

    Returns:
        ``tensor``, with a new array of the same shape and dtype.

    Raises:
        TypeError: not a Tensor, not floating point, arguments that are not numbers, a bad rng.
        ValueError: a non-leaf tensor, a negative or non-finite ``std``, a non-finite ``mean``.
    """
    where = "normal_"
    _check_tensor(where, tensor)
    mu, sigma = _number(where, "mean", mean), _number(where, "std", std)
    if sigma < 0:
        raise ValueError(f"{where}: std must be >= 0, got {std!r}")
    gen = _check_rng(where, rng)
    return _assign(tensor, gen.normal(mu, sigma, size=tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill ``tensor`` with the value ``val`` (cast to its dtype).

    Args:
        tensor: a leaf Tensor, any shape and numeric dtype.
        val: the value (inf and nan are allowed, as in PyTorch).

    Returns:
        ``tensor``, with a new array of the same shape and dtype.

    Raises:
        TypeError: not a Tensor, or ``val`` not a real number.
        ValueError: a non-leaf tensor.
    """
    where = "constant_"
    _check_tensor(where, tensor, random=False)
    value = _number(where, "val", val, finite=False)
    return _assign(tensor, np.full(tensor.shape, value))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with zeros.

    Args:
        tensor: a leaf Tensor, any shape and numeric dtype.

    Returns:
        ``tensor``, with a new array of zeros of the same shape and dtype.

    Raises:
        TypeError: not a Tensor.
        ValueError: a non-leaf tensor.
    """
    _check_tensor("zeros_", tensor, random=False)
    return _assign(tensor, np.zeros(tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, *, rng: Any = None) -> Tensor:
    """Glorot & Bengio (2010): fill ``tensor`` with U(-bound, bound),
    ``bound = gain * sqrt(6 / (fan_in + fan_out))``.

    Args:
        tensor: a leaf Tensor of a floating dtype with 2 or more dimensions (a tensor with
            no elements is returned unchanged).
        gain: the scaling factor (see [`calculate_gain`][tinygrad_rnn.nn.init.calculate_gain]).
        rng: a ``numpy.random.Generator`` (default: the module's generator).

    Returns:
        ``tensor``, with a new array of the same shape and dtype.

    Raises:
        TypeError: not a Tensor, not floating point, ``gain`` not a number, a bad rng.
        ValueError: fewer than 2 dimensions, a non-leaf tensor, a non-finite ``gain``.
    """
    where = "xavier_uniform_"
    _check_tensor(where, tensor)
    fan_in, fan_out = _fan_in_and_fan_out(tensor.shape, where)
    g = _number(where, "gain", gain)
    gen = _check_rng(where, rng)
    if tensor.size == 0:
        return tensor
    bound = math.sqrt(3.0) * g * math.sqrt(2.0 / float(fan_in + fan_out))
    return _assign(tensor, gen.uniform(-bound, bound, size=tensor.shape))


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: Any = None,
) -> Tensor:
    """He et al. (2015): fill ``tensor`` with U(-bound, bound), ``bound = gain * sqrt(3 / fan)``.

    ``gain = calculate_gain(nonlinearity, a)``; ``fan`` is ``fan_in`` or ``fan_out``
    (``mode``). PyTorch's defaults (``a=0``, ``"leaky_relu"``) give ``gain = √2``.

    Args:
        tensor: a leaf Tensor of a floating dtype with 2 or more dimensions (a tensor with
            no elements is returned unchanged).
        a: the negative slope of the rectifier after this layer (``leaky_relu`` only).
        mode: ``"fan_in"`` (keeps the variance of the forward pass) or ``"fan_out"``
            (of the backward pass); case does not matter.
        nonlinearity: the function after this layer, a name
            [`calculate_gain`][tinygrad_rnn.nn.init.calculate_gain] knows.
        rng: a ``numpy.random.Generator`` (default: the module's generator).

    Returns:
        ``tensor``, with a new array of the same shape and dtype.

    Raises:
        TypeError: not a Tensor, not floating point, a bad rng.
        ValueError: fewer than 2 dimensions, a non-leaf tensor, an unknown ``mode`` or
            ``nonlinearity``, an ``a`` that is not a number.
    """
    where = "kaiming_uniform_"
    _check_tensor(where, tensor)
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        raise ValueError(f"{where}: mode must be 'fan_in' or 'fan_out', got {mode!r:.60}")
    gain = calculate_gain(nonlinearity, a)
    gen = _check_rng(where, rng)
    if tensor.size == 0:
        return tensor
    fan_in, fan_out = _fan_in_and_fan_out(tensor.shape, where)
    fan = fan_in if mode.lower() == "fan_in" else fan_out
    bound = math.sqrt(3.0) * (gain / math.sqrt(fan))
    return _assign(tensor, gen.uniform(-bound, bound, size=tensor.shape))


def orthogonal_(tensor: Tensor, gain: float = 1.0, *, rng: Any = None) -> Tensor:
    """Saxe et al. (2013): fill ``tensor`` with a (semi-)orthogonal matrix times ``gain``.

    The tensor is viewed as a matrix ``W`` of shape ``(rows, cols)``: ``rows = shape[0]``,
    the trailing dimensions flattened. ``W`` is the ``Q`` of the QR factorisation of a
    standard normal matrix, with the signs of ``R``'s diagonal moved into ``Q`` (so that
    ``W`` is uniformly distributed, Mezzadri 2007). Afterwards ``W Wᵀ = gain² I`` if
    ``rows <= cols`` and ``Wᵀ W = gain² I`` if ``rows >= cols``.

    For an LSTM's ``weight_hh`` ``(4H, H)`` this makes the columns of the stacked matrix
    orthonormal; to make each gate's ``(H, H)`` block orthogonal, initialise the blocks one
    by one (``tinygrad-rnn train --init orthogonal`` does that).

    Args:
        tensor: a leaf Tensor of a floating dtype with 2 or more dimensions (a tensor with
            no elements is returned unchanged).
        gain: the scaling factor.
        rng: a ``numpy.random.Generator`` (default: the module's generator).

    Returns:
        ``tensor``, with a new array of the same shape and dtype.

    Raises:
        TypeError: not a Tensor, not floating point, ``gain`` not a number, a bad rng.
        ValueError: fewer than 2 dimensions, a non-leaf tensor, a non-finite ``gain``.
    """
    where = "orthogonal_"
    _check_tensor(where, tensor)
    if tensor.ndim < 2:
        raise ValueError(
            f"{where}: tensor must have 2 or more dimensions, got shape {tensor.shape}"
        )
    g = _number(where, "gain", gain)
    gen = _check_rng(where, rng)
    if tensor.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.size // rows
    flat = gen.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _assign(tensor, q * g)
