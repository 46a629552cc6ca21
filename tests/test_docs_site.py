"""The built documentation site, as a reader sees it.

1. The site is built once for this module (``mkdocs build --strict`` into a temporary
   directory). A build that warns fails every test here with mkdocs' output; among the
   warnings are autorefs' "Could not find cross-reference target" for a docstring's
   ``[`Name`][dotted.path]`` reference that names nothing on the site.
2. No page shows a Sphinx role as text (``:class:`Module``` and the like): the docstrings'
   cross-references are written for mkdocstrings, ``[`Module`][tinygrad_rnn.nn.Module]``.
3. In headless Chromium, offline (every host but 127.0.0.1 made unresolvable), with the site
   served by a local ``http.server``:

   - no page logs a console error, an uncaught exception or a failed request;
   - the BPTT derivations page shows typeset formulas (KaTeX) and no TeX source;
   - every image of the gallery loads.

   The browser is Debian's ``chromium`` (``apt-get install -y chromium``; ``scripts/test.sh``
   installs it), driven over the DevTools protocol on a pipe, so no Python package or browser
   download is needed. A missing browser fails these tests, saying how to install it.
"""

from __future__ import annotations

import base64
import functools
import html
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Sphinx's Python-domain roles (and the ``py:`` spelling), followed by what was their target:
# the tags in between are the rendered ``<code>`` of the role's backticks.
ROLE_TEXT = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):(?=(?:<[^>]+>)*[`~.!\w])"
)
# Chromium's flags: no sandbox (CI runs as root), nothing of its own on the network, a fresh
# profile per run; the host rule makes every name but 127.0.0.1 fail to resolve, so a page
# that needs the internet fails here whether or not this machine has it.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1400,1800",
)
INSTALL_CHROMIUM = "apt-get install -y chromium"


# --------------------------------------------------------------------------- the built site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [
        name
        for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        reason = (
            f"documentation tools not installed ({', '.join(missing)}); "
            "pip install -e '.[dev]' installs them"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI must build the site", pytrace=False)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # material's banner, not a build problem
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"mkdocs build --strict failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return out


def test_mkdocs_build_strict(site: Path) -> None:
    """The strict build (in the fixture) succeeds and writes the main pages."""
    for page in ("index.html", "bptt/index.html", "api/tensor/index.html"):
        assert (site / page).is_file(), page


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def role_texts(page_html: str) -> list[str]:
    """Each Sphinx role shown as text on a page: the object it is documented under, and a
    snippet of the text around it."""
    # Code blocks may show anything; blanked to the same length so offsets stay valid.
    searchable = re.sub(r"<pre[\s>].*?</pre>", lambda m: " " * len(m[0]), page_html, flags=re.S)
    found = []
    for m in ROLE_TEXT.finditer(searchable):
        ids = re.findall(r'id="(tinygrad_rnn[\w.]*)"', page_html[: m.start()])
        before = _text(page_html[max(0, m.start() - 300) : m.start()])
        after = _text(page_html[m.start() : m.end() + 300])
        gap = " " if page_html[max(0, m.start() - 1)].isspace() else ""
        snippet = f"{before[-50:]}{gap}{after[:70]}"
        found.append(f"{ids[-1] if ids else '(page text)'}: ...{snippet}...")
    return found


def _text(fragment: str) -> str:
    """HTML as text, with <code> back as backticks: it reads like the docstring to look for."""
    fragment = re.sub(r"</?code>", "`", fragment)
    return " ".join(html.unescape(re.sub(r"<[^>]*>?", " ", fragment)).split())


def test_role_detector_finds_a_rendered_role() -> None:
    """The detector sees a role as mkdocstrings renders it, and only outside code blocks."""
    rendered = '<h3 id="tinygrad_rnn.nn.RNN">RNN</h3><p>A stack of :class:<code>RNNCell</code></p>'
    found = role_texts(rendered)
    assert found == ["tinygrad_rnn.nn.RNN: ...RNN A stack of :class:`RNNCell`..."], found
    assert role_texts("<pre><code>:func:`f`</code></pre><p>a [link] to f</p>") == []


def test_no_page_shows_sphinx_roles(site: Path) -> None:
    problems = {}
    for page in html_pages(site):
        found = role_texts(page.read_text(encoding="utf-8"))
        if found:
            problems[page.relative_to(site).as_posix()] = found
    assert not problems, (
        f"{sum(map(len, problems.values()))} Sphinx role(s) shown as text; write them as "
        "mkdocstrings cross-references, [`Name`][full.dotted.path]:\n"
        + "\n".join(f"{page}:\n  " + "\n  ".join(found) for page, found in problems.items())
    )


def test_vendored_katex_is_the_version_its_readme_names() -> None:
    """docs/vendor/katex/README.md says where the files came from; it must stay true."""
    folder = ROOT / "docs" / "vendor" / "katex"
    title = (folder / "README.md").read_text(encoding="utf-8").splitlines()[0]
    named = re.fullmatch(r"# KaTeX (\S+), vendored", title)
    assert named, f"unexpected title in {folder / 'README.md'}: {title!r}"
    shipped = re.search(r'version:"([^"]+)"', (folder / "katex.min.js").read_text("utf-8"))
    assert shipped and shipped[1] == named[1], (named[1], shipped and shipped[1])
    css = (folder / "katex.min.css").read_text(encoding="utf-8")
    wanted = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css))
    missing = sorted(f for f in wanted if not (folder / f).is_file())
    assert wanted and not missing, f"fonts katex.min.css names but the folder lacks: {missing}"


# --------------------------------------------------------------------------- the browser


@dataclass
class Visit:
    url: str
    errors: list[str] = field(default_factory=list)


class Chromium:
    """Headless Chromium over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

    The browser reads commands on its fd 3 and writes replies and events on its fd 4, each
    a JSON object followed by a NUL byte. One page target is used for every visit.
    """

    def __init__(self, exe: str, profile: Path, log: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        self._log = log
        # bash puts the two pipe ends on fds 3 and 4, where Chromium expects them (dash, Debian's
        # sh, cannot name an fd above 9 in a redirection).
        r, w = to_browser_r, from_browser_w
        script = f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-'
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                ["bash", "-c", script, *cmd, "about:blank"],
                pass_fds=(to_browser_r, from_browser_w),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._ids = itertools.count(1)
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
            self.session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable", session=True)
            self.send("Page.setLifecycleEventsEnabled", {"enabled": True}, session=True)
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        buf = b""
        while chunk := os.read(self._from_browser, 1 << 16):
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self._cond.notify_all()
        with self._cond:  # the browser is gone: wake whoever waits
            self._cond.notify_all()

    def _stderr_tail(self) -> str:
        text = self._log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-15:])

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> dict[str, Any]:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        try:
            os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise RuntimeError(
                f"Chromium exited; its output ends:\n{self._stderr_tail()}"
            ) from None
        with self._cond:
            if not self._cond.wait_for(
                lambda: msg_id in self._replies or not self._reader.is_alive(), timeout=60
            ):
                raise TimeoutError(f"Chromium did not answer {method} within 60 s")
            if msg_id not in self._replies:
                raise RuntimeError(f"Chromium exited; its output ends:\n{self._stderr_tail()}")
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise RuntimeError(f"{method} failed: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def visit(self, url: str, timeout: float = 30.0) -> Visit:
        """Load ``url`` and wait until the network is idle; what the page logged as errors."""
        with self._cond:
            self.events.clear()
        nav = self.send("Page.navigate", {"url": url}, session=True)
        visit = Visit(url)
        if "errorText" in nav:
            visit.errors.append(f"navigation failed: {nav['errorText']}")
            return visit

        def settled() -> bool:
            return any(
                e["method"] == "Page.lifecycleEvent" and e["params"]["name"] == "networkIdle"
                for e in self.events
                if e.get("sessionId") == self.session
            )

        with self._cond:
            if not self._cond.wait_for(settled, timeout=timeout):
                visit.errors.append(f"still loading after {timeout:.0f} s")
            events = [e for e in self.events if e.get("sessionId") == self.session]
        for e in events:
            method, p = e["method"], e["params"]
            if method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                text = d.get("exception", {}).get("description") or d.get("text", "")
                visit.errors.append(f"uncaught exception: {text}")
            elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                args = [str(a.get("value", a.get("description", ""))) for a in p["args"]]
                visit.errors.append(f"console.{p['type']}: {' '.join(args)}")
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                entry = p["entry"]  # failed requests, blocked resources, ...
                where = f" ({entry['url']})" if entry.get("url") else ""
                visit.errors.append(f"{entry['source']}: {entry['text']}{where}")
        return visit

    def evaluate(self, expression: str) -> Any:
        reply = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"evaluating a probe failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        self._reader.join(timeout=5)
        os.close(self._from_browser)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    exe = find_chromium()
    if exe is None:
        pytest.fail(
            "Chromium is needed to check the documentation site in a browser and is not "
            f"installed: {INSTALL_CHROMIUM} (scripts/test.sh does this when run as root)",
            pytrace=False,
        )
    where = tmp_path_factory.mktemp("chromium")
    chromium = Chromium(exe, where / "profile", where / "chromium.log")
    yield chromium
    chromium.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over HTTP on a free port of 127.0.0.1 (file:// would break the search)."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def page_url(base: str, site: Path, page: Path) -> str:
    rel = page.relative_to(site).as_posix()
    return base + (rel[: -len("index.html")] if rel.endswith("index.html") else rel)


def test_no_page_logs_an_error(site: Path, served: str, browser: Chromium) -> None:
    pages = html_pages(site)
    assert len(pages) > 10, [p.relative_to(site).as_posix() for p in pages]
    problems = {}
    for page in pages:
        visit = browser.visit(page_url(served, site, page))
        if visit.errors:
            problems[page.relative_to(site).as_posix()] = first_few(visit.errors)
    assert not problems, f"{len(problems)} of {len(pages)} pages logged errors:\n" + "\n".join(
        f"{page}:\n  " + "\n  ".join(errors) for page, errors in problems.items()
    )


# What a reader sees of the derivations page: every formula, and whether KaTeX typeset it;
# the page's visible text outside code, where no TeX may be left. KaTeX keeps a MathML copy
# of each formula for screen readers (.katex-mathml, clipped to nothing on screen), whose
# annotation is the TeX source: it is not visible text.
MATH_PROBE = r"""
(() => {
  const formulas = [...document.querySelectorAll(".md-content .arithmatex")];
  const raw = formulas.filter((el) => !el.querySelector(".katex")).map((el) => el.textContent);
  const skip = "pre, code, script, style, .katex-mathml";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const visible = [];
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (el && !el.closest(skip) && el.checkVisibility({ visibilityProperty: true })) {
      visible.push(walker.currentNode.nodeValue);
    }
  }
  return {
    formulas: formulas.length,
    katex: document.querySelectorAll(".md-content .katex").length,
    untypeset: raw.slice(0, 5),
    text: visible.join(" "),
  };
})()
"""
TEX_SOURCE = re.compile(r"\\(?:begin|end)\{|\\[()\[\]]|\\[A-Za-z]+")


def test_bptt_page_shows_typeset_math(served: str, browser: Chromium, tmp_path: Path) -> None:
    visit = browser.visit(served + "bptt/")
    shot = tmp_path / "bptt.png"
    browser.screenshot(shot)
    probe = browser.evaluate(MATH_PROBE)
    problems = []
    if probe["formulas"] < 100:  # the page has a few hundred; fewer means the probe is lost
        problems.append(f"only {probe['formulas']} formulas found")
    if probe["untypeset"]:
        problems.append(
            f"{probe['formulas'] - probe['katex']} of {probe['formulas']} formulas not typeset, "
            f"e.g. {probe['untypeset']}"
        )
    leftovers = [
        " ".join(probe["text"][max(0, m.start() - 40) : m.end() + 40].split())
        for m in itertools.islice(TEX_SOURCE.finditer(probe["text"]), 5)
    ]
    if leftovers:
        problems.append(f"TeX source in the visible text: {leftovers}")
    problems += first_few(visit.errors)
    assert not problems, f"{visit.url} (as Chromium showed it: {shot}):\n" + "\n".join(problems)


def first_few(errors: list[str], n: int = 10) -> list[str]:
    return errors[:n] + ([f"... and {len(errors) - n} more"] if len(errors) > n else [])


IMAGE_PROBE = """
[...document.querySelectorAll(".md-content img")].map((img) => ({
  src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth,
}))
"""


def test_gallery_images_load(served: str, browser: Chromium) -> None:
    visit = browser.visit(served + "gallery/")
    images = browser.evaluate(IMAGE_PROBE)
    broken = [img["src"] for img in images if not (img["complete"] and img["width"] > 0)]
    assert len(images) >= 5, f"only {len(images)} images on {visit.url}"
    assert not broken, f"{len(broken)} of {len(images)} gallery images did not load: {broken}"
    assert not visit.errors, f"{visit.url} logged errors:\n" + "\n".join(first_few(visit.errors))


def test_error_collection_sees_console_errors_and_failed_requests(browser: Chromium) -> None:
    """The checks above can fail: a page's console error, uncaught exception and a request to
    the internet (which the host rule makes fail) are all reported."""
    probe = (
        "data:text/html,<script>console.error('probe-error')</script>"
        "<script>setTimeout(() => { throw new Error('probe-throw') })</script>"
        "<img src='https://example.invalid/x.png'>"
    )
    visit = browser.visit(probe)
    text = "\n".join(visit.errors)
    assert "probe-error" in text and "probe-throw" in text, text
    assert "example.invalid" in text or "ERR_NAME_NOT_RESOLVED" in text, text
