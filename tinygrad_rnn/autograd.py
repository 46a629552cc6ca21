"""Primitives and the graph nodes they record.

A `Primitive` pairs a numpy forward function with one derivative rule
per input (a vector-Jacobian product). The rule is written once with the
package's own ops and operators, so the same function runs

* on plain ``np.ndarray`` values during an ordinary backward pass (fast), and
* on Tensors when ``create_graph=True``, where it is recorded like any other
  computation and can be differentiated again (higher-order derivatives).

Calling a primitive dispatches on its arguments: with any Tensor among them it
records a `Node`; with arrays only it is just the numpy forward. That is
what lets a rule such as ``g * ((1 - y) * (1 + y))`` serve both paths.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn import _grad_mode, anomaly
from tinygrad_rnn.tensor import Tensor, _holds_large, _stand_in

Rule = Callable[..., Any]
_SEQUENCE = itertools.count()
_ENABLED = _grad_mode._ENABLED
_ANOMALY = anomaly._ENABLED
_SCALARS = (int, float, bool, np.generic)
_new_object = object.__new__


class Primitive:
    """An op of the engine: a numpy forward and one derivative rule per input.

    A primitive without any rule (no ``vjps``, no ``vjp_n``) is not differentiable: its
    output never requires grad (comparisons, ``argmax``). It is still an op, so
    [`jit`][tinygrad_rnn.jit.jit] replays it on every call instead of baking its result.

    Args:
        name: the op's name, used in error messages and graph drawings.
        forward: ``forward(*arrays, **params) -> np.ndarray``.
        vjps: one rule per positional input, ``rule(g, ans, *args, **params)``
            returning the gradient for that input, of the input's shape. ``g``
            is the upstream gradient, ``ans`` the forward's output, ``args`` the
            inputs (arrays on the fast path, Tensors under ``create_graph``).
        vjp_n: for variadic ops (concat, stack): ``rule(i, g, ans, args,
            **params)`` giving the gradient of input ``i`` (``args`` is the tuple of
            all inputs, passed as one object so n inputs cost O(n), not O(n²)).
        accumulate: optional in-place form of the rule of input 0, for gradients that
            fill only part of the input (indexing, one row of a sequence, some gate blocks)
            or are best written straight into a buffer (softmax cross-entropy):
            ``accumulate(buffer, g, *args, **params)`` adds the gradient into ``buffer``.
            Used only on the array path; the differentiable rule in ``vjps`` stays the
            definition.
        factors: optional ``{i: f}`` where ``f(g, ans, *args, **params)`` returns the
            gradient of input ``i`` as two factors ``(a, b)`` meaning ``aᵀ b`` (or None
            when it does not apply). The engine then adds up every use of a tensor with
            one matrix product instead of one per use (a weight shared by T time steps).
            Array path only; ``vjps`` stays the definition.
        vjp_all: optional array-path form of ``vjp_n``, ``vjp_all(g, ans, args, **params)``
            returning every input's gradient at once (the n slices of a ``stack``'s
            gradient in one call instead of n). ``vjp_n`` stays the definition.
        shape_only: the inputs whose values no rule reads, only their shape and dtype
            (a recurrent step's row of the input projection). [`jit`][tinygrad_rnn.jit.jit]
            passes such a rule a zero-byte stand-in instead of the value, so the value can
            be freed after its last forward use; eager nodes save one for an input of
            16 KiB or more (``tensor._RELEASE_MIN_BYTES``).
        saving: optional ``saving(*arrays, **params) -> (ans, residual)``, the forward
            that also returns what the array forms of the rules reuse (the softmax of a
            cross-entropy). Run instead of ``forward`` when a node is recorded; the rules,
            ``accumulate`` and ``factors`` then get ``residual=`` as a keyword, and must
            also work without it (``residual=None``: called directly, or under
            ``create_graph``, where rules recompute what they need with ops).
    """

    __slots__ = (
        "accumulate",
        "factors",
        "forward",
        "name",
        "nondiff",
        "saving",
        "shape_only",
        "vjp_all",
        "vjp_n",
        "vjps",
    )

    def __init__(
        self,
        name: str,
        forward: Callable[..., Any],
        *vjps: Rule,
        vjp_n: Rule | None = None,
        accumulate: Callable[..., None] | None = None,
        factors: dict[int, Callable[..., Any]] | None = None,
        vjp_all: Rule | None = None,
        shape_only: tuple[int, ...] = (),
        saving: Callable[..., tuple[Any, Any]] | None = None,
    ) -> None:
        if vjp_all is not None and vjp_n is None:
            raise ValueError(f"{name}: vjp_all is a fast form of vjp_n, which is missing")
        self.name = name
        self.accumulate = accumulate
        self.factors = factors
        self.forward = forward
        self.vjps = vjps
        self.vjp_n = vjp_n
        self.vjp_all = vjp_all
        self.shape_only = tuple(shape_only)
        self.saving = saving
        self.nondiff = not vjps and vjp_n is None

    def vjp(self, i: int, g: Any, ans: Any, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        """The gradient flowing to input ``i`` given the upstream gradient ``g``."""
        if self.vjp_n is not None:  # the inputs as one tuple: O(1) per input, not O(n)
            return self.vjp_n(i, g, ans, args, **params)
        return self.vjps[i](g, ans, *args, **params)

    def __call__(self, *args: Any, **params: Any) -> Any:
        for a in args:
            if isinstance(a, Tensor):
                return apply(self, args, params)
        try:
            return self.forward(*args, **params)
        except (TypeError, OverflowError) as exc:  # e.g. None given to a top-level op
            raise _op_error(self, exc, args) from exc

    def __repr__(self) -> str:
        return f"Primitive({self.name!r})"


class Node:
    """What an op remembers for backward: its primitive, inputs and parameters.

    ``inputs`` holds the input Tensors (None where the input was a constant) and
    ``arrays`` their values at forward time. Both are dropped by a backward pass
    without ``retain_graph``; the node then reports itself as freed.
    """

    __slots__ = ("arrays", "inputs", "params", "prim", "scope", "seq", "trace")

    def __init__(
        self,
        prim: Primitive,
        inputs: tuple[Tensor | None, ...],
        arrays: tuple[np.ndarray, ...],
        params: dict[str, Any],
    ) -> None:
        self.prim = prim
        self.inputs: tuple[Tensor | None, ...] | None = inputs
        self.arrays: tuple[np.ndarray, ...] | None = arrays
        self.params = params
        self.scope: Any = None
        # Creation order: an op's inputs always exist before it, so sorting nodes by
        # ``seq`` (newest first) is a topological order for the backward pass.
        self.seq = next(_SEQUENCE)
        self.trace: Any = None  # the creating code's stack, kept in anomaly mode only

    @property
    def freed(self) -> bool:
        """True once a backward pass has released the saved arrays."""
        return self.inputs is None

    def free(self) -> None:
        """Release the saved inputs (and a saved residual) so their memory can go."""
        self.inputs = None
        self.arrays = None
        if self.prim.saving is not None:
            self.params = _without_residual(self.params)


def _without_residual(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "residual"}


_FROZEN: dict[int, list[Any]] = {}


def _freeze(array: np.ndarray) -> bool:
    """Make a saved leaf array read-only while some graph needs it (counted per array)."""
    entry = _FROZEN.get(id(array))
    if entry is not None:
        entry[1] += 1
        return True
    if array.base is not None or not array.flags.writeable:
        # A view (or a read-only array) cannot be reliably unlocked later: numpy refuses to
        # make a view writeable while its base is locked. Leaf tensors own their arrays
        # (``Tensor(...)`` copies), so views only come from detach/no_grad tricks.
        return False
    array.flags.writeable = False
    _FROZEN[id(array)] = [array, 1]
    return True


def _thaw(array: np.ndarray) -> None:
    entry = _FROZEN.get(id(array))
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _FROZEN[id(array)]
        array.flags.writeable = True


class _GuardingNode(Node):
    """A node that saved the arrays of leaf tensors (parameters, inputs).

    Those arrays are the ones a user can reach (``w.data[...] = 0``) between forward and
    backward; writing into one would silently change the gradient. They are read-only
    from when this node saves them until it is freed by backward or garbage-collected,
    so numpy refuses such a write at once. Other nodes pay nothing for this.
    """

    __slots__ = ("guarded",)

    def __init__(
        self,
        prim: Primitive,
        inputs: tuple[Tensor | None, ...],
        arrays: tuple[np.ndarray, ...],
        params: dict[str, Any],
        leaves: list[np.ndarray],
    ) -> None:
        super().__init__(prim, inputs, arrays, params)
        self.guarded = tuple(a for a in leaves if _freeze(a))

    def _release(self) -> None:
        for a in self.guarded:
            _thaw(a)
        self.guarded = ()

    def free(self) -> None:
        self._release()
        super().free()

    def __del__(self) -> None:
        # At interpreter exit the module's globals may already be gone (even ``contextlib``);
        # nothing needs unlocking then, so any failure here is ignored.
        try:
            self._release()
        except Exception:
            pass


def _constant(value: Any, dtype: np.dtype[Any] | None, name: str) -> np.ndarray:
    """Turn a non-Tensor argument into an array without upcasting float32 tensors.

    Only numbers are accepted (as ``Tensor()`` does): an object, string or datetime
    array is a TypeError naming the op ``name``.
    """
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, _SCALARS) and dtype is not None:
        try:
            return np.asarray(value, dtype=dtype)
        except OverflowError:
            raise ValueError(f"{name}: {value!r} does not fit in {dtype}") from None
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name}: cannot use {type(value).__name__} as an operand: {exc}"
            ) from None
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"{name}: operands must be Tensors or arrays of numbers, got "
            f"{type(value).__name__} of dtype {array.dtype}"
        )
    return array


def _op_error(prim: Primitive, exc: Exception, arrays: Sequence[Any]) -> Exception:
    """The forward's exception, prefixed with the op's name and its input shapes."""
    if isinstance(exc, OverflowError):  # a number too large for the dtype: a bad value
        exc = ValueError(str(exc))
    if str(exc).startswith(f"{prim.name}: "):  # already names the op (a check in a forward)
        return exc
    shapes = ", ".join(str(np.shape(a)) for a in arrays)
    message = f"{prim.name}: {exc} (input shapes {shapes})"
    try:
        return type(exc)(message)
    except Exception:  # an exception type with a constructor of its own (numpy's ufunc errors)
        for cls in (TypeError, IndexError, ValueError):
            if isinstance(exc, cls):
                return cls(message)
        return ValueError(message)


def apply(prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Tensor:
    """Run ``prim`` on Tensors (and constants) and record a node when grad is needed."""
    # One pass over the arguments: this is the hottest function of the engine.
    arrays: list[Any] = []
    inputs: list[Tensor | None] = []  # the inputs gradients flow to (None: no grad needed)
    has_constant = needs_grad = has_leaf = False
    for a in args:
        if isinstance(a, Tensor):
            arrays.append(a.data)
            if a.requires_grad:
                needs_grad = True
                inputs.append(a)
            else:
                inputs.append(None)
            if a._node is None:
                has_leaf = True
        else:
            arrays.append(a)
            inputs.append(None)
            has_constant = True
    if has_constant:
        float_dtype = next(
            (x.dtype for x in arrays if isinstance(x, np.ndarray) and x.dtype.kind == "f"), None
        )
        arrays = [
            a.data if isinstance(a, Tensor) else _constant(x, float_dtype, prim.name)
            for a, x in zip(args, arrays)
        ]
    anomaly_on = _ANOMALY[0]
    # With a node to record, an op with a saving forward keeps what its rules reuse.
    forward = prim.forward
    saving = prim.saving is not None and needs_grad and _ENABLED[0]
    if saving:
        forward = prim.saving  # type: ignore[assignment]
    try:
        if anomaly_on:
            # Anomaly mode reports NaN/Inf itself, naming the op, instead of numpy's warning.
            with np.errstate(all="ignore"):
                out = forward(*arrays, **params)
        else:
            out = forward(*arrays, **params)
    except (ValueError, IndexError, TypeError, OverflowError) as exc:
        raise _op_error(prim, exc, arrays) from exc
    residual = None
    if saving:
        out, residual = out
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    if anomaly_on:
        anomaly.check_forward(prim.name, arrays, out)
    # Tensor._make inlined: this runs once per op.
    result = _new_object(Tensor)
    result.data = out
    result.grad = None
    result.name = None
    result._hooks = None
    result._node = None
    result.requires_grad = needs_grad and _ENABLED[0] and not prim.nondiff
    if _TRACE[0] is not None:  # a ``tinygrad_rnn.jit`` function is being traced
        _TRACE[0].record(prim, args, arrays, params, result, residual)
    if not result.requires_grad:
        return result
    if saving:
        params = {**params, "residual": residual}
    if prim.shape_only:
        # An input whose value no rule reads is saved as a zero-byte stand-in when it holds
        # (or is a view of) a large array: the node then does not keep that memory alive
        # once the Tensor's own values go (a layer releases its projection, an LSTM step
        # its pre-activations). Small values are saved as they are (no cost per step at
        # batch 1; small graphs, the ones people draw, keep every value).
        saved = None
        for i in prim.shape_only:
            x = arrays[i]
            if type(x) is np.ndarray and _holds_large(x):
                if saved is None:
                    saved = arrays = list(arrays)  # a copy: the tracer saw the values
                saved[i] = _stand_in(x)
    if has_leaf:
        leaves = [a.data for a in args if isinstance(a, Tensor) and a._node is None]
        node: Node = _GuardingNode(prim, tuple(inputs), tuple(arrays), params, leaves)
    else:
        node = Node(prim, tuple(inputs), tuple(arrays), params)
    result._node = node
    if _SCOPE_HOOK[0] is not None:
        node.scope = _SCOPE_HOOK[0]()
    if anomaly_on:
        node.trace = anomaly.creation_stack()
    return result


# The tracer of ``tinygrad_rnn.jit`` while it traces a function (one list read per op).
_TRACE: list[Any] = [None]

# Set by the visualization module while a scope is being recorded; None costs one
# list read per op when nobody is drawing graphs.
_SCOPE_HOOK: list[Callable[[], Any] | None] = [None]
