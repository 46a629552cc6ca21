"""AdamW and parameter groups of ``tinygrad_rnn.optim``, against PyTorch 2.13 in float64.

Every trajectory is compared with ``torch.optim`` given the same starting weights and the
same gradients (a nonlinear gradient field of the current weights, or the backward of an
LSTM on the same data), step by step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import functional as F  # noqa: E402
from tinygrad_rnn import nn, optim  # noqa: E402
from tinygrad_rnn.tensor import Tensor  # noqa: E402

RTOL, ATOL = 1e-9, 1e-12
SHAPES = [(3, 4), (5,), (2, 2, 3), ()]


def _grad_fn(p: np.ndarray) -> np.ndarray:
    """A nonlinear gradient field, so each step depends on where the last one landed."""
    return np.sin(3.0 * p) + 0.1 * p**3 - 0.5


def _start(seed: int, shapes: list[tuple[int, ...]] = SHAPES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _ours(values: list[np.ndarray], dtype: Any = np.float64) -> list[Tensor]:
    return [Tensor(v, requires_grad=True, dtype=dtype) for v in values]


def _theirs(values: list[np.ndarray]) -> list[Any]:
    return [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]


def _groups(spec: list[dict[str, Any]], params: list[Any]) -> list[dict[str, Any]]:
    """``spec`` with ``"params"`` given as indices into ``params``."""
    return [{**g, "params": [params[i] for i in g["params"]]} for g in spec]


def _step_both(opt: optim.Optimizer, ps: list[Tensor], topt: Any, tps: list[Any]) -> None:
    for p, tp in zip(ps, tps):
        p.grad = Tensor(_grad_fn(p.data))
        tp.grad = torch.from_numpy(np.asarray(_grad_fn(tp.detach().numpy())))
    opt.step()
    topt.step()


def _assert_same(ps: list[Tensor], tps: list[Any], what: str) -> None:
    for k, (p, tp) in enumerate(zip(ps, tps)):
        np.testing.assert_allclose(
            p.data, tp.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=f"{what}, param {k}"
        )


def _compare(
    make: Callable[[list[Tensor]], optim.Optimizer],
    make_torch: Callable[[list[Any]], Any],
    steps: int = 8,
    seed: int = 0,
) -> None:
    values = _start(seed)
    ps, tps = _ours(values), _theirs(values)
    opt, topt = make(ps), make_torch(tps)
    for t in range(steps):
        _step_both(opt, ps, topt, tps)
        _assert_same(ps, tps, f"after step {t + 1}")


# ------------------------------------------------------------------------------ AdamW
ADAMW_CONFIGS = [
    {},
    {"lr": 0.05, "weight_decay": 0.1},
    {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.3},
    {"lr": 0.01, "weight_decay": 0.0},
]


@pytest.mark.parametrize("config", ADAMW_CONFIGS, ids=lambda c: ",".join(c) or "defaults")
def test_adamw_matches_torch_over_steps(config: dict[str, Any]) -> None:
    _compare(lambda ps: optim.AdamW(ps, **config), lambda tps: torch.optim.AdamW(tps, **config))


def test_adamw_defaults_are_torchs() -> None:
    w = Tensor(np.zeros(2), requires_grad=True)
    ours = optim.AdamW([w]).param_groups[0]
    theirs = torch.optim.AdamW([torch.zeros(2, requires_grad=True)]).param_groups[0]
    for name in ("lr", "betas", "eps", "weight_decay"):
        assert ours[name] == theirs[name], name
    assert isinstance(optim.AdamW([Tensor(np.zeros(2), requires_grad=True)]), optim.Adam)


def test_adamw_decay_is_decoupled_unlike_adam_l2() -> None:
    """With a zero gradient AdamW only shrinks the weights, by exactly (1 - lr * wd) a step;
    Adam's L2 term goes through the moments instead."""
    w0 = np.array([1.0, -2.0, 3.0])
    w = Tensor(w0, requires_grad=True)
    opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    for _ in range(3):
        w.grad = Tensor(np.zeros(3))
        opt.step()
    np.testing.assert_allclose(w.data, w0 * (1 - 0.1 * 0.5) ** 3, rtol=1e-15)
    v = Tensor(w0, requires_grad=True)
    adam = optim.Adam([v], lr=0.1, weight_decay=0.5)
    v.grad = Tensor(np.zeros(3))
    adam.step()
    assert not np.allclose(v.data, w0 * (1 - 0.1 * 0.5))


def test_adamw_param_groups_with_different_lrs_match_torch() -> None:
    spec = [
        {"params": [0, 1], "lr": 0.05},
        {"params": [2], "weight_decay": 0.0},
        {"params": [3], "lr": 0.001, "betas": (0.5, 0.9), "eps": 1e-4},
    ]
    _compare(
        lambda ps: optim.AdamW(_groups(spec, ps), lr=0.02, weight_decay=0.05),
        lambda tps: torch.optim.AdamW(_groups(spec, tps), lr=0.02, weight_decay=0.05),
        steps=10,
    )


def test_adamw_on_an_lstm_matches_torch() -> None:
    """Weights from torch, gradients by each engine's own backward, two groups (no decay on
    biases), six steps: every parameter equal after every step."""
    torch.manual_seed(0)
    t_lstm, t_head = torch.nn.LSTM(3, 5).double(), torch.nn.Linear(5, 2).double()
    lstm, head = nn.LSTM.from_torch(t_lstm), nn.Linear.from_torch(t_head)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 4, 3)), rng.standard_normal((6, 4, 2))

    def split(named: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"params": [p for n, p in named if "bias" not in n]},
            {"params": [p for n, p in named if "bias" in n], "weight_decay": 0.0, "lr": 0.03},
        ]

    ours_named = [*lstm.named_parameters(), *head.named_parameters()]
    theirs_named = [*t_lstm.named_parameters(), *t_head.named_parameters()]
    assert [n for n, _ in ours_named] == [n for n, _ in theirs_named]
    opt = optim.AdamW(split(ours_named), lr=0.01, weight_decay=0.1)
    topt = torch.optim.AdamW(split(theirs_named), lr=0.01, weight_decay=0.1)
    for t in range(6):
        opt.zero_grad()
        F.mse_loss(head(lstm(x)[0]), y).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.mse_loss(
            t_head(t_lstm(torch.from_numpy(x))[0]), torch.from_numpy(y)
        ).backward()
        topt.step()
        for (name, p), (_, tp) in zip(ours_named, theirs_named):
            np.testing.assert_allclose(
                p.data, tp.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=f"{name}, step {t + 1}"
            )


# ---------------------------------------------------------------- groups, every optimizer
_TORCH = {
    "SGD": lambda groups, **kw: torch.optim.SGD(groups, **kw),
    "Adam": lambda groups, **kw: torch.optim.Adam(groups, **kw),
    "AdamW": lambda groups, **kw: torch.optim.AdamW(groups, **kw),
    "RMSProp": lambda groups, **kw: torch.optim.RMSprop(groups, **kw),
}


def _group_hparams(name: str) -> st.SearchStrategy[dict[str, Any]]:
    lr = st.floats(1e-4, 0.3)
    wd = st.sampled_from([0.0, 0.01, 0.2])
    if name == "SGD":
        return st.fixed_dictionaries(
            {},
            optional={"lr": lr, "momentum": st.sampled_from([0.0, 0.5, 0.9]), "weight_decay": wd},
        )
    if name == "RMSProp":
        return st.fixed_dictionaries(
            {}, optional={"lr": lr, "alpha": st.sampled_from([0.9, 0.99]), "eps": st.just(1e-6)}
        )
    betas = st.tuples(st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.9, 0.999]))
    return st.fixed_dictionaries({}, optional={"lr": lr, "betas": betas, "weight_decay": wd})


@given(data=st.data(), name=st.sampled_from(sorted(_TORCH)), n_groups=st.integers(1, 3))
def test_param_groups_of_every_optimizer_match_torch(
    data: st.DataObject, name: str, n_groups: int
) -> None:
    # The four parameters dealt out to the groups, in order; each group gets at least one.
    cuts = sorted(
        data.draw(st.sets(st.integers(1, 3), min_size=n_groups - 1, max_size=n_groups - 1))
    )
    bounds = [0, *cuts, 4]
    spec = [
        {"params": list(range(bounds[g], bounds[g + 1])), **data.draw(_group_hparams(name))}
        for g in range(n_groups)
    ]
    defaults: dict[str, Any] = {"lr": 0.05} if name != "SGD" else {"lr": 0.05, "momentum": 0.5}
    ours_cls = getattr(optim, name)
    _compare(
        lambda ps: ours_cls(_groups(spec, ps), **defaults),
        lambda tps: _TORCH[name](_groups(spec, tps), **defaults),
        steps=5,
        seed=n_groups,
    )


def test_param_groups_look_like_torchs() -> None:
    ps = _ours(_start(0))
    opt = optim.SGD([{"params": ps[:2], "lr": 0.1}, {"params": ps[2:]}], lr=0.01, momentum=0.9)
    assert isinstance(opt.param_groups, list) and len(opt.param_groups) == 2
    first, second = opt.param_groups
    assert first["params"] == ps[:2] and second["params"] == ps[2:]
    assert first == {
        "params": ps[:2],
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "nesterov": False,
    }
    assert second["lr"] == 0.01
    assert opt.params == ps
    assert opt.defaults == {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False}
    assert "group 0: 2 params, lr=0.1; group 1: 2 params, lr=0.01" in repr(opt)


def test_a_group_with_a_single_tensor_and_a_generator() -> None:
    ps = _ours(_start(0))
    opt = optim.Adam([{"params": ps[0]}, {"params": (p for p in ps[1:])}])
    assert opt.param_groups[0]["params"] == [ps[0]] and opt.params == ps


def test_changing_a_group_lr_changes_that_group_only() -> None:
    a, b = _ours([np.ones(2), np.ones(2)])
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    opt.param_groups[1]["lr"] = 0.5
    a.grad = b.grad = Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(a.data, [0.9, 0.9])
    np.testing.assert_array_equal(b.data, [0.5, 0.5])


def test_a_numpy_lr_put_into_a_group_does_not_upcast_float32() -> None:
    (w,) = _ours([np.ones(3)], dtype=np.float32)
    opt = optim.AdamW([w])
    opt.param_groups[0]["lr"] = np.float64(0.01)
    w.grad = Tensor(np.ones(3, dtype=np.float32))
    opt.step()
    assert w.dtype == np.float32 and opt.state[0]["m"].dtype == np.float32


def test_add_param_group_matches_torch() -> None:
    values = _start(3)
    ps, tps = _ours(values), _theirs(values)
    opt = optim.AdamW(ps[:2], lr=0.01)
    topt = torch.optim.AdamW(tps[:2], lr=0.01)
    for t in range(6):
        if t == 2:
            opt.add_param_group({"params": ps[2:], "lr": 0.1, "weight_decay": 0.0})
            topt.add_param_group({"params": tps[2:], "lr": 0.1, "weight_decay": 0.0})
        n = 2 if t < 2 else 4
        _step_both(opt, ps[:n], topt, tps[:n])
        _assert_same(ps, tps, f"after step {t + 1}")
    assert len(opt.state) == 4 and int(opt.state[2]["step"]) == 4


def test_lr_property_with_groups() -> None:
    ps = _ours(_start(0))
    opt = optim.SGD([{"params": ps[:2], "lr": 0.1}, {"params": ps[2:]}], lr=0.01)
    with pytest.raises(
        ValueError, match=r"SGD\.lr: the param groups have different learning rates \[0\.1, 0\.01\]"
    ):
        _ = opt.lr
    opt.lr = 0.2
    assert opt.lr == 0.2 and [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    assert opt.defaults["lr"] == 0.2


# --------------------------------------------------------------------------- state dicts
def test_state_dict_with_groups_resumes_exactly(tmp_path: Path) -> None:
    spec = [{"params": [0, 1], "lr": 0.05}, {"params": [2, 3], "weight_decay": 0.0}]
    values = _start(4)
    ps = _ours(values)
    opt = optim.AdamW(_groups(spec, ps), lr=0.01)
    for _ in range(3):
        for p in ps:
            p.grad = Tensor(_grad_fn(p.data))
        opt.step()
    opt.param_groups[1]["lr"] = 0.002  # a change the state dict must carry
    sd = opt.state_dict()
    np.testing.assert_array_equal(sd["param_groups.0.params"], [0, 1])
    np.testing.assert_array_equal(sd["param_groups.1.params"], [2, 3])
    assert (
        float(sd["param_groups.1.lr"]) == 0.002 and float(sd["param_groups.1.weight_decay"]) == 0.0
    )
    tg.save({"optim": sd}, tmp_path / "opt.npz")

    qs = [Tensor(p.data, requires_grad=True) for p in ps]
    fresh = optim.AdamW(_groups(spec, qs), lr=0.5)
    fresh.load_state_dict(tg.load(tmp_path / "opt.npz")["optim"])
    assert [g["lr"] for g in fresh.param_groups] == [0.05, 0.002]
    assert fresh.step_count == 3
    for _ in range(4):
        for p, q in zip(ps, qs):
            p.grad = Tensor(_grad_fn(p.data))
            q.grad = Tensor(_grad_fn(q.data))
        opt.step()
        fresh.step()
        for p, q in zip(ps, qs):
            np.testing.assert_array_equal(q.data, p.data)


def test_the_flat_state_dict_of_earlier_versions_still_loads() -> None:
    (w,) = _ours([np.ones(3)])
    old = {
        "step": np.asarray(2),
        "lr": np.asarray(0.25),
        "betas": np.asarray([0.8, 0.9]),
        "eps": np.asarray(1e-7),
        "weight_decay": np.asarray(0.0),
        "state.0.m": np.full(3, 0.5),
        "state.0.v": np.full(3, 0.25),
        "state.0.step": np.asarray(2),
    }
    opt = optim.Adam([w])
    opt.load_state_dict(old)
    assert opt.param_groups[0]["lr"] == 0.25 and opt.param_groups[0]["betas"] == (0.8, 0.9)
    np.testing.assert_array_equal(opt.state[0]["m"], np.full(3, 0.5))
    two = optim.Adam([{"params": [w]}, {"params": _ours([np.ones(2)])}])
    with pytest.raises(
        ValueError, match=r"Adam\.load_state_dict: .*earlier versions.*2 param groups"
    ):
        two.load_state_dict(old)


def _two_group_state() -> tuple[optim.AdamW, dict[str, np.ndarray]]:
    ps = _ours(_start(5))
    opt = optim.AdamW([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.1}])
    for p in ps:
        p.grad = Tensor(np.ones(p.shape))
    opt.step()
    return opt, opt.state_dict()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("param_groups.1.")],
            r"the state dict has 1 param group\(s\) but this optimizer has 2",
        ),
        (lambda sd: sd.pop("param_groups.1.lr"), r"missing key\(s\) 'param_groups\.1\.lr'"),
        (
            lambda sd: sd.update({"param_groups.1.params": np.arange(1, 3)}),
            r"'param_groups\.1\.params' has shape \(2,\) but this optimizer expects shape \(3,\)",
        ),
        (
            lambda sd: sd.update({"param_groups.1.params": np.array([3, 2, 1])}),
            r"'param_groups\.1\.params' is \[3, 2, 1\] but this optimizer's group 1 holds "
            r"parameters \[1, 2, 3\]",
        ),
        (
            lambda sd: sd.update({"param_groups.1.lr": np.asarray(-0.1)}),
            r"param_groups\[1\]: lr must be a finite number >= 0, got -0\.1",
        ),
        (
            lambda sd: sd.update({"param_groups.0.momentum": np.asarray(0.9)}),
            r"unexpected key\(s\) 'param_groups\.0\.momentum'",
        ),
    ],
    ids=["group_count", "missing_lr", "group_size", "group_order", "group_lr", "unknown_hparam"],
)
def test_load_state_dict_with_groups_rejects_and_changes_nothing(change: Any, match: str) -> None:
    opt, good = _two_group_state()
    before = opt.state_dict()
    bad = copy.deepcopy(good)
    change(bad)
    with pytest.raises(ValueError, match=rf"AdamW\.load_state_dict: .*{match}"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_initial_lr_of_a_scheduler_is_saved_and_optional() -> None:
    opt, _ = _two_group_state()
    optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    sd = opt.state_dict()
    assert float(sd["param_groups.1.initial_lr"]) == 0.1
    plain, _ = _two_group_state()
    plain.load_state_dict(sd)  # a fresh optimizer without a scheduler takes it
    assert plain.param_groups[1]["initial_lr"] == 0.1
    opt.load_state_dict(_two_group_state()[1])  # and one with a scheduler keeps its own
    assert opt.param_groups[1]["initial_lr"] == 0.1


# ------------------------------------------------------------------------------ bad input
def _w(n: int = 3) -> Tensor:
    return Tensor(np.zeros(n), requires_grad=True)


def _twice() -> Any:
    w = _w()
    return optim.SGD([{"params": [w]}, {"params": [_w(), w]}], lr=0.1)


def _add_twice() -> Any:
    w = _w()
    optim.SGD([w], lr=0.1).add_param_group({"params": [w]})


GROUP_ERRORS = [
    (
        lambda: optim.SGD([{"lr": 0.1}], lr=0.1),
        ValueError,
        r"SGD: param_groups\[0\] has no 'params' entry \(its keys: 'lr'\)",
    ),
    (
        _twice,
        ValueError,
        r"SGD: param_groups\[1\]\['params'\]\[1\] is already in param_groups\[0\]\['params'\]; "
        "a parameter may be in only one group",
    ),
    (
        lambda: (lambda w: optim.SGD([{"params": [w, w]}], lr=0.1))(_w()),
        ValueError,
        r"param_groups\[0\]\['params'\]\[1\] is the same tensor as "
        r"param_groups\[0\]\['params'\]\[0\]",
    ),
    (
        lambda: optim.SGD([_w(), {"params": [_w()]}], lr=0.1),
        TypeError,
        r"SGD: params\[0\] is a Tensor but params\[1\] is a param group dict",
    ),
    (
        lambda: optim.SGD([{"params": [_w()], "learning_rate": 0.1}], lr=0.1),
        ValueError,
        r"param_groups\[0\] has key\(s\) 'learning_rate' that are not hyperparameters of SGD; "
        "its hyperparameters are lr, momentum, weight_decay, nesterov",
    ),
    (
        lambda: optim.AdamW([{"params": [_w()]}, {"params": [_w()], "lr": -1}]),
        ValueError,
        r"AdamW: param_groups\[1\]: lr must be a finite number >= 0, got -1",
    ),
    (
        lambda: optim.SGD([{"params": [_w()], "nesterov": True}], lr=0.1),
        ValueError,
        r"SGD: param_groups\[0\]: nesterov=True requires momentum > 0",
    ),
    (
        lambda: optim.SGD([{"params": []}], lr=0.1),
        ValueError,
        r"SGD: param_groups\[0\]\['params'\] is empty",
    ),
    (
        lambda: optim.SGD([{"params": {_w()}}], lr=0.1),
        TypeError,
        r"param_groups\[0\]\['params'\] must be an ordered collection such as a list, got a set",
    ),
    (
        lambda: optim.SGD({_w()}, lr=0.1),
        TypeError,
        r"SGD: params must be an ordered collection such as a list, got a set",
    ),
    (
        lambda: optim.SGD([{"params": [np.zeros(2)]}], lr=0.1),
        TypeError,
        r"param_groups\[0\]\['params'\]\[0\] is a ndarray, expected a Tensor",
    ),
    (
        lambda: optim.SGD([_w()], lr=0.1).add_param_group([_w()]),  # type: ignore[arg-type]
        TypeError,
        r"SGD\.add_param_group: a param group must be a dict with a 'params' entry, got list",
    ),
    (
        _add_twice,
        ValueError,
        r"SGD\.add_param_group: param_groups\[1\]\['params'\]\[0\] is already in param_groups\[0\]",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), GROUP_ERRORS)
def test_bad_groups_are_clear_errors(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_a_bad_lr_put_into_a_group_fails_the_step_and_changes_nothing() -> None:
    a, b = _ours([np.ones(2), np.ones(2)])
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1, momentum=0.9)
    a.grad = b.grad = Tensor(np.ones(2))
    opt.param_groups[1]["lr"] = -0.5
    with pytest.raises(
        ValueError, match=r"SGD\.step: param_groups\[1\]: lr must be a finite number >= 0"
    ):
        opt.step()
    np.testing.assert_array_equal(a.data, [1.0, 1.0])  # group 0 was not stepped either
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], [0.0, 0.0])
    assert opt.step_count == 0


def test_the_group_dicts_passed_in_are_not_modified() -> None:
    ws = [_w(), _w()]
    given = [{"params": [ws[0]], "lr": 0.1}, {"params": [ws[1]]}]
    snapshot = [dict(g) for g in given]
    opt = optim.AdamW(given)
    optim.lr_scheduler.StepLR(opt, step_size=2)
    assert given == snapshot and all("initial_lr" not in g for g in given)
    assert opt.param_groups[0] is not given[0]
