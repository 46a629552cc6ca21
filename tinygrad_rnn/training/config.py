"""What defines a training run: the choices, the per-task defaults, TrainConfig."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from tinygrad_rnn import nn
from tinygrad_rnn.training.schedules import SCHEDULES, USES_GAMMA, USES_PERIOD

# The layer classes by --cell name (typed Any: their constructors differ from Module's).
CELLS: dict[str, Any] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
OPTIMIZERS = ("adam", "adagrad", "sgd", "rmsprop")
# --init: PyTorch's default; orthogonal recurrent weights; Glorot-uniform weights, zero biases.
INITS = ("default", "orthogonal", "xavier")
TASKS = ("chars", "adding", "copy")
DTYPES = ("float32", "float64")


# Defaults per task: sizes that reach the results in docs/results.md on 2 CPU cores.
_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "chars": {
        "cell": "lstm",
        "hidden": 128,
        "steps": 3000,
        "batch": 32,
        "seq_len": 25,  # min-char-rnn's chunk length
        "optim": "adam",
        "clip": 5.0,
        "eval_every": 200,
        "sample_every": 1000,
    },
    "adding": {
        "cell": "lstm",
        "hidden": 64,
        "steps": 3000,
        "batch": 64,
        "seq_len": 50,
        "optim": "adam",
        "clip": 1.0,
        "eval_every": 100,
        "sample_every": 0,
    },
    "copy": {
        "cell": "lstm",
        "hidden": 128,
        "steps": 4000,
        "batch": 64,
        "seq_len": 20,
        "optim": "adam",
        "clip": 1.0,
        "eval_every": 100,
        "sample_every": 0,
    },
}
# Learning rate per (task, optimizer) when --lr is not given. Adagrad 0.1 is min-char-rnn's.
_DEFAULT_LR: dict[str, dict[str, float]] = {
    "chars": {"adam": 3e-3, "adagrad": 0.1, "sgd": 0.5, "rmsprop": 2e-3},
    "adding": {"adam": 1e-2, "adagrad": 0.05, "sgd": 0.1, "rmsprop": 3e-3},
    "copy": {"adam": 1e-2, "adagrad": 0.05, "sgd": 0.1, "rmsprop": 3e-3},
}


# ------------------------------------------------------------------------------ config
@dataclass
class TrainConfig:
    """Everything that defines a training run; stored as JSON inside each checkpoint.

    ``seq_len`` is the task's length: the gap ``T`` for copy (sequences of ``T + 20``
    steps), the sequence length for adding, the truncated-BPTT chunk for chars.
    ``clip`` is the global gradient-norm bound (None: off); ``clip_value`` clamps every
    gradient element to ``[-clip_value, clip_value]`` (min-char-rnn: 5; None: off).
    ``forget_bias`` sets the LSTM forget-gate bias (``b_ih + b_hh`` rows ``H:2H``) after
    the usual initialisation (None: leave it). ``init`` picks the initialisation
    (`INITS`; see `apply_init`). ``schedule`` is the learning-rate schedule (`SCHEDULES`),
    with its factor ``schedule_gamma`` and period ``schedule_period`` (None: the schedule's
    default; see ``training/schedules.py``). ``vocab`` is filled in for chars. ``jit`` runs
    each step's forward and backward as a [`jit`][tinygrad_rnn.jit.jit] program (False:
    eagerly; the numbers are the same).
    """

    task: str
    cell: str = "lstm"
    hidden: int = 64
    layers: int = 1
    steps: int = 1000
    lr: float = 1e-2
    optim: str = "adam"
    batch: int = 32
    seq_len: int = 50
    clip: float | None = 1.0
    clip_value: float | None = None
    forget_bias: float | None = 1.0
    init: str = "default"
    schedule: str = "none"
    schedule_gamma: float | None = None
    schedule_period: int | None = None
    seed: int = 0
    dtype: str = "float32"
    text: str | None = None
    eval_every: int = 100
    log_every: int = 0  # 0: about 20 lines per run
    sample_every: int = 0
    sample_length: int = 200
    temperature: float = 1.0
    vocab: list[str] | None = None
    jit: bool = True

    def to_json(self) -> str:
        """The config as a JSON object (UTF-8 safe: the vocabulary may hold any character)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Parse `to_json`'s output; ValueError if it is not such a config."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the stored config is not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict) or "task" not in raw:
            raise ValueError("the stored config has no 'task'")
        known = {f.name for f in fields(cls)}
        try:
            config = cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:
            raise ValueError(f"the stored config is incomplete: {exc}") from None
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError naming the first setting that is out of range."""
        checks: list[tuple[bool, str]] = [
            (self.task in TASKS, f"task must be one of {', '.join(TASKS)}, got {self.task!r}"),
            (self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}"),
            (self.optim in OPTIMIZERS, f"optim must be one of {', '.join(OPTIMIZERS)}"),
            (self.dtype in DTYPES, f"dtype must be float32 or float64, got {self.dtype!r}"),
            (self.init in INITS, f"init must be one of {', '.join(INITS)}, got {self.init!r}"),
            (
                self.schedule in SCHEDULES,
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}",
            ),
            (
                self.schedule_gamma is None or self.schedule in USES_GAMMA,
                f"schedule-gamma is not used by schedule {self.schedule!r} "
                f"(only by {', '.join(USES_GAMMA)})",
            ),
            (
                self.schedule_period is None or self.schedule in USES_PERIOD,
                f"schedule-period is not used by schedule {self.schedule!r} "
                f"(only by {', '.join(USES_PERIOD)})",
            ),
            (
                self.schedule_gamma is None
                or (
                    math.isfinite(self.schedule_gamma)
                    and 0 < self.schedule_gamma
                    and (self.schedule_gamma < 1 or self.schedule == "exponential")
                ),
                f"schedule-gamma must be in (0, 1) (exponential: > 0), got {self.schedule_gamma}",
            ),
            (
                self.schedule_period is None or self.schedule_period >= 1,
                f"schedule-period must be >= 1, got {self.schedule_period}",
            ),
            (self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}"),
            (self.layers >= 1, f"layers must be >= 1, got {self.layers}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.batch >= 1, f"batch must be >= 1, got {self.batch}"),
            (math.isfinite(self.lr) and self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.clip is None or self.clip > 0, f"clip must be > 0, got {self.clip}"),
            (
                self.clip_value is None or self.clip_value > 0,
                f"clip-value must be > 0, got {self.clip_value}",
            ),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (self.eval_every >= 1, f"eval-every must be >= 1, got {self.eval_every}"),
        ]
        minimum_len = {"adding": 2, "copy": 1, "chars": 1}.get(self.task, 1)
        checks.append(
            (
                self.seq_len >= minimum_len,
                f"seq-len must be >= {minimum_len} for {self.task}, got {self.seq_len}",
            )
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def np_dtype(self) -> np.dtype[Any]:
        """The numpy dtype of parameters and inputs."""
        return np.dtype(self.dtype)


def resolve_config(task: str, **overrides: Any) -> TrainConfig:
    """A `TrainConfig` for ``task``: the task's defaults, then ``overrides``.

    Overrides that are None mean "use the default" (what the command line passes for
    options not given); ``lr`` defaults by task and optimizer.

    Raises:
        ValueError: an unknown task or a setting out of range.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    values: dict[str, Any] = {"task": task, **_TASK_DEFAULTS[task]}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("lr") is None:
        values["lr"] = _DEFAULT_LR[task].get(values.get("optim", "adam"), 1e-2)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    config = TrainConfig(**values)
    # An explicit 0 turns clipping off (None means "default" on the command line).
    if config.clip == 0:
        config.clip = None
    if config.clip_value == 0:
        config.clip_value = None
    config.validate()
    return config
