"""Anomaly mode: find the op where a NaN or Inf first appears, forward or backward.

Inside ``with tinygrad_rnn.detect_anomaly():`` every op checks its output for NaN/Inf
and every recorded op keeps the stack of the user's code that created it, so a bad
gradient in the backward pass is reported with the line that made the op. Outside the
block nothing is checked or recorded (one list read per op).
"""

from __future__ import annotations

import os
import traceback
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["AnomalyError", "detect_anomaly", "is_anomaly_enabled"]

_ENABLED = [False]
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared in anomaly mode; the message names the op and where it was made."""


def is_anomaly_enabled() -> bool:
    """True inside [`detect_anomaly`][tinygrad_rnn.detect_anomaly]."""
    return _ENABLED[0]


class detect_anomaly:
    """Make the first op that produces a NaN or Inf raise
    [`AnomalyError`][tinygrad_rnn.AnomalyError].

    Wrap both the forward and the backward pass::

        with tinygrad_rnn.detect_anomaly():
            loss = model(x)
            loss.backward()

    The forward check names the op and its input shapes; the backward check also names
    the line of user code that created the op. Costs a finiteness check per op and a
    stack capture per recorded op, so use it for debugging only.
    """

    def __init__(self) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> detect_anomaly:
        self._saved.append(_ENABLED[0])
        _ENABLED[0] = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _ENABLED[0] = self._saved.pop()


def creation_stack() -> traceback.StackSummary:
    """The call stack at op creation, without this package's own frames."""
    stack = traceback.extract_stack()
    return traceback.StackSummary.from_list(
        [f for f in stack if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)]
    )


def _where(stack: traceback.StackSummary | None) -> str:
    if not stack:
        return ""
    frame = stack[-1]
    return f"\n  created at {frame.filename}:{frame.lineno}: {frame.line}"


def _is_bad(value: Any) -> bool:
    array = np.asarray(
        value.data if hasattr(value, "data") and not isinstance(value, np.ndarray) else value
    )
    return array.dtype.kind in "fc" and not bool(np.isfinite(array).all())


def check_forward(name: str, arrays: list[Any] | tuple[Any, ...], out: np.ndarray) -> None:
    """Raise [`AnomalyError`][tinygrad_rnn.AnomalyError] if ``out`` holds NaN/Inf."""
    if not _is_bad(out):
        return
    shapes = ", ".join(str(np.shape(a)) for a in arrays)
    bad_in = [k for k, a in enumerate(arrays) if _is_bad(a)]
    cause = (
        f"its input(s) {bad_in} already held NaN/Inf" if bad_in else "all its inputs were finite"
    )
    raise AnomalyError(
        f"{name}: the forward pass produced NaN/Inf (input shapes {shapes}; {cause})"
        + _where(creation_stack())
    )


def check_backward(
    name: str, index: int, grad: Any, shapes: list[Any], stack: traceback.StackSummary | None
) -> None:
    """Raise [`AnomalyError`][tinygrad_rnn.AnomalyError] if the gradient for input ``index`` holds
    NaN/Inf."""
    if not _is_bad(grad):
        return
    raise AnomalyError(
        f"{name}: the backward pass produced NaN/Inf in the gradient of input {index} "
        f"(input shapes {', '.join(str(s) for s in shapes)})" + _where(stack)
    )
