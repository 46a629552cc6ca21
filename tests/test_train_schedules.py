"""``tinygrad-rnn train --schedule ... --init ...``: the schedule changes the learning rate as
PyTorch's scheduler would, and the initialisation is the one asked for.

Small trainings in the style of ``tests/test_cli_train.py``: one through the console in a
subprocess, the others in-process with ``training.train``.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import training  # noqa: E402

STEPS = 12
TINY = {"seq_len": 6, "steps": STEPS, "hidden": 6, "batch": 4, "eval_every": 2, "seed": 2}


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_rnn", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _torch_lrs(lr: float, make: Any, steps: int, metrics: list[float] | None = None) -> float:
    """The learning rate torch's scheduler reaches in ``steps`` steps (or one per metric)."""
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make(opt)
    for t in range(steps if metrics is None else len(metrics)):
        opt.step()
        sched.step() if metrics is None else sched.step(metrics[t])
    return float(opt.param_groups[0]["lr"])


def _orthogonal_blocks(weight: np.ndarray, H: int) -> None:
    for k in range(weight.shape[0] // H):
        block = weight[k * H : (k + 1) * H].astype(np.float64)
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-5, err_msg=f"gate {k}")


# --------------------------------------------------------------------------- the console
def test_cosine_schedule_and_orthogonal_init_through_the_console(tmp_path: Path) -> None:
    proc = _run(
        "train", "--task", "adding", "-T", "6", "--steps", str(STEPS), "--hidden", "6",
        "--batch", "4", "--cell", "gru", "--layers", "2", "--schedule", "cosine",
        "--schedule-period", "20", "--init", "orthogonal", "--dtype", "float64",
        "--log-every", "6", "--out", tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "init: orthogonal; lr schedule: cosine (T_max 20 steps, eta_min 0)" in proc.stdout
    state = tg.load(tmp_path / "checkpoint.npz")
    lr0 = training.resolve_config("adding").lr
    want = _torch_lrs(lr0, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20), STEPS)
    got = float(state["optim"]["param_groups.0.lr"])
    assert got == pytest.approx(want, rel=1e-12) and got < lr0
    assert float(state["optim"]["param_groups.0.initial_lr"]) == lr0
    ckpt = training.load_checkpoint(tmp_path / "checkpoint.npz")
    assert ckpt.config.schedule == "cosine" and ckpt.config.init == "orthogonal"
    # The stored config rebuilds a model whose recurrent weights are orthogonal per gate.
    model = training.build_model(ckpt.config, 2, 1, np.random.default_rng(0))
    for layer in range(2):
        _orthogonal_blocks(getattr(model.rnn, f"weight_hh_l{layer}").data, 6)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--schedule", "cosine", "--schedule-gamma", "0.5"], "schedule-gamma is not used"),
        (["--schedule", "exponential", "--schedule-period", "3"], "schedule-period is not used"),
        (["--schedule", "step", "--schedule-gamma", "1.5"], "schedule-gamma must be in (0, 1)"),
        (["--schedule", "weekly"], "--schedule"),
        (["--schedule", "step", "--schedule-period", "0"], "--schedule-period"),
        (["--init", "zeros"], "--init"),
    ],
)
def test_bad_schedule_and_init_options_exit_2_with_one_line(args: list[str], needle: str) -> None:
    proc = _run("train", "--task", "adding", "--steps", "1", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_documents_the_options() -> None:
    text = _run("train", "--help").stdout
    for needle in (
        "--schedule",
        "plateau",
        "--schedule-gamma",
        "--schedule-period",
        "--init",
        "orthogonal",
    ):
        assert needle in text


# ----------------------------------------------------------------------------- in process
SCHEDULES = {
    "step": (
        {"schedule_period": 5, "schedule_gamma": 0.5},
        lambda o: torch.optim.lr_scheduler.StepLR(o, 5, gamma=0.5),
    ),
    "step_defaults": ({}, lambda o: torch.optim.lr_scheduler.StepLR(o, STEPS // 3, gamma=0.1)),
    "exponential": (
        {},
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.01 ** (1 / STEPS)),
    ),
    "cosine": ({}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, STEPS)),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_each_schedule_reaches_torchs_learning_rate(name: str, tmp_path: Path) -> None:
    extra, make = SCHEDULES[name]
    config = training.resolve_config(
        "adding", schedule=name.split("_")[0], optim="sgd", **TINY, **extra
    )
    training.train(config, tmp_path, stdout=io.StringIO(), progress=False)
    got = float(tg.load(tmp_path / "checkpoint.npz")["optim"]["param_groups.0.lr"])
    want = _torch_lrs(config.lr, make, STEPS)
    assert got == pytest.approx(want, rel=1e-12) and got < config.lr


def test_plateau_follows_the_held_out_metric(tmp_path: Path) -> None:
    # A learning rate so small that the held-out metric stalls: the plateau must reduce it.
    config = training.resolve_config(
        "adding", schedule="plateau", schedule_period=1, schedule_gamma=0.5, lr=1e-7, **TINY
    )
    result = training.train(config, tmp_path, stdout=io.StringIO(), progress=False)
    state = tg.load(tmp_path / "checkpoint.npz")
    # The scheduler saw every evaluation in the loop (not the untrained one at step 0).
    metrics = [m for s, m in zip(result.history.eval_steps, result.history.eval_metrics) if s > 0]
    assert len(metrics) == STEPS // 2
    make = lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1)  # noqa: E731
    want = _torch_lrs(config.lr, make, STEPS, metrics)
    got = float(state["optim"]["param_groups.0.lr"])
    assert got == pytest.approx(want, rel=1e-12) and got < config.lr


def test_no_schedule_keeps_the_learning_rate(tmp_path: Path) -> None:
    config = training.resolve_config("adding", **TINY)
    out = io.StringIO()
    training.train(config, tmp_path, stdout=out, progress=False)
    assert float(tg.load(tmp_path / "checkpoint.npz")["optim"]["param_groups.0.lr"]) == config.lr
    assert "lr schedule" not in out.getvalue()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_orthogonal_init_makes_every_gate_block_of_weight_hh_orthogonal(cell: str) -> None:
    H = 5
    kw: dict[str, Any] = {"cell": cell, "hidden": H, "layers": 2, "dtype": "float64"}
    default = training.build_model(
        training.resolve_config("adding", **kw), 3, 2, np.random.default_rng(4)
    )
    ortho = training.build_model(
        training.resolve_config("adding", init="orthogonal", **kw), 3, 2, np.random.default_rng(4)
    )
    for name, p in ortho.named_parameters():
        before = dict(default.named_parameters())[name].data
        if "weight_hh" in name:
            assert p.shape == before.shape and p.dtype == before.dtype
            _orthogonal_blocks(p.data, H)
            assert not np.allclose(p.data, before)
        else:  # everything else keeps the default initialisation
            np.testing.assert_array_equal(p.data, before, err_msg=name)


def test_xavier_init_bounds_and_zero_biases() -> None:
    config = training.resolve_config("adding", init="xavier", hidden=5, dtype="float32")
    model = training.build_model(config, 3, 2, np.random.default_rng(0))
    for name, p in model.named_parameters():
        assert p.dtype == np.float32
        if p.ndim == 2:
            fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(p.shape))
            assert np.abs(p.data).max() <= np.sqrt(6 / (fan_in + fan_out)) * (1 + 1e-6), name
        elif name.startswith("rnn.bias_ih"):
            np.testing.assert_array_equal(p.data[5:10], 1.0)  # the forget bias, applied after
            np.testing.assert_array_equal(np.delete(p.data, range(5, 10)), 0.0)
        else:
            np.testing.assert_array_equal(p.data, 0.0, err_msg=name)
