"""Name scopes: which module and which time step an op was recorded in.

Modules and recurrent layers wrap their work in ``scope("lstm")`` /
``scope("t=3")``. Nothing is stored unless a recorder is active (graph
drawing turns one on), so the cost when nobody draws is one list read per
``scope`` call and none per op.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tinygrad_rnn import autograd

_T = TypeVar("_T")
_STACK: list[str] = []
_RECORDERS = [0]


def current_scope() -> tuple[str, ...]:
    """The names of the scopes entered so far, outermost first."""
    return tuple(_STACK)


def is_recording_scopes() -> bool:
    """True while some caller (e.g. graph drawing) wants ops labelled with scopes."""
    return _RECORDERS[0] > 0


class _Scope:
    """``with scope(name):`` (or ``@scope(name)`` on a function). Whether to record is decided
    on entering, so a scope made before recording starts still counts; while nobody records,
    entering and leaving cost one list read each (recurrent layers open one per step)."""

    __slots__ = ("name", "pushed")

    def __init__(self, name: str) -> None:
        self.name = name
        self.pushed = False

    def __enter__(self) -> None:
        if _RECORDERS[0]:
            _STACK.append(self.name)
            self.pushed = True

    def __exit__(self, *exc: object) -> None:
        if self.pushed:
            _STACK.pop()
            self.pushed = False

    def __call__(self, func: Callable[..., _T]) -> Callable[..., _T]:
        @functools.wraps(func)
        def in_scope(*args: Any, **kwargs: Any) -> _T:
            with _Scope(self.name):
                return func(*args, **kwargs)

        return in_scope


def scope(name: str) -> _Scope:
    """Label the ops recorded inside with ``name`` (nested scopes form a path).

    Use as ``with scope("encoder"): ...`` or as a decorator, ``@scope("encoder")``.
    """
    return _Scope(name)


@contextmanager
def record_scopes() -> Iterator[None]:
    """Turn on scope recording: every node made inside gets ``node.scope`` (a tuple)."""
    _RECORDERS[0] += 1
    autograd._SCOPE_HOOK[0] = current_scope
    try:
        yield
    finally:
        _RECORDERS[0] -= 1
        if not _RECORDERS[0]:
            autograd._SCOPE_HOOK[0] = None
