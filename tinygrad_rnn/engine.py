"""The backward pass: iterative topological order, gradient routing, freeing.

No recursion anywhere: a chain of 100,000 ops backprops in time linear in its
length. Gradients are kept in a dict keyed by tensor id and each entry is
dropped as soon as its tensor has been processed, so at most one "frontier" of
gradients is alive at a time.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn import _grad_mode, anomaly
from tinygrad_rnn.autograd import _TRACE as autograd_trace
from tinygrad_rnn.autograd import Node
from tinygrad_rnn.hooks import call_hooks
from tinygrad_rnn.tensor import Tensor


def _node_seq(t: Tensor) -> int:
    node = t._node
    return -1 if node is None else node.seq


def _topological_order(roots: Iterable[Tensor]) -> list[Tensor]:
    """Tensors reachable from ``roots`` through recorded ops, outputs before inputs.

    Nodes are numbered in creation order and an op's inputs always exist before the op
    runs, so sorting by that number (newest first) is a topological order; leaves, which
    have no rule to run, come last. Collecting is a plain stack walk: no recursion.
    """
    seen: dict[int, Tensor] = {}
    stack: list[Tensor] = []
    for r in roots:
        if id(r) not in seen:
            seen[id(r)] = r
            stack.append(r)
    while stack:
        node = stack.pop()._node
        if node is not None and node.inputs is not None:
            for p in node.inputs:
                if p is not None and id(p) not in seen:
                    seen[id(p)] = p
                    stack.append(p)
    return sorted(seen.values(), key=_node_seq, reverse=True)


def _as_root_grad(root: Tensor, grad: Any, create_graph: bool, where: str) -> Any:
    """Check and convert the upstream gradient given for one output."""
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"{where}: grad can be omitted only for an output with one element, "
                f"got shape {root.shape}; pass a gradient of that shape"
            )
        g = np.ones(root.shape, dtype=root.dtype)
    else:
        if isinstance(grad, Tensor):
            g = grad.data
        else:
            try:
                g = np.asarray(grad, dtype=root.dtype)
            except OverflowError as exc:
                raise ValueError(f"{where}: gradient does not fit in {root.dtype}: {exc}") from None
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"{where}: gradient must be a Tensor or an array of numbers, "
                    f"got {type(grad).__name__}: {exc}"
                ) from None
        if g.shape != root.shape:
            raise ValueError(
                f"{where}: gradient has shape {g.shape} but the output has shape {root.shape}"
            )
        if g.dtype != root.dtype:
            g = g.astype(root.dtype)
    if create_graph:
        return grad if isinstance(grad, Tensor) and grad.dtype == root.dtype else Tensor._make(g)
    return g


def _prune(order: list[Tensor], inputs: Sequence[Tensor]) -> tuple[list[Tensor], set[int]]:
    """Keep only the tensors from which some requested input can be reached."""
    needed = {id(t) for t in inputs}
    for t in reversed(order):  # inputs before outputs
        node = t._node
        if node is not None and node.inputs is not None:
            if any(p is not None and id(p) in needed for p in node.inputs):
                needed.add(id(t))
    return [t for t in order if id(t) in needed], needed


# A weight shared by T steps gets T gradient terms ``a_tᵀ b_t``. They are kept as factors
# and multiplied out together, ``[a_1; ...; a_k]ᵀ [b_1; ...; b_k]``: one large matrix
# product instead of k small ones (for batch 1, k outer products). Once the kept factors
# hold ``_FACTOR_CHUNK_BYTES`` they are multiplied out and dropped, so a long sequence
# never holds more than that (plus one step) of them.
_FACTOR_CHUNK_BYTES = 8 * 2**20
# The stacked rows live in scratch memory reused between backward passes (per thread):
# large fresh arrays cost a page fault per 4 KiB page on first touch, which for an RNN of
# batch 32 took longer than the product itself. The stacked rows never leave
# ``_Grads._multiply_out`` (only their product does), so reusing them is safe. Stacks over
# ``_POOL_BYTES`` are not kept.
_POOL_BYTES = 64 * 2**20
_scratch = threading.local()


def _stacked_rows(arrays: list[np.ndarray], slot: int) -> np.ndarray:
    """``np.concatenate(arrays, axis=0)`` written into reused scratch memory (slot 0 or 1)."""
    rows = sum(a.shape[0] for a in arrays)
    shape = (rows, *arrays[0].shape[1:])
    dtype = np.result_type(*arrays)
    size = math.prod(shape)
    if size * dtype.itemsize > _POOL_BYTES:
        return np.concatenate(arrays, axis=0)
    pool: dict[tuple[int, np.dtype[Any]], np.ndarray] | None = getattr(_scratch, "pool", None)
    if pool is None:
        pool = _scratch.pool = {}
    buf = pool.get((slot, dtype))
    if buf is None or buf.size < size:
        buf = pool[(slot, dtype)] = np.empty(size, dtype=dtype)
    out = buf[:size].reshape(shape)
    np.concatenate(arrays, axis=0, out=out)
    return out


# Large zeroed gradient buffers (the gradient of a whole input projection, filled row by
# row) are reused too. A buffer handed out during a backward pass goes back to the pool
# when the pass ends, unless it left the engine: became a leaf's ``.grad`` or was returned
# by ``grad()`` (see ``_Grads.escaped``). Nothing else can hold one by then: the pending
# gradients and factor lists it lived in are gone. At most ``_POOL_BYTES`` are kept.
_POOLED_MIN_BYTES = 256 * 2**10
_POOL_BYTES_PER_PASS = 16 * 2**20


def _free_buffers() -> dict[tuple[int, str], list[np.ndarray]]:
    pools: dict[tuple[int, str], list[np.ndarray]] | None = getattr(_scratch, "zeros", None)
    if pools is None:
        pools = _scratch.zeros = {}
    return pools


def _zeros(shape: tuple[int, ...], dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """``np.zeros(shape, dtype)`` and, when it is large enough to pool, its flat owner."""
    size = math.prod(shape)
    if size * dtype.itemsize < _POOLED_MIN_BYTES:
        return np.zeros(shape, dtype=dtype), None
    free = _free_buffers().get((size, dtype.str))
    if free:
        flat = free.pop()
        flat.fill(0)
    else:
        flat = np.zeros(size, dtype=dtype)
    return flat.reshape(shape), flat


def _release(buffers: list[np.ndarray]) -> None:
    """Give buffers that did not leave the engine back to the pool (within its budget)."""
    pools = _free_buffers()
    held = sum(b.nbytes for free in pools.values() for b in free)
    for flat in buffers:
        if held + flat.nbytes > _POOL_BYTES:
            break
        pools.setdefault((flat.size, flat.dtype.str), []).append(flat)
        held += flat.nbytes


def _clear_pools() -> None:
    """Drop this thread's reused scratch and buffer memory (for memory measurements)."""
    for name in ("pool", "zeros"):
        if hasattr(_scratch, name):
            delattr(_scratch, name)


class _Grads:
    """Pending gradients, keyed by tensor id.

    Arrays the engine allocated itself are "owned" and may be updated in place: sums it
    made, multiplied-out weight-gradient products, the buffers sparse rules write into,
    . Any other
    gradient may be shared with another tensor or with the caller, so adding to it makes a
    new array.
    """

    __slots__ = ("buffers", "create_graph", "factored", "held", "owned", "pending")

    def __init__(self, create_graph: bool) -> None:
        self.pending: dict[int, Any] = {}
        self.owned: set[int] = set()
        # Pooled buffers handed out during this pass (flat owners), by id.
        self.buffers: dict[int, np.ndarray] = {}
        self.held = 0  # their bytes
        # Products ``aᵀ b`` not yet multiplied out, and the bytes their factors hold.
        self.factored: dict[int, tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]] = {}
        self.create_graph = create_graph

    def add_factors(self, key: int, a: np.ndarray, b: np.ndarray) -> None:
        """Add ``aᵀ b`` to the gradient of ``key``, deferred (see ``_FACTOR_CHUNK_BYTES``)."""
        entry = self.factored.get(key)
        if entry is None:
            entry = self.factored[key] = ([], [0])
        terms, held = entry
        terms.append((a, b))
        held[0] += a.nbytes + b.nbytes
        if held[0] >= _FACTOR_CHUNK_BYTES:
            self._multiply_out(key, terms)
            held[0] = 0

    def _multiply_out(self, key: int, terms: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Add ``Σ aᵀ b`` over ``terms`` to the gradient of ``key`` and empty ``terms``."""
        if len(terms) == 1:
            product = terms[0][0].T @ terms[0][1]
        else:
            lhs = _stacked_rows([a for a, _ in terms], 0)
            rhs = _stacked_rows([b for _, b in terms], 1)
            product = lhs.T @ rhs
        terms.clear()
        self.add(key, product, fresh=True)

    def add(self, key: int, g: Any, fresh: bool = False) -> None:
        """Add ``g`` to the gradient of ``key``; ``fresh``: ``g`` is a new array of the engine's
        own (a weight product it made), which may
        then be updated in place and may take another gradient in place."""
        prev = self.pending.get(key)
        if prev is None:
            self.pending[key] = g
            if fresh:
                self.owned.add(key)
        elif self.create_graph:
            self.pending[key] = prev + g
        elif key in self.owned and prev.shape == np.shape(g):
            prev += g
        elif fresh and type(prev) is np.ndarray and prev.shape == g.shape and prev.dtype == g.dtype:
            g += prev  # into the new array: the earlier one may be shared
            self.pending[key] = g
            self.owned.add(key)
        else:
            total = prev + g
            self.pending[key] = total if type(total) is np.ndarray else np.asarray(total)
            self.owned.add(key)

    def buffer(self, key: int, like: Tensor) -> np.ndarray:
        """An owned array for ``key`` that sparse rules can add into in place."""
        prev = self.pending.get(key)
        if prev is None or key not in self.owned:
            buf, flat = _zeros(like.shape, like.dtype)
            # Holding a buffer for the pool keeps it alive until the pass ends: only the
            # first ``_POOL_BYTES_PER_PASS`` are held (the rest go as soon as they are used).
            if flat is not None and self.held + flat.nbytes <= _POOL_BYTES_PER_PASS:
                self.buffers[id(flat)] = flat
                self.held += flat.nbytes
            if prev is not None:
                buf += prev
            self.pending[key] = prev = buf
            self.owned.add(key)
        return prev

    def escaped(self, g: Any) -> None:
        """``g`` leaves the engine (a ``.grad``, a result of ``grad()``): never reuse its memory."""
        base = g
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        if self.buffers.pop(id(base), None) is not None:
            self.held -= base.nbytes  # no longer held for the pool: free budget again

    def release(self) -> None:
        """The pass is over: its pooled buffers that did not escape go back to the pool."""
        _release(list(self.buffers.values()))
        self.buffers.clear()

    def pop(self, key: int) -> tuple[Any, bool]:
        """The finished gradient of ``key`` and whether the engine owns its array."""
        entry = self.factored.pop(key, None)
        if entry is not None and entry[0]:
            self._multiply_out(key, entry[0])
        owned = key in self.owned
        self.owned.discard(key)
        return self.pending.pop(key, None), owned


def _freed_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"backward: the graph behind this tensor (op '{node.prim.name}') was freed by an "
        "earlier backward; pass retain_graph=True to the first backward to run backward "
        "through the same graph twice"
    )


def _run(
    roots: Sequence[Tensor],
    root_grads: Sequence[Any],
    *,
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None,
) -> list[Any] | None:
    """Propagate gradients from ``roots``.

    With ``inputs=None`` gradients of leaves are accumulated into ``.grad``;
    otherwise the gradients of ``inputs`` are returned (``.grad`` untouched) and
    only the part of the graph that leads to them is visited.
    """
    order = _topological_order(roots)
    wanted: dict[int, int] = {}
    needed: set[int] = set()
    if inputs is not None:
        wanted = {id(t): k for k, t in enumerate(inputs)}
        order, needed = _prune(order, inputs)
    results: list[Any] = [None] * len(wanted)
    grads = _Grads(create_graph)
    for r, g in zip(roots, root_grads):
        grads.add(id(r), g)

    anomaly_on = anomaly.is_anomaly_enabled()
    # Anomaly mode reports NaN/Inf itself, naming the op, instead of numpy's warnings.
    quiet = np.errstate(all="ignore") if anomaly_on else contextlib.nullcontext()
    enabled = _grad_mode._ENABLED
    saved_mode = enabled[0]
    enabled[0] = create_graph
    needed_or_none = needed if wanted else None
    # The loop below runs once per node of every backward: the common case (a gradient
    # computed once, not factored, not owned) is read straight from the dicts.
    pending, factored, owned_keys = grads.pending, grads.factored, grads.owned
    try:
        with quiet:
            for k in range(len(order)):
                # Drop the order's reference as we go: once its consumers have run (they
                # come earlier in the order) and it has been processed, nothing of this
                # pass needs the tensor, so its values can go before the pass ends.
                t = order[k]
                order[k] = None  # type: ignore[call-overload]
                key = id(t)
                if key in factored:
                    g, owned = grads.pop(key)
                else:
                    g = pending.pop(key, None)
                    owned = key in owned_keys
                    if owned:
                        owned_keys.discard(key)
                if g is None:
                    continue
                if t._hooks is not None:  # the gradient of t is complete: its hooks see it
                    g = _run_hooks(t, g, grads, create_graph)
                    owned = False  # a hook or ``.grad`` may hold it now
                if wanted and key in wanted:
                    results[wanted[key]] = g
                    grads.escaped(g)
                node = t._node
                if node is None:
                    if inputs is None:
                        grads.escaped(g)
                        _accumulate_leaf(t, g, create_graph, owned)
                    continue
                if node.inputs is None:
                    raise _freed_error(node)
                _propagate(node, t, g, grads, create_graph, anomaly_on, needed_or_none)
                if not retain_graph:
                    if type(node) is Node and node.prim.saving is None:
                        node.inputs = node.arrays = None  # ``Node.free``, without the call
                    else:
                        node.free()
        grads.release()
    finally:
        enabled[0] = saved_mode
    return results if inputs is not None else None


def _propagate(
    node: Node,
    t: Tensor,
    g: Any,
    grads: _Grads,
    create_graph: bool,
    anomaly_on: bool,
    needed: set[int] | None,
) -> None:
    """Run ``node``'s rules on the upstream gradient ``g`` and hand the results to its inputs."""
    prim = node.prim
    if create_graph:
        ans: Any = t
        args: tuple[Any, ...] = tuple(
            p if p is not None else Tensor._make(a)
            for p, a in zip(node.inputs or (), node.arrays or ())
        )
        # The fast forms below work on arrays only; ``vjps`` are the definitions.
        factors_of = accumulate = None
    else:
        ans = t.data
        args = node.arrays or ()
        factors_of = prim.factors
        accumulate = prim.accumulate
    params = node.params
    rules = prim.vjps
    vjp_n = prim.vjp_n  # a variadic op's rule
    pending = grads.pending
    # A variadic op's gradients all at once, when it has a form for that (array path).
    every = None if create_graph or prim.vjp_all is None else prim.vjp_all(g, ans, args, **params)
    i = -1
    for p in node.inputs or ():
        i += 1
        if p is None or (needed is not None and id(p) not in needed):
            continue
        factors = None
        if factors_of is not None:
            factor_rule = factors_of.get(i)
            if factor_rule is not None:
                factors = factor_rule(g, ans, *args, **params)
        if factors is not None:
            grads.add_factors(id(p), *factors)
            gi = factors[1]  # for the anomaly check: the product is finite if its factors are
        elif accumulate is not None and i == 0:
            # A sparse gradient (a slice): added into one buffer per input instead of a
            # zero-padded array for every use.
            gi = grads.buffer(id(p), p)
            accumulate(gi, g, *args, **params)
        else:
            if rules:
                gi = rules[i](g, ans, *args, **params)
            elif every is not None:
                gi = every[i]
            else:
                assert vjp_n is not None  # a Primitive has one or the other
                gi = vjp_n(i, g, ans, args, **params)
            key = id(p)
            if key in pending:
                grads.add(key, gi)
            else:  # the common case, without the call: the first gradient of a tensor
                pending[key] = gi
        if anomaly_on:
            anomaly.check_backward(prim.name, i, gi, [np.shape(a) for a in args], node.trace)


def _run_hooks(t: Tensor, g: Any, grads: _Grads, create_graph: bool) -> Any:
    """Run ``t``'s hooks on its finished gradient ``g`` and keep it in ``.grad`` if retained.

    Returns the gradient that flows on (a hook's replacement, or ``g``). Called only for
    tensors with hooks, so the hook-free backward pays nothing here.
    """
    hooks = t._hooks
    assert hooks is not None
    if hooks.fns:
        grads.escaped(g)  # a hook may keep the Tensor it is given: never reuse that memory
        given = g if isinstance(g, Tensor) else Tensor._make(g)
        out = call_hooks(t, hooks, given)
        if out is not given:
            g = out if create_graph else out.data
    if hooks.retain and t._node is not None:
        # After all the hooks, as PyTorch does; accumulated like a leaf's (a copy of ``g``,
        # which is shared with the rest of the pass).
        grads.escaped(g)
        _accumulate_leaf(t, g, create_graph, False)
    return g


def _accumulate_leaf(t: Tensor, g: Any, create_graph: bool, owned: bool) -> None:
    """Add ``g`` into ``t.grad`` without ever writing into an array someone else holds."""
    if isinstance(g, Tensor):
        new = g if g.dtype == t.dtype else g.data.astype(t.dtype)
        grad_t = new if isinstance(new, Tensor) else Tensor._make(new)
    else:
        if g.dtype != t.dtype:
            g, owned = g.astype(t.dtype), True
        grad_t = Tensor._make(np.asarray(g))
    if grad_t.shape != t.shape:
        raise RuntimeError(
            f"backward: gradient of shape {grad_t.shape} for a leaf of shape {t.shape} "
            "(a derivative rule returned the wrong shape)"
        )
    if t.grad is None:
        # Rules pass gradients through unchanged (add, reshape), so ``g`` may be shared with
        # another leaf or be the caller's own array: a leaf's .grad must own its memory.
        t.grad = grad_t if create_graph or owned else Tensor._make(np.array(grad_t.data))
    elif create_graph:
        t.grad = t.grad + grad_t
    else:
        t.grad = Tensor._make(np.asarray(t.grad.data + grad_t.data))  # 0-d sums are scalars


def backward(
    tensor: Tensor,
    grad: Any = None,
    *,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate gradients of ``tensor`` into ``.grad`` of every leaf that requires grad.

    See [`Tensor.backward`][tinygrad_rnn.Tensor.backward].
    """
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph; "
            "create the leaves with requires_grad=True"
        )
    tracer = autograd_trace[0]
    if tracer is not None:  # inside a ``tinygrad_rnn.jit`` function: the program's backward
        tracer.backward(tensor, grad, create_graph)
        return
    if retain_graph is None:
        retain_graph = create_graph
    g = _as_root_grad(tensor, grad, create_graph, "backward")
    _run([tensor], [g], retain_graph=retain_graph, create_graph=create_graph, inputs=None)


def _tensor_list(value: Any, name: str) -> list[Any]:
    """``value`` as a list: a Tensor alone, or the items of a sequence (checked by the caller)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"grad: {name} must be a Tensor or a sequence of Tensors, got {type(value).__name__}"
        )
    return list(value)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated.

    Args:
        outputs: a Tensor or a sequence of Tensors.
        inputs: a Tensor or a sequence of Tensors that require grad (leaves or
            intermediates).
        grad_outputs: upstream gradient(s), one per output, each of the output's
            shape; None for one-element outputs.
        retain_graph: keep the graph for another backward (default: ``create_graph``).
        create_graph: record this backward pass so the result can be differentiated.
        allow_unused: return None for an input the outputs do not depend on,
            instead of raising.

    Returns:
        A tuple with one Tensor (shape of the input) per input, in order.
    """
    if autograd_trace[0] is not None:
        raise RuntimeError(
            "grad: not available inside a tinygrad_rnn.jit function (a jitted program "
            "replays backward() only); call grad() outside the jitted function"
        )
    outs = _tensor_list(outputs, "outputs")
    ins = _tensor_list(inputs, "inputs")
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        gouts = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    elif isinstance(grad_outputs, Sequence) and not isinstance(grad_outputs, (str, bytes)):
        gouts = list(grad_outputs)
    else:
        raise TypeError(
            "grad: grad_outputs must be None, a Tensor, an array or a sequence of them, "
            f"got {type(grad_outputs).__name__}"
        )
    if len(gouts) != len(outs):
        raise ValueError(f"grad: {len(outs)} outputs but {len(gouts)} grad_outputs")
    for k, t in enumerate(ins):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs[{k}] is a {type(t).__name__}, expected a Tensor")
        if not t.requires_grad:
            raise ValueError(f"grad: inputs[{k}] (shape {t.shape}) does not require grad")
    for k, t in enumerate(outs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: outputs[{k}] is a {type(t).__name__}, expected a Tensor")
        if not t.requires_grad:
            raise ValueError(
                f"grad: outputs[{k}] does not require grad (it does not depend on any input "
                "that requires grad)"
            )
    if retain_graph is None:
        retain_graph = create_graph
    root_grads = [_as_root_grad(o, g, create_graph, "grad") for o, g in zip(outs, gouts)]
    raw = _run(outs, root_grads, retain_graph=retain_graph, create_graph=create_graph, inputs=ins)
    assert raw is not None
    result: list[Tensor | None] = []
    for k, (t, g) in enumerate(zip(ins, raw)):
        if g is None:
            if not allow_unused:
                raise ValueError(
                    f"grad: inputs[{k}] (shape {t.shape}) is not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
            result.append(None)
            continue
        if not isinstance(g, Tensor):
            g = Tensor._make(np.array(g, dtype=t.dtype))  # owned: never aliases another result
        result.append(g)
    return tuple(result)
