"""Optimizers, learning-rate schedules and gradient clipping with PyTorch's API (numpy)."""

from tinygrad_rnn.optim.optimizers import (
    SGD,
    Adagrad,
    Adam,
    Optimizer,
    RMSProp,
    clip_grad_norm_,
    clip_grad_value_,
)

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "Optimizer",
    "RMSProp",
    "clip_grad_norm_",
    "clip_grad_value_",
]
