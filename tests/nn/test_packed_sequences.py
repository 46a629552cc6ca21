"""Variable-length batches (``tinygrad_rnn.nn.utils.rnn``) against PyTorch 2.13, float64, 1e-9.

The oracle is ``torch.nn.utils.rnn`` and torch's own RNN/LSTM/GRU on packed input, with the
same weights (``from_torch``) and data: packed fields, padded values and every gradient
(the input's, the initial states' and each parameter's). Identities on top: a gradient at a
padded input position is exactly zero, and a packed layer gives each sequence what the layer
gives that sequence alone. Under ``tinygrad_rnn.jit`` the oracle is the eager call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
trnn = pytest.importorskip("torch.nn.utils.rnn")

from _packed_helpers import close, flat, padded_positions, pair  # noqa: E402

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402
from tinygrad_rnn.nn.utils.rnn import (  # noqa: E402
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
)


# ------------------------------------------------------------------ pack / pad
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_padded_sequence_matches_torch(batch_first: bool, enforce_sorted: bool) -> None:
    rng = np.random.default_rng(0)
    T, B = 6, 4
    lengths = [6, 4, 4, 1] if enforce_sorted else [2, 6, 1, 4]
    x_np = rng.standard_normal((B, T, 3) if batch_first else (T, B, 3))
    x, x_t = pair(x_np)
    ours = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    theirs = trnn.pack_padded_sequence(
        x_t, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted
    )
    close(ours.data, theirs.data, "data")
    np.testing.assert_array_equal(ours.batch_sizes, theirs.batch_sizes.numpy())
    for name in ("sorted_indices", "unsorted_indices"):
        mine, torch_field = getattr(ours, name), getattr(theirs, name)
        if torch_field is None:
            assert mine is None, name
        else:
            np.testing.assert_array_equal(mine, torch_field.numpy(), err_msg=name)
    w = rng.standard_normal(theirs.data.shape)
    (theirs.data * torch.tensor(w)).sum().backward()
    (ours.data * w).sum().backward()
    close(x.grad, x_t.grad, "input grad")
    beyond = padded_positions(lengths, T, batch_first)
    assert np.all(x.grad.data[beyond] == 0)


@pytest.mark.parametrize("total_length", [None, 8])
@pytest.mark.parametrize("padding_value", [0.0, -1.5, float("-inf")])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pad_packed_sequence_round_trip_matches_torch(
    batch_first: bool, padding_value: float, total_length: int | None
) -> None:
    rng = np.random.default_rng(1)
    T, B, lengths = 5, 3, [3, 5, 2]  # T is the longest: nothing is trimmed
    x_np = rng.standard_normal((B, T, 2) if batch_first else (T, B, 2))
    x, x_t = pair(x_np)
    kw: dict[str, Any] = {"batch_first": batch_first, "enforce_sorted": False}
    back, lens = pad_packed_sequence(
        pack_padded_sequence(x, lengths, **kw),
        batch_first=batch_first,
        padding_value=padding_value,
        total_length=total_length,
    )
    back_t, lens_t = trnn.pad_packed_sequence(
        trnn.pack_padded_sequence(x_t, lengths, **kw),
        batch_first=batch_first,
        padding_value=padding_value,
        total_length=total_length,
    )
    close(back, back_t, "padded")
    np.testing.assert_array_equal(lens, lens_t.numpy())
    assert lens.dtype == np.int64
    w = rng.standard_normal(back_t.shape)
    (back_t.masked_fill(torch.isinf(back_t), 0) * torch.tensor(w)).sum().backward()
    mask = np.isfinite(back.data)
    (tg.ops.where(mask, back, 0.0) * w).sum().backward()
    close(x.grad, x_t.grad, "input grad")


def test_pad_packed_sequence_drops_steps_no_sequence_has() -> None:
    """Padded to T = 6 but no sequence is longer than 4: padded back to 4 steps, as torch."""
    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((6, 2, 3))
    x, x_t = pair(x_np)
    back, _ = pad_packed_sequence(pack_padded_sequence(x, [4, 2]))
    back_t, _ = trnn.pad_packed_sequence(trnn.pack_padded_sequence(x_t, [4, 2]))
    close(back, back_t, "padded")
    back.sum().backward()
    back_t.sum().backward()
    close(x.grad, x_t.grad, "input grad")


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("feature", [(), (3,), (2, 3)], ids=str)
def test_pad_sequence_matches_torch(
    feature: tuple[int, ...], batch_first: bool, padding_side: str
) -> None:
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((n, *feature)) for n in (2, 5, 1, 5)]
    ours = [tg.Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = pad_sequence(ours, batch_first=batch_first, padding_value=0.25, padding_side=padding_side)
    out_t = trnn.pad_sequence(
        theirs, batch_first=batch_first, padding_value=0.25, padding_side=padding_side
    )
    close(out, out_t, "padded")
    w = rng.standard_normal(out_t.shape)
    (out_t * torch.tensor(w)).sum().backward()
    (out * w).sum().backward()
    for k, (a, b) in enumerate(zip(ours, theirs)):
        close(a.grad, b.grad, f"grad of sequence {k}")


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_sequence_matches_torch(enforce_sorted: bool) -> None:
    rng = np.random.default_rng(4)
    sizes = (5, 3, 3, 1) if enforce_sorted else (3, 5, 1, 4)
    arrays = [rng.standard_normal((n, 2)) for n in sizes]
    ours = [tg.Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    packed = pack_sequence(ours, enforce_sorted=enforce_sorted)
    packed_t = trnn.pack_sequence(theirs, enforce_sorted=enforce_sorted)
    close(packed.data, packed_t.data, "data")
    np.testing.assert_array_equal(packed.batch_sizes, packed_t.batch_sizes.numpy())
    w = rng.standard_normal(packed_t.data.shape)
    (packed_t.data * torch.tensor(w)).sum().backward()
    (packed.data * w).sum().backward()
    for k, (a, b) in enumerate(zip(ours, theirs)):
        close(a.grad, b.grad, f"grad of sequence {k}")


def test_packed_sequence_is_a_named_tuple_of_torch_fields() -> None:
    """Built from torch's four fields, it pads back as torch does, and gradients reach data."""
    rng = np.random.default_rng(5)
    x_t = torch.tensor(rng.standard_normal((4, 3, 2)))
    packed_t = trnn.pack_padded_sequence(x_t, [2, 4, 3], enforce_sorted=False)
    data, data_t = pair(packed_t.data.numpy())
    packed = PackedSequence(
        data,
        packed_t.batch_sizes.numpy(),
        packed_t.sorted_indices.numpy(),
        packed_t.unsorted_indices.numpy(),
    )
    assert packed._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    assert len(packed) == 4
    d, sizes, order, inverse = packed
    assert d is packed.data is packed[0] is data
    np.testing.assert_array_equal(sizes, packed_t.batch_sizes.numpy())
    np.testing.assert_array_equal(order, packed_t.sorted_indices.numpy())
    np.testing.assert_array_equal(inverse, packed_t.unsorted_indices.numpy())
    assert list(packed._asdict()) == list(packed._fields)
    assert repr(packed).startswith("PackedSequence(data=Tensor(")
    back, lengths = pad_packed_sequence(packed, batch_first=True, padding_value=7.0)
    back_t, lengths_t = trnn.pad_packed_sequence(
        trnn.PackedSequence(data_t, *packed_t[1:]), batch_first=True, padding_value=7.0
    )
    close(back, back_t, "padded")
    np.testing.assert_array_equal(lengths, lengths_t.numpy())
    w = rng.standard_normal(back_t.shape)
    (back_t * torch.tensor(w)).sum().backward()
    (back * w).sum().backward()
    close(data.grad, data_t.grad, "data grad")
    # unsorted_indices may be left out; sorted_indices=None means the batch is sorted.
    again = PackedSequence(data, packed_t.batch_sizes.numpy(), packed_t.sorted_indices.numpy())
    np.testing.assert_array_equal(again.unsorted_indices, packed_t.unsorted_indices.numpy())
    assert PackedSequence(data, [3, 3, 2, 1]).sorted_indices is None


def test_layout_arrays_are_read_only_and_inputs_are_untouched() -> None:
    x_np = np.random.default_rng(6).standard_normal((4, 3, 2))
    lengths = np.array([2, 4, 3])
    before_x, before_l = x_np.copy(), lengths.copy()
    packed = pack_padded_sequence(x_np, lengths, enforce_sorted=False)
    out, _ = nn.LSTM(2, 3, dtype=np.float64)(packed)
    pad_packed_sequence(out)
    np.testing.assert_array_equal(x_np, before_x)
    np.testing.assert_array_equal(lengths, before_l)
    for a in (packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices):
        assert a is not None and not a.flags.writeable
    _, returned = pad_packed_sequence(packed)
    returned[0] = 99  # the returned lengths are the caller's own copy
    assert pad_packed_sequence(packed)[1][0] == 2


# ------------------------------------------------------------------- layers
LAYER_CONFIGS = [
    {},
    {"bidirectional": True},
    {"num_layers": 2},
    {"batch_first": True},
    {"num_layers": 2, "bidirectional": True, "batch_first": True},
    {"bias": False, "bidirectional": True},
]


def run_both(
    name: str,
    config: dict[str, Any],
    lengths: list[int],
    T: int,
    D: int,
    H: int,
    enforce_sorted: bool,
    with_h0: bool,
    seed: int,
) -> None:
    """Our packed layer and torch's on the same weights and data: values and every grad."""
    kind = name.split("_")[0]
    extra = {"nonlinearity": "relu"} if name.endswith("relu") else {}
    torch.manual_seed(seed)
    tm = getattr(torch.nn, kind)(D, H, **config, **extra).double()
    ours = getattr(nn, kind).from_torch(tm)
    rng = np.random.default_rng(seed)
    B, batch_first = len(lengths), tm.batch_first
    x_np = rng.standard_normal((B, T, D) if batch_first else (T, B, D))
    x, x_t = pair(x_np)
    n = tm.num_layers * (2 if tm.bidirectional else 1)
    states = [pair(rng.standard_normal((n, B, H))) for _ in range(2 if kind == "LSTM" else 1)]
    hx = hx_t = None
    if with_h0:
        hx = tuple(s for s, _ in states) if kind == "LSTM" else states[0][0]
        hx_t = tuple(s for _, s in states) if kind == "LSTM" else states[0][1]

    kw = {"batch_first": batch_first, "enforce_sorted": enforce_sorted}
    out_t, final_t = tm(trnn.pack_padded_sequence(x_t, lengths, **kw), hx_t)
    out, final = ours(pack_padded_sequence(x, lengths, **kw), hx)
    assert isinstance(out, PackedSequence)
    close(out.data, out_t.data, "output data")
    np.testing.assert_array_equal(out.batch_sizes, out_t.batch_sizes.numpy())
    y_t, _ = trnn.pad_packed_sequence(out_t, batch_first=batch_first)
    y, _ = pad_packed_sequence(out, batch_first=batch_first)
    close(y, y_t, "output padded back")
    for k, (a, b) in enumerate(zip(flat(final), flat(final_t))):
        close(a, b, f"final state {k}")

    # Random weights on every output, so each output's backward is checked.
    outs_t, outs = [y_t, *flat(final_t)], [y, *flat(final)]
    weights = [rng.standard_normal(o.shape) for o in outs_t]
    sum((o * torch.tensor(w)).sum() for o, w in zip(outs_t, weights)).backward()
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    close(x.grad, x_t.grad, "input grad")
    beyond = padded_positions(lengths, T, batch_first)
    assert np.all(x.grad.data[beyond] == 0), "gradient at a padded input position"
    if with_h0:
        for k, (s, s_t) in enumerate(states):
            close(s.grad, s_t.grad, f"initial state grad {k}")
    torch_params = dict(tm.named_parameters())
    assert [p for p, _ in ours.named_parameters()] == list(torch_params)
    for pname, p in ours.named_parameters():
        close(p.grad, torch_params[pname].grad, pname)


@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=lambda c: ",".join(c) or "default")
@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN", "RNN_relu"])
def test_packed_layer_matches_torch(
    name: str, config: dict[str, Any], enforce_sorted: bool, with_h0: bool
) -> None:
    lengths = [5, 4, 2, 2, 1] if enforce_sorted else [2, 5, 1, 4, 2]
    run_both(name, config, lengths, 5, 3, 4, enforce_sorted, with_h0, seed=7)


@pytest.mark.parametrize(
    "lengths", [[3, 3, 3], [1, 1, 1], [1], [4], [1, 4, 1]], ids=lambda v: "-".join(map(str, v))
)
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_packed_layer_edge_lengths(name: str, lengths: list[int]) -> None:
    """All lengths equal (also to T or to 1), one sequence, steps only one sequence has."""
    T = max(lengths) + 1  # one step beyond the longest: trimmed by packing
    config = {"bidirectional": True, "num_layers": 2}
    run_both(name, config, lengths, T, 2, 3, enforce_sorted=False, with_h0=True, seed=8)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["LSTM", "GRU", "RNN"]),
    data=st.data(),
    T=st.integers(1, 5),
    D=st.integers(1, 3),
    H=st.integers(1, 3),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    enforce_sorted=st.booleans(),
    with_h0=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_packed_layer_matches_torch_on_random_batches(
    name: str,
    data: st.DataObject,
    T: int,
    D: int,
    H: int,
    layers: int,
    bidirectional: bool,
    batch_first: bool,
    enforce_sorted: bool,
    with_h0: bool,
    seed: int,
) -> None:
    lengths = data.draw(st.lists(st.integers(1, T), min_size=1, max_size=4), label="lengths")
    if enforce_sorted:
        lengths = sorted(lengths, reverse=True)
    config = {"num_layers": layers, "bidirectional": bidirectional, "batch_first": batch_first}
    run_both(name, config, lengths, T, D, H, enforce_sorted, with_h0, seed)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_each_sequence_gets_what_it_gets_alone(name: str) -> None:
    """Identity oracle (no torch): packed outputs and h_n equal the layer run per sequence."""
    rng = np.random.default_rng(9)
    layer = getattr(nn, name)(2, 3, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng)
    lengths, T = [3, 1, 4], 4
    x = rng.standard_normal((T, 3, 2))
    garbage = x.copy()
    garbage[np.arange(T)[:, None] >= np.asarray(lengths)[None, :]] = 1e6  # finite padding
    out, final = layer(pack_padded_sequence(garbage, lengths, enforce_sorted=False))
    y, _ = pad_packed_sequence(out)
    for b, n in enumerate(lengths):
        alone_out, alone_final = layer(x[:n, b])
        np.testing.assert_allclose(y.data[:n, b], alone_out.data, rtol=1e-12, atol=1e-14)
        assert np.all(y.data[n:, b] == 0)
        for a, s in zip(flat(final), flat(alone_final)):
            np.testing.assert_allclose(a.data[:, b], s.data, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_packed_layer_keeps_float32(name: str) -> None:
    layer = getattr(nn, name)(2, 3, bidirectional=True, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 2, 2)).astype(np.float32)
    packed = pack_padded_sequence(x, [4, 2])
    assert packed.data.dtype == np.float32
    out, final = layer(packed)
    assert out.data.dtype == np.float32
    assert all(s.dtype == np.float32 for s in flat(final))
    assert pad_packed_sequence(out, padding_value=-1.0)[0].dtype == np.float32


def test_integer_sequences_pack_like_torch() -> None:
    """Targets are packed to line up with a packed output: integers stay integers."""
    targets = np.array([[1, 2, 3, 4], [5, 6, 0, 0], [7, 8, 9, 0]])
    ours = pack_padded_sequence(targets, [4, 2, 3], batch_first=True, enforce_sorted=False)
    theirs = trnn.pack_padded_sequence(
        torch.tensor(targets), [4, 2, 3], batch_first=True, enforce_sorted=False
    )
    np.testing.assert_array_equal(ours.data.data, theirs.data.numpy())
    assert ours.data.dtype == np.int64
    back, _ = pad_packed_sequence(ours, batch_first=True, padding_value=-1)
    np.testing.assert_array_equal(
        back.data, trnn.pad_packed_sequence(theirs, batch_first=True, padding_value=-1)[0]
    )


# ------------------------------------------------------------------------ jit
def _jit_step(lstm: Any, T: int) -> Any:
    def step(x: Any, lengths: Any) -> Any:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = lstm(packed)
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        loss = (y * y).sum() + (h * c).sum()
        loss.backward()
        return y, h, c, loss

    return step


@pytest.mark.parametrize("as_list", [False, True])
def test_jit_replays_new_lengths_as_eager(as_list: bool) -> None:
    """Lengths as an array argument: one program, replayed right for new lengths of the same
    shape (another longest length included). As a list: part of the signature."""
    rng = np.random.default_rng(10)
    T, B = 5, 3
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64)
    step = _jit_step(lstm, T)
    jitted = tg.jit(step)
    calls = [[5, 2, 3], [1, 4, 2], [2, 2, 2], [5, 2, 3]]
    previous = None
    for lengths in calls:
        x = rng.standard_normal((B, T, 2))
        arg = lengths if as_list else np.array(lengths)
        lstm.zero_grad()
        want = step(tg.Tensor(x), arg)
        want_grads = [p.grad.data.copy() for p in lstm.parameters()]
        lstm.zero_grad()
        got = jitted(x, arg)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-12)
        for p, g in zip(lstm.parameters(), want_grads):
            np.testing.assert_allclose(p.grad.data, g, rtol=1e-12, atol=1e-12)
        beyond = padded_positions(lengths, T, batch_first=True)
        assert np.all(got[0].data[beyond] == 0)
        if previous is not None:
            assert not np.allclose(got[0].data, previous)  # a new call, not the old values
        previous = got[0].data
    assert len(jitted.programs) == (3 if as_list else 1)


def test_jit_refuses_the_layout_of_array_lengths() -> None:
    x = np.random.default_rng(11).standard_normal((2, 4, 3))

    def data_of(x: Any, lengths: Any) -> Any:
        return pack_padded_sequence(x, lengths, batch_first=True).data

    def sizes_of(x: Any, lengths: Any) -> Any:
        packed = pack_padded_sequence(x, lengths, batch_first=True)
        return tg.Tensor(packed.batch_sizes.astype(np.float64))

    def padded_to_longest(x: Any, lengths: Any) -> Any:
        return pad_packed_sequence(pack_padded_sequence(x, lengths, batch_first=True))[0]

    for fn, what in [
        (data_of, r"PackedSequence\.data.*list or tuple"),
        (sizes_of, r"PackedSequence\.batch_sizes"),
        (padded_to_longest, r"pad_packed_sequence: .*total_length="),
    ]:
        with pytest.raises(RuntimeError, match=what):
            tg.jit(fn)(x, np.array([4, 2]))
        out = tg.jit(fn)(x, [4, 2])  # lengths in the signature: allowed
        assert isinstance(out, tg.Tensor)


# --------------------------------------------------------------------- errors
def test_bad_input_is_refused_with_the_argument_named() -> None:
    x = np.zeros((4, 3, 2))
    cases: list[tuple[Any, type[Exception], str]] = [
        (lambda: pack_padded_sequence(x, [5, 2, 1]), ValueError, r"lengths\[0\] = 5 .*4 time"),
        (
            lambda: pack_padded_sequence(x, [2, 4, 1]),
            ValueError,
            r"sorted in decreasing order .*enforce_sorted=False",
        ),
        (lambda: pack_padded_sequence(x, [3, 0, 0]), ValueError, r"lengths\[1\] = 0.*>= 1"),
        (
            lambda: pack_padded_sequence(x, [3, -1, 1], enforce_sorted=False),
            ValueError,
            r"lengths\[1\] = -1",
        ),
        (lambda: pack_padded_sequence(x, [3, 2]), ValueError, r"lengths has 2 entries .*3 seq"),
        (lambda: pack_padded_sequence(x, [3.0, 2, 1]), TypeError, "lengths must be integers"),
        (lambda: pack_padded_sequence(x, np.array([3.0, 2, 1])), TypeError, "dtype float64"),
        (lambda: pack_padded_sequence(x, np.ones((3, 1), int)), ValueError, "1-D"),
        (lambda: pack_padded_sequence(x, "abc"), TypeError, "lengths must be a list"),
        (lambda: pack_padded_sequence([[1.0]], [1]), TypeError, "input must be a Tensor"),
        (lambda: pack_padded_sequence(np.zeros(3), [1]), ValueError, r"input must be \(seq_len"),
        (lambda: pad_packed_sequence(x), TypeError, "sequence must be a PackedSequence"),
        (
            lambda: pad_packed_sequence(pack_padded_sequence(x, [4, 2, 1]), total_length=3),
            ValueError,
            "total_length=3 is shorter",
        ),
        (
            lambda: pad_packed_sequence(pack_padded_sequence(x, [4, 2, 1]), total_length=4.0),
            TypeError,
            "total_length must be an int",
        ),
        (
            lambda: pad_packed_sequence(pack_padded_sequence(x, [4, 2, 1]), padding_value="0"),
            TypeError,
            "padding_value must be a number",
        ),
        (lambda: pad_sequence([]), ValueError, "pad_sequence: sequences is empty"),
        (lambda: pad_sequence(x), TypeError, "sequences must be a list"),
        (
            lambda: pad_sequence([np.zeros((2, 3)), np.zeros((2, 4))]),
            ValueError,
            r"sequences\[1\] has shape \(2, 4\)",
        ),
        (
            lambda: pad_sequence([np.zeros(2), np.zeros(2, np.float32)]),
            TypeError,
            r"sequences\[1\] has dtype float32",
        ),
        (lambda: pad_sequence([np.zeros(2)], padding_side="top"), ValueError, "padding_side"),
        (
            lambda: pack_sequence([np.zeros(1), np.zeros(3)]),
            ValueError,
            "pack_sequence: lengths must be sorted.*enforce_sorted=False",
        ),
        (lambda: PackedSequence(np.zeros(3), [3]), TypeError, "data must be a Tensor"),
        (
            lambda: PackedSequence(tg.Tensor(np.zeros(3)), [1, 2]),
            ValueError,
            "batch_sizes must be positive and non-increasing",
        ),
        (
            lambda: PackedSequence(tg.Tensor(np.zeros(3)), [2, 2]),
            ValueError,
            "data has 3 rows but batch_sizes sum to 4",
        ),
        (
            lambda: PackedSequence(tg.Tensor(np.zeros(3)), [2, 1], [0, 0]),
            ValueError,
            r"sorted_indices must be a permutation of range\(2\)",
        ),
        (
            lambda: PackedSequence(tg.Tensor(np.zeros(3)), [2, 1], [1, 0], [0, 1]),
            ValueError,
            "unsorted_indices must be the inverse",
        ),
        (
            lambda: nn.LSTM(3, 2, dtype=np.float64)(pack_padded_sequence(x, [4, 2, 1])),
            ValueError,
            r"LSTM: a packed input's data must be \(sum of lengths, input_size\).*input_size=3",
        ),
        (
            lambda: nn.GRU(2, 2)(pack_padded_sequence(x, [4, 2, 1])),
            TypeError,
            "GRU: input has dtype float64 but the parameters are float32",
        ),
        (
            lambda: nn.LSTM(2, 2, dtype=np.float64)(pack_padded_sequence(x, [4, 2, 1]), "h"),
            TypeError,
            "hx must be None or a tuple",
        ),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_non_finite_padding_is_refused() -> None:
    """Padding is multiplied by 0 (the mask), so inf or nan there is named, not spread."""
    x = np.zeros((3, 2, 1))
    x[2, 1, 0] = np.nan
    packed = pack_padded_sequence(x, [3, 2])
    with pytest.raises(ValueError, match=r"nan at step 2 of sequence 1, beyond its length 2"):
        nn.RNN(1, 2, dtype=np.float64)(packed)
    assert np.isfinite(packed.data.data).all()  # the packed steps themselves are fine
