"""A traced step as a program: value slots, instructions, the plan, and the generated code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_rnn import ops as _ops
from tinygrad_rnn.jit._kernels import _output_slots
from tinygrad_rnn.jit._plan import (
    _plan_constants,
    _plan_in_place,
    _plan_layouts,
    _plan_memory,
    _plan_reuse,
    _plan_siblings,
    _plan_transpose_pairs,
    _product_code,
)
from tinygrad_rnn.tensor import Tensor

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
        self.two_d: set[int] = set()  # products of two 2-D arrays (np.dot)
        self.contiguous: set[int] = set()
        self.chunks: list[Callable[[list[Any]], None]] | None = None
        self.zero_buffers: set[int] = set()  # slots of the zeroed gradient buffers
        self.sources: list[str] = []
        self.reused: set[int] = set()  # slots of the buffers kept from replay to replay
        self.owned_grads: set[int] = set()  # gradients given to the leaves without a copy
        self.unzeroed: set[int] = set()  # zeroed buffers written all over before any read
        self.fresh_zeros: set[int] = set()  # zeroed buffers holding views: not kept
        self.replays_running = 0
        self.trace_values: dict[int, Any] | None = None  # until planned (first replay)
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
        """Plan the program from the trace's values (shapes, dtypes, which arrays are views):
        constants folded and unread ops dropped (`_plan_constants`), the memory plan and
        merged siblings (`_plan`), ``(Wᵀ)ᵀ = W``, liveness (a slot is freed right after its
        last use; outputs and gradients are kept), in-place ufuncs, contiguous shared
        transposes, buffers reused across replays (`_plan_reuse`). None of it changes what
        an instruction computes."""
        keep = {s for _, s in self.grads} | set(_output_slots(self.outputs))
        _plan_constants(self, values, keep)
        pinned = _plan_memory(self, values, keep)
        _plan_siblings(self, values, pinned)
        _plan_transpose_pairs(self)
        last = self._plan_frees(keep)
        _plan_in_place(self, values, keep, pinned, last)
        _plan_layouts(self, values)
        _plan_reuse(self, values, keep)

    def _plan_frees(self, keep: set[int]) -> dict[int, int]:
        """Each slot's last use, and the slots freed after each instruction (not ``keep``)."""
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
        return last

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
                "_dot": np.dot,
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
        mm = "_dot" if k in self.two_d else "_matmul"
        if prim is _ops.matmul:
            return [f"v{out} = {mm}({v[0]}, {v[1]})"]
        if prim is _ops.addmm and k in self.addmm_in_place:  # c + a @ b, c of the product's shape
            return [f"v{out} = {mm}({v[1]}, {v[2]})", f"v{out} += {v[0]}"]
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
        self.replays_running += 1
        try:
            for fn in self.chunks:
                fn(env)
        finally:
            self.replays_running -= 1
        return env
