"""The drawn graph as plain Python objects, and the drawing that carries them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import graphviz

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
            ``"output"`` (a tensor passed to [`draw_graph`][tinygrad_rnn.viz.draw_graph]),
            ``"param"`` (a named parameter), ``"leaf"`` (another leaf that requires grad, e.g. an
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
    """What [`draw_graph`][tinygrad_rnn.viz.draw_graph] drew, as plain Python objects (handy in
    tests and notebooks).

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
    """A ``graphviz.Digraph`` that also carries [`GraphModel`][tinygrad_rnn.viz.GraphModel] as
    ``.model``.

    Everything of graphviz works: ``.source`` (DOT text), ``.render(...)``,
    ``.pipe(format="svg")`` and inline display in Jupyter (graphviz's
    ``_repr_mimebundle_``). When ``dot`` is missing, rendering raises
    [`GraphvizNotFoundError`][tinygrad_rnn.viz.GraphvizNotFoundError] with install instructions, and
    Jupyter shows those instructions as text instead of a traceback.
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
