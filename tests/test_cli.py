"""The ``tinygrad-rnn`` command, driven as a user would: in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tinygrad_rnn import cli
from tinygrad_rnn.checks import CheckResult


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_rnn", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_check_json_reports_every_variant_and_passes() -> None:
    proc = _run("check", "--json", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["passed"] is True and payload["seed"] == 3
    variants = [r["variant"] for r in payload["results"]]
    assert any(v.startswith("lstm softmax") for v in variants)
    assert any(v.startswith("gru") for v in variants)
    for row in payload["results"]:
        assert row["finite_diff_error"] <= payload["finite_diff_tol"]
        if row["closed_form_error"] is not None:
            assert row["closed_form_error"] <= payload["closed_form_tol"]
            assert row["jit_error"] <= payload["closed_form_tol"]  # the replay, same oracle
        else:
            assert row["jit_error"] <= payload["finite_diff_tol"]


def test_check_fails_when_the_jitted_replay_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jit column is not a copy of the eager one: a replay that reads its parameters
    slightly wrong fails every variant."""
    import importlib

    from tinygrad_rnn import checks

    jit = importlib.import_module("tinygrad_rnn.jit")  # the module (tg.jit is the function)
    real_run = jit._Program.run

    def skewed(self: Any, flat_args: list[Any]) -> list[Any]:
        for _, t in self.leaf_slots:
            t.data = t.data * (1 + 1e-3)
        return real_run(self, flat_args)

    monkeypatch.setattr(jit._Program, "run", skewed)
    results = checks.run_checks(seed=1)
    assert not any(r.passed for r in results)
    assert all(r.jit_error > 1e-5 for r in results)


def test_check_table_is_readable() -> None:
    proc = _run("check")
    assert proc.returncode == 0, proc.stderr
    assert "vs closed form" in proc.stdout and "rnn softmax + cross-entropy" in proc.stdout
    assert "9 passed, 0 failed" in proc.stdout


@pytest.mark.parametrize("args", [["check", "--seed", "x"], ["nope"], []])
def test_bad_arguments_exit_2_with_one_clear_line(args: list[str]) -> None:
    proc = _run(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "error:" in proc.stderr


def test_check_exits_1_when_a_variant_fails(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    bad = CheckResult("rnn softmax", "§1", "B=1", 3, 1e-3, 1e-9, False)
    monkeypatch.setattr(cli, "run_checks", lambda seed: [bad])
    assert cli.main(["check"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_help_works_for_every_subcommand() -> None:
    for args in (["--help"], ["check", "--help"]):
        proc = _run(*args)
        assert proc.returncode == 0 and "usage: tinygrad-rnn" in proc.stdout


def test_library_errors_become_one_line_and_debug_reraises(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def broken(args):
        raise ValueError("the stored config is\nnot valid")

    monkeypatch.setattr(cli, "_cmd_gradflow", broken)
    assert cli.main(["gradflow"]) == 2
    err = capsys.readouterr().err
    assert err == "tinygrad-rnn gradflow: error: the stored config is not valid\n"
    monkeypatch.setenv("TINYGRAD_RNN_DEBUG", "1")
    with pytest.raises(ValueError, match="not valid"):
        cli.main(["gradflow"])
