"""``python -m tinygrad_rnn``: the command-line entry point."""

from tinygrad_rnn.cli import main

raise SystemExit(main())
