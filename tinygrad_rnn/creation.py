"""Tensors made from nothing: constants, ranges, identities and random draws.

PyTorch's names and arguments, with two differences that come from numpy: ``dtype`` is a
numpy dtype (default ``float32``, the modules' default and PyTorch's), and random draws take
``rng=``, a ``numpy.random.Generator``; without one they use the package's generator, which
`manual_seed` resets.

Random draws are ops of the engine: inside a function compiled by
[`jit`][tinygrad_rnn.jit.jit] each replay draws fresh values from the generator (the same
values an eager call would draw next), where any other array made inside the function
would be baked into the program as a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_rnn import autograd
from tinygrad_rnn.tensor import Tensor, _shape_arg

__all__ = [
    "arange",
    "eye",
    "full",
    "full_like",
    "manual_seed",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randn",
    "randn_like",
    "zeros",
    "zeros_like",
]

_DEFAULT_DTYPE = np.dtype(np.float32)
_GENERATOR: list[np.random.Generator] = [np.random.default_rng()]


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the package's random generator (the one used when ``rng`` is not given).

    Args:
        seed: any seed ``numpy.random.default_rng`` accepts.

    Returns:
        The new generator.
    """
    _GENERATOR[0] = np.random.default_rng(seed)
    return _GENERATOR[0]


def _dtype(dtype: npt.DTypeLike | None, where: str, default: np.dtype[Any]) -> np.dtype[Any]:
    if dtype is None:
        return default
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{where}: dtype {dtype!r:.60} is not a numpy dtype: {exc}") from None
    if dt.kind not in "biuf":
        raise TypeError(f"{where}: dtype must be a number type, got {dt}")
    return dt


def _float_dtype(dtype: npt.DTypeLike | None, where: str) -> np.dtype[Any]:
    dt = _dtype(dtype, where, _DEFAULT_DTYPE)
    if dt.kind != "f":
        raise TypeError(f"{where}: random values need a floating dtype, got {dt}")
    return dt


def _dims(shape: tuple[Any, ...], where: str) -> tuple[int, ...]:
    dims = _shape_arg(shape, where)
    if any(d < 0 for d in dims):
        raise ValueError(f"{where}: sizes must be non-negative, got shape {dims}")
    return dims


def _leaf(array: np.ndarray, requires_grad: bool, where: str) -> Tensor:
    if requires_grad and array.dtype.kind != "f":
        raise TypeError(
            f"{where}: only floating-point tensors can require grad, got dtype {array.dtype}"
        )
    if requires_grad and autograd._TRACE[0] is not None:
        raise RuntimeError(
            f"{where}: a tensor that requires grad made inside a jitted function would be "
            "a new leaf on every call; create parameters outside the function"
        )
    return Tensor._make(array, bool(requires_grad))


def _rng(rng: Any, where: str) -> Callable[[], np.random.Generator]:
    """A getter for the generator: the package's is looked up at draw time (manual_seed)."""
    if rng is None:
        return lambda: _GENERATOR[0]
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{where}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}"
        )
    return lambda: rng


def _draw(draw: Callable[[], np.ndarray], requires_grad: bool, where: str) -> Tensor:
    """A Tensor of freshly drawn values, recorded as a source op while jit traces."""
    out = _leaf(draw(), requires_grad, where)
    tracer = autograd._TRACE[0]
    if tracer is not None:
        tracer.record_source(draw, out)
    return out


def zeros(*shape: Any, dtype: npt.DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of ``shape`` (ints or one tuple), default dtype float32."""
    dt = _dtype(dtype, "zeros", _DEFAULT_DTYPE)
    return _leaf(np.zeros(_dims(shape, "zeros"), dtype=dt), requires_grad, "zeros")


def ones(*shape: Any, dtype: npt.DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of ``shape`` (ints or one tuple), default dtype float32."""
    dt = _dtype(dtype, "ones", _DEFAULT_DTYPE)
    return _leaf(np.ones(_dims(shape, "ones"), dtype=dt), requires_grad, "ones")


def full(
    shape: int | Sequence[int],
    fill_value: float,
    dtype: npt.DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value``.

    The dtype defaults as in PyTorch: bool for a bool, int64 for an int, float32 otherwise.
    """
    if isinstance(fill_value, Tensor) or not isinstance(fill_value, (int, float, np.number)):
        raise TypeError(f"full: fill_value must be a number, got {type(fill_value).__name__}")
    if dtype is None:
        if isinstance(fill_value, (bool, np.bool_)):
            default: np.dtype[Any] = np.dtype(bool)
        elif isinstance(fill_value, (int, np.integer)):
            default = np.dtype(np.int64)
        else:
            default = _DEFAULT_DTYPE
    else:
        default = _DEFAULT_DTYPE
    dt = _dtype(dtype, "full", default)
    dims = _dims((shape,), "full")
    return _leaf(np.full(dims, fill_value, dtype=dt), requires_grad, "full")


def arange(
    start: float,
    end: float | None = None,
    step: float = 1,
    dtype: npt.DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` up to (not including) ``end`` by ``step``, shape ``(n,)``.

    ``arange(n)`` counts from 0. The dtype defaults as in PyTorch: int64 when every bound is
    an int, float32 otherwise.
    """
    if end is None:
        start, end = 0, start
    bounds = (start, end, step)
    for name, v in zip(("start", "end", "step"), bounds):
        if isinstance(v, (bool, Tensor)) or not isinstance(v, (int, float, np.number)):
            raise TypeError(f"arange: {name} must be a number, got {type(v).__name__}")
        if not np.isfinite(v):
            raise ValueError(f"arange: {name} must be finite, got {v}")
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if (end - start) * step < 0:
        raise ValueError(
            f"arange: the range from {start} to {end} is empty going in steps of {step}; "
            "give end on the side step points to"
        )
    integral = all(isinstance(v, (int, np.integer)) for v in bounds)
    dt = _dtype(dtype, "arange", np.dtype(np.int64) if integral else _DEFAULT_DTYPE)
    return _leaf(np.arange(start, end, step).astype(dt), requires_grad, "arange")


def eye(
    n: int,
    m: int | None = None,
    dtype: npt.DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """The identity of shape ``(n, m)`` (``m`` defaults to ``n``), default dtype float32."""
    for name, v in (("n", n), ("m", n if m is None else m)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"eye: {name} must be an int, got {type(v).__name__}")
        if v < 0:
            raise ValueError(f"eye: {name} must be non-negative, got {v}")
    dt = _dtype(dtype, "eye", _DEFAULT_DTYPE)
    return _leaf(np.eye(n, m, dtype=dt), requires_grad, "eye")


def _random(
    method: str,
    shape: tuple[Any, ...],
    dtype: npt.DTypeLike | None,
    rng: np.random.Generator | None,
    requires_grad: bool,
    where: str,
) -> Tensor:
    """Draws of the generator's ``method`` (``standard_normal``, ``random``), recorded by jit."""
    dims = _dims(shape, where)
    dt = _float_dtype(dtype, where)
    gen = _rng(rng, where)
    native = dt in (np.float32, np.float64)  # the generator draws these directly

    def draw() -> np.ndarray:
        sample = getattr(gen(), method)
        return sample(dims, dtype=dt.type) if native else sample(dims).astype(dt)

    return _draw(draw, requires_grad, where)


def randn(
    *shape: Any,
    dtype: npt.DTypeLike | None = None,
    rng: np.random.Generator | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal draws of ``shape`` (ints or one tuple), default dtype float32."""
    return _random("standard_normal", shape, dtype, rng, requires_grad, "randn")


def rand(
    *shape: Any,
    dtype: npt.DTypeLike | None = None,
    rng: np.random.Generator | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform draws from [0, 1) of ``shape`` (ints or one tuple), default dtype float32."""
    return _random("random", shape, dtype, rng, requires_grad, "rand")


def _bernoulli_scaled(
    shape: tuple[int, ...], keep: float, dtype: np.dtype[Any], rng: np.random.Generator | None
) -> Tensor:
    """A dropout mask: ``1/keep`` with probability ``keep``, else 0 (no grad).

    Drawn fresh on every call and on every jit replay.
    """
    gen = _rng(rng, "dropout")
    scale = dtype.type(1.0 / keep)

    def draw() -> np.ndarray:
        kept = gen().random(shape, dtype=np.float32 if dtype == np.float32 else np.float64) < keep
        return np.multiply(kept, scale, dtype=dtype)

    return _draw(draw, False, "dropout")


def _like(t: Any, where: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{where}: expected a Tensor, got {type(t).__name__}")
    return t


def zeros_like(
    t: Tensor, dtype: npt.DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """Zeros of ``t``'s shape and (unless given) dtype."""
    t = _like(t, "zeros_like")
    return zeros(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: npt.DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``t``'s shape and (unless given) dtype."""
    t = _like(t, "ones_like")
    return ones(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def full_like(
    t: Tensor, fill_value: float, dtype: npt.DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """``fill_value`` in ``t``'s shape and (unless given) dtype."""
    t = _like(t, "full_like")
    return full(t.shape, fill_value, t.dtype if dtype is None else dtype, requires_grad)


def randn_like(
    t: Tensor,
    dtype: npt.DTypeLike | None = None,
    rng: np.random.Generator | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal draws of ``t``'s shape and (unless given) dtype."""
    t = _like(t, "randn_like")
    dt = t.dtype if dtype is None else dtype
    return randn(t.shape, dtype=dt, rng=rng, requires_grad=requires_grad)


def rand_like(
    t: Tensor,
    dtype: npt.DTypeLike | None = None,
    rng: np.random.Generator | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform [0, 1) draws of ``t``'s shape and (unless given) dtype."""
    t = _like(t, "rand_like")
    dt = t.dtype if dtype is None else dtype
    return rand(t.shape, dtype=dt, rng=rng, requires_grad=requires_grad)
