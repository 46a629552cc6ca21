"""Gradient hooks on tensors: what ``Tensor.register_hook`` and ``Tensor.retain_grad`` store.

A tensor's hooks live in one slot, ``Tensor._hooks``: None for the tensors nobody hooked
(every tensor an op makes), so the backward pass pays one ``is not None`` per node for the
feature. The engine runs the hooks where a tensor's gradient is complete, before that
gradient flows on to the op's inputs or into a leaf's ``.grad``
(``engine._run_hooks``).

``t._hooks is not None`` is the cheap way to know that a tensor has hooks or retains its
gradient (``tinygrad_rnn.jit`` cannot replay hooks: its recorded backward never calls them).
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinygrad_rnn.tensor import Tensor

Hook = Callable[["Tensor"], "Tensor | None"]

_HANDLE_IDS = itertools.count()


class _Hooks:
    """A tensor's registered hooks, in registration order, and its ``retain_grad`` flag."""

    __slots__ = ("fns", "retain")

    def __init__(self) -> None:
        self.fns: dict[int, Hook] = {}  # handle id -> hook (dicts keep insertion order)
        self.retain = False


class RemovableHandle:
    """What [`Tensor.register_hook`][tinygrad_rnn.Tensor.register_hook] returns.

    ``handle.remove()`` unregisters the hook (calling it again does nothing). The handle
    is also a context manager that removes the hook on exit: in
    ``with h.register_hook(print): loss.backward()`` the hook runs in that backward pass
    and in no later one. The handle holds the tensor only weakly: keeping a handle never
    keeps a graph alive.

    Attributes:
        id: the hook's number, unique in the process.
    """

    __slots__ = ("_tensor", "id")

    def __init__(self, tensor: Tensor, key: int) -> None:
        self._tensor = weakref.ref(tensor)
        self.id = key

    def remove(self) -> None:
        """Unregister the hook; a no-op if it is already removed or the tensor is gone."""
        tensor = self._tensor()
        if tensor is None:
            return
        hooks = tensor._hooks
        if hooks is None:
            return
        hooks.fns.pop(self.id, None)
        if not hooks.fns and not hooks.retain:
            tensor._hooks = None  # back to the tensor of the hook-free fast path

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"RemovableHandle(id={self.id})"


def add_hook(tensor: Tensor, fn: Hook) -> RemovableHandle:
    """Register ``fn`` on ``tensor`` (checked by the caller) and return its handle."""
    hooks = tensor._hooks
    if hooks is None:
        hooks = tensor._hooks = _Hooks()
    key = next(_HANDLE_IDS)
    hooks.fns[key] = fn
    return RemovableHandle(tensor, key)


def set_retain(tensor: Tensor) -> None:
    """Mark a non-leaf ``tensor`` to keep its gradient in ``.grad`` (checked by the caller)."""
    hooks = tensor._hooks
    if hooks is None:
        hooks = tensor._hooks = _Hooks()
    hooks.retain = True


def _hook_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def call_hooks(tensor: Tensor, hooks: _Hooks, grad: Tensor) -> Tensor:
    """Run ``hooks.fns`` in registration order on ``grad`` (a Tensor of ``tensor``'s shape).

    Each hook gets the gradient the previous one left (its own return value if not None).

    Raises:
        TypeError: a hook returned something other than a Tensor or None, or changed the
            gradient's dtype.
        ValueError: a hook changed the gradient's shape.
    """
    from tinygrad_rnn.tensor import Tensor

    # A copy of the hooks: a hook may remove itself (or others) while they run.
    for fn in list(hooks.fns.values()):
        out = fn(grad)
        if out is None:
            continue
        if not isinstance(out, Tensor):
            raise TypeError(
                f"register_hook: hook {_hook_name(fn)!r} returned a {type(out).__name__}; "
                "a hook must return a Tensor (the replacement gradient) or None"
            )
        if out.shape != grad.shape:
            raise ValueError(
                f"register_hook: hook {_hook_name(fn)!r} changed the shape of the gradient "
                f"from {grad.shape} to {out.shape}"
            )
        if out.dtype != grad.dtype:
            raise TypeError(
                f"register_hook: hook {_hook_name(fn)!r} changed the dtype of the gradient "
                f"from {grad.dtype} to {out.dtype}"
            )
        grad = out
    return grad
