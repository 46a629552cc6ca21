"""The text written on nodes and edges: numbers, shapes, op parameters, DOT-safe names."""

from __future__ import annotations

from typing import Any

import numpy as np


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _summary(arr: np.ndarray, what: str) -> str:
    """One label line: ``value min -0.9 mean 0.01 max 0.97`` (with the norm for gradients)."""
    if arr.size == 0:
        return f"{what} (empty)"
    a = np.asarray(arr, dtype=np.float64)
    if a.size == 1:
        return f"{what} {_fmt(float(a.ravel()[0]))}"
    norm = f" norm {_fmt(float(np.linalg.norm(a.ravel())))}" if what == "grad" else ""
    return (
        f"{what}{norm} min {_fmt(float(a.min()))} mean {_fmt(float(a.mean()))} "
        f"max {_fmt(float(a.max()))}"
    )


_DTYPE_NAMES: dict[Any, str] = {}


def _dtype_name(dtype: Any) -> str:
    # numpy computes dtype.name afresh on every access; a graph asks 100,000 times.
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = np.dtype(dtype).name
    return name


def _shape_text(shape: tuple[int, ...], dtype: Any) -> str:
    s = "scalar" if shape == () else "(" + ", ".join(str(d) for d in shape) + ")"
    return f"{s} {dtype}"


def _fmt_index(index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, slice):
            a = "" if p.start is None else str(p.start)
            b = "" if p.stop is None else str(p.stop)
            out.append(f"{a}:{b}" + ("" if p.step is None else f":{p.step}"))
        elif p is None:
            out.append("None")
        elif p is Ellipsis:
            out.append("...")
        elif isinstance(p, np.ndarray):
            out.append(f"array{p.shape}" if p.size > 4 else str(p.tolist()))
        else:
            out.append(str(p))
    return "[" + ", ".join(out) + "]"


def _fmt_params(params: dict[str, Any]) -> list[str]:
    """Short ``key=value`` lines for an op's non-array parameters (``axis=1``, ``[:, 3]``)."""
    lines = []
    for k, v in params.items():
        if v is None or v is False or k == "residual":
            continue  # defaults such as axis=None, keepdims=False only add noise; a saved
            # residual (Primitive.saving) is the op's own business
        if k == "index":
            text = _fmt_index(v)
        elif isinstance(v, np.ndarray):
            text = f"{k}=array{v.shape}"
        else:
            text = f"{k}={v!r}"
        lines.append(text if len(text) <= 32 else text[:29] + "...")
    return lines


def _safe(text: str) -> str:
    """User text (names, scopes) made safe inside a DOT string (we write ``\\n`` ourselves)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
