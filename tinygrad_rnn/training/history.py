"""The record of a run: per-step losses and the held-out metric, and their smoothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
        """Inverse of `arrays` (missing entries become empty)."""

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
