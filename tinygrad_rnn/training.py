"""Models, the training loop, sampling and plots behind ``tinygrad-rnn train``.

Everything the console script does is a plain function here, so a notebook can do
the same thing without a subprocess::

    from tinygrad_rnn import training

    config = training.resolve_config("adding", seq_len=30, steps=500)
    result = training.train(config, out_dir="runs/adding-lstm")
    result.final_metric, result.baseline          # test MSE vs 1/6

The model is one recurrent layer stack (:class:`~tinygrad_rnn.nn.RNN`, ``LSTM`` or
``GRU``) and a :class:`~tinygrad_rnn.nn.Linear` head (:class:`SequenceModel`). Each
task (:mod:`tinygrad_rnn.tasks`) supplies batches, a loss and a held-out metric in
the units of its baseline, so every loss curve has a horizontal line to beat.

Plots use matplotlib's Agg canvas directly (no ``pyplot``), so importing or calling
this module never changes the matplotlib backend of a notebook.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim, tasks
from tinygrad_rnn._grad_mode import no_grad
from tinygrad_rnn.serialization import load, save
from tinygrad_rnn.tensor import Tensor

__all__ = [
    "CELLS",
    "OPTIMIZERS",
    "TASKS",
    "Checkpoint",
    "History",
    "SequenceModel",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "build_model",
    "format_loss",
    "gradient_profile",
    "load_checkpoint",
    "make_optimizer",
    "plot_gradient_profiles",
    "plot_history",
    "plot_runs",
    "resolve_config",
    "sample_chars",
    "train",
]

# The layer classes by --cell name (typed Any: their constructors differ from Module's).
CELLS: dict[str, Any] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
OPTIMIZERS = ("adam", "adagrad", "sgd", "rmsprop")
TASKS = ("chars", "adding", "copy")
DTYPES = ("float32", "float64")
CHECKPOINT_FORMAT = "tinygrad-rnn-train/1"

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


class TrainingError(RuntimeError):
    """Training could not go on (the loss became inf or nan)."""


# ------------------------------------------------------------------------------ config
@dataclass
class TrainConfig:
    """Everything that defines a training run; stored as JSON inside each checkpoint.

    ``seq_len`` is the task's length: the gap ``T`` for copy (sequences of ``T + 20``
    steps), the sequence length for adding, the truncated-BPTT chunk for chars.
    ``clip`` is the global gradient-norm bound (None: off); ``clip_value`` clamps every
    gradient element to ``[-clip_value, clip_value]`` (min-char-rnn: 5; None: off).
    ``forget_bias`` sets the LSTM forget-gate bias (``b_ih + b_hh`` rows ``H:2H``) after
    the usual initialisation (None: leave it). ``vocab`` is filled in for chars.
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
    seed: int = 0
    dtype: str = "float32"
    text: str | None = None
    eval_every: int = 100
    log_every: int = 0  # 0: about 20 lines per run
    sample_every: int = 0
    sample_length: int = 200
    temperature: float = 1.0
    vocab: list[str] | None = None

    def to_json(self) -> str:
        """The config as a JSON object (UTF-8 safe: the vocabulary may hold any character)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Parse :meth:`to_json`'s output; ValueError if it is not such a config."""
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
    """A :class:`TrainConfig` for ``task``: the task's defaults, then ``overrides``.

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


# ------------------------------------------------------------------------------- model
class SequenceModel(nn.Module):
    """A recurrent stack and a linear head: ``(T, B, D) -> (T, B, O)`` (or ``(B, O)``).

    Attributes:
        rnn: ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` with ``layers`` layers of ``hidden`` units.
        head: ``nn.Linear(hidden, output_size)``.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden: int,
        output_size: int,
        layers: int = 1,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        self.cell = cell
        self.rnn = CELLS[cell](input_size, hidden, num_layers=layers, dtype=dtype, rng=rng)
        self.head = nn.Linear(hidden, output_size, dtype=dtype, rng=rng)

    def forward(self, x: Any, state: Any = None, last_only: bool = False) -> tuple[Tensor, Any]:
        """Run the sequence.

        Args:
            x: ``(T, B, D)`` inputs.
            state: the initial state (None: zeros), as the layer takes it (LSTM: ``(h, c)``).
            last_only: apply the head to the last step only.

        Returns:
            ``(outputs, final_state)``: outputs ``(T, B, O)``, or ``(B, O)`` with ``last_only``.
        """
        out, final = self.rnn(x, state)
        return self.head(out[-1] if last_only else out), final

    def set_forget_bias(self, value: float) -> None:
        """Set the LSTM forget-gate bias of every layer to ``value`` (no-op for RNN/GRU).

        PyTorch's gate order is (i, f, g, o), so rows ``H:2H`` are the forget gate; the
        pre-activation adds ``b_ih + b_hh``, so ``b_ih`` gets ``value`` and ``b_hh`` 0.
        A bias of 1 keeps the cell state flowing at the start of training
        (Gers et al. 2000; Jozefowicz et al. 2015), which is what lets gradients reach
        far back before the gates have learned anything.
        """
        if self.cell != "lstm":
            return
        H = self.rnn.hidden_size
        for name, p in self.rnn.named_parameters():
            if name.startswith(("bias_ih", "bias_hh")):
                new = p.data.copy()  # a new array: never write into one a graph may hold
                new[H : 2 * H] = value if name.startswith("bias_ih") else 0.0
                p.data = new


def build_model(
    config: TrainConfig, input_size: int, output_size: int, rng: np.random.Generator | None
) -> SequenceModel:
    """The model ``config`` describes (``forget_bias`` applied), initialised from ``rng``."""
    model = SequenceModel(
        config.cell,
        input_size,
        config.hidden,
        output_size,
        layers=config.layers,
        dtype=config.np_dtype,
        rng=rng,
    )
    if config.forget_bias is not None:
        model.set_forget_bias(config.forget_bias)
    return model


def make_optimizer(name: str, params: Any, lr: float) -> optim.Optimizer:
    """``adam`` / ``adagrad`` (min-char-rnn's) / ``sgd`` (plain, seed 002) / ``rmsprop``."""
    if name == "adam":
        return optim.Adam(params, lr=lr)
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr)
    if name == "sgd":
        return optim.SGD(params, lr=lr)
    if name == "rmsprop":
        return optim.RMSProp(params, lr=lr)
    raise ValueError(f"optim must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


# ------------------------------------------------------------------------------- tasks
class _Task:
    """What the training loop needs from a task (subclasses below)."""

    name = ""
    input_size = 0
    output_size = 0
    baseline = 0.0
    baseline_label = ""
    metric = ""  # the held-out number reported, in the baseline's units
    log_y = True

    def loss(self, model: SequenceModel, rng: np.random.Generator) -> Tensor:
        """The training loss of the next batch (a one-element Tensor with a graph)."""
        raise NotImplementedError

    def evaluate(self, model: SequenceModel) -> dict[str, float]:
        """Held-out metrics; key ``"metric"`` is in the baseline's units."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line about the data."""
        return ""


class _AddingTask(_Task):
    name = "adding"
    input_size, output_size = 2, 1
    metric = "test MSE"

    def __init__(self, config: TrainConfig, test_rng: np.random.Generator) -> None:
        self.T, self.batch, self.dtype = config.seq_len, config.batch, config.np_dtype
        self.baseline = tasks.adding_baseline()
        self.baseline_label = "predict 1 always: MSE 1/6"
        # A fixed held-out set: 1,000 sequences the model never trains on.
        self.x_test, self.y_test = tasks.adding_batch(test_rng, self.T, 1000, self.dtype)

    def loss(self, model: SequenceModel, rng: np.random.Generator) -> Tensor:
        x, y = tasks.adding_batch(rng, self.T, self.batch, self.dtype)
        pred, _ = model(x, last_only=True)
        return F.mse_loss(pred, y)

    def evaluate(self, model: SequenceModel) -> dict[str, float]:
        with no_grad():
            pred, _ = model(self.x_test, last_only=True)
        return {"metric": float(np.mean((pred.data - self.y_test) ** 2, dtype=np.float64))}

    def describe(self) -> str:
        return f"adding problem, T={self.T}, held-out set of 1000 sequences"


class _CopyTask(_Task):
    name = "copy"
    input_size = output_size = tasks.COPY_CLASSES
    metric = "test cross-entropy/step"

    def __init__(self, config: TrainConfig, test_rng: np.random.Generator) -> None:
        self.T, self.batch, self.dtype = config.seq_len, config.batch, config.np_dtype
        self.baseline = tasks.copy_baseline(self.T)
        self.baseline_label = "memoryless: 10·ln 8/(T+20)"
        self.eye = np.eye(tasks.COPY_CLASSES, dtype=self.dtype)
        self.x_test, self.y_test = tasks.copy_batch(test_rng, self.T, 1000)

    def loss(self, model: SequenceModel, rng: np.random.Generator) -> Tensor:
        x, y = tasks.copy_batch(rng, self.T, self.batch)
        logits, _ = model(self.eye[x])
        # Every one of the T + 20 steps carries the loss (see tasks.copy_batch).
        return F.cross_entropy(logits, y)

    def evaluate(self, model: SequenceModel) -> dict[str, float]:
        with no_grad():
            logits, _ = model(self.eye[self.x_test])
            ce = F.cross_entropy(logits, self.y_test).item()
        # How many of the 10 symbols to reproduce come out right (arg max); chance is 1/8.
        recall = (
            logits.data[-tasks.COPY_LENGTH :].argmax(axis=-1) == self.y_test[-tasks.COPY_LENGTH :]
        )
        return {"metric": float(ce), "recall_accuracy": float(recall.mean())}

    def describe(self) -> str:
        return (
            f"copy memory, gap T={self.T} (sequences of {self.T + 20} steps), held-out set of "
            "1000 sequences"
        )


class _CharsTask(_Task):
    """Next-character prediction; truncated BPTT with the state carried across chunks."""

    name = "chars"
    metric = "validation loss/char"
    log_y = False
    val_fraction = 0.1
    max_val_chars = 20_000  # enough for a stable estimate, quick to run without gradients

    def __init__(self, config: TrainConfig, corpus: tasks.CharCorpus) -> None:
        self.corpus, self.T, self.dtype = corpus, config.seq_len, config.np_dtype
        self.input_size = self.output_size = corpus.vocab_size
        self.baseline = corpus.baseline
        self.baseline_label = f"uniform: ln V = ln {corpus.vocab_size}"
        self.eye = np.eye(corpus.vocab_size, dtype=self.dtype)
        tokens = corpus.encode(corpus.text)
        n_val = int(len(tokens) * self.val_fraction)
        train_tokens = tokens[: len(tokens) - n_val] if n_val >= 2 else tokens
        self.streams = tasks.char_streams(train_tokens, config.batch)
        if self.streams.shape[1] < self.T + 1:
            raise ValueError(
                f"the text is too short: {len(train_tokens)} training characters in "
                f"{config.batch} streams give {self.streams.shape[1]} per stream, fewer than "
                f"seq-len + 1 = {self.T + 1}; use a smaller --batch or --seq-len"
            )
        val_tokens = tokens[len(tokens) - n_val :][: self.max_val_chars] if n_val >= 2 else None
        # Validation runs as (up to) 32 contiguous streams of at least 2 characters: more
        # streams mean fewer sequential steps, and the engine's cost is per step.
        self.val_streams = (
            None
            if val_tokens is None
            else tasks.char_streams(val_tokens, max(1, min(32, len(val_tokens) // 2)))
        )
        self.position = 0
        self.state: Any = None

    def loss(self, model: SequenceModel, rng: np.random.Generator) -> Tensor:
        if self.position + self.T + 1 > self.streams.shape[1]:
            # End of the text: start again from the top with a zero state (min-char-rnn).
            self.position, self.state = 0, None
        p, T = self.position, self.T
        x = self.streams[:, p : p + T].T  # (T, B) tokens
        y = self.streams[:, p + 1 : p + T + 1].T
        logits, final = model(self.eye[x], self.state)
        # Carry the state into the next chunk but cut its gradient (truncated BPTT).
        self.state = nn.detach_state(final)
        self.position += T
        return F.cross_entropy(logits, y)  # mean over T·B characters: nats per character

    def evaluate(self, model: SequenceModel) -> dict[str, float]:
        if self.val_streams is None:
            return {"metric": float("nan")}
        total, count, state = 0.0, 0, None
        streams = self.val_streams
        with no_grad():
            for start, stop in nn.chunk_bounds(streams.shape[1] - 1, 200):
                x = streams[:, start:stop].T
                y = streams[:, start + 1 : stop + 1].T
                logits, state = model(self.eye[x], state)
                total += F.cross_entropy(logits, y, reduction="sum").item()
                count += y.size
        return {"metric": total / count, "bits_per_char": total / count / math.log(2)}

    def describe(self) -> str:
        n = len(self.corpus.text)
        return (
            f"{n:,} characters (sha256 {self.corpus.sha256()}), V={self.corpus.vocab_size}, "
            f"ln V={self.baseline:.3f}; last {self.val_fraction:.0%} held out for validation"
        )


def _make_task(
    config: TrainConfig, test_rng: np.random.Generator, corpus: tasks.CharCorpus | None
) -> _Task:
    if config.task == "adding":
        return _AddingTask(config, test_rng)
    if config.task == "copy":
        return _CopyTask(config, test_rng)
    if corpus is None:
        corpus = tasks.CharCorpus.from_text(tasks.load_text(config.text))
    return _CharsTask(config, corpus)


# ----------------------------------------------------------------------------- history
@dataclass
class History:
    """Per-step training losses and the held-out metric at evaluation steps."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_metrics: list[float] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        """The history as arrays (for a checkpoint)."""
        return {
            "steps": np.asarray(self.steps, dtype=np.int64),
            "losses": np.asarray(self.losses, dtype=np.float64),
            "grad_norms": np.asarray(self.grad_norms, dtype=np.float64),
            "eval_steps": np.asarray(self.eval_steps, dtype=np.int64),
            "eval_metrics": np.asarray(self.eval_metrics, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> History:
        """Inverse of :meth:`arrays` (missing entries become empty)."""

        def get(key: str) -> list[Any]:
            value = arrays.get(key)
            return [] if value is None else np.asarray(value).tolist()

        return cls(
            get("steps"), get("losses"), get("grad_norms"), get("eval_steps"), get("eval_metrics")
        )


def _smooth(values: Sequence[float], weight: float = 0.98) -> np.ndarray:
    """Bias-corrected exponential moving average (what the progress bar and plots show)."""
    out = np.empty(len(values))
    avg = 0.0
    for k, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[k] = avg / (1 - weight ** (k + 1))
    return out


# ------------------------------------------------------------------------------ training
@dataclass
class TrainResult:
    """What :func:`train` returns; also written to ``summary.json`` in the run folder."""

    config: TrainConfig
    history: History
    final_metric: float
    baseline: float
    metric_name: str
    extra: dict[str, float]
    seconds: float
    steps_done: int
    interrupted: bool
    files: dict[str, str]
    samples: list[str]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict of the numbers (no history)."""
        return {
            "task": self.config.task,
            "cell": self.config.cell,
            "hidden": self.config.hidden,
            "layers": self.config.layers,
            "seed": self.config.seed,
            "steps": self.steps_done,
            "metric": self.metric_name,
            "final_metric": self.final_metric,
            "baseline": self.baseline,
            "final_train_loss_smoothed": float(_smooth(self.history.losses)[-1])
            if self.history.losses
            else None,
            "seconds": self.seconds,
            "interrupted": self.interrupted,
            **self.extra,
            "config": asdict(self.config),
        }


def format_loss(value: float) -> str:
    """A loss for a log line: 4 decimals, or 3 significant digits below 0.01 (so 2.5e-04
    does not print as 0.0003 or 0.0000)."""
    return f"{value:.4f}" if not abs(value) < 0.01 or value == 0 else f"{value:.2e}"


def _default_log_every(steps: int) -> int:
    return max(1, steps // 20)


def _save_checkpoint(
    path: Path, model: SequenceModel, opt: optim.Optimizer, config: TrainConfig, history: History
) -> None:
    config_bytes = np.frombuffer(config.to_json().encode("utf-8"), dtype=np.uint8)
    save(
        {
            "format": np.frombuffer(CHECKPOINT_FORMAT.encode("ascii"), dtype=np.uint8),
            "config": config_bytes,
            "model": model.state_dict(),
            "optim": opt.state_dict(),
            "history": history.arrays(),
        },
        path,
    )


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    corpus: tasks.CharCorpus | None = None,
    stdout: TextIO | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train the model ``config`` describes on its task; write the run's files to ``out_dir``.

    Per step: a fresh batch (chars: the next ``seq_len`` characters of every stream, the
    state carried over and detached), forward, backward, optional value clipping, then
    global-norm clipping, then the optimizer step. Every ``eval_every`` steps (and at the
    end) the held-out metric is computed. A tqdm bar shows the smoothed loss when stderr is
    a terminal; otherwise a plain line is printed every ``log_every`` steps. Ctrl-C stops
    early and still writes the files.

    Files written to ``out_dir`` (when given): ``checkpoint.npz`` (model, optimizer,
    config as JSON bytes, history; read with :func:`load_checkpoint`), ``loss.png`` (the
    curves against the baseline), ``summary.json``, and ``samples.txt`` for chars.

    Args:
        config: from :func:`resolve_config`.
        out_dir: the run folder (created), or None to write nothing.
        corpus: the chars text (default: ``config.text`` or the package's own source).
        stdout: where lines go (default ``sys.stdout``).
        progress: force the bar on/off; None: on when stderr is a terminal.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingError: the loss became inf or nan.
        ValueError, OSError: bad settings or an unreadable text.
    """
    from tqdm import tqdm  # imported here: only training needs it

    out = stdout if stdout is not None else sys.stdout
    config.validate()
    if out_dir is not None:
        # Fail before training, not after it, if the run folder cannot be made.
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    # Independent streams for initialisation, training data, held-out data and sampling,
    # so changing e.g. the number of steps never changes the test set.
    init_ss, data_ss, test_ss, sample_ss = np.random.SeedSequence(config.seed).spawn(4)
    task = _make_task(config, np.random.default_rng(test_ss), corpus)
    if isinstance(task, _CharsTask):
        config.vocab = list(task.corpus.vocab)
    model = build_model(config, task.input_size, task.output_size, np.random.default_rng(init_ss))
    params = list(model.parameters())
    opt = make_optimizer(config.optim, params, config.lr)
    data_rng = np.random.default_rng(data_ss)
    sample_rng = np.random.default_rng(sample_ss)
    history = History()
    samples: list[str] = []
    n_params = sum(p.size for p in params)
    log_every = config.log_every or _default_log_every(config.steps)

    print(
        f"train {config.task}: {config.cell.upper()} hidden={config.hidden} layers={config.layers}"
        f" ({n_params:,} parameters, {config.dtype}), {config.optim} lr={config.lr:g}, "
        f"batch {config.batch}, clip {config.clip}, seed {config.seed}",
        file=out,
    )
    print(f"data: {task.describe()}", file=out)
    print(f"baseline: {task.baseline:.4f} ({task.baseline_label})", file=out)

    bar = tqdm(
        total=config.steps,
        disable=None if progress is None else not progress,
        file=sys.stderr,
        desc=f"{config.task}/{config.cell}",
        unit="step",
        dynamic_ncols=True,
    )
    plain = bool(bar.disable)

    def say(line: str) -> None:
        if plain:
            print(line, file=out, flush=True)
        else:
            bar.write(line, file=out)

    # The untrained model's held-out metric: where the curve starts (about the baseline or
    # worse), so the plot shows the whole descent.
    evaluation = task.evaluate(model)
    last_metric = evaluation["metric"]
    history.eval_steps.append(0)
    history.eval_metrics.append(last_metric)
    start = time.perf_counter()
    smooth = 0.0
    interrupted = False
    try:
        for step in range(1, config.steps + 1):
            opt.zero_grad()
            loss = task.loss(model, data_rng)
            loss.backward()
            if config.clip_value is not None:
                optim.clip_grad_value_(params, config.clip_value)
            norm = (
                optim.clip_grad_norm_(params, config.clip)
                if config.clip is not None
                else optim.clip_grad_norm_(params, math.inf)
            )
            value = float(loss.item())
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} at step {step}; try a smaller --lr or --clip"
                )
            opt.step()
            history.steps.append(step)
            history.losses.append(value)
            history.grad_norms.append(norm)
            smooth = 0.98 * smooth + 0.02 * value
            shown = smooth / (1 - 0.98**step)
            if step % config.eval_every == 0 or step == config.steps:
                evaluation = task.evaluate(model)
                last_metric = evaluation["metric"]
                history.eval_steps.append(step)
                history.eval_metrics.append(last_metric)
            if not plain:
                bar.set_postfix_str(
                    f"loss {format_loss(shown)}  {task.metric} {format_loss(last_metric)}", False
                )
                bar.update(1)
            elif step % log_every == 0 or step == config.steps:
                say(
                    f"step {step:>6}/{config.steps}  loss {format_loss(shown)}  {task.metric} "
                    f"{format_loss(last_metric)}  ({time.perf_counter() - start:.1f} s)"
                )
            if config.sample_every and step % config.sample_every == 0 and config.vocab:
                text = sample_chars(model, config, config.sample_length, sample_rng)
                samples.append(f"--- step {step} ---\n{text}")
                say(f"--- sample at step {step} ---\n{text}\n---")
    except KeyboardInterrupt:
        # Ctrl-C: keep what was learned so far (the interrupted step is not counted).
        interrupted = True
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    # An interrupt between the appends of one step leaves the lists unequal: drop that step.
    steps_done = min(len(history.steps), len(history.losses), len(history.grad_norms))
    del history.steps[steps_done:], history.losses[steps_done:], history.grad_norms[steps_done:]
    if interrupted and steps_done == 0:
        raise KeyboardInterrupt
    if history.eval_steps[-1] != steps_done:  # interrupted between evaluations
        evaluation = task.evaluate(model)
        last_metric = evaluation["metric"]
        history.eval_steps.append(steps_done)
        history.eval_metrics.append(last_metric)
    extra = {k: v for k, v in evaluation.items() if k != "metric"}
    if config.vocab:
        text = sample_chars(model, config, max(config.sample_length, 400), sample_rng)
        samples.append(
            f"--- final (step {steps_done}, temperature {config.temperature}) ---\n{text}"
        )

    files: dict[str, str] = {}
    if out_dir is not None:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        _save_checkpoint(folder / "checkpoint.npz", model, opt, config, history)
        files["checkpoint"] = str(folder / "checkpoint.npz")
        title = (
            f"{config.task}: {config.cell.upper()} H={config.hidden}"
            f"{'' if config.task == 'chars' else f', T={config.seq_len}'}, seed {config.seed}"
        )
        plot_history(
            history,
            folder / "loss.png",
            baseline=task.baseline,
            baseline_label=task.baseline_label,
            metric=task.metric,
            title=title,
            log_y=task.log_y,
        )
        files["plot"] = str(folder / "loss.png")
        if samples:
            (folder / "samples.txt").write_text("\n\n".join(samples) + "\n", encoding="utf-8")
            files["samples"] = str(folder / "samples.txt")
    result = TrainResult(
        config=config,
        history=history,
        final_metric=last_metric,
        baseline=task.baseline,
        metric_name=task.metric,
        extra=extra,
        seconds=seconds,
        steps_done=steps_done,
        interrupted=interrupted,
        files=files,
        samples=samples,
    )
    if out_dir is not None:
        path = Path(out_dir) / "summary.json"
        path.write_text(json.dumps(result.summary(), indent=2, ensure_ascii=False) + "\n")
        files["summary"] = str(path)
    return result


# ------------------------------------------------------------------------------ checkpoints
@dataclass
class Checkpoint:
    """A training checkpoint read back: its config, a model with the weights, the rest."""

    config: TrainConfig
    model: SequenceModel
    optim_state: dict[str, np.ndarray]
    history: History

    @property
    def corpus(self) -> tasks.CharCorpus | None:
        """The chars vocabulary as a (text-less) corpus, for encoding and decoding."""
        if self.config.vocab is None:
            return None
        return tasks.CharCorpus("", tuple(self.config.vocab))


def _decode_bytes(value: Any, what: str) -> str:
    arr = np.asarray(value)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError(f"its {what} is not stored as bytes")
    try:
        return arr.tobytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"its {what} is not UTF-8") from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`train`: the config and a model with its weights.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable tinygrad_rnn checkpoint, or not one from ``train``
            (the message says which), or weights that do not fit the stored config.
    """
    state = load(path)
    if "config" not in state or "model" not in state:
        raise ValueError(
            f"{path} is a tinygrad_rnn checkpoint but not one written by `tinygrad-rnn train` "
            "(it has no config and model)"
        )
    try:
        fmt = _decode_bytes(state.get("format", np.zeros(0, np.uint8)), "format tag")
        if fmt != CHECKPOINT_FORMAT:
            raise ValueError(f"its format tag is {fmt!r}, expected {CHECKPOINT_FORMAT!r}")
        config = TrainConfig.from_json(_decode_bytes(state["config"], "config"))
        if config.task == "chars" and not config.vocab:
            raise ValueError("it is a chars checkpoint without a vocabulary")
        if config.task == "chars":
            assert config.vocab is not None
            sizes = (len(config.vocab), len(config.vocab))
        elif config.task == "adding":
            sizes = (_AddingTask.input_size, _AddingTask.output_size)
        else:
            sizes = (_CopyTask.input_size, _CopyTask.output_size)
        model = build_model(config, sizes[0], sizes[1], np.random.default_rng(0))
        if not isinstance(state["model"], dict):
            raise ValueError("its model entry is not a set of arrays")
        model.load_state_dict(state["model"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: cannot use this checkpoint: {exc}") from None
    optim_state = state.get("optim", {})
    history = History.from_arrays(state.get("history", {}))
    return Checkpoint(config, model, optim_state if isinstance(optim_state, dict) else {}, history)


# ------------------------------------------------------------------------------ sampling
def sample_chars(
    model: SequenceModel,
    config: TrainConfig,
    length: int,
    rng: np.random.Generator,
    prime: str = "",
    temperature: float | None = None,
) -> str:
    """Sample ``length`` characters from a chars model, one at a time from its softmax.

    The ``prime`` text is fed first (its state is where sampling starts, its last
    character the first input); without one sampling starts from a newline (or the
    first character of the vocabulary). The returned text does not repeat the prime.

    Args:
        model: a chars model (input and output size V).
        config: its config (gives the vocabulary).
        length: characters to generate, >= 0.
        rng: the random generator.
        prime: text to condition on; every character must be in the vocabulary.
        temperature: divides the logits (< 1: more conservative, > 1: more random);
            default ``config.temperature``.

    Raises:
        ValueError: no vocabulary in ``config``, a prime character outside it, or
            ``temperature <= 0``.
    """
    if not config.vocab:
        raise ValueError("sampling needs a chars model (the config has no vocabulary)")
    temp = config.temperature if temperature is None else temperature
    if not temp > 0:
        raise ValueError(f"temperature must be > 0, got {temp}")
    corpus = tasks.CharCorpus("", tuple(config.vocab))
    V = corpus.vocab_size
    if not prime:
        prime = "\n" if "\n" in corpus.vocab else corpus.vocab[0]
    tokens = corpus.encode(prime)
    eye = np.eye(V, dtype=config.np_dtype)
    out = np.empty(length, dtype=np.int64)
    state: Any = None
    with no_grad():
        if len(tokens) > 1:
            _, state = model(eye[tokens[:-1]][:, None, :], state)  # (T, 1, V)
        current = int(tokens[-1])
        for k in range(length):
            logits, state = model(eye[current][None, None, :], state)
            z = logits.data[0, 0].astype(np.float64) / temp
            p = np.exp(z - z.max())
            current = int(rng.choice(V, p=p / p.sum()))
            out[k] = current
    return corpus.decode(out)


# ------------------------------------------------------------------------------ gradients
def gradient_profile(
    cell: str,
    T: int,
    hidden: int = 32,
    batch: int = 16,
    seed: int = 0,
    scale: float = 1.0,
    forget_bias: float | None = 1.0,
) -> np.ndarray:
    """``‖∂L/∂h_t‖`` for ``t = 0..T-1`` of an untrained cell on one adding-problem batch.

    The cell (``nn.RNNCell``/``LSTMCell``/``GRUCell``, float64, PyTorch's init
    ``U(-1/√H, 1/√H)`` times ``scale``) is unrolled with :func:`nn.unroll`; a linear head
    reads only the LAST hidden state and the loss is the MSE to the adding targets, so
    whatever gradient reaches step ``t`` has travelled back ``T − 1 − t`` steps.
    Computed with :func:`nn.hidden_grad_norms`.

    Returns:
        ``(T,)`` float64 norms (Frobenius over batch and hidden units).
    """
    cells: dict[str, Any] = {
        "rnn": nn.RNNCell,
        "lstm": nn.LSTMCell,
        "gru": nn.GRUCell,
    }
    if cell not in cells:
        raise ValueError(f"cell must be one of {', '.join(cells)}, got {cell!r}")
    init_rng = np.random.default_rng(seed)
    module: Any = cells[cell](2, hidden, dtype=np.float64, rng=init_rng)
    for p in module.parameters():
        p.data = p.data * scale
    if cell == "lstm" and forget_bias is not None:
        b_ih = module.bias_ih.data.copy()
        b_hh = module.bias_hh.data.copy()
        b_ih[hidden : 2 * hidden] = forget_bias
        b_hh[hidden : 2 * hidden] = 0.0
        module.bias_ih.data, module.bias_hh.data = b_ih, b_hh
    head = nn.Linear(hidden, 1, dtype=np.float64, rng=init_rng)
    # The same data for every cell: the seed, not the cell, decides the batch.
    x, y = tasks.adding_batch(np.random.default_rng(seed + 1), T, batch, np.float64)
    states = nn.unroll(module, x)
    last = states[-1]
    h_last = last[0] if isinstance(last, tuple) else last
    loss = F.mse_loss(head(h_last), y)
    return nn.hidden_grad_norms(loss, states)


# ------------------------------------------------------------------------------- plots
def _figure(width: float = 7.0, height: float = 4.2) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save_figure(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, format="png")
    return out


def plot_history(
    history: History,
    path: str | Path,
    *,
    baseline: float,
    baseline_label: str,
    metric: str,
    title: str,
    log_y: bool = True,
) -> Path:
    """The loss-curve PNG of one run: training loss (raw and smoothed), held-out metric,
    and the task's baseline as a dashed horizontal line. Returns the path written."""
    fig, ax = _figure()
    if history.losses:
        ax.plot(history.steps, history.losses, color="tab:blue", alpha=0.2, lw=0.7)
        ax.plot(
            history.steps,
            _smooth(history.losses),
            color="tab:blue",
            lw=1.6,
            label="training loss (smoothed)",
        )
    if history.eval_steps:
        ax.plot(
            history.eval_steps,
            history.eval_metrics,
            "o-",
            color="tab:orange",
            ms=3,
            lw=1.2,
            label=metric,
        )
    ax.axhline(
        baseline, color="k", ls="--", lw=1.2, label=f"baseline {baseline:.3f} ({baseline_label})"
    )
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save_figure(fig, path)


def plot_runs(
    runs: Sequence[tuple[str, History]],
    path: str | Path,
    *,
    baseline: float,
    baseline_label: str,
    metric: str,
    title: str,
    log_y: bool = True,
) -> Path:
    """Several runs' held-out curves (and faint smoothed training losses) on one plot."""
    fig, ax = _figure()
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:olive"]
    for (label, history), color in zip(runs, colors * 10):
        if history.losses:
            ax.plot(history.steps, _smooth(history.losses), color=color, alpha=0.35, lw=1.0)
        ax.plot(
            history.eval_steps,
            history.eval_metrics,
            "-",
            color=color,
            lw=1.8,
            label=f"{label}: {metric}",
        )
    ax.axhline(
        baseline, color="k", ls="--", lw=1.2, label=f"baseline {baseline:.3f} ({baseline_label})"
    )
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{metric} (bold), training loss (faint)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save_figure(fig, path)


def plot_gradient_profiles(
    profiles: dict[str, np.ndarray], path: str | Path, *, title: str
) -> Path:
    """``‖∂L/∂h_t‖`` against ``t`` for each cell, log-scale y (the vanishing-gradient plot)."""
    fig, ax = _figure()
    colors = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
    floor = np.finfo(np.float64).tiny
    for name, norms in profiles.items():
        t = np.arange(len(norms))
        ax.plot(
            t,
            np.maximum(norms, floor),
            "o-",
            ms=2.5,
            lw=1.4,
            color=colors.get(name),
            label=name.upper(),
        )
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the loss reads only the last step)")
    ax.set_ylabel("‖∂L/∂h_t‖")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    return _save_figure(fig, path)
