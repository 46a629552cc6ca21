"""Recording the masks the dropout module draws (shared by the dropout and packed tests)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_rnn.nn import dropout as dropout_module


class MaskRecorder:
    """Wraps the dropout module's mask drawing, keeping every mask it hands out."""

    def __init__(self, monkeypatch: Any) -> None:
        self.masks: list[np.ndarray] = []
        real = dropout_module._bernoulli_scaled

        def recording(*args: Any, **kwargs: Any) -> Any:
            mask = real(*args, **kwargs)
            self.masks.append(mask.data.copy())
            return mask

        monkeypatch.setattr(dropout_module, "_bernoulli_scaled", recording)
