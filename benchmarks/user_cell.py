"""A user's own cell, eager and jitted, round-robin with the built-in ``nn.LSTM`` (issue 12).

The engine should make *any* composition of elementary ops fast, not just the cells it
ships. So this script times two cells the library does not ship, written the way a user
would write them: a ``Module`` with ``Parameter``s and the step's equations in elementary
ops (``@``, ``+``, ``chunk``, ``sigmoid``, ``tanh``, ``*``) in a Python loop over time,
with nothing hoisted out of the loop:

* ``lstm_by_hand``: an LSTM from its equations, PyTorch's gate order::

      z = x_t W_ihᵀ + h W_hhᵀ + b          (two matmuls and a bias add every step)
      i, f, g, o = chunk(z, 4)
      c = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
      h = σ(o) ⊙ tanh(c)

  It computes what the built-in LSTM computes (with ``b = b_ih + b_hh``), so its gradients
  are also checked against the numpy floor's;
* ``mgu``: the minimal gated unit (Zhou et al., 2016), one gate::

      f = σ(x_t W_fᵀ + h U_fᵀ + b_f)
      n = tanh(x_t W_nᵀ + (f ⊙ h) U_nᵀ + b_n)
      h = (1 − f) ⊙ h + f ⊙ n

Both feed a ``Linear(H, V)`` head on every step and cross-entropy summed over time and
batch, on the same one-hot data as ``bptt_step.py``. Each cell runs eagerly and under
``tinygrad_rnn.jit``, round-robin in one process with the built-in ``nn.LSTM`` step of
``bptt_step.make_problem``, eager and jitted. The figure of interest is each one's **gain**,
eager ms / jit ms: the issue asks that a user's cell gain about as much from jit as the
built-in LSTM. Every jitted cell's gradients are compared with its eager gradients (relative
difference; float32 must stay within 1e-5).

    python benchmarks/user_cell.py                         # S and M, float32
    python benchmarks/user_cell.py --sizes S --quick --json out.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # this checkout's tinygrad_rnn

from bptt_step import (
    FLOOR_STEP,
    SIZES,
    Record,
    grad_diff,
    make_arrays,
    make_problem,
    measure,
    paired,
    repeats_for,
    summarize,
    write_json,
)

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn

CELLS = ("lstm_by_hand", "mgu")
# Largest relative difference between a jitted cell's gradients and its eager ones.
JIT_GRAD_TOL = {"float32": 1e-5, "float64": 1e-10}


class HandLSTM(nn.Module):
    """An LSTM over ``xs (T, B, V) -> (T, B, H)``, its step written out by hand.

    ``HandLSTM(arrays)`` takes PyTorch-layout ``arrays`` (``bptt_step.make_arrays``):
    ``W_ih (4H, V)``, ``W_hh (4H, H)`` and the two biases, added into one ``bias (4H,)``.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.weight_ih = nn.Parameter(arrays["W_ih"])
        self.weight_hh = nn.Parameter(arrays["W_hh"])
        self.bias = nn.Parameter(arrays["b_ih"] + arrays["b_hh"])

    def forward(self, xs: Any) -> Any:
        T, B = xs.shape[0], xs.shape[1]
        H = self.weight_hh.shape[1]
        h = tg.zeros(B, H, dtype=self.bias.dtype)
        c = tg.zeros(B, H, dtype=self.bias.dtype)
        hs = []
        for t in range(T):
            z = xs[t] @ self.weight_ih.T + h @ self.weight_hh.T + self.bias
            i, f, g, o = tg.chunk(z, 4, axis=-1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
            hs.append(h)
        return tg.stack(hs)


class MGU(nn.Module):
    """A minimal gated unit over ``xs (T, B, V) -> (T, B, H)``.

    ``MGU(V, H, dtype, seed)``: weights ``W_f, W_n (H, V)``, ``U_f, U_n (H, H)``, biases
    ``b_f, b_n (H,)``, drawn from U(−1/√H, 1/√H).
    """

    def __init__(self, V: int, H: int, dtype: np.dtype, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed + 1)
        k = 1 / np.sqrt(H)

        def u(*shape: int) -> nn.Parameter:
            return nn.Parameter(rng.uniform(-k, k, shape).astype(dtype))

        self.W_f, self.U_f, self.b_f = u(H, V), u(H, H), u(H)
        self.W_n, self.U_n, self.b_n = u(H, V), u(H, H), u(H)

    def forward(self, xs: Any) -> Any:
        T, B = xs.shape[0], xs.shape[1]
        h = tg.zeros(B, self.b_f.shape[0], dtype=self.b_f.dtype)
        hs = []
        for t in range(T):
            x = xs[t]
            f = (x @ self.W_f.T + h @ self.U_f.T + self.b_f).sigmoid()
            n = (x @ self.W_n.T + (f * h) @ self.U_n.T + self.b_n).tanh()
            h = (1 - f) * h + f * n
            hs.append(h)
        return tg.stack(hs)


class UserCellProblem:
    """A user-written recurrent cell + ``Linear`` head + summed cross-entropy on one problem.

    ``UserCellProblem(cell, size, dtype)``: ``cell`` is one of ``CELLS``, ``size`` one of
    ``bptt_step.SIZES`` (B, H, V, T). ``eager()`` runs one training step (forward over T,
    ``backward()``) and returns the loss; ``jitted()`` runs the same function through
    ``tinygrad_rnn.jit`` (the first call traces). ``grads()`` gives every parameter's
    gradient as an array, by name; ``floor_grads()`` (``lstm_by_hand`` only) the numpy
    floor's on the same parameters, under the names of ``grads()``.
    """

    def __init__(self, cell: str, size: str, dtype: np.dtype, seed: int = 0) -> None:
        if cell not in CELLS:
            raise ValueError(f"UserCellProblem: cell must be one of {CELLS}, got {cell!r}")
        self.cell = cell
        _, H, V, _ = SIZES[size]
        arrays, self.xs, self.targets = make_arrays(
            "lstm" if cell == "lstm_by_hand" else "rnn", size, dtype, seed
        )
        self._arrays = arrays
        body = HandLSTM(arrays) if cell == "lstm_by_hand" else MGU(V, H, dtype, seed)
        head = nn.Linear(H, V, dtype=dtype)
        head.weight = nn.Parameter(arrays["W_y"])
        head.bias = nn.Parameter(arrays["b_y"])
        self.params = {
            **{k: v for k, v in body.named_parameters()},
            **{f"head.{k}": v for k, v in head.named_parameters()},
        }

        def step(xs: Any, targets: Any) -> Any:
            loss = F.cross_entropy(head(body(xs)), targets, reduction="sum")
            loss.backward()
            return loss

        self._step = step
        self._jitted = tg.jit(step)

    def _clear(self) -> None:
        for p in self.params.values():
            p.grad = None

    def eager(self) -> float:
        """One eager training step; the loss."""
        self._clear()
        return float(self._step(self.xs, self.targets).item())

    def jitted(self) -> float:
        """The same step through ``tinygrad_rnn.jit``; the loss."""
        self._clear()
        return float(self._jitted(self.xs, self.targets).item())

    def grads(self) -> dict[str, np.ndarray]:
        """Every parameter's gradient after the last step, copied, by name."""
        out = {}
        for k, p in self.params.items():
            if p.grad is None:
                raise RuntimeError(f"grads: {k} has no gradient; run eager() or jitted() first")
            out[k] = np.array(p.grad.data)
        return out

    def floor_grads(self) -> dict[str, Any]:
        """The numpy floor's gradients on the same problem (``lstm_by_hand`` only)."""
        if self.cell != "lstm_by_hand":
            raise ValueError(f"floor_grads: only lstm_by_hand has a floor, not {self.cell!r}")
        return FLOOR_STEP["lstm"](self._arrays, self.xs, self.targets)


def rel_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest relative difference ``max|a−b| / max|b|`` over the arrays of two dicts."""
    assert a.keys() == b.keys(), (a.keys(), b.keys())
    return max(
        float(np.max(np.abs(np.asarray(a[k], np.float64) - b[k])) / np.max(np.abs(b[k]))) for k in b
    )


def check_cell(problem: UserCellProblem) -> dict[str, float | None]:
    """Relative gradient differences: ``jit_vs_eager`` (the worse of the tracing call's and
    a replay's against the eager step's) and, for ``lstm_by_hand`` (else None), the eager
    and the jitted gradients against the numpy floor's (``eager_vs_floor``,
    ``jit_vs_floor``)."""
    problem.eager()
    eager = problem.grads()
    jitted = []
    for _ in ("trace", "replay"):  # the first jitted call traces, the second replays
        problem.jitted()
        jitted.append(problem.grads())
    out: dict[str, float | None] = {
        "jit_vs_eager": max(rel_diff(g, eager) for g in jitted),
        "eager_vs_floor": None,
        "jit_vs_floor": None,
    }
    if problem.cell == "lstm_by_hand":
        ref = problem.floor_grads()
        out["eager_vs_floor"] = grad_diff(_floor_names(eager), ref)
        out["jit_vs_floor"] = max(grad_diff(_floor_names(g), ref) for g in jitted)
    return out


def _floor_names(g: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``lstm_by_hand``'s gradients under the floor's names."""
    names = {"W_ih": "weight_ih", "W_hh": "weight_hh", "b": "bias"}
    return {k: g[v] for k, v in names.items()} | {"W_y": g["head.weight"], "b_y": g["head.bias"]}


def run_size(size: str, dtype: np.dtype, repeats: int) -> list[Record]:
    """Round-robin the user cells and the built-in LSTM, eager and jitted, at one size.

    Two records per cell (eager, then jit); ``cell`` names the cell (``builtin_lstm`` for
    ``nn.LSTM``); ``grad_diff`` is the difference from the floor (None for the MGU); the
    jit record adds ``gain`` (median eager ms / median jit ms), ``paired_gain`` (median over
    rounds of eager / jit in the same round, and its min–max) and ``jit_vs_eager``.
    """
    fns: dict[str, Callable[[], float]] = {}
    checks: dict[str, dict[str, float | None]] = {}
    for cell in CELLS:
        prob = UserCellProblem(cell, size, dtype)
        checks[cell] = check_cell(prob)
        fns[f"user_{cell}"], fns[f"user_{cell}_jit"] = prob.eager, prob.jitted
    ours, ours_jit, _, agree = make_problem("lstm", size, dtype)
    # The built-in LSTM's own eager-vs-jit agreement is bptt_step.py's; here: both vs the floor.
    checks["builtin_lstm"] = {
        "eager_vs_floor": agree(),
        "jit_vs_floor": max(agree(ours_jit), agree(ours_jit)),  # its trace, then a replay
        "jit_vs_eager": None,
    }
    fns["builtin_lstm"], fns["builtin_lstm_jit"] = ours, ours_jit
    t = measure(fns, repeats)
    key = {"size": size, "dtype": str(dtype)}
    records: list[Record] = []
    for cell in (*CELLS, "builtin_lstm"):
        eager_name = cell if cell == "builtin_lstm" else f"user_{cell}"
        jit_name = f"{eager_name}_jit"
        c = checks[cell]
        common = {"cell": cell, "model": "mgu" if cell == "mgu" else "lstm", **key}
        records.append(
            {
                "impl": eager_name,
                **common,
                **summarize(t[eager_name]),
                "grad_diff": c["eager_vs_floor"],
            }
        )
        records.append(
            {
                "impl": jit_name,
                **common,
                **summarize(t[jit_name]),
                "grad_diff": c["jit_vs_floor"],
                "jit_vs_eager": c["jit_vs_eager"],
                "gain": statistics.median(t[eager_name]) / statistics.median(t[jit_name]),
                **paired(t[eager_name], t[jit_name], "paired_gain"),
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="S,M")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=0, help="0: by size (S 200, M 30, L 8)")
    parser.add_argument("--quick", action="store_true", help="by-size repeats S 50, M 10, L 3")
    parser.add_argument("--json", metavar="PATH", help="also write the records as JSON here")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    print(
        f"machine: {platform.machine()}; numpy {np.__version__}; tinygrad_rnn {tg.__version__}; "
        f"dtype {dtype}; user cells {', '.join(CELLS)} vs the built-in nn.LSTM"
    )
    print()
    print(
        "| cell | size | eager ms (min–max) | jit ms (min–max) | gain "
        "| grads: jit vs eager | eager vs floor | jit vs floor |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    records: list[Record] = []
    for size in args.sizes.split(","):
        recs = run_size(size, dtype, repeats_for(size, args.repeats, args.quick))
        records += recs
        for eager_rec, jit_rec in zip(recs[::2], recs[1::2]):
            print(
                f"| {eager_rec['cell']} | {size} {SIZES[size]} | {_cell(eager_rec)} | "
                f"{_cell(jit_rec)} | {jit_rec['gain']:.2f} | {_diff(jit_rec['jit_vs_eager'])} | "
                f"{_diff(eager_rec['grad_diff'])} | {_diff(jit_rec['grad_diff'])} |",
                flush=True,
            )
    if args.json:
        write_json(
            args.json,
            {
                "script": "user_cell.py",
                "versions": {"numpy": np.__version__, "tinygrad_rnn": tg.__version__},
                "records": records,
            },
        )


def _diff(d: float | None) -> str:
    return "—" if d is None else f"{d:.1e}"


def _cell(s: Record) -> str:
    return f"{s['median_ms']:.3g} ({s['min_ms']:.3g}–{s['max_ms']:.3g})"


if __name__ == "__main__":
    main()
