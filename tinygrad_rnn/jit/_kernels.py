"""The small functions a jit program calls at replay time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _call(rule: Callable[..., Any], params: dict[str, Any], *vals: Any, **more: Any) -> Any:
    return rule(*vals, **params, **more)


def _variadic(rule: Callable[..., Any], params: dict[str, Any]) -> Callable[..., Any]:
    def fn(g: Any, ans: Any, *args: Any, **more: Any) -> Any:
        return rule(g, ans, args, **params, **more)

    return fn


def _variadic_one(rule: Callable[..., Any], i: int, params: dict[str, Any]) -> Callable[..., Any]:
    def fn(g: Any, ans: Any, *args: Any, **more: Any) -> Any:
        return rule(i, g, ans, args, **params, **more)

    return fn


def _item(i: Any, seq: Any) -> Any:
    return seq[i]


def _accumulate(
    rule: Callable[..., None], params: dict[str, Any], buf: Any, *vals: Any, **more: Any
) -> Any:
    rule(buf, *vals, **params, **more)
    return buf


def _multiply_out(*pairs: tuple[Any, Any]) -> Any:
    """``Σ aᵀ b`` over all uses of a shared weight, as one matrix product."""
    if len(pairs) == 1:
        a, b = pairs[0]
        return a.T @ b
    lhs = np.concatenate([a for a, _ in pairs], axis=0)
    rhs = np.concatenate([b for _, b in pairs], axis=0)
    return lhs.T @ rhs


def _output_slots(outputs: Any) -> list[int]:
    """The slots of a traced function's returned tensors (its output spec)."""
    if isinstance(outputs, int):
        return [outputs]
    if isinstance(outputs, tuple) and outputs and outputs[0] == "seq":
        return [s for o in outputs[2] for s in _output_slots(o)]
    if isinstance(outputs, tuple) and outputs and outputs[0] == "dict":
        return [s for o in outputs[2].values() for s in _output_slots(o)]
    return []


# -------------------------------------------------------------- the decorator
