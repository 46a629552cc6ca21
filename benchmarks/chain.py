"""Time and peak memory of backprop through a long chain of tanh ops.

Shows that backward is iterative (no RecursionError) and linear in the chain
length: the per-op cost in the last column should stay flat as N grows.

    python benchmarks/chain.py            # N = 10,000 / 30,000 / 100,000
    python benchmarks/chain.py --max 1000000
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tinygrad_rnn

import tinygrad_rnn as tg


def run(n: int) -> tuple[float, float, float]:
    """Return (forward seconds, backward seconds, peak traced MiB) for an n-op chain."""
    gc.collect()
    tracemalloc.start()
    x = tg.Tensor(np.full(16, 0.5), requires_grad=True)
    t0 = time.perf_counter()
    h = x
    for _ in range(n):
        h = h.tanh()
    loss = h.sum()
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return t1 - t0, t2 - t1, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max", type=int, default=100_000, help="longest chain (default 100000)")
    args = parser.parse_args()
    sizes = [n for n in (10_000, 30_000, 100_000, 300_000, 1_000_000) if n <= args.max]
    print("| ops N | forward s | backward s | peak MiB | backward µs/op |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        fwd, bwd, peak = run(n)
        print(f"| {n:,} | {fwd:.2f} | {bwd:.2f} | {peak:.1f} | {bwd / n * 1e6:.1f} |")


if __name__ == "__main__":
    main()
