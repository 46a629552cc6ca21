"""[`Dropout`][tinygrad_rnn.nn.Dropout]: zero a random fraction ``p`` of the elements in training.

The mask is a random draw of the engine
([`tinygrad_rnn.creation`][tinygrad_rnn.creation]), so a function compiled with
[`jit`][tinygrad_rnn.jit.jit] draws a fresh mask on every replay, and it multiplies the input
with an ordinary ``*``: the gradient is the mask times the upstream gradient, by the
product's rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_rnn.creation import _bernoulli_scaled
from tinygrad_rnn.nn.module import Module, _check_torch_type
from tinygrad_rnn.tensor import Tensor

__all__ = ["Dropout"]


def _check_p(p: Any, where: str, name: str = "p") -> float:
    """A dropout probability as a float in ``[0, 1)``, or an error naming the argument."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a number, got {type(p).__name__}")
    if not 0 <= p < 1:
        raise ValueError(
            f"{where}: {name} must be in [0, 1) (the probability of zeroing an element), got {p}"
        )
    return float(p)


def _generator(rng: Any, where: str) -> np.random.Generator | None:
    """``rng`` for the masks: a Generator, or None for the package's generator."""
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{where}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}"
        )
    return rng


def _dropout(x: Tensor, p: float, rng: np.random.Generator | None) -> Tensor:
    """``x * mask`` with ``mask`` 0 (probability ``p``) or ``1/(1-p)``, drawn afresh.

    ``p`` is already checked to lie in ``(0, 1)``; ``mask`` has ``x``'s shape and dtype.
    """
    return x * _bernoulli_scaled(x.shape, 1.0 - p, x.dtype, rng)


class Dropout(Module):
    """Dropout (PyTorch's ``torch.nn.Dropout``): in training, each element is zeroed with
    probability ``p`` and the others are scaled by ``1/(1-p)``; in eval, the identity.

    Shapes: ``x (*) -> (*)``, any shape, the input's dtype. A fresh mask is drawn on
    every call, also on every replay of a function compiled with
    [`jit`][tinygrad_rnn.jit.jit]. Since the expected value of each output element is its
    input, nothing needs rescaling at eval time
    ([`Module.eval`][tinygrad_rnn.nn.Module.eval]).

    Args:
        p: the probability of zeroing an element, ``0 <= p < 1``.
        rng: a ``numpy.random.Generator`` the masks are drawn from (for reproducible
            masks); None (the default): the package's generator, which
            [`manual_seed`][tinygrad_rnn.creation.manual_seed] resets.

    Raises:
        ValueError: ``p`` outside ``[0, 1)``.
        TypeError: ``p`` is not a number, or ``rng`` is not a Generator.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.p = _check_p(p, "Dropout")
        self._rng = _generator(rng, "Dropout")

    def forward(self, x: Any) -> Tensor:
        """``x`` with dropout in training mode; ``x`` itself in eval mode or with ``p = 0``.

        Args:
            x: a floating-point Tensor (an array is wrapped, without grad).

        Raises:
            TypeError: ``x`` is not floating point.
        """
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.dtype.kind != "f":
            raise TypeError(f"Dropout: input must be floating point, got dtype {x.dtype}")
        if not self.training or self.p == 0:
            return x
        return _dropout(x, self.p, self._rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    @classmethod
    def from_torch(cls, torch_module: Any) -> Dropout:
        """A Dropout with ``torch_module``'s ``p`` and training mode (``inplace`` changes only
        torch's memory use, not the result)."""
        _check_torch_type(torch_module, cls)
        m = cls(torch_module.p)
        m.train(torch_module.training)
        return m
