"""Sampling text from a trained chars model."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_rnn import tasks
from tinygrad_rnn._grad_mode import no_grad
from tinygrad_rnn.training.config import TrainConfig
from tinygrad_rnn.training.model import SequenceModel


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
