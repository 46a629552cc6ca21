"""The teaching notebooks in ``notebooks/`` run top to bottom and match their build script.

Each notebook is executed with nbclient in a fresh ``python3`` kernel, from a copy in a
temporary folder: the committed file, with its stored outputs, is never rewritten. Any cell
that raises fails the test with the cell's source and traceback. The kernel gets the same
environment as ``notebooks/_build_notebooks.py`` uses when it stores the outputs (this
checkout on ``PYTHONPATH``, one BLAS thread).

The notebooks are generated: ``notebooks/_build_notebooks.py`` holds every cell. The other
tests check that the committed files hold exactly those cells and were committed executed.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell

# jupyter_core 5 announces its move to platformdirs with a DeprecationWarning; nothing to act on.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Jupyter is migrating its paths to use standard platformdirs:DeprecationWarning"
)


@functools.cache
def _builder() -> ModuleType:
    """``notebooks/_build_notebooks.py`` as a module (it is a script, not a package)."""
    path = NOTEBOOK_DIR / "_build_notebooks.py"
    spec = importlib.util.spec_from_file_location("_build_notebooks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_the_notebooks_are_there() -> None:
    names = {path.name for path in NOTEBOOKS}
    assert set(_builder().NOTEBOOKS) <= names, "run: python notebooks/_build_notebooks.py"


@pytest.mark.parametrize("name", sorted(_builder().NOTEBOOKS))
def test_committed_notebook_holds_the_build_scripts_cells(name: str) -> None:
    """Edit the cells in notebooks/_build_notebooks.py, then rebuild; never the .ipynb."""
    committed = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    built = _builder().build(name)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in built.cells
    ], f"{name} differs from its cells in _build_notebooks.py: run the build script"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_was_executed_in_order_without_errors(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    counts = [cell.execution_count for cell in _code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: not executed top to bottom"
    errors = [
        f"cell {k}: {out.ename}: {out.evalue}"
        for k, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]
    assert not errors, errors
    assert not _warnings_in(nb)


@pytest.mark.slow  # about 30 s for the five notebooks, most of it training in notebook 05
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        record_timing=False,
    )
    try:
        client.execute(env=_builder().kernel_env())
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{err}", pytrace=False)
    assert not _warnings_in(nb), f"{path.name} printed warnings"
    assert len(_code_cells(nb)) > 0
