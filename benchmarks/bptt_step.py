"""One BPTT training step (forward over T + full backward, no update) against the numpy floor.

The model: one-hot inputs over V symbols, an ``nn.RNN`` (tanh) or ``nn.LSTM`` of hidden size
H, an ``nn.Linear(H, V)`` head on every step, cross-entropy summed over time and batch. The
project's step and the hand-written numpy floor (``numpy_floor.py``) run round-robin in one
process, so machine noise hits both alike; the table reports medians, min–max and the ratio.

    python benchmarks/bptt_step.py                      # all sizes, float32, markdown table
    python benchmarks/bptt_step.py --sizes S --models lstm --dtype float64 --repeats 50
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy_floor  # noqa: E402

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import functional as F  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402

SIZES = {  # B, H, V, T
    "S": (1, 100, 65, 25),
    "M": (32, 128, 65, 50),
    "L": (64, 512, 128, 64),
}


def make_problem(model: str, size: str, dtype: np.dtype, seed: int = 0):
    """The project's step function, the floor's, and a check that both agree."""
    B, H, V, T = SIZES[size]
    rng = np.random.default_rng(seed)
    layer_cls = nn.LSTM if model == "lstm" else nn.RNN
    rnn = layer_cls(V, H, dtype=dtype, rng=rng)
    head = nn.Linear(H, V, dtype=dtype, rng=rng)
    tokens = rng.integers(0, V, (T, B))
    targets = rng.integers(0, V, (T, B))
    xs = np.eye(V, dtype=dtype)[tokens]  # one-hot (T, B, V)
    params = [*rnn.parameters(), *head.parameters()]

    def ours() -> float:
        for p in params:
            p.grad = None
        out, _ = rnn(xs)
        loss = F.cross_entropy(head(out), targets, reduction="sum")
        loss.backward()
        return loss.item()

    floor_p = {
        "W_ih": rnn.weight_ih_l0.data,
        "W_hh": rnn.weight_hh_l0.data,
        "b_ih": rnn.bias_ih_l0.data,
        "b_hh": rnn.bias_hh_l0.data,
        "W_y": head.weight.data,
        "b_y": head.bias.data,
    }
    floor_fn = numpy_floor.lstm_step if model == "lstm" else numpy_floor.rnn_step

    def floor() -> float:
        return floor_fn(floor_p, xs, targets)["loss"]

    def agree() -> float:
        """Largest relative difference between the two implementations' gradients."""
        ours()
        ref = floor_fn(floor_p, xs, targets)
        pairs = [
            (rnn.weight_ih_l0.grad.data, ref["W_ih"]),
            (rnn.weight_hh_l0.grad.data, ref["W_hh"]),
            (rnn.bias_ih_l0.grad.data, ref["b"]),
            (head.weight.grad.data, ref["W_y"]),
            (head.bias.grad.data, ref["b_y"]),
        ]
        return max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in pairs)

    return ours, floor, agree


def measure(fns: dict[str, Callable[[], float]], repeats: int, warmup: int = 2) -> dict:
    """Round-robin timing: each repeat runs every function once, in turn."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--models", default="rnn,lstm")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=0, help="0: by size (S 200, M 30, L 8)")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}; numpy {np.__version__}; "
          f"tinygrad_rnn {tg.__version__}; dtype {dtype}")
    print()
    print("| model | size (B,H,V,T) | floor ms (min–max) | ours ms (min–max) | ratio | grad diff |")
    print("|---|---|---:|---:|---:|---:|")
    for model in args.models.split(","):
        for size in args.sizes.split(","):
            ours, floor, agree = make_problem(model, size, dtype)
            diff = agree()
            repeats = args.repeats or {"S": 200, "M": 30, "L": 8}[size]
            t = measure({"floor": floor, "ours": ours}, repeats)
            f_med, o_med = statistics.median(t["floor"]), statistics.median(t["ours"])
            print(
                f"| {model} | {size} {SIZES[size]} | {f_med:.3g} ({min(t['floor']):.3g}–"
                f"{max(t['floor']):.3g}) | {o_med:.3g} ({min(t['ours']):.3g}–{max(t['ours']):.3g})"
                f" | {o_med / f_med:.2f} | {diff:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
