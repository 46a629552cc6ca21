"""The teaching notebooks in ``notebooks/``: every pair in sync, committed executed, and runnable.

Each notebook is a jupytext pair (``notebooks/jupytext.toml``): ``NN_name.py``, a
percent-format source that holds the cells, and ``NN_name.ipynb``, the same cells with the
outputs stored by ``notebooks/execute.py``. The tests check

* that every ``.ipynb`` has its source, and the configuration pairs them, so that
  ``jupytext --sync`` works;
* that both files of a pair hold the same cells, as jupytext reads them: an edit made to one
  file only fails here until ``python notebooks/execute.py`` (or ``jupytext --sync``) runs;
* that each ``.ipynb`` was committed executed: every code cell ran, in order, with no error,
  no warning and no run-dependent memory address in its outputs;
* that each notebook runs top to bottom in a fresh ``python3`` kernel, executed with nbclient
  from a copy in a temporary folder (the committed file is never rewritten), in the
  environment ``notebooks/execute.py`` uses (this checkout on ``PYTHONPATH``, one BLAS
  thread). A cell that raises fails the test with its source and traceback.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import jupytext
import nbformat
import pytest
from jupytext.config import load_jupytext_config
from jupytext.paired_paths import paired_paths
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SOURCES = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))  # not execute.py
SOURCE_FORMAT = "py:percent"
REGENERATE = "run: python notebooks/execute.py (see notebooks/README.md)"

# jupyter_core 5 announces its move to platformdirs with a DeprecationWarning; nothing to act on.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Jupyter is migrating its paths to use standard platformdirs:DeprecationWarning"
)


@functools.cache
def _execute_script() -> ModuleType:
    """``notebooks/execute.py`` as a module (it is a script, not a package)."""
    path = NOTEBOOK_DIR / "execute.py"
    spec = importlib.util.spec_from_file_location("notebooks_execute", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(nb: Any) -> list[tuple[str, str]]:
    """What a pair must agree on: each cell's type and text (outputs live in the .ipynb only)."""
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def _code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _warnings_in(nb: Any) -> list[str]:
    """Warnings the kernel printed (numpy's RuntimeWarnings, deprecations, ...), by cell."""
    found = []
    for k, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr" and "Warning" in out.text:
                found.append(f"cell {k}: {out.text.strip()}")
    return found


def test_every_notebook_is_paired_with_its_percent_source() -> None:
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SOURCES], (
        "every notebooks/NN_name.ipynb needs its notebooks/NN_name.py and the other way round"
    )
    # Ask jupytext itself which files it pairs, from notebooks/jupytext.toml, so that
    # `jupytext --sync` on either file of a pair updates the other.
    for path in NOTEBOOKS:
        config = load_jupytext_config(str(path))
        assert config is not None, "notebooks/jupytext.toml is missing"
        formats = config.default_formats(str(path))
        paired = {Path(p): fmt for p, fmt in paired_paths(str(path), "ipynb", formats)}
        source = path.with_suffix(".py")
        assert source in paired, f"{path.name}: not paired with {source.name} ({formats})"
        assert paired[source].get("format_name") == "percent", f"{source.name}: not py:percent"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_holds_the_cells_of_its_source(source: Path) -> None:
    """Both files are read by jupytext, as `jupytext --sync` reads them."""
    text = jupytext.read(source, fmt=SOURCE_FORMAT)
    notebook = jupytext.read(source.with_suffix(".ipynb"))
    assert _cells(notebook) == _cells(text), f"{source.stem}: the pair differs; {REGENERATE}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_was_executed_in_order_without_errors(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    counts = [cell.execution_count for cell in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: not executed; {REGENERATE}"
    errors = [
        f"cell {k}: {out.ename}: {out.evalue}"
        for k, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]
    assert not errors, errors
    assert not _warnings_in(nb)
    # A repr with a memory address ("<GraphDrawing at 0x7f...>") changes on every run, so the
    # next execution would rewrite it for nothing; execute.py drops the ones next to pictures.
    address = _execute_script().ADDRESS
    assert not [
        k
        for k, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if address.search(out.get("data", {}).get("text/plain", ""))
    ], f"{path.name}: outputs hold memory addresses; {REGENERATE}"


@pytest.mark.slow  # about 30 s for the five notebooks, most of it training in notebook 05
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    nb = nbformat.read(copy, as_version=4)
    try:
        _execute_script().run(nb, cwd=tmp_path)  # same kernel and environment as execute.py
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{err}", pytrace=False)
    assert not _warnings_in(nb), f"{path.name} printed warnings"
    assert len(_code_cells(nb)) > 0
