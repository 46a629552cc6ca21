"""The whole BPTT training-step benchmark: ours (eager and jit) vs the numpy floor and others.

Runs, each in its own subprocess and one subprocess per (model, size) problem (PyTorch's
OpenMP threads and numpy's BLAS threads fight over the cores when they share a process, and
a process's allocator state carries over from one problem to the next):

1. ``bptt_step.py --perstep``: the numpy floor and tinygrad_rnn, eager and jitted,
   round-robin in one process (so the ratios to the floor are as fair as this machine
   allows), the jit's first (tracing) call timed against an eager call, then the per-step
   numpy BPTT round-robin with the floor;
2. ``user_cell.py`` (sizes S and M only): two cells the library does not ship, written from
   elementary ops in a Python loop, eager and jitted, round-robin with the built-in
   ``nn.LSTM`` eager and jitted: what each gains from jit;
3. ``torch_step.py``: PyTorch eager loop and ``nn.RNN``/``nn.LSTM`` (skipped if torch is absent);
4. ``hips_step.py``: HIPS autograd (skipped if it is absent);

then writes one markdown report (times, the issue's targets each marked met / missed /
marginal, the user cell's gains, every implementation's gradient check) to
``benchmarks/results/latest.md`` and stdout. The scripts' own tables go to stderr as they
run, so ``> report.md`` keeps only the report.

    python benchmarks/run_suite.py                 # S, M, L; float32 and float64 (minutes)
    python benchmarks/run_suite.py --quick         # S and M, fewer repeats, float32 only
    python benchmarks/run_suite.py --sizes L --dtype float32 --skip-hips --threads 1
    python benchmarks/run_suite.py --from-json benchmarks/results/latest.json  # re-render
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "results" / "latest.md"

MODELS = ("rnn", "lstm")
ALL_SIZES = ("S", "M", "L")
SIZE_SHAPES = {"S": (1, 100, 65, 25), "M": (32, 128, 65, 50), "L": (64, 512, 128, 64)}

# Rows of the time table, in order: (key in the scripts' JSON records, label).
IMPLS = (
    ("numpy_floor", "numpy floor"),
    ("tinygrad_rnn", "**tinygrad_rnn eager**"),
    ("tinygrad_rnn_jit", "**tinygrad_rnn jit** (replay)"),
    ("tinygrad_rnn_jit_first", "tinygrad_rnn jit, first (tracing) call"),
    ("tinygrad_rnn_jit_second", "tinygrad_rnn jit, second call (writes the replay code)"),
    ("numpy_perstep", "numpy per-step (min-char-rnn style)"),
    ("torch_eager", "PyTorch eager loop (input projection hoisted)"),
    ("torch_nn", "PyTorch nn.RNN / nn.LSTM (fused)"),
    ("hips_autograd", "HIPS autograd"),
)
LABELS = dict(IMPLS)
# One-off calls, not steps of the round-robin: shown as multiples of an eager call.
ONE_OFF = ("tinygrad_rnn_jit_first", "tinygrad_rnn_jit_second")
SCRIPT_IMPLS = {
    "bptt_step.py": (
        "numpy_floor",
        "tinygrad_rnn",
        "tinygrad_rnn_jit",
        *ONE_OFF,
        "numpy_perstep",
    ),
    "user_cell.py": (),  # its records have a section of their own
    "torch_step.py": ("torch_eager", "torch_nn"),
    "hips_step.py": ("hips_autograd",),
}
USER_CELL_SIZES = ("S", "M")
USER_CELLS = (
    ("lstm_by_hand", "user's LSTM, by hand"),
    ("mgu", "user's minimal gated unit"),
    ("builtin_lstm", "built-in nn.LSTM"),
)

# Issue 12's targets, float32, 1 BLAS thread: median ms / the floor's median ms ...
JIT_TARGETS = {"S": 1.3, "M": 1.1, "L": 1.05}
EAGER_TARGETS = {"S": 3.5, "M": 1.5, "L": 1.2}
# ... the first (tracing) call / an eager call ...
FIRST_CALL_TARGET = 3.0
# ... and the jitted step ahead of (faster than) these at every size.
AHEAD_OF = ("torch_eager", "hips_autograd")
# A target met by less than this fraction of its bound is flagged "marginal".
MARGINAL = 0.05
# Largest relative gradient difference from the floor still counted as agreeing.
GRAD_TOL = {"float32": 1e-4, "float64": 1e-10}
# Largest relative difference between a user cell's jitted and eager gradients.
JIT_GRAD_TOL = {"float32": 1e-5, "float64": 1e-10}

Record = dict[str, Any]
# Per dtype: the records, {impl: why it has no numbers}, notes from the scripts.
DtypeResult = tuple[list[Record], dict[str, str], list[str]]


def fmt_ms(v: float) -> str:
    """A time in ms with about three significant figures and no exponent."""
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _run(cmd: list[str], timeout: float) -> int:
    """Run one script, its output going to our stderr; return its exit code."""
    print(f"\n$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        rc = subprocess.run(
            cmd, stdout=sys.stderr, stderr=sys.stderr, timeout=timeout, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        print(f"timed out after {timeout:.0f} s", file=sys.stderr)
        return -1
    print(f"({time.perf_counter() - t0:.0f} s, exit {rc})", file=sys.stderr, flush=True)
    return rc


def run_script(
    script: str, dtype: str, args: argparse.Namespace, workdir: Path
) -> tuple[list[Record], dict[str, Any]]:
    """Run one benchmark script, one subprocess per (model, size); records and metadata.

    A fresh process per problem: how fast large arrays come back from the allocator
    depends on what the process allocated before (glibc returns freed memory to the
    system and page-faults it in again), which made one problem's figures depend on which
    problems ran before it in the same process.
    """
    records: list[Record] = []
    meta: dict[str, Any] = {}
    sizes = args.sizes.split(",")
    if script == "user_cell.py":  # the user cells and the built-in LSTM share a process
        problems: list[tuple[str | None, str]] = [(None, s) for s in sizes]
    else:
        problems = [(m, s) for m in MODELS for s in sizes]
    for model, size in problems:
        out = workdir / f"{script}.{dtype}.{model}.{size}.json"
        cmd = [sys.executable, str(HERE / script), "--sizes", size, "--dtype", dtype]
        cmd += ["--json", str(out)]
        if model is not None:
            cmd += ["--models", model]
        if args.quick:
            cmd.append("--quick")
        if args.repeats:
            cmd += ["--repeats", str(args.repeats)]
        if script == "bptt_step.py":
            cmd.append("--perstep")
        if script == "torch_step.py":
            cmd += ["--threads", str(torch_threads(args))]
        rc = _run(cmd, args.timeout)
        if rc != 0 or not out.exists():
            why = f"exit {rc}" if rc != -1 else f"timed out ({args.timeout:.0f} s)"
            return records, {**meta, "failed": why}
        payload = json.loads(out.read_text())
        records += payload.pop("records")
        notes = meta.get("notes", []) + payload.pop("notes", [])
        meta.update(payload)
        if notes:
            meta["notes"] = notes
        if "skipped" in meta:  # the comparison is not installed: no use trying the rest
            return records, meta
    return records, meta


def torch_threads(args: argparse.Namespace) -> int:
    """PyTorch's thread count: ``--threads``, else the OMP/OpenBLAS setting, else 2.

    With ``OPENBLAS_NUM_THREADS=1`` (the targets' setting) numpy runs on one thread, so
    PyTorch gets one too: the comparison is then one core against one core.
    """
    if args.threads:
        return int(args.threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    return 2


def machine_header(args: argparse.Namespace, load_start: tuple[float, ...]) -> list[str]:
    """Markdown lines describing the machine, the software and the run."""
    import numpy as np

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "?"
    load_end = os.getloadavg()
    env = {
        k: os.environ[k]
        for k in (
            "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE",
        )
        if k in os.environ
    }
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # Before the run, anything over half the cores is someone else's; during it, our own
    # process accounts for up to all the cores.
    busy = load_start[0] > 0.5 * (cores or 1) or load_end[0] > (cores or 1) + 0.5
    warning = [
        f"- ⚠ **busy machine** (load {_load(load_start[:1])} before the run, "
        f"{_load(load_end[:1])} after, on {cores} cores): "
        "times are inflated and unsteady, multi-threaded BLAS calls most of all; trust the "
        "round-robin ratios over absolute times"
        + (
            ""
            if args.threads == 1 or env.get("OPENBLAS_NUM_THREADS") == "1"
            else ", or rerun when idle or with `--threads 1`"
        )
    ]
    return [
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; commit: {git_commit()}",
        f"- machine: {cpu}; {os.cpu_count()} logical cores ({cores} usable); "
        f"{platform.system()} {platform.machine()}",
        f"- load average (1, 5, 15 min): at start {_load(load_start)}, at end {_load(load_end)}"
        " (a shared machine: see benchmarks/README.md)",
        f"- Python {platform.python_version()}; numpy {np.__version__}; BLAS: {blas_summary()}",
        f"- thread settings: {', '.join(f'{k}={v}' for k, v in env.items()) or 'none set'}"
        f"{f'; torch.set_num_threads({torch_threads(args)})' if not args.skip_torch else ''}",
        f"- command: `{' '.join(['python benchmarks/run_suite.py', *sys.argv[1:]])}`",
        *(warning if busy else []),
    ]


def _load(avg: Iterable[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in avg)


def git_commit() -> str:
    """Short commit hash of the checkout, marked if the working tree has changes (read-only)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} + uncommitted changes" if dirty else head


def blas_summary() -> str:
    """numpy's BLAS: via threadpoolctl if installed (kernel, threads), else numpy's build info."""
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return "; ".join(
                f"{p.get('internal_api')} {p.get('version')}, kernel {p.get('architecture')}, "
                f"threads: {p.get('num_threads')}"
                for p in pools
            )
    except ImportError:
        pass
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (threadpoolctl not installed)"
    except (TypeError, KeyError):
        return "unknown (numpy.show_config() prints it)"


def _cols(sizes: list[str]) -> list[tuple[str, str]]:
    return [(m, s) for m in MODELS for s in sizes]


def _head(first: str, sizes: list[str]) -> list[str]:
    cols = _cols(sizes)
    return [
        f"| {first} | " + " | ".join(f"{m.upper()} {s}" for m, s in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]


def _spread(r: Record) -> str:
    return f"{fmt_ms(r['median_ms'])} ({fmt_ms(r['min_ms'])}–{fmt_ms(r['max_ms'])})"


def time_table(
    records: list[Record], dtype: str, sizes: list[str], status: dict[str, str]
) -> list[str]:
    """Median ms (min–max) per implementation and problem."""
    cols = _cols(sizes)
    lines = _head("implementation", sizes)
    for impl, label in IMPLS:
        if impl in status:
            lines.append(f"| {label} | {status[impl]} |" + " |" * (len(cols) - 1))
            continue
        cells = []
        for m, s in cols:
            r = find(records, impl, m, s, dtype)
            if r is None:
                cells.append("—")
                continue
            bad = _wrong(r, dtype)
            cells.append(_spread(r) + (" ✗ wrong grads" if bad else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def repeats_line(records: list[Record], dtype: str, sizes: list[str]) -> str:
    """How many timings each median and min–max is over, by size."""
    parts = []
    for s in sizes:
        steps = sorted({r["n"] for r in records if _is(r, "tinygrad_rnn", s, dtype)})
        firsts = sorted({r["n"] for r in records if _is(r, "tinygrad_rnn_jit_first", s, dtype)})
        others = sorted(
            {r["n"] for r in records if r["size"] == s and r["dtype"] == dtype and "n" in r}
            - set(steps)
            - set(firsts)
        )
        if steps:
            part = f"{s}: n = {'/'.join(map(str, steps))} rounds"
            if firsts:
                part += f", {'/'.join(map(str, firsts))} first calls"
            if others:
                part += f" (other scripts: {'/'.join(map(str, others))})"
            parts.append(part)
    return "Repeats behind each median and min–max: " + ("; ".join(parts) or "—") + "."


def _is(r: Record, impl: str, size: str, dtype: str) -> bool:
    return (r["impl"], r["size"], r["dtype"]) == (impl, size, dtype)


def _wrong(r: Record, dtype: str) -> bool:
    d = r.get("grad_diff")
    return d is not None and d > GRAD_TOL[dtype]


def relative_table(records: list[Record], dtype: str, sizes: list[str]) -> list[str]:
    """Every step's median as a multiple of the floor's; the one-off calls per eager call."""
    cols = _cols(sizes)
    lines = _head("× floor (one-off calls: × eager)", sizes)
    for impl, label in IMPLS[1:]:
        cells = []
        for m, s in cols:
            r = find(records, impl, m, s, dtype)
            if impl in ONE_OFF:
                cells.append(f"{r['over_eager']:.2f} × eager" if r else "—")
                continue
            f = find(records, "numpy_floor", m, s, dtype)
            cells.append(f"{r['median_ms'] / f['median_ms']:.2f}" if r and f else "—")
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def verdict(value: float, bound: float, strict: bool = False) -> str:
    """met / marginal (met by less than ``MARGINAL`` of the bound) / missed.

    ``strict``: the value must be below the bound (``ahead of``), not just at most it.
    """
    ok = value < bound if strict else value <= bound
    if not ok:
        return "❌ missed"
    if value > bound * (1 - MARGINAL):
        return f"⚠️ met, marginal (< {MARGINAL:.0%})"
    return "✅ met"


def _range(r: Record, key: str) -> str:
    lo, hi = r.get(f"{key}_min"), r.get(f"{key}_max")
    return f" ({lo:.2f}–{hi:.2f})" if lo is not None and hi is not None else ""


def target_rows(records: list[Record], dtype: str, sizes: list[str]) -> list[list[str]]:
    """The issue's targets, one row per (model, size, target): the cells of the table."""
    rows: list[list[str]] = []
    for m in MODELS:
        for s in sizes:
            where = [m.upper(), s]
            floor = find(records, "numpy_floor", m, s, dtype)
            for impl, what, bounds in (
                ("tinygrad_rnn_jit", "jit / floor", JIT_TARGETS),
                ("tinygrad_rnn", "eager / floor", EAGER_TARGETS),
            ):
                r = find(records, impl, m, s, dtype)
                if r is None or floor is None:
                    rows.append([*where, what, "—", "—", f"≤ {bounds[s]}", "not measured"])
                    continue
                spread = f"paired {r['paired_ratio']:.2f}{_range(r, 'paired_ratio')}, n = {r['n']}"
                rows.append(
                    [
                        *where,
                        what,
                        f"{r['ratio']:.2f}",
                        spread,
                        f"≤ {bounds[s]}",
                        verdict(r["ratio"], bounds[s]),
                    ]
                )
            first = find(records, "tinygrad_rnn_jit_first", m, s, dtype)
            what = "jit first (tracing) call / eager"
            if first is None:
                rows.append([*where, what, "—", "—", f"≤ {FIRST_CALL_TARGET:g}", "not measured"])
            else:
                rows.append(
                    [
                        *where,
                        what,
                        f"{first['over_eager']:.2f}",
                        f"{_range(first, 'over_eager').strip()} over n = {first['n']} traces",
                        f"≤ {FIRST_CALL_TARGET:g}",
                        verdict(first["over_eager"], FIRST_CALL_TARGET),
                    ]
                )
            jit = find(records, "tinygrad_rnn_jit", m, s, dtype)
            for other in AHEAD_OF:
                o = find(records, other, m, s, dtype)
                what = f"jit / {LABELS[other].split(' (')[0]}"
                if jit is None or o is None:
                    rows.append([*where, what, "—", "—", "< 1 (ahead)", "not measured"])
                    continue
                value = jit["median_ms"] / o["median_ms"]
                spread = (
                    f"jit {fmt_ms(jit['min_ms'])}–{fmt_ms(jit['max_ms'])} ms, theirs "
                    f"{fmt_ms(o['min_ms'])}–{fmt_ms(o['max_ms'])} ms (n = {jit['n']}, {o['n']})"
                )
                rows.append(
                    [*where, what, f"{value:.2f}", spread, "< 1 (ahead)", verdict(value, 1, True)]
                )
    return rows


def target_table(records: list[Record], dtype: str, sizes: list[str]) -> tuple[list[str], str]:
    """The targets table and its one-line summary (how many met, marginal, missed)."""
    rows = target_rows(records, dtype, sizes)
    lines = [
        "| model | size | measure | value | spread | target | |",
        "|---|---|---|---:|---|---:|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    status = [r[-1] for r in rows]
    met = sum(v.startswith(("✅", "⚠️")) for v in status)
    marginal = sum(v.startswith("⚠️") for v in status)
    missed = sum(v.startswith("❌") for v in status)
    unmeasured = len(status) - met - missed
    summary = (
        f"**{met} of {len(status)} targets met** ({marginal} of them marginal), {missed} missed"
        + (f", {unmeasured} not measured" if unmeasured else "")
        + "."
    )
    return lines, summary


def grad_table(records: list[Record], dtype: str, sizes: list[str]) -> tuple[list[str], int]:
    """Largest relative gradient difference from the floor, per implementation and problem."""
    cols = _cols(sizes)
    lines = _head("grad diff vs floor", sizes)
    bad = 0
    for impl, label in IMPLS[1:]:
        cells = []
        for m, s in cols:
            r = find(records, impl, m, s, dtype)
            if r is None:
                cells.append("—")
                continue
            wrong = _wrong(r, dtype)
            bad += wrong
            cells.append(f"{r['grad_diff']:.1e}" + (" ✗" if wrong else ""))
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines, bad


def user_cell_section(
    records: list[Record], dtype: str, sizes: list[str], status: str | None
) -> list[str]:
    """A user's own cells vs the built-in LSTM: times, jit gains, gradient agreement."""
    out = [f"### a user's own cell vs the built-in LSTM, {dtype}", ""]
    if status:
        return [*out, f"Not measured: {status}."]
    sizes = [s for s in sizes if s in USER_CELL_SIZES]
    if not sizes:
        return [*out, f"Not measured: the user cells run at {' and '.join(USER_CELL_SIZES)} only."]
    out += [
        "| cell | size | eager ms | jit ms | gain = eager / jit | paired gain | "
        "gain / built-in's | grads: jit vs eager | grads vs floor (eager, jit) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    disagree = 0
    for s in sizes:
        builtin = _user(records, "builtin_lstm", s, dtype, jit=True)
        for cell, label in USER_CELLS:
            e, j = (_user(records, cell, s, dtype, jit=flag) for flag in (False, True))
            if e is None or j is None:
                out.append(f"| {label} | {s} | — | — | — | — | — | — | — |")
                continue
            rel = f"{j['gain'] / builtin['gain']:.2f}" if builtin and cell != "builtin_lstm" else ""
            jve = j.get("jit_vs_eager")
            if jve is None:
                agree = "—"
            else:
                ok = jve <= JIT_GRAD_TOL[dtype]
                disagree += not ok
                agree = f"{jve:.1e} {'✅' if ok else '❌'}"
            floor = (
                "—"
                if e.get("grad_diff") is None
                else f"{e['grad_diff']:.1e}, {j['grad_diff']:.1e}"
                + (" ✗" if _wrong(e, dtype) or _wrong(j, dtype) else "")
            )
            out.append(
                f"| {label} | {s} | {_spread(e)} | {_spread(j)} | {j['gain']:.2f} | "
                f"{j['paired_gain']:.2f}{_range(j, 'paired_gain')} | {rel} | {agree} | {floor} |"
            )
    ns = sorted({r["n"] for r in records if r["dtype"] == dtype and "cell" in r})
    out += [
        "",
        "All six steps of a size run round-robin in one process (`benchmarks/user_cell.py`), "
        f"n = {'/'.join(map(str, ns))} rounds. The user's cells are `Module`s whose step is "
        "written from elementary ops in a Python loop, with nothing hoisted out of it: the "
        "LSTM as `z = x_t W_ihᵀ + h W_hhᵀ + b`, `chunk(z, 4)`, σ/tanh, `c = f⊙c + i⊙g`, "
        "`h = o⊙tanh(c)`; the minimal gated unit as `f = σ(x_t W_fᵀ + h U_fᵀ + b_f)`, "
        "`n = tanh(x_t W_nᵀ + (f⊙h) U_nᵀ + b_n)`, `h = (1−f)⊙h + f⊙n`; each with a "
        "`Linear(H, V)` head and summed cross-entropy. *gain* = median eager ms / median jit "
        "ms; *paired gain* = median (min–max) over rounds of eager / jit in the same round; "
        "*gain / built-in's* compares a user cell's gain with the built-in LSTM's (1 = as "
        "much). *grads: jit vs eager* = max over parameters of max|g_jit − g_eager| / "
        f"max|g_eager|, the worse of the tracing call and a replay; ✅ ≤ {JIT_GRAD_TOL[dtype]:g}. "
        "The hand-written LSTM computes the built-in's function, so its gradients are "
        "checked against the floor's too.",
    ]
    if disagree:
        out += ["", f"**{disagree} user cell(s) disagree between eager and jit.**"]
    return out


def _user(records: list[Record], cell: str, size: str, dtype: str, jit: bool) -> Record | None:
    for r in records:
        if (r.get("cell"), r["size"], r["dtype"]) == (cell, size, dtype) and r["impl"].endswith(
            "_jit"
        ) == jit:
            return r
    return None


def find(records: list[Record], impl: str, model: str, size: str, dtype: str) -> Record | None:
    """The record of one implementation on one problem, if it ran."""
    for r in records:
        if (r["impl"], r["model"], r["size"], r["dtype"]) == (impl, model, size, dtype):
            return r
    return None


def report(
    header: list[str],
    results: dict[str, DtypeResult],
    sizes: list[str],
) -> str:
    """The whole markdown report."""
    out = ["# BPTT training step: tinygrad_rnn (eager, jit) vs the numpy floor and others", ""]
    out += header
    out += [
        "",
        "One step = forward over T + full BPTT + every parameter's gradient (no update):",
        "one-hot inputs over V, RNN (tanh) or LSTM of hidden size H, Linear(H, V) head on every",
        "step, cross-entropy summed over time and batch. Sizes (B, H, V, T): "
        + ", ".join(f"{s} = {SIZE_SHAPES[s]}" for s in sizes)
        + ".",
        "Times are ms per step, median (min–max) over the repeats; how to read them:",
        "benchmarks/README.md.",
    ]
    for dtype, (records, status, notes) in results.items():
        out += ["", f"## {dtype}", "", f"### issue 12's targets, {dtype}", ""]
        lines, summary = target_table(records, dtype, sizes)
        out += lines
        out += [
            "",
            summary,
            "",
            "*value*: for X / floor, median X ms / median floor ms, X and the floor round-robin "
            "in one process; *paired* = median (min–max) over the rounds of X / floor within "
            "one round. First call / eager: median (min–max) over n fresh traces of the "
            "tracing call / the eager call just before it. jit / PyTorch eager loop and "
            "jit / HIPS autograd: median ms / median ms, measured in different processes "
            "minutes apart (orientation; the spread column gives both min–max ranges). "
            f"⚠️ marginal: met by less than {MARGINAL:.0%} of the bound.",
        ]
        if dtype != "float32":
            out.append("The targets are set for float32; they are shown here for orientation.")
        out += ["", f"### ms per training step, {dtype}", ""]
        out += time_table(records, dtype, sizes, status)
        out += [
            "",
            repeats_line(records, dtype, sizes),
            "The floor and tinygrad_rnn (eager and jit) run round-robin in one process (the",
            "per-step numpy right after, round-robin with the floor; the first and second jit",
            "calls before, each after an eager call); PyTorch and HIPS autograd each run in a",
            "process of their own, at another time. One process per (model, size).",
            "",
            f"### every implementation / numpy floor, {dtype}",
            "",
        ]
        out += relative_table(records, dtype, sizes)
        out += [
            "",
            "Only the tinygrad_rnn and per-step rows share the floor's process (and moment,",
            "within seconds); the others compare times taken minutes apart, so take them as",
            "orientation only. The first and second jit calls are one-off costs, shown as",
            "multiples of an eager call (the second call is the first replay; it also writes",
            "the replay's Python code).",
            "",
        ]
        out += user_cell_section(records, dtype, sizes, status.get("user_cell"))
        out += ["", f"### gradient check, {dtype}", ""]
        lines, bad = grad_table(records, dtype, sizes)
        out += lines
        out += [
            "",
            "max over parameters of max|g − g_floor| / max|g_floor|, on the same parameters "
            f"and data; ✗ marks a difference over {GRAD_TOL[dtype]:g}. The jit's first call is "
            "the gradients its tracing call leaves, its replay those of a later call. "
            + (
                f"**{bad} implementation/problem pairs disagree with the floor.**"
                if bad
                else "All agree with the floor."
            ),
        ]
        if notes:
            out += ["", *[f"- {n}" for n in notes]]
    return "\n".join(out) + "\n"


def load_results(payload: dict[str, Any]) -> tuple[list[str], dict[str, DtypeResult], list[str]]:
    """Header, per-dtype results and sizes from a ``--json`` file (to re-render a report).

    Also reads the older format, ``{dtype: [records]}``.
    """
    if "results" in payload:
        results = {
            d: (v["records"], v.get("status", {}), v.get("notes", []))
            for d, v in payload["results"].items()
        }
        return payload.get("header", []), results, payload["sizes"]
    results = {d: (recs, {}, []) for d, recs in payload.items()}
    seen = {r["size"] for recs in payload.values() for r in recs}
    return ["- (re-rendered from an older JSON file)"], results, [s for s in ALL_SIZES if s in seen]


def write_report(text: str, out: Path) -> None:
    """Write ``text`` to ``out`` atomically (a reader never sees half a report)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_text(text)
    tmp_out.replace(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="S and M, fewer repeats, float32")
    parser.add_argument("--sizes", help="comma-separated of S,M,L (default S,M,L; quick S,M)")
    parser.add_argument(
        "--dtype", help="float32, float64 or both comma-separated (default both; quick float32)"
    )
    parser.add_argument("--repeats", type=int, default=0, help="timed repeats (0: by size)")
    parser.add_argument("--skip-torch", action="store_true", help="no PyTorch comparison")
    parser.add_argument("--skip-hips", action="store_true", help="no HIPS autograd comparison")
    parser.add_argument("--skip-user-cell", action="store_true", help="no user-cell benchmark")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="set OPENBLAS/OMP/MKL_NUM_THREADS and torch threads to N (0: leave as is; torch "
        "then follows OMP/OPENBLAS_NUM_THREADS, else 2)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds per script and problem"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report path")
    parser.add_argument("--json", type=Path, help="also write all records as JSON here")
    parser.add_argument(
        "--from-json", type=Path, help="run nothing: re-render the report from a --json file"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        header, loaded, sizes = load_results(json.loads(args.from_json.read_text()))
        text = report(header, loaded, sizes)
        write_report(text, args.out)
        print(text)
        return
    args.sizes = args.sizes or ("S,M" if args.quick else "S,M,L")
    sizes = [s for s in ALL_SIZES if s in args.sizes.split(",")]
    if not sizes or len(sizes) != len(args.sizes.split(",")):
        parser.error(f"--sizes takes a comma-separated subset of {','.join(ALL_SIZES)}")
    args.sizes = ",".join(sizes)
    dtypes = (args.dtype or ("float32" if args.quick else "float32,float64")).split(",")
    if any(d not in GRAD_TOL for d in dtypes):
        parser.error("--dtype takes float32, float64 or float32,float64")
    if args.threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    load_start = os.getloadavg()
    scripts = ["bptt_step.py"]
    skipped: dict[str, str] = {}
    user_sizes = [s for s in sizes if s in USER_CELL_SIZES]
    if args.skip_user_cell:
        skipped["user_cell.py"] = "skipped (--skip-user-cell)"
    elif user_sizes:
        scripts.append("user_cell.py")
    if args.skip_torch:
        skipped["torch_step.py"] = "skipped (--skip-torch)"
    else:
        scripts.append("torch_step.py")
    if args.skip_hips:
        skipped["hips_step.py"] = "skipped (--skip-hips)"
    else:
        scripts.append("hips_step.py")

    results: dict[str, DtypeResult] = {}
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in dtypes:
            records: list[Record] = []
            impl_status: dict[str, str] = {}
            notes: list[str] = []
            for script in scripts:
                script_args = args
                if script == "user_cell.py":
                    script_args = argparse.Namespace(
                        **{**vars(args), "sizes": ",".join(user_sizes)}
                    )
                recs, meta = run_script(script, dtype, script_args, Path(tmp))
                records += recs
                versions.update(meta.get("versions", {}))
                notes += meta.get("notes", [])
                why = meta.get("skipped") or (
                    f"{script} failed: {meta['failed']}" if "failed" in meta else None
                )
                if why:
                    for impl in SCRIPT_IMPLS[script]:
                        impl_status[impl] = why
                    if script == "user_cell.py":
                        impl_status["user_cell"] = why
            for script, why in skipped.items():
                for impl in SCRIPT_IMPLS[script]:
                    impl_status[impl] = why
                if script == "user_cell.py":
                    impl_status["user_cell"] = why
            results[dtype] = (records, impl_status, sorted(set(notes)))

    header = machine_header(args, load_start)
    if versions:
        header.append("- versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    text = report(header, results, sizes)
    write_report(text, args.out)
    if args.json:
        payload = {
            "sizes": sizes,
            "header": header,
            "results": {
                d: {"records": r, "status": st, "notes": n} for d, (r, st, n) in results.items()
            },
        }
        args.json.write_text(json.dumps(payload, indent=1))
    print(text)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
