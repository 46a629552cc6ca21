"""The benchmark's training step in PyTorch (CPU): an eager Python loop and the fused layers.

Same work as ``bptt_step.py``: forward over T steps + full BPTT + every parameter's gradient
(no optimizer update), one-hot inputs over V, an RNN (tanh) or LSTM of hidden size H, a
Linear(H, V) head on every step, cross-entropy summed over time and batch. Two variants:

* ``torch_eager``: the cell composed from torch ops in a Python loop, hoisted like
  ``tinygrad_rnn.nn``: the input projection ``X W_ihᵀ + b_ih + b_hh`` is one matmul over all
  T·B rows, then each step does only ``h W_hhᵀ`` + the nonlinearity; the head and the loss run
  once on the stacked ``(T·B, H)`` outputs. Autograd records every op, as ours does. The steps'
  slices come from ``gi.unbind(0)`` (as PyTorch's own Python RNN code does): its backward
  stacks the slices' gradients once, where ``gi[t]`` would materialise a full ``(T, B, G·H)``
  zero gradient per step (O(T²); 3–4× slower at L).
* ``torch_nn``: ``torch.nn.RNN`` / ``torch.nn.LSTM`` (fused ATen kernels) + ``torch.nn.Linear``.

Both variants run round-robin in one process with ``torch.set_num_threads`` (default 2); their
gradients are compared with the numpy floor's on the same parameters ("grad diff").

    python benchmarks/torch_step.py                          # all sizes, float32
    python benchmarks/torch_step.py --sizes S,M --dtype float64 --json out.json

Needs ``pip install torch==2.13.0`` (the project's optional ``torch`` extra); without torch it
says so and exits 0 (and writes a ``skipped`` JSON if ``--json`` is given).
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

INSTALL_HINT = "pip install torch==2.13.0"
IMPLS = ("torch_eager", "torch_nn")


def make_torch_problem(
    model: str, size: str, dtype: np.dtype, seed: int = 0
) -> tuple[dict[str, Callable[[], float]], dict[str, Callable[[], float]]]:
    """Step functions ``{impl: fn}`` and gradient checks ``{impl: fn -> grad diff}``."""
    import torch
    import torch.nn.functional as TF

    params, xs, targets = make_arrays(model, size, dtype, seed)
    ref = FLOOR_STEP[model](params, xs, targets)
    T, B, V = xs.shape
    H = params["W_hh"].shape[1]
    X = torch.from_numpy(xs)
    Y = torch.from_numpy(targets.reshape(-1))

    # (a) eager: leaf tensors, the cell written out, hoisted input projection.
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}

    def eager_rnn() -> torch.Tensor:
        gi = (X.reshape(T * B, V) @ p["W_ih"].T + (p["b_ih"] + p["b_hh"])).reshape(T, B, H)
        W_hhT = p["W_hh"].T
        h = torch.zeros(B, H, dtype=X.dtype)
        hs = []
        for gi_t in gi.unbind(0):
            h = torch.tanh(gi_t + h @ W_hhT)
            hs.append(h)
        return torch.stack(hs)

    def eager_lstm() -> torch.Tensor:
        gi = (X.reshape(T * B, V) @ p["W_ih"].T + (p["b_ih"] + p["b_hh"])).reshape(T, B, 4 * H)
        W_hhT = p["W_hh"].T
        h = torch.zeros(B, H, dtype=X.dtype)
        c = torch.zeros(B, H, dtype=X.dtype)
        hs = []
        for gi_t in gi.unbind(0):
            i, f, g, o = (gi_t + h @ W_hhT).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs)

    eager_body = eager_lstm if model == "lstm" else eager_rnn

    def eager() -> float:
        for v in p.values():
            v.grad = None
        out = eager_body().reshape(T * B, H)
        loss = TF.cross_entropy(out @ p["W_y"].T + p["b_y"], Y, reduction="sum")
        loss.backward()
        return loss.item()

    # (b) fused: torch.nn.RNN / torch.nn.LSTM + torch.nn.Linear, loaded with the same values.
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    layer_cls = torch.nn.LSTM if model == "lstm" else torch.nn.RNN
    layer = layer_cls(V, H, dtype=tdtype)
    head = torch.nn.Linear(H, V, dtype=tdtype)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.from_numpy(params["W_ih"]))
        layer.weight_hh_l0.copy_(torch.from_numpy(params["W_hh"]))
        layer.bias_ih_l0.copy_(torch.from_numpy(params["b_ih"]))
        layer.bias_hh_l0.copy_(torch.from_numpy(params["b_hh"]))
        head.weight.copy_(torch.from_numpy(params["W_y"]))
        head.bias.copy_(torch.from_numpy(params["b_y"]))
    fused_params = [*layer.parameters(), *head.parameters()]

    def fused() -> float:
        for v in fused_params:
            v.grad = None
        out, _ = layer(X)
        loss = TF.cross_entropy(head(out).reshape(T * B, V), Y, reduction="sum")
        loss.backward()
        return loss.item()

    def eager_agree() -> float:
        eager()
        g = {k: v.grad.numpy() for k, v in p.items()}
        return grad_diff({**g, "b": g["b_ih"]}, ref)

    def fused_agree() -> float:
        fused()
        g = {
            "W_ih": layer.weight_ih_l0.grad,
            "W_hh": layer.weight_hh_l0.grad,
            "b": layer.bias_ih_l0.grad,
            "W_y": head.weight.grad,
            "b_y": head.bias.grad,
        }
        return grad_diff({k: v.numpy() for k, v in g.items()}, ref)

    return (
        {"torch_eager": eager, "torch_nn": fused},
        {"torch_eager": eager_agree, "torch_nn": fused_agree},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="S,M,L")
    parser.add_argument("--models", default="rnn,lstm")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=0, help="0: by size (S 200, M 30, L 8)")
    parser.add_argument("--quick", action="store_true", help="by-size repeats S 50, M 10, L 3")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    parser.add_argument("--json", metavar="PATH", help="also write the records as JSON here")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print(f"torch is not installed; skipping the PyTorch comparison ({INSTALL_HINT})")
        if args.json:
            why = f"not installed (`{INSTALL_HINT}`)"
            write_json(args.json, {"script": "torch_step.py", "skipped": why, "records": []})
        return
    torch.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    notes: list[str] = []
    if not torch.__version__.startswith("2.13."):
        notes.append(f"torch {torch.__version__}, not the 2.13 of the anchors")
    print(
        f"torch {torch.__version__}, threads: {torch.get_num_threads()}; dtype {dtype}; "
        "eager = cell in a Python loop, input projection hoisted over all steps"
    )
    print()
    print("| model | size | eager ms (min–max) | grad diff | nn ms (min–max) | grad diff |")
    print("|---|---|---:|---:|---:|---:|")
    records: list[Record] = []
    for model in args.models.split(","):
        for size in args.sizes.split(","):
            fns, checks = make_torch_problem(model, size, dtype)
            diffs = {k: check() for k, check in checks.items()}
            t = measure(fns, repeats_for(size, args.repeats, args.quick), warmup=3)
            cells: list[str] = []
            for impl in IMPLS:
                s: dict[str, Any] = summarize(t[impl])
                records.append(
                    {
                        "impl": impl,
                        "model": model,
                        "size": size,
                        "dtype": str(dtype),
                        **s,
                        "grad_diff": diffs[impl],
                    }
                )
                cells.append(
                    f"{s['median_ms']:.3g} ({s['min_ms']:.3g}–{s['max_ms']:.3g}) | "
                    f"{diffs[impl]:.1e}"
                )
            print(f"| {model} | {size} {SIZES[size]} | {' | '.join(cells)} |", flush=True)
    if args.json:
        write_json(
            args.json,
            {
                "script": "torch_step.py",
                "versions": versions,
                "threads": torch.get_num_threads(),
                "notes": notes,
                "records": records,
            },
        )


if __name__ == "__main__":
    main()
