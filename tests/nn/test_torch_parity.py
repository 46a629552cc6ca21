"""Cross-checks against PyTorch (float64): outputs, final states, every gradient, state_dicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402

RTOL, ATOL = 1e-6, 1e-12
T, B, D, H = 4, 3, 3, 5


def close(ours: Any, theirs: Any, what: str) -> None:
    np.testing.assert_allclose(
        ours.data if isinstance(ours, tg.Tensor) else ours,
        theirs.detach().numpy(),
        rtol=RTOL,
        atol=ATOL,
        err_msg=what,
    )


def flat_state(state: Any) -> list[Any]:
    return list(state) if isinstance(state, tuple) else [state]


LAYER_CONFIGS = [
    {},
    {"num_layers": 2},
    {"bidirectional": True},
    {"batch_first": True},
    {"num_layers": 2, "bidirectional": True, "batch_first": True},
    {"bias": False, "num_layers": 2},
]


@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=lambda c: ",".join(c) or "default")
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU", "RNN_relu"])
def test_layer_matches_torch(name: str, config: dict[str, Any], with_h0: bool) -> None:
    torch.manual_seed(0)
    kind, extra = name.split("_")[0], {}
    if name == "RNN_relu":
        extra = {"nonlinearity": "relu"}
    tm = getattr(torch.nn, kind)(D, H, **config, **extra).double()
    ours = getattr(nn, kind).from_torch(tm)
    assert ours.dtype == np.float64
    if name != "RNN_relu":  # torch's repr omits the nonlinearity; ours shows a non-default one
        assert repr(ours) == repr(tm)
    rng = np.random.default_rng(1)
    n = tm.num_layers * (2 if tm.bidirectional else 1)
    x_np = rng.standard_normal((B, T, D) if tm.batch_first else (T, B, D))
    h_np = [rng.standard_normal((n, B, H)) for _ in range(2 if kind == "LSTM" else 1)]

    x_t = torch.tensor(x_np, requires_grad=True)
    h_t = [torch.tensor(h, requires_grad=True) for h in h_np]
    x = tg.Tensor(x_np, requires_grad=True)
    h = [tg.Tensor(a, requires_grad=True) for a in h_np]
    hx_t = (tuple(h_t) if kind == "LSTM" else h_t[0]) if with_h0 else None
    hx = (tuple(h) if kind == "LSTM" else h[0]) if with_h0 else None

    out_t, final_t = tm(x_t, hx_t)
    out, final = ours(x, hx)
    close(out, out_t, "output")
    for k, (a, b) in enumerate(zip(flat_state(final), flat_state(final_t))):
        close(a, b, f"final state {k}")

    # Random upstream gradients for every output, so each output's backward is checked.
    weights = [rng.standard_normal(t.shape) for t in [out_t, *flat_state(final_t)]]
    loss_t = sum(
        (t * torch.tensor(w)).sum() for t, w in zip([out_t, *flat_state(final_t)], weights)
    )
    loss = sum((t * w).sum() for t, w in zip([out, *flat_state(final)], weights))
    loss_t.backward()
    loss.backward()
    close(x.grad, x_t.grad, "input grad")
    if with_h0:
        for k, (a, b) in enumerate(zip(h, h_t)):
            close(a.grad, b.grad, f"h0 grad {k}")
    torch_params = dict(tm.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(torch_params)
    for pname, p in ours.named_parameters():
        close(p.grad, torch_params[pname].grad, pname)


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("name", ["RNNCell", "RNNCell_relu", "LSTMCell", "GRUCell"])
def test_cell_matches_torch(name: str, with_state: bool) -> None:
    torch.manual_seed(1)
    kind = name.split("_")[0]
    extra = {"nonlinearity": "relu"} if name.endswith("relu") else {}
    tm = getattr(torch.nn, kind)(D, H, **extra).double()
    ours = getattr(nn, kind).from_torch(tm)
    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((B, D))
    s_np = [rng.standard_normal((B, H)) for _ in range(2 if kind == "LSTMCell" else 1)]
    x_t, x = torch.tensor(x_np, requires_grad=True), tg.Tensor(x_np, requires_grad=True)
    s_t = [torch.tensor(a, requires_grad=True) for a in s_np]
    s = [tg.Tensor(a, requires_grad=True) for a in s_np]
    pack = (lambda v: tuple(v)) if kind == "LSTMCell" else (lambda v: v[0])
    new_t = tm(x_t, pack(s_t) if with_state else None)
    new = ours(x, pack(s) if with_state else None)
    outs_t, outs = flat_state(new_t), flat_state(new)
    weights = [rng.standard_normal(o.shape) for o in outs_t]
    sum((o * torch.tensor(w)).sum() for o, w in zip(outs_t, weights)).backward()
    sum((o * w).sum() for o, w in zip(outs, weights)).backward()
    for k, (a, b) in enumerate(zip(outs, outs_t)):
        close(a, b, f"output {k}")
    close(x.grad, x_t.grad, "input grad")
    if with_state:
        for k, (a, b) in enumerate(zip(s, s_t)):
            close(a.grad, b.grad, f"state grad {k}")
    torch_params = dict(tm.named_parameters())
    for pname, p in ours.named_parameters():
        close(p.grad, torch_params[pname].grad, pname)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_state_dict_round_trip_into_torch(kind: str) -> None:
    ours = getattr(nn, kind)(D, H, num_layers=2, bidirectional=True, rng=np.random.default_rng(3))
    tm = getattr(torch.nn, kind)(D, H, num_layers=2, bidirectional=True)
    sd = nn.to_torch_state_dict(ours)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})  # strict in torch too
    x = np.random.default_rng(4).standard_normal((T, B, D)).astype(np.float32)
    np.testing.assert_allclose(
        ours(x)[0].data, tm(torch.from_numpy(x))[0].detach().numpy(), rtol=1e-5, atol=1e-6
    )
    back = getattr(nn, kind)(D, H, num_layers=2, bidirectional=True)
    nn.load_torch_state_dict(back, tm.state_dict())
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])


def test_dtype_follows_torch_and_other_modules() -> None:
    torch.manual_seed(2)
    lstm32 = nn.LSTM.from_torch(torch.nn.LSTM(D, H))
    assert lstm32.weight_ih_l0.dtype == np.float32
    lin_t = torch.nn.Linear(D, H).double()
    lin = nn.Linear.from_torch(lin_t)
    x = np.random.default_rng(5).standard_normal((2, D))
    close(lin(x), lin_t(torch.from_numpy(x)), "linear")
    emb_t = torch.nn.Embedding(7, 3)
    emb = nn.Embedding.from_torch(emb_t)
    idx = np.array([[1, 6], [0, 1]])
    np.testing.assert_array_equal(emb(idx).data, emb_t(torch.from_numpy(idx)).detach().numpy())
    seq_t = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Linear(H, 2)).double()
    seq = nn.module_from_torch(seq_t)
    assert isinstance(seq, nn.Sequential)
    close(seq(x), seq_t(torch.from_numpy(x)), "sequential")
    assert isinstance(nn.module_from_torch(torch.nn.GRUCell(2, 3)), nn.GRUCell)


def test_from_torch_errors() -> None:
    with pytest.raises(TypeError, match=r"expected a torch.nn.LSTM, got GRU"):
        nn.LSTM.from_torch(torch.nn.GRU(2, 3))
    with pytest.raises(TypeError, match=r"expected a torch.nn.RNNCell, got RNN"):
        nn.RNNCell.from_torch(torch.nn.RNN(2, 3))
    with pytest.raises(TypeError, match="float16"):
        nn.Linear.from_torch(torch.nn.Linear(2, 3).half())
    with pytest.raises(ValueError, match="max_norm"):
        nn.Embedding.from_torch(torch.nn.Embedding(4, 2, max_norm=1.0))
    with pytest.raises(TypeError, match=r"no counterpart for torch\.nn\.Conv1d"):
        nn.module_from_torch(torch.nn.Conv1d(1, 1, 1))


def test_torch_to_ours_to_document() -> None:
    """torch LSTM -> ours -> seed 004's parameters: the document's forward gives torch's output."""
    torch.manual_seed(3)
    K = 4
    lstm_t, head_t = torch.nn.LSTM(D, H).double(), torch.nn.Linear(H, K).double()
    doc = nn.lstm_to_document(nn.LSTM.from_torch(lstm_t), nn.Linear.from_torch(head_t))
    x = np.random.default_rng(6).standard_normal((T, B, D))
    h, c = np.zeros((B, H)), np.zeros((B, H))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    ys = []
    for t in range(T):
        z = np.concatenate([h, x[t]], axis=1)  # hidden state first
        f, i = sig(z @ doc["W_f"] + doc["b_f"]), sig(z @ doc["W_i"] + doc["b_i"])
        c = f * c + i * np.tanh(z @ doc["W_c"] + doc["b_c"])
        h = sig(z @ doc["W_o"] + doc["b_o"]) * np.tanh(c)
        ys.append(h @ doc["W_y"] + doc["b_y"])
    out_t, _ = lstm_t(torch.from_numpy(x))
    close(np.stack(ys), head_t(out_t), "document forward vs torch")

    rnn_t, head_t = torch.nn.RNN(D, H).double(), torch.nn.Linear(H, K).double()
    p = nn.rnn_to_document(nn.RNN.from_torch(rnn_t), nn.Linear.from_torch(head_t))
    s, os = np.zeros((B, H)), []
    for t in range(T):
        s = np.tanh((p["U"] @ x[t].T + p["W"] @ s.T).T + p["b"])  # column-vector form
        os.append((p["V"] @ s.T).T + p["c"])
    close(np.stack(os), head_t(rnn_t(torch.from_numpy(x))[0]), "document RNN vs torch")


def test_losses_from_torch() -> None:
    rng = np.random.default_rng(7)
    logits, classes = rng.standard_normal((B, 4, T)), rng.integers(0, 4, (B, T))
    for reduction in ["mean", "sum", "none"]:
        ce_t = torch.nn.CrossEntropyLoss(reduction=reduction)
        ce = nn.module_from_torch(ce_t)
        assert isinstance(ce, nn.CrossEntropyLoss)
        close(ce(logits, classes), ce_t(torch.from_numpy(logits), torch.from_numpy(classes)), "ce")
    y = rng.random(logits.shape)
    mse = nn.MSELoss.from_torch(torch.nn.MSELoss(reduction="sum"))
    close(
        mse(logits, y),
        torch.nn.MSELoss(reduction="sum")(*map(torch.from_numpy, (logits, y))),
        "mse",
    )
    bce = nn.BCEWithLogitsLoss.from_torch(torch.nn.BCEWithLogitsLoss())
    close(bce(logits, y), torch.nn.BCEWithLogitsLoss()(*map(torch.from_numpy, (logits, y))), "bce")
    with pytest.raises(ValueError, match="weight="):
        nn.CrossEntropyLoss.from_torch(torch.nn.CrossEntropyLoss(weight=torch.ones(4)))
    with pytest.raises(ValueError, match="pos_weight"):
        nn.BCEWithLogitsLoss.from_torch(torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(1)))
    with pytest.raises(TypeError, match=r"expected a torch\.nn\.MSELoss"):
        nn.MSELoss.from_torch(torch.nn.L1Loss())
