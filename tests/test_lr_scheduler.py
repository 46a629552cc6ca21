"""``tinygrad_rnn.optim.lr_scheduler`` against ``torch.optim.lr_scheduler`` (PyTorch 2.13).

Each scheduler drives an optimizer with one to three param groups of different learning
rates; the rates after every ``step()`` (``get_last_lr()`` and the groups' ``"lr"``) must equal
PyTorch's for the same arguments, over 30 steps, for arguments drawn by hypothesis.
ReduceLROnPlateau is driven by the same metric sequence on both sides.
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

torch = pytest.importorskip("torch")

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import functional as F  # noqa: E402
from tinygrad_rnn import nn, optim  # noqa: E402
from tinygrad_rnn.optim import lr_scheduler  # noqa: E402
from tinygrad_rnn.tensor import Tensor  # noqa: E402

STEPS = 30
LRS = st.lists(st.floats(1e-4, 1.0), min_size=1, max_size=3)
Make = Callable[[Any], Any]


def _optimizers(lrs: list[float]) -> tuple[optim.SGD, Any]:
    """Ours and torch's SGD with one group per learning rate."""
    ours = optim.SGD(
        [{"params": [Tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in lrs], lr=1.0
    )
    theirs = torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs], lr=1.0
    )
    return ours, theirs


def _assert_lrs(ours: list[float], theirs: list[float], what: str) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15, err_msg=what)


def _compare(
    lrs: list[float],
    make: Make,
    make_torch: Make,
    steps: int = STEPS,
    metrics: list[float] | None = None,
) -> tuple[Any, Any]:
    """Run both schedulers side by side; assert equal rates after construction and every step."""
    opt, topt = _optimizers(lrs)
    sched, tsched = make(opt), make_torch(topt)
    _assert_lrs(sched.get_last_lr(), tsched.get_last_lr(), "after construction")
    for t in range(steps):
        topt.step()  # torch wants an optimizer step first (its warning otherwise)
        if metrics is None:
            sched.step()
            tsched.step()
        else:
            sched.step(metrics[t])
            tsched.step(metrics[t])
        _assert_lrs(sched.get_last_lr(), tsched.get_last_lr(), f"after step {t + 1}")
        _assert_lrs(
            [g["lr"] for g in opt.param_groups],
            [g["lr"] for g in topt.param_groups],
            f"group lrs after step {t + 1}",
        )
        assert sched.last_epoch == tsched.last_epoch
    return sched, tsched


# ------------------------------------------------------------------ each scheduler vs torch
@given(lrs=LRS, step_size=st.integers(1, 10), gamma=st.floats(0.0, 1.5))
def test_step_lr_matches_torch(lrs: list[float], step_size: int, gamma: float) -> None:
    _compare(
        lrs,
        lambda o: lr_scheduler.StepLR(o, step_size, gamma=gamma),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma=gamma),
    )


@given(lrs=LRS, gamma=st.floats(0.5, 1.05))
def test_exponential_lr_matches_torch(lrs: list[float], gamma: float) -> None:
    _compare(
        lrs,
        lambda o: lr_scheduler.ExponentialLR(o, gamma),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma),
    )


@given(lrs=LRS, T_max=st.integers(1, 15), eta_min=st.sampled_from([0.0, 1e-4, 0.01]))
def test_cosine_annealing_lr_matches_torch(lrs: list[float], T_max: int, eta_min: float) -> None:
    # 30 steps cover the descent, the minimum, the climb back (period 2 T_max) and more.
    _compare(
        lrs,
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max, eta_min=eta_min),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max, eta_min=eta_min),
    )


LAMBDAS: dict[str, Callable[[int], float]] = {
    "power": lambda e: 0.95**e,
    "inverse": lambda e: 1.0 / (1.0 + e),
    "stairs": lambda e: float(e // 5),
    "warmup": lambda e: min(1.0, (e + 1) / 5),
}


@given(lrs=LRS, data=st.data(), as_list=st.booleans())
def test_lambda_lr_matches_torch(lrs: list[float], data: st.DataObject, as_list: bool) -> None:
    names = st.sampled_from(sorted(LAMBDAS))
    if as_list:
        chosen: Any = [LAMBDAS[data.draw(names)] for _ in lrs]
    else:
        chosen = LAMBDAS[data.draw(names)]
    _compare(
        lrs,
        lambda o: lr_scheduler.LambdaLR(o, chosen),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, chosen),
    )


PLATEAU_ARGS = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["min", "max"]),
        "factor": st.sampled_from([0.0, 0.1, 0.5, 0.9]),
        "patience": st.integers(0, 4),
        "threshold": st.sampled_from([0.0, 1e-4, 0.05]),
        "threshold_mode": st.sampled_from(["rel", "abs"]),
        "cooldown": st.integers(0, 3),
        "eps": st.sampled_from([1e-8, 1e-3]),
    }
)


def _check_plateau_counters(sched: Any, tsched: Any) -> None:
    assert sched.best == tsched.best
    assert sched.num_bad_epochs == tsched.num_bad_epochs
    assert sched.cooldown_counter == tsched.cooldown_counter


@given(
    lrs=LRS,
    args=PLATEAU_ARGS,
    min_lr=st.sampled_from([0.0, 1e-3]),
    min_lr_per_group=st.booleans(),
    metrics=st.lists(
        st.sampled_from([1.0, 0.99, 0.95, 0.9, 0.5, 1.1, 2.0, -0.5]),
        min_size=STEPS,
        max_size=STEPS,
    ),
)
def test_reduce_lr_on_plateau_matches_torch(
    lrs: list[float],
    args: dict[str, Any],
    min_lr: float,
    min_lr_per_group: bool,
    metrics: list[float],
) -> None:
    floor: Any = [min_lr * (g + 1) for g in range(len(lrs))] if min_lr_per_group else min_lr
    opt, topt = _optimizers(lrs)
    sched = lr_scheduler.ReduceLROnPlateau(opt, min_lr=floor, **args)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, min_lr=floor, **args)
    for t, m in enumerate(metrics):
        sched.step(m)
        tsched.step(m)
        _assert_lrs(sched.get_last_lr(), tsched.get_last_lr(), f"after step {t + 1}")
        _check_plateau_counters(sched, tsched)
    assert sched.last_epoch == tsched.last_epoch == STEPS


def test_reduce_lr_on_plateau_on_a_fixed_metric_sequence() -> None:
    """A loss that improves, stalls, improves a little (within the threshold), stalls again."""
    metrics = [1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.69999, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6] * 2
    metrics += [float("nan"), 0.5, 0.5, 0.5, 0.5]
    sched, tsched = _compare(
        [0.1, 0.02],
        lambda o: lr_scheduler.ReduceLROnPlateau(
            o, factor=0.5, patience=2, cooldown=1, min_lr=[0.01, 0.0]
        ),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
            o, factor=0.5, patience=2, cooldown=1, min_lr=[0.01, 0.0]
        ),
        steps=len(metrics),
        metrics=metrics,
    )
    _check_plateau_counters(sched, tsched)
    # The sequence exercised the reductions, the floor of group 0 and the cooldown.
    assert sched.get_last_lr()[0] == 0.01 and sched.get_last_lr()[1] < 0.02 * 0.5**5


def test_metrics_may_be_a_tensor_or_a_one_element_array() -> None:
    opt, _ = _optimizers([0.1])
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(Tensor(1.0))
    sched.step(np.array([2.0]))
    assert sched.best == 1.0 and sched.get_last_lr() == [pytest.approx(0.01)]


def test_two_chained_schedulers_match_torch() -> None:
    """The chainable forms compose: StepLR and ExponentialLR on one optimizer."""
    opt, topt = _optimizers([0.5, 0.1])
    ours = [lr_scheduler.StepLR(opt, 4, gamma=0.5), lr_scheduler.ExponentialLR(opt, 0.9)]
    theirs = [
        torch.optim.lr_scheduler.StepLR(topt, 4, gamma=0.5),
        torch.optim.lr_scheduler.ExponentialLR(topt, 0.9),
    ]
    for t in range(STEPS):
        topt.step()
        for s, ts in zip(ours, theirs):
            s.step()
            ts.step()
        _assert_lrs(
            [g["lr"] for g in opt.param_groups], [g["lr"] for g in topt.param_groups], f"step {t}"
        )


def test_base_lrs_and_initial_lr_as_in_torch() -> None:
    opt, topt = _optimizers([0.3, 0.03])
    sched = lr_scheduler.StepLR(opt, 2)
    tsched = torch.optim.lr_scheduler.StepLR(topt, 2)
    assert sched.base_lrs == tsched.base_lrs == [0.3, 0.03]
    assert [g["initial_lr"] for g in opt.param_groups] == [0.3, 0.03]
    assert sched.last_epoch == tsched.last_epoch == 0


# -------------------------------------------------------------------------------- resuming
RESUMABLE: dict[str, tuple[Make, Make]] = {
    "step": (
        lambda o, **kw: lr_scheduler.StepLR(o, 4, gamma=0.5, **kw),
        lambda o, **kw: torch.optim.lr_scheduler.StepLR(o, 4, gamma=0.5, **kw),
    ),
    "exponential": (
        lambda o, **kw: lr_scheduler.ExponentialLR(o, 0.9, **kw),
        lambda o, **kw: torch.optim.lr_scheduler.ExponentialLR(o, 0.9, **kw),
    ),
    "cosine": (
        lambda o, **kw: lr_scheduler.CosineAnnealingLR(o, 7, eta_min=1e-3, **kw),
        lambda o, **kw: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=1e-3, **kw),
    ),
    "lambda": (
        lambda o, **kw: lr_scheduler.LambdaLR(o, [LAMBDAS["warmup"], LAMBDAS["inverse"]], **kw),
        lambda o, **kw: torch.optim.lr_scheduler.LambdaLR(
            o, [LAMBDAS["warmup"], LAMBDAS["inverse"]], **kw
        ),
    ),
    "plateau": (
        lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1),
    ),
}
# A metric with plateaus, for ReduceLROnPlateau.
PLATEAU_METRICS = [1.0 / (1 + t // 4) for t in range(STEPS)]


def _advance(sched: Any, name: str, t: int) -> None:
    if name == "plateau":
        sched.step(PLATEAU_METRICS[t])
    else:
        sched.step()


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_state_dict_round_trip_resumes_the_same_sequence(name: str, tmp_path: Path) -> None:
    make, make_torch = RESUMABLE[name]
    opt, topt = _optimizers([0.2, 0.05])
    sched, tsched = make(opt), make_torch(topt)
    want, got = [], []
    for t in range(12):
        topt.step()
        _advance(sched, name, t)
        _advance(tsched, name, t)
    sd = sched.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    tg.save({"optim": opt.state_dict(), "sched": sd}, tmp_path / "ckpt.npz")

    # A new run: optimizer (another lr) and scheduler made afresh, then both states loaded.
    fresh_opt, _ = _optimizers([0.7, 0.7])
    fresh = make(fresh_opt)
    state = tg.load(tmp_path / "ckpt.npz")
    fresh_opt.load_state_dict(state["optim"])
    fresh.load_state_dict(state["sched"])
    assert fresh.get_last_lr() == sched.get_last_lr() and fresh.last_epoch == sched.last_epoch
    for t in range(12, STEPS):
        topt.step()
        _advance(fresh, name, t)
        _advance(tsched, name, t)
        got.append(fresh.get_last_lr())
        want.append(tsched.get_last_lr())
    _assert_lrs(got, want, "resumed")


@pytest.mark.parametrize("name", ["step", "exponential", "cosine", "lambda"])
def test_last_epoch_resumes_like_torch(name: str) -> None:
    """Construction with last_epoch=k on an optimizer that holds initial_lr (as after
    loading its state dict), as PyTorch does it."""
    make, make_torch = RESUMABLE[name]
    opt, topt = _optimizers([0.2, 0.05])
    make(opt), make_torch(topt)
    for group, tgroup in zip(opt.param_groups, topt.param_groups):
        group["lr"] = tgroup["lr"] = 0.01  # the rate the checkpoint had reached
    sched, tsched = make(opt, last_epoch=9), make_torch(topt, last_epoch=9)
    assert sched.base_lrs == tsched.base_lrs == [0.2, 0.05]
    for t in range(STEPS):
        _assert_lrs(sched.get_last_lr(), tsched.get_last_lr(), f"step {t}")
        topt.step()
        sched.step()
        tsched.step()


def test_state_dict_keys() -> None:
    opt, _ = _optimizers([0.2, 0.05])
    sd = lr_scheduler.CosineAnnealingLR(opt, 7).state_dict()
    assert set(sd) == {"last_epoch", "step_count", "base_lrs", "last_lr", "T_max", "eta_min"}
    np.testing.assert_array_equal(sd["base_lrs"], [0.2, 0.05])
    plateau = lr_scheduler.ReduceLROnPlateau(opt, mode="max").state_dict()
    assert bytes(plateau["mode"]) == b"max" and plateau["best"] == -math.inf
    assert plateau["min_lrs"].shape == (2,)


# ------------------------------------------------------------------------ with jit, training
def test_a_schedule_steering_a_jitted_training_step_equals_eager() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 3, 2)), rng.standard_normal((5, 3, 1))
    runs = []
    for use_jit in (False, True):
        model = nn.Sequential(nn.Linear(2, 4, dtype=np.float64, rng=np.random.default_rng(1)))
        head = nn.Linear(4, 1, dtype=np.float64, rng=np.random.default_rng(2))
        params = [*model.parameters(), *head.parameters()]
        opt = optim.AdamW([{"params": params[:2], "lr": 0.05}, {"params": params[2:]}], lr=0.01)
        sched = lr_scheduler.CosineAnnealingLR(opt, T_max=6)

        def loss_and_grad(xb: Any, yb: Any, model: Any = model, head: Any = head) -> Any:
            loss = F.mse_loss(head(model(xb).tanh()), yb)
            loss.backward()
            return loss

        step_fn = tg.jit(loss_and_grad) if use_jit else loss_and_grad
        trace = []
        for _ in range(8):
            opt.zero_grad()
            step_fn(x, y)
            opt.step()
            sched.step()
            trace.append([p.data.copy() for p in params] + [np.array(sched.get_last_lr())])
        runs.append(trace)
    for t, (eager, jitted) in enumerate(zip(*runs)):
        for a, b in zip(eager, jitted):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14, err_msg=f"step {t}")


# ------------------------------------------------------------------------------- bad input
def _opt() -> optim.SGD:
    return _optimizers([0.1])[0]


def _lambda_returning(value: Any) -> Any:
    return lr_scheduler.LambdaLR(_opt(), lambda e: value)


BAD = [
    (
        lambda: lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), 2),
        TypeError,
        r"StepLR: optimizer must be a tinygrad_rnn\.optim\.Optimizer \(such as optim\.SGD\), "
        r"got torch\.optim\.sgd\.SGD",
    ),
    (
        lambda: lr_scheduler.ReduceLROnPlateau(None),  # type: ignore[arg-type]
        TypeError,
        r"ReduceLROnPlateau: optimizer must be a tinygrad_rnn\.optim\.Optimizer "
        r".*got builtins\.NoneType",
    ),
    (
        lambda: lr_scheduler.ReduceLROnPlateau(_opt(), mode="minimum"),
        ValueError,
        r"ReduceLROnPlateau: mode must be 'min' or 'max', got 'minimum'",
    ),
    (
        lambda: lr_scheduler.ReduceLROnPlateau(_opt(), threshold_mode="relative"),
        ValueError,
        r"threshold_mode must be 'rel' or 'abs', got 'relative'",
    ),
    (
        lambda: lr_scheduler.ReduceLROnPlateau(_opt(), factor=1.0),
        ValueError,
        r"ReduceLROnPlateau: factor must be in \[0, 1\) \(new lr = lr \* factor\), got 1\.0",
    ),
    (
        lambda: lr_scheduler.ReduceLROnPlateau(_opt(), patience=-1),
        ValueError,
        r"patience must be an int >= 0, got -1",
    ),
    (
        lambda: lr_scheduler.ReduceLROnPlateau(_opt(), patience=1.5),  # type: ignore[arg-type]
        TypeError,
        r"patience must be an int, got 1\.5",
    ),
    (
        lambda: lr_scheduler.ReduceLROnPlateau(_opt(), min_lr=[0.1, 0.2]),
        ValueError,
        r"min_lr has 2 values but the optimizer has 1 param groups",
    ),
    (
        lambda: lr_scheduler.ReduceLROnPlateau(_opt(), min_lr=-1e-3),
        ValueError,
        r"min_lr must be a finite number >= 0",
    ),
    (
        lambda: lr_scheduler.StepLR(_opt(), 0),
        ValueError,
        r"StepLR: step_size must be an int >= 1, got 0",
    ),
    (lambda: lr_scheduler.StepLR(_opt(), 2.0), TypeError, r"StepLR: step_size must be an int"),  # type: ignore[arg-type]
    (
        lambda: lr_scheduler.StepLR(_opt(), 2, gamma=-0.1),
        ValueError,
        r"StepLR: gamma must be a finite number >= 0",
    ),
    (lambda: lr_scheduler.ExponentialLR(_opt(), float("nan")), ValueError, r"ExponentialLR: gamma"),
    (
        lambda: lr_scheduler.CosineAnnealingLR(_opt(), 0),
        ValueError,
        r"CosineAnnealingLR: T_max must be an int >= 1",
    ),
    (
        lambda: lr_scheduler.CosineAnnealingLR(_opt(), 5, eta_min=-1.0),
        ValueError,
        r"eta_min must be a finite",
    ),
    (
        lambda: lr_scheduler.LambdaLR(_opt(), [LAMBDAS["power"]] * 2),
        ValueError,
        r"LambdaLR: lr_lambda has 2 functions but the optimizer has 1 param groups",
    ),
    (
        lambda: lr_scheduler.LambdaLR(_opt(), 0.5),
        TypeError,
        r"LambdaLR: lr_lambda must be a function of the epoch",
    ),  # type: ignore[arg-type]
    (
        lambda: _lambda_returning("fast"),
        TypeError,
        r"LambdaLR\.step: lr_lambda\[0\]\(0\) must be a real number, got 'fast'",
    ),
    (
        lambda: _lambda_returning(-1.0),
        ValueError,
        r"LambdaLR\.step: the new learning rate of param_groups\[0\] must be a finite number >= 0",
    ),
    (
        lambda: lr_scheduler.StepLR(_opt(), 2, last_epoch=3),
        ValueError,
        r"StepLR: last_epoch=3 resumes a schedule, but param_groups\[0\] has no 'initial_lr'",
    ),
    (
        lambda: lr_scheduler.StepLR(_opt(), 2, last_epoch=-2),
        ValueError,
        r"last_epoch must be an int >= -1",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_arguments_are_clear_errors(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_a_failed_construction_leaves_the_optimizer_as_it_was() -> None:
    opt = _opt()
    with pytest.raises(TypeError):
        lr_scheduler.LambdaLR(opt, lambda e: "fast")
    assert opt.param_groups[0] == {
        "params": opt.params,
        "lr": 0.1,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
    }


def test_step_after_a_group_was_added_is_a_clear_error() -> None:
    opt = _opt()
    sched = lr_scheduler.ExponentialLR(opt, 0.9)
    opt.add_param_group({"params": [Tensor(np.zeros(1), requires_grad=True)]})
    with pytest.raises(
        ValueError,
        match=r"ExponentialLR\.step: the optimizer has 2 param groups but this scheduler "
        r"was made for 1",
    ):
        sched.step()
    plateau = lr_scheduler.ReduceLROnPlateau(_opt())
    plateau.optimizer.add_param_group({"params": [Tensor(np.zeros(1), requires_grad=True)]})
    with pytest.raises(
        ValueError,
        match=r"ReduceLROnPlateau\.step: the optimizer has 2 param groups but min_lrs has 1",
    ):
        plateau.step(1.0)


@pytest.mark.parametrize(
    ("metrics", "error", "match"),
    [
        ("low", TypeError, r"ReduceLROnPlateau\.step: metrics must be a real number, got 'low'"),
        (np.ones(2), ValueError, r"metrics must be a number or have one element, got shape \(2,\)"),
        (None, TypeError, r"metrics must be a real number, got None"),
    ],
)
def test_bad_metrics(metrics: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        lr_scheduler.ReduceLROnPlateau(_opt()).step(metrics)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda sd: sd.pop("gamma"), r"missing key\(s\) 'gamma'"),
        (lambda sd: sd.update(extra=np.zeros(1)), r"unexpected key\(s\) 'extra'"),
        (
            lambda sd: sd.update(base_lrs=np.ones(3)),
            r"'base_lrs' has shape \(3,\) but this scheduler expects shape \(2,\)",
        ),
        (lambda sd: sd.update(step_size=np.asarray(0)), r"step_size must be an int >= 1, got 0"),
        (
            lambda sd: sd.update(step_size=np.asarray(2.5)),
            r"'step_size' has dtype float64, which cannot be cast",
        ),
        (
            lambda sd: sd.update(last_lr=np.array([0.1, -1.0])),
            r"last_lr\[1\] must be a finite number >= 0",
        ),
    ],
    ids=["missing", "unexpected", "shape", "range", "dtype", "negative_lr"],
)
def test_load_state_dict_rejects_and_changes_nothing(change: Any, match: str) -> None:
    opt, _ = _optimizers([0.2, 0.05])
    sched = lr_scheduler.StepLR(opt, 3, gamma=0.5)
    for _ in range(4):
        sched.step()
    before = sched.state_dict()
    bad = sched.state_dict()
    change(bad)
    with pytest.raises(ValueError, match=rf"StepLR\.load_state_dict: {match}"):
        sched.load_state_dict(bad)
    after = sched.state_dict()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    with pytest.raises(TypeError, match=r"StepLR\.load_state_dict: expected a mapping"):
        sched.load_state_dict([1, 2])  # type: ignore[arg-type]


def test_plateau_load_state_dict_checks_the_mode_text() -> None:
    sched = lr_scheduler.ReduceLROnPlateau(_opt())
    sd = sched.state_dict()
    sd["mode"] = np.frombuffer(b"sideways", dtype=np.uint8)
    with pytest.raises(
        ValueError,
        match=r"ReduceLROnPlateau\.load_state_dict: mode must be 'min' or 'max', got 'sideways'",
    ):
        sched.load_state_dict(sd)
    sd["mode"] = np.frombuffer(b"max", dtype=np.uint8)
    sched.load_state_dict(sd)
    assert sched.mode == "max"
