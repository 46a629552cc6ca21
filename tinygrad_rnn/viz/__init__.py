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

Scopes are only recorded inside [`trace`][tinygrad_rnn.viz.trace]; without them the drawing has no
boxes but is otherwise complete. The graph must still be in memory when it is
drawn: ``backward()`` frees it, so draw first, or call
``backward(retain_graph=True)``.

Everything here walks the graph with explicit stacks, never recursion, so a
chain of 100,000 ops cannot hit Python's recursion limit.
"""

from tinygrad_rnn.viz.draw import draw_graph, render, trace
from tinygrad_rnn.viz.model import INSTALL_HINT as INSTALL_HINT
from tinygrad_rnn.viz.model import (
    GraphDrawing,
    GraphModel,
    GraphvizNotFoundError,
    VizCluster,
    VizEdge,
    VizNode,
)
from tinygrad_rnn.viz.model import NodeKind as NodeKind
from tinygrad_rnn.viz.model import ScopePath as ScopePath

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
