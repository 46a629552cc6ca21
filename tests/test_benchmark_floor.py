"""The benchmark's numpy floor (``benchmarks/numpy_floor.py``) computes the right step.

Every timing in ``benchmarks/`` is a ratio to the floor, so a wrong floor (or one whose reused
buffers leak one call's state into the next) would make every figure meaningless. Checked in
float64 to 1e-10 against two independent implementations: the closed-form BPTT of
``tinygrad_rnn.reference`` (the documents' notation, converted here from PyTorch's layout)
and the naive per-step numpy BPTT of ``benchmarks/numpy_perstep.py``. No timings here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tinygrad_rnn.reference import lstm_bptt, rnn_bptt

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
TOL = 1e-10
GRAD_KEYS = ("W_ih", "W_hh", "b", "W_y", "b_y")
# (T, B, V, H): a single step, odd sizes, and the benchmark's size S.
SHAPES = [(1, 1, 3, 2), (4, 3, 5, 6), (7, 2, 4, 3), (25, 1, 65, 100)]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


floor = _load("numpy_floor")
perstep = _load("numpy_perstep")


def _problem(model: str, T: int, B: int, V: int, H: int, dtype=np.float64, seed=0, scale=1.0):
    """PyTorch-layout parameters, one-hot ``xs (T, B, V)`` and ``targets (T, B)``."""
    rng = np.random.default_rng(seed)
    G = 4 if model == "lstm" else 1
    k = scale / np.sqrt(H)

    def u(*shape: int) -> np.ndarray:
        return rng.uniform(-k, k, shape).astype(dtype)

    p = {
        "W_ih": u(G * H, V),
        "W_hh": u(G * H, H),
        "b_ih": u(G * H),
        "b_hh": u(G * H),
        "W_y": u(V, H),
        "b_y": u(V),
    }
    xs = np.eye(V, dtype=dtype)[rng.integers(0, V, (T, B))]
    return p, xs, rng.integers(0, V, (T, B))


def _closed_form(model: str, p: dict, xs: np.ndarray, targets: np.ndarray) -> dict:
    """Loss and gradients from ``tinygrad_rnn.reference``, under the floor's names."""
    B, H = xs.shape[1], p["W_hh"].shape[1]
    zeros = np.zeros((B, H))
    b = p["b_ih"] + p["b_hh"]
    if model == "rnn":
        r = rnn_bptt(xs, targets, zeros, p["W_ih"], p["W_hh"], p["W_y"], b, p["b_y"])
        g = r.grads
        return {"loss": r.loss, "W_ih": g["U"], "W_hh": g["W"], "b": g["b"]} | {
            "W_y": g["V"],
            "b_y": g["c"],
        }
    # Seed 004's layout: W_gate (H + V, H) acting on z_t = [h_{t-1}, x_t]; PyTorch's row blocks
    # are i, f, g (the document's c̃), o.
    blocks = {"i": 0, "f": 1, "c": 2, "o": 3}
    rows = {k: slice(j * H, (j + 1) * H) for k, j in blocks.items()}
    W = {k: np.concatenate([p["W_hh"][r].T, p["W_ih"][r].T]) for k, r in rows.items()}
    r = lstm_bptt(
        xs, targets, zeros, zeros,
        W["f"], W["i"], W["c"], W["o"],
        b[rows["f"]], b[rows["i"]], b[rows["c"]], b[rows["o"]],
        p["W_y"].T, p["b_y"],
    )  # fmt: skip
    g = r.grads
    return {
        "loss": r.loss,
        "W_ih": np.concatenate([g[f"W_{k}"][H:].T for k in blocks]),
        "W_hh": np.concatenate([g[f"W_{k}"][:H].T for k in blocks]),
        "b": np.concatenate([g[f"b_{k}"] for k in blocks]),
        "W_y": g["W_y"].T,
        "b_y": g["b_y"],
    }


def _rel(actual: np.ndarray, expected: np.ndarray) -> float:
    assert np.shape(actual) == np.shape(expected)
    scale = float(np.max(np.abs(expected), initial=0.0))
    err = float(np.max(np.abs(np.asarray(actual, np.float64) - expected), initial=0.0))
    return err / scale if scale > 1e-13 else err


def _assert_same(actual: dict, expected: dict, tol: float) -> None:
    loss_err = abs(actual["loss"] - expected["loss"]) / abs(expected["loss"])
    assert loss_err <= tol, f"loss: relative error {loss_err:.3g}"
    for key in GRAD_KEYS:
        err = _rel(actual[key], expected[key])
        assert err <= tol, f"{key}: relative error {err:.3g} > {tol:g}"


def _step(model: str):
    return getattr(floor, f"{model}_step")


@pytest.mark.parametrize("model", ["rnn", "lstm"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}V{}H{}".format(*s))
def test_floor_matches_the_closed_form_and_the_per_step_numpy(model, shape):
    p, xs, targets = _problem(model, *shape)
    got = _step(model)(p, xs, targets)
    assert isinstance(got["loss"], float)
    _assert_same(got, _closed_form(model, p, xs, targets), TOL)
    _assert_same(got, getattr(perstep, f"{model}_step")(p, xs, targets), TOL)


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_reused_buffers_leak_nothing_between_calls(model):
    """Calls on one problem share buffers; each result is fresh, each call starts clean."""
    floor.clear_cache()
    shape = (6, 3, 5, 4)
    step = _step(model)
    first = _problem(model, *shape, seed=1)
    second = _problem(model, *shape, seed=2)
    other = _problem(model, 3, 2, 7, 5, seed=3)  # another size in between: its own buffers
    r1 = step(*first)
    kept = {k: np.copy(r1[k]) for k in GRAD_KEYS}
    r2 = step(*second)
    step(*other)
    r1_again = step(*first)
    for key in GRAD_KEYS:
        np.testing.assert_array_equal(r1[key], kept[key])  # not overwritten by later calls
        np.testing.assert_array_equal(r1_again[key], kept[key])  # same inputs, same result
        assert not np.shares_memory(r1[key], r2[key])
    assert r1_again["loss"] == r1["loss"]
    _assert_same(r2, _closed_form(model, *second), TOL)
    for T in range(1, 8):  # the cache keeps a few problems, not every one ever seen
        step(*_problem(model, T, 2, 3, 4))
    assert len(floor._cache) <= floor._CACHE_SIZE


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_float32_stays_float32_and_agrees_with_float64(model):
    shape = (5, 4, 6, 8)
    p32, xs32, targets = _problem(model, *shape, dtype=np.float32)
    got = _step(model)(p32, xs32, targets)
    assert all(got[k].dtype == np.float32 for k in GRAD_KEYS)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    _assert_same(got, _step(model)(p64, xs32.astype(np.float64), targets), 1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_saturated_gates_raise_no_overflow(model, dtype):
    """Pre-activations of ±1e4 and more: σ and tanh saturate without warnings (errors here).

    The gradients through saturated units vanish, so they still agree with the closed form
    (whose σ is exp(−logaddexp(0, −x))) to rounding.
    """
    p, xs, targets = _problem(model, 5, 3, 4, 6, dtype=dtype, scale=1e5)
    got = _step(model)(p, xs, targets)
    assert all(np.all(np.isfinite(got[k])) for k in GRAD_KEYS)
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    expected = _closed_form(model, p64, xs.astype(np.float64), targets)
    _assert_same(got, expected, 1e-5 if dtype == np.float32 else TOL)
