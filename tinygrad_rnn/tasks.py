"""Data for the built-in training tasks of ``tinygrad-rnn train``: adding, copy, chars.

Every generator takes a ``np.random.Generator`` and returns plain numpy arrays laid
out time-first, ``(T, B, ...)``, as the recurrent layers expect. Nothing is
downloaded: the default text for ``chars`` is the package's own source code.

* **adding** (Hochreiter & Schmidhuber 1997; here the common variant with one marker in
  each half): a sequence of ``T`` pairs ``(value, marker)``; the values are ``U[0, 1]``,
  the marker is 1 at exactly two steps, one in the first half and one in the second; the
  target is the sum of the two marked values. Always predicting 1 (the mean of the sum)
  gives MSE ``Var(u1 + u2) = 2/12 = 1/6``, the baseline: `adding_baseline`.
* **copy** (copy memory, Arjovsky et al. 2016): remember 10 symbols over a gap of ``T``
  steps and write them out after a delimiter; layout in `copy_batch`.
  The memoryless baseline is ``10·ln 8 / (T + 20)``: `copy_baseline`.
* **chars**: next-character prediction on a text (min-char-rnn); baseline ``ln V``
  nats per character (uniform guessing over the ``V`` characters of the text).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "COPY_BLANK",
    "COPY_CLASSES",
    "COPY_DELIMITER",
    "COPY_LENGTH",
    "COPY_SYMBOLS",
    "CharCorpus",
    "adding_baseline",
    "adding_batch",
    "char_streams",
    "copy_baseline",
    "copy_batch",
    "load_text",
    "package_text",
]

# Copy task alphabet: symbols 0..7 to remember, then the blank and the delimiter.
COPY_SYMBOLS = 8
COPY_BLANK = 8
COPY_DELIMITER = 9
COPY_CLASSES = 10  # one-hot input size and number of output classes
COPY_LENGTH = 10  # how many symbols are remembered


# ----------------------------------------------------------------------------- adding
def adding_batch(
    rng: np.random.Generator, T: int, batch: int, dtype: npt.DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the adding problem.

    Args:
        rng: the random generator (the only source of randomness).
        T: sequence length, >= 2.
        batch: number of sequences B.
        dtype: floating dtype of both arrays.

    Returns:
        ``x (T, B, 2)``: channel 0 the values ``U[0, 1]``, channel 1 the markers (exactly
        two 1s per sequence: one at a step in ``[0, T//2)``, one in ``[T//2, T)``);
        ``y (B, 1)``: the sum of the two marked values.
    """
    if T < 2:
        raise ValueError(f"adding: the sequence length T must be at least 2, got {T}")
    if batch < 1:
        raise ValueError(f"adding: batch must be at least 1, got {batch}")
    values = rng.random((T, batch))
    half = T // 2
    first = rng.integers(0, half, batch)
    second = rng.integers(half, T, batch)
    markers = np.zeros((T, batch))
    cols = np.arange(batch)
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    x = np.stack([values, markers], axis=-1).astype(dtype)
    y = (values[first, cols] + values[second, cols])[:, None].astype(dtype)
    return x, y


def adding_baseline() -> float:
    """MSE of always predicting 1: ``Var(u1 + u2)`` for two independent ``U[0, 1]`` = 1/6."""
    return 1.0 / 6.0


# ------------------------------------------------------------------------------- copy
def copy_batch(rng: np.random.Generator, T: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the copy-memory task, as integer tokens (one-hot them for the input).

    The sequence has ``T + 20`` steps (tokens: symbols 0..7, blank 8, delimiter 9)::

        step     0 .. 9         10 .. T+8       T+9         T+10 .. T+19
        input    a_0 .. a_9     blank × (T−1)   delimiter   blank × 10
        target   blank × (T + 10) ............................  a_0 .. a_9

    ``a_k`` are drawn uniformly from the 8 symbols. ``T`` is the gap: the first symbol
    must be carried ``T + 10`` steps. The loss is taken at EVERY one of the ``T + 20``
    steps (cross-entropy averaged over steps and batch), so a model that only learned
    "blank until the delimiter, then guess" scores `copy_baseline`.

    Args:
        rng: the random generator.
        T: the gap length, >= 1.
        batch: number of sequences B.

    Returns:
        ``inputs (T + 20, B)`` and ``targets (T + 20, B)``, int64 tokens.
    """
    if T < 1:
        raise ValueError(f"copy: the gap length T must be at least 1, got {T}")
    if batch < 1:
        raise ValueError(f"copy: batch must be at least 1, got {batch}")
    n = COPY_LENGTH
    length = T + 2 * n
    symbols = rng.integers(0, COPY_SYMBOLS, (n, batch))
    inputs = np.full((length, batch), COPY_BLANK, dtype=np.int64)
    inputs[:n] = symbols
    inputs[T + n - 1] = COPY_DELIMITER
    targets = np.full((length, batch), COPY_BLANK, dtype=np.int64)
    targets[-n:] = symbols
    return inputs, targets


def copy_baseline(T: int) -> float:
    """Cross-entropy per step of the best memoryless predictor: ``10·ln 8 / (T + 20)``.

    Such a predictor knows the step but not the symbols: it predicts the blank with
    certainty for the first ``T + 10`` steps (loss 0) and the uniform distribution over
    the 8 symbols for the last 10 (loss ``ln 8`` each), averaged over ``T + 20`` steps.
    """
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (T + 2 * COPY_LENGTH)


# ------------------------------------------------------------------------------ chars
def _python_files(root: Traversable) -> list[Traversable]:
    """Every ``.py`` file under ``root``, depth first, in name order (deterministic)."""
    found: list[Traversable] = []
    stack = [root]
    while stack:
        node = stack.pop()
        for child in sorted(node.iterdir(), key=lambda c: c.name, reverse=True):
            if child.is_dir():
                if child.name != "__pycache__":
                    stack.append(child)
            elif child.name.endswith(".py"):
                found.append(child)
    return sorted(found, key=lambda f: str(f))


def package_text() -> str:
    """The default ``chars`` corpus: the source of this package, every ``.py`` file joined.

    Read through `importlib.resources`, so it works from a checkout, a wheel or a
    zip, and nothing is downloaded. (It changes whenever the package is edited; the
    training command prints its size and a hash so a result can be tied to a corpus.)
    """
    root = importlib.resources.files("tinygrad_rnn")
    return "\n".join(f.read_text(encoding="utf-8") for f in _python_files(root))


def load_text(path: str | Path | None) -> str:
    """The text at ``path`` (UTF-8), or `package_text` for None.

    Raises:
        FileNotFoundError, OSError: the file cannot be read.
        ValueError: it is not UTF-8, or has fewer than 2 distinct characters.
    """
    if path is None:
        text = package_text()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
    if len(set(text)) < 2:
        raise ValueError(
            f"{'the text' if path is None else path} has {len(set(text))} distinct character(s); "
            "a language model needs at least 2"
        )
    return text


@dataclass(frozen=True)
class CharCorpus:
    """A text as integer tokens, with its vocabulary (the sorted distinct characters)."""

    text: str
    vocab: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str, vocab: tuple[str, ...] | None = None) -> CharCorpus:
        """Build from ``text``; ``vocab`` defaults to its sorted distinct characters."""
        return cls(text, tuple(sorted(set(text))) if vocab is None else tuple(vocab))

    @property
    def vocab_size(self) -> int:
        """V, the number of distinct characters."""
        return len(self.vocab)

    @property
    def baseline(self) -> float:
        """``ln V``: cross-entropy (nats per character) of guessing uniformly."""
        return math.log(self.vocab_size)

    def sha256(self) -> str:
        """The first 12 hex digits of the text's SHA-256 (to tie results to a corpus)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:12]

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ``(len(text),)`` int64 token ids; ValueError for unknown characters."""
        index = {ch: i for i, ch in enumerate(self.vocab)}
        unknown = sorted({ch for ch in text if ch not in index})
        if unknown:
            shown = "".join(unknown[:10])
            raise ValueError(f"characters not in the vocabulary: {shown!r}")
        return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))

    def decode(self, tokens: npt.ArrayLike) -> str:
        """Token ids -> the string."""
        return "".join(self.vocab[int(i)] for i in np.asarray(tokens).ravel())


def char_streams(tokens: np.ndarray, batch: int) -> np.ndarray:
    """Cut ``tokens (N,)`` into ``batch`` contiguous streams: ``(B, N // B)``.

    Stream ``b`` is ``tokens[b·L : (b+1)·L]`` with ``L = N // B``, so consecutive chunks of
    one stream are consecutive text and its carried state stays meaningful (the tail
    ``N mod B`` tokens are dropped).
    """
    if batch < 1:
        raise ValueError(f"chars: batch must be at least 1, got {batch}")
    length = len(tokens) // batch
    return tokens[: batch * length].reshape(batch, length)
