"""The documentation works: its code runs and the site builds.

1. Every ```python block of ``README.md``, ``docs/*.md`` and ``docs/api/*.md`` is executed.
   A page's blocks run in order in one fresh namespace (so a later block may use what an
   earlier one defined), with a temporary directory as the working directory. A failing
   block fails the test with the file and line of the failing statement: the block is
   compiled with its own line numbers in the Markdown file.

   A block that must not run (a fragment with undefined names, an illustration of an error)
   is marked by the HTML comment ``<!-- no-exec -->`` on the last non-blank line before its
   opening fence; it does not show on the rendered page. Use it sparingly: an executed
   block is a claim the test checks.

2. ``mkdocs build --strict`` (``mkdocs.yml``: material theme, mkdocstrings API pages) must
   exit 0. Skipped when mkdocs is not installed, except under ``CI``, which installs it
   (the ``dev`` extra).
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_EXEC = "<!-- no-exec -->"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)[^`]*$")


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the block's first code line in the Markdown file
    code: str
    skip: bool

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def code_blocks(path: Path, text: str | None = None) -> list[Block]:
    """The fenced ```python (or ```py) blocks of a Markdown file (or of ``text``), in order."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].lower()
        close = re.compile(rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if info in ("python", "py"):
            body = textwrap.dedent("\n".join(lines[i + 1 : j]))
            before = [ln.strip() for ln in lines[:i] if ln.strip()]
            marked = bool(before) and before[-1] == NO_EXEC
            blocks.append(Block(path, i + 2, body, marked))
        i = j + 1
    return blocks


def pages() -> list[Path]:
    """README.md, docs/*.md and docs/api/*.md that have at least one block to execute."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found += sorted((ROOT / "docs" / "api").glob("*.md"))
    return [p for p in found if p.is_file() and any(not b.skip for b in code_blocks(p))]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # a block that plots must not open a window
    monkeypatch.syspath_prepend(str(ROOT))  # the blocks import the checkout, not a copy
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in code_blocks(page):
        if block.skip:
            continue
        # Leading newlines give the compiled code the Markdown file's line numbers.
        source = "\n" * (block.line - 1) + block.code
        try:
            exec(compile(source, str(block.path), "exec"), namespace)
        except Exception as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            lines = [f.lineno for f in tb if f.filename == str(block.path)]
            at = f"{block.path.relative_to(ROOT)}:{lines[-1] if lines else block.line}"
            detail = "".join(traceback.format_exception(exc))
            pytest.fail(
                f"the code block at {block.where} failed at {at}: "
                f"{type(exc).__name__}: {exc}\n{detail}",
                pytrace=False,
            )


def test_the_pages_with_code_are_found() -> None:
    found = {p.relative_to(ROOT).as_posix() for p in pages()}
    assert {"README.md", "docs/getting-started.md", "docs/bptt.md"} <= found, found


def test_the_block_parser() -> None:
    """Markers, indented blocks (admonitions) and line numbers, on a page that is never written."""
    text = (
        f"a\n\n{NO_EXEC}\n\n```python\nundefined_name\n```\n"
        "\n!!! note\n    ```python\n    x = 1\n    ```\n\n```bash\nls\n```\n"
    )
    blocks = code_blocks(ROOT / "docs" / "probe.md", text)
    assert [(b.line, b.skip, b.code) for b in blocks] == [
        (6, True, "undefined_name"),
        (11, False, "x = 1"),
    ]


def test_api_pages_cover_the_public_names() -> None:
    """Each public name has a place in the API reference.

    ``api/tensor.md`` and ``api/nn.md`` list their objects one by one, so a name added to
    ``__all__`` must be added there too. The other pages render whole modules, where
    mkdocstrings hides a function or class without a docstring.
    """
    import inspect

    import tinygrad_rnn
    from tinygrad_rnn import nn

    api = ROOT / "docs" / "api"
    tensor_page = (api / "tensor.md").read_text(encoding="utf-8")
    missing = [
        name
        for name in tinygrad_rnn.__all__
        if not name.startswith("__")
        and not inspect.ismodule(getattr(tinygrad_rnn, name))
        and not re.search(rf"\b(tinygrad_rnn|tg)(\.\w+)*\.{name}\b", tensor_page)
    ]
    nn_page = (api / "nn.md").read_text(encoding="utf-8")
    missing += [f"nn.{n}" for n in nn.__all__ if f"::: tinygrad_rnn.nn.{n}\n" not in nn_page]
    for module in ("functional", "optim", "viz", "testing", "reference", "reference.errata"):
        mod = importlib.import_module(f"tinygrad_rnn.{module}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
                missing.append(f"{module}.{name} (no docstring)")
    assert not missing, f"public names missing from docs/api: {missing}"
