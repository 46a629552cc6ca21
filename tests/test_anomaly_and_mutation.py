"""Anomaly mode (NaN/Inf hunting) and protection of saved arrays against mutation."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim
from tinygrad_rnn.tensor import Tensor


def test_anomaly_names_the_first_forward_op_that_makes_nan() -> None:
    x = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    with tg.detect_anomaly():
        y = x * 2
        with pytest.raises(tg.AnomalyError, match=r"log: the forward pass produced NaN/Inf") as e:
            y.log()  # log(-2) is NaN
    assert "input shapes (2,)" in str(e.value)
    assert "all its inputs were finite" in str(e.value)
    assert "test_anomaly_and_mutation.py" in str(e.value)  # the user's line, not ours


def test_anomaly_points_to_the_line_that_created_the_op_in_backward() -> None:
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with tg.detect_anomaly():
        y = x**0.5  # finite forward; d/dx sqrt(x) at 0 is Inf
        with pytest.raises(tg.AnomalyError, match=r"pow: the backward pass produced NaN/Inf") as e:
            y.sum().backward()
    assert "y = x**0.5" in str(e.value)


def test_without_anomaly_mode_nan_passes_silently() -> None:
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with np.errstate(divide="ignore"):
        (x**0.5).sum().backward()
    assert np.isinf(x.grad.data[0])
    assert not tg.is_anomaly_enabled()


def test_anomaly_mode_reports_nan_coming_from_the_data() -> None:
    x = Tensor(np.array([np.nan, 1.0]))
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"input\(s\) \[0\] already"):
        _ = x * 2


def test_writing_into_a_saved_parameter_before_backward_is_refused() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    loss = (w * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        w.data[...] = 0.0
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, 2 * np.ones(3))
    w.data[...] = 0.0  # after backward the array is the user's again
    assert np.all(w.data == 0)


def test_a_dropped_graph_releases_its_guard() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    loss = (w * 3).sum()
    del loss
    gc.collect()
    w.data += 1  # no graph needs the old values any more
    np.testing.assert_array_equal(w.data, 2 * np.ones(3))


def test_retained_graph_keeps_guarding_until_it_is_gone() -> None:
    w = Tensor(np.ones(2), requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(ValueError, match="read-only"):
        w.data *= 2
    del loss
    w.data *= 2


def test_optimizer_step_between_forward_and_backward_is_safe() -> None:
    """Optimizers assign new arrays: the graph keeps the values it was computed with, so
    the gradient is the gradient of the loss that was actually computed."""
    rng = np.random.default_rng(0)
    lin = nn.Linear(3, 2, dtype=np.float64, rng=rng)
    x = rng.standard_normal((4, 3))
    w_before = lin.weight.data.copy()
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(x).sum().backward()  # gives every parameter a gradient for the step
    loss = (lin(x) ** 2).sum()
    opt.step()  # changes the weights after the forward
    lin.zero_grad()
    loss.backward()
    out = x @ w_before.T + (lin.bias.data + 0.1 * 4)  # bias before the step
    expected = 2 * out.T @ x
    np.testing.assert_allclose(lin.weight.grad.data, expected, rtol=1e-12)


def test_input_data_tensors_are_guarded_too() -> None:
    x = Tensor(np.ones((2, 2)))
    w = Tensor(np.eye(2), requires_grad=True)
    loss = (x @ w).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.data[0, 0] = 5.0
    loss.backward()
    x.data[0, 0] = 5.0


def test_user_arrays_passed_as_constants_are_never_made_read_only() -> None:
    mask = np.ones(3)
    w = Tensor(np.ones(3), requires_grad=True)
    loss = (w * mask).sum()
    assert mask.flags.writeable  # the user's own array is not ours to lock
    loss.backward()
