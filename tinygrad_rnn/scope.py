"""Name scopes: which module and which time step an op was recorded in.

Modules and recurrent layers wrap their work in ``scope("lstm")`` /
``scope("t=3")``. Nothing is stored unless a recorder is active (graph
drawing turns one on), so the cost when nobody draws is one list read per
``scope`` call and none per op.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from tinygrad_rnn import autograd

_STACK: list[str] = []
_RECORDERS = [0]


def current_scope() -> tuple[str, ...]:
    """The names of the scopes entered so far, outermost first."""
    return tuple(_STACK)


def is_recording_scopes() -> bool:
    """True while some caller (e.g. graph drawing) wants ops labelled with scopes."""
    return _RECORDERS[0] > 0


class _NoScope:
    """What ``scope`` returns while nobody records: entering and leaving do nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SCOPE = _NoScope()


def scope(name: str) -> AbstractContextManager[None]:
    """Label the ops recorded inside with ``name`` (nested scopes form a path).

    Recurrent layers open one per time step, so when no recorder is active this returns
    a shared do-nothing context manager instead of building a generator-based one.
    """
    if not _RECORDERS[0]:
        return _NO_SCOPE
    return _named_scope(name)


@contextmanager
def _named_scope(name: str) -> Iterator[None]:
    _STACK.append(name)
    try:
        yield
    finally:
        _STACK.pop()


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
