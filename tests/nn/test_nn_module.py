"""Module mechanics: registration, names, state_dict, modes, repr; Linear, Embedding, Sequential."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.scope import record_scopes


class Net(nn.Module):
    """A small model with nested children, for the mechanics tests."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.scale = nn.Parameter(np.ones(2))
        self.lstm = nn.LSTM(3, 2, dtype=np.float64, rng=rng)
        self.head = nn.Linear(2, 4, dtype=np.float64, rng=rng)
        self.offset = nn.Parameter(np.zeros(4))

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        out, _ = self.lstm(x)
        return self.head(out * self.scale) + self.offset


# ------------------------------------------------------------------------------ Parameter


def test_parameter_requires_grad_and_copies() -> None:
    a = np.arange(3.0)
    p = nn.Parameter(a)
    a[0] = 99.0
    assert p.requires_grad and p.is_leaf and isinstance(p, tg.Tensor)
    assert p.data[0] == 0.0
    assert repr(p).startswith("Parameter(")


def test_parameter_rejects_integer_data() -> None:
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(np.arange(3))


def test_parameter_has_no_dict() -> None:
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(AttributeError):
        p.extra = 1  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- registration


def test_registration_order_and_dotted_names() -> None:
    names = [n for n, _ in Net().named_parameters()]
    assert names == [
        "scale",
        "offset",
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "lstm.bias_ih_l0",
        "lstm.bias_hh_l0",
        "head.weight",
        "head.bias",
    ]


def test_children_modules_and_param_names() -> None:
    net = Net()
    assert [n for n, _ in net.named_children()] == ["lstm", "head"]
    assert list(net.children()) == [net.lstm, net.head]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "LSTM", "Linear"]
    assert net.lstm.weight_ih_l0.name == "weight_ih_l0"
    assert net.head._scope_name == "head"


def test_shared_parameter_listed_once() -> None:
    a = nn.Linear(2, 2, dtype=np.float64)
    b = nn.Linear(2, 2, dtype=np.float64)
    b.weight = a.weight
    seq = nn.Sequential(a, b)
    assert len(list(seq.parameters())) == 3


def test_reassigning_removes_registration() -> None:
    lin = nn.Linear(2, 3, dtype=np.float64)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="weight"):
        lin.weight = tg.Tensor(np.zeros((3, 2)))  # type: ignore[assignment]
    del lin.weight
    assert list(lin.parameters()) == []


def test_forgetting_super_init_is_explained() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match="super"):
        Bad()


def test_forward_must_be_defined() -> None:
    with pytest.raises(NotImplementedError):
        nn.Module()()


# --------------------------------------------------------------------------- state dict


def test_state_dict_is_a_copy_and_round_trips() -> None:
    net, other = Net(), Net()
    for p in other.parameters():
        p.data = p.data + 1.0
    sd = net.state_dict()
    sd["head.weight"][...] = 123.0  # a copy: the module is unchanged
    assert not np.any(net.head.weight.data == 123.0)
    sd = net.state_dict()
    old = other.head.weight.data
    result = other.load_state_dict(sd)
    assert result == nn.IncompatibleKeys([], [])
    for (n, p), (n2, q) in zip(net.named_parameters(), other.named_parameters()):
        assert n == n2
        np.testing.assert_array_equal(p.data, q.data)
    assert other.head.weight.data is not old  # a NEW array, not written in place
    assert old[0, 0] == net.head.weight.data[0, 0] + 1.0
    sd["head.bias"][...] = 7.0  # the loaded arrays are copies as well
    assert not np.any(other.head.bias.data == 7.0)  # type: ignore[union-attr]


def test_load_state_dict_casts_dtype() -> None:
    lin = nn.Linear(2, 3, dtype=np.float32)
    lin.load_state_dict({"weight": np.ones((3, 2), dtype=np.float64), "bias": [1, 2, 3]})
    assert lin.weight.dtype == np.float32 and lin.bias is not None
    assert lin.bias.dtype == np.float32
    np.testing.assert_array_equal(lin.bias.data, [1, 2, 3])


def test_load_state_dict_missing_and_unexpected_keys() -> None:
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    with pytest.raises(KeyError, match=r"missing keys \['head.bias'\]"):
        net.load_state_dict(sd)
    sd = net.state_dict()
    sd["extra.w"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra.w'\]"):
        net.load_state_dict(sd)
    with pytest.raises(nn.StateDictError):
        net.load_state_dict({})


def test_load_state_dict_non_strict_reports_keys() -> None:
    lin = nn.Linear(2, 3, dtype=np.float64)
    res = lin.load_state_dict({"weight": np.zeros((3, 2)), "junk": np.zeros(1)}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["junk"]
    assert np.all(lin.weight.data == 0)


def test_load_state_dict_wrong_shape_names_parameter_and_shapes() -> None:
    net = Net()
    sd = net.state_dict()
    before = net.state_dict()
    sd["scale"] = np.zeros(2)  # valid, must NOT be applied since another entry fails
    sd["lstm.weight_hh_l0"] = np.zeros((8, 3))
    with pytest.raises(ValueError, match=r"'lstm.weight_hh_l0'.*\(8, 2\).*\(8, 3\)"):
        net.load_state_dict(sd)
    np.testing.assert_array_equal(net.scale.data, before["scale"])


def test_load_state_dict_rejects_non_numeric() -> None:
    lin = nn.Linear(1, 1, dtype=np.float64)
    with pytest.raises(TypeError, match="weight"):
        lin.load_state_dict({"weight": np.array([["a"]]), "bias": np.zeros(1)})


# ------------------------------------------------------------------------ modes and grads


def test_zero_grad_and_train_eval() -> None:
    net = Net()
    x = np.random.default_rng(1).standard_normal((3, 2, 3))
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.training and net.lstm.training
    assert net.eval() is net
    assert not net.training and not net.lstm.training and not net.head.training
    net.train()
    assert net.head.training


def test_repr_lists_children() -> None:
    text = repr(Net())
    assert text == (
        "Net(\n  (lstm): LSTM(3, 2)\n  (head): Linear(in_features=2, out_features=4, bias=True)\n)"
    )
    seq = nn.Sequential(nn.Linear(1, 2, bias=False), nn.Sequential(nn.Embedding(5, 2)))
    assert repr(seq) == (
        "Sequential(\n"
        "  (0): Linear(in_features=1, out_features=2, bias=False)\n"
        "  (1): Sequential(\n"
        "    (0): Embedding(5, 2)\n"
        "  )\n"
        ")"
    )


def test_call_runs_forward_in_module_scope() -> None:
    net = Net()
    x = np.zeros((2, 1, 3))
    with record_scopes():
        y = net(x)
    assert y._node is not None
    assert y._node.scope == ("net",)  # the final add runs in Net's own forward
    scopes = set()
    stack = [y]
    while stack:
        t = stack.pop()
        if t._node is not None and t._node.inputs is not None:
            scopes.add(t._node.scope)
            stack.extend(p for p in t._node.inputs if p is not None)
    assert ("net", "head") in scopes
    assert ("net", "lstm", "l0", "t=1") in scopes


# ------------------------------------------------------------------ Linear and Embedding


def test_linear_forward_init_and_shapes() -> None:
    rng = np.random.default_rng(0)
    lin = nn.Linear(4, 3, dtype=np.float64, rng=rng)
    assert lin.weight.shape == (3, 4) and lin.bias is not None and lin.bias.shape == (3,)
    assert np.all(np.abs(lin.weight.data) <= 0.5)  # U(-1/√4, 1/√4)
    x = rng.standard_normal((2, 5, 4))
    np.testing.assert_allclose(
        lin(x).data, x @ lin.weight.data.T + lin.bias.data, rtol=1e-12, atol=1e-12
    )
    assert lin(x[0, 0]).shape == (3,)
    assert nn.Linear(4, 3).weight.dtype == np.float32


def test_linear_gradcheck() -> None:
    rng = np.random.default_rng(2)
    lin = nn.Linear(3, 2, dtype=np.float64, rng=rng)
    x = tg.Tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)
    assert tg.gradcheck(lambda x, *_: lin(x), [x, *lin.parameters()])


def test_linear_errors() -> None:
    lin = nn.Linear(3, 2, dtype=np.float64)
    with pytest.raises(ValueError, match="in_features=3"):
        lin(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="float32"):
        lin(tg.Tensor(np.zeros((2, 3), dtype=np.float32)))
    with pytest.raises(TypeError, match="input"):
        lin("abc")
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 2)
    with pytest.raises(TypeError, match="out_features"):
        nn.Linear(2, 2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(2, 2, dtype=np.int64)


def test_embedding_lookup_and_gradient() -> None:
    rng = np.random.default_rng(3)
    emb = nn.Embedding(5, 3, dtype=np.float64, rng=rng)
    idx = np.array([[0, 4], [4, 1]])
    out = emb(idx)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx])
    out.sum().backward()
    assert emb.weight.grad is not None
    np.testing.assert_array_equal(emb.weight.grad.data[:, 0], [1, 1, 0, 0, 2])
    assert tg.gradcheck(lambda w: emb(idx) * 1.5, [emb.weight])


def test_sequential() -> None:
    rng = np.random.default_rng(4)
    a, b = nn.Linear(2, 3, dtype=np.float64, rng=rng), nn.Linear(3, 1, dtype=np.float64, rng=rng)
    seq = nn.Sequential(a, b)
    x = rng.standard_normal((4, 2))
    np.testing.assert_array_equal(seq(x).data, b(a(x)).data)
    assert len(seq) == 2 and seq[1] is b and list(seq) == [a, b]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert a._scope_name == "linear0" and b._scope_name == "linear1"
    with pytest.raises(TypeError, match="argument 1"):
        nn.Sequential(a, "b")  # type: ignore[arg-type]
