"""Draw the graph that backpropagation (through time) walks.

An unrolled recurrent net records thousands of ops; drawing them as one flat
tangle (what ``draw_dot`` from micrograd or torchviz do) shows nothing. This
module draws the graph with its *time structure*: every op recorded inside
``scope("t=3")`` lands in a box for step 3, nested in a box for its module
(``scope("lstm")``), so a T-step RNN reads as T boxes in a row. With
``collapse=True`` each (module, step) box becomes one node, so a 1,000-step
LSTM is still a picture. With ``grad_flow=True`` edges and step boxes are
coloured by the norm of the gradient that flowed through them, which makes
vanishing gradients visible.

Typical use::

    from tinygrad_rnn import viz

    with viz.trace():                       # record which module / step made each op
        loss = model(x)
    g = viz.draw_graph(loss, params=model, grad_flow=True)
    viz.render(g, "graph.svg")              # needs Graphviz's `dot` program
    g                                       # in Jupyter: drawn inline
    print(g.source)                         # DOT text: always available
    g.model.nodes, g.model.edges            # the drawn graph as Python objects

Scopes are only recorded inside :func:`trace`; without them the drawing has no
boxes but is otherwise complete. The graph must still be in memory when it is
drawn: ``backward()`` frees it, so draw first, or call
``backward(retain_graph=True)``.

Everything here walks the graph with explicit stacks, never recursion, so a
chain of 100,000 ops cannot hit Python's recursion limit.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import graphviz
import numpy as np

from tinygrad_rnn._grad_mode import no_grad
from tinygrad_rnn.engine import grad as _engine_grad
from tinygrad_rnn.scope import record_scopes
from tinygrad_rnn.tensor import Tensor, _is_stand_in

__all__ = [
    "GraphDrawing",
    "GraphModel",
    "GraphvizNotFoundError",
    "VizCluster",
    "VizEdge",
    "VizNode",
    "draw_graph",
    "render",
    "trace",
]

NodeKind = Literal["op", "tensor", "output", "param", "leaf", "const", "group", "elided"]
ScopePath = tuple[str, ...]

_STEP_RE = re.compile(r"^t=(-?\d+)$")
# Marks the group standing for the hidden middle steps of a module (max_steps); a
# NUL character cannot appear in a scope name anyone typed.
_ELIDED = "\0elided"

INSTALL_HINT = (
    "Graphviz's `dot` program was not found on PATH, and rendering needs it. Install it:\n"
    "  Debian/Ubuntu:  sudo apt-get install graphviz\n"
    "  macOS:          brew install graphviz\n"
    "  conda:          conda install -c conda-forge graphviz\n"
    "  Windows:        winget install graphviz  (then add its bin folder to PATH)\n"
    "The DOT text needs nothing installed: use graph.source, or paste it into any "
    "Graphviz viewer."
)


class GraphvizNotFoundError(RuntimeError):
    """Raised instead of graphviz's ``ExecutableNotFound`` when ``dot`` is missing.

    The message says what to install; ``graph.source`` works without it.
    """


# --------------------------------------------------------------------- the model
@dataclass
class VizNode:
    """One drawn node.

    Attributes:
        id: the DOT node id (``"n12"``).
        kind: ``"op"`` (a primitive), ``"tensor"`` (an intermediate result),
            ``"output"`` (a tensor passed to :func:`draw_graph`), ``"param"`` (a
            named parameter), ``"leaf"`` (another leaf that requires grad, e.g. an
            input), ``"const"`` (an array input that needs no grad), ``"group"``
            (a collapsed module/step: many ops) or ``"elided"`` (steps hidden by
            ``max_steps``).
        label: the text shown, lines separated by ``"\\n"``.
        cluster: the scope path of the box the node is drawn in (``()`` = top).
        shape: the tensor's shape (tensor-like kinds) or None.
        dtype: the tensor's dtype name or None.
        op: the primitive's name for ``"op"`` nodes.
        name: parameter path / tensor name, when known.
        scope: the recorded scope path of the op (``"op"``/``"tensor"``) or of
            the group; None when scopes were not recorded.
        step: the time step (``t=K``) the node belongs to, or None.
        n_ops: how many recorded ops the node stands for (1 for an op, 0 for
            tensors, the op count for groups).
        grad_norm: the 2-norm of the gradient of the drawn outputs w.r.t. this
            tensor (groups: of the tensors leaving the group), when computed.
    """

    id: str
    kind: NodeKind
    label: str
    cluster: ScopePath = ()
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    op: str | None = None
    name: str | None = None
    scope: ScopePath | None = None
    step: int | None = None
    n_ops: int = 0
    grad_norm: float | None = None


@dataclass
class VizEdge:
    """One drawn edge, always stored in the forward direction (``src`` feeds ``dst``).

    Attributes:
        src, dst: DOT node ids.
        count: how many (tensor, op input) uses the edge stands for: ``x * x``
            gives one edge with count 2; a bundled parameter edge counts every
            step it feeds.
        grad_norm: the 2-norm of the gradient that flowed back along the edge
            (``grad_flow``/``show_grads`` only).
        label: the text on the edge ("" for none).
        lhead_module, ltail_module: set on a bundled edge: the module whose
            steps (all of them) the edge points at / comes from, e.g. one edge
            from ``weight_hh`` to the 200 steps of the LSTM instead of 200 edges.
        lhead, ltail: the DOT names of those boxes (Graphviz ``lhead``/``ltail``).
    """

    src: str
    dst: str
    count: int = 1
    grad_norm: float | None = None
    label: str = ""
    lhead_module: ScopePath | None = None
    ltail_module: ScopePath | None = None
    lhead: str | None = None
    ltail: str | None = None


@dataclass
class VizCluster:
    """A box: a module (``scope("lstm")``) or a time step (``scope("t=3")``).

    Attributes:
        path: the scope path, e.g. ``("lstm", "t=3")``.
        name: the DOT subgraph name (``"cluster_4"``).
        label: the text shown on the box.
        step: the step number for a step box, else None.
        grad_norm: for step boxes with gradients computed: the norm of the
            gradient w.r.t. the tensors that leave the step.
    """

    path: ScopePath
    name: str
    label: str
    step: int | None = None
    grad_norm: float | None = None


@dataclass
class GraphModel:
    """What :func:`draw_graph` drew, as plain Python objects (handy in tests and notebooks).

    Attributes:
        nodes: the drawn nodes, in drawing order.
        edges: the drawn edges.
        clusters: the boxes, outermost first.
        n_ops: ops recorded in the graph (all of them, drawn or collapsed).
        n_tensors: tensors in the graph (leaves and op results; constants not counted).
        n_constants: distinct non-scalar constant arrays fed to ops.
        step_grad_norms: ``{(module_path, t): norm}`` of the gradient w.r.t. the
            tensors leaving each step (empty unless gradients were computed).
        grad_range: the (low, high) norms mapped to the palest / darkest colour.
        collapsed: whether ``collapse=True`` was used.
        direction: ``"forward"`` or ``"backward"``.
    """

    nodes: list[VizNode] = field(default_factory=list)
    edges: list[VizEdge] = field(default_factory=list)
    clusters: list[VizCluster] = field(default_factory=list)
    n_ops: int = 0
    n_tensors: int = 0
    n_constants: int = 0
    step_grad_norms: dict[tuple[ScopePath, int], float] = field(default_factory=dict)
    grad_range: tuple[float, float] | None = None
    collapsed: bool = False
    direction: str = "forward"

    def of_kind(self, *kinds: str) -> list[VizNode]:
        """The nodes whose ``kind`` is one of ``kinds``: ``model.of_kind("param", "leaf")``."""
        return [n for n in self.nodes if n.kind in kinds]

    def node(self, node_id: str) -> VizNode:
        """The node with DOT id ``node_id``."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def step_clusters(self) -> list[VizCluster]:
        """The boxes of time steps (full drawing; collapsed drawings have group nodes instead)."""
        return [c for c in self.clusters if c.step is not None]


class GraphDrawing(graphviz.Digraph):
    """A ``graphviz.Digraph`` that also carries :class:`GraphModel` as ``.model``.

    Everything of graphviz works: ``.source`` (DOT text), ``.render(...)``,
    ``.pipe(format="svg")`` and inline display in Jupyter (graphviz's
    ``_repr_mimebundle_``). When ``dot`` is missing, rendering raises
    :class:`GraphvizNotFoundError` with install instructions, and Jupyter shows
    those instructions as text instead of a traceback.
    """

    model: GraphModel

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        """``graphviz.Digraph.pipe`` (the rendered bytes/str); a clear error when dot is missing."""
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(INSTALL_HINT) from None

    def render(self, *args: Any, **kwargs: Any) -> Any:
        """``graphviz.Digraph.render`` (writes files), with a clear error when dot is missing."""
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(INSTALL_HINT) from None

    def _repr_mimebundle_(
        self,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, bytes | str]:
        # Jupyter calls this to draw the graph inline; without dot, show the
        # install hint as text rather than a traceback under every cell.
        try:
            return super()._repr_mimebundle_(include, exclude, **kwargs)
        except GraphvizNotFoundError as exc:
            return {"text/plain": f"{exc}\n\n{self.source}"}

    def copy(self) -> GraphDrawing:
        """A copy of the drawing that keeps ``.model``."""
        new: GraphDrawing = super().copy()
        new.model = self.model
        return new


# ------------------------------------------------------------------ public API
@contextmanager
def trace() -> Iterator[None]:
    """Record which module and time step makes each op, so drawings can box them.

    Ops recorded inside ``scope(...)`` blocks (``nn`` modules and recurrent
    layers open them for you) get ``node.scope``; outside ``trace()`` scopes
    cost nothing and are not stored. This is :func:`tinygrad_rnn.scope.record_scopes`
    under a name that says what it is for.

    Example::

        with viz.trace():
            loss = model(x)          # ops get scopes like ("lstm", "t=3")
        viz.draw_graph(loss, collapse=True)
    """
    with record_scopes():
        yield


def draw_graph(
    *outputs: Tensor | Sequence[Tensor],
    collapse: bool = False,
    params: Any = None,
    show_tensors: bool = True,
    show_values: bool = False,
    show_grads: bool = False,
    grad_flow: bool = False,
    grad_outputs: Sequence[Any] | None = None,
    grad_range: tuple[float, float] | None = None,
    direction: Literal["forward", "backward"] = "forward",
    max_nodes: int | None = 20_000,
    max_steps: int | None = None,
    bundle: int | None = 8,
    wrap: int | None = None,
    rankdir: str | None = None,
    title: str | None = None,
) -> GraphDrawing:
    """Draw the graph behind ``outputs``: one node per op, one per tensor, boxes per step.

    Args:
        *outputs: the Tensors whose history to draw (usually the loss); lists
            of Tensors are accepted too.
        collapse: draw each (module, time step) group of ops as ONE node
            labelled e.g. ``"lstm t=3 / 23 ops"`` (a scope path without a step,
            such as a Linear head, becomes one node too). Ops outside any scope
            are still drawn one by one. Needs scopes, see :func:`trace`.
        params: names for parameters: a Module (its ``named_parameters()``
            gives dotted paths like ``"lstm.weight_ih_l0"``), a mapping
            name -> Tensor, or an iterable of (name, Tensor) pairs. Leaves not
            named here show ``tensor.name`` when set.
        show_tensors: draw a node per intermediate tensor (shape, dtype). False
            draws ops only and writes the shapes on the edges: half the nodes,
            the picture torchviz draws. Leaves and outputs are always drawn.
        show_values: add ``min / mean / max`` of each tensor's values.
        show_grads: add gradient summaries (norm, min / mean / max): for leaves
            their ``.grad`` (what ``backward`` accumulated; ``grad None`` if it
            has not run); for intermediates the gradient of the outputs, which
            the engine does not keep, so it is computed here (see ``grad_flow``).
        grad_flow: colour and thicken every edge by the norm of the gradient
            that flowed back along it, colour step boxes / step nodes by the
            norm of the gradient leaving the step, and add a legend. The
            gradient is that of ``sum(outputs)`` (or of ``grad_outputs``),
            computed with :func:`tinygrad_rnn.grad` on a graph that must not
            have been freed by ``backward()``.
        grad_outputs: upstream gradients, one per output (arrays or Tensors of
            the output's shape); default: ones.
        grad_range: ``(low, high)`` gradient norms mapped to the palest and the
            darkest colour (log scale). Default: ``(max / 1e6, max)`` of this
            drawing; pass the same range to two drawings to compare them.
        direction: ``"forward"`` draws arrows from inputs to results;
            ``"backward"`` draws them the way gradients flow (from the loss
            back to the parameters), keeping the same layout.
        max_nodes: refuse (ValueError) to draw more nodes than this, since dot
            needs minutes for such pictures and they are unreadable anyway;
            None for no limit.
        max_steps: draw at most this many steps per module (the first and last
            halves); the steps in between become one ``"⋯ 190 steps ⋯"`` node.
        bundle: when one tensor (typically a weight) feeds more than this many
            nodes inside one module's steps, draw one edge to the module's box
            instead of one per step; None never bundles.
        wrap: with ``collapse=True``, lay each module's step nodes out in rows
            of this many, like lines of text (steps 0..wrap-1, then the next
            row), so 1,000 steps make a 25 x 40 grid rather than a line 1,000
            nodes long.
        rankdir: Graphviz layout direction: ``"LR"`` (time runs left to right;
            the default) or ``"TB"`` (top to bottom; the default with ``wrap``,
            whose rows then read left to right).
        title: a caption for the picture.

    Returns:
        A :class:`GraphDrawing` (a ``graphviz.Digraph``) whose ``.model`` holds
        the nodes, edges and boxes drawn.

    Raises:
        ValueError: more than ``max_nodes`` nodes, or bad arguments.
        RuntimeError: the graph was freed by an earlier ``backward()``.

    Example:
        >>> import numpy as np, tinygrad_rnn as tg
        >>> from tinygrad_rnn import viz
        >>> x = tg.Tensor(np.ones((2, 3)), requires_grad=True, name="x")
        >>> W = tg.Tensor(np.ones((3, 4)), requires_grad=True, name="W")
        >>> b = tg.Tensor(np.zeros(4), requires_grad=True, name="b")
        >>> g = viz.draw_graph((x @ W + b).tanh())
        >>> len(g.model.of_kind("op")), len(g.model.edges)
        (3, 8)
    """
    roots = _flatten_outputs(outputs)
    if direction not in ("forward", "backward"):
        raise ValueError(
            f"draw_graph: direction must be 'forward' or 'backward', got {direction!r}"
        )
    if wrap is not None and wrap < 1:
        raise ValueError(f"draw_graph: wrap must be a positive number of steps, got {wrap}")
    if rankdir is None:
        rankdir = "TB" if wrap else "LR"
    if max_steps is not None and max_steps < 2:
        raise ValueError(f"draw_graph: max_steps must be at least 2, got {max_steps}")
    if grad_range is not None and not (0 < grad_range[0] < grad_range[1]):
        raise ValueError(
            f"draw_graph: grad_range must be (low, high) with 0 < low < high, got {grad_range}"
        )
    builder = _Builder(
        roots,
        collapse=collapse,
        names=_param_names(params),
        max_steps=max_steps,
        bundle=bundle,
        show_tensors=show_tensors,
        max_nodes=max_nodes,
    )
    builder.build_structure()
    n_drawn = max(len(builder.nodes), builder.min_nodes)
    if max_nodes is not None and n_drawn > max_nodes:
        hint = (
            "pass collapse=True to draw one node per (module, time step)"
            if builder.any_scope
            else "record scopes with `with viz.trace(): ...` around the forward pass, then pass "
            "collapse=True to draw one node per (module, time step)"
        )
        raise ValueError(
            f"draw_graph: the drawing would have {n_drawn:,} nodes ({builder.n_ops:,} ops), more "
            f"than max_nodes={max_nodes:,}. Such a picture is unreadable and dot may take minutes "
            f"to lay it out; {hint}, or max_steps=N to draw only the first and last steps, or "
            "raise max_nodes (None for no limit)."
        )
    if grad_flow or show_grads:
        builder.compute_grads(grad_outputs)
    model = builder.finish(
        show_values=show_values,
        show_grads=show_grads,
        grad_flow=grad_flow,
        grad_range=grad_range,
        direction=direction,
    )
    return _emit(model, builder, rankdir=rankdir, title=title, grad_flow=grad_flow, wrap=wrap)


def render(
    graph: graphviz.Digraph,
    path: str | Path,
    format: Literal["svg", "png", "pdf"] | str = "svg",
    dpi: float | None = None,
) -> Path:
    """Lay out ``graph`` with Graphviz's ``dot`` and write the picture to ``path``.

    Args:
        graph: what :func:`draw_graph` returned (any ``graphviz.Digraph`` works).
        path: the file to write; the extension ``.<format>`` is added when the
            path does not already end with it.
        format: ``"svg"`` (scalable, browsers), ``"png"`` or ``"pdf"`` (any
            format dot knows).
        dpi: resolution for bitmaps (dot's default is 96).

    Returns:
        The path written.

    Raises:
        GraphvizNotFoundError: ``dot`` is not installed (the message says how
            to install it).

    Example::

        g = viz.draw_graph(loss)
        viz.render(g, "docs/loss", format="png")   # writes docs/loss.png
    """
    out = Path(path)
    if out.suffix != f".{format}":
        out = out.with_name(out.name + f".{format}")
    source = graph
    if dpi is not None:
        source = graph.copy()
        source.graph_attr["dpi"] = str(dpi)
    try:
        data = graphviz.Digraph.pipe(source, format=format)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFoundError(INSTALL_HINT) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


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
        if v is None or v is False:
            continue  # defaults such as axis=None, keepdims=False only add noise
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
    """Turns the recorded graph into :class:`VizNode` / :class:`VizEdge` objects."""

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


# ------------------------------------------------------------------- emitting
_STYLE: dict[str, dict[str, str]] = {
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#fff2cc", "color": "#b7950b"},
    "tensor": {
        "shape": "box",
        "style": "rounded,filled",
        "fillcolor": "#ffffff",
        "color": "#999999",
        "fontsize": "9",
    },
    "output": {
        "shape": "box",
        "style": "rounded,filled,bold",
        "fillcolor": "#fdd0a2",
        "color": "#d94801",
    },
    "param": {"shape": "box", "style": "filled,bold", "fillcolor": "#c7e9c0", "color": "#238b45"},
    "leaf": {"shape": "box", "style": "filled", "fillcolor": "#c6dbef", "color": "#2171b5"},
    "const": {
        "shape": "box",
        "style": "filled,dashed",
        "fillcolor": "#f0f0f0",
        "color": "#969696",
        "fontsize": "9",
    },
    "group": {"shape": "box3d", "style": "filled", "fillcolor": "#dadaeb", "color": "#54278f"},
    "elided": {"shape": "box", "style": "dashed", "color": "#54278f"},
}

_EDGE_STOPS = ((0.0, (0xBD, 0xBD, 0xBD)), (0.5, (0xFD, 0x8D, 0x3C)), (1.0, (0xA5, 0x0F, 0x15)))
_FILL_STOPS = ((0.0, (0xF7, 0xF7, 0xF7)), (0.5, (0xFD, 0xD4, 0x9E)), (1.0, (0xEF, 0x65, 0x48)))


@functools.lru_cache(maxsize=4096)
def _ramp_cached(x: float, stops: tuple[tuple[float, tuple[int, int, int]], ...]) -> str:
    for (x0, c0), (x1, c1) in itertools.pairwise(stops):
        if x <= x1:
            f = (x - x0) / (x1 - x0)
            rgb = tuple(round(a + f * (b - a)) for a, b in zip(c0, c1))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#{:02x}{:02x}{:02x}".format(*stops[-1][1])


def _ramp(x: float, stops: tuple[tuple[float, tuple[int, int, int]], ...]) -> str:
    """The colour at ``x`` in [0, 1] of a piecewise-linear palette (cached: 1/1000 steps)."""
    return _ramp_cached(round(min(max(x, 0.0), 1.0), 3), stops)


def _level(norm: float | None, rng: tuple[float, float] | None) -> float | None:
    """Position of a gradient norm on the colour scale: 0 (at or below low) .. 1 (high), log."""
    if norm is None or rng is None:
        return None
    lo, hi = rng
    if norm <= 0:
        return 0.0
    return min(max(math.log(norm / lo) / math.log(hi / lo), 0.0), 1.0)


def _attrs(**kv: Any) -> str:
    return " ".join(f'{k}="{v}"' for k, v in kv.items() if v is not None)


def _emit(
    model: GraphModel,
    b: _Builder,
    *,
    rankdir: str,
    title: str | None,
    grad_flow: bool,
    wrap: int | None = None,
) -> GraphDrawing:
    """Write the DOT text. Lines are formatted here (not with ``Digraph.node``): 10x faster."""
    rng = model.grad_range if grad_flow else None
    g = GraphDrawing(name="tinygrad_rnn")
    g.model = model
    g.graph_attr.update(
        rankdir=rankdir, fontname="Helvetica", fontsize="11", newrank="true", ranksep="0.3"
    )
    if title:
        g.graph_attr.update(label=_safe(title), labelloc="t", fontsize="14")
    g.node_attr.update(fontname="Helvetica", fontsize="10", height="0.3")
    g.edge_attr.update(fontname="Helvetica", fontsize="8", arrowsize="0.6", color="#555555")
    if model.direction == "backward":
        # Same layout, arrowheads at the producing end: the way gradients travel.
        g.edge_attr["dir"] = "back"

    # Boxes: every prefix of every node's box path, siblings in time order.
    seen: dict[ScopePath, int] = {}
    for n in model.nodes:
        for k in range(1, len(n.cluster) + 1):
            seen.setdefault(n.cluster[:k], len(seen))

    def rank(q: ScopePath) -> tuple[int, int]:
        m = _STEP_RE.match(q[-1])
        return (0, int(m.group(1))) if m else (1, seen[q])

    paths = sorted(seen, key=lambda p: tuple(rank(p[: k + 1]) for k in range(len(p))))
    names = {p: f"cluster_{i}" for i, p in enumerate(paths)}
    for p in paths:
        m = _STEP_RE.match(p[-1])
        step = int(m.group(1)) if m else None
        label = p[-1]
        norm = model.step_grad_norms.get((p[:-1], step)) if step is not None else None
        if grad_flow and norm is not None:
            label += f"  ‖g‖ {_fmt(norm)}"
        model.clusters.append(VizCluster(p, names[p], label, step, norm))

    # An invisible box around the steps of each module: the target of bundled edges.
    step_groups = {nid: m for nid, m in b.group_module.items()}
    modules_with_steps = {c.path[:-1] for c in model.clusters if c.step is not None}
    modules_with_steps.update(step_groups.values())
    wrappers = {
        m: graphviz.Digraph(name=f"cluster_steps_{i}")
        for i, m in enumerate(sorted(modules_with_steps, key=lambda m: (len(m), m)))
    }
    for w in wrappers.values():
        w.graph_attr.update(label="", peripheries="0", margin="4")

    body: dict[ScopePath, list[str]] = {p: [] for p in [(), *paths]}
    for n in model.nodes:
        kv = {"label": n.label, **_STYLE[n.kind]}
        lev = _level(n.grad_norm, rng)
        if lev is not None and n.kind in ("group", "elided"):
            kv.update(fillcolor=_ramp(lev, _FILL_STOPS), style="filled")
        elif lev is not None and n.kind in ("tensor", "output", "param", "leaf"):
            kv.update(color=_ramp(lev, _EDGE_STOPS), penwidth="2")
        if n.scope:
            kv["tooltip"] = _safe("/".join(n.scope))
        line = f"\t{n.id} [{_attrs(**kv)}]\n"
        if n.id in step_groups:
            wrappers[step_groups[n.id]].body.append(line)
        else:
            body[n.cluster].append(line)

    if wrap:
        # rank=same rows: dot puts each row on one rank and the step->step edges
        # between them, so the steps read like lines of text.
        per_module: dict[ScopePath, list[tuple[int, str]]] = {}
        for nid, mod in step_groups.items():
            steps = b._steps_of(nid)
            per_module.setdefault(mod, []).append((min(steps) if steps else 0, nid))
        for mod, items in per_module.items():
            ids = [nid for _, nid in sorted(items)]
            for k in range(0, len(ids), wrap):
                wrappers[mod].body.append("\t{rank=same; " + "; ".join(ids[k : k + wrap]) + "}\n")

    subs: dict[ScopePath, graphviz.Digraph] = {}
    for c in model.clusters:
        sg = graphviz.Digraph(name=c.name)
        if c.step is not None:
            fill = "#f4f8fc"
            if rng is not None and c.grad_norm is not None:
                fill = _ramp(_level(c.grad_norm, rng) or 0.0, _FILL_STOPS)
            sg.graph_attr.update(
                label=_safe(c.label), style="rounded,filled", fillcolor=fill, color="#9ecae1"
            )
        else:
            sg.graph_attr.update(
                label=_safe(c.label), style="rounded", color="#807dba", fontcolor="#54278f"
            )
        sg.body.extend(body[c.path])
        subs[c.path] = sg

    def container(path: ScopePath) -> graphviz.Digraph:
        return subs[path] if path else g

    # Nest innermost first: graphviz's subgraph() copies a subgraph's lines at
    # call time, so each box must be complete before its parent takes it in.
    depth = max([len(c.path) for c in model.clusters] + [len(m) + 1 for m in wrappers] + [0])
    for d in range(depth, 0, -1):
        for c in model.clusters:
            if len(c.path) == d:
                parent = c.path[:-1]
                target = wrappers[parent] if c.step is not None else container(parent)
                target.subgraph(subs[c.path])
        for mod, w in wrappers.items():
            if len(mod) == d - 1:
                container(mod).subgraph(w)
    g.body.extend(body[()])
    if not model.collapsed:
        g.body.extend(_step_order_edges(model))

    wrapper_names = {m: w.name for m, w in wrappers.items()}
    if any(e.lhead_module is not None or e.ltail_module is not None for e in model.edges):
        g.graph_attr["compound"] = "true"
    for e in model.edges:
        ekv: dict[str, str] = {}
        if e.label:
            ekv["label"] = e.label
        if e.lhead_module is not None:
            e.lhead = ekv["lhead"] = wrapper_names[e.lhead_module]
        if e.ltail_module is not None:
            e.ltail = ekv["ltail"] = wrapper_names[e.ltail_module]
        if rng is not None:
            lev = _level(e.grad_norm, rng)
            if lev is None or not e.grad_norm:
                ekv.update(color="#cccccc", style="dashed")  # no gradient flows here
            else:
                color = _ramp(lev, _EDGE_STOPS)
                ekv.update(color=color, fontcolor=color, penwidth=f"{0.6 + 3.4 * lev:.2f}")
        attrs = f" [{_attrs(**ekv)}]" if ekv else ""
        g.body.append(f"\t{e.src} -> {e.dst}{attrs}\n")
    if rng is not None:
        _legend(g, rng, model.direction)
    return g


def _step_order_edges(model: GraphModel) -> list[str]:
    """Invisible edges that keep the steps of a module in a row, one box after another.

    Without them dot ranks an op by its inputs only, so ``gi[t]`` (which needs
    nothing from step t-1) starts at the far left and every step box stretches
    over the whole width: a staircase of overlapping boxes. An edge from each
    node that ends step t-1 to each node that starts step t forbids that. The
    steps are taken in the order they were computed (reverse layers run
    t=T-1..0), which is the order of their last node in the drawing.
    """
    by_box: dict[ScopePath, list[str]] = {}
    last: dict[ScopePath, int] = {}
    for k, n in enumerate(model.nodes):
        if n.cluster and _STEP_RE.match(n.cluster[-1]):
            by_box.setdefault(n.cluster, []).append(n.id)
            last[n.cluster] = k
    if len(by_box) < 2:
        return []
    box_of = {nid: box for box, ids in by_box.items() for nid in ids}
    has_in: set[str] = set()
    has_out: set[str] = set()
    for e in model.edges:
        if box_of.get(e.src) is not None and box_of.get(e.src) == box_of.get(e.dst):
            has_out.add(e.src)
            has_in.add(e.dst)
    per_module: dict[ScopePath, list[ScopePath]] = {}
    for box in sorted(by_box, key=last.__getitem__):
        per_module.setdefault(box[:-1], []).append(box)
    lines = []
    for boxes in per_module.values():
        for prev, cur in itertools.pairwise(boxes):
            ends = [n for n in by_box[prev] if n not in has_out]
            starts = [n for n in by_box[cur] if n not in has_in]
            lines += [f"\t{a} -> {b} [style=invis]\n" for a in ends for b in starts]
    return lines


def _legend(g: graphviz.Digraph, rng: tuple[float, float], direction: str) -> None:
    lo, hi = rng
    sg = graphviz.Digraph(name="cluster_legend")
    arrow = "← gradients flow back" if direction == "backward" else "gradient norm (log scale)"
    sg.graph_attr.update(label=arrow, style="rounded", color="#bdbdbd", fontsize="9")
    prev = None
    for i, lev in enumerate((1.0, 2 / 3, 1 / 3, 0.0)):
        value = lo * (hi / lo) ** lev
        nid = f"legend{i}"
        sg.body.append(
            f'\t{nid} [label="‖g‖ {_fmt(value)}" shape=box style=filled fontsize=8 '
            f'fillcolor="{_ramp(lev, _FILL_STOPS)}" color="{_ramp(lev, _EDGE_STOPS)}" penwidth=2]\n'
        )
        if prev is not None:
            sg.body.append(f"\t{prev} -> {nid} [style=invis]\n")
        prev = nid
    g.subgraph(sg)
