"""One BPTT training step (forward over T + full backward, no update) against the numpy floor.

The model: one-hot inputs over V symbols, an ``nn.RNN`` (tanh) or ``nn.LSTM`` of hidden size
H, an ``nn.Linear(H, V)`` head on every step, cross-entropy summed over time and batch. The
project's step and the hand-written numpy floor (``numpy_floor.py``) run round-robin in one
process, so machine noise hits both alike; the table reports medians, min–max and the ratio.
With ``--perstep`` the naive per-step numpy BPTT (``numpy_perstep.py``) is timed too, in a
second round-robin with the floor (not in between ours and the floor: see the comment in
``main``).

    python benchmarks/bptt_step.py                      # all sizes, float32, markdown table
    python benchmarks/bptt_step.py --sizes S --models lstm --dtype float64 --repeats 50
    python benchmarks/bptt_step.py --perstep --json out.json   # also write records as JSON

This module also holds what the comparison scripts (``torch_step.py``, ``hips_step.py``)
share: the sizes, the problem's arrays, the round-robin timer and the gradient check against
the floor. ``tinygrad_rnn`` is imported only where it is used, so those scripts run (and
check their gradients) even while the engine is being changed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # this checkout's tinygrad_rnn

import numpy_floor
import numpy_perstep

SIZES = {  # B, H, V, T
    "S": (1, 100, 65, 25),
    "M": (32, 128, 65, 50),
    "L": (64, 512, 128, 64),
}
REPEATS = {"S": 200, "M": 30, "L": 8}  # timed repeats per size (after warm-up)
QUICK_REPEATS = {"S": 50, "M": 10, "L": 3}
FIRST_CALLS = {"S": 10, "M": 5, "L": 3}  # fresh traces timed per size
QUICK_FIRST_CALLS = {"S": 5, "M": 3, "L": 2}
FLOOR_STEP = {"rnn": numpy_floor.rnn_step, "lstm": numpy_floor.lstm_step}
PERSTEP_STEP = {"rnn": numpy_perstep.rnn_step, "lstm": numpy_perstep.lstm_step}
GRAD_KEYS = ("W_ih", "W_hh", "b", "W_y", "b_y")  # the floor's gradient names

Record = dict[str, Any]


def make_arrays(
    model: str, size: str, dtype: np.dtype, seed: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Parameters, one-hot inputs ``xs (T, B, V)`` and ``targets (T, B)`` for one problem.

    Parameters are in PyTorch's layout under the floor's names (``W_ih``, ``W_hh``, ``b_ih``,
    ``b_hh``, ``W_y``, ``b_y``), drawn like PyTorch's default init, U(-1/√H, 1/√H). Used by
    the implementations that do not build their layers with ``tinygrad_rnn.nn``.
    """
    B, H, V, T = SIZES[size]
    G = 4 if model == "lstm" else 1
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(H)

    def u(*shape: int) -> np.ndarray:
        return rng.uniform(-k, k, shape).astype(dtype)

    params = {
        "W_ih": u(G * H, V),
        "W_hh": u(G * H, H),
        "b_ih": u(G * H),
        "b_hh": u(G * H),
        "W_y": u(V, H),
        "b_y": u(V),
    }
    tokens = rng.integers(0, V, (T, B))
    targets = rng.integers(0, V, (T, B))
    xs = np.eye(V, dtype=dtype)[tokens]
    return params, xs, targets


def grad_diff(grads: dict[str, np.ndarray], ref: dict[str, Any]) -> float:
    """Largest relative difference (max |a−b| / max |b|, per array) from the floor's gradients.

    ``grads`` uses the floor's names; ``b`` is the gradient of either bias (they are equal).
    """
    return max(
        float(
            np.max(np.abs(np.asarray(grads[k], dtype=np.float64) - ref[k])) / np.max(np.abs(ref[k]))
        )
        for k in GRAD_KEYS
    )


def make_problem(model: str, size: str, dtype: np.dtype, seed: int = 0):
    """The project's eager and jitted step functions, the floor's, and a gradient check.

    The check, ``agree(step)``, gives the largest relative difference between ``step``'s
    gradients (eager by default) and the floor's.
    """
    from tinygrad_rnn import functional as F
    from tinygrad_rnn import nn

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

    import tinygrad_rnn as tg

    def step_body(xs: np.ndarray, targets: np.ndarray) -> Any:
        out, _ = rnn(xs)
        loss = F.cross_entropy(head(out), targets, reduction="sum")
        loss.backward()
        return loss

    ours_jit = JitStep(tg.jit, step_body, params, (xs, targets))

    floor_p = {
        "W_ih": rnn.weight_ih_l0.data,
        "W_hh": rnn.weight_hh_l0.data,
        "b_ih": rnn.bias_ih_l0.data,
        "b_hh": rnn.bias_hh_l0.data,
        "W_y": head.weight.data,
        "b_y": head.bias.data,
    }
    floor_fn = FLOOR_STEP[model]

    def floor() -> float:
        return floor_fn(floor_p, xs, targets)["loss"]

    def agree(step: Callable[[], float] = ours) -> float:
        """Largest relative difference between ``step``'s gradients and the floor's."""
        step()
        ref = floor_fn(floor_p, xs, targets)
        grads = {
            "W_ih": rnn.weight_ih_l0.grad.data,
            "W_hh": rnn.weight_hh_l0.grad.data,
            "b": rnn.bias_ih_l0.grad.data,
            "W_y": head.weight.grad.data,
            "b_y": head.bias.grad.data,
        }
        return grad_diff(grads, ref)

    return ours, ours_jit, floor, agree


class JitStep:
    """A jitted step as a function of no arguments, which can be made to trace again.

    ``JitStep(jit, body, params, args)()`` clears the gradients of ``params`` and returns
    ``jit(body)(*args).item()``; the first call traces, later calls replay.
    ``retrace()`` starts over with a fresh ``jit(body)``, so that the next call traces
    again: that is how the first (tracing) call is timed more than once.
    """

    def __init__(
        self,
        jit: Callable[[Callable[..., Any]], Callable[..., Any]],
        body: Callable[..., Any],
        params: list[Any],
        args: tuple[Any, ...],
    ) -> None:
        self._jit, self._body, self._params, self._args = jit, body, params, args
        self.retrace()

    @property
    def params(self) -> list[Any]:
        """The parameters whose gradients a call clears and computes (the step's, eager too)."""
        return self._params

    def retrace(self) -> None:
        """Forget the traced program: the next call traces again."""
        self._fn = self._jit(self._body)

    def __call__(self) -> float:
        for p in self._params:
            p.grad = None
        return self._fn(*self._args).item()


def make_perstep(
    model: str, size: str, dtype: np.dtype, seed: int = 0
) -> tuple[Callable[[], float], Callable[[], float]]:
    """The per-step numpy step function and a check of its gradients against the floor's."""
    params, xs, targets = make_arrays(model, size, dtype, seed)
    fn = PERSTEP_STEP[model]

    def perstep() -> float:
        return fn(params, xs, targets)["loss"]

    def agree() -> float:
        return grad_diff(fn(params, xs, targets), FLOOR_STEP[model](params, xs, targets))

    return perstep, agree


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


def paired(times: list[float], base: list[float], name: str) -> Record:
    """Median and min–max over rounds of ``times[k] / base[k]`` (same round), as
    ``{name, name_min, name_max}``: steadier than a ratio of medians on a noisy machine."""
    r = [a / b for a, b in zip(times, base)]
    return {name: statistics.median(r), f"{name}_min": min(r), f"{name}_max": max(r)}


def time_first_calls(eager: Callable[[], float], jitted: JitStep, n: int) -> dict[str, list[float]]:
    """``n`` rounds of: one eager call, a fresh trace (the first call) and the second call.

    The second call is the first replay; it also generates the replay's Python code (the
    tracer leaves that to the first replay), so it is timed too. ms per call, per round.
    """
    times: dict[str, list[float]] = {"eager": [], "first": [], "second": []}
    for _ in range(n):
        t0 = time.perf_counter()
        eager()
        times["eager"].append((time.perf_counter() - t0) * 1e3)
        jitted.retrace()
        for name in ("first", "second"):
            t0 = time.perf_counter()
            jitted()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def first_calls_for(size: str, quick: bool) -> int:
    """How many times the first (tracing) call is timed, by size."""
    return (QUICK_FIRST_CALLS if quick else FIRST_CALLS)[size]


def summarize(times: list[float]) -> Record:
    """Median, min, max (ms) and count of one implementation's timings."""
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "n": len(times),
    }


def repeats_for(size: str, repeats: int, quick: bool) -> int:
    """Timed repeats: ``repeats`` if given (> 0), else by size (fewer with ``quick``)."""
    return repeats or (QUICK_REPEATS if quick else REPEATS)[size]


def blas_info() -> str:
    """numpy's BLAS as threadpoolctl sees it (library, version, kernel, threads), if installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return "; ".join(
        f"{p.get('internal_api')} {p.get('version')} {p.get('architecture', '')} "
        f"threads={p.get('num_threads')}"
        for p in pools
    )


def write_json(path: str, payload: dict) -> None:
    """Write a script's results (``records`` plus metadata) for ``run_suite.py``."""
    Path(path).write_text(json.dumps(payload, indent=1))


def _cell(s: Record) -> str:
    return f"{s['median_ms']:.3g} ({s['min_ms']:.3g}–{s['max_ms']:.3g})"


def main() -> None:
    import tinygrad_rnn as tg

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--models", default="rnn,lstm")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=0, help="0: by size (S 200, M 30, L 8)")
    parser.add_argument("--quick", action="store_true", help="by-size repeats S 50, M 10, L 3")
    parser.add_argument("--perstep", action="store_true", help="add per-step numpy (min-char-rnn)")
    parser.add_argument("--json", metavar="PATH", help="also write the records as JSON here")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}; numpy {np.__version__}; "
        f"tinygrad_rnn {tg.__version__}; dtype {dtype}; BLAS {blas_info()}"
    )
    print()
    extra = " per-step ms (min–max) | per-step grad diff |" if args.perstep else ""
    head = (
        "| model | size (B,H,V,T) | floor ms (min–max) | eager ms (min–max) | eager ratio "
        "| jit ms (min–max) | jit ratio | first jit call / eager "
        "| grad diff (eager, jit's trace, jit's replay) |"
    )
    print(head + extra)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.perstep else ""))
    records: list[Record] = []
    for model in args.models.split(","):
        for size in args.sizes.split(","):
            ours, ours_jit, floor, agree = make_problem(model, size, dtype)
            diff = agree()
            ours_jit.retrace()
            trace_diff = agree(ours_jit)  # the gradients the tracing call leaves
            jit_diff = agree(ours_jit)  # and a replay's
            first = time_first_calls(ours, ours_jit, first_calls_for(size, args.quick))
            repeats = repeats_for(size, args.repeats, args.quick)
            t = measure({"floor": floor, "ours": ours, "jit": ours_jit}, repeats)
            s = {k: summarize(v) for k, v in t.items()}
            if args.perstep:
                # A round-robin of its own with the floor: run in between, the per-step
                # numpy's memory traffic evicted ours from the caches and slowed it by
                # 8-15% at size S (the floor, a few large calls, did not notice).
                perstep, perstep_agree = make_perstep(model, size, dtype)
                perstep_diff = perstep_agree()
                s["perstep"] = summarize(
                    measure({"floor": floor, "perstep": perstep}, repeats)["perstep"]
                )
            key = {"model": model, "size": size, "dtype": str(dtype)}
            records.append({"impl": "numpy_floor", **key, **s["floor"], "grad_diff": 0.0})
            for impl, name, d in (
                ("ours", "tinygrad_rnn", diff),
                ("jit", "tinygrad_rnn_jit", jit_diff),
            ):
                records.append(
                    {
                        "impl": name,
                        **key,
                        **s[impl],
                        "grad_diff": d,
                        "ratio": s[impl]["median_ms"] / s["floor"]["median_ms"],
                        **paired(t[impl], t["floor"], "paired_ratio"),
                    }
                )
            for impl, d in (("first", trace_diff), ("second", jit_diff)):
                records.append(
                    {
                        "impl": f"tinygrad_rnn_jit_{impl}",
                        **key,
                        **summarize(first[impl]),
                        "grad_diff": d,
                        **paired(first[impl], first["eager"], "over_eager"),
                    }
                )
            over = records[-2]["over_eager"]
            # Kept under their old names on the replay's record too.
            records[-3]["first_call_ms"] = records[-2]["median_ms"]
            records[-3]["first_call_over_eager"] = over
            row = (
                f"| {model} | {size} {SIZES[size]} | {_cell(s['floor'])} | {_cell(s['ours'])}"
                f" | {records[-4]['ratio']:.2f} | {_cell(s['jit'])} | {records[-3]['ratio']:.2f}"
                f" | {over:.1f} | {diff:.1e}, {trace_diff:.1e}, {jit_diff:.1e} |"
            )
            if args.perstep:
                records.append(
                    {"impl": "numpy_perstep", **key, **s["perstep"], "grad_diff": perstep_diff}
                )
                row += f" {_cell(s['perstep'])} | {perstep_diff:.1e} |"
            print(row, flush=True)
    if args.json:
        write_json(
            args.json,
            {
                "script": "bptt_step.py",
                "versions": {"numpy": np.__version__, "tinygrad_rnn": tg.__version__},
                "blas": blas_info(),
                "records": records,
            },
        )


if __name__ == "__main__":
    main()
