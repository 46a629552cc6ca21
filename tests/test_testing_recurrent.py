"""The recurrent part of ``tinygrad_rnn.testing``: strategies and ``check_cell_gradients``.

Each strategy's promise is asserted on every drawn example, and ``hypothesis.find`` shows
that the edges of what it promises are reached (it is not over-cautious). The cell check
must pass for the library's cells and for a user's gated cell, and must FAIL (raise) for a
cell whose gradient is wrong: a Primitive with a wrong rule, a ``.detach()`` on the recurrent
path, numpy arithmetic on ``.data``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.autograd import Primitive
from tinygrad_rnn.testing import (
    RNNSizes,
    check_cell_gradients,
    lengths,
    masks,
    rnn_sizes,
    sequences,
)

Tensor = tg.Tensor


# ---------------------------------------------------------------------------- rnn_sizes
@given(data=st.data(), lo=st.integers(1, 3), extra=st.integers(0, 3))
def test_rnn_sizes_lie_within_their_bounds(data: st.DataObject, lo: int, extra: int) -> None:
    s = data.draw(
        rnn_sizes(
            min_seq_len=lo,
            max_seq_len=lo + extra,
            min_batch=lo,
            max_batch=lo + 1,
            min_input_size=1,
            max_input_size=lo + extra,
            min_hidden_size=lo,
            max_hidden_size=lo + extra,
        )
    )
    assert isinstance(s, RNNSizes) and all(type(v) is int for v in s)
    assert lo <= s.seq_len <= lo + extra and lo <= s.batch <= lo + 1
    assert 1 <= s.input_size <= lo + extra and lo <= s.hidden_size <= lo + extra


def test_rnn_sizes_reach_their_edges() -> None:
    strat = rnn_sizes()
    find(strat, lambda s: s.seq_len == 1 and s.batch == 1)  # a single step of one sequence
    find(strat, lambda s: s == RNNSizes(5, 3, 4, 4))
    find(strat, lambda s: s.input_size != s.hidden_size)


@pytest.mark.parametrize(
    "kwargs", [{"min_seq_len": 0}, {"min_batch": 3, "max_batch": 2}, {"max_hidden_size": 0}]
)
def test_rnn_sizes_reject_impossible_bounds(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidArgument, match="rnn_sizes: need 1 <= min_"):
        rnn_sizes(**kwargs)


# ---------------------------------------------------------------------------- sequences
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_sequences_have_the_promised_shape_dtype_and_values(
    dtype: Any, data: st.DataObject
) -> None:
    s = data.draw(rnn_sizes())
    xs = data.draw(sequences(s.seq_len, s.batch, s.input_size, dtype=dtype))
    assert isinstance(xs, np.ndarray) and xs.dtype == dtype
    assert xs.shape == (s.seq_len, s.batch, s.input_size)
    assert np.all(np.isfinite(xs)) and np.all(np.abs(xs) <= 1.0)


@given(
    sequences(st.integers(2, 4), None, 3, min_value=0.5, max_value=2.0, avoid=(1.0,)),
)
def test_sequences_unbatched_from_strategies_with_float_array_options(xs: np.ndarray) -> None:
    assert xs.ndim == 2 and 2 <= xs.shape[0] <= 4 and xs.shape[1] == 3
    assert np.all((xs >= 0.5) & (xs <= 2.0)) and np.all(np.abs(xs - 1.0) >= 1e-3)


def test_sequences_reach_the_bounds_and_reject_bad_sizes() -> None:
    find(sequences(1, 1, 1), lambda a: a[0, 0, 0] == 1.0)
    find(sequences(1, 1, 1), lambda a: a[0, 0, 0] == -1.0)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(InvalidArgument, match="sequences: seq_len must be an int >= 1"):
            sequences(bad, 2, 3)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ lengths
@pytest.mark.parametrize("ordered", [False, True])
@given(data=st.data(), batch=st.integers(1, 6), max_len=st.integers(1, 7))
def test_lengths_lie_in_range_and_are_sorted_if_asked(
    ordered: bool, data: st.DataObject, batch: int, max_len: int
) -> None:
    min_len = data.draw(st.integers(0, max_len))
    n = data.draw(lengths(batch, max_len, min_len=min_len, sorted=ordered))
    assert isinstance(n, np.ndarray) and n.dtype == np.int64 and n.shape == (batch,)
    assert np.all((n >= min_len) & (n <= max_len))
    if ordered:
        assert np.all(np.diff(n) <= 0)  # non-increasing, as enforce_sorted=True wants


def test_lengths_reach_their_edges() -> None:
    find(lengths(3, 5), lambda n: np.any(np.diff(n) > 0))  # unsorted unless asked
    find(lengths(3, 5, sorted=True), lambda n: n[0] == 5 and n[-1] == 1)
    find(lengths(4, 4, sorted=True), lambda n: len(set(n.tolist())) < len(n))  # ties occur
    find(lengths(st.integers(1, 4), st.integers(2, 6)), lambda n: len(n) == 4 and n.max() == 6)
    find(lengths(2, 3, min_len=0), lambda n: 0 in n)


def test_lengths_reject_impossible_requests() -> None:
    with pytest.raises(InvalidArgument, match="lengths: min_len must be an int >= 0"):
        lengths(2, 3, min_len=-1)
    with pytest.raises(InvalidArgument, match="lengths: batch must be an int >= 1"):
        lengths(0, 3)
    with pytest.raises(InvalidArgument, match="max_len=2 is smaller than min_len=3"):
        find(lengths(2, 2, min_len=3), lambda n: True)


# -------------------------------------------------------------------------------- masks
@pytest.mark.parametrize("prefix", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.bool_])
@given(data=st.data(), seq_len=st.integers(1, 6), batch=st.integers(1, 4))
def test_masks_are_0_1_with_a_one(
    prefix: bool, dtype: Any, data: st.DataObject, seq_len: int, batch: int
) -> None:
    m = data.draw(masks(seq_len, batch, dtype=dtype, prefix=prefix))
    assert m.shape == (seq_len, batch) and m.dtype == dtype
    assert set(np.unique(m.astype(np.float64))) <= {0.0, 1.0}
    assert m.astype(bool).any()  # a mean over the mask is defined
    if prefix:  # every column: ones for its steps, then zeros; at least one step each
        steps = m.astype(bool).sum(axis=0)
        assert np.all(steps >= 1)
        np.testing.assert_array_equal(m.astype(bool), np.arange(seq_len)[:, None] < steps)


def test_masks_reach_every_kind_of_pattern() -> None:
    anything = masks(4, 3)
    find(anything, lambda m: m.sum() == 1)  # a single step with a loss (many-to-one)
    find(anything, lambda m: m.all())
    find(anything, lambda m: np.any(np.diff(m, axis=0) > 0))  # a gap before a labelled step
    find(anything, lambda m: not m[:, 0].any())  # a sequence with no loss at all
    padded = masks(4, 3, prefix=True)
    find(padded, lambda m: m.all())
    find(padded, lambda m: len(set(m.sum(axis=0).tolist())) == 3)  # three different lengths
    with pytest.raises(InvalidArgument, match="masks: dtype must be"):
        masks(2, 2, dtype=np.complex128)


def test_masks_work_as_the_mask_of_a_loss() -> None:
    m = find(masks(3, 2, prefix=True), lambda m: m.sum() == 4)
    logits, targets = np.zeros((3, 2, 5)), np.zeros((3, 2), dtype=int)
    assert F.cross_entropy(logits, targets, mask=m).item() == pytest.approx(np.log(5))


# ------------------------------------------------------------------- check_cell_gradients
CELLS = {"RNNCell": nn.RNNCell, "LSTMCell": nn.LSTMCell, "GRUCell": nn.GRUCell}
SMALL = rnn_sizes(max_seq_len=4, max_batch=2, max_input_size=3, max_hidden_size=3)


def initial_state(kind: str, batch: int, hidden: int, rng: np.random.Generator) -> Any:
    h = rng.uniform(-1, 1, (batch, hidden))
    return (h, rng.uniform(-1, 1, (batch, hidden))) if kind == "LSTMCell" else h


@settings(max_examples=6)
@pytest.mark.parametrize("kind", sorted(CELLS))
@given(data=st.data())
def test_the_librarys_cells_pass(kind: str, data: st.DataObject) -> None:
    s = data.draw(SMALL)
    xs = data.draw(sequences(s.seq_len, s.batch, s.input_size))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    cell = CELLS[kind](s.input_size, s.hidden_size, dtype=np.float64, rng=rng)
    state0 = initial_state(kind, s.batch, s.hidden_size, rng)
    assert check_cell_gradients(cell, xs, state0=state0)
    assert check_cell_gradients(cell, xs)  # the cell's zero state, parameters found by itself


def make_gated_cell(d: int, h: int, rng: np.random.Generator) -> tuple[Any, list[Tensor]]:
    """A user's minimal gated cell (not in the library), written with elementary ops."""
    w = Tensor(rng.standard_normal((d + h, 2 * h)) * 0.5, requires_grad=True, name="w")
    b = Tensor(rng.standard_normal(2 * h) * 0.1, requires_grad=True, name="b")

    def cell(x: Tensor, state: Any) -> Tensor:
        hidden = state if state is not None else Tensor(np.zeros((x.shape[0], h)))
        z = tg.concat([x, hidden], axis=1) @ w + b
        gate, candidate = z[:, :h].sigmoid(), z[:, h:].tanh()
        return gate * hidden + (1 - gate) * candidate

    return cell, [w, b]


@settings(max_examples=6)
@given(data=st.data())
def test_a_users_gated_cell_passes(data: st.DataObject) -> None:
    s = data.draw(SMALL)
    xs = data.draw(sequences(s.seq_len, s.batch, s.input_size))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    cell, params = make_gated_cell(s.input_size, s.hidden_size, rng)
    h0 = rng.uniform(-1, 1, (s.batch, s.hidden_size))
    assert check_cell_gradients(cell, xs, params, state0=h0)


def test_a_custom_loss_over_the_states_with_a_mask() -> None:
    """A head and a masked cross-entropy instead of the default random weighted sum."""
    rng = np.random.default_rng(1)
    cell = nn.LSTMCell(3, 4, dtype=np.float64, rng=rng)
    head = nn.Linear(4, 5, dtype=np.float64, rng=rng)
    xs, ys = rng.uniform(-1, 1, (5, 2, 3)), rng.integers(0, 5, (5, 2))
    mask = find(masks(5, 2), lambda m: m.sum() == 4)

    def loss(states: list[Any]) -> Tensor:
        logits = head(tg.stack([h for h, _ in states]))
        return F.cross_entropy(logits, ys, mask=mask, label_smoothing=0.1)

    params = [*cell.parameters(), *head.parameters()]
    assert check_cell_gradients(cell, xs, params, state0=(np.zeros((2, 4)),) * 2, loss=loss)


def test_the_users_tensors_are_left_as_they_were() -> None:
    rng = np.random.default_rng(2)
    cell = nn.GRUCell(2, 3, dtype=np.float64, rng=rng)
    before = {n: p.data.copy() for n, p in cell.named_parameters()}
    arrays = {n: p.data for n, p in cell.named_parameters()}
    xs = Tensor(rng.uniform(-1, 1, (3, 2, 2)), requires_grad=True)
    x_before, h0 = xs.data.copy(), rng.uniform(-1, 1, (2, 3))
    h_before = h0.copy()
    assert check_cell_gradients(cell, xs, state0=h0)
    for n, p in cell.named_parameters():
        assert p.data is arrays[n]  # the same array, bit for bit the same values
        np.testing.assert_array_equal(p.data, before[n])
        assert p.grad is None
    np.testing.assert_array_equal(xs.data, x_before)
    np.testing.assert_array_equal(h0, h_before)
    assert xs.grad is None


# -------------------------------------------------------- it catches a wrong gradient
WRONG_TANH = Primitive(
    "tanh", np.tanh, lambda g, ans, x: g * (1 - ans)
)  # (the true rule: g·(1 − y²))


def test_fails_for_a_primitive_with_a_wrong_rule() -> None:
    rng = np.random.default_rng(3)
    w = Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="W_x")
    u = Tensor(rng.standard_normal((3, 3)) * 0.5, requires_grad=True, name="W_h")

    def cell(x: Tensor, h: Tensor) -> Tensor:
        return WRONG_TANH(x @ w + h @ u)

    xs, h0 = rng.uniform(-1, 1, (4, 2, 2)), rng.uniform(-1, 1, (2, 3))
    with pytest.raises(AssertionError, match=r"check_cell_gradients: autograd's gradient "):
        check_cell_gradients(cell, xs, [w, u], state0=h0)
    # The same cell with the engine's own tanh passes: the wrong rule is what is caught.
    assert check_cell_gradients(lambda x, h: (x @ w + h @ u).tanh(), xs, [w, u], state0=h0)


def test_the_default_loss_weighs_every_step() -> None:
    """A wrong rule that shows at the first steps only is caught (not just the last state).

    The wrong tanh rule g·(1 − y) equals the true g·(1 − y²) at y = 0: the last step's input
    is 0, so only the earlier steps' gradients (of the inputs and of w) are wrong.
    """
    rng = np.random.default_rng(8)
    w = Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="w")
    xs = rng.uniform(-1, 1, (3, 1, 2))
    xs[-1] = 0.0

    def feedforward(x: Tensor, h: Any) -> Tensor:
        return WRONG_TANH(x @ w)

    with pytest.raises(AssertionError, match=r"the worst entry is (inputs|parameter 'w')"):
        check_cell_gradients(feedforward, xs, [w])


def test_fails_for_a_detach_on_the_recurrent_path_and_names_the_tensors() -> None:
    rng = np.random.default_rng(4)
    cell = nn.RNNCell(2, 3, dtype=np.float64, rng=rng)

    def truncated(x: Tensor, h: Any) -> Tensor:
        return cell(x, h.detach())  # BPTT cut at every step: only the last step's gradient

    xs, h0 = rng.uniform(-1, 1, (4, 2, 2)), rng.uniform(-1, 1, (2, 3))
    with pytest.raises(tg.GradcheckError) as info:
        check_cell_gradients(truncated, xs, cell.parameters(), state0=h0)
    message = str(info.value)
    assert "disagrees with central differences; the worst entry is " in message
    assert "analytic" in message and "numeric" in message and "at index (" in message
    for name in ("parameter 'weight_hh'", "state0", "inputs"):
        assert name in message  # every failing tensor is named, by the cell's own names
    assert check_cell_gradients(cell, xs, cell.parameters(), state0=h0)


def test_fails_for_numpy_arithmetic_on_data_inside_the_cell() -> None:
    rng = np.random.default_rng(5)
    cell, (w, b) = make_gated_cell(2, 3, rng)

    def leaky(x: Tensor, h: Tensor) -> Tensor:
        # The bias added as a numpy constant: no gradient reaches b.
        return cell(x, h) + Tensor(np.tanh(b.data[:3]))

    xs, h0 = rng.uniform(-1, 1, (3, 1, 2)), rng.uniform(-1, 1, (1, 3))
    with pytest.raises(AssertionError, match=r"the worst entry is parameter 'b' \(shape \(6,\)\)"):
        check_cell_gradients(leaky, xs, [w, b], state0=h0)


def test_fails_for_a_wrong_lstm_state_gradient() -> None:
    """The c_t path of an LSTM cut (only c_0's gradient is wrong): state0[1] is named."""
    rng = np.random.default_rng(6)
    cell = nn.LSTMCell(2, 3, dtype=np.float64, rng=rng)

    def cut_c(x: Tensor, state: Any) -> Any:
        h, c = state
        return cell(x, (h, c.detach() if c.is_leaf else c))

    xs, state0 = rng.uniform(-1, 1, (2, 1, 2)), (np.zeros((1, 3)), rng.uniform(-1, 1, (1, 3)))
    with pytest.raises(AssertionError, match=r"the worst entry is state0\[1\] \(shape \(1, 3\)\)"):
        check_cell_gradients(cut_c, xs, (), state0=state0)


# ---------------------------------------------------------------------------------- errors
def test_bad_arguments_are_named() -> None:
    rng = np.random.default_rng(7)
    cell = nn.RNNCell(2, 3, dtype=np.float64, rng=rng)
    xs = rng.uniform(-1, 1, (2, 1, 2))
    with pytest.raises(TypeError, match="check_cell_gradients: inputs have dtype float32"):
        check_cell_gradients(cell, xs.astype(np.float32))
    with pytest.raises(TypeError, match="parameter 'weight_ih' has dtype float32"):
        check_cell_gradients(nn.RNNCell(2, 3, rng=rng), xs)
    with pytest.raises(TypeError, match="state0 has dtype float32"):
        check_cell_gradients(cell, xs, state0=np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"T >= 1, got shape \(0, 1, 2\)"):
        check_cell_gradients(cell, np.zeros((0, 1, 2)))
    with pytest.raises(ValueError, match="check_cell_gradients: eps must be a positive"):
        check_cell_gradients(cell, xs, eps=0.0)
    with pytest.raises(TypeError, match="cell must be callable"):
        check_cell_gradients("cell", xs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must return a Tensor or a tuple of Tensors"):
        check_cell_gradients(lambda x, h: 1.0, xs, ())
    with pytest.raises(TypeError, match=r"params\[1\] is a str"):
        check_cell_gradients(cell, xs, [cell.weight_ih, "w"])
    with pytest.raises(ValueError, match="loss must return a Tensor with one element"):
        check_cell_gradients(cell, xs, loss=lambda states: tg.stack(states))
