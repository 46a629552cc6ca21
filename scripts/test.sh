#!/usr/bin/env bash
# Set up this checkout on a fresh Debian machine and run the whole test suite,
# lint (ruff) and type checks (mypy). The README's second command and .ci/run
# both call this script, so neither can drift from the other.
set -euo pipefail
cd "$(dirname "$0")/.."

# Graphviz's `dot` renders graph pictures; the Python package only builds DOT text.
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq graphviz >/dev/null
  else
    echo "warning: graphviz 'dot' not found; install it (apt-get install graphviz) to run the rendering tests" >&2
  fi
fi

# Debian's Chromium opens the built documentation site headless (tests/test_docs_site.py).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium not found; install it (apt-get install -y chromium) to run the site's browser tests" >&2
  fi
fi

python3 -m venv .venv
# torch==2.13.0 (CPU) is an optional extra used only for cross-checks.
.venv/bin/pip install -q -e '.[dev,torch]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
