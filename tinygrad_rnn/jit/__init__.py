"""``tinygrad_rnn.jit``: trace a training step once, then replay it as a program on arrays.

The first call with a given signature (the arguments' shapes, dtypes and whether they
require grad) runs the function eagerly and records every op it applies. A ``backward()``
inside the function is not run by the engine: the tracer derives the backward program from
the recorded ops and their derivative rules (the same rules, the same fast forms: a
shared weight's gradient terms multiplied out together, sparse gradients written into one
buffer), runs it, and keeps it. Later calls replay the forward ops and the backward
instructions on arrays: no Tensor or Node per op, no sorting, no dispatch.

What runs only while tracing: Python code around the ops (prints, counters, control flow
that depends on values), numpy computations on ``.data``, ``.item()``. Their results are
baked into the program, as in ``jax.jit``. See docs/design.md, section "jit".

The package, one job per module: ``_tracer`` records a call and builds its program (the
backward from the ops' rules), ``_program`` holds the program and generates its Python
code, ``_plan`` is the memory plan of a program, ``_kernels`` the functions a replay calls;
this module is the decorator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_rnn import _grad_mode, anomaly, autograd
from tinygrad_rnn.engine import _accumulate_leaf
from tinygrad_rnn.jit._kernels import _multiply_out as _multiply_out  # for tests that look inside
from tinygrad_rnn.jit._program import _Program
from tinygrad_rnn.jit._tracer import _Tracer
from tinygrad_rnn.tensor import Tensor

__all__ = ["Jitted", "jit"]


def _flatten(value: Any, flat: list[Any]) -> Any:
    """A hashable signature of ``value``; Tensors and arrays are appended to ``flat``."""
    if isinstance(value, Tensor):
        flat.append(value)
        return ("T", value.shape, value.dtype.str, value.requires_grad)
    if isinstance(value, np.ndarray):
        flat.append(value)
        return ("A", value.shape, value.dtype.str)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_flatten(v, flat) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _flatten(v, flat)) for k, v in sorted(value.items())))
    if value is None or isinstance(value, (bool, int, float, str)):
        return ("V", type(value).__name__, value)
    raise TypeError(
        f"jit: arguments must be Tensors, arrays, numbers, strings, None or tuples, lists and "
        f"dicts of them; got {type(value).__name__}"
    )


def _wrap_arrays(value: Any) -> Any:
    """Array arguments as Tensors while tracing, so that modules do not copy them."""
    if isinstance(value, np.ndarray):
        return Tensor._make(value)
    if isinstance(value, tuple):
        return tuple(_wrap_arrays(v) for v in value)
    if isinstance(value, list):
        return [_wrap_arrays(v) for v in value]
    if isinstance(value, dict):
        return {k: _wrap_arrays(v) for k, v in value.items()}
    return value


def _output_spec(value: Any, tracer: _Tracer) -> Any:
    if isinstance(value, Tensor):
        return tracer._tensor_slot(value)
    if isinstance(value, (tuple, list)):
        return ("seq", type(value), tuple(_output_spec(v, tracer) for v in value))
    if isinstance(value, dict):
        return ("dict", None, {k: _output_spec(v, tracer) for k, v in value.items()})
    if value is None or isinstance(value, str):
        return ("const", value)
    raise TypeError(
        f"jit: a jitted function must return Tensors (or tuples, lists, dicts of them); got "
        f"{type(value).__name__}, whose value would be the first call's on every call: "
        "return the Tensor and call .item() outside"
    )


def _build_output(spec: Any, env: list[Any]) -> Any:
    if isinstance(spec, int):
        return Tensor._make(np.array(env[spec]))
    kind = spec[0]
    if kind == "seq":
        items = [_build_output(s, env) for s in spec[2]]
        return spec[1](items) if spec[1] is not tuple else tuple(items)
    if kind == "dict":
        return {k: _build_output(s, env) for k, s in spec[2].items()}
    return spec[1]


def _refuse_copied_arguments(tracer: _Tracer, flat: list[Any]) -> None:
    """A baked array equal to a varied argument is almost surely a copy of it: refuse.

    A replay would use the first call's copy for ever, silently. (An argument with a
    single repeated value, such as zeros, is not checked: a constant may equal it.)
    """
    varied = []
    for i, a in enumerate(flat):
        v = a.data if isinstance(a, Tensor) else a
        if isinstance(v, np.ndarray) and v.size > 1 and not (v == v.flat[0]).all():
            varied.append((i, v))
    if not varied:
        return
    baked = [v for _, v in tracer.prog.consts if isinstance(v, np.ndarray)]
    for _, _, params, _, _, _, _ in tracer.records:
        baked.extend(p for p in params.values() if isinstance(p, np.ndarray))
    baked.extend(t.data for _, t in tracer.prog.leaf_slots if not t.requires_grad)
    for b in baked:
        for i, v in varied:
            if b.shape == v.shape and b is not v and np.array_equal(b, v):
                raise RuntimeError(
                    f"jit: argument {i} (shape {v.shape}) reached an op as a copy made outside "
                    "the engine's ops (np.array, astype, ...): a replay would use the first "
                    "call's values. Pass it as it is, or convert it with the engine's ops"
                )


class Jitted:
    """A function traced once per signature and replayed as a program (see `jit`)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.programs: dict[Any, _Program] = {}
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if autograd._TRACE[0] is not None:  # called while an outer jit traces: inline it
            return self.fn(*args, **kwargs)
        if anomaly.is_anomaly_enabled():
            raise RuntimeError(
                "jit: anomaly mode checks every op as it runs, which a replayed program does "
                "not do; call the function without jit inside detect_anomaly()"
            )
        flat: list[Any] = []
        sig = (_flatten(args, flat), _flatten(kwargs, flat), _grad_mode.is_grad_enabled())
        prog = self.programs.get(sig)
        if prog is not None and all(
            t.data.shape == shape and t.data.dtype.str == dt
            for (_, t), (shape, dt) in zip(prog.leaf_slots, prog.leaf_meta)
        ):
            return self._replay(prog, flat)
        return self._trace(sig, args, kwargs, flat)

    def _trace(self, sig: Any, args: Any, kwargs: Any, flat: list[Any]) -> Any:
        wrapped_args = _wrap_arrays(args)
        wrapped_kwargs = _wrap_arrays(kwargs)
        # The Tensors standing for array arguments take those arguments' places.
        flat_wrapped: list[Any] = []
        _flatten((wrapped_args, wrapped_kwargs), flat_wrapped)
        tracer = _Tracer(flat_wrapped)
        autograd._TRACE[0] = tracer
        try:
            result = self.fn(*wrapped_args, **wrapped_kwargs)
        finally:
            autograd._TRACE[0] = None
        for t, data in tracer.leaf_data:
            if t.data is not data:
                raise RuntimeError(
                    "jit: the jitted function assigned new values to a tensor it reads "
                    f"(shape {t.shape}), such as an optimizer step does: call opt.step() and "
                    "opt.zero_grad() after the jitted function returns, outside it"
                )
        _refuse_copied_arguments(tracer, flat_wrapped)
        prog = tracer.prog
        prog.outputs = _output_spec(result, tracer)
        # Planned (and compiled) on the first replay, so that tracing does not pay for it;
        # until then the program holds the trace's values (it did during the trace too).
        prog.trace_values = tracer.values
        self.programs[sig] = prog
        env = [tracer.values.get(i) for i in range(prog.n)]
        return _build_output(prog.outputs, env)

    def _replay(self, prog: _Program, flat: list[Any]) -> Any:
        env = prog.run(flat)
        owned = prog.owned_grads
        for target, s in prog.grads:
            t = flat[target[1]] if isinstance(target, tuple) else target
            _accumulate_leaf(t, env[s], False, s in owned)  # as backward() does
        return _build_output(prog.outputs, env)


def jit(fn: Callable[..., Any]) -> Jitted:
    """Trace ``fn`` on its first call per signature and replay it afterwards.

    ``fn`` takes Tensors, arrays, numbers, strings and tuples/lists/dicts of them and
    returns Tensors (or tuples, lists, dicts of them). The signature is the shapes and
    dtypes of its Tensors and arrays, whether each Tensor requires grad, its other
    arguments by value, and the grad mode. Parameters and other tensors the function reads
    from its closure are read anew on every call (optimizers assign new arrays); a change
    of their shape or dtype traces again.

    A ``backward()`` inside ``fn`` is part of the program: every leaf's ``.grad``
    accumulates as it would in eager mode. Returned tensors are detached copies. Random
    draws ([`randn`][tinygrad_rnn.creation.randn], a Dropout mask) are drawn afresh on every
    call; Python code around the ops (prints, value-dependent branches, numpy on ``.data``)
    runs only while tracing, as in ``jax.jit``.

    Example:
        ```python
        @tg.jit
        def train_step(x, y):
            out, _ = lstm(x)
            loss = F.cross_entropy(head(out), y, reduction="sum")
            loss.backward()
            return loss

        for x, y in batches:
            loss = train_step(x, y)
            opt.step()
            opt.zero_grad()
        ```

    Raises:
        RuntimeError: an optimizer step (or any new value assigned to a tensor ``fn``
            reads) inside ``fn``; ``backward(create_graph=True)`` or ``grad()`` inside
            ``fn``; a hook or ``retain_grad()`` on a tensor the backward passes through;
            a call under ``detect_anomaly()``; an argument copied outside the engine's ops
            before it reaches an op (a replay would keep the first call's copy).
        TypeError: an argument or a return value of a kind that cannot be replayed.
    """
    if not callable(fn):
        raise TypeError(f"jit: expected a function, got {type(fn).__name__}")
    return Jitted(fn)
