"""The switch that decides whether ops record a graph (``no_grad`` / ``enable_grad``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# A one-element list so the hot path reads a single global without a function call.
_ENABLED = [True]


def is_grad_enabled() -> bool:
    """Return whether ops currently record the graph needed for backward."""
    return _ENABLED[0]


class _GradMode:
    """Context manager and decorator that sets graph recording to a fixed value."""

    _value: bool

    def __init__(self) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(_ENABLED[0])
        _ENABLED[0] = self._value

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _ENABLED[0] = self._saved.pop()

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Record nothing: ops inside return tensors with ``requires_grad=False``.

    Use as ``with no_grad(): ...`` or as a decorator ``@no_grad()``.
    """

    _value = False


class enable_grad(_GradMode):
    """Record the graph again inside a ``no_grad`` block (also a decorator)."""

    _value = True
