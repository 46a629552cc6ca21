"""Packed input with the layers' options: LSTM ``proj_size``, ``dropout`` between layers,
``bias=False``, ``nonlinearity='relu'``, ``batch_first`` and initial states of every size.

Oracles: PyTorch 2.13 on packed input, float64, 1e-9, with the same weights (``from_torch``)
and data, for the outputs, ``h_n``/``c_n`` and every gradient (input, initial states, each
parameter). Dropout in training is random, so there the oracle is torch's layers run one
at a time on the packed data with the very masks our layer drew put between them; and an
identity: with the masks fixed, the packed layer gives each sequence (values and
gradients) what the same layer gives that sequence alone, and nothing reaches the padding.
Under ``tinygrad_rnn.jit`` the oracle is the eager call.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
trnn = pytest.importorskip("torch.nn.utils.rnn")

from _dropout_masks import MaskRecorder  # noqa: E402
from _packed_helpers import close, flat, padded_positions, pair  # noqa: E402

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402
from tinygrad_rnn.nn import dropout as dropout_module  # noqa: E402
from tinygrad_rnn.nn.utils.rnn import (  # noqa: E402
    PackedSequence,
    pack_padded_sequence,
    pad_packed_sequence,
)


def make_layers(kind: str, D: int, H: int, seed: int, **config: Any) -> tuple[Any, Any]:
    """A float64 torch layer and ours with its configuration and weights."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropout with one layer
        tm = getattr(torch.nn, kind)(D, H, **config).double()
    return tm, getattr(nn, kind).from_torch(tm)


def state_sizes(tm: Any) -> list[int]:
    """Feature sizes of the initial states: ``[R, H]`` for an LSTM, ``[H]`` otherwise."""
    H = tm.hidden_size
    return [getattr(tm, "proj_size", 0) or H, H] if isinstance(tm, torch.nn.LSTM) else [H]


def initial_states(tm: Any, B: int, rng: np.random.Generator) -> list[tuple[tg.Tensor, Any]]:
    n = tm.num_layers * (2 if tm.bidirectional else 1)
    return [pair(rng.standard_normal((n, B, s))) for s in state_sizes(tm)]


def as_hx(states: list[tuple[tg.Tensor, Any]], side: int) -> Any:
    """Our (side 0) or torch's (side 1) ``hx``: ``h0``, or ``(h0, c0)`` for an LSTM."""
    if not states:
        return None
    picked = [s[side] for s in states]
    return tuple(picked) if len(picked) == 2 else picked[0]


def backward_both(outs: list[Any], outs_t: list[Any], rng: np.random.Generator) -> None:
    """Random weights on every output, so each output's backward is checked."""
    weights = [rng.standard_normal(o.shape) for o in outs_t]
    sum((o * torch.tensor(w)).sum() for o, w in zip(outs_t, weights)).backward()
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()


def run_both(
    kind: str,
    config: dict[str, Any],
    lengths: list[int],
    T: int,
    D: int,
    H: int,
    with_h0: bool,
    seed: int,
    enforce_sorted: bool = False,
) -> None:
    """Our packed layer and torch's on the same weights and data: values and every grad
    (both in eval mode when ``config`` has a dropout, which is random in training)."""
    tm, ours = make_layers(kind, D, H, seed, **config)
    if config.get("dropout"):
        tm.eval()
        ours.eval()
    rng = np.random.default_rng(seed)
    B, batch_first = len(lengths), tm.batch_first
    x, x_t = pair(rng.standard_normal((B, T, D) if batch_first else (T, B, D)))
    states = initial_states(tm, B, rng) if with_h0 else []
    kw = {"batch_first": batch_first, "enforce_sorted": enforce_sorted}
    out_t, final_t = tm(trnn.pack_padded_sequence(x_t, lengths, **kw), as_hx(states, 1))
    out, final = ours(pack_padded_sequence(x, lengths, **kw), as_hx(states, 0))
    assert isinstance(out, PackedSequence)
    close(out.data, out_t.data, "output data")
    y_t, _ = trnn.pad_packed_sequence(out_t, batch_first=batch_first)
    y, _ = pad_packed_sequence(out, batch_first=batch_first)
    for k, (a, b) in enumerate(zip(flat(final), flat(final_t))):
        close(a, b, f"final state {k}")  # shapes too: h_n has proj_size features, c_n H
    backward_both([y, *flat(final)], [y_t, *flat(final_t)], rng)
    close(x.grad, x_t.grad, "input grad")
    assert np.all(x.grad.data[padded_positions(lengths, T, batch_first)] == 0)  # type: ignore[union-attr]
    for k, (s, s_t) in enumerate(states):
        close(s.grad, s_t.grad, f"initial state grad {k}")
    torch_params = dict(tm.named_parameters())
    assert [name for name, _ in ours.named_parameters()] == list(torch_params)
    for name, p in ours.named_parameters():
        close(p.grad, torch_params[name].grad, name)


# ------------------------------------------------------------------ proj_size
@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_lstm_with_proj_size_matches_torch(
    bidirectional: bool, num_layers: int, with_h0: bool
) -> None:
    config = {"proj_size": 2, "num_layers": num_layers, "bidirectional": bidirectional}
    run_both("LSTM", config, [2, 5, 1, 4, 2], T=5, D=3, H=4, with_h0=with_h0, seed=20)


@pytest.mark.parametrize(
    "config",
    [
        {"proj_size": 1, "bias": False, "bidirectional": True},
        {"proj_size": 3, "batch_first": True, "num_layers": 2},
        {"proj_size": 2, "num_layers": 2, "dropout": 0.5},  # in eval: no dropout
    ],
    ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()),
)
def test_packed_lstm_with_proj_size_and_other_options(config: dict[str, Any]) -> None:
    run_both("LSTM", config, [3, 1, 4], T=4, D=2, H=4, with_h0=True, seed=21)


@settings(max_examples=15, deadline=None)
@given(
    data=st.data(),
    T=st.integers(1, 4),
    H=st.integers(2, 4),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    bias=st.booleans(),
    enforce_sorted=st.booleans(),
    with_h0=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_packed_lstm_with_proj_size_on_random_batches(
    data: st.DataObject,
    T: int,
    H: int,
    layers: int,
    bidirectional: bool,
    batch_first: bool,
    bias: bool,
    enforce_sorted: bool,
    with_h0: bool,
    seed: int,
) -> None:
    proj = data.draw(st.integers(1, H - 1), label="proj_size")
    lengths = data.draw(st.lists(st.integers(1, T), min_size=1, max_size=4), label="lengths")
    if enforce_sorted:
        lengths = sorted(lengths, reverse=True)
    config = {
        "proj_size": proj,
        "num_layers": layers,
        "bidirectional": bidirectional,
        "batch_first": batch_first,
        "bias": bias,
    }
    run_both("LSTM", config, lengths, T, 2, H, with_h0, seed, enforce_sorted)


def test_packed_proj_size_keeps_float32_and_checks_state_sizes() -> None:
    lstm = nn.LSTM(
        2, 4, proj_size=3, num_layers=2, bidirectional=True, rng=np.random.default_rng(0)
    )
    x = np.random.default_rng(1).standard_normal((4, 2, 2)).astype(np.float32)
    packed = pack_padded_sequence(x, [2, 4], enforce_sorted=False)
    out, (h, c) = lstm(packed)
    assert out.data.dtype == h.dtype == c.dtype == np.float32
    assert out.data.shape == (6, 2 * 3) and h.shape == (4, 2, 3) and c.shape == (4, 2, 4)
    h0, c0 = np.zeros((4, 2, 3), np.float32), np.zeros((4, 2, 4), np.float32)
    with pytest.raises(ValueError, match=r"LSTM: h0 must have shape \(4, 2, 3\).*proj_size"):
        lstm(packed, (c0, c0))  # h0 of hidden_size features
    with pytest.raises(ValueError, match=r"LSTM: c0 must have shape \(4, 2, 4\).*hidden_size"):
        lstm(packed, (h0, h0))  # c0 of proj_size features


# ------------------------------------------------------------------ dropout in eval
KINDS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("kind", "extra"), KINDS, ids=lambda v: str(v) if v else "")
def test_packed_dropout_in_eval_matches_torch_in_eval(
    kind: str, extra: dict[str, Any], bidirectional: bool, monkeypatch: Any
) -> None:
    recorder = MaskRecorder(monkeypatch)
    config = {"num_layers": 3, "dropout": 0.5, "bidirectional": bidirectional, **extra}
    tm, ours = make_layers(kind, 2, 3, 22, **config)
    tm.eval()
    ours.eval()
    rng = np.random.default_rng(22)
    lengths, T = [3, 1, 4], 4
    x, x_t = pair(rng.standard_normal((T, 3, 2)))
    states = initial_states(tm, 3, rng)
    kw = {"enforce_sorted": False}
    out_t, final_t = tm(trnn.pack_padded_sequence(x_t, lengths, **kw), as_hx(states, 1))
    out, final = ours(pack_padded_sequence(x, lengths, **kw), as_hx(states, 0))
    assert recorder.masks == []  # none drawn in eval
    y_t, _ = trnn.pad_packed_sequence(out_t)
    y, _ = pad_packed_sequence(out)
    close(y, y_t, "output")
    for k, (a, b) in enumerate(zip(flat(final), flat(final_t))):
        close(a, b, f"final state {k}")
    backward_both([y, *flat(final)], [y_t, *flat(final_t)], rng)
    close(x.grad, x_t.grad, "input grad")
    for k, (s, s_t) in enumerate(states):
        close(s.grad, s_t.grad, f"initial state grad {k}")
    torch_params = dict(tm.named_parameters())
    for name, p in ours.named_parameters():
        close(p.grad, torch_params[name].grad, name)


# ------------------------------------------------------------------ dropout in training


def torch_layer(tm: Any, k: int) -> Any:
    """Layer ``k`` of the torch stack ``tm`` as a one-layer torch module of its own."""
    dirs = 2 if tm.bidirectional else 1
    R = getattr(tm, "proj_size", 0) or tm.hidden_size
    extra = {"proj_size": tm.proj_size} if isinstance(tm, torch.nn.LSTM) else {}
    if isinstance(tm, torch.nn.RNN):
        extra["nonlinearity"] = tm.nonlinearity
    one = type(tm)(
        tm.input_size if k == 0 else dirs * R,
        tm.hidden_size,
        bias=tm.bias,
        bidirectional=tm.bidirectional,
        **extra,
    ).double()
    one.load_state_dict(
        {
            name.replace(f"_l{k}", "_l0"): v
            for name, v in tm.state_dict().items()
            if f"_l{k}" in name and not name.split(f"_l{k}")[1][:1].isdigit()
        }
    )
    return one


def packed_rows(packed_t: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(t, b)`` of each row of torch's packed data (``b`` in the caller's batch order)."""
    sizes = packed_t.batch_sizes.numpy()
    order = packed_t.sorted_indices
    order = np.arange(sizes[0]) if order is None else order.numpy()
    t = np.repeat(np.arange(len(sizes)), sizes)
    b = np.concatenate([order[:n] for n in sizes])
    return t, b


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("RNN", {"nonlinearity": "relu"}),
        ("GRU", {"bidirectional": True}),
        ("LSTM", {}),
        ("LSTM", {"proj_size": 2, "bidirectional": True}),
        ("LSTM", {"proj_size": 1, "bias": False}),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()),
)
def test_packed_training_dropout_matches_torch_with_the_same_masks(
    kind: str, config: dict[str, Any], monkeypatch: Any
) -> None:
    """Our packed 3-layer stack in training = torch's layers run one by one on the packed
    data, our masks (read at each packed row's step and sequence) put between them."""
    p, lengths, T = 0.4, [2, 4, 1, 3], 4
    tm, ours = make_layers(kind, 2, 4, 23, num_layers=3, dropout=p, **config)
    assert ours.training
    recorder = MaskRecorder(monkeypatch)
    rng = np.random.default_rng(23)
    x, x_t = pair(rng.standard_normal((T, len(lengths), 2)))
    states = initial_states(tm, len(lengths), rng)
    out, final = ours(pack_padded_sequence(x, lengths, enforce_sorted=False), as_hx(states, 0))
    dirs, R = 2 if tm.bidirectional else 1, config.get("proj_size") or 4
    # After layers 0 and 1, none after the last; the padded form (T, B, dirs·R).
    assert [m.shape for m in recorder.masks] == [(T, len(lengths), dirs * R)] * 2
    for m in recorder.masks:
        assert set(np.unique(m)) <= {0.0, 1 / (1 - p)}

    packed_t = trnn.pack_padded_sequence(x_t, lengths, enforce_sorted=False)
    rows = packed_rows(packed_t)
    layers = [torch_layer(tm, k) for k in range(3)]
    finals_t: list[Any] = []
    for k, layer in enumerate(layers):
        hx_k = [s_t[k * dirs : (k + 1) * dirs] for _, s_t in states]
        packed_t, f = layer(packed_t, tuple(hx_k) if len(hx_k) == 2 else hx_k[0])
        finals_t.append(flat(f))
        if k < 2:
            packed_t = trnn.PackedSequence(
                packed_t.data * torch.tensor(recorder.masks[k][rows]), *packed_t[1:]
            )
    final_t = [torch.cat([f[i] for f in finals_t]) for i in range(len(finals_t[0]))]
    close(out.data, packed_t.data, "output data")
    for i, (a, b) in enumerate(zip(flat(final), final_t)):
        close(a, b, f"final state {i}")
    y_t, _ = trnn.pad_packed_sequence(packed_t)
    y, _ = pad_packed_sequence(out)
    backward_both([y, *flat(final)], [y_t, *final_t], rng)
    close(x.grad, x_t.grad, "input grad")
    assert np.all(x.grad.data[padded_positions(lengths, T, False)] == 0)  # type: ignore[union-attr]
    for i, (s, s_t) in enumerate(states):
        close(s.grad, s_t.grad, f"initial state grad {i}")
    for name, param in ours.named_parameters():
        k = int(name.split("_l")[1][0])
        theirs = dict(layers[k].named_parameters())[name.replace(f"_l{k}", "_l0")]
        close(param.grad, theirs.grad, name)


class FixedMasks:
    """Replaces the dropout mask draw: the ``i``-th draw of a forward pass returns
    ``select(masks[i])`` (``select`` picks the part of the batch being run)."""

    def __init__(self, monkeypatch: Any, masks: list[np.ndarray]) -> None:
        self.masks, self.drawn = masks, 0
        self.select: Any = lambda m: m

        def fixed(shape: tuple[int, ...], keep: float, dtype: Any, rng: Any) -> tg.Tensor:
            mask = self.select(self.masks[self.drawn])
            self.drawn += 1
            assert mask.shape == shape, (mask.shape, shape)
            return tg.Tensor(mask.astype(dtype))

        monkeypatch.setattr(dropout_module, "_bernoulli_scaled", fixed)

    def start(self, select: Any) -> None:
        self.drawn, self.select = 0, select


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("RNN", {"bidirectional": True}),
        ("GRU", {}),
        ("LSTM", {"bidirectional": True}),
        ("LSTM", {"proj_size": 2, "bidirectional": True}),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()),
)
def test_packed_training_dropout_gives_each_sequence_what_it_gets_alone(
    kind: str, config: dict[str, Any], monkeypatch: Any
) -> None:
    """Identity oracle (no torch): with the same masks, the packed layer's outputs, final
    states and gradients are those of the layer run on each sequence alone; exact zeros at
    the padding, in the output and in the input's gradient."""
    p, lengths, T, D, H, L = 0.5, [3, 1, 4], 4, 2, 3, 3
    layer = getattr(nn, kind)(
        D, H, num_layers=L, dropout=p, dtype=np.float64, rng=np.random.default_rng(24), **config
    )
    assert layer.training
    rng = np.random.default_rng(25)
    dirs, R, B = 2 if layer.bidirectional else 1, config.get("proj_size") or H, len(lengths)
    masks = [(rng.random((T, B, dirs * R)) >= p) / (1 - p) for _ in range(L - 1)]
    fixed = FixedMasks(monkeypatch, masks)
    sizes = [R, H] if kind == "LSTM" else [H]
    h0s = [rng.standard_normal((L * dirs, B, s)) for s in sizes]
    x_np = rng.standard_normal((T, B, D))
    x_np[padded_positions(lengths, T, False)] = 1e3  # finite garbage in the padding

    x = tg.Tensor(x_np, requires_grad=True)
    hx = [tg.Tensor(h, requires_grad=True) for h in h0s]
    fixed.start(lambda m: m)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, final = layer(packed, tuple(hx) if kind == "LSTM" else hx[0])
    assert fixed.drawn == L - 1
    y, _ = pad_packed_sequence(out)
    w_y = rng.standard_normal(y.shape)
    w_f = [rng.standard_normal(f.shape) for f in flat(final)]
    layer.zero_grad()
    ((y * w_y).sum() + sum((f * w).sum() for f, w in zip(flat(final), w_f))).backward()
    packed_grads = {name: prm.grad.data.copy() for name, prm in layer.named_parameters()}  # type: ignore[union-attr]
    assert np.all(y.data[padded_positions(lengths, T, False)] == 0)
    assert np.all(x.grad.data[padded_positions(lengths, T, False)] == 0)  # type: ignore[union-attr]

    layer.zero_grad()
    for b, n in enumerate(lengths):
        x_b = tg.Tensor(x_np[:n, b : b + 1], requires_grad=True)
        hx_b = [tg.Tensor(h[:, b : b + 1], requires_grad=True) for h in h0s]
        fixed.start(lambda m, n=n, b=b: m[:n, b : b + 1])
        y_b, final_b = layer(x_b, tuple(hx_b) if kind == "LSTM" else hx_b[0])
        assert fixed.drawn == L - 1
        np.testing.assert_allclose(y_b.data, y.data[:n, b : b + 1], rtol=1e-12, atol=1e-14)
        for f, f_b in zip(flat(final), flat(final_b)):
            np.testing.assert_allclose(f_b.data, f.data[:, b : b + 1], rtol=1e-12, atol=1e-14)
        loss = (y_b * w_y[:n, b : b + 1]).sum()
        loss = loss + sum((f * w[:, b : b + 1]).sum() for f, w in zip(flat(final_b), w_f))
        loss.backward()  # the parameters' grads add up over the sequences
        np.testing.assert_allclose(x_b.grad.data, x.grad.data[:n, b : b + 1], rtol=1e-12)  # type: ignore[union-attr]
        for h, h_b in zip(hx if kind == "LSTM" else hx[:1], hx_b):
            np.testing.assert_allclose(h_b.grad.data, h.grad.data[:, b : b + 1], rtol=1e-12)  # type: ignore[union-attr]
    for name, prm in layer.named_parameters():
        np.testing.assert_allclose(
            prm.grad.data,  # type: ignore[union-attr]
            packed_grads[name],
            rtol=1e-10,
            atol=1e-13,
            err_msg=name,
        )


# ------------------------------------------------------------------------ jit
def test_jit_packed_proj_size_lstm_with_dropout_equals_eager() -> None:
    """A training step of a packed bidirectional 2-layer LSTM with proj_size and dropout:
    each replay equals an eager twin of the same seed (the same weights and mask stream),
    values and gradients, for new lengths too; fresh masks on every replay."""

    def make() -> nn.LSTM:
        return nn.LSTM(
            2,
            4,
            num_layers=2,
            proj_size=2,
            dropout=0.5,
            bidirectional=True,
            batch_first=True,
            dtype=np.float64,
            rng=np.random.default_rng(26),
        )

    T, B = 5, 3

    def stepper(lstm: nn.LSTM) -> Any:
        def step(x: Any, lengths: Any, h0: Any, c0: Any) -> Any:
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, (h, c) = lstm(packed, (h0, c0))
            y, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
            loss = (y * y).sum() + (h * c[..., :2]).sum()
            loss.backward()
            return y, h, c, loss

        return step

    lstm, twin = make(), make()
    jitted, eager = tg.jit(stepper(lstm)), stepper(twin)
    rng = np.random.default_rng(27)

    def arguments(lengths: list[int]) -> tuple[Any, ...]:
        x = rng.standard_normal((B, T, 2))
        return lengths, x, rng.standard_normal((4, B, 2)), rng.standard_normal((4, B, 4))

    first = arguments([5, 2, 3])
    outs = []
    # New lengths, the same longest: eager pads to the longest, the replay to the traced
    # one, so with another longest the two would draw masks of other sizes and their
    # streams would part (both right, but no longer comparable draw by draw).
    for lengths, x, h0, c0 in (first, arguments([1, 5, 2]), first):  # last: only masks differ
        lstm.zero_grad()
        twin.zero_grad()
        got = jitted(x, np.array(lengths), h0, c0)
        want = eager(tg.Tensor(x), np.array(lengths), tg.Tensor(h0), tg.Tensor(c0))
        assert got[1].shape == (4, B, 2) and got[2].shape == (4, B, 4)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-12)
        for (name, p), q in zip(lstm.named_parameters(), twin.parameters()):
            np.testing.assert_allclose(
                p.grad.data, q.grad.data, rtol=1e-12, atol=1e-12, err_msg=name
            )  # type: ignore[union-attr]
        outs.append(got[0].data)
    assert len(jitted.programs) == 1
    assert not np.allclose(outs[0], outs[2])  # the same data shape, a fresh mask
