"""What the training loop needs from each task: batches, a loss, a held-out metric."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, tasks
from tinygrad_rnn._grad_mode import no_grad
from tinygrad_rnn.tensor import Tensor
from tinygrad_rnn.training.config import TrainConfig
from tinygrad_rnn.training.model import SequenceModel


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

    def batch(self, rng: np.random.Generator) -> tuple[Any, ...]:
        """The next training batch as arrays (and, for chars, the carried state)."""
        raise NotImplementedError

    def forward(self, model: SequenceModel, *batch: Any) -> tuple[Tensor, Any]:
        """``(loss, carry)`` of one batch: the loss a one-element Tensor with a graph, the
        carry what `after` keeps for the next batch (None but for chars' final state).

        Only engine ops on the batch's arrays: the training loop compiles this with
        [`jit`][tinygrad_rnn.jit.jit], whose replays see nothing else.
        """
        raise NotImplementedError

    def after(self, carry: Any) -> None:
        """Keep what the next batch needs from this one (chars: the detached state)."""

    def loss(self, model: SequenceModel, rng: np.random.Generator) -> Tensor:
        """The training loss of the next batch (a one-element Tensor with a graph)."""
        loss, carry = self.forward(model, *self.batch(rng))
        self.after(carry)
        return loss

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
        self.T, self.batch_size, self.dtype = config.seq_len, config.batch, config.np_dtype
        self.baseline = tasks.adding_baseline()
        self.baseline_label = "predict 1 always: MSE 1/6"
        # A fixed held-out set: 1,000 sequences the model never trains on.
        self.x_test, self.y_test = tasks.adding_batch(test_rng, self.T, 1000, self.dtype)

    def batch(self, rng: np.random.Generator) -> tuple[Any, ...]:
        return tasks.adding_batch(rng, self.T, self.batch_size, self.dtype)

    def forward(self, model: SequenceModel, *batch: Any) -> tuple[Tensor, Any]:
        x, y = batch
        pred, _ = model(x, last_only=True)
        return F.mse_loss(pred, y), None

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
        self.T, self.batch_size, self.dtype = config.seq_len, config.batch, config.np_dtype
        self.baseline = tasks.copy_baseline(self.T)
        self.baseline_label = "memoryless: 10·ln 8/(T+20)"
        self.eye = np.eye(tasks.COPY_CLASSES, dtype=self.dtype)
        self.x_test, self.y_test = tasks.copy_batch(test_rng, self.T, 1000)

    def batch(self, rng: np.random.Generator) -> tuple[Any, ...]:
        x, y = tasks.copy_batch(rng, self.T, self.batch_size)
        return self.eye[x], y  # one-hot here: under jit only the arguments are read anew

    def forward(self, model: SequenceModel, *batch: Any) -> tuple[Tensor, Any]:
        x, y = batch
        logits, _ = model(x)
        # Every one of the T + 20 steps carries the loss (see tasks.copy_batch).
        return F.cross_entropy(logits, y), None

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

    def batch(self, rng: np.random.Generator) -> tuple[Any, ...]:
        if self.position + self.T + 1 > self.streams.shape[1]:
            # End of the text: start again from the top with a zero state (min-char-rnn).
            self.position, self.state = 0, None
        p, T = self.position, self.T
        x = self.streams[:, p : p + T].T  # (T, B) tokens
        y = np.ascontiguousarray(self.streams[:, p + 1 : p + T + 1].T)
        self.position += T
        return self.eye[x], y, self.state

    def forward(self, model: SequenceModel, *batch: Any) -> tuple[Tensor, Any]:
        x, y, state = batch
        logits, final = model(x, state)
        return F.cross_entropy(logits, y), final  # mean over T·B characters: nats per char

    def after(self, carry: Any) -> None:
        # Carry the state into the next chunk but cut its gradient (truncated BPTT).
        self.state = nn.detach_state(carry)

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
