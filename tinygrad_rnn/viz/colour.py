"""Gradient-flow colouring: the palettes, where a norm falls on them, and the legend."""

from __future__ import annotations

import functools
import itertools
import math

import graphviz

from tinygrad_rnn.viz.labels import _fmt

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
