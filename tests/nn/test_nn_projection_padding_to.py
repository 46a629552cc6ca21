"""LSTM ``proj_size``, Embedding ``padding_idx``, ``Module.to`` and recurrent ``dropout`` in
eval mode, each against PyTorch 2.13 in float64 (same weights through ``from_torch`` and the
converters) to 1e-9: outputs, final states and every gradient. Bad arguments are refused by
name.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402

RTOL, ATOL = 1e-9, 1e-12


def close(ours: Any, theirs: Any, what: str) -> None:
    np.testing.assert_allclose(
        ours.data if isinstance(ours, tg.Tensor) else ours,
        theirs.detach().numpy() if hasattr(theirs, "detach") else theirs,
        rtol=RTOL,
        atol=ATOL,
        err_msg=what,
    )


def check_all(ours: Any, tm: Any, x_np: np.ndarray, states: list[np.ndarray] | None) -> None:
    """Run a recurrent layer and its torch twin on the same data, backward with random
    weights on every output; compare outputs, final states, input and initial-state
    gradients and every parameter gradient."""
    is_lstm = isinstance(ours, nn.LSTM)
    x_t, x = torch.tensor(x_np, requires_grad=True), tg.Tensor(x_np, requires_grad=True)
    s_t = [torch.tensor(a, requires_grad=True) for a in states or []]
    s = [tg.Tensor(a, requires_grad=True) for a in states or []]
    hx_t = None if states is None else (tuple(s_t) if is_lstm else s_t[0])
    hx = None if states is None else (tuple(s) if is_lstm else s[0])
    out_t, fin_t = tm(x_t, hx_t)
    out, fin = ours(x, hx)
    outs_t = [out_t, *(fin_t if is_lstm else [fin_t])]
    outs = [out, *(fin if is_lstm else [fin])]
    rng = np.random.default_rng(7)
    weights = [rng.standard_normal(o.shape) for o in outs_t]
    sum((o * torch.tensor(w)).sum() for o, w in zip(outs_t, weights)).backward()
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    names = ["output", "h_n", "c_n"]
    for k, (a, b) in enumerate(zip(outs, outs_t)):
        assert a.shape == tuple(b.shape), names[k]
        close(a, b, names[k])
    close(x.grad, x_t.grad, "input grad")
    for k, (a, b) in enumerate(zip(s, s_t)):
        close(a.grad, b.grad, f"{names[k + 1]} initial-state grad")
    torch_params = dict(tm.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(torch_params)
    for name, p in ours.named_parameters():
        assert p.shape == tuple(torch_params[name].shape), name
        close(p.grad, torch_params[name].grad, f"grad of {name}")


def lstm_data(tm: Any, T: int, B: int, seed: int, with_state: bool) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    n = tm.num_layers * (2 if tm.bidirectional else 1)
    R = tm.proj_size or tm.hidden_size
    x = rng.standard_normal((B, T, tm.input_size) if tm.batch_first else (T, B, tm.input_size))
    states = [rng.standard_normal((n, B, R)), rng.standard_normal((n, B, tm.hidden_size))]
    return x, (states if with_state else None)


# ---------------------------------------------------------------------- LSTM proj_size


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_proj_size_matches_torch(
    num_layers: int, bidirectional: bool, batch_first: bool, with_state: bool
) -> None:
    torch.manual_seed(0)
    tm = torch.nn.LSTM(
        3, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
        proj_size=2,
    ).double()  # fmt: skip
    ours = nn.LSTM.from_torch(tm)
    assert ours.proj_size == 2 and repr(ours) == repr(tm)
    x, states = lstm_data(tm, T=4, B=3, seed=1, with_state=with_state)
    check_all(ours, tm, x, states)


@given(
    T=st.integers(1, 5),
    B=st.integers(1, 4),
    D=st.integers(1, 4),
    H=st.integers(2, 6),
    proj=st.data(),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    bias=st.booleans(),
    with_state=st.booleans(),
)
def test_lstm_proj_size_matches_torch_over_sizes(
    T: int,
    B: int,
    D: int,
    H: int,
    proj: Any,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    bias: bool,
    with_state: bool,
) -> None:
    P = proj.draw(st.integers(1, H - 1), label="proj_size")
    torch.manual_seed(T * 100 + H)
    tm = torch.nn.LSTM(
        D, H, num_layers=num_layers, bias=bias, batch_first=batch_first,
        bidirectional=bidirectional, proj_size=P,
    ).double()  # fmt: skip
    x, states = lstm_data(tm, T, B, seed=T + B, with_state=with_state)
    check_all(nn.LSTM.from_torch(tm), tm, x, states)


def test_lstm_proj_size_unbatched_matches_torch() -> None:
    torch.manual_seed(4)
    tm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=3).double()
    ours = nn.LSTM.from_torch(tm)
    x = np.random.default_rng(2).standard_normal((5, 3))
    h0, c0 = np.random.default_rng(3).standard_normal((4, 3)), np.zeros((4, 4))
    out_t, (h_t, c_t) = tm(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    out, (h, c) = ours(x, (h0, c0))
    close(out, out_t, "output")
    close(h, h_t, "h_n")
    close(c, c_t, "c_n")


def test_lstm_proj_size_state_dict_both_ways() -> None:
    """Our own initialisation, through to_torch_state_dict into torch, and back."""
    ours = nn.LSTM(
        3, 5, num_layers=2, bidirectional=True, proj_size=3, dtype=np.float64,
        rng=np.random.default_rng(5),
    )  # fmt: skip
    tm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=3).double()
    sd = nn.to_torch_state_dict(ours)
    assert sd["weight_hr_l1_reverse"].shape == (3, 5) and sd["weight_hh_l0"].shape == (20, 3)
    assert sd["weight_ih_l1"].shape == (20, 6)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})  # strict in torch
    x, states = lstm_data(tm, T=3, B=2, seed=6, with_state=True)
    check_all(ours, tm, x, states)
    back = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=3, dtype=np.float64)
    nn.load_torch_state_dict(back, tm.state_dict())
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    assert isinstance(nn.module_from_torch(tm), nn.LSTM)


def test_lstm_proj_size_under_jit_equals_eager() -> None:
    lstm = nn.LSTM(
        2, 4, num_layers=2, bidirectional=True, proj_size=3, dtype=np.float64,
        rng=np.random.default_rng(8),
    )  # fmt: skip
    params = list(lstm.parameters())

    def step(x: Any) -> Any:
        out, (h, c) = lstm(x)
        loss = (out * out).sum() + h.sum() + (c * c).sum()
        loss.backward()
        return loss

    jitted = tg.jit(step)
    rng = np.random.default_rng(9)
    for _ in range(3):
        x = rng.standard_normal((5, 2, 2))
        for p in params:
            p.grad = None
        eager = step(x)
        want = [p.grad.data.copy() for p in params]  # type: ignore[union-attr]
        for p in params:
            p.grad = None
        got = jitted(x)
        np.testing.assert_allclose(got.data, eager.data, rtol=1e-12, atol=1e-12)
        for p, w in zip(params, want):
            np.testing.assert_allclose(p.grad.data, w, rtol=1e-12, atol=1e-12)  # type: ignore[union-attr]
    assert len(jitted.programs) == 1


def test_lstm_step_with_projection_is_one_more_matmul() -> None:
    """The projection is one matmul per step on top of the usual census (which the cell's
    own test pins down), and it is absent without proj_size."""

    def census(layer: Any) -> dict[str, int]:
        out, _ = layer(np.zeros((1, 1, 2)))
        names: list[str] = []
        seen: set[int] = set()
        stack = [out]
        while stack:
            t = stack.pop()
            if id(t) in seen or t._node is None or t._node.inputs is None:
                continue
            seen.add(id(t))
            names.append(t._node.prim.name)
            stack.extend(p for p in t._node.inputs if p is not None)
        return {n: names.count(n) for n in set(names)}

    rng = np.random.default_rng(0)
    plain = census(nn.LSTM(2, 4, dtype=np.float64, rng=rng))
    projected = census(nn.LSTM(2, 4, proj_size=2, dtype=np.float64, rng=rng))
    assert "matmul" not in plain
    extra = {k: projected.get(k, 0) - plain.get(k, 0) for k in set(plain) | set(projected)}
    # One matmul, and W_hrᵀ is one more transpose (made once per direction, not per step).
    assert {k: v for k, v in extra.items() if v} == {"matmul": 1, "transpose": 1}


# --------------------------------------------------------------------- Embedding padding_idx


@given(
    V=st.integers(2, 8),
    E=st.integers(1, 4),
    idx_shape=st.lists(st.integers(0, 4), min_size=1, max_size=2).map(tuple),
    data=st.data(),
)
def test_embedding_padding_idx_matches_torch(
    V: int, E: int, idx_shape: tuple[int, ...], data: Any
) -> None:
    pad = data.draw(st.integers(-V, V - 1), label="padding_idx")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    torch.manual_seed(seed)
    tm = torch.nn.Embedding(V, E, padding_idx=pad).double()
    ours = nn.Embedding.from_torch(tm)
    assert ours.padding_idx == tm.padding_idx and repr(ours) == repr(tm)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, V, idx_shape)
    if idx.size:
        idx.flat[0] = pad % V  # the padding index appears at least once
    out_t, out = tm(torch.from_numpy(idx)), ours(idx)
    close(out, out_t, "output")
    w = rng.standard_normal(out.shape)
    (out_t * torch.tensor(w)).sum().backward()
    (out * w).sum().backward()
    close(ours.weight.grad, tm.weight.grad, "weight grad")
    assert not np.any(ours.weight.grad.data[pad])  # type: ignore[union-attr]


def test_embedding_padding_idx_initialised_to_zero_and_stays_after_training() -> None:
    emb = nn.Embedding(6, 3, padding_idx=-2, dtype=np.float64, rng=np.random.default_rng(1))
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.data[4], 0.0)
    assert np.all(np.delete(emb.weight.data, 4, axis=0) != 0)
    opt = tg.optim.SGD(emb.parameters(), lr=0.5)
    idx = np.array([[4, 0, 4], [1, 4, 5]])
    for _ in range(3):
        opt.zero_grad()
        (emb(idx) ** 2).sum().backward()
        opt.step()
    np.testing.assert_array_equal(emb.weight.data[4], 0.0)


def test_embedding_padding_idx_under_jit_equals_eager() -> None:
    emb = nn.Embedding(5, 3, padding_idx=0, dtype=np.float64, rng=np.random.default_rng(2))

    def step(idx: Any, w: Any) -> Any:
        loss = (emb(idx) * w).sum()
        loss.backward()
        return loss

    jitted = tg.jit(step)
    rng = np.random.default_rng(3)
    for _ in range(3):  # new indices on every call: the padding mask follows them
        idx, w = rng.integers(0, 5, (4, 2)), rng.standard_normal((4, 2, 3))
        emb.weight.grad = None
        eager = step(idx, w)
        want = emb.weight.grad.data.copy()  # type: ignore[union-attr]
        emb.weight.grad = None
        np.testing.assert_allclose(jitted(idx, w).data, eager.data, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(emb.weight.grad.data, want, rtol=1e-12, atol=1e-12)  # type: ignore[union-attr]
    assert len(jitted.programs) == 1


def test_embedding_padding_idx_errors() -> None:
    for bad in (5, -6, 100):
        with pytest.raises(ValueError, match=r"Embedding: padding_idx .*num_embeddings=5"):
            nn.Embedding(5, 2, padding_idx=bad)
    with pytest.raises(TypeError, match="Embedding: padding_idx must be an int"):
        nn.Embedding(5, 2, padding_idx=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="padding row"):
        tm = torch.nn.Embedding(4, 2, padding_idx=1)
        with torch.no_grad():
            tm.weight[1] = 1.0
        nn.Embedding.from_torch(tm)
    with pytest.raises(ValueError, match="scale_grad_by_freq"):
        nn.Embedding.from_torch(torch.nn.Embedding(4, 2, scale_grad_by_freq=True))


# ------------------------------------------------------------------------------ Module.to


def test_module_to_float64_then_matches_torch_double() -> None:
    torch.manual_seed(5)
    emb_t = torch.nn.Embedding(7, 3, padding_idx=0)
    lstm_t = torch.nn.LSTM(3, 4, num_layers=2, proj_size=2, bidirectional=True)
    head_t = torch.nn.Linear(4, 3)
    emb, lstm, head = (nn.module_from_torch(m) for m in (emb_t, lstm_t, head_t))
    model = nn.Sequential(emb, nn.Linear(3, 3))  # a container too
    lstm.weight_ih_l0.grad = tg.Tensor(np.ones((16, 3), np.float32))  # a stale gradient
    params_before = [id(p) for p in lstm.parameters()]
    assert lstm.to(np.float64) is lstm and model.to("float64") is model
    assert head.to(torch.float64) is head
    assert [id(p) for p in lstm.parameters()] == params_before  # same Parameter objects
    assert all(p.dtype == np.float64 for m in (emb, lstm, head) for p in m.parameters())
    assert lstm.dtype == emb.dtype == head.dtype == np.float64
    assert lstm.weight_ih_l0.grad.dtype == np.float64  # type: ignore[union-attr]
    lstm.zero_grad()
    for m in (emb_t, lstm_t, head_t):
        m.double()
    idx = np.random.default_rng(6).integers(0, 7, (5, 2))
    idx[0, 0] = 0
    out_t = head_t(lstm_t(emb_t(torch.from_numpy(idx)))[0])
    out = head(lstm(emb(idx))[0])
    close(out, out_t, "output after to(float64)")
    w = np.random.default_rng(7).standard_normal(out.shape)
    (out_t * torch.tensor(w)).sum().backward()
    (out * w).sum().backward()
    for ours, theirs in ((emb, emb_t), (lstm, lstm_t), (head, head_t)):
        tp = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            close(p.grad, tp[name].grad, name)


def test_module_to_back_to_float32_and_errors() -> None:
    lin = nn.Linear(2, 3, dtype=np.float64, rng=np.random.default_rng(0))
    before = lin.weight.data.copy()
    lin.to(np.dtype("float32"))
    assert lin.weight.dtype == np.float32 and lin.dtype == np.float32
    np.testing.assert_array_equal(lin.weight.data, before.astype(np.float32))
    out = lin(np.ones((1, 2)))
    assert out.dtype == np.float32
    with pytest.raises(TypeError, match="has dtype float64 but the parameters are float32"):
        lin(tg.Tensor(np.ones((1, 2))))
    for bad in (np.int64, "int32", "cpu", bool):
        with pytest.raises(TypeError, match=r"Linear\.to: dtype must be a floating dtype"):
            lin.to(bad)
    assert lin.weight.dtype == np.float32  # a refused conversion changes nothing
    same = lin.weight.data
    lin.to(np.float32)
    assert lin.weight.data is same  # already that dtype: nothing copied


# ------------------------------------------------------------ dropout= in eval mode, config


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_layer_with_dropout_in_eval_matches_torch_eval(kind: str, bidirectional: bool) -> None:
    torch.manual_seed(3)
    tm = getattr(torch.nn, kind)(
        3, 4, num_layers=3, dropout=0.4, bidirectional=bidirectional
    ).double()
    tm.eval()
    ours = getattr(nn, kind).from_torch(tm)
    assert ours.dropout == 0.4 and not ours.training  # the mode crosses too
    assert repr(ours) == repr(tm)
    x = np.random.default_rng(4).standard_normal((5, 2, 3))
    check_all(ours, tm, x, None)
    # Built here and switched to eval: the same.
    mine = getattr(nn, kind)(
        3, 4, num_layers=3, dropout=0.4, bidirectional=bidirectional, dtype=np.float64
    )
    nn.load_torch_state_dict(mine, tm.state_dict())
    mine.eval()
    for p in tm.parameters():
        p.grad = None
    check_all(mine, tm, x, None)


def test_dropout_and_sequential_from_torch_keep_p_and_mode() -> None:
    seq_t = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Dropout(0.25)).double().eval()
    seq = nn.module_from_torch(seq_t)
    assert isinstance(seq[1], nn.Dropout) and seq[1].p == 0.25
    assert not seq.training and not seq[1].training
    x = np.random.default_rng(0).standard_normal((4, 2))
    close(seq(x), seq_t(torch.from_numpy(x)), "sequential in eval")
    assert nn.Dropout.from_torch(torch.nn.Dropout(0.1)).training
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"


def test_recurrent_argument_errors() -> None:
    for bad in (-1, 4, 5):
        with pytest.raises(ValueError, match=r"LSTM: proj_size must be in \[0, hidden_size\)"):
            nn.LSTM(2, 4, proj_size=bad)
    with pytest.raises(TypeError, match="LSTM: proj_size must be an int"):
        nn.LSTM(2, 4, proj_size=2.0)  # type: ignore[arg-type]
    for kind in ("RNN", "LSTM", "GRU"):
        for bad in (-0.1, 1, 1.5):
            with pytest.raises(ValueError, match=rf"{kind}: dropout must be in \[0, 1\)"):
                getattr(nn, kind)(2, 3, num_layers=2, dropout=bad)
        with pytest.raises(TypeError, match=rf"{kind}: dropout must be a number"):
            getattr(nn, kind)(2, 3, num_layers=2, dropout="0.1")
        with pytest.warns(UserWarning, match=r"dropout=0\.5 .*num_layers=1"):
            getattr(nn, kind)(2, 3, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(2, 3, num_layers=2, dropout=0.5)  # no warning with layers to drop between
        nn.LSTM.from_torch(torch.nn.LSTM(2, 3, num_layers=2, dropout=0.5))
    lstm = nn.LSTM(2, 4, num_layers=2, proj_size=3)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 1, 3\).*proj_size"):
        lstm(np.zeros((2, 1, 2), np.float32), (np.zeros((2, 1, 4)), np.zeros((2, 1, 4))))
    with pytest.raises(ValueError, match=r"c0 must have shape \(2, 1, 4\).*hidden_size"):
        lstm(np.zeros((2, 1, 2), np.float32), (np.zeros((2, 1, 3)), np.zeros((2, 1, 3))))
    with pytest.raises(ValueError, match="cell_from_layer: an LSTM with proj_size=3"):
        nn.cell_from_layer(lstm)
    with pytest.raises(ValueError, match="proj_size=3"):
        nn.lstm_to_document(nn.LSTM(2, 4, proj_size=3), nn.Linear(3, 2))
