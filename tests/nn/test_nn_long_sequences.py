"""Long sequences: the layers compute their input projection a chunk of steps at a time
and release each chunk's values once its steps have read them; memory of a long LSTM
step stays within 1.3x of what the closed-form BPTT must keep.

The closed-form comparison of the chunked path is in tests/bptt (``layer_chunked``);
here: chunked == one chunk for every layer kind and layout, what a released projection
looks like, and the memory bound itself (tracemalloc counts bytes, not seconds, so the
bound is not timing-dependent).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import engine, nn, optim, tensor
from tinygrad_rnn import functional as F
from tinygrad_rnn.nn import recurrent
from tinygrad_rnn.tensor import _is_stand_in


@contextmanager
def _setting(module: Any, name: str, value: int) -> Iterator[None]:
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def _chunk_bytes(nbytes: int) -> Any:
    """Input projections of ``nbytes`` worth of steps at a time (default 8 MiB)."""
    return _setting(recurrent, "_PROJECTION_CHUNK_BYTES", nbytes)


def _release_from(nbytes: int) -> Any:
    """Release (and save as stand-ins) values from ``nbytes`` on (default 64 KiB)."""
    return _setting(tensor, "_RELEASE_MIN_BYTES", nbytes)


def _graph(out: tg.Tensor) -> Iterator[tg.Tensor]:
    """Every tensor made by a recorded op in the graph behind ``out`` (once each)."""
    seen, stack = {id(out)}, [out]
    while stack:
        t = stack.pop()
        if t._node is None or t._node.inputs is None:
            continue
        yield t
        for p in t._node.inputs:
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)


def _projections(out: tg.Tensor) -> list[tg.Tensor]:
    """The input projections the recurrent steps behind ``out`` read their rows from."""
    found: dict[int, tg.Tensor] = {}
    for t in _graph(out):
        if t.op == "getitem" and t._node.inputs[0].op == "linear":  # type: ignore[union-attr,index]
            gi = t._node.inputs[0]  # type: ignore[union-attr,index]
            found[id(gi)] = gi
    return list(found.values())


def test_a_layer_projects_in_chunks_and_releases_each_one() -> None:
    T, B, D, H = 7, 2, 3, 4
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(D, H, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, B, D))
    with _chunk_bytes(3 * B * 4 * H * 8), _release_from(0):  # 3 steps per chunk: 3 + 3 + 1
        out, _ = lstm(x)
    chunks = _projections(out)
    assert sorted(c.shape for c in chunks) == [(1, B, 4 * H), (3, B, 4 * H), (3, B, 4 * H)]
    for c in chunks:
        assert c.op == "linear"
        assert _is_stand_in(c.data) and not any(c.data.strides)  # no memory of its own
        assert c.dtype == np.float64
        with pytest.raises(RuntimeError, match=r"numpy: the values of this tensor .*released"):
            c.numpy()
        assert "values released" in repr(c)
    # The steps' slices saved the projection as a stand-in too (getitem's rules read only
    # its shape), so no node keeps the released chunk's memory alive.
    rows = [t._node for t in _graph(out) if t.op == "getitem" and t._node.inputs[0].op == "linear"]  # type: ignore[union-attr,index]
    assert len(rows) == T
    assert all(_is_stand_in(row.arrays[0]) for row in rows)  # type: ignore[union-attr]


def test_a_released_tensor_refuses_to_be_read_and_computes_nan_not_zeros() -> None:
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(3, 4, dtype=np.float64, rng=rng)
    with _release_from(0):
        out, _ = lstm(rng.standard_normal((5, 2, 3)))
        nn.LSTM(3, 4, rng=rng)(np.ones((2, 1, 3), dtype=np.float32))  # other stand-ins since
    (gi,) = _projections(out)
    assert _is_stand_in(gi.data)
    for read in (np.asarray, tg.Tensor, lambda t: t.numpy()):
        with pytest.raises(RuntimeError, match=r"the values of this tensor .* were released"):
            read(gi)
    # Whoever computes with it anyway (it is reachable only through graph internals) gets
    # NaN, never a plausible number.
    assert np.isnan(gi.sum().item())
    # Arrays that merely look alike are not stand-ins.
    assert not _is_stand_in(np.broadcast_to(np.array(np.nan), gi.shape))
    assert not _is_stand_in(np.zeros(gi.shape))


def test_a_gru_keeps_its_projection() -> None:
    # The GRU's step slices its row (a view, which keeps the whole projection alive), so
    # releasing would free nothing and only hide the values: it does not release.
    rng = np.random.default_rng(0)
    gru = nn.GRU(3, 4, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 2, 3))
    with _release_from(0):
        out, _ = gru(x)
    (gi,) = [t for t in _graph(out) if t.op == "linear" and t.shape == (5, 2, 12)]
    assert not _is_stand_in(gi.data)
    want = x @ gru.weight_ih_l0.data.T + gru.bias_ih_l0.data
    np.testing.assert_allclose(gi.numpy(), want, rtol=1e-12)


def test_small_projections_keep_their_values() -> None:
    # Under 64 KiB releasing costs more time than the memory is worth, and small graphs are
    # the ones people draw with their values.
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(3, 4, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 2, 3))
    out, _ = lstm(x)
    (gi,) = _projections(out)
    assert gi.data.nbytes < tensor._RELEASE_MIN_BYTES
    w, b = lstm.weight_ih_l0.data, lstm.bias_ih_l0.data + lstm.bias_hh_l0.data
    np.testing.assert_allclose(gi.numpy(), x @ w.T + b, rtol=1e-12)


def test_the_default_chunk_holds_every_step_at_training_sizes() -> None:
    # Size M of the benchmarks (T=50, B=32, H=128): one projection, one matrix product.
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(65, 128, rng=rng)
    out, _ = lstm(np.zeros((50, 32, 65), dtype=np.float32))
    (gi,) = _projections(out)
    assert gi.shape == (50, 32, 512) and _is_stand_in(gi.data)  # 3.3 MB: released
    assert recurrent._projection_span(50, 32 * 512 * 4) == 50
    assert recurrent._projection_span(1000, 32 * 512 * 4) == 128
    assert recurrent._projection_span(5, 10**12) == 1  # a step larger than a chunk


def _run(layer: Any, x: np.ndarray, chunk: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    layer.zero_grad()
    x_t = tg.Tensor(x, requires_grad=True)
    if chunk is None:
        out, _ = layer(x_t)
    else:
        with _chunk_bytes(chunk):
            out, _ = layer(x_t)
    weights = np.linspace(-1.0, 1.0, out.data.size).reshape(out.shape)
    (out * weights).sum().backward()
    grads = {name: p.grad.data for name, p in layer.named_parameters()}
    grads["x"] = x_t.grad.data
    return out.data, grads


@given(
    kind=st.sampled_from(["RNN", "LSTM", "GRU"]),
    T=st.integers(1, 9),
    B=st.integers(1, 3),
    steps=st.integers(1, 4),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_chunked_projection_gives_what_one_projection_gives(
    kind: str,
    T: int,
    B: int,
    steps: int,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    seed: int,
) -> None:
    D, H = 3, 4
    rng = np.random.default_rng(seed)
    layer = getattr(nn, kind)(
        D,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=np.float64,
        rng=rng,
    )
    x = rng.standard_normal((B, T, D) if batch_first else (T, B, D))
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    out_one, grads_one = _run(layer, x, None)
    with _release_from(0):  # every chunk released, as long sequences do at 64 KiB and up
        out_chunked, grads_chunked = _run(layer, x, steps * B * gates * H * 8)
    np.testing.assert_allclose(out_chunked, out_one, rtol=1e-12, atol=1e-14)
    for name, g in grads_one.items():
        np.testing.assert_allclose(grads_chunked[name], g, rtol=1e-10, atol=1e-12, err_msg=name)


def _closed_form_cache_bytes(T: int, B: int, D: int, H: int, itemsize: int) -> int:
    # What the closed-form LSTM BPTT keeps per step and sequence (seed 004; the same
    # accounting as benchmarks/memory.py): z_t = [h_{t-1}, x_t] (H + D), the four gates
    # (4H), c_t, tanh(c_t) and h_t (3H).
    return T * B * (H + D + 7 * H) * itemsize


def _long_lstm_problem(T: int, B: int, H: int, V: int) -> tuple[Any, Any, Any, Any]:
    """The issue's memory setting: an LSTM with a Linear head, one-hot inputs, targets."""
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(V, H, rng=rng)
    head = nn.Linear(H, V, rng=rng)
    xs = np.eye(V, dtype=np.float32)[rng.integers(0, V, (T, B))]
    return lstm, head, xs, rng.integers(0, V, (T, B))


def _traced_peak(step: Any, params: list[Any]) -> int:
    """Peak traced memory of one call of ``step`` above what existed before it (gradients
    cleared first, so the step's own are counted)."""
    for p in params:
        p.grad = None
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_long_lstm_step_peaks_within_2x_the_closed_form_cache() -> None:
    # The setting: T = 1,000, B = 32, H = 128, one-hot V = 65, Linear head,
    # cross-entropy summed over time and batch, float32, forward + full backward.
    T, B, H, V = 1000, 32, 128, 65
    lstm, head, xs, targets = _long_lstm_problem(T, B, H, V)

    def step() -> None:
        out, _ = lstm(xs)
        F.cross_entropy(head(out), targets, reduction="sum").backward()

    step()  # numpy's and the engine's first-call allocations
    engine._clear_pools()  # what the step needs is allocated, and counted, inside
    peak = _traced_peak(step, [*lstm.parameters(), *head.parameters()])
    cache = _closed_form_cache_bytes(T, B, V, H, 4)
    assert peak > 0.5 * cache  # the step really ran and was traced
    # Issue 12's bound for eager. A step releases z, its slices and the two terms of the
    # cell update once used, and the nodes that took them saved stand-ins (1.81x measured;
    # 2.48x while every intermediate held its values until backward).
    assert peak <= 2.0 * cache, f"peak {peak / 2**20:.1f} MiB = {peak / cache:.2f}x the cache"


def test_a_long_jitted_lstm_step_peaks_within_1_3x_the_closed_form_cache() -> None:
    """Issue 12's bound for the jitted step: a replay frees every value after its last use,
    writes gradients into their buffer's rows and reads the weight products from them."""
    T, B, H, V = 1000, 32, 128, 65
    lstm, head, xs, targets = _long_lstm_problem(T, B, H, V)

    @tg.jit
    def step(x: np.ndarray, y: np.ndarray) -> tg.Tensor:
        out, _ = lstm(x)
        loss = F.cross_entropy(head(out), y, reduction="sum")
        loss.backward()
        return loss

    step(xs, targets)  # the trace
    step(xs, targets)  # the first replay generates the program's code
    peak = _traced_peak(lambda: step(xs, targets), [*lstm.parameters(), *head.parameters()])
    cache = _closed_form_cache_bytes(T, B, V, H, 4)
    assert peak > 0.5 * cache  # the replay really ran and was traced
    assert peak <= 1.3 * cache, f"peak {peak / 2**20:.1f} MiB = {peak / cache:.2f}x the cache"


def test_jitted_training_steps_do_not_grow_memory() -> None:
    """Many replays with optimizer steps in between: nothing of a step outlives it."""
    T, B, H, V = 20, 8, 16, 11
    rng = np.random.default_rng(1)
    lstm = nn.LSTM(V, H, rng=rng)
    head = nn.Linear(H, V, rng=rng)
    opt = optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    xs = np.eye(V, dtype=np.float32)[rng.integers(0, V, (T, B))]
    targets = rng.integers(0, V, (T, B))

    @tg.jit
    def step(x: np.ndarray, y: np.ndarray) -> tg.Tensor:
        out, _ = lstm(x)
        loss = F.cross_entropy(head(out), y)
        loss.backward()
        return loss

    def train(n: int) -> None:
        for _ in range(n):
            opt.zero_grad()
            step(xs, targets)
            opt.step()

    def array_sized_bytes() -> int:
        # Blocks of 512 bytes and more: an array of this step (the smallest, 8 x 16 float32,
        # is 512 bytes) that outlived its step would show here. Smaller blocks are left
        # out: CPython's free lists keep freed tuples for thousands of steps (see
        # benchmarks/memory.py), which reads as slow growth of small blocks.
        snapshot = tracemalloc.take_snapshot()
        return sum(t.size for t in snapshot.traces if t.size >= 512)

    train(20)
    gc.collect()
    tracemalloc.start()
    try:
        train(100)
        before = array_sized_bytes()
        train(200)
        grown = array_sized_bytes() - before
    finally:
        tracemalloc.stop()
    # One array of 512 bytes kept per step would be 100 KB here.
    assert grown < 20_000, f"array-sized blocks grew by {grown} bytes over 200 steps"
