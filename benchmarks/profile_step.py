"""Where the time of one training step goes: per op, forward and backward, and per function.

Runs the benchmark's step (``bptt_step.make_problem``: ``nn.RNN``/``nn.LSTM`` + ``nn.Linear`` +
``F.cross_entropy`` summed, forward + full backward) and prints two tables:

1. **per op**: for every primitive, the time spent recording it in the forward pass
   (``autograd.apply``, numpy included) and running its rules in the backward pass
   (``engine._propagate``), per step, with the number of nodes; plus the multiplied-out
   weight-gradient products (``_Grads.pop``) and what is left (Python around the ops: the
   layer's loop, wrappers, the topological sort, ``.grad`` accumulation);
2. **per function** (``cProfile``, sorted by own time): cProfile slows every Python call, so
   read its shares, not its absolute times.

The op timers wrap the engine's own functions, so the figures include a little of the
timers' cost (~0.3 µs per op). Run it on an older checkout to compare (the wrapped names
exist since the first version)::

    python benchmarks/profile_step.py                       # RNN and LSTM, size S, float32
    python benchmarks/profile_step.py --models lstm --sizes S,M --repeats 200
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # this checkout's tinygrad_rnn

import bptt_step


def _per_op(step: Callable[[], float], repeats: int) -> tuple[float, list[tuple[str, ...]]]:
    """Median step time (ms) without timers, and the per-op table rows with timers."""
    from tinygrad_rnn import autograd, engine

    plain = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        plain.append(time.perf_counter() - t0)

    fwd: collections.Counter[str] = collections.Counter()
    bwd: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    apply, propagate, pop = autograd.apply, engine._propagate, engine._Grads.pop

    def timed_apply(prim: Any, args: Any, params: Any) -> Any:
        t0 = time.perf_counter()
        out = apply(prim, args, params)
        fwd[prim.name] += time.perf_counter() - t0
        count[prim.name] += 1
        return out

    def timed_propagate(node: Any, *rest: Any) -> None:
        t0 = time.perf_counter()
        propagate(node, *rest)
        bwd[node.prim.name] += time.perf_counter() - t0

    def timed_pop(self: Any, key: int) -> Any:
        t0 = time.perf_counter()
        out = pop(self, key)
        bwd["(weight-gradient products)"] += time.perf_counter() - t0
        return out

    autograd.apply, engine._propagate, engine._Grads.pop = (  # type: ignore[method-assign]
        timed_apply,
        timed_propagate,
        timed_pop,
    )
    try:
        total = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            total += time.perf_counter() - t0
    finally:
        autograd.apply, engine._propagate, engine._Grads.pop = apply, propagate, pop  # type: ignore[method-assign]

    ms = 1e3 / repeats
    rows = []
    for name in sorted(set(fwd) | set(bwd), key=lambda n: -(fwd[n] + bwd[n])):
        nodes = count[name] // repeats if name in count else ""
        rows.append(
            (name, str(nodes), f"{fwd[name] * ms:.3f}", f"{bwd[name] * ms:.3f}",
             f"{(fwd[name] + bwd[name]) * ms:.3f}")
        )  # fmt: skip
    accounted = sum(fwd.values()) + sum(bwd.values())
    rows.append(("(rest: Python around the ops)", "", "", "", f"{(total - accounted) * ms:.3f}"))
    rows.append(
        ("**step, timed**", str(sum(count.values()) // repeats), "", "", f"{total * ms:.3f}")
    )
    return float(np.median(plain)) * 1e3, rows


def _cprofile(step: Callable[[], float], repeats: int, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        step()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return out.getvalue().replace(root, "")


def _jit_per_kind(
    step_jit: Callable[[], float], repeats: int
) -> tuple[float, list[tuple[str, ...]]]:
    """A replay of the jitted step, instruction by instruction: time per kind of instruction.

    The program is generated once more with one instruction per function, each call timed
    (which adds ~0.3 µs per instruction); the table says where a replay's time goes.
    """
    import importlib

    jit_module = importlib.import_module("tinygrad_rnn.jit")
    step_jit()
    step_jit()  # traced, planned and compiled
    plain = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step_jit()
        plain.append(time.perf_counter() - t0)
    jitted = [o for o in _live_objects() if isinstance(o, jit_module.Jitted)][-1]
    prog = next(iter(jitted.programs.values()))
    stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])

    def kind(k: int) -> str:
        for table, label in (
            (prog.view_of, "view of a gradient buffer"),
            (prog.alias, "alias (no-op)"),
            (prog.runs, "weight product from rows"),
        ):
            if k in table:
                return label
        meta = prog.meta.get(k)
        name = getattr(meta[0], "name", meta[0]) if meta else None
        if name is None:
            fn = prog.instrs[k][0]
            while hasattr(fn, "func"):
                fn = fn.func
            name = getattr(fn, "__name__", type(fn).__name__)
        suffix = " (in place)" if k in prog.inplace else " (out=)" if k in prog.out_view else ""
        return f"{name}{suffix}"

    single = prog._compile(chunk=1)
    wrapped = []
    for k, fn in enumerate(single):
        label = kind(k)

        def timed(env: list[Any], fn: Any = fn, label: str = label) -> None:
            t0 = time.perf_counter()
            fn(env)
            entry = stats[label]
            entry[0] += 1
            entry[1] += time.perf_counter() - t0

        wrapped.append(timed)
    saved, prog.chunks = prog.chunks, wrapped
    try:
        for _ in range(repeats):
            step_jit()
    finally:
        prog.chunks = saved
    rows = []
    total = sum(t for _, t in stats.values())
    for label, (n, t) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        rows.append((label, str(int(n) // repeats), f"{t / repeats * 1e3:.3f}", f"{t / total:.0%}"))
    return float(np.median(plain)) * 1e3, rows


def _live_objects() -> list[Any]:
    import gc

    return gc.get_objects()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="rnn,lstm")
    parser.add_argument("--sizes", default="S")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--top", type=int, default=20, help="functions in the cProfile table")
    parser.add_argument(
        "--jit", action="store_true", help="profile a replay of the jitted step instead"
    )
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    for model in args.models.split(","):
        for size in args.sizes.split(","):
            problem = bptt_step.make_problem(model, size, dtype)
            ours = problem[0]
            B, H, V, T = bptt_step.SIZES[size]
            if args.jit:
                median, rows = _jit_per_kind(problem[1], args.repeats)
                print(f"\n## {model.upper()} {size} (B={B}, H={H}, V={V}, T={T}), {dtype}, jit\n")
                print(f"median replay without timers: {median:.3f} ms\n")
                print("| instruction | calls per replay | ms | share |")
                print("|---|---:|---:|---:|")
                for row in rows:
                    print("| " + " | ".join(row) + " |")
                continue
            for _ in range(10):
                ours()
            median, rows = _per_op(ours, args.repeats)
            print(f"\n## {model.upper()} {size} (B={B}, H={H}, V={V}, T={T}), {dtype}\n")
            print(f"median step without timers: {median:.3f} ms\n")
            print("| op | nodes/step | forward ms | backward ms | total ms |")
            print("|---|---:|---:|---:|---:|")
            for row in rows:
                print("| " + " | ".join(row) + " |")
            print(f"\ncProfile, {args.repeats} steps, top {args.top} by own time:\n")
            print("```")
            print(_cprofile(ours, args.repeats, args.top).strip())
            print("```")


if __name__ == "__main__":
    main()
