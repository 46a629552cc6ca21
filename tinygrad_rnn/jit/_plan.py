"""The memory plan of a jit program: buffers, stacks, products read from rows, siblings.

Each pass reads the trace's values (shapes, dtypes, which arrays are views of which) and
rewrites how instructions are executed; none changes what they compute.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from tinygrad_rnn import ops as _ops
from tinygrad_rnn.jit._kernels import _multiply_out, _output_slots

if TYPE_CHECKING:
    from tinygrad_rnn.jit._program import _Instr, _Program


def _plan_memory(prog: _Program, values: dict[int, Any], keep: set[int]) -> set[int]:
    """Gradient buffers, stacked outputs, then the weight products that read their rows."""
    pinned, rows = _plan_buffers(prog, values, keep)
    stacked: dict[int, tuple[int, Any]] = {}
    _plan_stacks(prog, values, keep, pinned, stacked)
    _plan_over_time(prog, values, keep, pinned, stacked)
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
    covered: dict[int, bool] = {}  # buffer -> every element is written by exactly one scatter
    for r, ks in chains.items():
        buf = values[r]
        written = np.zeros(buf.shape, dtype=np.int32)
        for k in ks:
            written[scatters[k]] += 1
        covered[r] = bool((written == 1).all())
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
    _reorder(prog, order)
    # A buffer whose every element is one ufunc's result written there with ``out=`` (an
    # RNN's pre-activation gradients, row by row) needs no zeros; one that holds views
    # (an LSTM step's gate-gradient buffer) keeps fresh zeros on every replay (refilling a
    # large kept one measured 2 % slower at LSTM M and L).
    for r, ks in chains.items():
        kinds = [kind for _, root, _, kind, _ in plans if root == r]
        if "view" in kinds:
            prog.fresh_zeros.add(r)
        elif covered[r] and len(kinds) == len(ks):
            prog.unzeroed.add(r)
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


# Batching a stack's elementwise work costs passes over the whole stack; per step, the same
# work runs on rows still in the cache. Measured on the benchmark's RNN (float32): a gain
# while a stack fits in L2 (size S, 10 KB), a loss at size M (800 KB).
_OVER_TIME_MAX_BYTES = 64 * 1024


def _plan_over_time(
    prog: _Program,
    values: dict[int, Any],
    keep: set[int],
    pinned: set[int],
    stacked: dict[int, tuple[int, Any]],
) -> None:
    """The same elementwise op on row ``t`` of complete stacks, for consecutive ``t``,
    becomes one call over those rows (a tanh's ``(1 - h_t)(1 + h_t)`` for every step of the
    backward), and each step reads its row of the result.

    Works on the forward's stacks (`_plan_stacks`), once every row is written, and on the
    results of earlier batched calls, to a fixed point: the product of two batched factors
    is batched too. The other operands must be the same constant, argument or leaf in every
    step (nothing writes into those). Only small stacks (`_OVER_TIME_MAX_BYTES`)."""
    if not stacked:
        return
    invariant = {s for s, _ in prog.consts} | {s for s, _ in prog.arg_slots}
    invariant |= {s for s, _ in prog.leaf_slots}
    # row slot -> (base slot, absolute row t); base slot -> (its first row, the slot made by
    # the last instruction that writes into it: -1 when that is none)
    rowof: dict[int, tuple[int, int]] = {}
    bases: dict[int, tuple[int, int]] = {}
    for x, (stack, t) in stacked.items():
        sv = values.get(stack)
        if type(t) is int and isinstance(sv, np.ndarray) and sv.nbytes <= _OVER_TIME_MAX_BYTES:
            rowof[x] = (stack, t)
    for stack in {b for b, _ in rowof.values()}:
        writes = [k for k, (b, _) in prog.out_view.items() if b == stack]
        bases[stack] = (0, prog.instrs[max(writes)][2] if writes else -1)
    made: set[int] = set()  # the row instructions this pass wrote (dropped once unread)
    while _batch_one_group(prog, values, keep, pinned, invariant, rowof, bases, made):
        pass
    # Rows nobody reads any more (the factors of a batched product) are not made.
    read = set(keep)
    for k, (_, ins, _) in enumerate(prog.instrs):
        read.update(ins)
        read.update(prog.extra_reads.get(k, ()))
    order = [k for k, (_, _, out) in enumerate(prog.instrs) if out not in made or out in read]
    if len(order) < len(prog.instrs):
        _reorder(prog, order)


def _batch_one_group(
    prog: _Program,
    values: dict[int, Any],
    keep: set[int],
    pinned: set[int],
    invariant: set[int],
    rowof: dict[int, tuple[int, int]],
    bases: dict[int, tuple[int, int]],
    made: set[int],
) -> bool:
    """Batch the first group `_plan_over_time` finds; whether there was one."""
    from tinygrad_rnn.jit._kernels import _item

    position = {out: k for k, (_, _, out) in enumerate(prog.instrs)}
    groups: dict[Any, list[tuple[int, int]]] = {}
    for k, (fn, ins, out) in enumerate(prog.instrs):
        if not (isinstance(fn, np.ufunc) and fn.nout == 1) or out in keep or not ins:
            continue
        if k in prog.out_view or k in prog.wrap or k in prog.view_of or k in prog.alias:
            continue
        ov = values.get(out)
        if not isinstance(ov, np.ndarray):
            continue
        sig: list[tuple[str, int]] = []
        t: int | None = None
        row: Any = None
        for i in ins:
            if i in rowof:
                base, ti = rowof[i]
                if (t is not None and ti != t) or position.get(bases[base][1], -1) >= k:
                    break
                t, row = ti, values.get(i)
                sig.append(("row", base))
            elif i in invariant:
                iv = values.get(i)
                if isinstance(iv, np.ndarray) and iv.ndim > ov.ndim:
                    break
                sig.append(("inv", i))
            else:
                break
        else:
            if (
                t is not None
                and isinstance(row, np.ndarray)
                and (ov.shape, ov.dtype) == (row.shape, row.dtype)
            ):
                groups.setdefault((fn, tuple(sig)), []).append((t, k))
    for (fn, sig), members in groups.items():
        ts = sorted(t for t, _ in members)
        if len(ts) < 2 or ts != list(range(ts[0], ts[0] + len(ts))):
            continue
        lo, hi = ts[0], ts[-1] + 1
        before = len(prog.instrs)
        args = []
        for how, s in sig:
            first = bases[s][0] if how == "row" else 0
            if how == "inv" or (lo - first, hi - first) == (0, values[s].shape[0]):
                args.append(s)
                continue
            cut = prog.new_slot()  # the rows lo..hi of a stack that has more
            index = slice(lo - first, hi - first)
            prog.instrs.append((functools.partial(_item, index), (s,), cut))
            values[cut] = values[s][index]
            made.add(cut)
            args.append(cut)
        batch = prog.new_slot()
        prog.instrs.append((fn, tuple(args), batch))
        values[batch] = fn(*(values[a] for a in args))
        start, end = min(k for _, k in members), len(prog.instrs)
        new = _reorder(prog, [*range(start), *range(before, end), *range(start, before)])
        bases[batch] = (lo, batch)
        for t, k in members:
            k2 = new[k]
            out = prog.instrs[k2][2]
            prog.instrs[k2] = (functools.partial(_item, t - lo), (batch,), out)
            prog.meta[k2] = ("item", t - lo)
            values[out] = values[batch][t - lo]
            rowof[out] = (batch, t)
            pinned.add(out)
            made.add(out)
        return True
    return False


def _move(prog: _Program, src: int, dst: int) -> dict[int, int]:
    """Move instruction ``src`` to position ``dst`` (< src); returns old -> new indices."""
    order = list(range(len(prog.instrs)))
    order.pop(src)
    order.insert(dst, src)
    return _reorder(prog, order)


def _reorder(prog: _Program, order: list[int]) -> dict[int, int]:
    """Put the instructions in ``order`` (old indices) and renumber everything keyed by
    instruction; returns old -> new indices."""
    new = {old: i for i, old in enumerate(order)}
    prog.instrs = [prog.instrs[old] for old in order]
    prog.meta = {new[k]: m for k, m in prog.meta.items() if k in new}
    prog.wrap = {new[k] for k in prog.wrap if k in new}
    prog.view_of = {new[k]: v for k, v in prog.view_of.items() if k in new}
    prog.out_view = {new[k]: v for k, v in prog.out_view.items() if k in new}
    prog.alias = {new[k]: v for k, v in prog.alias.items() if k in new}
    prog.extra_reads = {new[k]: v for k, v in prog.extra_reads.items() if k in new}
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
            f"_dot({lhs}.reshape(-1, {lhs}.shape[-1]).T, {rhs}.reshape(-1, {rhs}.shape[-1]))"
        )
    if leftover:
        terms.append(f"_multiply_out({', '.join(f'v{p}' for p in leftover)})")
    code.append(f"v{out} = {terms[0]}")
    code.extend(f"v{out} += {t}" for t in terms[1:])
    code.extend(f"del {t}" for t in temps)
    return code


def _plan_transpose_pairs(prog: _Program) -> None:
    """(Wᵀ)ᵀ is W: the backward's transpose of a forward transpose reads W itself, which is
    C-ordered (the transpose in between may be a C-ordered copy, `_plan_layouts`)."""
    producer = {out: k for k, (_, _, out) in enumerate(prog.instrs)}
    for k, meta in prog.meta.items():
        if meta[0] is _ops._transpose and meta[1].get("axes") is None:
            j = producer.get(prog.instrs[k][1][0])
            inner = prog.meta.get(j) if j is not None else None
            if (
                j is not None
                and inner is not None
                and inner[0] is _ops._transpose
                and inner[1].get("axes") is None
            ):
                source = prog.instrs[j][1][0]
                prog.alias[k] = source
                prog.extra_reads[k] = (*prog.extra_reads.get(k, ()), source)


def _plan_in_place(
    prog: _Program,
    values: dict[int, Any],
    keep: set[int],
    pinned: set[int],
    last: dict[int, int],
) -> None:
    """An elementwise ufunc writes its result into an input slot when that slot dies at this
    instruction, has the result's shape and dtype, owns its memory (made by an instruction
    of this program, not a view, not an argument, a leaf or a constant, not a region of a
    planned buffer), and no other live slot is a view of it."""
    # Memory owners: a slot whose value is a view names its base's owner.
    owner_last: dict[int, int] = {}
    owner_of: dict[int, int] = {}
    for slot, v in values.items():
        end = len(prog.instrs) if slot in keep else last.get(slot, -1)
        # A tuple (a weight's gradient factors, a stack's gradients) holds arrays of
        # other slots: their memory lives as long as the tuple.
        for part in v if isinstance(v, (tuple, list)) else (v,):
            if isinstance(part, np.ndarray):
                root = part if part.base is None else part.base
                if part is v:
                    owner_of[slot] = id(root)
                owner_last[id(root)] = max(owner_last.get(id(root), -1), end)
    outside = {id(v) for _, v in prog.consts if isinstance(v, np.ndarray)}
    fresh: set[int] = set()
    for k, (fn, ins, out) in enumerate(prog.instrs):
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
            or k in prog.out_view
            or k in prog.merged
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
                prog.inplace[k] = i
                fresh.add(out)
                break


def _plan_layouts(prog: _Program, values: dict[int, Any]) -> None:
    """A weight's transpose read by several products (every step's ``h W_hhᵀ``) is copied
    once into C order; ``c + a @ b`` with ``c`` of the product's shape adds in place; a
    product of two 2-D arrays calls ``np.dot`` (the same product, with less overhead per
    call than ``np.matmul``: a batch-1 step's ``h W_hhᵀ`` is 20-25 % faster)."""
    uses: dict[int, int] = {}
    for _, ins, _ in prog.instrs:
        for i in ins:
            uses[i] = uses.get(i, 0) + 1
    for k, meta in prog.meta.items():
        if meta[0] is _ops._transpose and uses.get(prog.instrs[k][2], 0) > 1:
            v = values.get(prog.instrs[k][2])
            if isinstance(v, np.ndarray) and v.ndim == 2 and not v.flags.c_contiguous:
                prog.contiguous.add(k)
        if meta[0] is _ops.matmul or meta[0] is _ops.addmm:
            a, b = (values.get(i) for i in prog.instrs[k][1][-2:])
            if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim == b.ndim == 2:
                prog.two_d.add(k)
        if meta[0] is _ops.addmm:
            c, prod = values.get(prog.instrs[k][1][0]), values.get(prog.instrs[k][2])
            if (
                isinstance(c, np.ndarray)
                and isinstance(prod, np.ndarray)
                and (c.shape, c.dtype) == (prod.shape, prod.dtype)
            ):
                prog.addmm_in_place.add(k)


class _Reused:
    """A buffer the program allocates (a stack, a gradient buffer), kept from one replay to
    the next: the same memory, still in the cache and without the page faults of a fresh
    allocation. Zeroed on every replay where the program asked for zeros. A replay that
    starts while another is running (two threads) gets fresh arrays instead."""

    def __init__(self, alloc: functools.partial, prog: _Program) -> None:
        self.alloc, self.prog = alloc, prog
        self.zeroed = alloc.func is np.zeros
        self.array: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        if self.prog.replays_running != 1:
            return self.alloc()
        if self.array is None:
            self.array = self.alloc()
        elif self.zeroed:
            self.array.fill(0)
        return self.array


def _is_allocation(fn: Any) -> TypeGuard[functools.partial[np.ndarray]]:
    return isinstance(fn, functools.partial) and fn.func in (np.empty, np.zeros) and not fn.keywords


# Ops whose forward makes a new array, except where it returns its input as is (a sum over
# no axis): which of the two depends on shapes only, so the trace's values tell.
_NEW_ARRAY_OPS = frozenset(
    "sum_to sum max logsumexp argmax argmin softmax_cross_entropy add sub mul div neg pow "
    "exp log tanh sigmoid softplus relu abs clip maximum where concat stack".split()
)


def _plan_reuse(prog: _Program, values: dict[int, Any], keep: set[int]) -> None:
    """The buffers the program allocates itself are reused across replays, except those
    that something the caller receives (an output, a gradient) may be a view of.

    Whether a slot may view a buffer is followed through the program conservatively: the
    result of every instruction may view any of its inputs, except a plain ufunc (without
    ``out=`` into an input or a buffer), a matrix product and an op that makes a new array
    (`_NEW_ARRAY_OPS`, where the trace's result shares no memory with its inputs). A buffer
    written all over before it is read is not zeroed (`_plan_buffers` says which)."""
    products = (_ops.matmul, _ops.addmm, _ops.linear)

    def new_array(k: int, meta: Any) -> bool:
        if meta is None or getattr(meta[0], "name", None) not in _NEW_ARRAY_OPS:
            return False
        _, ins, out = prog.instrs[k]
        result = values.get(out)
        if not isinstance(result, np.ndarray):
            return False
        return not any(
            isinstance(values.get(i), np.ndarray) and np.may_share_memory(result, values[i])
            for i in ins
        )

    views: dict[int, frozenset[int]] = {}
    fresh_slots: set[int] = set()  # results that are new arrays, views of nothing
    candidates: dict[int, int] = {}  # buffer slot -> its instruction
    for k, (fn, ins, out) in enumerate(prog.instrs):
        if not ins and _is_allocation(fn) and k not in prog.view_of:
            candidates[out] = k
            views[out] = frozenset((out,))
            continue
        meta = prog.meta.get(k)
        fresh = (
            k not in prog.out_view
            and k not in prog.inplace
            and k not in prog.view_of
            and k not in prog.alias
            and k not in prog.merged
            and (
                isinstance(fn, np.ufunc)
                or k in prog.runs
                or fn is _multiply_out
                or (meta is not None and meta[0] in products)
                or new_array(k, meta)
            )
        )
        if fresh:
            fresh_slots.add(out)
            continue
        seen: set[int] = set()
        for i in (*ins, *prog.extra_reads.get(k, ())):
            seen |= views.get(i, frozenset())
        if seen:
            views[out] = frozenset(seen)
    escaping: set[int] = set()
    for s in keep:
        escaping |= views.get(s, frozenset())
    _plan_owned_grads(prog, fresh_slots, views)
    for slot, k in candidates.items():
        if slot in escaping or slot in prog.fresh_zeros:
            continue
        fn, ins, out = prog.instrs[k]
        assert _is_allocation(fn)
        if slot in prog.unzeroed:
            fn = functools.partial(np.empty, *fn.args)
        prog.instrs[k] = (_Reused(fn, prog), ins, out)
        prog.reused.add(slot)


def _plan_owned_grads(
    prog: _Program, fresh_slots: set[int], views: dict[int, frozenset[int]]
) -> None:
    """The gradients a replay may hand to the leaves without a copy: a new array of this
    replay (or its transpose) that no instruction reads, no other gradient or output is,
    and that views no buffer kept across replays."""
    counts: dict[int, int] = {}
    for _, s in prog.grads:
        counts[s] = counts.get(s, 0) + 1
    for s in _output_slots(prog.outputs):
        counts[s] = counts.get(s, 0) + 2
    readers: dict[int, int] = {}
    for k, (_, ins, _) in enumerate(prog.instrs):
        for i in (*ins, *prog.extra_reads.get(k, ())):
            readers[i] = readers.get(i, 0) + 1
    producer = {out: k for k, (_, _, out) in enumerate(prog.instrs)}
    for _, s in prog.grads:
        if counts[s] != 1 or readers.get(s) or views.get(s):
            continue
        source = s
        j = producer.get(s)
        meta = prog.meta.get(j) if j is not None else None
        if (
            j is not None
            and meta is not None
            and meta[0] is _ops._transpose
            and j not in prog.alias
            and j not in prog.contiguous
        ):
            source = prog.instrs[j][1][0]  # Wᵀ of a product made for it alone
            if readers.get(source) != 1 or counts.get(source) or views.get(source):
                continue
        if source in fresh_slots:
            prog.owned_grads.add(s)


def _plan_constants(prog: _Program, values: dict[int, Any], keep: set[int]) -> None:
    """Ops of constants are constants, and ops nobody reads are dropped.

    An op whose inputs are all constants of the program (the backward of ``loss.sum()``
    broadcasting the constant 1) computes the same array on every replay: the trace's
    value becomes a constant. An op whose result no instruction reads and the caller does
    not receive (the final state of a layer whose caller keeps only its outputs, a slice
    merged into a sibling's call) is not run. Only the ops of the engine (pure functions
    of their inputs) are touched, never a random draw or a write into a buffer. Runs first:
    only the tracer's ``meta`` and ``wrap`` are numbered by instruction then."""
    from tinygrad_rnn.autograd import Primitive

    consts = {s for s, _ in prog.consts}

    def pure(k: int) -> bool:
        meta = prog.meta.get(k)
        return meta is not None and isinstance(meta[0], Primitive)

    folded: set[int] = set()
    for k, (_, ins, out) in enumerate(prog.instrs):
        if ins and pure(k) and all(i in consts for i in ins) and out in values:
            prog.consts.append((out, values[out]))
            consts.add(out)
            folded.add(k)
    read: set[int] = set(keep)
    dead: set[int] = set(folded)
    for k in range(len(prog.instrs) - 1, -1, -1):
        _, ins, out = prog.instrs[k]
        if k not in folded and pure(k) and out not in read:
            dead.add(k)
            continue
        if k not in dead:
            read.update(ins)
    if not dead:
        return
    order = [k for k in range(len(prog.instrs)) if k not in dead]
    new = {old: i for i, old in enumerate(order)}
    prog.instrs = [prog.instrs[old] for old in order]
    prog.meta = {new[k]: m for k, m in prog.meta.items() if k in new}
    prog.wrap = {new[k] for k in prog.wrap if k in new}
