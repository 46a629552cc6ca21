"""The entry points: record scopes, draw the graph behind a tensor, render it with dot."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import graphviz

from tinygrad_rnn.scope import record_scopes
from tinygrad_rnn.tensor import Tensor
from tinygrad_rnn.viz.build import _Builder, _flatten_outputs, _param_names
from tinygrad_rnn.viz.emit import _emit
from tinygrad_rnn.viz.model import INSTALL_HINT, GraphDrawing, GraphvizNotFoundError


# ------------------------------------------------------------------ public API
@contextmanager
def trace() -> Iterator[None]:
    """Record which module and time step makes each op, so drawings can box them.

    Ops recorded inside ``scope(...)`` blocks (``nn`` modules and recurrent
    layers open them for you) get ``node.scope``; outside ``trace()`` scopes
    cost nothing and are not stored. This is
    [`tinygrad_rnn.scope.record_scopes`][tinygrad_rnn.scope.record_scopes] under a name that says
    what it is for.

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
            are still drawn one by one. Needs scopes, see [`trace`][tinygrad_rnn.viz.trace].
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
            computed with [`tinygrad_rnn.grad`][tinygrad_rnn.grad] on a graph that must not
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
        A [`GraphDrawing`][tinygrad_rnn.viz.GraphDrawing] (a ``graphviz.Digraph``) whose ``.model``
        holds the nodes, edges and boxes drawn.

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
    if (collapse or max_steps is not None) and not builder.any_scope and builder.n_ops:
        # Scopes are recorded only inside ``viz.trace()`` (recording them always would cost
        # every op); without them there are no steps to collapse or elide.
        option = "collapse=True" if collapse else f"max_steps={max_steps}"
        raise ValueError(
            f"draw_graph: {option} needs the module and step scopes, and this graph was "
            "recorded without them; run the forward pass inside `with viz.trace(): ...` and "
            "draw the loss it returns"
        )
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
        graph: what [`draw_graph`][tinygrad_rnn.viz.draw_graph] returned (any ``graphviz.Digraph``
            works).
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
