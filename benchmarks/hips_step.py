"""The benchmark's training step in HIPS autograd: ``autograd.numpy`` + ``autograd.grad``.

Same work as ``bptt_step.py`` (forward over T + full BPTT + every parameter's gradient, no
update) for the same character model, written as a plain function of a parameter dict and
differentiated by ``autograd.grad``. It is hoisted like ``tinygrad_rnn.nn``: one input
projection over all T·B rows, then per step only ``h W_hhᵀ`` + the nonlinearity, and the head
and the loss once on the stacked outputs. HIPS autograd is the closest relative of this
project (a tape of numpy calls), so it shows what a general-purpose numpy autodiff costs.
The steps' slices come from ``anp.split`` (whose backward concatenates once), not ``gi[t]``,
whose backward would build a full-size zero gradient per step (O(T²)).
Gradients are compared with the numpy floor's on the same parameters ("grad diff").

    python benchmarks/hips_step.py                  # all sizes, float32
    python benchmarks/hips_step.py --sizes S --models lstm --json out.json

Needs ``pip install autograd``; without it, it says so and exits 0 (and writes a ``skipped``
JSON if ``--json`` is given).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bptt_step import (
    FLOOR_STEP,
    SIZES,
    Record,
    grad_diff,
    make_arrays,
    measure,
    repeats_for,
    summarize,
    write_json,
)

INSTALL_HINT = "pip install autograd"


def make_hips_problem(
    model: str, size: str, dtype: np.dtype, seed: int = 0
) -> tuple[Callable[[], float], Callable[[], float]]:
    """The HIPS autograd step function and a check of its gradients against the floor's."""
    import autograd.numpy as anp
    from autograd import value_and_grad

    params, xs, targets = make_arrays(model, size, dtype, seed)
    ref = FLOOR_STEP[model](params, xs, targets)
    T, B, V = xs.shape
    H = params["W_hh"].shape[1]
    X = xs.reshape(T * B, V)
    Y = targets.reshape(-1)
    rows = np.arange(T * B)

    # Inside autograd.grad the arrays are autograd's boxes, hence the loose annotations.
    def sigmoid(z: Any) -> Any:
        return 0.5 * (anp.tanh(0.5 * z) + 1)

    def hidden_states(p: dict[str, Any]) -> Any:
        gi = anp.reshape(anp.dot(X, p["W_ih"].T) + (p["b_ih"] + p["b_hh"]), (T, B, -1))
        W_hhT = p["W_hh"].T
        h = np.zeros((B, H), dtype=dtype)
        c = np.zeros((B, H), dtype=dtype)
        hs = []
        for gi_t in anp.split(gi, T, axis=0):
            z = anp.reshape(gi_t, (B, -1)) + anp.dot(h, W_hhT)
            if model == "lstm":
                i, f = sigmoid(z[:, :H]), sigmoid(z[:, H : 2 * H])
                g, o = anp.tanh(z[:, 2 * H : 3 * H]), sigmoid(z[:, 3 * H :])
                c = f * c + i * g
                h = o * anp.tanh(c)
            else:
                h = anp.tanh(z)
            hs.append(h)
        return anp.reshape(anp.stack(hs), (T * B, H))

    def loss_fn(p: dict[str, Any]) -> Any:
        logits = anp.dot(hidden_states(p), p["W_y"].T) + p["b_y"]
        m = anp.max(logits, axis=1, keepdims=True)
        lse = anp.log(anp.sum(anp.exp(logits - m), axis=1)) + m[:, 0]
        return anp.sum(lse) - anp.sum(logits[rows, Y])

    step = value_and_grad(loss_fn)

    def hips() -> float:
        return float(step(params)[0])

    def agree() -> float:
        _, g = step(params)
        return grad_diff({**g, "b": g["b_ih"]}, ref)

    return hips, agree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--models", default="rnn,lstm")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=0, help="0: by size (S 200, M 30, L 8)")
    parser.add_argument("--quick", action="store_true", help="by-size repeats S 50, M 10, L 3")
    parser.add_argument("--json", metavar="PATH", help="also write the records as JSON here")
    args = parser.parse_args()
    try:
        import autograd
    except ImportError:
        print(f"HIPS autograd is not installed; skipping it ({INSTALL_HINT})")
        if args.json:
            why = f"not installed (`{INSTALL_HINT}`)"
            write_json(args.json, {"script": "hips_step.py", "skipped": why, "records": []})
        return
    from importlib.metadata import version

    dtype = np.dtype(args.dtype)
    versions = {"autograd": version("autograd"), "numpy": np.__version__}
    print(f"HIPS autograd {versions['autograd']} ({autograd.__name__}); dtype {dtype}")
    print()
    print("| model | size | ms (min–max) | grad diff |")
    print("|---|---|---:|---:|")
    records: list[Record] = []
    for model in args.models.split(","):
        for size in args.sizes.split(","):
            hips, agree = make_hips_problem(model, size, dtype)
            diff = agree()
            t = measure({"hips": hips}, repeats_for(size, args.repeats, args.quick))
            s = summarize(t["hips"])
            records.append(
                {
                    "impl": "hips_autograd",
                    "model": model,
                    "size": size,
                    "dtype": str(dtype),
                    **s,
                    "grad_diff": diff,
                }
            )
            print(
                f"| {model} | {size} {SIZES[size]} | {s['median_ms']:.3g} "
                f"({s['min_ms']:.3g}–{s['max_ms']:.3g}) | {diff:.1e} |",
                flush=True,
            )
    if args.json:
        write_json(args.json, {"script": "hips_step.py", "versions": versions, "records": records})


if __name__ == "__main__":
    main()
