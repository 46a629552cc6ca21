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

    Args:
        num_embeddings: the number of rows (e.g. the vocabulary size).
        embedding_dim: the length of each row.
        dtype: floating dtype of ``weight``.
        rng: ``np.random.Generator`` for the initialisation (default: a fresh one).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _positive(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive(embedding_dim, "embedding_dim", "Embedding")
        self.dtype = _check_float_dtype(dtype, "Embedding")
        rng = _check_rng(rng, "Embedding")
        shape = (self.num_embeddings, self.embedding_dim)
        self.weight = Parameter(rng.standard_normal(shape).astype(self.dtype))

    def forward(self, indices: Any) -> Tensor:
        """Integer ``indices (*S)`` -> ``(*S, embedding_dim)``."""
        return F.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"

    @classmethod
    def from_torch(cls, torch_module: Any) -> Embedding:
        """Copy a ``torch.nn.Embedding`` (no ``padding_idx``/``max_norm``: they change results)."""
        _check_torch_type(torch_module, cls)
        if torch_module.padding_idx is not None or torch_module.max_norm is not None:
            raise ValueError(
                "Embedding.from_torch: padding_idx and max_norm are not supported "
                "(they change the gradient or the forward pass)"
            )
        dtype = _torch_dtype(torch_module, "Embedding")
        m = cls(torch_module.num_embeddings, torch_module.embedding_dim, dtype=dtype)
        m.load_state_dict(_torch_state(torch_module))
        return m
