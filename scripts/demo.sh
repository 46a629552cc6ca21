#!/usr/bin/env bash
# Set up this checkout on a fresh Debian machine and take the tour (about two minutes on
# 2 cores, the pip install included):
#   1. autograd gradients checked against the documents' closed-form BPTT (`check`),
#   2. a small LSTM learning the adding problem, with a progress bar, far below its baseline,
#   3. the computation graph of a 4-step LSTM written to runs/demo/lstm_T4.svg,
#   4. the RNN-vs-LSTM vanishing-gradient plot written to runs/demo/gradflow.png.
# Extra arguments go to `tinygrad-rnn demo` (e.g. --steps 2000 --seed 1 --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dot >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq graphviz >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q -e .
# One BLAS thread: the matrices are small, and extra threads only fight over 2 cores.
OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" .venv/bin/python -m tinygrad_rnn demo "$@"
