"""Building the graph model from the recorded tape: nodes, edges, boxes, gradients."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn._grad_mode import no_grad
from tinygrad_rnn.engine import grad as _engine_grad
from tinygrad_rnn.tensor import Tensor, _is_stand_in
from tinygrad_rnn.viz.labels import (
    _dtype_name,
    _fmt,
    _fmt_params,
    _safe,
    _shape_text,
    _summary,
)
from tinygrad_rnn.viz.model import (
    _ELIDED,
    _STEP_RE,
    GraphModel,
    NodeKind,
    ScopePath,
    VizEdge,
    VizNode,
)


# ------------------------------------------------------------------- internals
def _flatten_outputs(outputs: Sequence[Any]) -> list[Tensor]:
    roots: list[Tensor] = []
    seen: set[int] = set()
    for o in outputs:
        items = o if isinstance(o, (list, tuple)) else [o]
        for t in items:
            if not isinstance(t, Tensor):
                raise TypeError(f"draw_graph: outputs must be Tensors, got {type(t).__name__}")
            if id(t) not in seen:
                seen.add(id(t))
                roots.append(t)
    if not roots:
        raise ValueError("draw_graph: give at least one output Tensor")
    return roots


def _param_names(params: Any) -> dict[int, str]:
    """Map ``id(tensor)`` -> display name from a Module, a mapping or (name, tensor) pairs."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        pairs: Iterable[Any] = params.named_parameters()
    elif isinstance(params, Mapping):
        pairs = params.items()
    else:
        pairs = params
    names: dict[int, str] = {}
    for item in pairs:
        try:
            name, tensor = item
        except (TypeError, ValueError):
            raise TypeError(
                "draw_graph: params must be a Module, a mapping name -> Tensor or (name, Tensor) "
                f"pairs, got an item {item!r:.60}"
            ) from None
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"draw_graph: params[{name!r}] is a {type(tensor).__name__}, not a Tensor"
            )
        names.setdefault(id(tensor), str(name))  # a tied weight keeps its first name
    return names


def _topological(roots: Sequence[Tensor]) -> list[Tensor]:
    """Every tensor behind ``roots``, inputs before the ops that use them (no recursion)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = t._node
        if node is None:
            order.append(t)
            continue
        if node.inputs is None:
            raise RuntimeError(
                f"draw_graph: the graph behind this tensor (op '{node.prim.name}') was freed by "
                "backward(), so there is nothing left to draw. Draw before calling backward, call "
                "backward(retain_graph=True), or build a fresh graph by running the forward "
                "pass again."
            )
        stack.append((t, True))
        for p in reversed(node.inputs):
            if p is not None and id(p) not in seen:
                stack.append((p, False))
    return order


def _split_scope(scope: Any) -> tuple[ScopePath, ScopePath, int | None]:
    """``(box path, module path, step)`` of a recorded scope.

    The box path ends at the first ``t=K`` (deeper scopes such as a cell inside
    a step share the step's box); the module path is what comes before it.
    """
    if not scope:
        return (), (), None
    path = tuple(str(s) for s in scope)
    for i, s in enumerate(path):
        m = _STEP_RE.match(s)
        if m:
            return path[: i + 1], path[:i], int(m.group(1))
    return path, path, None


def _common_prefix(paths: Iterable[ScopePath]) -> ScopePath:
    it = iter(paths)
    first = next(it, None)
    if first is None:
        return ()
    prefix = first
    for p in it:
        n = 0
        for a, b in zip(prefix, p):
            if a != b:
                break
            n += 1
        prefix = prefix[:n]
        if not prefix:
            break
    return prefix


def _norm(a: Any) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64).ravel()))


class _EdgeAcc:
    """An edge being built: the (tensor, consumer, slot) uses it stands for."""

    __slots__ = ("dst", "lhead", "ltail", "n_steps", "out_tensor", "src", "tensor_ids", "uses")

    def __init__(self, src: str, dst: str) -> None:
        self.src = src
        self.dst = dst
        self.uses: list[tuple[Tensor, int]] = []  # (consumer op's result, input slot)
        self.tensor_ids: list[int] = []  # id of the tensor carried, one per use
        self.out_tensor: Tensor | None = None  # for op -> result edges
        # Module whose steps box the edge points at (lhead) / leaves from (ltail).
        self.lhead: ScopePath | None = None
        self.ltail: ScopePath | None = None
        self.n_steps = 0  # bundled edges: how many time steps they stand for


class _Builder:
    """Turns the recorded graph into [`VizNode`][tinygrad_rnn.viz.VizNode] /
    [`VizEdge`][tinygrad_rnn.viz.VizEdge] objects."""

    def __init__(
        self,
        roots: list[Tensor],
        *,
        collapse: bool,
        names: dict[int, str],
        max_steps: int | None,
        bundle: int | None,
        show_tensors: bool = True,
        max_nodes: int | None = None,
    ) -> None:
        self.show_tensors = show_tensors
        self.max_nodes = max_nodes
        self.min_nodes = 0
        self.roots = roots
        self.root_ids = {id(r) for r in roots}
        self.collapse = collapse
        self.names = names
        self.max_steps = max_steps
        self.bundle = bundle
        self.nodes: dict[str, VizNode] = {}
        self.edges: dict[tuple[str, str], _EdgeAcc] = {}
        self.order: list[Tensor] = []
        self.n_ops = 0
        self.any_scope = False
        self.grads: dict[int, np.ndarray | None] = {}
        self.have_grads = False
        # id(tensor) -> box path / module path / step of the op that made it
        self.where: dict[int, tuple[ScopePath, ScopePath, int | None]] = {}
        self.owner: dict[int, ScopePath | None] = {}  # id(op result) -> group key
        self.source: dict[int, str] = {}  # id(tensor) -> node id that edges start from
        self.group_node: dict[ScopePath, str] = {}
        self.group_module: dict[str, ScopePath] = {}  # group node id -> module path
        self.elided_steps: dict[ScopePath, list[int]] = {}
        self.consts: dict[int, str] = {}
        self.const_arrays: dict[str, np.ndarray] = {}
        self.folded: dict[str, list[str]] = {}  # op node id -> scalar constants shown in it
        self.op_params: dict[str, list[str]] = {}  # op node id -> "axis=1" lines
        self.group_outputs: list[tuple[str, str]] = []  # (output tensor node, group node)
        self.hidden: dict[ScopePath, set[int]] = {}  # module path -> steps drawn as one node
        self.tensor_of: dict[str, Tensor] = {}
        self.group_ops: dict[str, dict[str, int]] = {}  # group node id -> op name -> count

    # -------------------------------------------------------------- structure
    def _new_id(self) -> str:
        return f"n{len(self.nodes)}"

    def _add(self, node: VizNode) -> VizNode:
        self.nodes[node.id] = node
        return node

    def _group_key(self, t: Tensor) -> ScopePath | None:
        box, module, step = self.where[id(t)]
        if step is not None and step in self.hidden.get(module, ()):
            return (*module, _ELIDED)
        if self.collapse and box:
            return box
        return None

    def build_structure(self) -> None:
        self.order = order = _topological(self.roots)
        ops = [t for t in order if t._node is not None]
        self.n_ops = len(ops)
        cache: dict[Any, tuple[ScopePath, ScopePath, int | None]] = {}
        for t in ops:
            sc = t._node.scope  # type: ignore[union-attr]
            key = sc if isinstance(sc, tuple) else None
            info = cache.get(key)
            if info is None:
                info = cache[key] = _split_scope(sc)
            self.where[id(t)] = info
            if info[0]:
                self.any_scope = True
        if self.max_steps is not None:
            self._plan_elision(ops)
        for t in ops:
            self.owner[id(t)] = self._group_key(t)
        # A lower bound of the node count, known before any node is made, so that
        # an oversized graph is refused at once.
        per_op = 2 if self.show_tensors else 1
        self.min_nodes = (
            (len(order) - len(ops))
            + len({k for k in self.owner.values() if k})
            + sum(per_op for k in self.owner.values() if k is None)
        )
        if self.max_nodes is not None and self.min_nodes > self.max_nodes:
            return

        for t in order:
            node = t._node
            if node is None:
                self._add_leaf(t)
                continue
            box, _, step = self.where[id(t)]
            key = self.owner[id(t)]
            if key is None:
                op_id = self._new_id()
                self._add(
                    VizNode(
                        op_id,
                        "op",
                        node.prim.name,
                        cluster=box,
                        op=node.prim.name,
                        scope=node.scope,
                        step=step,
                        n_ops=1,
                    )
                )
                self.op_params[op_id] = _fmt_params(node.params)
                dst = op_id
                if self.show_tensors or id(t) in self.root_ids:
                    self._add_tensor_node(t, box, step, producer=op_id)
                else:
                    self.source[id(t)] = op_id
            else:
                dst = self._group(key)
                self.nodes[dst].n_ops += 1
                names = self.group_ops.setdefault(dst, {})
                names[node.prim.name] = names.get(node.prim.name, 0) + 1
                if id(t) in self.root_ids:
                    self._add_tensor_node(t, self.nodes[dst].cluster, step, producer=dst)
                    self.group_outputs.append((self.source[id(t)], dst))
                else:
                    self.source[id(t)] = dst
            arrays = node.arrays or ()
            for i, p in enumerate(node.inputs or ()):
                if p is not None:
                    src = self.source[id(p)]
                    if src == dst or (key is not None and self.owner.get(id(p)) == key):
                        continue  # inside one collapsed group: not drawn
                    acc = self._edge(src, dst)
                    acc.uses.append((t, i))
                    acc.tensor_ids.append(id(p))
                elif key is None and i < len(arrays):
                    self._add_const(arrays[i], dst)
        self._place()
        self._bundle()

    def _plan_elision(self, ops: list[Tensor]) -> None:
        assert self.max_steps is not None
        steps: dict[ScopePath, set[int]] = {}
        for t in ops:
            _, module, step = self.where[id(t)]
            if step is not None:
                steps.setdefault(module, set()).add(step)
        keep_head = (self.max_steps + 1) // 2
        keep_tail = self.max_steps // 2
        for module, found in steps.items():
            s = sorted(found)
            if len(s) > self.max_steps:
                hidden = s[keep_head : len(s) - keep_tail]
                self.elided_steps[module] = hidden
                self.hidden[module] = set(hidden)

    def _group(self, key: ScopePath) -> str:
        """The node standing for group ``key`` (a box path, or a module's elided steps)."""
        gid = self.group_node.get(key)
        if gid is not None:
            return gid
        gid = self._new_id()
        self.group_node[key] = gid
        if key[-1] == _ELIDED:
            module = key[:-1]
            hidden = self.elided_steps[module]
            node = VizNode(
                gid,
                "elided",
                "",
                cluster=module,
                scope=module,
                name=module[-1] if module else None,
            )
            node.label = f"⋯ {len(hidden)} steps ⋯\\nt={hidden[0]} … t={hidden[-1]}"
            self.group_module[gid] = module
        else:
            _, module, step = _split_scope(key)
            node = VizNode(gid, "group", "", scope=key, step=step, name=key[-1])
            if step is not None:
                node.cluster = module
                self.group_module[gid] = module
            else:
                node.cluster = key  # settled in _place: inside its own box only if shared
        self._add(node)
        return gid

    def _add_leaf(self, t: Tensor) -> None:
        nid = self._new_id()
        name = self.names.get(id(t)) or t.name
        if id(t) in self.names or type(t).__name__ == "Parameter":
            kind: NodeKind = "param"
        elif id(t) in self.root_ids and not t.requires_grad:
            kind = "const"
        else:
            kind = "leaf"
        self._add(
            VizNode(nid, kind, "", shape=tuple(t.shape), dtype=_dtype_name(t.dtype), name=name)
        )
        self.source[id(t)] = nid
        self.tensor_of[nid] = t

    def _add_tensor_node(
        self, t: Tensor, cluster: ScopePath, step: int | None, producer: str
    ) -> None:
        nid = self._new_id()
        kind: NodeKind = "output" if id(t) in self.root_ids else "tensor"
        self._add(
            VizNode(
                nid,
                kind,
                "",
                cluster=cluster,
                shape=tuple(t.shape),
                dtype=_dtype_name(t.dtype),
                name=t.name,
                scope=t._node.scope if t._node is not None else None,
                step=step,
            )
        )
        self.source[id(t)] = nid
        self.tensor_of[nid] = t
        acc = self._edge(producer, nid)
        acc.out_tensor = t

    def _add_const(self, arr: np.ndarray, op_id: str) -> None:
        if arr.size == 1:
            # Scalars (``1 - y``, ``/ n``) would be a cloud of tiny nodes: print them in the op.
            v = float(arr.ravel()[0]) if np.issubdtype(arr.dtype, np.number) else arr.ravel()[0]
            self.folded.setdefault(op_id, []).append(
                f"const {_fmt(v) if isinstance(v, float) else v}"
            )
            return
        cid = self.consts.get(id(arr))
        if cid is None:
            cid = self._new_id()
            self.consts[id(arr)] = cid
            self.const_arrays[cid] = arr
            self._add(
                VizNode(cid, "const", "", shape=tuple(arr.shape), dtype=_dtype_name(arr.dtype))
            )
        acc = self._edge(cid, op_id)
        acc.uses.append((Tensor._make(arr), -1))  # constants carry no gradient
        acc.tensor_ids.append(id(arr))

    def _edge(self, src: str, dst: str) -> _EdgeAcc:
        acc = self.edges.get((src, dst))
        if acc is None:
            acc = self.edges[(src, dst)] = _EdgeAcc(src, dst)
        return acc

    def _place(self) -> None:
        """Decide the box of module groups, leaves and constants (they have no scope of their own).

        A leaf goes into the innermost box that holds every node it feeds, so a
        step's own input sits in the step and a weight sits in its module.
        """
        movable = {out for out, _ in self.group_outputs}
        occupied: set[ScopePath] = set()
        for n in self.nodes.values():
            if n.kind in ("param", "leaf", "const") or n.id in movable:
                continue
            if not (n.kind == "group" and n.step is None):
                occupied.add(n.cluster)
        for n in self.nodes.values():
            if n.kind == "group" and n.step is None:
                path = n.cluster
                # A module group sits inside its own box only when the box holds more.
                shared = any(len(c) >= len(path) and c[: len(path)] == path for c in occupied)
                n.cluster = path if shared else path[:-1]
        for out, gid in self.group_outputs:
            self.nodes[out].cluster = self.nodes[gid].cluster
        # Leaves and constants: the innermost box that holds every node they feed.
        users: dict[str, list[ScopePath]] = {}
        for (src, dst), _acc in self.edges.items():
            if self.nodes[src].kind in ("param", "leaf", "const"):
                users.setdefault(src, []).append(self.nodes[dst].cluster)
        for nid, paths in users.items():
            self.nodes[nid].cluster = _common_prefix(paths)

    def _steps_module(self, nid: str) -> ScopePath | None:
        """The module M when node ``nid`` is drawn among M's time steps, else None.

        Every module with steps gets an invisible box around its steps (see
        ``_emit``) so that one edge can point at "all steps of M".
        """
        m = self.group_module.get(nid)
        if m is not None:
            return m
        c = self.nodes[nid].cluster
        if c and _STEP_RE.match(c[-1]):  # box paths end at their first step
            return c[:-1]
        return None

    def _steps_of(self, nid: str) -> list[int]:
        """The time steps a node stands for (all hidden ones for an elided node)."""
        n = self.nodes[nid]
        if n.kind == "elided" and n.scope is not None:
            return self.elided_steps.get(n.scope, [])
        return [] if n.step is None else [n.step]

    def _bundle(self) -> None:
        """One edge to (or from) all steps of a module instead of one edge per step.

        A weight used at every step would otherwise send T long edges across the
        picture (and cost dot minutes for T in the hundreds); the same holds for
        a ``stack`` that gathers every step's output.
        """
        if self.bundle is None:
            return
        for fan_out in (True, False):
            by_end: dict[str, list[_EdgeAcc]] = {}
            for acc in self.edges.values():
                if acc.out_tensor is None and acc.lhead is None and acc.ltail is None:
                    by_end.setdefault(acc.src if fan_out else acc.dst, []).append(acc)
            for end, accs in by_end.items():
                if len(accs) <= self.bundle:
                    continue
                per_module: dict[ScopePath, list[_EdgeAcc]] = {}
                for acc in accs:
                    m = self._steps_module(acc.dst if fan_out else acc.src)
                    if m is not None:
                        per_module.setdefault(m, []).append(acc)
                for module, group in per_module.items():
                    if len(group) <= self.bundle or self._steps_module(end) == module:
                        continue  # few uses, or the end itself sits among the steps
                    keep = group[0] if fan_out else group[-1]
                    steps: set[int] = set()
                    for acc in group:
                        steps.update(self._steps_of(acc.dst if fan_out else acc.src))
                    keep.n_steps = len(steps)
                    for acc in group:
                        if acc is not keep:
                            keep.uses.extend(acc.uses)
                            keep.tensor_ids.extend(acc.tensor_ids)
                            del self.edges[(acc.src, acc.dst)]
                    if fan_out:
                        keep.lhead = module
                    else:
                        keep.ltail = module
                if fan_out and self.nodes[end].kind in ("param", "leaf", "const"):
                    # Re-place the leaf: its bundled edges only need it inside the module box.
                    paths = [
                        acc.lhead if acc.lhead is not None else self.nodes[acc.dst].cluster
                        for acc in self.edges.values()
                        if acc.src == end
                    ]
                    self.nodes[end].cluster = _common_prefix(paths)

    # -------------------------------------------------------------- gradients
    def compute_grads(self, grad_outputs: Sequence[Any] | None) -> None:
        """Gradients of the outputs w.r.t. every drawn tensor (the engine keeps only leaves')."""
        outs = [r for r in self.roots if r.requires_grad]
        if not outs:
            return
        if grad_outputs is None:
            gouts: list[Any] = [None if r.size == 1 else np.ones(r.shape, r.dtype) for r in outs]
        else:
            given = list(grad_outputs)
            if len(given) != len(self.roots):
                raise ValueError(
                    f"draw_graph: {len(self.roots)} outputs but {len(given)} grad_outputs"
                )
            gouts = [g for r, g in zip(self.roots, given) if r.requires_grad]
        targets = [t for t in self.order if t.requires_grad]
        with no_grad():
            gs = _engine_grad(
                outs, targets, grad_outputs=gouts, retain_graph=True, allow_unused=True
            )
        self.grads = {id(t): (None if g is None else g.data) for t, g in zip(targets, gs)}
        self.have_grads = True

    def _edge_flow(self, acc: _EdgeAcc) -> float | None:
        """Norm of the gradient that flowed back along one edge (sum over its uses per tensor)."""
        if acc.out_tensor is not None:
            g = self.grads.get(id(acc.out_tensor))
            return None if g is None else _norm(g)
        per_tensor: dict[int, Any] = {}
        for (consumer, slot), tid in zip(acc.uses, acc.tensor_ids):
            if slot < 0:
                continue
            g = self.grads.get(id(consumer))
            node = consumer._node
            if g is None or node is None or node.arrays is None:
                continue
            # The engine sums these contributions into the tensor's gradient and then
            # forgets them; recompute the one for this edge with the op's own rule.
            with no_grad():
                contrib = np.asarray(
                    node.prim.vjp(slot, g, consumer.data, node.arrays, node.params)
                )
            prev = per_tensor.get(tid)
            per_tensor[tid] = contrib if prev is None else prev + contrib
        if not per_tensor:
            return None
        return math.sqrt(sum(_norm(v) ** 2 for v in per_tensor.values()))

    def _boundary_norms(self, key_of: dict[int, Any]) -> dict[Any, float]:
        """Norm of the gradient w.r.t. the tensors that leave each group ``key_of`` assigns."""
        leaves_group: dict[int, bool] = {}
        for t in self.order:
            node = t._node
            if node is None:
                continue
            k = key_of.get(id(t))
            for p in node.inputs or ():
                if p is not None and p._node is not None:
                    kp = key_of.get(id(p))
                    if kp is not None and kp != k:
                        leaves_group[id(p)] = True
        sq: dict[Any, float] = {}
        for t in self.order:
            k = key_of.get(id(t))
            if k is None:
                continue
            sq.setdefault(k, 0.0)
            if leaves_group.get(id(t)) or id(t) in self.root_ids:
                g = self.grads.get(id(t))
                if g is not None:
                    sq[k] += _norm(g) ** 2
        return {k: math.sqrt(v) for k, v in sq.items()}

    # ----------------------------------------------------------------- finish
    def finish(
        self,
        *,
        show_values: bool,
        show_grads: bool,
        grad_flow: bool,
        grad_range: tuple[float, float] | None,
        direction: str,
    ) -> GraphModel:
        model = GraphModel(collapsed=self.collapse, direction=direction, n_ops=self.n_ops)
        model.n_tensors = len(self.order)
        model.n_constants = len(self.consts)

        step_key = {
            id(t): (self.where[id(t)][1], self.where[id(t)][2])
            for t in self.order
            if t._node is not None and self.where[id(t)][2] is not None
        }
        group_key = {id(t): k for t, k in ((t, self.owner.get(id(t))) for t in self.order) if k}
        if self.have_grads:
            model.step_grad_norms = self._boundary_norms(step_key)
            group_norms = self._boundary_norms(group_key)
            for key, gid in self.group_node.items():
                self.nodes[gid].grad_norm = group_norms.get(key, 0.0)

        edges: list[VizEdge] = []
        for acc in self.edges.values():
            e = VizEdge(acc.src, acc.dst, count=max(len(acc.uses), 1))
            e.lhead_module, e.ltail_module = acc.lhead, acc.ltail
            if self.have_grads:
                e.grad_norm = self._edge_flow(acc)
            edges.append(e)

        for nid, n in self.nodes.items():
            t = self.tensor_of.get(nid)
            if t is not None and self.have_grads:
                g = self.grads.get(id(t))
                n.grad_norm = None if g is None else _norm(g)
            n.label = self._label(n, t, show_values, show_grads, grad_flow)
        self._edge_labels(edges, grad_flow)

        model.nodes = list(self.nodes.values())
        model.edges = edges
        if self.have_grads:
            norms = [e.grad_norm for e in edges if e.grad_norm]
            norms += [n.grad_norm for n in model.nodes if n.grad_norm]
            norms += [v for v in model.step_grad_norms.values() if v]
            if grad_range is not None:
                model.grad_range = (float(grad_range[0]), float(grad_range[1]))
            elif norms:
                hi = max(norms)
                model.grad_range = (hi * 1e-6, hi)
        return model

    def _label(
        self, n: VizNode, t: Tensor | None, show_values: bool, show_grads: bool, grad_flow: bool
    ) -> str:
        lines: list[str] = []
        if n.kind == "op":
            lines = [n.label, *self.op_params.get(n.id, ()), *self.folded.get(n.id, ())]
            return "\\n".join(_safe(s) for s in lines)
        if n.kind in ("group", "elided"):
            if n.kind == "elided":
                lines += n.label.split("\\n")
            elif n.step is not None:
                module = self.group_module.get(n.id, ())
                lines.append(" ".join([".".join(module[-2:]), f"t={n.step}"]).strip())
            else:
                lines.append(n.name or "")
            kinds = self.group_ops.get(n.id, {})
            count = f"{n.n_ops:,} op" + ("s" if n.n_ops != 1 else "")
            names = ", ".join(kinds)
            # A short list of op kinds helps; a long one only widens every step's box.
            lines.append(f"{count}: {names}" if len(kinds) <= 3 and len(names) <= 24 else count)
            if grad_flow and n.grad_norm is not None:
                lines.append(f"‖g‖ {_fmt(n.grad_norm)}")
            return "\\n".join(_safe(s) for s in lines)
        # tensor-like nodes
        if n.name:
            lines.append(_safe(n.name))
        elif n.kind == "output":
            lines.append("output")
        if n.shape is not None:
            lines.append(_shape_text(n.shape, n.dtype))
        data = t.data if t is not None else self.const_arrays.get(n.id)
        if show_values and data is not None and _is_stand_in(data):
            lines.append("values released")  # a layer's input projection, once read
        elif show_values and data is not None and np.issubdtype(data.dtype, np.number):
            lines.append(_summary(data, "value"))
        if show_grads and n.kind != "const":
            if n.kind in ("param", "leaf") and t is not None:
                lines.append("grad None" if t.grad is None else _summary(t.grad.data, "grad"))
            elif t is not None and self.grads.get(id(t)) is not None:
                lines.append(_summary(self.grads[id(t)], "grad"))  # type: ignore[arg-type]
        elif grad_flow and n.grad_norm is not None:
            lines.append(f"‖g‖ {_fmt(n.grad_norm)}")
        return "\\n".join(lines)

    def _edge_labels(self, edges: list[VizEdge], grad_flow: bool) -> None:
        for e in edges:
            parts: list[str] = []
            acc = self.edges[(e.src, e.dst)]
            # An edge leaving an op or a group stands for tensors that have no node
            # of their own (collapsed, or show_tensors=False): write their shapes on it.
            carried = acc.out_tensor is None and self.nodes[e.src].kind in ("op", "group", "elided")
            bundled = e.lhead_module is not None or e.ltail_module is not None
            if bundled:
                parts.append(f"{acc.n_steps} steps" if acc.n_steps else f"×{e.count}")
            elif carried:
                shapes = [self._shape_of(tid) for tid in dict.fromkeys(acc.tensor_ids)]
                parts.append(" ".join(shapes[:3]) + (" …" if len(shapes) > 3 else ""))
            elif e.count > 1:
                parts.append(f"×{e.count}")
            if grad_flow and e.grad_norm is not None and (carried or bundled):
                parts.append(f"‖g‖ {_fmt(e.grad_norm)}")
            e.label = "\\n".join(parts)

    def _shape_of(self, tid: int) -> str:
        if not hasattr(self, "_by_id"):
            self._by_id = {id(t): t for t in self.order}
        t = self._by_id.get(tid)
        if t is None:
            return ""
        return "(" + ", ".join(str(d) for d in t.shape) + ")"
