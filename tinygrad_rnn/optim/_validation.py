"""Argument checks shared by the optimizers, the schedulers and the clipping functions.

Each check takes ``where`` (the function or class, e.g. ``"SGD"``), the argument's ``name``
and its value, and returns the value normalised to a Python type (a float, an int, a bool,
a tuple), or raises TypeError/ValueError with a message naming all three.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def _real(where: str, name: str, value: Any) -> float:
    """``value`` as a Python float; TypeError for bools and non-numbers."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{where}: {name} must be a real number, got {value!r} ({type(value).__name__})"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{where}: {name} must be a finite number, got {value!r:.60}") from None


def _non_negative(where: str, name: str, value: Any) -> float:
    """A finite number >= 0, as a Python float."""
    x = _real(where, name, value)
    if not (x >= 0.0 and math.isfinite(x)):
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}")
    return x


def _unit_interval(where: str, name: str, value: Any) -> float:
    """A number in [0, 1), as a Python float."""
    x = _real(where, name, value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {value!r}")
    return x


def _betas(where: str, name: str, value: Any) -> tuple[float, float]:
    """A pair of numbers in [0, 1)."""
    try:
        b1, b2 = value
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a pair (beta1, beta2), got {value!r}") from None
    return (_unit_interval(where, f"{name}[0]", b1), _unit_interval(where, f"{name}[1]", b2))


def _flag(where: str, name: str, value: Any) -> bool:
    """A bool (Python or numpy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


def _int_at_least(where: str, name: str, value: Any, minimum: int) -> int:
    """An integer (Python or numpy, not a bool) >= ``minimum``, as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{where}: {name} must be an int, got {value!r:.60} ({type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)
