"""What the packed-sequence test files share: comparison with torch, paired leaves, padding."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import tinygrad_rnn as tg

RTOL, ATOL = 1e-9, 1e-12


def close(ours: Any, theirs: Any, what: str) -> None:
    a = ours.data if isinstance(ours, tg.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch's {b.shape}"
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=what)


def flat(state: Any) -> list[Any]:
    return list(state) if isinstance(state, tuple) else [state]


def pair(x_np: np.ndarray) -> tuple[tg.Tensor, Any]:
    """The same data as our leaf and torch's leaf, both requiring grad."""
    return tg.Tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)


def padded_positions(lengths: list[int], T: int, batch_first: bool) -> np.ndarray:
    """Boolean ``(T, B)`` (or ``(B, T)``): True beyond each sequence's length."""
    beyond = np.arange(T)[:, None] >= np.asarray(lengths)[None, :]
    return beyond.T if batch_first else beyond
