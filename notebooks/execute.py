"""Execute the teaching notebooks and store their outputs in the committed ``.ipynb`` files.

    python notebooks/execute.py            # all five notebooks
    python notebooks/execute.py 03 05      # only those whose name contains "03" or "05"

The cells live in the percent-format sources ``notebooks/NN_name.py``, each paired with its
``NN_name.ipynb`` by ``notebooks/jupytext.toml``. For every notebook this script

1. runs ``jupytext --sync`` on the pair, so the cells of whichever file was edited last reach
   the other one (jupytext's own rule: the newer file wins);
2. runs every cell of the ``.ipynb`` in a fresh ``python3`` kernel with the environment of
   :func:`kernel_env` (this checkout importable, one BLAS thread);
3. tidies the outputs (:func:`tidy`) and writes the ``.ipynb`` back.

Every random number in the notebooks comes from a seeded ``np.random.default_rng`` and the
kernel has one BLAS thread, so executing twice on one machine gives the same bytes.
``tests/test_notebooks.py`` imports :func:`kernel_env` from here, so the test runs the
notebooks in the same environment. Needs the ``dev`` extra (jupytext, nbclient, ipykernel)
and Graphviz's ``dot`` for the graph pictures.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import jupytext.cli
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCES = sorted(HERE.glob("[0-9][0-9]_*.py"))  # the notebooks' sources; not this script
CELL_TIMEOUT = 120  # seconds per cell, as in tests/test_notebooks.py
KERNEL = "python3"
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")  # the memory address in a default object repr


def kernel_env() -> dict[str, str]:
    """The environment the notebooks run in: this checkout importable, one BLAS thread.

    ``PYTHONPATH`` keeps whatever it already holds first and adds the repository root, so the
    notebooks import this checkout's ``tinygrad_rnn`` even when it is not installed. One BLAS
    thread makes the small matrix products faster (no thread start-up per product) and fixes
    the order of floating-point sums, so the outputs are the same on every run.
    """
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return env


def run(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` in a fresh kernel (working directory ``cwd``), in place.

    ``coalesce_streams`` merges the pieces of printed text into one output per stream: how a
    kernel splits them into messages depends on timing, so unmerged they would differ from
    run to run. No timing metadata is recorded, for the same reason.
    """
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,
        coalesce_streams=True,
    )
    client.execute(env=kernel_env())
    return nb


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop a picture's plain-text fallback when it is only a repr with a memory address.

    IPython stores ``<GraphDrawing at 0x7f...>`` next to a graph's SVG; the address changes
    on every run and the text says nothing the picture does not.
    """
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if ("image/svg+xml" in data or "image/png" in data) and ADDRESS.search(
                data.get("text/plain", "")
            ):
                del data["text/plain"]
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="execute only notebooks whose name contains this")
    args = parser.parse_args(argv)
    sources = [p for p in SOURCES if not args.only or any(s in p.name for s in args.only)]
    if not sources:
        parser.error(f"no notebook matches {args.only}; choose from {[p.stem for p in SOURCES]}")
    for source in sources:
        jupytext.cli.jupytext(["--sync", "--quiet", str(source)])
        path = source.with_suffix(".ipynb")
        nb = nbformat.read(path, as_version=4)
        tidy(run(nb, HERE))
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"executed notebooks/{path.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
