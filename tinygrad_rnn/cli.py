"""The ``tinygrad-rnn`` command (also ``python -m tinygrad_rnn``).

Subcommands:
    check   autograd vs the documents' closed-form BPTT and vs finite differences.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from tinygrad_rnn.checks import CLOSED_FORM_TOL, FINITE_DIFF_TOL, CheckResult, run_checks


def _format_table(results: list[CheckResult]) -> str:
    header = ("variant", "source", "sizes", "params", "vs closed form", "vs finite diff.", "")
    rows = [
        (
            r.variant,
            r.source,
            r.sizes,
            str(r.n_params),
            "—" if r.closed_form_error is None else f"{r.closed_form_error:.1e}",
            f"{r.finite_diff_error:.1e}",
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
            f"state, seed {args.seed}:"
        )
        print(_format_table(results))
        print(
            f"\n{sum(r.passed for r in results)} passed, {sum(not r.passed for r in results)} "
            f"failed (tolerances: closed form {CLOSED_FORM_TOL:g}, finite differences "
            f"{FINITE_DIFF_TOL:g}) in {elapsed:.1f} s"
        )
    return 0 if ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-rnn",
        description="A small autodiff engine whose RNN/LSTM gradients are checked against the "
        "closed-form BPTT formulas.",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 bad usage)."""
    args = _parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
