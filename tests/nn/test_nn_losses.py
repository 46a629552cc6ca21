"""Loss modules: values against numpy, per-step masks for sequences, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn

T, B, K = 4, 3, 5


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


@pytest.fixture
def seq() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((T, B, K))
    targets = rng.integers(0, K, (T, B))
    mask = (rng.random((T, B)) < 0.6).astype(float)
    mask[0, 0] = 1.0
    return logits, targets, mask


def test_cross_entropy_per_step_mask(seq: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    logits, targets, mask = seq
    per = -np.take_along_axis(log_softmax(logits), targets[..., None], axis=-1)[..., 0]
    x = tg.Tensor(logits, requires_grad=True)
    loss = nn.CrossEntropyLoss()(x, targets, mask=mask)
    np.testing.assert_allclose(loss.item(), (per * mask).sum() / mask.sum(), rtol=1e-13)
    loss.backward()
    assert x.grad is not None
    # Steps with mask 0 get no gradient; the others get (softmax - onehot) / Σ mask.
    onehot = np.eye(K)[targets]
    expected = (np.exp(log_softmax(logits)) - onehot) * mask[..., None] / mask.sum()
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12, atol=1e-15)
    summed = nn.CrossEntropyLoss(reduction="sum")(logits, targets, mask=mask)
    np.testing.assert_allclose(summed.item(), (per * mask).sum(), rtol=1e-13)
    none = nn.CrossEntropyLoss(reduction="none")(logits, targets)
    np.testing.assert_allclose(none.data, per, rtol=1e-13)


def test_cross_entropy_class_axis() -> None:
    rng = np.random.default_rng(1)
    logits, targets = rng.standard_normal((2, K, 3)), rng.integers(0, K, (2, 3))
    a = nn.CrossEntropyLoss(axis=1)(logits, targets)
    b = nn.CrossEntropyLoss()(np.moveaxis(logits, 1, -1), targets)
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-13)


def test_mse_per_step_mask_is_broadcast(seq: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    logits, _, mask = seq
    target = np.zeros_like(logits)
    x = tg.Tensor(logits, requires_grad=True)
    loss = nn.MSELoss()(x, target, mask=mask)
    per = logits**2 * mask[..., None]
    np.testing.assert_allclose(loss.item(), per.sum() / (mask.sum() * K), rtol=1e-13)
    loss.backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.data, 2 * logits * mask[..., None] / (mask.sum() * K))
    full = nn.MSELoss(reduction="sum")(
        logits, target, mask=np.broadcast_to(mask[..., None], per.shape)
    )
    np.testing.assert_allclose(full.item(), per.sum(), rtol=1e-13)


def test_bce_with_logits(seq: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    logits, _, mask = seq
    y = (np.random.default_rng(2).random(logits.shape) < 0.5).astype(float)
    p = 1 / (1 + np.exp(-logits))
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    loss = nn.BCEWithLogitsLoss(reduction="sum")(logits, y, mask=mask)
    np.testing.assert_allclose(loss.item(), (per * mask[..., None]).sum(), rtol=1e-12)
    x = tg.Tensor(logits, requires_grad=True)
    nn.BCEWithLogitsLoss(reduction="sum")(x, y).backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.data, p - y, rtol=1e-12, atol=1e-15)


def test_losses_gradcheck(seq: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    logits, targets, mask = seq
    x = tg.Tensor(logits, requires_grad=True)
    assert tg.gradcheck(lambda x: nn.CrossEntropyLoss()(x, targets, mask=mask), [x])
    assert tg.gradcheck(lambda x: nn.MSELoss()(x, np.ones_like(logits), mask=mask), [x])
    assert tg.gradcheck(lambda x: nn.BCEWithLogitsLoss()(x, np.ones_like(logits) / 2), [x])


def test_loss_errors(seq: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    logits, targets, _ = seq
    with pytest.raises(ValueError, match="MSELoss: reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction"):
        nn.CrossEntropyLoss(reduction="max")
    with pytest.raises(ValueError, match=r"MSELoss: mask has shape \(3, 4\)"):
        nn.MSELoss()(logits, logits, mask=np.ones((B, T)))
    with pytest.raises(ValueError, match="mask"):
        nn.CrossEntropyLoss()(logits, targets, mask=np.ones((T, B, K)))
    with pytest.raises(ValueError, match="mask selects no element"):
        nn.CrossEntropyLoss()(logits, targets, mask=np.zeros((T, B)))
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"
