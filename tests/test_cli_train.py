"""``tinygrad-rnn train / sample / graph / gradflow / plot / demo``, driven as a user would.

Most tests run the real console in a subprocess (``python -m tinygrad_rnn ...``) with
tiny settings; the task generators and one training property are tested in-process.
Checkpoints are made once per module (fixtures) to keep the file fast.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import cli, tasks, training

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAS_DOT = shutil.which("dot") is not None


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_rnn", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, and the line says what is wrong."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


# ------------------------------------------------------------------ task generators
def test_adding_batch_shapes_markers_and_targets() -> None:
    T, B = 11, 500
    x, y = tasks.adding_batch(np.random.default_rng(0), T, B, np.float64)
    assert x.shape == (T, B, 2) and y.shape == (B, 1) and x.dtype == y.dtype == np.float64
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert (markers.sum(axis=0) == 2).all()  # exactly two marked steps per sequence
    assert (markers[: T // 2].sum(axis=0) == 1).all()  # one in the first half
    assert (markers[T // 2 :].sum(axis=0) == 1).all()  # one in the second half
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=0))
    # Every position of each half gets marked sometimes (uniform placement).
    assert (markers.sum(axis=1) > 0).all()


def test_adding_baseline_is_one_sixth_empirically() -> None:
    _, y = tasks.adding_batch(np.random.default_rng(1), 4, 200_000, np.float64)
    sq = (y[:, 0] - 1.0) ** 2  # always predicting 1
    mse, se = sq.mean(), sq.std() / math.sqrt(sq.size)
    assert abs(mse - 1 / 6) < 5 * se
    assert tasks.adding_baseline() == pytest.approx(1 / 6)


@pytest.mark.parametrize("T", [1, 5, 20])
def test_copy_batch_layout(T: int) -> None:
    B = 64
    x, y = tasks.copy_batch(np.random.default_rng(T), T, B)
    assert x.shape == y.shape == (T + 20, B) and x.dtype == y.dtype == np.int64
    assert ((x[:10] >= 0) & (x[:10] < 8)).all()  # 10 symbols from 8
    assert (x[10 : T + 9] == tasks.COPY_BLANK).all()  # T - 1 blanks
    assert (x[T + 9] == tasks.COPY_DELIMITER).all()  # the delimiter
    assert (x[T + 10 :] == tasks.COPY_BLANK).all()  # 10 blanks while writing
    assert (y[: T + 10] == tasks.COPY_BLANK).all()
    np.testing.assert_array_equal(y[T + 10 :], x[:10])  # reproduce the symbols


def _memoryless_cross_entropy(fit: np.ndarray, test: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-example mean cross-entropy (over steps) of predicting, at each step, the empirical
    distribution of that step's target in ``fit``: the best a model without memory of the
    input symbols can do. ``fit``/``test`` are ``(steps, N)`` targets."""
    counts = np.stack([np.bincount(row, minlength=n_classes) for row in fit]).astype(float)
    probs = counts / counts.sum(axis=1, keepdims=True)
    picked = np.take_along_axis(probs, test, axis=1)  # (steps, N)
    return -np.log(picked).mean(axis=0)


@pytest.mark.parametrize("T", [1, 20, 50])
def test_copy_baseline_matches_the_data(T: int) -> None:
    rng = np.random.default_rng(100 + T)
    _, fit = tasks.copy_batch(rng, T, 40_000)
    _, test = tasks.copy_batch(rng, T, 40_000)
    per_example = _memoryless_cross_entropy(fit, test, tasks.COPY_CLASSES)
    estimate, se = per_example.mean(), per_example.std() / math.sqrt(per_example.size)
    assert abs(estimate - tasks.copy_baseline(T)) < 5 * se + 1e-3
    # The blanks before the answer are certain: all the baseline's loss is in the last 10 steps.
    assert (fit[: T + 10] == tasks.COPY_BLANK).all()


def test_char_corpus_defaults_to_the_package_source() -> None:
    text = tasks.package_text()
    assert "def adding_batch" in text and "class SequenceModel" in text
    corpus = tasks.CharCorpus.from_text(text)
    assert corpus.vocab == tuple(sorted(set(text)))
    assert corpus.baseline == pytest.approx(math.log(corpus.vocab_size))
    tokens = corpus.encode("def f(x):\n")
    assert corpus.decode(tokens) == "def f(x):\n"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tasks.CharCorpus.from_text("abc").encode("abz")


def test_char_streams_are_contiguous_text() -> None:
    tokens = np.arange(103)
    streams = tasks.char_streams(tokens, 4)
    assert streams.shape == (4, 25)
    np.testing.assert_array_equal(streams[1], np.arange(25, 50))


def test_load_text_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        tasks.load_text(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        tasks.load_text(bad)
    same = tmp_path / "same.txt"
    same.write_text("aaaa")
    with pytest.raises(ValueError, match="distinct"):
        tasks.load_text(same)


# -------------------------------------------------------------------- training property
def test_training_on_adding_reduces_the_held_out_loss(tmp_path: Path) -> None:
    config = training.resolve_config(
        "adding", seq_len=10, steps=40, hidden=16, batch=16, eval_every=40, seed=3
    )
    result = training.train(config, None, stdout=io.StringIO(), progress=False)
    first, last = result.history.eval_metrics[0], result.history.eval_metrics[-1]
    # The untrained head predicts ~0 (MSE ~ E[y²] = 7/6); 40 Adam steps must at least learn
    # the mean, i.e. get near the 1/6 baseline.
    assert last < first / 2 and last < 0.3
    assert result.steps_done == 40 and len(result.history.losses) == 40
    assert all(math.isfinite(v) for v in result.history.losses)


@pytest.mark.parametrize(
    ("task", "settings"),
    [
        ("adding", {"seq_len": 6, "cell": "lstm", "layers": 2}),
        ("copy", {"seq_len": 2, "cell": "gru"}),
        ("chars", {"seq_len": 5, "cell": "rnn", "batch": 3}),
    ],
)
def test_the_jitted_training_step_gives_the_eager_run(task: str, settings: dict) -> None:
    """The loop runs its step as a jit program by default: the same losses, metrics and
    weights as ``--eager`` (float64), including chars' state carried between chunks and
    the retrace when the text wraps around to a zero state."""
    text = "hello world, recurrent. " * 3 if task == "chars" else None
    results = {}
    for jitted in (True, False):
        config = training.resolve_config(
            task, steps=12, hidden=6, eval_every=6, seed=1, dtype="float64", jit=jitted,
            **({"batch": 4} | settings),
        )  # fmt: skip
        corpus = tasks.CharCorpus.from_text(text) if text else None
        results[jitted] = training.train(
            config, None, stdout=io.StringIO(), progress=False, corpus=corpus
        )
    jit_run, eager_run = results[True], results[False]
    np.testing.assert_allclose(jit_run.history.losses, eager_run.history.losses, rtol=1e-10)
    np.testing.assert_allclose(
        jit_run.history.eval_metrics, eager_run.history.eval_metrics, rtol=1e-10
    )
    np.testing.assert_allclose(jit_run.history.grad_norms, eager_run.history.grad_norms, rtol=1e-10)


def test_forget_bias_is_set_on_every_lstm_layer() -> None:
    config = training.resolve_config("adding", hidden=5, layers=2, forget_bias=1.0)
    model = training.build_model(config, 2, 1, np.random.default_rng(0))
    for layer in range(2):
        b = (
            getattr(model.rnn, f"bias_ih_l{layer}").data
            + getattr(model.rnn, f"bias_hh_l{layer}").data
        )
        np.testing.assert_allclose(b[5:10], 1.0)


def test_vanishing_gradient_profile_rnn_vs_lstm() -> None:
    rnn = training.gradient_profile("rnn", 40, hidden=16, batch=8)
    lstm = training.gradient_profile("lstm", 40, hidden=16, batch=8)
    assert rnn.shape == lstm.shape == (40,)
    # What reaches the first step, relative to the last: tiny for the RNN, far larger for LSTM.
    assert rnn[0] / rnn[-1] < 1e-4
    assert lstm[0] / lstm[-1] > 100 * (rnn[0] / rnn[-1])


# ------------------------------------------------------------------------- the console
@pytest.fixture(scope="module")
def adding_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("adding")
    proc = _run(
        "train", "--task", "adding", "-T", "8", "--steps", "30", "--hidden", "8", "--batch", "8",
        "--eval-every", "10", "--log-every", "10", "--seed", "1", "--out", out,
    )  # fmt: skip
    return out, proc


@pytest.fixture(scope="module")
def chars_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("chars")
    text = out / "input.txt"
    text.write_text("hello world, hello recurrent world. " * 40, encoding="utf-8")
    proc = _run(
        "train", "--task", "chars", "--text", text, "--steps", "20", "--hidden", "16",
        "--batch", "2", "-T", "10", "--sample-every", "10", "--sample-length", "30",
        "--out", out / "run",
    )  # fmt: skip
    return out / "run", proc


def test_train_adding_writes_a_loadable_checkpoint_and_a_plot(adding_run) -> None:
    out, proc = adding_run
    assert proc.returncode == 0, proc.stderr
    # Not a terminal: no progress bar on stderr, plain lines on stdout instead.
    assert proc.stderr == ""
    assert "step     10/30" in proc.stdout and "step     30/30" in proc.stdout
    assert "baseline: 0.1667" in proc.stdout
    summary_line = proc.stdout.strip().splitlines()[-1]
    assert summary_line.startswith("done: adding/lstm H=8: test MSE") and "seed 1" in summary_line

    state = tg.load(out / "checkpoint.npz")
    assert set(state) >= {"model", "optim", "config", "history"}
    config = json.loads(state["config"].tobytes().decode("utf-8"))
    assert config["task"] == "adding" and config["hidden"] == 8 and config["seq_len"] == 8
    fresh = training.SequenceModel("lstm", 2, 8, 1, rng=np.random.default_rng(5))
    fresh.load_state_dict(state["model"])
    np.testing.assert_array_equal(fresh.head.weight.data, state["model"]["head.weight"])
    opt = training.make_optimizer("adam", list(fresh.parameters()), 1e-2)
    opt.load_state_dict(state["optim"])
    assert opt.step_count == 30
    assert len(state["history"]["losses"]) == 30

    assert (out / "loss.png").read_bytes()[:8] == PNG_SIGNATURE
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["baseline"] == pytest.approx(1 / 6)


def test_train_copy_reports_recall(tmp_path: Path) -> None:
    proc = _run(
        "train", "--task", "copy", "-T", "3", "--steps", "5", "--hidden", "8", "--batch", "4",
        "--cell", "gru", "--optim", "rmsprop", "--dtype", "float64", "--out", tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert "copy/gru" in last and "recall accuracy" in last
    assert f"baseline {tasks.copy_baseline(3):.4f}" in last
    assert training.load_checkpoint(tmp_path / "checkpoint.npz").config.dtype == "float64"


def test_train_chars_samples_and_sample_command(chars_run) -> None:
    out, proc = chars_run
    assert proc.returncode == 0, proc.stderr
    assert "--- sample at step 10 ---" in proc.stdout
    assert "validation loss/char" in proc.stdout.splitlines()[-1]
    assert (out / "samples.txt").exists()
    ckpt = out / "checkpoint.npz"
    vocab = set(training.load_checkpoint(ckpt).config.vocab or [])
    assert vocab == set("hello world, recurrent.")

    a = _run("sample", "--checkpoint", ckpt, "--length", "40", "--seed", "7", "--prime", "hel")
    b = _run("sample", "--checkpoint", ckpt, "--length", "40", "--seed", "7", "--prime", "hel")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout  # seeded
    text = a.stdout.rstrip("\n")
    assert text.startswith("hel") and len(text) == 43 and set(text) <= vocab


def test_sample_refuses_bad_input(adding_run, chars_run, tmp_path: Path) -> None:
    adding_out, _ = adding_run
    chars_out, _ = chars_run
    _assert_one_line_error(
        _run("sample", "--checkpoint", adding_out / "checkpoint.npz"), "adding", "chars"
    )
    _assert_one_line_error(_run("sample", "--checkpoint", tmp_path / "none.npz"), "none.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    _assert_one_line_error(_run("sample", "--checkpoint", garbage), "garbage.npz")
    truncated = tmp_path / "truncated.npz"
    data = (chars_out / "checkpoint.npz").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    _assert_one_line_error(_run("sample", "--checkpoint", truncated), "truncated.npz")
    foreign = tmp_path / "foreign.npz"
    tg.save({"w": np.zeros(3)}, foreign)
    _assert_one_line_error(_run("sample", "--checkpoint", foreign), "not one written by")
    _assert_one_line_error(
        _run("sample", "--checkpoint", chars_out / "checkpoint.npz", "--prime", "xyz"),
        "--prime",
        "vocabulary",
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--task", "chars", "--text", "/nonexistent/corpus.txt"], "corpus.txt"),
        (["train", "--task", "adding", "--steps", "0"], "--steps"),
        (["train", "--task", "adding", "--steps", "x"], "--steps"),
        (["train", "--task", "adding", "--lr", "-1"], "--lr"),
        (["train", "--task", "adding", "--lr", "nan"], "--lr"),
        (["train", "--task", "adding", "-T", "1"], "seq-len"),
        (["train", "--task", "adding", "--text", "x.txt"], "--text"),
        (["train", "--task", "nope"], "--task"),
        (["train"], "--task"),
        (["sample", "--checkpoint", "x.npz", "--temperature", "0"], "--temperature"),
        (["graph", "--out", "picture.jpg"], "picture.jpg"),
        (["gradflow", "-T", "-3"], "-T"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    _assert_one_line_error(_run(*args), needle)


def test_chars_text_too_short_is_a_clear_error(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("ab" * 10)
    _assert_one_line_error(
        _run("train", "--task", "chars", "--text", short, "--out", tmp_path), "too short"
    )


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
def test_graph_writes_svg_and_png(tmp_path: Path) -> None:
    proc = _run("graph", "--cell", "rnn", "-T", "3", "--out", tmp_path / "rnn.svg")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path / 'rnn.svg'}" in proc.stdout
    root = ET.parse(tmp_path / "rnn.svg").getroot()
    assert root.tag.endswith("svg")
    proc = _run("graph", "--cell", "gru", "-T", "5", "--mode", "gradflow", "--format", "png",
                "--out", tmp_path / "gru")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "gru.png").read_bytes()[:8] == PNG_SIGNATURE


def test_graph_takes_o_as_short_for_out(tmp_path: Path) -> None:
    assert cli._parser().parse_args(["graph", "-o", "g.svg"]).out == Path("g.svg")
    if not HAS_DOT:
        pytest.skip("Graphviz's dot is not installed")
    proc = _run("graph", "--cell", "rnn", "-T", "2", "-o", tmp_path / "short.svg")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path / 'short.svg'}" in proc.stdout
    assert ET.parse(tmp_path / "short.svg").getroot().tag.endswith("svg")


def test_graph_without_dot_writes_the_source(tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    proc = _run("graph", "--out", tmp_path / "g.svg", env=env)
    _assert_one_line_error(proc, "apt-get install graphviz", "g.dot")
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def test_gradflow_plot_and_table(tmp_path: Path) -> None:
    proc = _run("gradflow", "-T", "30", "--hidden", "8", "--out", tmp_path / "g.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_SIGNATURE
    rows = {
        line.split()[0]: line.split()
        for line in proc.stdout.splitlines()
        if line[:4] in ("rnn ", "lstm")
    }
    assert set(rows) == {"rnn", "lstm"}
    assert float(rows["rnn"][-1]) < float(rows["lstm"][-1])  # first/last ratio


def test_plot_overlays_runs(adding_run, tmp_path: Path) -> None:
    out, _ = adding_run
    ckpt = out / "checkpoint.npz"
    proc = _run("plot", ckpt, ckpt, "--labels", "a", "b", "--out", tmp_path / "c.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_SIGNATURE


def test_demo_runs_every_part(tmp_path: Path) -> None:
    proc = _run("demo", "--steps", "20", "-T", "4", "--out", tmp_path)
    # 20 steps may not beat a quarter of the baseline (exit 1); every part must still run.
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    for part in ("1/4", "2/4", "3/4", "4/4"):
        assert f"== {part}" in proc.stdout
    assert (tmp_path / "adding-lstm" / "loss.png").exists()
    assert (tmp_path / "gradflow.png").exists()
    if HAS_DOT:
        assert (tmp_path / "lstm_T4.svg").exists()


@pytest.mark.parametrize("command", ["train", "sample", "graph", "gradflow", "plot", "demo"])
def test_help(command: str) -> None:
    proc = _run(command, "--help")
    assert proc.returncode == 0 and f"usage: tinygrad-rnn {command}" in proc.stdout


def test_unwritable_out_fails_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = _run("train", "--task", "adding", "-T", "3", "--steps", "1", "--out", blocker)
    _assert_one_line_error(proc, "a-file")
    assert "step" not in proc.stdout  # no training was wasted


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_training_and_still_writes_the_files(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinygrad_rnn", "train", "--task", "adding", "-T", "4",
         "--steps", "1000000", "--hidden", "4", "--log-every", "1", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A child started from a non-interactive shell may inherit "ignore SIGINT".
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until training is under way, then press Ctrl-C
        if line.startswith("step"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted at step" in out.strip().splitlines()[-1]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True and 0 < summary["steps"] < 1_000_000
    assert (
        training.load_checkpoint(tmp_path / "checkpoint.npz").history.steps[-1] == summary["steps"]
    )
