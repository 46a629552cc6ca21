"""Memory of BPTT training with tinygrad_rnn: one long step, and many steps in a row.

Prints three things (a markdown report on stdout):

1. **Peak memory of one training step** of an LSTM over T = 1,000 steps, B = 32, H = 128,
   float32, one-hot inputs over V = 65 symbols, a ``Linear(H, V)`` head on every step and
   cross-entropy summed over time and batch (forward + full backward, no optimizer update):
   the peak of ``tracemalloc``'s traced memory *above what existed before the step*
   (parameters, inputs and targets are allocated beforehand and not counted). It is compared
   with what the hand-written closed-form BPTT must keep between its forward and backward
   pass (below), and with the measured peak of the hand-written numpy floor
   (``numpy_floor.lstm_step``, which also batches the head over all steps).
2. **Memory across many training steps** (a smaller LSTM, Adam updates): the current traced
   memory every 100 steps over 1,000 steps. Flat means nothing of a step outlives it.
   Tracing starts 2,500 steps earlier (``--settle``): CPython keeps freed tuples on free
   lists (up to 2,000 per size) and tracemalloc still counts a block that went there, so
   the traced memory of *any* loop first rises by ~64-90 bytes a step, for ~2,000 traced
   steps, until those lists are full, and is flat from then on. The settling phase's growth
   is printed too (``--settle 0 --every 500 --steps 4000`` shows the whole curve).
3. **Peak RSS** of the process (``resource.getrusage``, ``ru_maxrss``): includes the Python
   interpreter, numpy and tracemalloc's own bookkeeping.

Closed-form accounting (``tinygrad_rnn.reference.lstm`` keeps exactly this cache, seed 004's
notation): per time step and sequence it must keep

* ``z_t = [h_{t-1}, x_t]``: H + D numbers (D = V here);
* the four gate activations ``f_t, i_t, c̃_t, o_t``: 4H;
* the cell state ``c_t``: H (``c_{t-1}`` is the previous step's ``c_t``);
* ``tanh(c_t)``: H;
* ``h_t``: H (the head's input; also inside the next ``z``, counted once here as the
  document's code does).

That is ``B·(H + D + 7H)`` numbers per step, times T, times 4 bytes (float32). The softmax
output needs ``B·V`` more per step (probabilities, or the logits to recompute them); both are
printed. The ratio is our peak step memory over the cache. Anything above 1 is what the
engine keeps beyond the minimum: the ``(T, B, H)`` stack of the outputs next to each
``h_t``, the logits, one chunk of the input projection (forward) or of its gradient
(backward), the scratch memory of the weight-gradient products, and the transient gradient
buffers of the backward pass (docs/design.md, "Memory of long sequences").

Usage::

    python benchmarks/memory.py                     # the figures in docs/reliability.md
    python benchmarks/memory.py --T 200 --steps 300 # quicker
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy_floor

import tinygrad_rnn as tg
from tinygrad_rnn import engine, nn, optim
from tinygrad_rnn import functional as F

MB = 1024 * 1024


def peak_above_baseline(fn: Callable[[], object]) -> tuple[int, float]:
    """(peak traced bytes above the memory traced before ``fn``, seconds) for one call."""
    gc.collect()
    # The engine reuses large scratch and gradient buffers between backward passes; drop
    # them so that what this step needs is allocated (and counted) inside the measurement.
    engine._clear_pools()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base, seconds


def closed_form_bytes(T: int, B: int, D: int, H: int, V: int, itemsize: int) -> dict[str, int]:
    """The closed-form BPTT cache (see the module docstring), in bytes."""
    per_step = {
        "z_t = [h_{t-1}, x_t]": B * (H + D),
        "gates f, i, c~, o": 4 * B * H,
        "c_t": B * H,
        "tanh(c_t)": B * H,
        "h_t": B * H,
    }
    out = {name: n * T * itemsize for name, n in per_step.items()}
    out["softmax output (B*V per step)"] = B * V * T * itemsize
    return out


def one_step(T: int, B: int, H: int, V: int, dtype: np.dtype) -> dict[str, float]:
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(V, H, dtype=dtype, rng=rng)
    head = nn.Linear(H, V, dtype=dtype, rng=rng)
    xs = np.eye(V, dtype=dtype)[rng.integers(0, V, (T, B))]
    targets = rng.integers(0, V, (T, B))
    params = [*lstm.parameters(), *head.parameters()]
    for p in params:  # gradients of the previous step exist in a training loop
        p.grad = tg.Tensor(np.zeros_like(p.data))

    def ours() -> None:
        for p in params:
            p.grad = None
        out, _ = lstm(xs)
        loss = F.cross_entropy(head(out), targets, reduction="sum")
        loss.backward()

    floor_params = {
        "W_ih": lstm.weight_ih_l0.data,
        "W_hh": lstm.weight_hh_l0.data,
        "b_ih": lstm.bias_ih_l0.data,
        "b_hh": lstm.bias_hh_l0.data,
        "W_y": head.weight.data,
        "b_y": head.bias.data,
    }

    def floor() -> None:
        numpy_floor.lstm_step(floor_params, xs, targets)

    @tg.jit
    def jitted_step(x: np.ndarray, y: np.ndarray) -> tg.Tensor:
        out, _ = lstm(x)
        loss = F.cross_entropy(head(out), y, reduction="sum")
        loss.backward()
        return loss

    def jitted() -> None:
        for p in params:
            p.grad = None
        jitted_step(xs, targets)

    ours()  # warm up (first-call allocations of numpy and the engine)
    ours_peak, ours_s = peak_above_baseline(ours)
    jitted()  # the trace
    jitted()  # the first replay plans and writes the program
    jit_peak, jit_s = peak_above_baseline(jitted)
    floor()
    numpy_floor.clear_cache()  # its buffers are allocated, and counted, inside the measurement
    floor_peak, floor_s = peak_above_baseline(floor)
    numpy_floor.clear_cache()
    return {
        "ours": ours_peak,
        "ours_s": ours_s,
        "jit": jit_peak,
        "jit_s": jit_s,
        "floor": floor_peak,
        "floor_s": floor_s,
    }


def many_steps(
    total: int, every: int, T: int, B: int, H: int, V: int, dtype: np.dtype, jit: bool = False
) -> list[tuple[int, float, int, int]]:
    """``(step, loss, current traced, peak traced)`` at step 1 and every ``every`` steps."""
    rng = np.random.default_rng(1)
    lstm = nn.LSTM(V, H, dtype=dtype, rng=rng)
    head = nn.Linear(H, V, dtype=dtype, rng=rng)
    opt = optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    xs = np.eye(V, dtype=dtype)[rng.integers(0, V, (T, B))]
    targets = rng.integers(0, V, (T, B))

    def forward_backward(x: np.ndarray, y: np.ndarray) -> tg.Tensor:
        out, _ = lstm(x)
        loss = F.cross_entropy(head(out), y)
        loss.backward()
        return loss

    run = tg.jit(forward_backward) if jit else forward_backward

    def step() -> float:
        opt.zero_grad()
        loss = run(xs, targets)
        opt.step()
        return loss.item()

    rows = []
    gc.collect()
    tracemalloc.start()
    try:
        for k in range(1, total + 1):
            loss = step()
            if k == 1 or k % every == 0:
                current, peak = tracemalloc.get_traced_memory()
                rows.append((k, loss, current, peak))
    finally:
        tracemalloc.stop()
    return rows


def part_one(T: int, B: int, H: int, V: int, dtype: np.dtype) -> None:
    print(f"## 1. One training step: LSTM, T={T}, B={B}, H={H}, one-hot V={V}, Linear head, CE\n")
    cache = closed_form_bytes(T, B, V, H, V, dtype.itemsize)
    minimum = sum(v for k, v in cache.items() if not k.startswith("softmax"))
    with_softmax = sum(cache.values())
    res = one_step(T, B, H, V, dtype)
    print("| what | MB | × closed-form cache |")
    print("|---|---:|---:|")
    for name, nbytes in cache.items():
        print(f"| closed form: {name} | {nbytes / MB:.1f} | |")
    print(f"| **closed-form cache** (z, gates, c, tanh c, h) | **{minimum / MB:.1f}** | 1.00 |")
    print(f"| closed-form cache + softmax output | {with_softmax / MB:.1f} | "
          f"{with_softmax / minimum:.2f} |")  # fmt: skip
    print(
        f"| numpy floor (`numpy_floor.lstm_step`), measured peak | {res['floor'] / MB:.1f} | "
        f"{res['floor'] / minimum:.2f} |"
    )
    print(
        f"| **tinygrad_rnn eager** (`nn.LSTM` + `nn.Linear` + `F.cross_entropy`), measured peak | "
        f"**{res['ours'] / MB:.1f}** | **{res['ours'] / minimum:.2f}** |"
    )
    print(
        f"| **tinygrad_rnn jit** (the same step, a replay), measured peak | "
        f"**{res['jit'] / MB:.1f}** | **{res['jit'] / minimum:.2f}** |"
    )
    print()


def part_two(args: argparse.Namespace, V: int, dtype: np.dtype) -> None:
    for jit in (False, True):
        _part_two(args, V, dtype, jit)


def _part_two(args: argparse.Namespace, V: int, dtype: np.dtype, jit: bool) -> None:
    lt, lb, lh = args.loop_T, args.loop_B, args.loop_H
    mode = "jit" if jit else "eager"
    print(
        f"## 2{'b' if jit else 'a'}. {args.steps} training steps, {mode} (steps "
        f"{args.settle + 1}-{args.settle + args.steps}, traced from step 1): LSTM T={lt}, "
        f"B={lb}, H={lh}, V={V}, Adam\n"
    )
    all_rows = many_steps(args.settle + args.steps, args.every, lt, lb, lh, V, dtype, jit)
    settle = [r for r in all_rows if r[0] <= args.settle]
    rows = [r for r in all_rows if r[0] >= args.settle] or all_rows
    if len(settle) > 1:
        print(
            f"Settling (free lists filling): traced memory {settle[0][2] / 1024:.1f} KB at step "
            f"{settle[0][0]}, {settle[-1][2] / 1024:.1f} KB at step {settle[-1][0]}.\n"
        )
    first = rows[0]
    print(f"| step | loss | current traced (KB) | change since step {first[0]} (B) | peak (KB) |")
    print("|---:|---:|---:|---:|---:|")
    for k, loss, current, peak in rows:
        print(
            f"| {k} | {loss:.3f} | {current / 1024:.1f} | {current - first[2]:+d} | "
            f"{peak / 1024:.1f} |"
        )
    later = rows
    steps = np.array([r[0] for r in later], dtype=float)
    currents = np.array([r[2] for r in later], dtype=float)
    slope = float(np.polyfit(steps, currents, 1)[0]) if len(later) > 2 else float("nan")
    print(
        f"\nFrom step {later[0][0]} to {later[-1][0]} the current traced memory ranges over "
        f"{currents.min() / 1024:.1f}-{currents.max() / 1024:.1f} KB (spread "
        f"{(currents.max() - currents.min()) / 1024:.1f} KB); least-squares trend "
        f"{slope:+.2f} bytes per step.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--T", type=int, default=1000, help="steps of the long sequence")
    parser.add_argument("--B", type=int, default=32)
    parser.add_argument("--H", type=int, default=128)
    parser.add_argument("--V", type=int, default=65, help="one-hot input size = classes")
    parser.add_argument("--steps", type=int, default=1000, help="traced steps in part 2")
    parser.add_argument("--settle", type=int, default=2500, help="traced steps before")
    parser.add_argument("--every", type=int, default=100, help="sample every N steps")
    parser.add_argument("--only", type=int, choices=(1, 2), help="run only part 1 or part 2")
    parser.add_argument("--loop-T", type=int, default=10, help="sequence length in part 2")
    parser.add_argument("--loop-B", type=int, default=8, help="batch in part 2")
    parser.add_argument("--loop-H", type=int, default=32, help="hidden size in part 2")
    args = parser.parse_args()
    dtype = np.dtype(np.float32)
    T, B, H, V = args.T, args.B, args.H, args.V

    print("# Memory of BPTT training (benchmarks/memory.py)\n")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"float32; command: `{' '.join(['python benchmarks/memory.py', *sys.argv[1:]])}`\n"
    )

    if args.only in (None, 1):
        part_one(T, B, H, V, dtype)
    if args.only in (None, 2):
        part_two(args, V, dtype)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    print(f"\n## 3. Peak RSS of this process: {rss / 1024:.0f} MB\n")


if __name__ == "__main__":
    main()
