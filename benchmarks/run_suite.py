"""The whole BPTT training-step benchmark: ours vs the numpy floor, plus optional comparisons.

Runs, each in its own subprocess and one subprocess per (model, size) problem (PyTorch's
OpenMP threads and numpy's BLAS threads fight over the cores when they share a process, and
a process's allocator state carries over from one problem to the next):

1. ``bptt_step.py --perstep``: the numpy floor and tinygrad_rnn round-robin in one process
   (so the ratio to the floor is as fair as this machine allows), then the per-step numpy
   BPTT round-robin with the floor;
2. ``torch_step.py``: PyTorch eager loop and ``nn.RNN``/``nn.LSTM`` (skipped if torch is absent);
3. ``hips_step.py``: HIPS autograd (skipped if it is absent);

then writes one markdown report (times, tinygrad_rnn's ratio to the floor against the issue's
targets, every implementation's gradient check) to ``benchmarks/results/latest.md`` and stdout.
The scripts' own tables go to stderr as they run, so ``> report.md`` keeps only the report.

    python benchmarks/run_suite.py                 # S, M, L; float32 and float64 (minutes)
    python benchmarks/run_suite.py --quick         # S and M, fewer repeats, float32 only
    python benchmarks/run_suite.py --sizes L --dtype float32 --skip-hips --threads 1
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

# Rows of the report, in order: (key in the scripts' JSON records, label).
IMPLS = (
    ("numpy_floor", "numpy floor"),
    ("tinygrad_rnn", "**tinygrad_rnn**"),
    ("numpy_perstep", "numpy per-step (min-char-rnn style)"),
    ("torch_eager", "PyTorch eager loop (input projection hoisted)"),
    ("torch_nn", "PyTorch nn.RNN / nn.LSTM (fused)"),
    ("hips_autograd", "HIPS autograd"),
)
SCRIPT_IMPLS = {
    "bptt_step.py": ("numpy_floor", "tinygrad_rnn", "numpy_perstep"),
    "torch_step.py": ("torch_eager", "torch_nn"),
    "hips_step.py": ("hips_autograd",),
}

# Issue 6's targets: tinygrad_rnn's median ms / the floor's median ms, float32.
TARGETS = {
    ("rnn", "S"): 3.0,
    ("rnn", "M"): 1.3,
    ("rnn", "L"): 1.15,
    ("lstm", "S"): 2.0,
    ("lstm", "M"): 1.3,
    ("lstm", "L"): 1.15,
}
# Largest relative gradient difference from the floor still counted as agreeing.
GRAD_TOL = {"float32": 1e-4, "float64": 1e-10}

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
    for model in MODELS:
        for size in args.sizes.split(","):
            out = workdir / f"{script}.{dtype}.{model}.{size}.json"
            cmd = [sys.executable, str(HERE / script), "--sizes", size, "--dtype", dtype]
            cmd += ["--models", model, "--json", str(out)]
            if args.quick:
                cmd.append("--quick")
            if args.repeats:
                cmd += ["--repeats", str(args.repeats)]
            if script == "bptt_step.py":
                cmd.append("--perstep")
            if script == "torch_step.py":
                cmd += ["--threads", str(args.threads or 2)]
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
        + ("" if args.threads == 1 else ", or rerun when idle or with `--threads 1`")
    ]
    return [
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; commit: {git_commit()}",
        f"- machine: {cpu}; {os.cpu_count()} logical cores ({cores} usable); "
        f"{platform.system()} {platform.machine()}",
        f"- load average (1, 5, 15 min): at start {_load(load_start)}, at end {_load(load_end)}"
        " (a shared machine: see benchmarks/README.md)",
        f"- Python {platform.python_version()}; numpy {np.__version__}; BLAS: {blas_summary()}",
        f"- thread settings: {', '.join(f'{k}={v}' for k, v in env.items()) or 'none set'}"
        f"{f'; torch.set_num_threads({args.threads or 2})' if not args.skip_torch else ''}",
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


def time_table(
    records: list[Record], dtype: str, sizes: list[str], status: dict[str, str]
) -> list[str]:
    """Median ms (min–max) per implementation and problem."""
    cols = [(m, s) for m in MODELS for s in sizes]
    lines = [
        "| implementation | " + " | ".join(f"{m.upper()} {s}" for m, s in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
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
            bad = r["grad_diff"] > GRAD_TOL[dtype]
            cells.append(
                f"{fmt_ms(r['median_ms'])} ({fmt_ms(r['min_ms'])}–{fmt_ms(r['max_ms'])})"
                + (" ✗ wrong grads" if bad else "")
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def relative_table(records: list[Record], dtype: str, sizes: list[str]) -> list[str]:
    """Every implementation's median as a multiple of the floor's median."""
    cols = [(m, s) for m in MODELS for s in sizes]
    lines = [
        "| × floor | " + " | ".join(f"{m.upper()} {s}" for m, s in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for impl, label in IMPLS[1:]:
        cells = []
        for m, s in cols:
            r, f = find(records, impl, m, s, dtype), find(records, "numpy_floor", m, s, dtype)
            cells.append(f"{r['median_ms'] / f['median_ms']:.2f}" if r and f else "—")
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def ratio_table(records: list[Record], dtype: str, sizes: list[str]) -> tuple[list[str], int]:
    """tinygrad_rnn / floor against the issue's targets; also how many problems missed."""
    lines = [
        "| model | size (B,H,V,T) | floor ms | tinygrad_rnn ms | ratio | paired ratio | target | |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    misses = 0
    for m in MODELS:
        for s in sizes:
            r = find(records, "tinygrad_rnn", m, s, dtype)
            f = find(records, "numpy_floor", m, s, dtype)
            if r is None or f is None:
                continue
            target = TARGETS[(m, s)]
            ok = r["ratio"] <= target
            misses += not ok
            lines.append(
                f"| {m.upper()} | {s} {SIZE_SHAPES[s]} | {fmt_ms(f['median_ms'])} | "
                f"{fmt_ms(r['median_ms'])} | {r['ratio']:.2f} | {r['paired_ratio']:.2f} | "
                f"≤ {target} | {'✅ pass' if ok else '❌ miss'} |"
            )
    return lines, misses


def grad_table(records: list[Record], dtype: str, sizes: list[str]) -> tuple[list[str], int]:
    """Largest relative gradient difference from the floor, per implementation and problem."""
    cols = [(m, s) for m in MODELS for s in sizes]
    lines = [
        "| grad diff vs floor | " + " | ".join(f"{m.upper()} {s}" for m, s in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    bad = 0
    for impl, label in IMPLS[1:]:
        cells = []
        for m, s in cols:
            r = find(records, impl, m, s, dtype)
            if r is None:
                cells.append("—")
                continue
            wrong = r["grad_diff"] > GRAD_TOL[dtype]
            bad += wrong
            cells.append(f"{r['grad_diff']:.1e}" + (" ✗" if wrong else ""))
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines, bad


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
    out = ["# BPTT training step: tinygrad_rnn vs the numpy floor and others", ""]
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
        out += ["", f"## {dtype}", "", f"### ms per training step, {dtype}", ""]
        out += time_table(records, dtype, sizes, status)
        out += [
            "",
            "The floor and tinygrad_rnn run round-robin in one process (the per-step numpy",
            "right after, round-robin with the floor); PyTorch and HIPS autograd each run in a",
            "process of their own, at another time. One process per (model, size).",
            "",
            f"### tinygrad_rnn / numpy floor, {dtype} (issue 6's targets)",
            "",
        ]
        lines, misses = ratio_table(records, dtype, sizes)
        out += lines
        out += [
            "",
            "ratio = median tinygrad_rnn ms / median floor ms (what the targets are set on);",
            "paired ratio = median over repeats of tinygrad_rnn ms / the floor's ms in the same",
            "round (steadier on a noisy machine).",
        ]
        if dtype != "float32":
            out.append("The targets are set for float32; they are shown here for orientation.")
        n_rows = len(lines) - 2
        out += ["", f"{n_rows - misses} of {n_rows} within target.", ""]
        out += [f"### every implementation / numpy floor, {dtype}", ""]
        out += relative_table(records, dtype, sizes)
        out += [
            "",
            "Only the tinygrad_rnn and per-step rows share the floor's process (and moment,",
            "within seconds); the others compare times taken minutes apart, so take them as",
            "orientation only.",
            "",
            f"### gradient check, {dtype}",
            "",
        ]
        lines, bad = grad_table(records, dtype, sizes)
        out += lines
        out += [
            "",
            "max over parameters of max|g − g_floor| / max|g_floor|, on the same parameters "
            f"and data; ✗ marks a difference over {GRAD_TOL[dtype]:g}. "
            + (
                f"**{bad} implementation/problem pairs disagree with the floor.**"
                if bad
                else "All agree with the floor."
            ),
        ]
        if notes:
            out += ["", *[f"- {n}" for n in notes]]
    return "\n".join(out) + "\n"


def main() -> None:
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
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="set OPENBLAS/OMP/MKL_NUM_THREADS and torch threads to N (0: leave as is; torch 2)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds per script and problem"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report path")
    parser.add_argument("--json", type=Path, help="also write all records as JSON here")
    args = parser.parse_args()
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
    if args.skip_torch:
        skipped["torch_step.py"] = "skipped (--skip-torch)"
    else:
        scripts.append("torch_step.py")
    if args.skip_hips:
        skipped["hips_step.py"] = "skipped (--skip-hips)"
    else:
        scripts.append("hips_step.py")

    results: dict[str, DtypeResult] = {}
    raw: dict[str, Any] = {}
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in dtypes:
            records: list[Record] = []
            impl_status: dict[str, str] = {}
            notes: list[str] = []
            for script in scripts:
                recs, meta = run_script(script, dtype, args, Path(tmp))
                records += recs
                versions.update(meta.get("versions", {}))
                notes += meta.get("notes", [])
                why = meta.get("skipped") or (
                    f"{script} failed: {meta['failed']}" if "failed" in meta else None
                )
                for impl in SCRIPT_IMPLS[script]:
                    if why:
                        impl_status[impl] = why
            for script, why in skipped.items():
                for impl in SCRIPT_IMPLS[script]:
                    impl_status[impl] = why
            results[dtype] = (records, impl_status, sorted(set(notes)))
            raw[dtype] = records

    header = machine_header(args, load_start)
    if versions:
        header.append("- versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    text = report(header, results, sizes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(args.out.name + ".tmp")
    tmp_out.write_text(text)
    tmp_out.replace(args.out)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    print(text)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
