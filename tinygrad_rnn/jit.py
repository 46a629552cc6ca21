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
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_rnn import _grad_mode, anomaly, autograd
from tinygrad_rnn import ops as _ops
from tinygrad_rnn.autograd import Primitive
from tinygrad_rnn.tensor import Tensor, _stand_in

__all__ = ["jit"]

_Instr = tuple[Callable[..., Any], tuple[int, ...], int]


class _Program:
    """A traced step: forward ops and backward instructions over numbered value slots.

    ``plan`` (once, at trace time) decides where each slot dies and which elementwise
    instructions may write into an input that dies there; ``run`` executes the program as
    generated Python functions (one local variable per slot, no interpreter loop).
    """

    def __init__(self) -> None:
        self.instrs: list[_Instr] = []
        self.n = 0
        self.consts: list[tuple[int, Any]] = []
        self.arg_slots: list[tuple[int, int]] = []  # (slot, index of the flat argument)
        self.leaf_slots: list[tuple[int, Tensor]] = []  # captured leaves, read anew per call
        self.leaf_meta: list[tuple[tuple[int, ...], str]] = []
        self.grads: list[tuple[Any, int]] = []  # ("arg", i) or the leaf Tensor, and its slot
        self.outputs: Any = None
        self.wrap: set[int] = set()  # instructions whose result may be a numpy scalar
        # What the compiler knows about an instruction, to write it as inline code:
        # (primitive, fixed params) for a forward; ("scatter", index), ("pair", i, j),
        # ("item", i) for backward instructions.
        self.meta: dict[int, tuple[Any, ...]] = {}
        self.frees: list[tuple[int, ...]] = []
        self.inplace: dict[int, int] = {}  # instruction -> the input slot it writes into
        self.addmm_in_place: set[int] = set()
        self.contiguous: set[int] = set()
        self.chunks: list[Callable[[list[Any]], None]] | None = None
        self.stats = {"instructions": 0, "in_place": 0}
        self.zero_buffers: set[int] = set()
        self.sources: list[str] = []
        self.trace_values: dict[int, Any] | None = None  # slots of the zeroed gradient buffers
        # The memory plan (see `_plan_buffers`): instructions that write into a region of a
        # gradient buffer instead of a new array, scatters that become no-ops, weight
        # products read straight from a buffer's rows.
        self.view_of: dict[int, tuple[int, Any]] = {}  # zeros instr -> (buffer slot, index)
        self.out_view: dict[int, tuple[int, Any]] = {}  # ufunc instr -> (buffer slot, index)
        self.alias: dict[int, int] = {}  # scatter instr -> the buffer slot it passes on
        self.runs: dict[int, list[Any]] = {}  # product instr -> its rows' plan
        self.extra_reads: dict[int, tuple[int, ...]] = {}
        # Work merged over slices or rows: instr -> (slot of the merged result, its operands
        # (("slot", s) as is, ("slice", s) indexed by the union), the union index, this
        # instruction's index into the merged result, whether it computes it).
        self.merged: dict[int, tuple[int, tuple[tuple[str, int], ...], Any, Any, bool]] = {}

    def new_slot(self) -> int:
        self.n += 1
        return self.n - 1

    def plan(self, values: dict[int, Any]) -> None:
        """Liveness and in-place writes, from the trace's values (shapes, dtypes, aliasing).

        A slot is freed right after its last use (outputs and gradients are kept). An
        elementwise ufunc may write its result into an input slot when that slot dies at
        this instruction, has the result's shape and dtype, owns its memory (made by an
        instruction of this program, not a view, not an argument, a leaf or a constant),
        and no other live slot is a view of it.
        """
        keep = {s for _, s in self.grads} | set(_output_slots(self.outputs))
        pinned = _plan_memory(self, values, keep)
        _plan_siblings(self, values, pinned)
        producer = {out: k for k, (_, _, out) in enumerate(self.instrs)}
        for k, meta in self.meta.items():
            # (Wᵀ)ᵀ is W: the backward's transpose of a forward transpose reads W itself,
            # which is C-ordered (the transpose in between may be a C-ordered copy below).
            if meta[0] is _ops._transpose and meta[1].get("axes") is None:
                j = producer.get(self.instrs[k][1][0])
                inner = self.meta.get(j) if j is not None else None
                if (
                    j is not None
                    and inner is not None
                    and inner[0] is _ops._transpose
                    and inner[1].get("axes") is None
                ):
                    source = self.instrs[j][1][0]
                    self.alias[k] = source
                    self.extra_reads[k] = (*self.extra_reads.get(k, ()), source)
        last: dict[int, int] = {}
        for k, (_, ins, out) in enumerate(self.instrs):
            for i in (*ins, *self.extra_reads.get(k, ())):
                last[i] = k
            last.setdefault(out, k)
        frees: list[list[int]] = [[] for _ in self.instrs]
        for slot, k in last.items():
            if slot not in keep:
                frees[k].append(slot)
        self.frees = [tuple(f) for f in frees]
        # Memory owners: a slot whose value is a view names its base's owner.
        owner_last: dict[int, int] = {}
        owner_of: dict[int, int] = {}
        for slot, v in values.items():
            end = len(self.instrs) if slot in keep else last.get(slot, -1)
            # A tuple (a weight's gradient factors, a stack's gradients) holds arrays of
            # other slots: their memory lives as long as the tuple.
            for part in v if isinstance(v, (tuple, list)) else (v,):
                if isinstance(part, np.ndarray):
                    root = part if part.base is None else part.base
                    if part is v:
                        owner_of[slot] = id(root)
                    owner_last[id(root)] = max(owner_last.get(id(root), -1), end)
        outside = {id(v) for _, v in self.consts if isinstance(v, np.ndarray)}
        fresh: set[int] = set()
        for k, (fn, ins, out) in enumerate(self.instrs):
            v = values.get(out)
            if (
                isinstance(v, np.ndarray)
                and v.base is None
                and id(v) not in outside
                and all(values.get(i) is not v for i in ins)
                and out not in pinned  # a region of a buffer now, not an array of its own
            ):
                fresh.add(out)
            if (
                not (isinstance(fn, np.ufunc) and fn.nout == 1)
                or not isinstance(v, np.ndarray)
                or k in self.out_view
                or k in self.merged
            ):
                continue
            for i in ins:
                iv = values.get(i)
                if (
                    i in fresh
                    and last.get(i) == k
                    and i not in keep
                    and isinstance(iv, np.ndarray)
                    and iv.shape == v.shape
                    and iv.dtype == v.dtype
                    and owner_last.get(owner_of.get(i, -1), k) <= k  # no view lives on
                ):
                    self.inplace[k] = i
                    fresh.add(out)
                    break
        uses: dict[int, int] = {}
        for _, ins, _ in self.instrs:
            for i in ins:
                uses[i] = uses.get(i, 0) + 1
        for k, meta in self.meta.items():
            # A weight's transpose read by several products (every step's h W_hhᵀ) is copied
            # once into C order.
            if meta[0] is _ops._transpose and uses.get(self.instrs[k][2], 0) > 1:
                v = values.get(self.instrs[k][2])
                if isinstance(v, np.ndarray) and v.ndim == 2 and not v.flags.c_contiguous:
                    self.contiguous.add(k)
            if meta[0] is _ops.addmm:
                c, prod = values.get(self.instrs[k][1][0]), values.get(self.instrs[k][2])
                if (
                    isinstance(c, np.ndarray)
                    and isinstance(prod, np.ndarray)
                    and (c.shape, c.dtype) == (prod.shape, prod.dtype)
                ):
                    self.addmm_in_place.add(k)
        self.stats = {"instructions": len(self.instrs), "in_place": len(self.inplace)}

    def _compile(self, chunk: int = 300) -> list[Callable[[list[Any]], None]]:
        """The instructions as Python functions of ``chunk`` instructions each.

        Slots are locals; a chunk loads what it reads from ``env`` and stores back what a
        later chunk or the caller reads.
        """
        keep = {s for _, s in self.grads} | set(_output_slots(self.outputs))
        read_after: list[set[int]] = []
        later: set[int] = set(keep)
        bounds = list(range(0, len(self.instrs), chunk)) or [0]
        for b in reversed(bounds):
            read_after.append(set(later))
            for k in range(b, min(b + chunk, len(self.instrs))):
                later.update(self.instrs[k][1])
                later.update(self.extra_reads.get(k, ()))
        read_after.reverse()
        fns = []
        for b, needed_later in zip(bounds, read_after):
            names: dict[str, Any] = {
                "_asarray": np.asarray,
                "_matmul": np.matmul,
                "_contiguous": np.ascontiguousarray,
            }
            lines = ["def _chunk(env):"]
            defined: set[int] = set()
            loaded: set[int] = set()
            body: list[str] = []
            for k in range(b, min(b + chunk, len(self.instrs))):
                fn, ins, out = self.instrs[k]
                names[f"f{k}"] = fn
                for i in (*ins, *self.extra_reads.get(k, ())):
                    if i not in defined:
                        lines.append(f"    v{i} = env[{i}]")
                        defined.add(i)
                        loaded.add(i)
                args = ", ".join(f"v{i}" for i in ins)
                inline = self._inline(k, names)
                if inline is not None:
                    body.extend(f"    {line}" for line in inline)
                elif k in self.inplace:
                    call = f"f{k}({args}, out=v{self.inplace[k]})"
                elif k in self.wrap:
                    call = f"_asarray(f{k}({args}))"
                else:
                    call = f"f{k}({args})"
                if inline is None:
                    body.append(f"    v{out} = {call}")
                defined.add(out)
                if k in self.merged and self.merged[k][4]:
                    defined.add(self.merged[k][0])
                dead = [x for x in self.frees[k] if x not in needed_later]
                if dead:
                    body.append(f"    del {', '.join(f'v{x}' for x in dead)}")
                    # A value loaded from env is held there too: let it go now.
                    body.extend(f"    env[{x}] = None" for x in dead if x in loaded)
            lines.extend(body)
            stores = sorted(x for x in defined if x in needed_later)
            produced = {out for _, _, out in self.instrs[b : b + chunk]}
            produced |= {m[0] for k, m in self.merged.items() if b <= k < b + chunk and m[4]}
            for x in stores:
                if x in produced:
                    lines.append(f"    env[{x}] = v{x}")
            lines.append("    return None")
            source = "\n".join(lines)
            self.sources.append(source)  # for debugging: what a replay runs
            code = compile(source, f"<jit program, instructions {b}->", "exec")
            exec(code, names)
            fns.append(names["_chunk"])
        return fns

    def _inline(self, k: int, names: dict[str, Any]) -> list[str] | None:
        """Instruction ``k`` as Python statements, skipping the op's checks and wrappers
        (shapes are fixed: the trace checked them); None to call the function."""
        _, ins, out = self.instrs[k]
        v = [f"v{i}" for i in ins]
        if k in self.view_of:  # a gradient buffer's region instead of new zeros
            buf, index = self.view_of[k]
            names[f"i{k}"] = index
            return [f"v{out} = v{buf}[i{k}]"]
        if k in self.out_view:  # the ufunc writes its result into a buffer's region
            buf, index = self.out_view[k]
            names[f"i{k}"] = index
            return [f"v{out} = f{k}({', '.join(v)}, out=v{buf}[i{k}])"]
        if k in self.alias:  # the gradient is already in place: pass the buffer on
            return [f"v{out} = v{self.alias[k]}"]
        if k in self.runs:
            return _product_code(k, self.runs[k], out, names)
        if k in self.merged:  # one call over adjacent slices or rows, then views
            union, operands, whole, part, computes = self.merged[k]
            names[f"u{k}"], names[f"p{k}"] = whole, part
            args = ", ".join(f"v{x}" if how == "slot" else f"v{x}[u{k}]" for how, x in operands)
            code = [f"v{union} = f{k}({args})"] if computes else []
            return [*code, f"v{out} = v{union}[p{k}]"]
        meta = self.meta.get(k)
        if meta is None or k in self.wrap:
            return None
        kind = meta[0]
        if kind == "scatter":  # getitem's accumulate: buffer[index] += g (a basic index)
            names[f"i{k}"] = meta[1]
            return [f"{v[0]}[i{k}] += {v[1]}", f"v{out} = {v[0]}"]
        if kind == "pair":
            return [f"v{out} = ({v[meta[1]]}, {v[meta[2]]})"]
        if kind == "item":
            return [f"v{out} = {v[0]}[{meta[1]}]"]
        prim, fixed = meta
        if prim is _ops._getitem:
            names[f"i{k}"] = fixed["index"]
            return [f"v{out} = {v[0]}[i{k}]"]
        if prim is _ops._transpose and fixed.get("axes") is None:
            if k in self.contiguous:  # BLAS runs up to 2x slower on a transposed operand
                return [f"v{out} = _contiguous({v[0]}.T)"]
            return [f"v{out} = {v[0]}.T"]
        if prim is _ops.matmul:
            return [f"v{out} = _matmul({v[0]}, {v[1]})"]
        if prim is _ops.addmm and k in self.addmm_in_place:  # c + a @ b, c of the product's shape
            return [f"v{out} = _matmul({v[1]}, {v[2]})", f"v{out} += {v[0]}"]
        return None

    def run(self, flat_args: list[Any]) -> list[Any]:
        if self.chunks is None:  # planned and generated on the first replay, not while tracing
            if self.trace_values is not None:
                self.plan(self.trace_values)
                self.trace_values = None
            self.chunks = self._compile()
        env: list[Any] = [None] * self.n
        for s, v in self.consts:
            env[s] = v
        for s, i in self.arg_slots:
            a = flat_args[i]
            env[s] = a.data if isinstance(a, Tensor) else a
        for s, t in self.leaf_slots:
            env[s] = t.data
        for fn in self.chunks:
            fn(env)
        return env


def _output_slots(outputs: Any) -> list[int]:
    if isinstance(outputs, int):
        return [outputs]
    if isinstance(outputs, tuple) and outputs and outputs[0] == "seq":
        return [s for o in outputs[2] for s in _output_slots(o)]
    if isinstance(outputs, tuple) and outputs and outputs[0] == "dict":
        return [s for o in outputs[2].values() for s in _output_slots(o)]
    return []


def _accumulate_grad(t: Tensor, g: Any) -> None:
    """Add ``g`` into ``t.grad`` as ``backward()`` does; the array stored is always new."""
    g = np.asarray(g)
    if g.dtype != t.dtype:
        g = g.astype(t.dtype)
    if g.shape != t.shape:
        raise RuntimeError(
            f"jit: gradient of shape {g.shape} for a leaf of shape {t.shape} "
            "(a derivative rule returned the wrong shape)"
        )
    if t.grad is None:
        t.grad = Tensor._make(np.array(g))
    else:
        t.grad = Tensor._make(np.asarray(t.grad.data + g))


class _Tracer:
    """Records the ops of one eager call and builds its `_Program`."""

    def __init__(self, flat_args: list[Any]) -> None:
        self.prog = _Program()
        self.slot: dict[int, int] = {}  # id(Tensor) -> slot
        self.values: dict[int, Any] = {}  # slot -> value at trace time
        self.keep: list[Any] = []  # every traced Tensor, so that ids stay unique
        self.records: list[Any] = []
        self.arg_ids: dict[int, int] = {}
        self.array_args: dict[int, int] = {}
        # id(array) -> slot for every array a slot holds: an op's parameter that is one of
        # them (where's condition, an index array computed inside the function) is an input
        # of the replay, not a constant.
        self.array_slot: dict[int, int] = {}
        self.cse: dict[Any, int] = {}
        # Results merged into an earlier op's slot: their gradient is that slot's, which the
        # earliest op passes on once (a user's cell taking W.T every step: one product).
        self.duplicates: set[int] = set()
        self.templates: dict[Any, Any] = {}  # lowered rules, by rule and argument shapes
        self.scalars: dict[Any, int] = {}
        self.leaf_data: list[tuple[Tensor, Any]] = []
        for i, a in enumerate(flat_args):
            if isinstance(a, Tensor):
                self.arg_ids[id(a)] = i
                self.array_args[id(a.data)] = i
            elif isinstance(a, np.ndarray):
                self.array_args[id(a)] = i

    # ---------------------------------------------------------------- slots
    def _tensor_slot(self, t: Tensor) -> int:
        s = self.slot.get(id(t))
        if s is not None:
            return s
        s = self.prog.new_slot()
        self.slot[id(t)] = s
        self.keep.append(t)
        self.values[s] = t.data
        self.array_slot[id(t.data)] = s
        i = self.arg_ids.get(id(t))
        if i is not None:
            self.prog.arg_slots.append((s, i))
        else:  # a leaf captured from the closure (a parameter) or made inside the function
            self.prog.leaf_slots.append((s, t))
            self.prog.leaf_meta.append((t.shape, t.dtype.str))
            self.leaf_data.append((t, t.data))
        return s

    def _const_slot(self, value: Any) -> int:
        if isinstance(value, np.ndarray) and value.ndim == 0 and id(value) not in self.array_args:
            key = (value.dtype.str, value.item())  # a rule's 1 in 1 - y: one slot for all
            s = self.scalars.get(key)
            if s is None:
                s = self.scalars[key] = self._new_const(value)
            return s
        return self._new_const(value)

    def _new_const(self, value: Any) -> int:
        i = self.array_args.get(id(value)) if isinstance(value, np.ndarray) else None
        if i is None and isinstance(value, np.ndarray):
            known = self.array_slot.get(id(value))
            if known is not None:  # an op's output used again as a constant operand
                return known
        s = self.prog.new_slot()
        if i is not None:  # an argument passed to an op as an array (targets, a mask)
            self.prog.arg_slots.append((s, i))
            self.array_slot[id(value)] = s
        else:
            self.prog.consts.append((s, value))
        self.values[s] = value
        return s

    def _params(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        """Params that are the caller's argument arrays or values of the program's slots
        become per-call inputs: ``({name: value}, {name: slot})``."""
        fixed, from_slots = {}, {}
        for k, v in params.items():
            if isinstance(v, np.ndarray):
                s = self.array_slot.get(id(v))
                if s is None and id(v) in self.array_args:
                    s = self._const_slot(v)
                if s is not None:
                    from_slots[k] = s
                    continue
            fixed[k] = v
        return fixed, from_slots

    # -------------------------------------------------------------- forward
    def record(
        self,
        prim: Primitive,
        args: tuple[Any, ...],
        arrays: list[Any],
        params: dict[str, Any],
        result: Tensor,
    ) -> None:
        ins = tuple(
            self._tensor_slot(a) if isinstance(a, Tensor) else self._const_slot(x)
            for a, x in zip(args, arrays)
        )
        fixed, from_slots = self._params(params)
        # The same op on the same slots with the same parameters is computed once (every
        # step's transposed weight in the backward, a slice taken twice): ops are pure.
        try:
            key: Any = (
                prim,
                ins,
                tuple(sorted(from_slots.items())),
                _param_key(fixed),
                result.requires_grad,  # one made under no_grad has no graph to pass on
            )
            hash(key)
        except TypeError:
            key = None
        if key is not None:
            seen = self.cse.get(key)
            if seen is not None:
                self.slot[id(result)] = seen
                self.keep.append(result)
                self.array_slot[id(result.data)] = seen  # a parameter made from it (a mask)
                names_seen = tuple(from_slots)
                extra_seen = tuple(from_slots[k] for k in names_seen)
                self.records.append((prim, ins, params, result, seen, names_seen, extra_seen))
                self.duplicates.add(id(result))
                return
        extra: tuple[int, ...] = ()
        if from_slots:
            names = tuple(from_slots)
            extra = tuple(from_slots[k] for k in names)
            n = len(ins)
            forward = prim.forward

            def fn(*vals: Any, _f: Any = forward, _n: int = n, _names: Any = names) -> Any:
                kw = dict(fixed, **dict(zip(_names, vals[_n:])))
                return _f(*vals[:_n], **kw)
        else:
            fn = functools.partial(prim.forward, **fixed) if fixed else prim.forward
        out = self.prog.new_slot()
        self.slot[id(result)] = out
        self.keep.append(result)
        self.values[out] = result.data
        self.array_slot[id(result.data)] = out
        if result.data.ndim == 0:  # numpy returns scalars for 0-d results
            self.prog.wrap.add(len(self.prog.instrs))
        if not from_slots:
            self.prog.meta[len(self.prog.instrs)] = (prim, fixed)
        self.prog.instrs.append((fn, ins + extra, out))
        self.records.append((prim, ins, params, result, out, tuple(from_slots), extra))
        if key is not None:
            self.cse[key] = out

    def record_source(self, draw: Callable[[], np.ndarray], result: Tensor) -> None:
        """An op without inputs that a replay must run again (a random draw)."""
        out = self.prog.new_slot()
        self.slot[id(result)] = out
        self.keep.append(result)
        self.values[out] = result.data
        self.array_slot[id(result.data)] = out
        self.prog.instrs.append((draw, (), out))

    # ------------------------------------------------------------- backward
    def _emit_rule(
        self, fn: Callable[..., Any], ins: tuple[int, ...], names: tuple[str, ...], extra: Any
    ) -> int:
        """``fn(*ins, **{names: extra})``: params that are per-call arguments come last."""
        if not names:
            return self._emit(fn, ins)
        n = len(ins)

        def bound(*vals: Any) -> Any:
            return fn(*vals[:n], **dict(zip(names, vals[n:])))

        return self._emit(bound, ins + tuple(extra))

    def _emit(self, fn: Callable[..., Any], ins: tuple[int, ...]) -> int:
        out = self.prog.new_slot()
        value = self.values[out] = fn(*[self.values[i] for i in ins])
        if isinstance(fn, np.ufunc) and not isinstance(value, np.ndarray):
            self.prog.wrap.add(len(self.prog.instrs))
            self.values[out] = np.asarray(value)
        self.prog.instrs.append((fn, ins, out))
        return out

    def backward(self, root: Tensor, grad: Any, create_graph: bool) -> None:
        if create_graph:
            raise RuntimeError(
                "backward: create_graph=True cannot be replayed by tinygrad_rnn.jit; "
                "compute higher-order derivatives without jit"
            )
        if not root.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph; "
                "create the leaves with requires_grad=True"
            )
        root_slot = self.slot.get(id(root))
        if root_slot is None:
            raise RuntimeError("jit: backward() on a tensor made outside the jitted function")
        if grad is None:
            if root.size != 1:
                raise RuntimeError(
                    "backward: grad can be omitted only for an output with one element, "
                    f"got shape {root.shape}; pass a gradient of that shape"
                )
            g0 = self._const_slot(np.ones(root.shape, dtype=root.dtype))
        elif isinstance(grad, Tensor):
            g0 = self._tensor_slot(grad)
        else:
            g0 = self._const_slot(np.asarray(grad, dtype=root.dtype))
        hooked = [r[3] for r in self.records if r[3]._hooks is not None]
        hooked += [t for t, _ in self.leaf_data if t._hooks is not None]
        hooked += [t for t in self.keep if t._hooks is not None and t._node is None]
        if hooked:
            raise RuntimeError(
                "jit: a tensor of this function has a hook or retains its gradient "
                f"(shape {hooked[0].shape}); hooks are Python code a replay would not run: "
                "call the function without jit to look at gradients, or remove the hook"
            )
        pending: dict[int, list[int]] = {root_slot: [g0]}
        factors: dict[int, list[int]] = {}
        buffers: dict[int, int] = {}
        needs: dict[int, Tensor] = {}
        for prim, ins, params, result, out, names, extra in reversed(list(self.records)):
            if out not in pending and out not in factors and out not in buffers:
                continue
            if id(result) in self.duplicates:
                continue
            g = self._finish(out, pending, factors, buffers)
            node = result._node
            if node is None or node.inputs is None:
                continue
            args = tuple(
                self._stand_in_slot(j) if k in prim.shape_only else j for k, j in enumerate(ins)
            )
            fixed, _ = self._params(params)
            every = None
            if prim.vjp_all is not None:
                ans = out if 1 not in _unread_params(prim.vjp_all) else self._none_slot()
                every = self._emit_rule(
                    _variadic(prim.vjp_all, fixed, len(args)), (g, ans, *args), names, extra
                )
            for i, p in enumerate(node.inputs):
                if p is None:
                    continue
                key = self.slot.get(id(p))
                if key is None:
                    key = self._tensor_slot(p)
                if p._node is None:
                    needs[key] = p
                factor_rule = prim.factors.get(i) if prim.factors else None
                if (
                    factor_rule is not None
                    and factor_rule(
                        self.values[g], self.values[out], *[self.values[j] for j in args], **fixed
                    )
                    is not None
                ):
                    rule = functools.partial(_call, factor_rule, fixed)
                    pair = self._emit_rule(
                        rule, self._read_only(factor_rule, (g, out, *args)), names, extra
                    )
                    if not names and factor_rule in _PAIR_RULES:  # (a, g): a tuple, inline
                        self.prog.meta[len(self.prog.instrs) - 1] = (
                            "pair",
                            *_PAIR_RULES[factor_rule],
                        )
                    factors.setdefault(key, []).append(pair)
                elif prim.accumulate is not None and i == 0:
                    buf = buffers.get(key)
                    if buf is None:
                        shape, dtype = p.shape, p.dtype
                        buf = buffers[key] = self._emit(
                            functools.partial(np.zeros, shape, dtype), ()
                        )
                        self.prog.zero_buffers.add(buf)
                    acc = functools.partial(_accumulate, prim.accumulate, fixed)
                    buffers[key] = self._emit_rule(acc, (buf, g, *args), names, extra)
                    if (
                        prim is _ops._getitem
                        and not names
                        and _ops._is_basic_index(fixed["index"])
                        and self.values[g].shape == self.values[buf][fixed["index"]].shape
                    ):
                        self.prog.meta[len(self.prog.instrs) - 1] = ("scatter", fixed["index"])
                else:
                    if every is not None:
                        gi = self._emit(functools.partial(_item, i), (every,))
                        self.prog.meta[len(self.prog.instrs) - 1] = ("item", i)
                    elif prim.vjps:
                        lowered = (
                            None if names else self._lower(prim.vjps[i], fixed, (g, out, *args))
                        )
                        if lowered is not None:
                            gi = lowered
                        else:
                            rule = functools.partial(_call, prim.vjps[i], fixed)
                            ins_read = self._read_only(prim.vjps[i], (g, out, *args))
                            gi = self._emit_rule(rule, ins_read, names, extra)
                    else:
                        assert prim.vjp_n is not None
                        one = _variadic_one(prim.vjp_n, i, fixed, len(args))
                        ans = out if 2 not in _unread_params(prim.vjp_n) else self._none_slot()
                        gi = self._emit_rule(one, (g, ans, *args), names, extra)
                    pending.setdefault(key, []).append(gi)
        for key, leaf in needs.items():
            if key in pending or key in factors or key in buffers:
                g = self._finish(key, pending, factors, buffers)
                target: Any = ("arg", self.arg_ids[id(leaf)]) if id(leaf) in self.arg_ids else leaf
                self.prog.grads.append((target, g))
                _accumulate_grad(leaf, self.values[g])

    def _lower(self, rule: Callable[..., Any], params: dict[str, Any], slots: Any) -> int | None:
        """Record ``rule`` as the ops it is written with: run it on Tensors standing for
        ``slots`` (as ``create_graph`` does), so that its shape logic runs once, here, and the
        program holds only the ops' forwards. None (nothing recorded) when the rule cannot be
        lowered: it read raw values (a mask) or did not return a Tensor."""
        prog = self.prog
        try:
            # Which arguments are the same slot (x * x) is part of the key: a template made
            # from one must name its inputs by the first position.
            same = tuple(slots.index(x) for x in slots)
            described = tuple(_describe(self.values[x]) for x in slots)
            tkey: Any = (rule, _param_key(params), same, described)
            hash(tkey)
        except TypeError:
            tkey = None
        template = self.templates.get(tkey) if tkey is not None else None
        if template is not None:
            return self._apply_template(template, slots)
        marks = (len(prog.instrs), len(self.records), len(prog.consts), len(prog.leaf_slots))
        tensors = []
        for s in slots:
            t = Tensor._make(self.values[s])
            self.slot[id(t)] = s
            self.keep.append(t)
            tensors.append(t)
        reads = _ops._RAW_READS[0]
        try:
            result = rule(*tensors, **params)
        except Exception:  # a rule written for arrays only: keep it whole
            result = None
        if (
            isinstance(result, Tensor)
            and _ops._RAW_READS[0] == reads
            and len(prog.leaf_slots) == marks[3]
        ):
            out = self._tensor_slot(result)
            if tkey is not None:
                made = self._make_template(self.records[marks[1] :], slots, out)
                if made is not None:
                    self.templates[tkey] = made
            return out
        prog.wrap = {k for k in prog.wrap if k < marks[0]}
        prog.meta = {k: v for k, v in prog.meta.items() if k < marks[0]}
        del prog.instrs[marks[0] :], self.records[marks[1] :], prog.consts[marks[2] :]
        del prog.leaf_slots[marks[3] :], prog.leaf_meta[marks[3] :], self.leaf_data[marks[3] :]
        return None

    def _make_template(self, records: list[Any], slots: Any, out: int) -> Any:
        """The ops a lowered rule recorded, with their inputs named by position (one of the
        rule's arguments, an earlier op of the rule, or a constant), so that the same rule on
        values of the same shapes and dtypes is recorded again without running it on
        Tensors (an RNN's T steps lower each rule once). None if something does not fit."""
        args: dict[int, int] = {}
        for k, x in enumerate(slots):
            args.setdefault(x, k)  # the first position, as the key's pattern says
        consts = {x for x, _ in self.prog.consts}
        made: dict[int, int] = {}
        steps: list[Any] = []
        for prim, ins, params, _, rec_out, names, _ in records:
            if names:
                return None
            refs: list[tuple[str, Any]] = []
            for x in ins:
                if x in made:
                    refs.append(("step", made[x]))
                elif x in args:
                    refs.append(("arg", args[x]))
                elif x in consts:
                    refs.append(("slot", x))
                else:
                    return None
            fn = functools.partial(prim.forward, **params) if params else prim.forward
            made[rec_out] = len(steps)
            steps.append((prim, params, fn, tuple(refs)))
        if out in made:
            result: tuple[str, int] = ("step", made[out])
        elif out in args:
            result = ("arg", args[out])
        else:
            return None
        return steps, result

    def _apply_template(self, template: Any, slots: Any) -> int:
        """Record a lowered rule again from its template (see `_make_template`)."""
        steps, result = template
        prog = self.prog
        outs: list[int] = []
        for prim, params, fn, refs in steps:
            ins = tuple(
                slots[r] if kind == "arg" else outs[r] if kind == "step" else r for kind, r in refs
            )
            key = (prim, ins, (), _param_key(params), False)
            seen = self.cse.get(key)
            if seen is not None:
                outs.append(seen)
                continue
            value = prim.forward(*[self.values[x] for x in ins], **params)
            if type(value) is not np.ndarray:
                value = np.asarray(value)
            out = prog.new_slot()
            self.values[out] = value
            self.array_slot[id(value)] = out
            if value.ndim == 0:
                prog.wrap.add(len(prog.instrs))
            prog.meta[len(prog.instrs)] = (prim, params)
            prog.instrs.append((fn, ins, out))
            self.cse[key] = out
            outs.append(out)
        kind, r = result
        return slots[r] if kind == "arg" else outs[r]

    def _none_slot(self) -> int:
        s = self.scalars.get("none")
        if s is None:
            s = self.scalars["none"] = self.prog.new_slot()
            self.prog.consts.append((s, None))
            self.values[s] = None
        return s

    def _read_only(self, rule: Callable[..., Any], slots: tuple[int, ...]) -> tuple[int, ...]:
        """``slots`` with None for the parameters ``rule`` never reads (``ans`` of most rules):
        a value passed to a rule lives until the rule runs, so an unread one would keep a
        forward result (a whole input projection) alive through the backward pass."""
        unread = _unread_params(rule)
        if not unread:
            return slots
        none = self._none_slot()
        return tuple(none if i in unread else s for i, s in enumerate(slots))

    def _stand_in_slot(self, j: int) -> int:
        v = self.values[j]
        if isinstance(v, np.ndarray) and v.nbytes >= 2**16:
            s = self.prog.new_slot()
            stand = _stand_in(v)
            self.prog.consts.append((s, stand))
            self.values[s] = stand
            return s
        return j

    def _finish(
        self,
        key: int,
        pending: dict[int, list[int]],
        factors: dict[int, list[int]],
        buffers: dict[int, int],
    ) -> int:
        parts = pending.pop(key, [])
        pairs = factors.pop(key, [])
        if pairs:
            parts.append(self._emit(_multiply_out, tuple(pairs)))
        buf = buffers.pop(key, None)
        if buf is not None:
            parts.append(buf)
        g = parts[0]
        for other in parts[1:]:
            g = self._emit(np.add, (g, other))
        return g


_UNREAD: dict[Any, frozenset[int]] = {}
_LOADS = {"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_DEREF", "LOAD_CLOSURE"}


def _unread_params(fn: Callable[..., Any]) -> frozenset[int]:
    """Positions of ``fn``'s positional parameters its code never reads (empty if unsure).

    Read from the bytecode: a parameter that is never loaded cannot reach anything, so a
    rule that ignores ``ans`` can be given None for it. Parameters captured by an inner
    function count as read; anything but a plain Python function is assumed to read all.
    """
    code = getattr(fn, "__code__", None)
    if code is None:
        return frozenset()
    found = _UNREAD.get(code)
    if found is None:
        import dis

        n = code.co_argcount
        params = code.co_varnames[:n]
        loaded = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _LOADS}
        loaded |= set(code.co_cellvars)
        found = frozenset(i for i, name in enumerate(params) if name not in loaded)
        _UNREAD[code] = found
    return found


def _pair_rules() -> dict[Any, tuple[int, int]]:
    """Factor rules that return two of their arguments: positions in (g, ans, *inputs)."""
    return {_ops._addmm_factors_b: (3, 0), _ops._matmul_factors_b: (2, 0)}


def _describe(value: Any) -> Any:
    """What a lowered rule's ops may depend on: shape and dtype (None for None)."""
    if isinstance(value, np.ndarray):
        return (value.shape, value.dtype.str)
    if value is None:
        return None
    raise TypeError("not an array")


def _param_key(params: dict[str, Any]) -> Any:
    """A hashable form of an op's fixed parameters (arrays by identity)."""
    return tuple(
        (k, ("array", id(v)) if isinstance(v, np.ndarray) else v) for k, v in sorted(params.items())
    )


def _as_array(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*a: Any) -> Any:
        out = fn(*a)
        return out if type(out) is np.ndarray else np.asarray(out)

    return wrapped


def _call(rule: Callable[..., Any], params: dict[str, Any], *vals: Any, **more: Any) -> Any:
    return rule(*vals, **params, **more)


def _variadic(rule: Callable[..., Any], params: dict[str, Any], n: int) -> Callable[..., Any]:
    def fn(g: Any, ans: Any, *args: Any, **more: Any) -> Any:
        return rule(g, ans, args, **params, **more)

    return fn


def _variadic_one(
    rule: Callable[..., Any], i: int, params: dict[str, Any], n: int
) -> Callable[..., Any]:
    def fn(g: Any, ans: Any, *args: Any, **more: Any) -> Any:
        return rule(i, g, ans, args, **params, **more)

    return fn


def _item(i: int, seq: Any) -> Any:
    return seq[i]


def _accumulate(
    rule: Callable[..., None], params: dict[str, Any], buf: Any, *vals: Any, **more: Any
) -> Any:
    rule(buf, *vals, **params, **more)
    return buf


def _add(a: Any, b: Any) -> Any:
    out = a + b
    return out if type(out) is np.ndarray else np.asarray(out)


def _multiply_out(*pairs: tuple[Any, Any]) -> Any:
    """``Σ aᵀ b`` over all uses of a shared weight, as one matrix product."""
    if len(pairs) == 1:
        a, b = pairs[0]
        return a.T @ b
    lhs = np.concatenate([a for a, _ in pairs], axis=0)
    rhs = np.concatenate([b for _, b in pairs], axis=0)
    return lhs.T @ rhs


# -------------------------------------------------------------- the decorator
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
        for target, s in prog.grads:
            t = flat[target[1]] if isinstance(target, tuple) else target
            _accumulate_grad(t, env[s])
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


_PAIR_RULES = _pair_rules()


def _plan_memory(prog: _Program, values: dict[int, Any], keep: set[int]) -> set[int]:
    """Gradient buffers, stacked outputs, then the weight products that read their rows."""
    pinned, rows = _plan_buffers(prog, values, keep)
    stacked: dict[int, tuple[int, Any]] = {}
    _plan_stacks(prog, values, keep, pinned, stacked)
    rows.update(stacked)
    _plan_products(prog, values, rows)
    return pinned


def _plan_buffers(
    prog: _Program, values: dict[int, Any], keep: set[int]
) -> tuple[set[int], dict[int, tuple[int, Any]]]:
    """The memory plan of the gradient buffers; returns the slots that became regions.

    A sparse gradient (a projection's rows, an LSTM step's gate slices) is added into a
    zeroed buffer, one region per use. Where a region is written exactly once, the value
    added is made in that region instead: a zeroed buffer of its own becomes a view of the
    region (a step's gate gradients, written slice by slice, are then the projection's row),
    or the ufunc that computes it writes there with ``out=`` (an RNN step's pre-activation
    gradient). The scatter is then a no-op. The buffer's zeros instruction moves up to before
    the first such write. A weight's gradient ``Σ aᵀ b`` whose ``b`` are consecutive rows of
    one buffer reads those rows in place instead of concatenating copies (`_product_code`).
    """
    scatters = {k: m[1] for k, m in prog.meta.items() if m[0] == "scatter"}
    if not scatters:
        return set(), {}
    instrs = prog.instrs
    producer = {out: k for k, (_, _, out) in enumerate(instrs)}
    root: dict[int, int] = {z: z for z in prog.zero_buffers}
    chains: dict[int, list[int]] = {}
    for k in sorted(scatters):
        r = root.get(instrs[k][1][0])
        if r is not None:
            root[instrs[k][2]] = r
            chains.setdefault(r, []).append(k)
    finals = {instrs[ks[-1]][2]: r for r, ks in chains.items()}
    plans: list[tuple[int, int, Any, str, int]] = []  # (scatter, root, index, kind, target)
    taken: set[int] = set()
    for r, ks in chains.items():
        buf = values[r]
        written = np.zeros(buf.shape, dtype=np.int32)
        for k in ks:
            written[scatters[k]] += 1
        for k in ks:
            index, g = scatters[k], instrs[k][1][1]
            gv = values.get(g)
            region = buf[index]
            if (
                g in keep
                or g in taken
                or not isinstance(gv, np.ndarray)
                or (gv.shape, gv.dtype) != (region.shape, buf.dtype)
                or (written[index] != 1).any()
            ):
                continue
            small = finals.get(g)
            j = producer.get(g)
            if (
                small is not None
                and small != r
                and all(instrs[c][1][0] != r for c in chains[small])
            ):
                if values[small].shape != region.shape:
                    continue
                plans.append((k, r, index, "view", producer[small]))
            elif (
                j is not None
                and isinstance(instrs[j][0], np.ufunc)
                and getattr(instrs[j][0], "nout", 0) == 1
                and j not in prog.wrap
                and gv.base is None
            ):
                plans.append((k, r, index, "out", j))
            else:
                continue
            taken.add(g)
    if not plans:
        return set(), {}
    # Move each buffer's zeros instruction up to before the first write into it.
    first: dict[int, int] = {}
    for _, r, _, _, target in plans:
        first[r] = min(first.get(r, target), target)
    order = list(range(len(instrs)))
    for r, target in sorted(first.items(), key=lambda kv: kv[1]):
        z = producer[r]
        pos = order.index(z)
        if pos > order.index(target):
            order.pop(pos)
            order.insert(order.index(target), z)
    new = {old: i for i, old in enumerate(order)}
    if not _ordered([instrs[old] for old in order], plans, new, instrs):
        return set(), {}  # a move broke an order the program needs: keep the plain program
    prog.instrs = [instrs[old] for old in order]
    prog.meta = {new[k]: m for k, m in prog.meta.items()}
    prog.wrap = {new[k] for k in prog.wrap}
    pinned: set[int] = set()
    view_rows: dict[int, tuple[int, Any]] = {}  # slot -> (buffer, index) it now lives in
    for k, r, index, kind, target in plans:
        g = instrs[k][1][1]
        t = new[target]
        if kind == "view":
            prog.view_of[t] = (r, index)
            small_slot = instrs[target][2]
            pinned.add(small_slot)
        else:
            prog.out_view[t] = (r, index)
        prog.extra_reads[t] = (r,)
        prog.alias[new[k]] = instrs[k][1][0]
        pinned.add(g)
        view_rows[g] = (r, index)
    return pinned, view_rows


_SIBLING_OPS = ("sigmoid", "tanh", "exp", "neg", "relu", "abs")


def _last_axis_range(index: Any, ndim: int) -> tuple[int, int] | None:
    """``(start, stop)`` when ``index`` is ``(:, ..., :, start:stop)`` on an ``ndim`` array."""
    if not isinstance(index, tuple) or len(index) != ndim:
        return None
    *lead, last = index
    if not all(isinstance(p, slice) and p == slice(None) for p in lead):
        return None
    if not isinstance(last, slice) or last.step not in (None, 1):
        return None
    if not isinstance(last.start, int) or not isinstance(last.stop, int):
        return None
    return last.start, last.stop


def _plan_siblings(prog: _Program, values: dict[int, Any], pinned: set[int]) -> None:
    """The same elementwise op on adjacent slices of one array (an LSTM step's input and
    forget gates, ``sigmoid(z[:, :H])`` and ``sigmoid(z[:, H:2H])``) becomes one call over
    their union, whose parts are views."""
    producer = {out: k for k, (_, _, out) in enumerate(prog.instrs)}
    groups: dict[tuple[Any, int], list[tuple[int, int, int, int, int]]] = {}
    for k, (_, ins, out) in enumerate(prog.instrs):
        meta = prog.meta.get(k)
        if meta is None or len(ins) != 1 or k in prog.wrap or k in prog.out_view:
            continue
        if getattr(meta[0], "name", None) not in _SIBLING_OPS or meta[1]:
            continue
        j = producer.get(ins[0])
        inner = prog.meta.get(j) if j is not None else None
        if j is None or inner is None or inner[0] is not _ops._getitem:
            continue
        source = prog.instrs[j][1][0]
        sv = values.get(source)
        if not isinstance(sv, np.ndarray) or not isinstance(values.get(out), np.ndarray):
            continue
        # Only where the parts stay contiguous (one row): a strided view would make every
        # later op on it slower and could not be written in place (measured: LSTM M 5 %
        # slower with the merge, S 5 % faster).
        if int(np.prod(sv.shape[:-1])) != 1:
            continue
        span = _last_axis_range(inner[1].get("index"), sv.ndim)
        if span is None or span[0] < 0 or span[1] > sv.shape[-1] or span[0] >= span[1]:
            continue
        groups.setdefault((meta[0], source), []).append((span[0], span[1], k, out, j))
    for (_, source), items in groups.items():
        items.sort()
        runs: list[list[tuple[int, int, int, int, int]]] = [[items[0]]]
        for item in items[1:]:
            if item[0] == runs[-1][-1][1]:
                runs[-1].append(item)
            else:
                runs.append([item])
        for run in runs:
            if len(run) < 2:
                continue
            lo, hi = run[0][0], run[-1][1]
            ndim = values[source].ndim
            whole = (slice(None),) * (ndim - 1) + (slice(lo, hi),)
            union = prog.new_slot()
            first = min(k for _, _, k, _, _ in run)
            for start, stop, k, out, _ in run:
                part = (slice(None),) * (ndim - 1) + (slice(start - lo, stop - lo),)
                prog.merged[k] = (union, (("slice", source),), whole, part, k == first)
                reads = (source,) if k == first else (union,)
                prog.extra_reads[k] = (*prog.extra_reads.get(k, ()), *reads)
                pinned.add(out)


def _plan_stacks(
    prog: _Program,
    values: dict[int, Any],
    keep: set[int],
    pinned: set[int],
    rows: dict[int, tuple[int, Any]],
) -> None:
    """A ``stack`` along axis 0 of values that ufuncs make (a layer's hidden states):
    the stacked array is allocated before the first of them and each ufunc writes its
    result into its row with ``out=``, so the stack copies nothing and the rows (``h_t``)
    are views a weight product can read in place."""
    stacks = [prog.instrs[k][2] for k, m in prog.meta.items() if m[0] is _ops._stack]
    for target in stacks:  # by output slot: each move renumbers the instructions
        k = next(j for j, (_, _, o) in enumerate(prog.instrs) if o == target)
        _, ins, out = prog.instrs[k]
        stacked = values.get(out)
        if prog.meta[k][1].get("axis", 0) != 0 or len(set(ins)) != len(ins):
            continue
        if not isinstance(stacked, np.ndarray) or stacked.shape[:1] != (len(ins),):
            continue
        producer = {o: j for j, (_, _, o) in enumerate(prog.instrs)}
        makers = []
        for x in ins:
            j = producer.get(x)
            xv = values.get(x)
            if (
                j is None
                or not isinstance(prog.instrs[j][0], np.ufunc)
                or getattr(prog.instrs[j][0], "nout", 0) != 1
                or j in prog.out_view
                or j in prog.wrap
                or x in pinned
                or x in keep
                or not isinstance(xv, np.ndarray)
                or xv.base is not None
                or (xv.shape, xv.dtype) != (stacked.shape[1:], stacked.dtype)
            ):
                break
            makers.append(j)
        else:
            first = min(makers)
            alloc = functools.partial(np.empty, stacked.shape, stacked.dtype)
            del prog.meta[k]
            prog.instrs[k] = (alloc, (), out)
            new = _move(prog, k, first)
            for t, (x, j) in enumerate(zip(ins, makers)):
                prog.out_view[new[j]] = (out, t)
                prog.extra_reads[new[j]] = (*prog.extra_reads.get(new[j], ()), out)
                pinned.add(x)
                rows[x] = (out, t)


def _move(prog: _Program, src: int, dst: int) -> dict[int, int]:
    """Move instruction ``src`` to position ``dst`` (< src); returns old -> new indices and
    renumbers everything keyed by instruction."""
    order = list(range(len(prog.instrs)))
    order.pop(src)
    order.insert(dst, src)
    new = {old: i for i, old in enumerate(order)}
    prog.instrs = [prog.instrs[old] for old in order]
    prog.meta = {new[k]: m for k, m in prog.meta.items()}
    prog.wrap = {new[k] for k in prog.wrap}
    prog.view_of = {new[k]: v for k, v in prog.view_of.items()}
    prog.out_view = {new[k]: v for k, v in prog.out_view.items()}
    prog.alias = {new[k]: v for k, v in prog.alias.items()}
    prog.extra_reads = {new[k]: v for k, v in prog.extra_reads.items()}
    return new


def _ordered(
    reordered: list[_Instr], plans: list[Any], new: dict[int, int], old: list[_Instr]
) -> bool:
    """Whether every slot is made before it is read, the plan's extra reads included."""
    made: dict[int, int] = {out: i for i, (_, _, out) in enumerate(reordered)}
    extra: dict[int, int] = {new[target]: r for _, r, _, _, target in plans}
    for i, (_, ins, _) in enumerate(reordered):
        for s in (*ins, *((extra[i],) if i in extra else ())):
            if made.get(s, -1) >= i:
                return False
    return True


def _plan_products(
    prog: _Program, values: dict[int, Any], rows: dict[int, tuple[int, Any]]
) -> None:
    """Weight products ``Σ aᵀ b`` whose ``b`` are whole rows ``t`` of one buffer: runs of
    consecutive rows are read from the buffer in place (see `_product_code`)."""
    pairs = {k: m for k, m in prog.meta.items() if m[0] == "pair"}
    producer = {out: k for k, (_, _, out) in enumerate(prog.instrs)}
    for k, (fn, ins, _) in enumerate(prog.instrs):
        if fn is not _multiply_out or len(ins) < 2:
            continue
        members: list[tuple[int, int, int, int] | None] = []  # (buffer, row, a, b) or None
        for p in ins:
            j = producer.get(p)
            meta = pairs.get(j) if j is not None else None
            if meta is None or j is None:
                members.append(None)
                continue
            pin = prog.instrs[j][1]
            a, b = pin[meta[1]], pin[meta[2]]
            where = rows.get(b)
            ok = where is not None and type(where[1]) is int and values[where[0]].ndim >= 2
            members.append((where[0], where[1], a, b) if ok and where is not None else None)
        runs: list[Any] = []
        leftover = [p for p, m in zip(ins, members) if m is None]
        by_buf: dict[int, list[tuple[int, int, int]]] = {}
        for m in members:
            if m is not None:
                by_buf.setdefault(m[0], []).append((m[1], m[2], m[3]))
        for buf, items in by_buf.items():
            items.sort()
            start = 0
            for i in range(1, len(items) + 1):
                if i == len(items) or items[i][0] != items[i - 1][0] + 1:
                    runs.extend(_split_by_a_rows(buf, items[start:i], rows, values))
                    start = i
        if not runs:
            continue
        prog.runs[k] = [runs, leftover]
        reads = {r[0] for r in runs} | set(leftover)
        for r in runs:
            reads |= {r[3][1]} if r[3][0] == "rows" else set(r[3][1])
        prog.extra_reads[k] = tuple(reads)


def _split_by_a_rows(
    buf: int, items: list[tuple[int, int, int]], rows: dict[int, tuple[int, Any]], values: Any
) -> list[Any]:
    """Consecutive ``b`` rows ``items`` (row, a, b) cut where the ``a`` stop being
    consecutive rows of one buffer: ``(buf, lo, hi, ("rows", abuf, alo) | ("cat", [a]))``."""
    out: list[Any] = []
    pieces: list[list[tuple[int, int, int]]] = []
    for item in items:
        where = rows.get(item[1])
        if pieces:
            prev = rows.get(pieces[-1][-1][1])
            if (
                where is not None
                and prev is not None
                and where[0] == prev[0]
                and type(where[1]) is int
                and type(prev[1]) is int
                and where[1] == prev[1] + 1
            ):
                pieces[-1].append(item)
                continue
        pieces.append([item])
    cat: list[tuple[int, int, int]] = []
    for piece in [*pieces, []]:
        where = rows.get(piece[0][1]) if piece else None
        if piece and len(piece) > 1 and where is not None and type(where[1]) is int:
            if cat:
                out.append((buf, cat[0][0], cat[-1][0] + 1, ("cat", [a for _, a, _ in cat])))
                cat = []
            out.append((buf, piece[0][0], piece[-1][0] + 1, ("rows", where[0], where[1])))
        else:
            cat.extend(piece)
    if cat:
        out.append((buf, cat[0][0], cat[-1][0] + 1, ("cat", [a for _, a, _ in cat])))
    return out


def _product_code(k: int, plan: list[Any], out: int, names: dict[str, Any]) -> list[str]:
    """``Σ aᵀ b`` with the ``b`` of each run read from its buffer's rows in place."""
    runs, leftover = plan
    names["_cat"] = np.concatenate
    names["_multiply_out"] = _multiply_out
    code, terms = [], []
    temps = []
    for n, (buf, lo, hi, a_spec) in enumerate(runs):
        if a_spec[0] == "rows":  # the a of these rows are rows of a stacked buffer too
            lhs = f"v{a_spec[1]}[{a_spec[2]}:{a_spec[2] + hi - lo}]"
        elif len(a_spec[1]) == 1:
            lhs = f"v{a_spec[1][0]}"
        else:
            lhs = f"_lhs{n}"
            temps.append(lhs)
            code.append(f"{lhs} = _cat(({', '.join(f'v{a}' for a in a_spec[1])},))")
        rhs = f"v{buf}[{lo}:{hi}]"
        terms.append(
            f"_matmul({lhs}.reshape(-1, {lhs}.shape[-1]).T, {rhs}.reshape(-1, {rhs}.shape[-1]))"
        )
    if leftover:
        terms.append(f"_multiply_out({', '.join(f'v{p}' for p in leftover)})")
    code.append(f"v{out} = {terms[0]}")
    code.extend(f"v{out} += {t}" for t in terms[1:])
    code.extend(f"del {t}" for t in temps)
    return code
