"""Build the pictures shown in ``docs/gallery.md``.

Run from the repository root (needs Graphviz's ``dot``)::

    python docs/gallery/make_gallery.py            # writes docs/gallery/*.svg and *.png

Every picture is deterministic (fixed seeds). The script also prints the
per-step gradient norms behind the gradient-flow pictures, which the gallery
page quotes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from tinygrad_rnn import nn, viz  # noqa: E402
from tinygrad_rnn.tensor import Tensor  # noqa: E402

OUT = Path(__file__).resolve().parent


class SeqModel(nn.Module):
    """A recurrent layer and a linear head read at the last step: ``(T, B, D) -> (B, 1)``."""

    def __init__(self, kind: str, input_size: int, hidden: int, rng: np.random.Generator) -> None:
        super().__init__()
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM}[kind]
        self.kind = kind
        setattr(self, kind, layer(input_size, hidden, dtype=np.float64, rng=rng))
        self.head = nn.Linear(hidden, 1, dtype=np.float64, rng=rng)

    def forward(self, x: Any) -> Tensor:
        out, _ = getattr(self, self.kind)(x)
        return self.head(out[-1])


def memory_task(
    kind: str, T: int, hidden: int = 16, forget_bias: float | None = None, seed: int = 0
) -> tuple[SeqModel, Tensor]:
    """Recall the first input after T steps: the loss sees only the last step's output.

    That is the setting where gradients must travel back through all T steps,
    so whatever vanishes on the way shows up as pale early steps.
    """
    rng = np.random.default_rng(seed)
    model = SeqModel(kind, 4, hidden, rng)
    if forget_bias is not None:
        lstm: Any = dict(model.named_children())["lstm"]
        # PyTorch's gate order is (input, forget, cell, output): rows H..2H are the forget gate.
        lstm.bias_ih_l0.data[hidden : 2 * hidden] = forget_bias
        lstm.bias_hh_l0.data[hidden : 2 * hidden] = 0.0
    x = np.random.default_rng(100).standard_normal((T, 8, 4))
    target = x[0, :, :1]
    with viz.trace():
        loss = ((model(x) - target) ** 2).mean()
    return model, loss


def save(graph: viz.GraphDrawing, out: Path, name: str) -> None:
    """Write ``out/name.svg`` and ``out/name.png`` and print the drawing's size."""
    viz.render(graph, out / name, format="svg")
    viz.render(graph, out / name, format="png")
    m = graph.model
    print(f"{name:32s} {len(m.nodes):5d} nodes {len(m.edges):5d} edges  {m.n_ops:6d} ops")


def step_norms(graph: viz.GraphDrawing) -> list[float]:
    """The per-step gradient norms of the (single) recurrent layer, in time order."""
    items = sorted(graph.model.step_grad_norms.items(), key=lambda kv: kv[0][1])
    return [v for _, v in items]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    # 1. Three ops, every value and gradient written out.
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="x")
    W = Tensor(rng.standard_normal((3, 4)), requires_grad=True, name="W")
    b = Tensor(np.zeros(4), requires_grad=True, name="b")
    loss = (x @ W + b).tanh().sum()
    loss.backward(retain_graph=True)  # keep the graph so it can still be drawn
    save(viz.draw_graph(loss, show_values=True, show_grads=True), out, "affine_values_grads")

    # 2. Full graphs of small unrolled nets: one box per time step.
    model, loss = memory_task("rnn", T=4, hidden=4)
    save(viz.draw_graph(loss, params=model), out, "rnn_T4_full")
    model, loss = memory_task("lstm", T=3, hidden=4)
    save(viz.draw_graph(loss, params=model, show_tensors=False), out, "lstm_T3_ops")
    save(viz.draw_graph(loss, params=model, collapse=True), out, "lstm_T3_collapsed")

    # 3. A 200-step LSTM: 600 step ops (3 per step), drawn as 200 cells in rows of 20, and elided.
    model, loss = memory_task("lstm", T=200, hidden=8)
    save(viz.draw_graph(loss, params=model, collapse=True, wrap=20), out, "lstm_T200_collapsed")
    save(viz.draw_graph(loss, params=model, collapse=True, max_steps=8), out, "lstm_T200_elided")

    # 4. Gradient flow on the same task, T = 30, one colour scale for all three.
    T = 30
    nets = {
        "rnn_T30_gradflow": memory_task("rnn", T),
        "lstm_T30_gradflow": memory_task("lstm", T, forget_bias=1.0),
        "lstm_T30_default_init_gradflow": memory_task("lstm", T),
    }
    shared = (1e-7, 1.0)  # pale at 1e-7, dark red at 1
    for name, (model, loss) in nets.items():
        g = viz.draw_graph(
            loss, params=model, collapse=True, grad_flow=True, grad_range=shared, wrap=10
        )
        save(g, out, name)
        n = step_norms(g)
        print(f"    step-gradient norms t=0: {n[0]:.2e}  t=15: {n[15]:.2e}  t=29: {n[-1]:.2e}")

    # 5. Every op of a short RNN, arrows drawn the way gradients travel.
    model, loss = memory_task("rnn", T=5, hidden=4)
    save(
        viz.draw_graph(loss, params=model, grad_flow=True, direction="backward"),
        out,
        "rnn_T5_gradflow_backward",
    )


if __name__ == "__main__":
    main()
