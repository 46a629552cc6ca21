"""Writing a run's checkpoint and reading it back as a config and a model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_rnn import optim, tasks
from tinygrad_rnn.serialization import load, save
from tinygrad_rnn.training.config import TrainConfig
from tinygrad_rnn.training.history import History
from tinygrad_rnn.training.model import SequenceModel, build_model
from tinygrad_rnn.training.objectives import _AddingTask, _CopyTask

# ------------------------------------------------------------------------------ checkpoints
CHECKPOINT_FORMAT = "tinygrad-rnn-train/1"


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
    """Read a checkpoint written by `train`: the config and a model with its weights.

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
