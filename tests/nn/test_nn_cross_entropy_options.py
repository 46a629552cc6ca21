"""``cross_entropy(..., ignore_index=, label_smoothing=)`` and ``nn.CrossEntropyLoss`` against
PyTorch 2.13 in float64 (same logits, same targets): every reduction, class-index targets of
shape (N,) and (N, d1, ...), outputs and gradients to 1e-9; with this library's ``mask=``;
under ``tinygrad_rnn.jit`` (the ignore mask must be recomputed from each call's targets);
finite differences; errors.

Layout: this library keeps the classes on the last axis by default (``axis=-1``), PyTorch on
axis 1. Each comparison runs ours both ways: on the logits with axis 1 moved last and the
default axis, and on torch's layout with ``axis=1``.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, ops
from tinygrad_rnn.testing import float_arrays

torch = pytest.importorskip("torch")

TOL = {"rtol": 1e-9, "atol": 1e-12}
REDUCTIONS = ("mean", "sum", "none")


def ours(
    logits: np.ndarray, targets: np.ndarray, axis: int, mask: Any = None, **kw: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Our loss and ∂(Σ loss)/∂logits, logits given in torch's layout (classes on axis 1)."""
    x = np.moveaxis(logits, 1, -1).copy() if axis == -1 else logits
    t = tg.Tensor(x, requires_grad=True)
    loss = F.cross_entropy(t, targets, axis=axis, mask=mask, **kw)
    (loss.sum() if loss.ndim else loss).backward()
    assert t.grad is not None
    g = t.grad.data
    return loss.data, (np.moveaxis(g, -1, 1) if axis == -1 else g)


def theirs(logits: np.ndarray, targets: np.ndarray, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    x = torch.tensor(logits, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(x, torch.from_numpy(targets), **kw)
    (loss.sum() if loss.ndim else loss).backward()
    assert x.grad is not None
    return loss.detach().numpy(), x.grad.numpy()


@st.composite
def problems(draw: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Logits in torch's layout (N, C, d1, ...) and targets (N, d1, ...) with some ignored.

    At least one target is counted (the all-ignored mean is tested on its own).
    """
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    logits = draw(float_arrays((n, c, *extra), min_value=-6, max_value=6))
    ignore_index = draw(st.sampled_from([-100, -1, 0, c - 1, 7]))
    flat = n * int(np.prod(extra, dtype=int))
    classes = draw(st.lists(st.integers(0, c - 1), min_size=flat, max_size=flat))
    ignored = draw(st.lists(st.booleans(), min_size=flat, max_size=flat))
    targets = np.where(ignored, ignore_index, classes).astype(np.int64).reshape((n, *extra))
    if not (targets != ignore_index).any():
        keep = draw(st.integers(0, flat - 1))
        if c == 1 and ignore_index == 0:  # the only class is ignored: nothing can count
            ignore_index = -100
        targets.reshape(-1)[keep] = next(k for k in range(c) if k != ignore_index)
    return logits, targets, ignore_index


@given(
    problem=problems(),
    reduction=st.sampled_from(REDUCTIONS),
    label_smoothing=st.sampled_from([0.0, 0.1, 0.37, 1.0]) | st.floats(0.0, 1.0),
)
def test_matches_torch(
    problem: tuple[np.ndarray, np.ndarray, int], reduction: str, label_smoothing: float
) -> None:
    logits, targets, ignore_index = problem
    kw = {"reduction": reduction, "ignore_index": ignore_index, "label_smoothing": label_smoothing}
    value_t, grad_t = theirs(logits, targets, **kw)
    for axis in (-1, 1):
        value, grad = ours(logits, targets, axis, **kw)  # type: ignore[arg-type]
        np.testing.assert_allclose(value, value_t, **TOL, err_msg=f"loss, axis={axis}")
        np.testing.assert_allclose(grad, grad_t, **TOL, err_msg=f"gradient, axis={axis}")


def test_mean_divides_by_the_number_of_counted_targets() -> None:
    """An identity besides torch: ignoring a target drops it from the sum and the count."""
    rng = np.random.default_rng(0)
    logits, targets = rng.standard_normal((6, 4)), np.array([0, 3, -100, 1, -100, 2])
    mean = F.cross_entropy(logits, targets).item()
    kept = targets != -100
    np.testing.assert_allclose(mean, F.cross_entropy(logits[kept], targets[kept]).item(), 1e-14)
    none = F.cross_entropy(logits, targets, reduction="none").data
    np.testing.assert_array_equal(none[~kept], 0.0)


@given(problem=problems(), reduction=st.sampled_from(REDUCTIONS), data=st.data())
def test_mask_and_ignore_index_together(
    problem: tuple[np.ndarray, np.ndarray, int], reduction: str, data: st.DataObject
) -> None:
    """``mask`` weighs the elements; 'mean' is Σ w·loss / Σ w with w = mask·(target counted).

    The oracle is torch's per-element loss, weighted and reduced in torch (its autograd
    gives the gradient).
    """
    logits, targets, ignore_index = problem
    mask = data.draw(float_arrays(targets.shape, min_value=0.0, max_value=2.0))
    counted = targets != ignore_index
    mask.reshape(-1)[np.argmax(counted.reshape(-1))] = 1.0  # something weighs
    x = torch.tensor(logits, requires_grad=True)
    per = torch.nn.functional.cross_entropy(
        x,
        torch.from_numpy(targets),
        reduction="none",
        ignore_index=ignore_index,
        label_smoothing=0.2,
    )
    m = torch.from_numpy(mask)
    expected = {
        "none": per * m,
        "sum": (per * m).sum(),
        "mean": (per * m).sum() / (m * torch.from_numpy(counted)).sum(),
    }[reduction]
    (expected.sum() if expected.ndim else expected).backward()
    for axis in (-1, 1):
        value, grad = ours(
            logits,
            targets,
            axis,
            mask=mask,
            reduction=reduction,
            ignore_index=ignore_index,
            label_smoothing=0.2,
        )
        np.testing.assert_allclose(value, expected.detach().numpy(), **TOL)
        np.testing.assert_allclose(grad, x.grad.numpy(), **TOL)  # type: ignore[union-attr]


def test_a_leading_mask_with_ignore_index() -> None:
    """A per-step (T,) mask on (T, B) targets, some ignored: the same as the full mask."""
    rng = np.random.default_rng(3)
    logits, targets = rng.standard_normal((4, 3, 5)), rng.integers(0, 5, (4, 3))
    targets[1, 2] = targets[3, 0] = -100
    step = np.array([1.0, 0.0, 1.0, 1.0])
    a = F.cross_entropy(logits, targets, mask=step, label_smoothing=0.1)
    b = F.cross_entropy(
        logits, targets, mask=np.broadcast_to(step[:, None], (4, 3)), label_smoothing=0.1
    )
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-15)


def test_all_ignored_mean_is_nan_with_zero_gradient_as_in_torch() -> None:
    logits, targets = np.random.default_rng(1).standard_normal((3, 4)), np.full(3, -100)
    value_t, grad_t = theirs(logits, targets, label_smoothing=0.3)
    assert np.isnan(value_t) and not grad_t.any()
    with pytest.warns(RuntimeWarning, match="invalid value"):
        value, grad = ours(logits[:, :, None], targets[:, None], 1, label_smoothing=0.3)
    assert np.isnan(value)
    np.testing.assert_array_equal(grad, grad_t[:, :, None])
    assert F.cross_entropy(logits, targets, reduction="sum").item() == 0.0


def test_jit_recomputes_the_ignore_mask_from_each_calls_targets() -> None:
    """The targets' ignored positions move between calls of one traced program."""
    rng = np.random.default_rng(0)
    T, B, D, H, K = 5, 3, 2, 4, 3
    lstm = nn.LSTM(D, H, dtype=np.float64, rng=rng)
    head = nn.Linear(H, K, dtype=np.float64, rng=rng)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.25)
    params = [*lstm.parameters(), *head.parameters()]

    def step(x: Any, y: Any, mask: Any) -> Any:
        loss = loss_fn(head(lstm(x)[0]), y, mask=mask)
        loss.backward()
        return loss

    jitted = tg.jit(step)
    x = rng.standard_normal((T, B, D))
    for call in range(3):
        y = rng.integers(1, K, (T, B))
        y[rng.random((T, B)) < 0.4] = 0  # ignored, at new positions on every call
        y[call, 0] = 1  # at least one counted target
        mask = (rng.random((T, B)) < 0.8).astype(np.float64)
        mask[call, 0] = 1.0
        for p in params:
            p.grad = None
        eager = step(x, y, mask).item()
        eager_grads = [p.grad.data.copy() for p in params]  # type: ignore[union-attr]
        for p in params:
            p.grad = None
        y_before, mask_before = y.copy(), mask.copy()
        got = jitted(x, y, mask).item()
        np.testing.assert_array_equal(y, y_before)  # the caller's arrays are left as they were
        np.testing.assert_array_equal(mask, mask_before)
        np.testing.assert_allclose(got, eager, rtol=1e-12, err_msg=f"call {call}")
        for p, g in zip(params, eager_grads):
            np.testing.assert_allclose(p.grad.data, g, rtol=1e-10, atol=1e-14)  # type: ignore[union-attr]
    assert len(jitted.programs) == 1  # one trace, replayed with new targets and masks


def test_jit_with_int32_targets_and_default_ignore_index() -> None:
    rng = np.random.default_rng(5)
    x = tg.Tensor(rng.standard_normal((6, 4)), requires_grad=True)

    @tg.jit
    def loss_of(x: Any, y: Any) -> Any:
        return F.cross_entropy(x, y)

    for ignored in ([0, 1], [4, 5, 2], [3]):
        y = rng.integers(0, 4, 6).astype(np.int32)
        y[ignored] = -100
        np.testing.assert_allclose(loss_of(x, y).item(), F.cross_entropy(x, y).item(), rtol=1e-13)


def test_finite_differences() -> None:
    rng = np.random.default_rng(2)
    logits = tg.Tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    targets = np.array([[0, -100], [2, 1], [-100, -100], [1, 0]])
    mask = np.array([[1.0, 1.0], [0.5, 1.0], [1.0, 1.0], [0.0, 2.0]])

    def fn(t: tg.Tensor) -> tg.Tensor:
        return F.cross_entropy(t, targets, axis=1, mask=mask, label_smoothing=0.3)

    assert tg.gradcheck(fn, [logits])
    assert tg.gradgradcheck(fn, [logits])


def test_float32_stays_float32() -> None:
    x = tg.Tensor(np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 1e4]], dtype=np.float32), True)
    loss = F.cross_entropy(x, np.array([2, -100]), mask=np.array([1.0, 0.5]), label_smoothing=0.1)
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad is not None and x.grad.dtype == np.float32


def test_unsigned_targets() -> None:
    rng = np.random.default_rng(4)
    logits, targets = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    a = F.cross_entropy(logits, targets.astype(np.uint8), ignore_index=2)
    np.testing.assert_allclose(a.item(), F.cross_entropy(logits, targets, ignore_index=2).item())


# ------------------------------------------------------------------------- the module
def test_module_from_torch_carries_ignore_index_and_label_smoothing() -> None:
    rng = np.random.default_rng(7)
    logits, targets = rng.standard_normal((3, 4, 5)), rng.integers(0, 4, (3, 5))
    targets[0, 1] = targets[2, 4] = 2
    for reduction in REDUCTIONS:
        ce_t = torch.nn.CrossEntropyLoss(reduction=reduction, ignore_index=2, label_smoothing=0.15)
        ce = nn.module_from_torch(ce_t)
        assert isinstance(ce, nn.CrossEntropyLoss)
        assert (ce.axis, ce.ignore_index, ce.label_smoothing) == (1, 2, 0.15)
        np.testing.assert_allclose(
            ce(logits, targets).data,
            ce_t(torch.from_numpy(logits), torch.from_numpy(targets)).numpy(),
            **TOL,
        )
    with pytest.raises(ValueError, match=r"CrossEntropyLoss\.from_torch: weight"):
        nn.CrossEntropyLoss.from_torch(torch.nn.CrossEntropyLoss(weight=torch.ones(4)))


def test_module_equals_the_function_and_shows_its_options() -> None:
    rng = np.random.default_rng(8)
    logits, targets = rng.standard_normal((4, 2, 3)), rng.integers(0, 3, (4, 2))
    targets[0, 0] = 1
    module = nn.CrossEntropyLoss(reduction="sum", ignore_index=1, label_smoothing=0.5)
    expected = F.cross_entropy(
        logits, targets, reduction="sum", ignore_index=1, label_smoothing=0.5
    )
    assert module(logits, targets).item() == expected.item()
    assert repr(module) == (
        "CrossEntropyLoss(reduction='sum', ignore_index=1, label_smoothing=0.5)"
    )
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"label_smoothing": -0.1}, ValueError, r"label_smoothing must lie in \[0, 1\], got -0\.1"),
        ({"label_smoothing": 1.5}, ValueError, r"label_smoothing must lie in \[0, 1\], got 1\.5"),
        ({"label_smoothing": float("nan")}, ValueError, "label_smoothing must lie in"),
        ({"label_smoothing": "0.1"}, TypeError, "label_smoothing must be a number.*str"),
        ({"ignore_index": 1.5}, TypeError, "ignore_index must be an int, got float 1.5"),
        ({"ignore_index": True}, TypeError, "ignore_index must be an int, got bool"),
        ({"ignore_index": None}, TypeError, "ignore_index must be an int, got NoneType"),
        ({"ignore_index": 2**70}, ValueError, "ignore_index=.* does not fit in int64"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match="cross_entropy: " + message):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), **kwargs)
    with pytest.raises(error, match="CrossEntropyLoss: " + message):
        nn.CrossEntropyLoss(**kwargs)


@pytest.mark.parametrize(
    ("targets", "ignore_index", "shown"),
    [
        ([0, 3, -100], -100, "got values in [0, 3] (ignore_index=-100 aside): 3 at index (1,)"),
        ([-1, 0], -100, "got values in [-1, 0] (ignore_index=-100 aside): -1 at index (0,)"),
        ([-100, 0], 0, "got values in [-100, -100] (ignore_index=0 aside): -100 at index (0,)"),
    ],
)
def test_targets_out_of_range_are_named(targets: list[int], ignore_index: int, shown: str) -> None:
    message = re.escape("cross_entropy: targets must lie in [0, 3), " + shown)
    logits = np.zeros((len(targets), 3))
    with pytest.raises(IndexError, match=message):
        F.cross_entropy(logits, np.array(targets), ignore_index=ignore_index)


def test_targets_equal_to_ignore_index_are_in_range() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.cross_entropy(np.zeros((2, 3)), np.array([-7, 1]), ignore_index=-7)
        F.cross_entropy(np.zeros((2, 3)), np.array([9, 1]), ignore_index=9)


# ---------------------------------------------------------------------- the astype op
@settings(max_examples=10)
@given(x=float_arrays((3, 2)))
def test_astype_derivatives(x: np.ndarray) -> None:
    t = tg.Tensor(x, requires_grad=True)
    assert tg.gradcheck(lambda t: ops.astype(t, np.float64) * t, [t])
    assert tg.gradgradcheck(lambda t: ops.astype(t, np.float64) * t, [t])


def test_astype_gradient_goes_back_in_the_inputs_dtype() -> None:
    t = tg.Tensor(np.array([1.5, -2.0], dtype=np.float32), requires_grad=True)
    y = ops.astype(t, np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert t.grad is not None and t.grad.dtype == np.float32
    np.testing.assert_array_equal(t.grad.data, [3.0, -4.0])
    assert ops.astype(np.array([0, 2, -1]), np.bool_).tolist() == [False, True, True]
    with pytest.raises(TypeError, match="astype: dtype must be boolean, integer or floating"):
        ops.astype(t, np.complex128)
    with pytest.raises(TypeError, match="astype: dtype must be a numpy dtype"):
        ops.astype(t, "not a dtype")
