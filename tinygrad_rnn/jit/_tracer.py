"""The tracer: records the ops of one eager call and builds its program (forward and backward)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_rnn import ops as _ops
from tinygrad_rnn import tensor as _tensor
from tinygrad_rnn.autograd import Primitive
from tinygrad_rnn.engine import _accumulate_leaf
from tinygrad_rnn.jit._kernels import (
    _accumulate,
    _call,
    _item,
    _multiply_out,
    _variadic,
    _variadic_one,
)
from tinygrad_rnn.jit._program import _Program
from tinygrad_rnn.tensor import Tensor, _stand_in


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
        residual: Any = None,
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
        names: tuple[str, ...] = ()
        # apply ran the saving forward exactly when the result records a node
        forward: Callable[..., Any] = prim.forward
        saving = False
        if prim.saving is not None and result.requires_grad:
            forward, saving = prim.saving, True
        if from_slots:
            names = tuple(from_slots)
            extra = tuple(from_slots[k] for k in names)
            n = len(ins)

            def fn(*vals: Any, _f: Any = forward, _n: int = n, _names: Any = names) -> Any:
                kw = dict(fixed, **dict(zip(_names, vals[_n:])))
                return _f(*vals[:_n], **kw)
        else:
            fn = functools.partial(forward, **fixed) if fixed else forward
        out = self.prog.new_slot()
        self.slot[id(result)] = out
        self.keep.append(result)
        self.values[out] = result.data
        self.array_slot[id(result.data)] = out
        if saving:
            # The op's saving forward returns (ans, residual): one instruction for the pair,
            # one for each part; the rules get the residual's slot as a per-call parameter.
            pair = self.prog.new_slot()
            self.values[pair] = (result.data, residual)
            self.prog.instrs.append((fn, ins + extra, pair))
            res = self.prog.new_slot()
            for i, slot in ((0, out), (1, res)):
                k = len(self.prog.instrs)
                if i == 0 and result.data.ndim == 0:
                    self.prog.wrap.add(k)
                else:
                    self.prog.meta[k] = ("item", i)
                self.prog.instrs.append((functools.partial(_item, i), (pair,), slot))
            self.values[res] = residual
            if isinstance(residual, np.ndarray):
                self.array_slot[id(residual)] = res
            self.records.append(
                (prim, ins, params, result, out, (*names, "residual"), (*extra, res))
            )
            if key is not None:
                self.cse[key] = out
            return
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

    def _emit(self, fn: Callable[..., Any], ins: tuple[int, ...], value: Any = None) -> int:
        """Append ``fn(*ins)``; its trace value is ``value`` if given, else computed here."""
        out = self.prog.new_slot()
        if value is None:
            value = fn(*[self.values[i] for i in ins])
        self.values[out] = value
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
                    _variadic(prim.vjp_all, fixed), (g, ans, *args), names, extra
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
                trace_pair = (
                    None
                    if factor_rule is None
                    else factor_rule(
                        self.values[g], self.values[out], *[self.values[j] for j in args], **fixed
                    )
                )
                if factor_rule is not None and trace_pair is not None:
                    rule = functools.partial(_call, factor_rule, fixed)
                    pair_ins = self._read_only(factor_rule, (g, out, *args))
                    if names:
                        pair = self._emit_rule(rule, pair_ins, names, extra)
                    else:  # the trace's factors are already computed: not again
                        pair = self._emit(rule, pair_ins, trace_pair)
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
                        one = _variadic_one(prim.vjp_n, i, fixed)
                        ans = out if 2 not in _unread_params(prim.vjp_n) else self._none_slot()
                        gi = self._emit_rule(one, (g, ans, *args), names, extra)
                    pending.setdefault(key, []).append(gi)
        for key, leaf in needs.items():
            if key in pending or key in factors or key in buffers:
                g = self._finish(key, pending, factors, buffers)
                target: Any = ("arg", self.arg_ids[id(leaf)]) if id(leaf) in self.arg_ids else leaf
                self.prog.grads.append((target, g))
                _accumulate_leaf(leaf, self.values[g], False, False)  # as backward() does

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
            values = self.values
            described = tuple(
                (v.shape, v.dtype.str) if type(v) is np.ndarray else _describe(v)
                for v in [values[x] for x in slots]
            )
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
            steps.append((prim, params, _param_key(params), fn, tuple(refs)))
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
        values = self.values
        for prim, params, pkey, fn, refs in steps:
            ins = tuple(
                slots[r] if kind == "arg" else outs[r] if kind == "step" else r for kind, r in refs
            )
            key = (prim, ins, (), pkey, False)
            seen = self.cse.get(key)
            if seen is not None:
                outs.append(seen)
                continue
            value = prim.forward(*[values[x] for x in ins], **params)
            if type(value) is not np.ndarray:
                value = np.asarray(value)
            out = prog.new_slot()
            values[out] = value
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
        """A zero-byte stand-in for slot ``j``'s value, for a rule that reads only its shape
        (small values are passed as they are: ``tensor._RELEASE_MIN_BYTES``)."""
        v = self.values[j]
        if isinstance(v, np.ndarray) and v.nbytes >= _tensor._RELEASE_MIN_BYTES:
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
    if not params:  # most ops (add, mul, tanh, ...): no parameters
        return ()
    return tuple(
        (k, ("array", id(v)) if isinstance(v, np.ndarray) else v) for k, v in sorted(params.items())
    )


_PAIR_RULES = _pair_rules()
