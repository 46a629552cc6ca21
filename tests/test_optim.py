"""Optimizers and gradient clipping of ``tinygrad_rnn.optim``.

Every oracle is written here again from the published formula, in plain numpy
(Adagrad: min-char-rnn's own lines), never by calling the code under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_rnn.optim import (
    SGD,
    Adagrad,
    Adam,
    Optimizer,
    RMSProp,
    clip_grad_norm_,
    clip_grad_value_,
)
from tinygrad_rnn.tensor import Tensor

MakeOpt = Callable[[list[Tensor]], Optimizer]

# One configuration of each optimizer (and of each SGD flavour) for the generic tests.
OPTIMIZERS: dict[str, MakeOpt] = {
    "sgd": lambda ps: SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: SGD(ps, lr=0.05, momentum=0.9),
    "sgd_nesterov": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "sgd_nesterov_wd": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adagrad": lambda ps: Adagrad(ps, lr=0.5),
    "rmsprop": lambda ps: RMSProp(ps, lr=0.01),
    "adam": lambda ps: Adam(ps, lr=0.05),
    "adam_wd": lambda ps: Adam(ps, lr=0.05, weight_decay=0.01),
}


def _param(shape: tuple[int, ...], seed: int, dtype: Any = np.float64) -> Tensor:
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal(shape), requires_grad=True, dtype=dtype)


def _grad_fn(p: np.ndarray) -> np.ndarray:
    """A nonlinear gradient field, so each step depends on where the last one landed."""
    return np.sin(3.0 * p) + 0.1 * p**3 - 0.5


def _run(opt: Optimizer, params: list[Tensor], steps: int) -> list[list[np.ndarray]]:
    """``steps`` optimizer steps with ``grad = _grad_fn(p)``; the parameters after each."""
    out = []
    for _ in range(steps):
        for p in params:
            p.grad = Tensor(_grad_fn(p.data))
        opt.step()
        out.append([p.data.copy() for p in params])
    return out


def _assert_trajectories(
    got: list[list[np.ndarray]], want: list[list[np.ndarray]], exact: bool = False
) -> None:
    assert len(got) == len(want)
    for t, (gs, ws) in enumerate(zip(got, want)):
        for g, w in zip(gs, ws):
            if exact:
                np.testing.assert_array_equal(g, w, err_msg=f"step {t + 1}")
            else:
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=f"step {t + 1}")


STEPS = 5


def _unchecked(x: Any) -> Any:
    """Pass a deliberately wrong type past mypy."""
    return x


SHAPES = [(3, 4), (5,)]


def _fresh() -> tuple[list[Tensor], list[np.ndarray]]:
    params = [_param(s, seed=k) for k, s in enumerate(SHAPES)]
    return params, [p.data.copy() for p in params]


# ------------------------------------------------------------ trajectories
@pytest.mark.parametrize(
    ("momentum", "weight_decay", "nesterov"),
    [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.1, False), (0.8, 0.0, True), (0.5, 0.2, True)],
)
def test_sgd_trajectory_matches_pytorch_formula(
    momentum: float, weight_decay: float, nesterov: bool
) -> None:
    params, ref = _fresh()
    lr = 0.1
    got = _run(SGD(params, lr, momentum, weight_decay, nesterov), params, STEPS)
    # PyTorch's documented algorithm: the buffer is g on the first step, then mu*b + g.
    bufs: list[np.ndarray | None] = [None] * len(ref)
    want = []
    for _ in range(STEPS):
        for i, p in enumerate(ref):
            d = _grad_fn(p)
            if weight_decay:
                d = d + weight_decay * p
            if momentum:
                prev = bufs[i]
                b = d.copy() if prev is None else momentum * prev + d
                bufs[i] = b
                d = d + momentum * b if nesterov else b
            ref[i] = p - lr * d
        want.append([p.copy() for p in ref])
    _assert_trajectories(got, want)


def test_sgd_without_momentum_is_exactly_p_minus_lr_g() -> None:
    params, ref = _fresh()
    got = _run(SGD(params, lr=0.3), params, STEPS)
    want = []
    for _ in range(STEPS):
        ref = [p - 0.3 * _grad_fn(p) for p in ref]
        want.append(ref)
    _assert_trajectories(got, want, exact=True)


def test_adagrad_is_min_char_rnn_bit_for_bit() -> None:
    params, ref = _fresh()
    learning_rate = 0.1
    got = _run(Adagrad(params, lr=learning_rate), params, STEPS)
    # min-char-rnn.py, the update loop verbatim (1e-8 is its eps):
    mems = [np.zeros_like(p) for p in ref]
    want = []
    for _ in range(STEPS):
        grads = [_grad_fn(p) for p in ref]
        for param, dparam, mem in zip(ref, grads, mems):
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)  # adagrad update
        want.append([p.copy() for p in ref])
    _assert_trajectories(got, want, exact=True)


def test_clip_value_then_adagrad_is_min_char_rnn_update() -> None:
    """min-char-rnn's whole update: clip every gradient to [-5, 5], then Adagrad."""
    rng = np.random.default_rng(7)
    params, ref = _fresh()
    opt = Adagrad(params, lr=0.1)
    mems = [np.zeros_like(p) for p in ref]
    for _ in range(STEPS):
        raw = [20.0 * rng.standard_normal(p.shape) for p in ref]  # many beyond ±5
        for p, g in zip(params, raw):
            p.grad = Tensor(g)
        clip_grad_value_(params, 5)
        opt.step()
        for dparam in raw:
            np.clip(dparam, -5, 5, out=dparam)  # clip to mitigate exploding gradients
        for param, dparam, mem in zip(ref, raw, mems):
            mem += dparam * dparam
            param += -0.1 * dparam / np.sqrt(mem + 1e-8)  # adagrad update
        for p, r in zip(params, ref):
            np.testing.assert_array_equal(p.data, r)


def test_rmsprop_trajectory_matches_formula() -> None:
    params, ref = _fresh()
    lr, alpha, eps = 0.01, 0.9, 1e-6
    got = _run(RMSProp(params, lr=lr, alpha=alpha, eps=eps), params, STEPS)
    sq = [np.zeros_like(p) for p in ref]
    want = []
    for _ in range(STEPS):
        for i, p in enumerate(ref):
            g = _grad_fn(p)
            sq[i] = alpha * sq[i] + (1 - alpha) * g**2
            ref[i] = p - lr * g / (np.sqrt(sq[i]) + eps)
        want.append([p.copy() for p in ref])
    _assert_trajectories(got, want)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_trajectory_matches_kingma_ba(weight_decay: float) -> None:
    params, ref = _fresh()
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-7
    got = _run(Adam(params, lr, (b1, b2), eps, weight_decay), params, STEPS)
    # Kingma & Ba, Algorithm 1 (with L2 added to the gradient, PyTorch's weight_decay).
    m = [np.zeros_like(p) for p in ref]
    v = [np.zeros_like(p) for p in ref]
    want = []
    for t in range(1, STEPS + 1):
        for i, p in enumerate(ref):
            g = _grad_fn(p) + weight_decay * p
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g**2
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            ref[i] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        want.append([p.copy() for p in ref])
    _assert_trajectories(got, want)


def test_adam_bias_correction_counts_each_parameters_own_steps() -> None:
    """A parameter without a gradient for a while starts at t = 1 when it gets one."""
    a, b = _param((3,), 0), _param((3,), 1)
    b0 = b.data.copy()
    opt = Adam([a, b], lr=0.1)
    for _ in range(3):
        a.grad = Tensor(_grad_fn(a.data))
        opt.step()
    np.testing.assert_array_equal(b.data, b0)
    b.grad = Tensor(_grad_fn(b0))
    opt.step()
    g = _grad_fn(b0)
    m_hat = (0.1 * g) / (1 - 0.9)
    v_hat = (0.001 * g**2) / (1 - 0.999)
    np.testing.assert_allclose(b.data, b0 - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-12)
    assert opt.step_count == 4


# ---------------------------------------------------- minimising a quadratic
def _quadratic() -> tuple[Callable[[Tensor], Tensor], float]:
    """0.5 ||A w - b||² with A well conditioned; returns the loss and its minimum (0)."""
    rng = np.random.default_rng(0)
    n = 8
    a = Tensor(np.eye(n) + 0.1 * rng.standard_normal((n, n)))
    b = Tensor(rng.standard_normal(n))

    def loss(w: Tensor) -> Tensor:
        r = a @ w - b
        return (r * r).sum() * 0.5

    return loss, 0.0


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if not n.endswith("_wd")])
def test_minimises_convex_quadratic_with_autograd(name: str) -> None:
    """Weight decay moves the minimum away from 0, so those configurations are left out."""
    loss_fn, _ = _quadratic()
    w = Tensor(np.zeros(8), requires_grad=True)
    opt = OPTIMIZERS[name]([w])
    first = loss_fn(w).item()
    for _ in range(400):
        opt.zero_grad()
        loss = loss_fn(w)
        loss.backward()
        opt.step()
    last = loss_fn(w).item()
    assert last < first / 1e4, f"{name}: loss {first} -> {last}"


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float32_parameters_stay_float32(name: str) -> None:
    params = [_param(s, seed=k, dtype=np.float32) for k, s in enumerate(SHAPES)]
    opt = OPTIMIZERS[name](params)
    _run(opt, params, 3)
    for p in params:
        assert p.dtype == np.float32
    for st_ in opt.state:
        for key, arr in st_.items():
            if key != "step":
                assert arr.dtype == np.float32, key


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=np.float64(0.1), momentum=np.float64(0.5)),
        lambda ps: Adagrad(ps, lr=np.float64(0.1), eps=np.float64(1e-8)),
        lambda ps: RMSProp(ps, lr=np.float64(0.1), alpha=np.float64(0.9)),
        lambda ps: Adam(ps, lr=np.float64(0.1), betas=(np.float64(0.9), np.float64(0.99))),
    ],
)
def test_numpy_float64_hyperparameters_do_not_upcast(make: MakeOpt) -> None:
    """Under numpy 2, ``np.float64(0.1) * float32_array`` is float64: they must be converted."""
    p = _param((4,), 0, dtype=np.float32)
    opt = make([p])
    p.grad = Tensor(np.ones(4, dtype=np.float32))
    opt.step()
    assert p.dtype == np.float32


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float64_grad_on_float32_param_keeps_float32(name: str) -> None:
    p = _param((4,), 0, dtype=np.float32)
    opt = OPTIMIZERS[name]([p])
    for _ in range(2):
        p.grad = Tensor(np.ones(4))  # float64, set by hand
        opt.step()
    assert p.dtype == np.float32
    for arr in opt.state[0].values():
        assert arr.dtype in (np.float32, np.int64)


# --------------------------------------------------- grads, zero_grad, skipping
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_params_without_grad_are_untouched(name: str) -> None:
    a, b = _param((3,), 0), _param((2, 2), 1)
    b_array = b.data
    b_copy = b.data.copy()
    opt = OPTIMIZERS[name]([a, b])
    a0 = a.data.copy()
    for _ in range(3):
        a.grad = Tensor(_grad_fn(a.data))
        opt.step()
    assert b.data is b_array
    np.testing.assert_array_equal(b.data, b_copy)
    assert b.grad is None
    assert not np.array_equal(a.data, a0)
    for arr in opt.state[1].values():
        assert not arr.any(), "state of a parameter that never had a gradient changed"


def test_zero_grad_clears_every_grad() -> None:
    params = [_param(s, seed=k) for k, s in enumerate(SHAPES)]
    opt = SGD(params, lr=0.1)
    (params[0].sum() + (params[1] * params[1]).sum()).backward()
    assert all(p.grad is not None for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_never_writes_into_the_gradient(name: str) -> None:
    p = _param((3, 2), 0)
    opt = OPTIMIZERS[name]([p])
    for _ in range(3):
        g = _grad_fn(p.data)
        p.grad = Tensor._make(g)
        kept = g.copy()
        opt.step()
        np.testing.assert_array_equal(g, kept)
        assert p.grad.data is g


def test_step_checks_every_grad_before_changing_any_parameter() -> None:
    a, b = _param((3,), 0), _param((2,), 1)
    a0 = a.data
    opt = SGD([a, b], lr=0.1)
    a.grad = Tensor(np.ones(3))
    b.grad = Tensor(np.ones(3))  # wrong shape
    with pytest.raises(ValueError, match=r"params\[1\]\.grad has shape \(3,\).*\(2,\)"):
        opt.step()
    assert a.data is a0
    assert opt.step_count == 0


# ------------------------------------------------------------ safe by design
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_arrays_saved_in_a_graph_keep_their_values(name: str) -> None:
    w = _param((4,), 0)
    x = Tensor(np.arange(1.0, 5.0), requires_grad=True)
    opt = OPTIMIZERS[name]([w])
    w.grad = Tensor(np.ones(4))
    opt.step()  # a first step, so that momentum/state is non-trivial
    w.grad = Tensor(np.ones(4))
    y = (w * x).sum()  # saves w.data and x.data
    old = w.data
    old_values = old.copy()
    opt.step()
    np.testing.assert_array_equal(old, old_values)
    assert not np.array_equal(w.data, old_values)
    y.backward()
    # dy/dx = w at forward time, not the updated w.
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.data, old_values)


# ---------------------------------------------------------------- clipping
def _grads_of(params: list[Tensor]) -> np.ndarray:
    return np.concatenate([p.grad.data.ravel() for p in params if p.grad is not None])


def _with_grads(scale: float, dtype: Any = np.float64) -> list[Tensor]:
    rng = np.random.default_rng(3)
    params = [_param(s, seed=k, dtype=dtype) for k, s in enumerate([(3, 4), (5,), (2, 1, 2)])]
    for p in params:
        p.grad = Tensor(scale * rng.standard_normal(p.shape), dtype=dtype)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_returns_norm_before_and_clips_to_max(norm_type: float) -> None:
    params = _with_grads(10.0)
    before = _grads_of(params)
    total = np.linalg.norm(before, ord=norm_type)
    max_norm = 0.25 * float(total)
    got = clip_grad_norm_(params, max_norm, norm_type)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, total, rtol=1e-12)
    after = _grads_of(params)
    np.testing.assert_allclose(np.linalg.norm(after, ord=norm_type), max_norm, rtol=1e-12)
    np.testing.assert_allclose(after, before * (max_norm / total), rtol=1e-12)


def test_clip_grad_norm_leaves_small_grads_alone() -> None:
    params = _with_grads(0.01)
    arrays = [p.grad.data for p in params if p.grad is not None]
    copies = [a.copy() for a in arrays]
    total = clip_grad_norm_(params, max_norm=100.0)
    norm = np.linalg.norm(np.concatenate([c.ravel() for c in copies]))
    np.testing.assert_allclose(total, norm, rtol=1e-12)
    for p, a, c in zip(params, arrays, copies):
        assert p.grad is not None and p.grad.data is a
        np.testing.assert_array_equal(a, c)


def test_clip_grad_norm_replaces_grads_instead_of_mutating() -> None:
    params = _with_grads(10.0)
    old = [p.grad.data for p in params if p.grad is not None]
    copies = [a.copy() for a in old]
    clip_grad_norm_(params, max_norm=1.0)
    for p, a, c in zip(params, old, copies):
        np.testing.assert_array_equal(a, c)
        assert p.grad is not None and p.grad.data is not a


def test_clipping_is_right_when_backward_gives_two_leaves_the_same_array() -> None:
    """The engine may hand one gradient array to several leaves (``a + b``): in-place
    scaling would scale it once per leaf; replacing scales each gradient exactly once."""
    a, b = _param((3,), 0), _param((3,), 1)
    upstream = np.array([3.0, 4.0, 12.0])
    (a + b).backward(upstream.copy())
    assert a.grad is not None and b.grad is not None
    shared = a.grad.data
    total = clip_grad_norm_([a, b], max_norm=1.0)
    np.testing.assert_allclose(total, math.sqrt(2.0) * 13.0, rtol=1e-15)
    for p in (a, b):
        assert p.grad is not None
        np.testing.assert_allclose(p.grad.data, upstream / total, rtol=1e-15)
    np.testing.assert_array_equal(shared, upstream)
    clip_grad_value_([a, b], 0.1)
    for p in (a, b):
        assert p.grad is not None
        np.testing.assert_array_equal(p.grad.data, np.clip(upstream / total, -0.1, 0.1))


def test_clip_grad_norm_float32_skips_none_and_accepts_a_tensor() -> None:
    params = _with_grads(10.0, dtype=np.float32)
    params[1].grad = None
    norm = np.linalg.norm(_grads_of(params).astype(np.float64))
    total = clip_grad_norm_(iter(params), max_norm=1.0)
    np.testing.assert_allclose(total, norm, rtol=1e-6)
    assert norm > 1.0
    assert params[1].grad is None
    for p in (params[0], params[2]):
        assert p.grad is not None and p.grad.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(_grads_of(params).astype(np.float64)), 1.0, rtol=1e-6)
    single = _param((3,), 0)
    single.grad = Tensor([3.0, 4.0, 0.0])
    assert clip_grad_norm_(single, 1.0) == 5.0
    assert single.grad is not None
    np.testing.assert_allclose(single.grad.data, [0.6, 0.8, 0.0], rtol=1e-15)
    assert clip_grad_norm_([_param((2,), 0)], 1.0) == 0.0


def test_clip_grad_norm_float32_does_not_overflow() -> None:
    p = _param((4,), 0, dtype=np.float32)
    p.grad = Tensor(np.full(4, 1e20, dtype=np.float32))  # squares overflow float32
    total = clip_grad_norm_([p], 1.0)
    np.testing.assert_allclose(total, 2e20, rtol=1e-6)
    assert p.grad is not None
    np.testing.assert_allclose(p.grad.data, 0.5, rtol=1e-6)


def test_clip_grad_norm_error_if_nonfinite() -> None:
    p = _param((2,), 0)
    p.grad = Tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="inf"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_np_clip_and_replaces(dtype: Any) -> None:
    params = _with_grads(10.0, dtype=dtype)
    params[2].grad = None
    old = [p.grad.data if p.grad is not None else None for p in params]
    copies = [None if a is None else a.copy() for a in old]
    clip_grad_value_(params, 5)
    for p, a, c in zip(params, old, copies):
        if a is None:
            assert p.grad is None
            continue
        assert c is not None and p.grad is not None
        np.testing.assert_array_equal(p.grad.data, np.clip(c, -5, 5))
        assert p.grad.dtype == dtype
        np.testing.assert_array_equal(a, c)  # the old array is untouched
        assert p.grad.data is not a
    first = copies[0]
    assert first is not None and np.abs(first).max() > 5  # the test clipped something


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda ps: clip_grad_norm_(ps, -1.0), ValueError, "max_norm"),
        (lambda ps: clip_grad_norm_(ps, 1.0, norm_type=0.0), ValueError, "norm_type"),
        (lambda ps: clip_grad_value_(ps, -1.0), ValueError, "clip_value"),
        (lambda ps: clip_grad_value_(ps, float("nan")), ValueError, "clip_value"),
        (
            lambda ps: clip_grad_value_([*ps, _unchecked(3.0)], 1.0),
            TypeError,
            r"params\[3\] is a float",
        ),
        (lambda ps: clip_grad_norm_([*ps, ps[0]], 1.0), ValueError, r"params\[3\].*params\[0\]"),
    ],
)
def test_clip_validation(call: Callable[[list[Tensor]], Any], exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        call(_with_grads(1.0))


# -------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_round_trip_through_npz(name: str, tmp_path: Path) -> None:
    params_a, _ = _fresh()
    opt_a = OPTIMIZERS[name](params_a)
    _run(opt_a, params_a, 3)
    sd = opt_a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert int(sd["step"]) == 3
    np.savez(tmp_path / "opt.npz", **_unchecked(sd))

    # A second model with the same weights, and a fresh optimizer resumed from disk.
    params_b = [Tensor(p.data, requires_grad=True) for p in params_a]
    opt_b = OPTIMIZERS[name](params_b)
    opt_b.param_groups[0]["lr"] = 123.0  # must be overwritten by the load
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as data:
        opt_b.load_state_dict(data)
    hparams = [{k: v for k, v in g.items() if k != "params"} for g in opt_b.param_groups]
    assert hparams == [{k: v for k, v in g.items() if k != "params"} for g in opt_a.param_groups]
    assert opt_b.step_count == 3
    _assert_trajectories(_run(opt_b, params_b, 4), _run(opt_a, params_a, 4), exact=True)


def test_state_dict_keys_and_copies() -> None:
    p, q = _param((2, 3), 0), _param((4,), 1)
    opt = Adam([p, q], lr=0.01, betas=(0.8, 0.9))
    _run(opt, [p, q], 2)
    sd = opt.state_dict()
    assert set(sd) == {
        "step",
        "param_groups.0.params",
        "param_groups.0.lr",
        "param_groups.0.betas",
        "param_groups.0.eps",
        "param_groups.0.weight_decay",
        *(f"state.{i}.{k}" for i in (0, 1) for k in ("m", "v", "step")),
    }
    np.testing.assert_array_equal(sd["param_groups.0.params"], [0, 1])
    assert sd["param_groups.0.lr"].shape == () and float(sd["param_groups.0.lr"]) == 0.01
    np.testing.assert_array_equal(sd["param_groups.0.betas"], [0.8, 0.9])
    assert sd["state.0.m"].shape == (2, 3)
    m_saved = sd["state.0.m"].copy()
    _run(opt, [p, q], 1)  # in-place state updates must not reach the saved dict
    np.testing.assert_array_equal(sd["state.0.m"], m_saved)
    # ... and changing a loaded array afterwards must not reach the optimizer.
    opt.load_state_dict(sd)
    sd["state.0.m"][...] = 99.0
    np.testing.assert_array_equal(opt.state[0]["m"], m_saved)


def test_state_dict_of_sgd_and_hyperparameter_types() -> None:
    p = _param((3,), 0)
    plain = SGD([p], lr=0.1).state_dict()
    assert set(plain) == {
        "step",
        *(f"param_groups.0.{k}" for k in ("params", "lr", "momentum", "weight_decay", "nesterov")),
    }
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    sd = opt.state_dict()
    assert sd["param_groups.0.nesterov"].dtype == np.bool_ and "state.0.momentum_buffer" in sd
    opt.load_state_dict(sd)
    group = opt.param_groups[0]
    assert group["nesterov"] is True and type(group["lr"]) is float


def test_load_state_dict_wrong_shape_names_key_and_shapes() -> None:
    opt = Adam([_param((2, 3), 0)])
    sd = opt.state_dict()
    sd["state.0.v"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"'state\.0\.v' has shape \(3, 2\).*shape \(2, 3\)"):
        opt.load_state_dict(sd)


def test_load_state_dict_missing_and_unexpected_keys() -> None:
    opt = Adam([_param((2, 3), 0)])
    sd = opt.state_dict()
    del sd["state.0.m"]
    with pytest.raises(ValueError, match=r"missing key.*'state\.0\.m'.*\(2, 3\)"):
        opt.load_state_dict(sd)
    bigger = Adam([_param((2, 3), 0), _param((1,), 1)]).state_dict()
    with pytest.raises(ValueError, match=r"unexpected key.*'state\.1\.m'"):
        opt.load_state_dict(bigger)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("param_groups.0.lr", np.asarray(-1.0), "lr"),
        ("param_groups.0.betas", np.asarray([0.9, 1.0]), r"betas\[1\]"),
        ("step", np.asarray(1.5), "'step' has dtype float64"),
        ("step", np.asarray(-2), "'step' must be >= 0"),
    ],
)
def test_load_state_dict_rejects_bad_values_and_changes_nothing(
    key: str, value: np.ndarray, match: str
) -> None:
    p = _param((2,), 0)
    opt = Adam([p], lr=0.01)
    _run(opt, [p], 2)
    before = opt.state_dict()
    sd = opt.state_dict()
    sd["state.0.m"] = np.full(2, 7.0)
    sd[key] = value
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert set(after) == set(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


# -------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda ps: SGD(ps, lr=-0.1), ValueError, r"lr must be .*got -0\.1"),
        (lambda ps: SGD(ps, lr=float("nan")), ValueError, "lr"),
        (lambda ps: SGD(ps, lr=_unchecked("0.1")), TypeError, "lr must be a real number"),
        (lambda ps: SGD(ps, lr=True), TypeError, "lr"),
        (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), ValueError, r"momentum .*-0\.5"),
        (lambda ps: SGD(ps, lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
        (lambda ps: SGD(ps, lr=0.1, nesterov=True), ValueError, "nesterov"),
        (lambda ps: Adagrad(ps, eps=-1e-8), ValueError, "eps"),
        (lambda ps: Adagrad(ps, lr=-1.0), ValueError, "lr"),
        (lambda ps: RMSProp(ps, alpha=1.0), ValueError, r"alpha must be in \[0, 1\)"),
        (lambda ps: RMSProp(ps, eps=-1.0), ValueError, "eps"),
        (lambda ps: Adam(ps, betas=(1.0, 0.999)), ValueError, r"betas\[0\] .*got 1\.0"),
        (lambda ps: Adam(ps, betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
        (lambda ps: Adam(ps, betas=_unchecked(0.9)), TypeError, "betas"),
        (lambda ps: Adam(ps, eps=-1.0), ValueError, "eps"),
        (lambda ps: Adam(ps, lr=-1e-3), ValueError, "lr"),
        (lambda ps: Adam(ps, weight_decay=-1e-3), ValueError, "weight_decay"),
    ],
)
def test_hyperparameter_validation(make: MakeOpt, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        make([_param((2,), 0)])


def test_params_validation() -> None:
    w = _param((2,), 0)
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        Adam(iter([]))
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(_unchecked(w), lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] is a ndarray"):
        SGD([w, _unchecked(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"params\[1\] .*does not require grad"):
        SGD([w, Tensor(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"params\[2\] is the same tensor as params\[0\]"):
        SGD([w, _param((2,), 1), w], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        SGD([w * 2.0], lr=0.1)
    with pytest.raises(TypeError, match=r"\.values\(\)"):
        SGD(_unchecked({"w": w}), lr=0.1)


def test_accepts_a_generator_and_tensor_subclasses() -> None:
    class Parameter(Tensor):
        __slots__ = ()

    ps = [Parameter(np.ones(2), requires_grad=True) for _ in range(2)]
    opt = SGD((p for p in ps), lr=0.5)
    assert opt.params == ps
    for p in ps:
        p.grad = Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(ps[0].data, [0.5, 0.5])


def test_lr_property_sets_and_validates() -> None:
    p = _param((2,), 0)
    opt = SGD([p], lr=0.1)
    opt.lr = 0.5
    assert opt.defaults["lr"] == 0.5 and opt.lr == 0.5 and opt.param_groups[0]["lr"] == 0.5
    p0 = p.data.copy()
    p.grad = Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(p.data, p0 - 0.5)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert "SGD(lr=0.5" in repr(opt) and "1 params" in repr(opt)


# -------------------------------------------------------------- properties
@given(
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
    lr=st.floats(0.0, 10.0, allow_nan=False),
)
def test_sgd_step_is_exactly_p_minus_lr_g(data: st.DataObject, dtype: Any, lr: float) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5))
    elements = st.floats(-1e4, 1e4, allow_nan=False, width=32)
    p0 = data.draw(hnp.arrays(dtype, shape, elements=elements))
    g = data.draw(hnp.arrays(dtype, shape, elements=elements))
    p = Tensor(p0, requires_grad=True)
    p.grad = Tensor(g)
    SGD([p], lr=lr).step()
    expected = p0 - np.asarray(lr, dtype=dtype) * g
    assert p.dtype == dtype
    np.testing.assert_array_equal(p.data, expected)
