"""Dropout, the module and between the layers of RNN/LSTM/GRU, in training mode.

Oracles: a binomial bound on the fraction zeroed (it can fail: a mask that zeroed a
different fraction would); the scale ``1/(1-p)`` read off the output; the identity in eval
and with ``p = 0``; the gradient identity ``∂L/∂x = mask/(1-p) · ∂L/∂y``; fresh masks on every
call and on every jit replay; and for the layers PyTorch 2.13 (float64, 1e-9) running its
layers one at a time with the very masks our layer drew put between them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

from _dropout_masks import MaskRecorder  # noqa: E402

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402

Tensor = tg.Tensor


def binomial_bound(p: float, n: int, sigmas: float = 6.0) -> float:
    """How far the fraction of n Bernoulli(p) draws may stray from p (6 sigma: 1 in 5e8)."""
    return sigmas * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_fraction_zeroed_and_scale(p: float) -> None:
    n = 200_000
    x = np.random.default_rng(0).uniform(0.5, 2.0, n)  # never zero: a zero output is a drop
    drop = nn.Dropout(p, rng=np.random.default_rng(1))
    y = drop(Tensor(x)).data
    zeroed = y == 0
    assert abs(zeroed.mean() - p) < binomial_bound(p, n)
    np.testing.assert_allclose(y[~zeroed], x[~zeroed] / (1 - p), rtol=1e-15)


@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
        elements=st.floats(-4, 4, width=32),
    ),
    p=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**16),
)
def test_every_element_is_dropped_or_scaled_and_the_gradient_is_the_mask(
    x: np.ndarray, p: float, seed: int
) -> None:
    before = x.copy()
    t = Tensor(x, requires_grad=True)
    y = nn.Dropout(p, rng=np.random.default_rng(seed))(t)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(x, before)  # the caller's array is not modified
    if p == 0:
        assert y is t
    scale = x.dtype.type(1.0 / (1.0 - p))  # 1/(1-p), rounded once to the dtype
    kept = y.data != 0
    np.testing.assert_array_equal(y.data[kept], (x * scale)[kept])
    upstream = np.random.default_rng(seed + 1).standard_normal(x.shape).astype(x.dtype)
    (y * upstream).sum().backward()
    # ∂L/∂x = mask · upstream, mask = 1/(1-p) where kept, else 0. Where x is 0 the output
    # cannot tell dropped from kept: those elements are left out.
    visible = x != 0
    want = np.where(kept, scale, x.dtype.type(0)) * upstream
    np.testing.assert_array_equal(t.grad.data[visible], want[visible])  # type: ignore[union-attr]


def test_identity_in_eval_and_with_p_zero() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    drop = nn.Dropout(0.5)
    assert drop.eval() is drop and not drop.training
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x  # training, but nothing to drop
    drop.train()
    assert not np.array_equal(drop(x).data, x.data)


def test_fresh_mask_on_every_call_and_reproducible_with_rng() -> None:
    x = Tensor(np.ones(1000))
    drop = nn.Dropout(0.5, rng=np.random.default_rng(3))
    a, b = drop(x).data, drop(x).data
    assert not np.array_equal(a, b)
    again = nn.Dropout(0.5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(again(x).data, a)
    np.testing.assert_array_equal(again(x).data, b)
    tg.manual_seed(11)
    c = nn.Dropout(0.5)(x).data
    tg.manual_seed(11)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x).data, c)  # the package's generator


def test_fresh_mask_on_every_jit_replay_and_gradient_is_mask() -> None:
    p = 0.3
    drop = nn.Dropout(p, rng=np.random.default_rng(5))
    w = tg.Tensor(np.random.default_rng(6).uniform(1, 2, (50, 8)), requires_grad=True)

    def step(x: Any, g: Any) -> Any:
        y = drop(x * w)
        (y * g).sum().backward()
        return y

    jitted = tg.jit(step)
    rng = np.random.default_rng(7)
    x, g = rng.uniform(1, 2, (50, 8)), rng.standard_normal((50, 8))
    masks = []
    for _ in range(3):  # the trace, then two replays
        w.grad = None
        y = jitted(x, g).data
        mask = y / (x * w.data)  # 0 or 1/(1-p): x·w is never 0
        assert set(np.round(np.unique(mask), 12)) <= {0.0, round(1 / (1 - p), 12)}
        assert abs((mask == 0).mean() - p) < binomial_bound(p, mask.size)
        # ∂L/∂w = x · mask · g: the product's rule through the mask of this very call.
        np.testing.assert_allclose(w.grad.data, x * mask * g, rtol=1e-12, atol=1e-15)  # type: ignore[union-attr]
        masks.append(mask)
    assert len(jitted.programs) == 1
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
    drop.eval()  # a new mode is a different function: eval replays are the identity
    w.grad = None
    np.testing.assert_array_equal(tg.jit(step)(x, g).data, x * w.data)


def test_dropout_errors() -> None:
    for bad in (-0.1, 1, 1.0, 2):
        with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\)"):
            nn.Dropout(bad)
    with pytest.raises(TypeError, match="Dropout: p must be a number"):
        nn.Dropout("0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Dropout: rng must be a numpy\.random\.Generator"):
        nn.Dropout(0.5, rng=np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Dropout: input must be floating point"):
        nn.Dropout(0.5)(np.arange(3))


# ------------------------------------------------------------------------ between layers


def torch_layer(kind: str, tm: Any, k: int, in_size: int) -> Any:
    """Layer ``k`` of the torch stack ``tm`` as a one-layer torch module of its own."""
    extra = {"proj_size": tm.proj_size} if kind == "LSTM" else {}
    one = getattr(torch.nn, kind)(
        in_size, tm.hidden_size, bidirectional=tm.bidirectional, **extra
    ).double()
    sd = {
        name.replace(f"_l{k}", "_l0"): v
        for name, v in tm.state_dict().items()
        if f"_l{k}" in name and not name.split(f"_l{k}")[1][:1].isdigit()
    }
    one.load_state_dict(sd)
    return one


@pytest.mark.parametrize(
    ("kind", "proj_size", "bidirectional"),
    [
        ("RNN", 0, False),
        ("LSTM", 0, False),
        ("GRU", 0, False),
        ("LSTM", 2, True),
        ("GRU", 0, True),
        ("RNN", 0, True),
    ],
)
def test_training_dropout_between_layers_matches_torch_with_the_same_masks(
    kind: str, proj_size: int, bidirectional: bool, monkeypatch: Any
) -> None:
    """Our 3-layer stack in training = torch's layers run one by one with our masks between
    them (outputs, h_n/c_n, every gradient); no mask after the last layer."""
    extra = {"proj_size": proj_size} if proj_size else {}
    p, T, B, D, H = 0.4, 4, 3, 3, 5
    torch.manual_seed(1)
    tm = getattr(torch.nn, kind)(
        D, H, num_layers=3, dropout=p, bidirectional=bidirectional, **extra
    ).double()
    ours = getattr(nn, kind).from_torch(tm)
    assert ours.training
    recorder = MaskRecorder(monkeypatch)
    x_np = np.random.default_rng(2).standard_normal((T, B, D))
    x = Tensor(x_np, requires_grad=True)
    out, fin = ours(x)
    dirs, R = 2 if bidirectional else 1, proj_size or H
    assert [m.shape for m in recorder.masks] == [(T, B, dirs * R)] * 2  # after layers 0 and 1
    for m in recorder.masks:
        assert set(np.unique(m)) <= {0.0, 1 / (1 - p)}

    x_t = torch.tensor(x_np, requires_grad=True)
    layers = [torch_layer(kind, tm, k, D if k == 0 else dirs * R) for k in range(3)]
    h, finals_t = x_t, []
    for k, layer in enumerate(layers):
        h, f = layer(h)
        finals_t.append(f)
        if k < 2:
            h = h * torch.tensor(recorder.masks[k])
    is_lstm = kind == "LSTM"
    fin_t = (
        [torch.cat([f[i] for f in finals_t]) for i in range(2)]
        if is_lstm
        else [torch.cat(finals_t)]
    )
    fin = list(fin) if is_lstm else [fin]
    outs_t, outs = [h, *fin_t], [out, *fin]
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal(o.shape) for o in outs_t]
    sum((o * torch.tensor(w)).sum() for o, w in zip(outs_t, weights)).backward()
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    for a, b in zip(outs, outs_t):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, x_t.grad.numpy(), rtol=1e-9, atol=1e-12)  # type: ignore[union-attr]
    for name, param in ours.named_parameters():
        k = int(name.split("_l")[1][0])
        theirs = dict(layers[k].named_parameters())[name.replace(f"_l{k}", "_l0")]
        np.testing.assert_allclose(
            param.grad.data,  # type: ignore[union-attr]
            theirs.grad.numpy(),
            rtol=1e-9,
            atol=1e-12,
            err_msg=name,
        )


@given(
    T=st.integers(1, 4),
    B=st.integers(1, 4),
    H=st.integers(1, 5),
    num_layers=st.integers(1, 3),
    kind=st.sampled_from(["RNN", "LSTM", "GRU"]),
)
def test_no_mask_in_eval_or_after_the_last_layer(
    T: int, B: int, H: int, num_layers: int, kind: str
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        recorder = MaskRecorder(mp)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer = getattr(nn, kind)(2, H, num_layers=num_layers, dropout=0.5, dtype=np.float64)
        assert len(caught) == (num_layers == 1)  # the warning only where dropout does nothing
        x = np.random.default_rng(T).standard_normal((T, B, 2))
        train_out = layer(x)[0].data
        assert len(recorder.masks) == num_layers - 1
        layer.eval()
        eval_out = layer(x)[0].data
        assert len(recorder.masks) == num_layers - 1  # none drawn in eval
        if num_layers == 1:  # nothing between layers: training is eval
            np.testing.assert_array_equal(train_out, eval_out)


def test_layer_dropout_fresh_under_jit_and_reproducible_with_rng() -> None:
    def make() -> Any:
        return nn.LSTM(
            2, 6, num_layers=2, dropout=0.5, dtype=np.float64, rng=np.random.default_rng(4)
        )

    lstm = make()
    x = np.random.default_rng(5).standard_normal((3, 20, 2))
    forward = tg.jit(lambda v: lstm(v)[0])
    outs = [forward(x).data for _ in range(3)]
    assert len(forward.programs) == 1
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])
    # The same seed, eagerly: the same masks in the same order as the trace and the replays.
    twin = make()
    for o in outs:
        np.testing.assert_allclose(twin(x)[0].data, o, rtol=1e-12, atol=1e-14)
    lstm.eval()
    ev = tg.jit(lambda v: lstm(v)[0])
    np.testing.assert_array_equal(ev(x).data, ev(x).data)
