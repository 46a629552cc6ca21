#!/usr/bin/env bash
# Set up this checkout on a fresh Debian machine and run the main job:
# autograd gradients checked against the documents' closed-form BPTT.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dot >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq graphviz >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q -e .
.venv/bin/python -m tinygrad_rnn check "$@"
