"""Feed-forward layers: [`Linear`][tinygrad_rnn.nn.Linear] and
[`Embedding`][tinygrad_rnn.nn.Embedding] (PyTorch layouts)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_rnn import functional as F
from tinygrad_rnn import ops
from tinygrad_rnn.nn.module import (
    Module,
    Parameter,
    _as_input,
    _check_float_dtype,
    _check_rng,
    _check_torch_type,
    _positive,
    _torch_dtype,
    _torch_state,
    _uniform,
)
from tinygrad_rnn.tensor import Tensor

__all__ = ["Embedding", "Linear"]


class Linear(Module):
    """Affine map ``y = x Wᵀ + b`` on the last axis.

    Shapes: ``x (..., in_features) -> y (..., out_features)``; ``weight``
    ``(out_features, in_features)`` and ``bias`` ``(out_features,)`` as in
    ``torch.nn.Linear``, both initialised from ``U(-1/√in, 1/√in)``.

    Args:
        in_features, out_features: the sizes of the last axis before and after.
        bias: whether to add ``bias``.
        dtype: floating dtype of the parameters (inputs must match).
        rng: ``np.random.Generator`` for the initialisation (default: a fresh one).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _positive(in_features, "in_features", "Linear")
        self.out_features = _positive(out_features, "out_features", "Linear")
        self.dtype = _check_float_dtype(dtype, "Linear")
        rng = _check_rng(rng, "Linear")
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = _uniform(rng, bound, (self.out_features, self.in_features), self.dtype)
        self.bias: Parameter | None = (
            _uniform(rng, bound, (self.out_features,), self.dtype) if bias else None
        )

    def forward(self, x: Any) -> Tensor:
        """``x (..., in) -> x Wᵀ + b (..., out)``."""
        x = _as_input(x, self.dtype, "Linear")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: input must have last dimension in_features={self.in_features}, "
                f"got shape {x.shape}"
            )
        if self.bias is None:
            return ops.linear(x, self.weight)
        return ops.linear(x, self.weight, self.bias)  # one op, one 2-D product over all rows

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )

    @classmethod
    def from_torch(cls, torch_module: Any) -> Linear:
        """Copy a ``torch.nn.Linear`` (weights, bias, dtype)."""
        _check_torch_type(torch_module, cls)
        dtype = _torch_dtype(torch_module, "Linear")
        m = cls(
            torch_module.in_features,
            torch_module.out_features,
            bias=torch_module.bias is not None,
            dtype=dtype,
        )
        m.load_state_dict(_torch_state(torch_module))
        return m


class Embedding(Module):
    """A lookup table: integer indices ``(*S)`` -> rows of ``weight`` ``(*S, embedding_dim)``.

    ``weight`` is ``(num_embeddings, embedding_dim)``, initialised from
    ``N(0, 1)`` like ``torch.nn.Embedding``. Equivalent to
    ``one_hot(indices) @ weight`` but without building the one-hot matrix; the
    gradient of a row picked several times is the sum over its uses.

    With ``padding_idx`` (PyTorch's semantics), that row of ``weight`` is initialised to
    zero and receives no gradient, so it stays the zero vector through training: use it
    for the padding positions of a batch of sequences of different lengths. The lookup
    multiplies each picked row by a constant 0/1 (0 where the index is ``padding_idx``),
    so the gradient rule of that multiplication is what keeps the row's gradient at
    zero. Its output at the padding positions is therefore always zero; PyTorch
    returns the row's current value, which is the same as long as nobody writes a
    non-zero padding row (``from_torch`` refuses one).

    Args:
        num_embeddings: the number of rows (e.g. the vocabulary size).
        embedding_dim: the length of each row.
        padding_idx: the padding row, in ``[-num_embeddings, num_embeddings)``; a negative
            value counts from the end and is stored normalised (``-1`` becomes
            ``num_embeddings - 1``), as in PyTorch. None (the default): no padding row.
        dtype: floating dtype of ``weight``.
        rng: ``np.random.Generator`` for the initialisation (default: a fresh one).

    Raises:
        ValueError: ``padding_idx`` outside ``[-num_embeddings, num_embeddings)``.
        TypeError: ``padding_idx`` is not an int.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _positive(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive(embedding_dim, "embedding_dim", "Embedding")
        self.padding_idx = _padding_index(padding_idx, self.num_embeddings)
        self.dtype = _check_float_dtype(dtype, "Embedding")
        rng = _check_rng(rng, "Embedding")
        shape = (self.num_embeddings, self.embedding_dim)
        weight = rng.standard_normal(shape).astype(self.dtype)
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0
        self.weight = Parameter(weight)

    def forward(self, indices: Any) -> Tensor:
        """Integer ``indices (*S)`` -> ``(*S, embedding_dim)``."""
        rows = F.embedding(indices, self.weight)
        if self.padding_idx is None:
            return rows
        # keep[v] = 0 for the padding row, 1 for every other: looked up with the same
        # indices (so under jit each call's indices pick the mask), then multiplied in.
        # The product's rule sends g·0 to the padding row: it never gets a gradient.
        keep = np.ones((self.num_embeddings, 1), dtype=self.weight.dtype)
        keep[self.padding_idx] = 0
        return rows * F.embedding(indices, Tensor._make(keep))

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"

    @classmethod
    def from_torch(cls, torch_module: Any) -> Embedding:
        """Copy a ``torch.nn.Embedding`` (sizes, ``padding_idx``, dtype, weight).

        Raises:
            ValueError: ``max_norm`` or ``scale_grad_by_freq`` is set (they change the
                forward pass or the gradient and are not implemented), or the padding
                row is not zero (here the padding positions always embed to zero).
        """
        _check_torch_type(torch_module, cls)
        if torch_module.max_norm is not None or torch_module.scale_grad_by_freq:
            raise ValueError(
                "Embedding.from_torch: max_norm and scale_grad_by_freq are not supported "
                "(they change the forward pass or the gradient)"
            )
        dtype = _torch_dtype(torch_module, "Embedding")
        m = cls(
            torch_module.num_embeddings,
            torch_module.embedding_dim,
            padding_idx=torch_module.padding_idx,
            dtype=dtype,
        )
        state = _torch_state(torch_module)
        if m.padding_idx is not None and np.any(state["weight"][m.padding_idx] != 0):
            raise ValueError(
                f"Embedding.from_torch: the padding row (padding_idx={m.padding_idx}) of the "
                "torch weight is not zero; here the padding positions always embed to zero"
            )
        m.load_state_dict(state)
        return m


def _padding_index(padding_idx: Any, num_embeddings: int) -> int | None:
    """``padding_idx`` checked and normalised to ``[0, num_embeddings)`` (None stays None)."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(
            f"Embedding: padding_idx must be an int or None, got {type(padding_idx).__name__}"
        )
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"Embedding: padding_idx must be in [-num_embeddings, num_embeddings) = "
            f"[{-num_embeddings}, {num_embeddings}) for num_embeddings={num_embeddings}, "
            f"got {padding_idx}"
        )
    return int(padding_idx) % num_embeddings
