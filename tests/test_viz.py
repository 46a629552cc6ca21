"""Graph drawing (:mod:`tinygrad_rnn.viz`): structure first, then rendering through real `dot`.

Structure is checked on both representations a drawing has: the Python model
(``g.model``: nodes, edges, boxes) and the DOT text (``g.source``, parsed here),
against counts worked out by hand for small graphs.
"""

from __future__ import annotations

import re
import shutil
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn import nn, viz
from tinygrad_rnn.scope import scope
from tinygrad_rnn.tensor import Tensor

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")

_NODE = re.compile(r"^\s*(n\d+) \[(.*)\]$", re.M)
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$", re.M)


def dot_nodes(src: str) -> dict[str, str]:
    """``{node id: attribute text}`` of the node statements of the drawn graph (no legend)."""
    return {m.group(1): m.group(2) for m in _NODE.finditer(src)}


def dot_edges(src: str) -> list[tuple[str, str, str]]:
    """Visible edges ``(tail, head, attributes)`` (layout-only invisible edges left out)."""
    out = []
    for m in _EDGE.finditer(src):
        attrs = m.group(3) or ""
        if "invis" not in attrs:
            out.append((m.group(1), m.group(2), attrs))
    return out


def label_of(attrs: str) -> str:
    m = re.search(r'label="((?:[^"\\]|\\.)*)"', attrs)
    return m.group(1) if m else ""


def _randn(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def affine_tanh(x_grad: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``y = tanh(x W + b)`` with x (2, 3), W (3, 4), b (4,); returns ``(x, W, b, y)``."""
    x = Tensor(_randn(2, 3), requires_grad=x_grad, name="x")
    W = Tensor(_randn(3, 4, seed=1), requires_grad=True, name="W")
    b = Tensor(_randn(4, seed=2), requires_grad=True, name="b")
    return x, W, b, (x @ W + b).tanh()


def hand_rnn(
    T: int, H: int = 4, D: int = 3, B: int = 2, w_scale: float = 0.5, seed: int = 0
) -> tuple[Tensor, dict[str, Tensor]]:
    """``h = tanh(x_t U + h W + b)`` for T steps in scope("rnn")/scope("t=K"); loss on h_T."""
    rng = np.random.default_rng(seed)
    U = Tensor(rng.standard_normal((D, H)), requires_grad=True, name="U")
    W = Tensor(w_scale * rng.standard_normal((H, H)), requires_grad=True, name="W")
    b = Tensor(np.zeros(H), requires_grad=True, name="b")
    xs = rng.standard_normal((T, B, D))
    h = Tensor(np.zeros((B, H)))
    with viz.trace():
        with scope("rnn"):
            for t in range(T):
                with scope(f"t={t}"):
                    h = (Tensor(xs[t]) @ U + h @ W + b).tanh()
        loss = (h**2).sum()
    return loss, {"rnn.U": U, "rnn.W": W, "rnn.b": b}


# --------------------------------------------------------------- small graphs
def test_affine_tanh_has_one_node_per_op_and_per_tensor() -> None:
    *_, y = affine_tanh()
    g = viz.draw_graph(y)
    m = g.model
    # ops: matmul, add, tanh; tensors: x, W, b and the three results.
    assert [n.op for n in m.of_kind("op")] == ["matmul", "add", "tanh"]
    assert len(m.of_kind("leaf")) == 3
    assert len(m.of_kind("tensor")) == 2 and len(m.of_kind("output")) == 1
    assert len(m.nodes) == 9 and m.n_ops == 3 and m.n_tensors == 6
    # edges: x->matmul, W->matmul, matmul->r1, r1->add, b->add, add->r2, r2->tanh, tanh->y.
    assert len(m.edges) == 8
    label = {n.id: n.label.split("\\n")[0] for n in m.nodes}
    named = {(label[e.src], label[e.dst]) for e in m.edges}
    assert {("x", "matmul"), ("W", "matmul"), ("b", "add")} <= named
    assert {("matmul", "(2, 4) float64"), ("tanh", "output")} <= named
    # The DOT text says the same.
    src = g.source
    assert len(dot_nodes(src)) == 9
    assert len(dot_edges(src)) == 8
    assert "subgraph" not in src  # no scopes recorded: no boxes


def test_labels_carry_names_shapes_and_dtypes() -> None:
    *_, y = affine_tanh()
    m = viz.draw_graph(y).model
    by_name = {n.name: n for n in m.nodes if n.name}
    assert by_name["W"].label == "W\\n(3, 4) float64"
    assert by_name["b"].shape == (4,) and by_name["b"].dtype == "float64"
    assert m.of_kind("output")[0].label == "output\\n(2, 4) float64"
    y32 = Tensor(np.ones((5,), np.float32), requires_grad=True).sum()
    assert viz.draw_graph(y32).model.of_kind("output")[0].label == "output\\nscalar float32"


def test_input_without_grad_is_drawn_as_a_constant() -> None:
    *_, y = affine_tanh(x_grad=False)
    m = viz.draw_graph(y).model
    (const,) = m.of_kind("const")
    assert const.shape == (2, 3)
    assert len(m.nodes) == 9 and len(m.edges) == 8
    assert m.n_constants == 1 and m.n_tensors == 5


def test_scalar_constants_are_folded_into_the_op() -> None:
    x = Tensor(_randn(3), requires_grad=True)
    m = viz.draw_graph((x * 2.0).sum()).model
    assert not m.of_kind("const")
    (mul,) = [n for n in m.of_kind("op") if n.op == "mul"]
    assert mul.label == "mul\\nconst 2"
    assert len(m.nodes) == 5 and len(m.edges) == 4


def test_a_tensor_used_twice_by_one_op_is_one_edge_counted_twice() -> None:
    x = Tensor(_randn(3), requires_grad=True, name="x")
    m = viz.draw_graph(x * x).model
    (e,) = [e for e in m.edges if m.node(e.src).name == "x"]
    assert e.count == 2 and e.label == "×2"


def test_op_parameters_are_shown() -> None:
    x = Tensor(_randn(2, 3), requires_grad=True)
    m = viz.draw_graph(x[:, 1].sum(axis=0)).model
    ops = {n.op: n.label for n in m.of_kind("op")}
    assert ops["getitem"] == "getitem\\n[:, 1]"
    assert ops["sum"] == "sum\\naxis=0"


def test_params_mapping_names_the_leaves_and_styles_them_apart() -> None:
    _, W, b, y = affine_tanh()
    g = viz.draw_graph(y, params={"layer.weight": W, "layer.bias": b})
    m = g.model
    assert sorted(n.name or "" for n in m.of_kind("param")) == ["layer.bias", "layer.weight"]
    assert [n.name for n in m.of_kind("leaf")] == ["x"]
    nodes = dot_nodes(g.source)
    param_id = next(n.id for n in m.of_kind("param") if n.name == "layer.weight")
    leaf_id = m.of_kind("leaf")[0].id
    inter_id = m.of_kind("tensor")[0].id
    fill = {k: re.search(r'fillcolor="([^"]+)"', nodes[k]).group(1) for k in nodes}  # type: ignore[union-attr]
    assert len({fill[param_id], fill[leaf_id], fill[inter_id]}) == 3


def test_several_outputs_and_a_lone_leaf() -> None:
    x = Tensor(_randn(3), requires_grad=True, name="x")
    a, c = x.tanh(), x.exp()
    m = viz.draw_graph(a, [c, a]).model
    assert len(m.of_kind("output")) == 2 and len(m.of_kind("leaf")) == 1
    lone = viz.draw_graph(x).model
    assert len(lone.nodes) == 1 and not lone.edges


def test_bad_arguments_are_refused_clearly() -> None:
    x = Tensor(_randn(3), requires_grad=True)
    with pytest.raises(TypeError, match="Tensors"):
        viz.draw_graph(np.ones(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        viz.draw_graph()
    with pytest.raises(ValueError, match="direction"):
        viz.draw_graph(x, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grad_range"):
        viz.draw_graph(x, grad_range=(1.0, 0.1))
    with pytest.raises(TypeError, match="params"):
        viz.draw_graph(x, params={"w": np.ones(3)})


def test_backward_direction_points_edges_the_way_gradients_flow() -> None:
    *_, y = affine_tanh()
    fwd, bwd = viz.draw_graph(y), viz.draw_graph(y, direction="backward")
    assert "dir=back" in bwd.source and "dir=back" not in fwd.source
    assert dot_edges(bwd.source) == dot_edges(fwd.source)  # same graph, arrowheads reversed
    assert bwd.model.direction == "backward"


def test_show_tensors_false_draws_ops_only_with_shapes_on_edges() -> None:
    *_, y = affine_tanh()
    m = viz.draw_graph(y, show_tensors=False).model
    assert len(m.nodes) == 3 + 3 + 1  # ops, leaves, output
    assert len(m.edges) == 6
    assert "(2, 4)" in {e.label for e in m.edges}


# ------------------------------------------------------------- scopes and time
def test_trace_records_scopes_only_inside() -> None:
    x = Tensor(_randn(3), requires_grad=True)
    with viz.trace(), scope("m"), scope("t=2"):
        inside = x.tanh()
    with scope("m"):
        outside = x.tanh()
    assert inside._node is not None and inside._node.scope == ("m", "t=2")
    assert outside._node is not None and outside._node.scope is None


@pytest.mark.parametrize("T", [1, 5])
def test_hand_written_rnn_has_one_box_per_time_step(T: int) -> None:
    loss, params = hand_rnn(T)
    g = viz.draw_graph(loss, params=params, bundle=None)
    m = g.model
    steps = m.step_clusters()
    assert [c.label for c in steps] == [f"t={t}" for t in range(T)]
    assert all(c.path == ("rnn", f"t={t}") for t, c in enumerate(steps))
    # 5 ops per step (2 matmul, 2 add, tanh) + pow and sum for the loss.
    assert m.n_ops == 5 * T + 2
    per_step = [n for n in m.of_kind("op") if n.step is not None]
    assert len(per_step) == 5 * T
    assert all(n.cluster == ("rnn", f"t={n.step}") for n in per_step)
    # Nodes: U, W, b; x_t per step and h0 (constants); an op and its result per op.
    assert len(m.nodes) == 3 + T + 1 + 2 * (5 * T + 2)
    # Edges per step: 5 op->result, 9 inputs; the loss: 2 + 2.
    assert len(m.edges) == 14 * T + 4
    src = g.source
    assert len(dot_nodes(src)) == len(m.nodes)
    assert len(dot_edges(src)) == len(m.edges)
    for t in range(T):
        assert f'label="t={t}"' in src
    assert len(re.findall(r"subgraph cluster_\d+ \{", src)) == 1 + T  # rnn box + steps
    names = {n.name for n in m.of_kind("param")}
    assert names == {"rnn.U", "rnn.W", "rnn.b"}
    # Weights used at every step live in the rnn box, a step's input in its step.
    assert {n.cluster for n in m.of_kind("param")} == {("rnn",) if T > 1 else ("rnn", "t=0")}
    assert {n.cluster for n in m.of_kind("const")} == {("rnn", "t=0")} | {
        ("rnn", f"t={t}") for t in range(T)
    }


def test_steps_are_laid_out_in_a_row() -> None:
    """Invisible edges chain step boxes so no step starts before the previous one ended."""
    loss, _ = hand_rnn(4)
    src = viz.draw_graph(loss).source
    invisible = [m for m in _EDGE.finditer(src) if "invis" in (m.group(3) or "")]
    assert invisible  # present, and not counted as graph edges (see the test above)


def test_collapse_draws_exactly_one_node_per_step() -> None:
    T = 6
    loss, params = hand_rnn(T)
    g = viz.draw_graph(loss, params=params, collapse=True)
    m = g.model
    cells = m.of_kind("group")
    assert len(cells) == T
    assert sorted(n.step for n in cells) == list(range(T))  # type: ignore[type-var]
    assert all(n.n_ops == 5 for n in cells)
    assert cells[0].label.split("\\n")[0].startswith("rnn t=")
    assert "5 ops: matmul, add, tanh" in cells[0].label
    assert sum(n.n_ops for n in m.nodes if n.kind in ("group", "op")) == m.n_ops
    # The recurrence: one edge from step t to step t+1, labelled with h's shape.
    step_of = {n.id: n.step for n in cells}
    chain = sorted(
        (step_of[e.src], step_of[e.dst]) for e in m.edges if e.src in step_of and e.dst in step_of
    )
    assert chain == [(t, t + 1) for t in range(T - 1)]
    assert all(e.label == "(2, 4)" for e in m.edges if e.src in step_of and e.dst in step_of)
    assert len(dot_nodes(g.source)) == len(m.nodes)
    assert not m.step_clusters()


def test_max_steps_keeps_first_and_last_steps_and_elides_the_middle() -> None:
    T = 20
    loss, _ = hand_rnn(T)
    m = viz.draw_graph(loss, collapse=True, max_steps=6).model
    assert sorted(n.step for n in m.of_kind("group")) == [0, 1, 2, 17, 18, 19]  # type: ignore[type-var]
    (gap,) = m.of_kind("elided")
    assert gap.n_ops == 5 * 14 and "14 steps" in gap.label
    full = viz.draw_graph(loss, max_steps=4).model
    assert [c.step for c in full.step_clusters()] == [0, 1, 18, 19]
    assert full.of_kind("elided")[0].n_ops == 5 * 16
    with pytest.raises(ValueError, match="max_steps"):
        viz.draw_graph(loss, max_steps=1)


def test_weights_used_at_every_step_are_bundled_into_one_edge() -> None:
    T = 12
    loss, params = hand_rnn(T)
    g = viz.draw_graph(loss, params=params, bundle=8)
    m = g.model
    bundled = [e for e in m.edges if e.lhead is not None]
    assert sorted(m.node(e.src).name or "" for e in bundled) == ["rnn.U", "rnn.W", "rnn.b"]
    assert all(e.count == T and e.label == f"{T} steps" for e in bundled)
    assert "compound=true" in g.source and 'lhead="cluster_steps_' in g.source
    # A bundled weight must sit outside the box its edge points into.
    assert {n.cluster for n in m.of_kind("param")} == {("rnn",)}
    unbundled = viz.draw_graph(loss, params=params, bundle=None).model
    assert len(unbundled.edges) - len(m.edges) == 3 * (T - 1)


def test_oversized_graphs_are_refused_with_a_hint_and_never_recurse() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    h = x
    for _ in range(50_000):
        h = h.tanh()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)  # any recursion over the chain would fail at once
    try:
        with pytest.raises(ValueError, match=r"100,001 nodes.*viz\.trace.*collapse=True"):
            viz.draw_graph(h)
        g = viz.draw_graph(h, max_nodes=None)
    finally:
        sys.setrecursionlimit(limit)
    assert len(g.model.nodes) == 100_001 and len(g.model.edges) == 100_000
    assert g.source.count(" -> ") == 100_000


def test_a_long_traced_chain_collapses_to_a_small_picture() -> None:
    h = Tensor(np.ones(3), requires_grad=True)
    with viz.trace(), scope("chain"):
        for t in range(3000):
            with scope(f"t={t}"):
                h = h.tanh()
    with pytest.raises(ValueError, match="pass collapse=True"):
        viz.draw_graph(h, max_nodes=1000)
    m = viz.draw_graph(h, collapse=True, max_steps=10, max_nodes=1000).model
    assert len(m.of_kind("group")) == 10 and m.of_kind("elided")[0].n_ops == 2990


def test_freed_graph_gives_a_clear_error() -> None:
    *_, y = affine_tanh()
    loss = y.sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        viz.draw_graph(loss)


# --------------------------------------------------------------------- gradients
def test_show_grads_uses_leaf_grad_and_computes_intermediate_grads() -> None:
    x, W, b, y = affine_tanh()
    loss = y.sum()
    loss.backward(retain_graph=True)
    m = viz.draw_graph(loss, show_values=True, show_grads=True).model
    w_node = next(n for n in m.nodes if n.name == "W")
    assert W.grad is not None
    assert f"grad norm {np.linalg.norm(W.grad.data):.3g}" in w_node.label
    assert "value min" in w_node.label
    # The engine never stored d loss / d intermediate: viz computed them.
    made_by = {m.node(e.src).op: m.node(e.dst) for e in m.edges if m.node(e.src).kind == "op"}
    pre = 1 - np.tanh(x.data @ W.data + b.data) ** 2
    assert np.isclose(made_by["tanh"].grad_norm, np.sqrt(8))  # type: ignore[arg-type]
    assert np.isclose(made_by["add"].grad_norm, np.linalg.norm(pre))  # type: ignore[arg-type]
    assert np.isclose(made_by["matmul"].grad_norm, np.linalg.norm(pre))  # type: ignore[arg-type]
    assert "grad norm" in made_by["add"].label
    fresh = Tensor(np.ones(2), requires_grad=True, name="fresh")
    m2 = viz.draw_graph(fresh.sum(), show_grads=True).model
    assert "grad None" in m2.of_kind("leaf")[0].label


def test_a_layers_released_projection_is_drawn_as_released_and_still_gets_its_gradient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tinygrad_rnn import nn, tensor

    # Layers release projections of 16 KiB or more (an LSTM step its pre-activations and
    # the terms of its cell update too); these small ones as well, for the test.
    monkeypatch.setattr(tensor, "_RELEASE_MIN_BYTES", 0)
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(3, 2, dtype=np.float64, rng=rng)
    out, _ = lstm(rng.standard_normal((3, 1, 3)))
    m = viz.draw_graph(out.sum(), show_values=True, show_grads=True, grad_flow=True).model
    released = [n for n in m.nodes if "values released" in n.label]
    projection = [n for n in released if "(3, 1, 8) float64" in n.label]  # shape, dtype stay
    assert len(projection) == 1
    # Per step: z, its 4 slices, f*c and i*g (the state, gates and outputs keep theirs).
    assert len(released) == 1 + 3 * 7
    for n in released:
        assert "grad norm" in n.label  # computed by the rules, which need no values
        assert "value min" not in n.label


def test_edge_gradients_are_the_per_use_contributions() -> None:
    x = Tensor(_randn(3), requires_grad=True, name="x")
    y = Tensor(_randn(3, seed=1), requires_grad=True, name="y")
    out = (x * x + x * y).sum()
    m = viz.draw_graph(out, grad_flow=True).model
    xg = 2 * x.data + y.data  # d out / dx
    x_node = next(n for n in m.nodes if n.name == "x")
    assert np.isclose(x_node.grad_norm, np.linalg.norm(xg))  # type: ignore[arg-type]
    into = {m.node(e.dst).id: e for e in m.edges if e.src == x_node.id}
    norms = sorted(e.grad_norm for e in into.values())  # type: ignore[type-var]
    # x*x carries 2x (both uses on one edge), x*y carries y.
    assert np.allclose(norms, sorted([np.linalg.norm(2 * x.data), np.linalg.norm(y.data)]))


def test_grad_flow_shows_vanishing_gradients_in_a_small_weight_rnn() -> None:
    T = 12
    loss, params = hand_rnn(T, w_scale=0.1)
    g = viz.draw_graph(loss, params=params, grad_flow=True)
    norms = [g.model.step_grad_norms[(("rnn",), t)] for t in range(T)]
    assert norms[0] < norms[T // 2] < norms[-1]
    assert norms[0] < 1e-3 * norms[-1]
    boxes = {c.step: c for c in g.model.step_clusters()}
    assert boxes[0].grad_norm == norms[0] and "‖g‖" in boxes[0].label
    # Early boxes are paler (lower on the colour ramp) than late ones.
    fills = {
        int(t): c for c, t in re.findall(r'fillcolor="(#[0-9a-f]{6})" label="t=(\d+)', g.source)
    }
    # The ramp runs from near-white to red: the green channel falls as the norm grows.
    assert int(fills[0][3:5], 16) > int(fills[T - 1][3:5], 16)
    assert "legend0" in g.source
    collapsed = viz.draw_graph(loss, collapse=True, grad_flow=True).model
    cells = {n.step: n for n in collapsed.of_kind("group")}
    assert np.isclose(cells[0].grad_norm, norms[0])  # type: ignore[arg-type]
    assert cells[0].grad_norm < cells[T - 1].grad_norm  # type: ignore[operator]


def test_grad_flow_leaves_the_graph_usable_and_gradients_untouched() -> None:
    loss, params = hand_rnn(3)
    viz.draw_graph(loss, grad_flow=True)
    assert all(p.grad is None for p in params.values())
    loss.backward()  # the graph was retained
    assert all(p.grad is not None for p in params.values())


def test_grad_range_is_shared_between_drawings() -> None:
    loss, _ = hand_rnn(3)
    m = viz.draw_graph(loss, grad_flow=True, grad_range=(1e-8, 10.0)).model
    assert m.grad_range == (1e-8, 10.0)


# ------------------------------------------------------------------- nn layers
def _nn_model(kind: str, T: int, H: int = 4, seed: int = 0, w_scale: float | None = None):  # type: ignore[no-untyped-def]
    nn = pytest.importorskip("tinygrad_rnn.nn")
    rng = np.random.default_rng(seed)
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](3, H, dtype=np.float64, rng=rng)
    if w_scale is not None:
        layer.weight_hh_l0.data *= w_scale
    head = nn.Linear(H, 1, dtype=np.float64, rng=rng)

    class Net(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            setattr(self, kind, layer)
            self.head = head

        def forward(self, x):  # type: ignore[no-untyped-def]
            out, _ = getattr(self, kind)(x)
            return self.head(out[-1])

    net = Net()
    x = rng.standard_normal((T, 2, 3))
    with viz.trace():
        loss = (net(x) ** 2).mean()
    return net, loss


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_nn_layers_get_one_box_per_step_and_named_parameters(kind: str) -> None:
    T = 4
    net, loss = _nn_model(kind, T)
    g = viz.draw_graph(loss, params=net)
    m = g.model
    assert [c.step for c in m.step_clusters()] == list(range(T))
    assert {c.path[:-1] for c in m.step_clusters()} == {("net", kind, "l0")}
    names = {n.name for n in m.of_kind("param")}
    assert {f"{kind}.weight_ih_l0", f"{kind}.weight_hh_l0", "head.weight", "head.bias"} <= names
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    w_ih = next(n for n in m.of_kind("param") if n.name == f"{kind}.weight_ih_l0")
    assert w_ih.label == f"{kind}.weight_ih_l0\\n({gates * 4}, 3) float64"
    assert len(dot_nodes(g.source)) == len(m.nodes)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_nn_layers_collapse_to_exactly_T_cells(kind: str) -> None:
    T = 30
    net, loss = _nn_model(kind, T)
    m = viz.draw_graph(loss, params=net, collapse=True).model
    cells = m.of_kind("group")
    step_cells = [n for n in cells if n.step is not None]
    assert sorted(n.step for n in step_cells) == list(range(T))  # type: ignore[type-var]
    assert len({n.n_ops for n in step_cells}) == 1  # every step runs the same ops
    assert sum(n.n_ops for n in m.nodes if n.kind in ("group", "op")) == m.n_ops
    assert step_cells[0].label.startswith(f"{kind}.l0 t=")
    # The per-step input projection and W_hhᵀ come from one place: one bundled edge.
    assert any(e.lhead is not None and e.label == f"{T} steps" for e in m.edges)


def test_nn_rnn_with_small_recurrent_weight_loses_gradient_over_time() -> None:
    T = 15
    net, loss = _nn_model("rnn", T, w_scale=0.2)
    m = viz.draw_graph(loss, params=net, collapse=True, grad_flow=True).model
    module = ("net", "rnn", "l0")
    first, last = m.step_grad_norms[(module, 0)], m.step_grad_norms[(module, T - 1)]
    assert first < last
    assert first < 1e-2 * last


# -------------------------------------------------------------------- rendering
@needs_dot
def test_svg_is_xml_with_the_labels(tmp_path: Path) -> None:
    loss, params = hand_rnn(3)
    path = viz.render(viz.draw_graph(loss, params=params), tmp_path / "rnn", format="svg")
    assert path == tmp_path / "rnn.svg"
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    texts = {t.text for t in root.iter() if t.tag.endswith("text")}
    assert {"matmul", "tanh", "t=0", "t=2", "rnn.W", "(4, 4) float64"} <= texts


@needs_dot
def test_png_has_signature_and_sane_size(tmp_path: Path) -> None:
    loss, _ = hand_rnn(3)
    data = viz.render(viz.draw_graph(loss, collapse=True), tmp_path / "g.png", "png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 50 < width < 20_000 and 20 < height < 20_000


@needs_dot
def test_pdf_and_graphviz_own_render(tmp_path: Path) -> None:
    *_, y = affine_tanh()
    g = viz.draw_graph(y)
    assert viz.render(g, tmp_path / "g", format="pdf").read_bytes()[:4] == b"%PDF"
    out = g.render(tmp_path / "own", format="svg")  # graphviz's API works as usual
    assert Path(out).read_bytes().lstrip().startswith(b"<?xml")


@needs_dot
def test_jupyter_display_and_copy(tmp_path: Path) -> None:
    *_, y = affine_tanh()
    g = viz.draw_graph(y)
    bundle = g._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]
    assert g.copy().model is g.model


def test_missing_dot_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    *_, y = affine_tanh()
    g = viz.draw_graph(y)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` anywhere
    with pytest.raises(viz.GraphvizNotFoundError) as err:
        viz.render(g, tmp_path / "g", format="svg")
    message = str(err.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(viz.GraphvizNotFoundError):
        g.pipe(format="png")
    text = g._repr_mimebundle_()["text/plain"]
    assert "apt-get install graphviz" in text and "digraph" in text
    assert g.source.startswith("digraph")  # DOT needs nothing installed


def test_wrap_lays_collapsed_steps_out_in_rows() -> None:
    T = 12
    loss, _ = hand_rnn(T)
    g = viz.draw_graph(loss, collapse=True, wrap=5)
    rows = re.findall(r"\{rank=same; ([^}]*)\}", g.source)
    assert [len(r.split("; ")) for r in rows] == [5, 5, 2]
    first_row = {g.model.node(i).step for i in rows[0].split("; ")}
    assert first_row == {0, 1, 2, 3, 4}
    assert "rankdir=TB" in g.source
    with pytest.raises(ValueError, match="wrap"):
        viz.draw_graph(loss, collapse=True, wrap=0)


@pytest.mark.parametrize("option", [{"collapse": True}, {"max_steps": 2}])
def test_collapse_without_recorded_scopes_says_to_use_trace(option: dict) -> None:
    rnn = nn.RNN(2, 3, dtype=np.float64)
    out, _ = rnn(np.ones((4, 1, 2)))  # recorded outside viz.trace(): no step scopes
    with pytest.raises(ValueError, match=r"with viz\.trace\(\)"):
        viz.draw_graph(out.sum(), **option)
    with viz.trace():
        out, _ = rnn(np.ones((4, 1, 2)))
    assert viz.draw_graph(out.sum(), **option).source  # the same graph, with scopes
