"""What each fast-path field of ``Primitive`` buys the eager training step (issue 12, item 4).

A ``Primitive`` may carry optional array-path forms and declarations that the eager engine
(``tinygrad_rnn/engine.py``, ``tinygrad_rnn/autograd.py``) uses when present; the
derivative rules in ``vjps`` / ``vjp_n`` stay the definition (docs/design.md, "Cells in
elementary ops, compound ops and fast forms"):

* ``factors``: a weight gradient as its two factors, multiplied out once over all steps;
* ``accumulate``: a partial gradient (a slice, the cross-entropy's) added into one buffer;
* ``vjp_all``: a variadic op's gradients (``stack``'s slices) in one call;

Two more fields were measured by this script (``results/fast_forms.md``, at 78404b4) and
then left the eager engine: ``fresh`` (a rule's result declared new, so later gradients
were added into it in place: 0.97-1.02x, removed from ``Primitive``) and ``shape_only``
(inputs saved as zero-byte stand-ins), which eager mode then stopped using: 9-11 % slower at
M and no memory saved, because eager nodes keep their input Tensors. It is back (measured
here again): eager nodes save a stand-in only for an input of 16 KiB or more, and the layers
release the Tensors' own values (the projection, an LSTM step's pre-activations and the
terms of its cell update), so the stand-ins are what lets that memory go.

For the **eager** step of ``bptt_step.make_problem`` (RNN and LSTM, sizes S and M) this
times the step with every field as shipped ("all on"), with each field switched off in turn
on every ``Primitive`` of ``tinygrad_rnn.ops`` (set to its absent value: ``None`` or
``()``, restored afterwards), and with all of them off. The configurations run round-robin
in one process (the order rotates each round); the table gives the median and min–max ms,
the ratio to "all on" of the medians and paired per round (median, min–max). The whole
measurement runs twice (``--runs``), since the machine is shared. Peak memory of one step
is measured separately from the timing (``tracemalloc``, which slows numpy down), as is the
peak of one T = 1,000 LSTM step (B = 32, H = 128, V = 65, as ``memory.py``) in every
configuration. Before anything is timed, every configuration's gradients are checked
against the numpy floor's (max relative difference 1e-4 in float32, 1e-10 in float64): a
configuration that computed something else would stop the script.

``tinygrad_rnn.jit`` also reads some of these fields; it is not used here (eager only).

    OPENBLAS_NUM_THREADS=1 python benchmarks/fast_forms.py            # the full report
    OPENBLAS_NUM_THREADS=1 python benchmarks/fast_forms.py --quick    # fewer repeats, no T=1000
    python benchmarks/fast_forms.py --models lstm --sizes M --runs 1 --long-T 0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # this checkout's tinygrad_rnn

import bptt_step
from memory import peak_above_baseline
from run_suite import blas_summary, git_commit

from tinygrad_rnn import ops
from tinygrad_rnn.autograd import Primitive

# Each fast-path field and the value a Primitive has when it does not declare it.
ABSENT: dict[str, Any] = {
    "factors": None,
    "accumulate": None,
    "vjp_all": None,
    "shape_only": (),
}
ALL_ON = "all on"
ALL_OFF = "all off"
# Configuration name -> the fields switched off in it.
CONFIGS: dict[str, tuple[str, ...]] = {
    ALL_ON: (),
    **{f"{field} off": (field,) for field in ABSENT},
    ALL_OFF: tuple(ABSENT),
}
LONG = (32, 128, 65, 1000)  # B, H, V, T of the long LSTM step (memory.py's)
LONG_REPEATS = 3  # timed rounds of the long step (about 1-2 s per call)
REPEATS = {"S": 150, "M": 40, "L": 8}
QUICK_REPEATS = {"S": 40, "M": 8, "L": 3}
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}  # max grad diff from the floor
MB = 1024 * 1024


def primitives() -> list[Primitive]:
    """Every ``Primitive`` instance in ``tinygrad_rnn.ops`` (public and private), once each."""
    found: dict[int, Primitive] = {}
    for value in vars(ops).values():
        if isinstance(value, Primitive):
            found.setdefault(id(value), value)
    return list(found.values())


def declared(field: str) -> list[str]:
    """Names of the primitives of ``tinygrad_rnn.ops`` that set ``field`` (not absent)."""
    return sorted(p.name for p in primitives() if getattr(p, field) != ABSENT[field])


@contextlib.contextmanager
def fields_off(fields: Sequence[str]) -> Iterator[None]:
    """Set ``fields`` to their absent value on every primitive of ``tinygrad_rnn.ops``.

    The previous values (the very objects) are put back on exit, also after an exception.

    Raises:
        ValueError: a name in ``fields`` is not one of ``ABSENT``'s fields.
    """
    unknown = [f for f in fields if f not in ABSENT]
    if unknown:
        raise ValueError(f"fields_off: unknown field(s) {unknown}; expected some of {list(ABSENT)}")
    saved = [(p, f, getattr(p, f)) for p in primitives() for f in fields]
    try:
        for p, f, _ in saved:
            setattr(p, f, ABSENT[f])
        yield
    finally:
        for p, f, value in saved:
            setattr(p, f, value)


class Problem(NamedTuple):
    """One problem's eager step (returns the loss), its gradient check, its parameters."""

    step: Callable[[], float]
    agree: Callable[[], float]  # runs the step; max relative grad difference from the floor
    params: list[Any]  # Tensors: their ``.grad`` after a step are the step's gradients


def make_eager(
    model: str, size: str, dtype: np.dtype, shape: tuple[int, int, int, int] | None = None
) -> Problem:
    """``bptt_step.make_problem``'s eager step, its gradient check and its parameters.

    ``size`` names one of ``bptt_step.SIZES``; with ``shape`` (B, H, V, T) it names that
    shape instead, added to ``bptt_step.SIZES`` only while the problem is built. The jitted
    step ``make_problem`` also returns is never called here.
    """
    if shape is None:
        ours, ours_jit, _, agree = bptt_step.make_problem(model, size, dtype)
    else:
        with mock.patch.dict(bptt_step.SIZES, {size: shape}):
            ours, ours_jit, _, agree = bptt_step.make_problem(model, size, dtype)
    return Problem(ours, agree, ours_jit.params)


def gradients(problem: Problem) -> tuple[float, list[np.ndarray]]:
    """The loss of one step and a copy of every parameter's gradient after it."""
    loss = problem.step()
    return loss, [np.array(p.grad.data) for p in problem.params]


def check_configs(agree: Callable[[], float], dtype: np.dtype, what: str) -> dict[str, float]:
    """Every configuration's grad diff from the floor; stops if one is over the tolerance."""
    diffs: dict[str, float] = {}
    for name, fields in CONFIGS.items():
        with fields_off(fields):
            diffs[name] = agree()
        if not diffs[name] <= TOLERANCE[str(dtype)]:
            raise SystemExit(
                f"fast_forms: {what}, {name}: gradients differ from the floor's by "
                f"{diffs[name]:.2e} (> {TOLERANCE[str(dtype)]:.0e}); not timing a wrong step"
            )
    return diffs


def time_configs(
    step: Callable[[], float], repeats: int, warmup: int = 2
) -> dict[str, list[float]]:
    """ms per call of ``step`` in every configuration, round-robin (order rotating per round).

    Only the call is timed: switching the fields happens outside the timed region.
    """
    names = list(CONFIGS)
    for _ in range(warmup):
        for name in names:
            with fields_off(CONFIGS[name]):
                step()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            with fields_off(CONFIGS[name]):
                t0 = time.perf_counter()
                step()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def peak_configs(step: Callable[[], float]) -> dict[str, int]:
    """Peak traced bytes of one ``step`` above what existed before it, per configuration."""
    peaks: dict[str, int] = {}
    for name, fields in CONFIGS.items():
        with fields_off(fields):
            step()  # warm up in this configuration
            peaks[name] = peak_above_baseline(step)[0]
    return peaks


def paired(times: list[float], base: list[float]) -> tuple[float, float, float]:
    """Median, min and max over rounds of ``times[k] / base[k]``."""
    r = [a / b for a, b in zip(times, base)]
    return statistics.median(r), min(r), max(r)


def measure_problem(
    model: str, size: str, dtype: np.dtype, repeats: int
) -> dict[str, dict[str, Any]]:
    """Per configuration: times (ms), peak bytes and grad diff of one problem's eager step."""
    step, agree, _ = make_eager(model, size, dtype)
    diffs = check_configs(agree, dtype, f"{model} {size}")
    peaks = peak_configs(step)
    times = time_configs(step, repeats)
    return {name: {"ms": times[name], "peak": peaks[name], "diff": diffs[name]} for name in CONFIGS}


def _ms(v: list[float]) -> str:
    return f"{statistics.median(v):.3g} ({min(v):.3g}–{max(v):.3g})"


def problem_rows(label: str, res: dict[str, dict[str, Any]]) -> list[str]:
    """The markdown rows of one problem: one per configuration."""
    on = res[ALL_ON]
    rows = []
    for name, r in res.items():
        if name == ALL_ON:
            ratio = paired_cell = peak_ratio = "1"
        else:
            ratio = f"{statistics.median(r['ms']) / statistics.median(on['ms']):.3f}"
            med, lo, hi = paired(r["ms"], on["ms"])
            paired_cell = f"{med:.3f} ({lo:.2f}–{hi:.2f})"
            peak_ratio = f"{r['peak'] / on['peak']:.3f}"
        rows.append(
            f"| {label} | {name} | {_ms(r['ms'])} | {ratio} | {paired_cell} | "
            f"{r['peak'] / MB:.2f} | {peak_ratio} | {r['diff']:.1e} |"
        )
    return rows


TABLE_HEAD = (
    "| problem | configuration | ms median (min–max) | × all on (medians) "
    "| × all on, paired (min–max) | peak MB | peak × all on | grad diff |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|"
)


def summary_table(runs: list[dict[str, dict[str, dict[str, Any]]]]) -> list[str]:
    """Per field and problem: the paired time ratio off / on of each run, and the peak ratio."""
    problems = list(runs[0])
    lines = [
        "| configuration | " + " | ".join(problems) + " |",
        "|---|" + "---:|" * len(problems),
    ]
    for name in CONFIGS:
        if name == ALL_ON:
            continue
        cells = []
        for prob in problems:
            ratios = " / ".join(
                f"{paired(run[prob][name]['ms'], run[prob][ALL_ON]['ms'])[0]:.2f}" for run in runs
            )
            peak = runs[0][prob][name]["peak"] / runs[0][prob][ALL_ON]["peak"]
            cells.append(f"t {ratios}, mem {peak:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def measure_long(dtype: np.dtype, T: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Per configuration: peak bytes, times (ms; none if ``repeats`` is 0) and grad diff of one
    long LSTM step (``LONG`` with ``T`` steps)."""
    B, H, V, _ = LONG
    step, agree, _ = make_eager("lstm", f"T={T}", dtype, (B, H, V, T))
    diffs = check_configs(agree, dtype, f"lstm T={T}")
    peaks = peak_configs(step)  # also warms every configuration up
    times = time_configs(step, repeats, warmup=0) if repeats else {n: [] for n in CONFIGS}
    return {name: {"ms": times[name], "peak": peaks[name], "diff": diffs[name]} for name in CONFIGS}


def long_section(res: dict[str, dict[str, Any]], T: int) -> list[str]:
    """The markdown section of the long step (``measure_long``'s result)."""
    B, H, V, _ = LONG
    repeats = len(res[ALL_ON]["ms"])
    peaks = {name: r["peak"] for name, r in res.items()}
    lines = [
        f"## One LSTM step, T = {T}, B = {B}, H = {H}, V = {V}: peak memory"
        + (f" and time ({repeats} rounds)" if repeats else "")
        + "\n",
        "| configuration | peak MB | peak × all on | ms median (min–max) "
        "| × all on, paired (min–max) | grad diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in res.items():
        ms = ratio = "—"
        if repeats:
            ms = _ms(r["ms"])
            med, lo, hi = paired(r["ms"], res[ALL_ON]["ms"])
            ratio = "1" if name == ALL_ON else f"{med:.3f} ({lo:.2f}–{hi:.2f})"
        lines.append(
            f"| {name} | {peaks[name] / MB:.1f} | {peaks[name] / peaks[ALL_ON]:.3f} | {ms} "
            f"| {ratio} | {r['diff']:.1e} |"
        )
    return lines


def records(runs: list[dict[str, dict[str, dict[str, Any]]]], long: dict | None) -> list[dict]:
    """Flat JSON records: one per (run, problem, configuration), and the long step's."""
    out = []
    problems = [(k + 1, label, res) for k, run in enumerate(runs) for label, res in run.items()]
    if long is not None:
        problems.append((1, "lstm long", long))
    for k, label, res in problems:
        for name, r in res.items():
            rec = {"run": k, "problem": label, "config": name, "off": list(CONFIGS[name])}
            rec.update(peak_bytes=r["peak"], grad_diff=r["diff"], times_ms=r["ms"])
            if r["ms"]:
                rec.update(bptt_step.summarize(r["ms"]))
                rec.update(bptt_step.paired(r["ms"], res[ALL_ON]["ms"], "paired_over_on"))
            out.append(rec)
    return out


def header(args: argparse.Namespace) -> list[str]:
    """Machine, versions, thread settings and load, for the report's top."""
    threads = ", ".join(
        f"{v}={os.environ[v]}"
        for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
        if v in os.environ
    )
    return [
        "# Fast forms of `Primitive`: what each buys the eager step (benchmarks/fast_forms.py)\n",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; python "
        f"{platform.python_version()}; numpy {np.__version__}; BLAS {blas_summary()}",
        f"- commit: {git_commit()}; dtype {args.dtype}; thread settings: {threads or 'none'}; "
        f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- command: `python benchmarks/fast_forms.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        "| field | absent value | declared by (ops) |",
        "|---|---|---|",
        *(f"| `{f}` | `{ABSENT[f]!r}` | {', '.join(declared(f)) or '—'} |" for f in ABSENT),
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="rnn,lstm")
    parser.add_argument("--sizes", default="S,M")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--runs", type=int, default=2, help="whole measurements, reported each")
    parser.add_argument("--repeats", type=int, default=0, help="0: by size (S 150, M 40, L 8)")
    parser.add_argument("--quick", action="store_true", help="S 40, M 8 repeats; no long step")
    parser.add_argument("--long-T", type=int, default=None, help="T of the long step; 0: skip")
    parser.add_argument(
        "--long-repeats", type=int, default=LONG_REPEATS, help="timed rounds of the long step"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the records as JSON here")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype)
    long_T = (0 if args.quick else LONG[3]) if args.long_T is None else args.long_T
    print("\n".join(header(args)), flush=True)
    runs: list[dict[str, dict[str, dict[str, Any]]]] = []
    for k in range(args.runs):
        print(f"## Run {k + 1} of {args.runs}\n\n{TABLE_HEAD}", flush=True)
        run: dict[str, dict[str, dict[str, Any]]] = {}
        for model in args.models.split(","):
            for size in args.sizes.split(","):
                repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)[size]
                res = measure_problem(model, size, dtype, repeats)
                label = f"{model} {size}"
                run[label] = res
                print("\n".join(problem_rows(label, res)), flush=True)
        n = {label: len(res[ALL_ON]["ms"]) for label, res in run.items()}
        print(f"\nrounds: {', '.join(f'{p} {c}' for p, c in n.items())}\n", flush=True)
        runs.append(run)
    if runs:
        print(
            "## Summary: time off / all on (paired median; run 1 / run 2 ...), peak off / all on\n"
        )
        print("\n".join(summary_table(runs)) + "\n", flush=True)
    long = measure_long(dtype, long_T, args.long_repeats) if long_T else None
    if long is not None:
        print("\n".join(long_section(long, long_T)), flush=True)
    if args.json:
        bptt_step.write_json(
            args.json,
            {
                "script": "fast_forms.py",
                "versions": {"numpy": np.__version__},
                "blas": blas_summary(),
                "commit": git_commit(),
                "dtype": str(dtype),
                "long_shape": [*LONG[:3], long_T],
                "records": records(runs, long),
            },
        )


if __name__ == "__main__":
    main()
