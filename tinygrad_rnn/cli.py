"""The ``tinygrad-rnn`` command (also ``python -m tinygrad_rnn``).

Subcommands:
    check     autograd vs the documents' closed-form BPTT and vs finite differences.
    train     train an RNN/LSTM/GRU on chars, adding or copy; checkpoint, loss curve, samples.
    sample    text from a ``train --task chars`` checkpoint.
    graph     the computation graph of a small unrolled RNN/LSTM/GRU, as SVG/PNG/PDF.
    gradflow  ‖∂L/∂h_t‖ over t for an RNN against an LSTM: the vanishing-gradient plot.
    plot      several runs' loss curves on one plot.
    demo      check, a small LSTM learning the adding problem, a graph picture: the tour.

Exit status: 0 success; 1 a check failed or training diverged; 2 bad usage, an
unreadable file or checkpoint, or Graphviz's ``dot`` missing for ``graph`` (then the
DOT source is written instead) — always with one line on stderr, never a traceback;
130 interrupted with Ctrl-C (``train`` still writes its files for the steps done).
Set ``TINYGRAD_RNN_DEBUG=1`` to get the traceback instead of the one line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from tinygrad_rnn.checks import CLOSED_FORM_TOL, FINITE_DIFF_TOL, CheckResult, run_checks

PROG = "tinygrad-rnn"


class _UsageError(Exception):
    """A problem with what the user asked for, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is ONE line on stderr (plus a pointer to ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------------- value types
def _number(kind: Callable[[str], Any], test: Callable[[Any], bool], what: str) -> Any:
    """An argparse ``type=`` that parses with ``kind`` and requires ``test``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


_pos_int = _number(int, lambda v: v >= 1, "an integer >= 1")
_nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_int = _number(int, lambda v: True, "an integer")
_pos_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")
_nonneg_float = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
_float = _number(float, math.isfinite, "a finite number")


# ------------------------------------------------------------------------------- check
def _format_table(results: list[CheckResult]) -> str:
    header = (
        "variant",
        "source",
        "sizes",
        "params",
        "vs closed form",
        "vs finite diff.",
        "jit vs the same",
        "",
    )
    rows = [
        (
            r.variant,
            r.source,
            r.sizes,
            str(r.n_params),
            "—" if r.closed_form_error is None else f"{r.closed_form_error:.1e}",
            f"{r.finite_diff_error:.1e}",
            f"{r.jit_error:.1e}",
            "pass" if r.passed else "FAIL",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_check(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    results = run_checks(seed=args.seed)
    elapsed = time.perf_counter() - start
    ok = all(r.passed for r in results)
    if args.json:
        payload = {
            "seed": args.seed,
            "closed_form_tol": CLOSED_FORM_TOL,
            "finite_diff_tol": FINITE_DIFF_TOL,
            "passed": ok,
            "results": [r.as_dict() for r in results],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(
            "Worst relative error of autograd gradients (float64), every parameter and initial "
            f"state, seed {args.seed}; the last column is the same step run by tinygrad_rnn.jit "
            "(a replay), against the closed form where there is one:"
        )
        print(_format_table(results))
        print(
            f"\n{sum(r.passed for r in results)} passed, {sum(not r.passed for r in results)} "
            f"failed (tolerances: closed form {CLOSED_FORM_TOL:g}, finite differences "
            f"{FINITE_DIFF_TOL:g}) in {elapsed:.1f} s"
        )
    return 0 if ok else 1


# ------------------------------------------------------------------------------- train
def _train_summary(result: Any) -> str:
    """The final one-line summary of a run."""
    from tinygrad_rnn.training import format_loss

    c = result.config
    metric, base = result.final_metric, result.baseline
    extra = "".join(f", {k.replace('_', ' ')} {v:.3f}" for k, v in result.extra.items())
    where = ", ".join(result.files.values()) or "nothing written"
    stopped = f" (interrupted at step {result.steps_done})" if result.interrupted else ""
    return (
        f"done: {c.task}/{c.cell} H={c.hidden}: {result.metric_name} {format_loss(metric)} vs "
        f"baseline "
        f"{base:.4f} ({metric / base:.1%} of it){extra} after {result.steps_done} steps in "
        f"{result.seconds:.1f} s, seed {c.seed}{stopped}; wrote {where}"
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from tinygrad_rnn import training

    if args.text is not None and args.task != "chars":
        raise _UsageError("--text is only used by --task chars")
    config = training.resolve_config(
        args.task,
        cell=args.cell,
        hidden=args.hidden,
        layers=args.layers,
        steps=args.steps,
        lr=args.lr,
        optim=args.optim,
        batch=args.batch,
        seq_len=args.seq_len,
        clip=args.clip,
        clip_value=args.clip_value,
        forget_bias=args.forget_bias,
        init=args.init,
        schedule=args.schedule,
        schedule_gamma=args.schedule_gamma,
        schedule_period=args.schedule_period,
        jit=not args.eager,
        seed=args.seed,
        dtype=args.dtype,
        text=None if args.text is None else str(args.text),
        eval_every=args.eval_every,
        log_every=args.log_every,
        sample_every=args.sample_every,
        sample_length=args.sample_length,
        temperature=args.temperature,
    )
    if args.forget_bias is not None and math.isnan(args.forget_bias):
        config.forget_bias = None
    out_dir = args.out if args.out is not None else Path("runs") / f"{config.task}-{config.cell}"
    result = training.train(config, out_dir)
    if result.samples:
        print(result.samples[-1])
    print(_train_summary(result))
    return 130 if result.interrupted else 0


# ------------------------------------------------------------------------------ sample
def _cmd_sample(args: argparse.Namespace) -> int:
    from tinygrad_rnn import training

    ckpt = training.load_checkpoint(args.checkpoint)
    if ckpt.config.task != "chars":
        raise _UsageError(
            f"{args.checkpoint} was trained on the {ckpt.config.task!r} task; sample needs a "
            "checkpoint from `train --task chars`"
        )
    rng = np.random.default_rng(args.seed)
    try:
        text = training.sample_chars(
            ckpt.model, ckpt.config, args.length, rng, args.prime, args.temperature
        )
    except ValueError as exc:
        raise _UsageError(f"--prime: {exc}") from None
    sys.stdout.write(args.prime + text + "\n")
    return 0


# ------------------------------------------------------------------------------- graph
_FORMATS = ("svg", "png", "pdf")


def _graph_model(cell: str, T: int, hidden: int, seed: int) -> tuple[Any, Any]:
    """A small float64 model and its loss on random data, recorded with scopes."""
    from tinygrad_rnn import functional as F
    from tinygrad_rnn import viz
    from tinygrad_rnn.training import SequenceModel

    rng = np.random.default_rng(seed)
    model = SequenceModel(cell, 3, hidden, 1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, 2, 3))
    y = rng.standard_normal((2, 1))
    with viz.trace():
        pred, _ = model(x, last_only=True)
        loss = F.mse_loss(pred, y)
    return model, loss


def write_graph(
    cell: str, T: int, mode: str, out: Path, fmt: str, hidden: int = 4, seed: int = 0
) -> tuple[Path, Any]:
    """Draw the graph of ``cell`` unrolled ``T`` steps to ``out``; returns (path, drawing).

    ``mode``: ``full`` (every op and tensor), ``collapsed`` (one node per step),
    ``gradflow`` (collapsed, coloured by the gradient norm flowing back through each step).

    Raises:
        GraphvizNotFoundError: ``dot`` is missing (after writing ``out`` with suffix ``.dot``).
    """
    from tinygrad_rnn import viz

    model, loss = _graph_model(cell, T, hidden, seed)
    title = f"{cell.upper()} unrolled over T={T} steps, hidden {hidden}, MSE at the last step"
    g = viz.draw_graph(
        loss,
        params=model,
        collapse=mode != "full",
        grad_flow=mode == "gradflow",
        title=f"{title} ({mode})",
    )
    try:
        return viz.render(g, out, format=fmt), g
    except viz.GraphvizNotFoundError:
        dot_path = out.with_suffix(".dot")
        dot_path.parent.mkdir(parents=True, exist_ok=True)
        dot_path.write_text(g.source, encoding="utf-8")
        raise viz.GraphvizNotFoundError(
            f"Graphviz's `dot` program is not installed, so wrote the DOT source to {dot_path} "
            "instead; install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew "
            "install graphviz; conda: conda install -c conda-forge graphviz) and run again"
        ) from None


def _cmd_graph(args: argparse.Namespace) -> int:
    fmt = args.format
    out: Path | None = args.out
    if out is not None and fmt is None:
        suffix = out.suffix.lstrip(".").lower()
        if suffix not in _FORMATS:
            raise _UsageError(
                f"cannot tell the format from {str(out)!r}: end it with .svg, .png or .pdf, "
                "or pass --format"
            )
        fmt = suffix
    fmt = fmt or "svg"
    if out is None:
        out = Path(f"graph-{args.cell}-T{args.T}-{args.mode}.{fmt}")
    elif out.suffix.lower() != f".{fmt}":
        out = out.with_name(out.name + f".{fmt}")
    path, g = write_graph(args.cell, args.T, args.mode, out, fmt, args.hidden, args.seed)
    m = g.model
    print(
        f"wrote {path}: {args.cell.upper()} T={args.T} ({args.mode}), {len(m.nodes)} nodes, "
        f"{len(m.edges)} edges, {m.n_ops} recorded ops"
    )
    return 0


# ---------------------------------------------------------------------------- gradflow
def write_gradflow(
    cells: Sequence[str],
    T: int,
    out: Path,
    hidden: int = 32,
    batch: int = 16,
    seed: int = 0,
    scale: float = 1.0,
    forget_bias: float | None = 1.0,
) -> tuple[Path, dict[str, np.ndarray]]:
    """Compute `gradient_profile` per cell and plot them."""
    from tinygrad_rnn import training

    profiles = {
        c: training.gradient_profile(c, T, hidden, batch, seed, scale, forget_bias) for c in cells
    }
    fb = "" if forget_bias is None else f", LSTM forget bias {forget_bias:g}"
    title = (
        f"Gradient reaching step t, adding problem T={T}, H={hidden}, untrained\n"
        f"(init U(±1/√H)×{scale:g}{fb}, seed {seed})"
    )
    path = training.plot_gradient_profiles(profiles, out, title=title)
    return path, profiles


def _gradflow_table(profiles: dict[str, np.ndarray]) -> str:
    T = len(next(iter(profiles.values())))
    cols = [0, T // 4, T // 2, 3 * T // 4, T - 1]
    head = "cell   " + "".join(f"{'t=' + str(t):>11}" for t in cols) + "   first/last"
    lines = [head]
    for name, norms in profiles.items():
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        lines.append(
            f"{name:<7}" + "".join(f"{norms[t]:>11.2e}" for t in cols) + f"   {ratio:>10.1e}"
        )
    return "\n".join(lines)


def _cmd_gradflow(args: argparse.Namespace) -> int:
    forget_bias = None if math.isnan(args.forget_bias) else args.forget_bias
    path, profiles = write_gradflow(
        args.cells, args.T, args.out, args.hidden, args.batch, args.seed, args.scale, forget_bias
    )
    print("‖∂L/∂h_t‖ (the loss reads only the last step):")
    print(_gradflow_table(profiles))
    print(f"wrote {path}")
    return 0


# -------------------------------------------------------------------------------- plot
def _cmd_plot(args: argparse.Namespace) -> int:
    from tinygrad_rnn import tasks, training

    ckpts = [training.load_checkpoint(p) for p in args.checkpoints]
    first = ckpts[0].config
    for path, c in zip(args.checkpoints, ckpts):
        if (c.config.task, c.config.seq_len) != (first.task, first.seq_len):
            raise _UsageError(
                f"{path} is {c.config.task} with seq-len {c.config.seq_len}, the first is "
                f"{first.task} with seq-len {first.seq_len}: only runs of one task compare"
            )
    labels = args.labels or [
        f"{c.config.cell.upper()} H={c.config.hidden} seed {c.config.seed}" for c in ckpts
    ]
    if len(labels) != len(ckpts):
        raise _UsageError(f"--labels gave {len(labels)} labels for {len(ckpts)} checkpoints")
    if first.task == "adding":
        baseline, label, metric = tasks.adding_baseline(), "predict 1: MSE 1/6", "test MSE"
    elif first.task == "copy":
        baseline, label = tasks.copy_baseline(first.seq_len), "memoryless: 10·ln 8/(T+20)"
        metric = "test cross-entropy/step"
    else:
        V = len(first.vocab or [])
        baseline, label, metric = math.log(V), f"uniform: ln {V}", "validation loss/char"
    title = args.title or f"{first.task}" + (
        "" if first.task == "chars" else f", T={first.seq_len}"
    )
    path = training.plot_runs(
        [(lab, c.history) for lab, c in zip(labels, ckpts)],
        args.out,
        baseline=baseline,
        baseline_label=label,
        metric=metric,
        title=title,
        log_y=first.task != "chars",
    )
    print(f"wrote {path}")
    return 0


# -------------------------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from tinygrad_rnn import training, viz
    from tinygrad_rnn.training import format_loss

    out: Path = args.out
    print("== 1/4  Are the gradients right? autograd vs the closed-form BPTT formulas ==\n")
    status = _cmd_check(argparse.Namespace(seed=0, json=False))
    if status != 0:
        return status

    print(
        f"\n== 2/4  Does it learn? An LSTM on the adding problem (T={args.T}): add the two "
        "marked numbers ==\n"
    )
    config = training.resolve_config(
        "adding",
        seq_len=args.T,
        steps=args.steps,
        hidden=32,
        batch=32,
        eval_every=max(1, args.steps // 20),
        seed=args.seed,
    )
    result = training.train(config, out / "adding-lstm")
    print(_train_summary(result))
    ok = result.final_metric < 0.25 * result.baseline
    verdict = "well below" if ok else "NOT clearly below"
    print(
        f"-> test MSE {format_loss(result.final_metric)} is {verdict} the 0.1667 of always "
        "guessing 1 "
        f"(loss curve: {out / 'adding-lstm' / 'loss.png'})"
    )

    print("\n== 3/4  What did backpropagation walk? The graph of a 4-step LSTM ==\n")
    try:
        path, g = write_graph("lstm", 4, "full", out / "lstm_T4.svg", "svg")
        print(f"wrote {path} ({len(g.model.nodes)} nodes): open it in a browser")
    except viz.GraphvizNotFoundError as exc:
        print(f"skipped the picture: {exc}")

    print("\n== 4/4  Why an LSTM? How much gradient reaches step t, RNN vs LSTM (T=100) ==\n")
    gpath, profiles = write_gradflow(["rnn", "lstm"], 100, out / "gradflow.png")
    print(_gradflow_table(profiles))
    print(f"wrote {gpath}")

    print(
        "\nNext: tinygrad-rnn train --task chars   (an LSTM learns this package's own source)\n"
        "      tinygrad-rnn train --task adding --cell rnn   (a plain RNN does not learn T=50)\n"
        "      tinygrad-rnn --help"
    )
    return 0 if ok else 1


# ------------------------------------------------------------------------------ parser
def _add_train(sub: Any) -> None:
    from tinygrad_rnn.training import CELLS, DTYPES, INITS, OPTIMIZERS, SCHEDULES, TASKS

    p = sub.add_parser(
        "train",
        help="train an RNN/LSTM/GRU on chars, adding or copy",
        description="Train a recurrent layer stack with a linear head on a built-in task and "
        "write a checkpoint (.npz, no pickle), a loss-curve PNG with the task's baseline, "
        "summary.json and, for chars, samples. Options left out take the task's defaults "
        "(shown in brackets). Tasks: chars = next-character language model with truncated "
        "BPTT (state carried across chunks), baseline ln V per character; adding = add the "
        "two marked numbers of a length-T sequence, baseline MSE 1/6; copy = reproduce 10 "
        "symbols after a gap of T steps, baseline 10·ln 8/(T+20) per step.",
        epilog="Examples:  tinygrad-rnn train --task adding -T 50 --cell lstm   |   "
        "tinygrad-rnn train --task chars --text input.txt   |   min-char-rnn exactly: "
        "tinygrad-rnn train --task chars --cell rnn --hidden 100 --batch 1 --optim adagrad "
        "--lr 0.1 --clip 0 --clip-value 5",
    )
    p.add_argument("--task", required=True, choices=TASKS, help="what to learn")
    p.add_argument("--cell", choices=list(CELLS), help="recurrent cell [lstm]")
    p.add_argument("--hidden", type=_pos_int, help="hidden units [adding 64, else 128]")
    p.add_argument("--layers", type=_pos_int, help="stacked layers [1]")
    p.add_argument("--steps", type=_pos_int, help="optimizer steps [copy 4000, else 3000]")
    p.add_argument(
        "--lr",
        type=_pos_float,
        help="learning rate [adam: chars 3e-3, else 1e-2; adagrad: chars 0.1 (min-char-rnn)]",
    )
    p.add_argument("--optim", choices=OPTIMIZERS, help="optimizer [adam]")
    p.add_argument("--batch", type=_pos_int, help="sequences per step (chars: streams) [32/64]")
    p.add_argument(
        "-T",
        "--seq-len",
        dest="seq_len",
        metavar="T",
        type=_pos_int,
        help="task length: adding T [50], copy gap T [20], chars BPTT chunk [25]",
    )
    p.add_argument(
        "--clip",
        type=_nonneg_float,
        help="global gradient-norm bound, 0 = off [chars 5, else 1]",
    )
    p.add_argument(
        "--clip-value",
        type=_nonneg_float,
        help="clamp each gradient element to [-v, v] (min-char-rnn: 5), 0 = off [off]",
    )
    p.add_argument(
        "--forget-bias",
        type=_number(float, lambda v: not math.isinf(v), "a number or nan"),
        help="LSTM forget-gate bias at init; nan keeps PyTorch's init [1]",
    )
    p.add_argument(
        "--init",
        choices=INITS,
        help="initialisation: default = PyTorch's U(-1/sqrt(H), 1/sqrt(H)); orthogonal = "
        "orthogonal_ on each gate's block of the recurrent weights weight_hh_*; xavier = "
        "xavier_uniform_ on every weight matrix, zero biases [default]",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning-rate schedule, stepped after every optimizer step (plateau: after every "
        "evaluation, on the held-out metric): step = lr*gamma every PERIOD steps; exponential "
        "= lr*gamma every step; cosine = cosine annealing to 0 over PERIOD steps; plateau = "
        "lr*gamma after more than PERIOD evaluations without improvement [none]",
    )
    p.add_argument(
        "--schedule-gamma",
        type=_pos_float,
        metavar="GAMMA",
        help="the schedule's factor: step [0.1], exponential [0.01**(1/steps): 100x over "
        "the run], plateau [0.5]",
    )
    p.add_argument(
        "--schedule-period",
        type=_pos_int,
        metavar="PERIOD",
        help="the schedule's period: step, steps between drops [steps/3]; cosine, T_max in "
        "steps [steps]; plateau, patience in evaluations [2]",
    )
    p.add_argument(
        "--eager",
        action="store_true",
        help="run each step eagerly instead of as a tinygrad_rnn.jit program (same numbers, "
        "slower; for debugging)",
    )
    p.add_argument("--seed", type=_int, default=0, help="seed for init, data and sampling [0]")
    p.add_argument("--dtype", choices=DTYPES, help="parameter dtype [float32]")
    p.add_argument("--text", type=Path, help="chars: a UTF-8 text file [this package's source]")
    p.add_argument("--out", type=Path, help="run folder [runs/<task>-<cell>]")
    p.add_argument("--eval-every", type=_pos_int, help="held-out evaluation period [100/200]")
    p.add_argument(
        "--log-every", type=_nonneg_int, help="plain-line period without a tty [steps/20]"
    )
    p.add_argument("--sample-every", type=_nonneg_int, help="chars: sample period, 0 = off [1000]")
    p.add_argument("--sample-length", type=_pos_int, help="chars: sample length [200]")
    p.add_argument("--temperature", type=_pos_float, help="chars: sampling temperature [1.0]")
    p.set_defaults(func=_cmd_train)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A small autodiff engine whose RNN/LSTM gradients are checked against the "
        "closed-form BPTT formulas; train, sample, draw and inspect recurrent networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="autograd gradients vs closed-form BPTT and finite differences",
        description="For every variant of the BPTT spec (vanilla RNN with softmax, linear and "
        "sigmoid outputs, masked losses, LSTM with softmax and squared error), plus GRU and "
        "multi-layer layers, compare autograd with the closed form and with finite differences "
        "on random sizes in float64. Exits 1 if any check fails.",
    )
    check.add_argument("--seed", type=int, default=0, help="seed for sizes and parameters")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.set_defaults(func=_cmd_check)

    _add_train(sub)

    sample = sub.add_parser(
        "sample",
        help="generate text from a chars checkpoint",
        description="Sample characters one at a time from the softmax of a model trained with "
        "`train --task chars`. The prime text is fed first and printed before the sample.",
    )
    sample.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.npz of a run")
    sample.add_argument("--length", type=_nonneg_int, default=500, help="characters [500]")
    sample.add_argument("--temperature", type=_pos_float, default=1.0, help="softmax temperature")
    sample.add_argument("--seed", type=_int, default=0, help="sampling seed [0]")
    sample.add_argument("--prime", default="", help="text to start from [a newline]")
    sample.set_defaults(func=_cmd_sample)

    graph = sub.add_parser(
        "graph",
        help="draw the computation graph of a small unrolled RNN/LSTM/GRU",
        description="Draw the graph backpropagation walks for a recurrent layer unrolled over "
        "T steps with a linear head and an MSE loss at the last step: full (every op and "
        "tensor, one box per step), collapsed (one node per step) or gradflow (collapsed, "
        "coloured by the gradient norm flowing back through each step). Needs Graphviz's "
        "`dot`; without it the DOT source is written next to --out and the exit status is 2.",
    )
    graph.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="lstm", help="[lstm]")
    graph.add_argument("-T", "--steps", dest="T", type=_pos_int, default=4, help="steps [4]")
    graph.add_argument("--hidden", type=_pos_int, default=4, help="hidden units [4]")
    graph.add_argument(
        "--mode", choices=["full", "collapsed", "gradflow"], default="full", help="[full]"
    )
    graph.add_argument("--format", choices=_FORMATS, help="[from --out, else svg]")
    graph.add_argument("-o", "--out", type=Path, help="file [graph-<cell>-T<T>-<mode>.<format>]")
    graph.add_argument("--seed", type=_int, default=0, help="seed for weights and data [0]")
    graph.set_defaults(func=_cmd_graph)

    gradflow = sub.add_parser(
        "gradflow",
        help="plot ‖∂L/∂h_t‖ over t for an RNN against an LSTM",
        description="Unroll untrained cells (same init scale, same adding-problem batch) over "
        "T steps with a loss on the last step only and plot the norm of the total gradient "
        "reaching each hidden state, log-scale: the RNN's decays geometrically, the LSTM's "
        "does not. Also prints the norms.",
    )
    gradflow.add_argument(
        "--cells", nargs="+", choices=["rnn", "lstm", "gru"], default=["rnn", "lstm"]
    )
    gradflow.add_argument("-T", "--steps", dest="T", type=_pos_int, default=100, help="[100]")
    gradflow.add_argument("--hidden", type=_pos_int, default=32, help="[32]")
    gradflow.add_argument("--batch", type=_pos_int, default=16, help="[16]")
    gradflow.add_argument("--seed", type=_int, default=0, help="[0]")
    gradflow.add_argument("--scale", type=_pos_float, default=1.0, help="weight init multiplier")
    gradflow.add_argument(
        "--forget-bias",
        type=_number(float, lambda v: not math.isinf(v), "a number or nan"),
        default=1.0,
        help="LSTM forget-gate bias; nan keeps PyTorch's init [1]",
    )
    gradflow.add_argument("--out", type=Path, default=Path("gradflow.png"), help="[gradflow.png]")
    gradflow.set_defaults(func=_cmd_gradflow)

    plot = sub.add_parser(
        "plot",
        help="overlay the loss curves of several runs",
        description="Plot the held-out metric (bold) and smoothed training loss (faint) of "
        "several `train` checkpoints of one task against its baseline.",
    )
    plot.add_argument("checkpoints", type=Path, nargs="+", help="checkpoint.npz files")
    plot.add_argument("--labels", nargs="+", help="one label per checkpoint")
    plot.add_argument("--title", help="plot title")
    plot.add_argument("--out", type=Path, default=Path("compare.png"), help="[compare.png]")
    plot.set_defaults(func=_cmd_plot)

    demo = sub.add_parser(
        "demo",
        help="the tour: check, an LSTM learning, a graph picture, the gradient plot",
        description="Run `check`, train a small LSTM on the adding problem until it is far "
        "below the baseline, draw the graph of a 4-step LSTM and the RNN-vs-LSTM gradient "
        "plot. About a minute on 2 cores. Exits 1 if the LSTM did not get below a quarter of "
        "the baseline.",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="[runs/demo]")
    demo.add_argument("--steps", type=_pos_int, default=1200, help="training steps [1200]")
    demo.add_argument("-T", dest="T", type=_pos_int, default=30, help="adding length [30]")
    demo.add_argument("--seed", type=_int, default=0, help="[0]")
    demo.set_defaults(func=_cmd_demo)
    return parser


def _one_line(exc: BaseException) -> str:
    """An exception as one line: OS errors as 'FILE: reason', others by their message."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]  # KeyError quotes its message
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check/training failed, 2 bad
    usage or unreadable input, 130 interrupted)."""
    from tinygrad_rnn.training import TrainingError
    from tinygrad_rnn.viz import GraphvizNotFoundError

    args = _parser().parse_args(argv)
    where = f"{PROG} {args.command}"
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except TrainingError as exc:
        if os.environ.get("TINYGRAD_RNN_DEBUG"):
            raise
        print(f"{where}: training failed: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (
        _UsageError,
        GraphvizNotFoundError,
        ValueError,
        TypeError,
        KeyError,
        FileNotFoundError,
        OSError,
    ) as exc:
        # The boundary: a library error about the user's input becomes one line, exit 2.
        if os.environ.get("TINYGRAD_RNN_DEBUG"):
            raise
        print(f"{where}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
