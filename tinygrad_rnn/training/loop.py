"""The training loop: ``train`` and what it returns."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from tinygrad_rnn import optim, tasks
from tinygrad_rnn.jit import jit
from tinygrad_rnn.training.checkpoints import _save_checkpoint
from tinygrad_rnn.training.config import TrainConfig
from tinygrad_rnn.training.history import History, _smooth
from tinygrad_rnn.training.model import build_model, make_optimizer
from tinygrad_rnn.training.objectives import _CharsTask, _make_task
from tinygrad_rnn.training.plots import plot_history
from tinygrad_rnn.training.sampling import sample_chars
from tinygrad_rnn.training.schedules import make_schedule


class TrainingError(RuntimeError):
    """Training could not go on (the loss became inf or nan)."""


# ------------------------------------------------------------------------------ training
@dataclass
class TrainResult:
    """What `train` returns; also written to ``summary.json`` in the run folder."""

    config: TrainConfig
    history: History
    final_metric: float
    baseline: float
    metric_name: str
    extra: dict[str, float]
    seconds: float
    steps_done: int
    interrupted: bool
    files: dict[str, str]
    samples: list[str]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict of the numbers (no history)."""
        return {
            "task": self.config.task,
            "cell": self.config.cell,
            "hidden": self.config.hidden,
            "layers": self.config.layers,
            "seed": self.config.seed,
            "steps": self.steps_done,
            "metric": self.metric_name,
            "final_metric": self.final_metric,
            "baseline": self.baseline,
            "final_train_loss_smoothed": float(_smooth(self.history.losses)[-1])
            if self.history.losses
            else None,
            "seconds": self.seconds,
            "interrupted": self.interrupted,
            **self.extra,
            "config": asdict(self.config),
        }


def format_loss(value: float) -> str:
    """A loss for a log line: 4 decimals, or 3 significant digits below 0.01 (so 2.5e-04
    does not print as 0.0003 or 0.0000)."""
    return f"{value:.4f}" if not abs(value) < 0.01 or value == 0 else f"{value:.2e}"


def _default_log_every(steps: int) -> int:
    return max(1, steps // 20)


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    corpus: tasks.CharCorpus | None = None,
    stdout: TextIO | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train the model ``config`` describes on its task; write the run's files to ``out_dir``.

    Per step: a fresh batch (chars: the next ``seq_len`` characters of every stream, the
    state carried over and detached), forward, backward, optional value clipping, then
    global-norm clipping, then the optimizer step. Every ``eval_every`` steps (and at the
    end) the held-out metric is computed. A tqdm bar shows the smoothed loss when stderr is
    a terminal; otherwise a plain line is printed every ``log_every`` steps. Ctrl-C stops
    early and still writes the files.

    Files written to ``out_dir`` (when given): ``checkpoint.npz`` (model, optimizer,
    config as JSON bytes, history; read with `load_checkpoint`), ``loss.png`` (the
    curves against the baseline), ``summary.json``, and ``samples.txt`` for chars.

    Args:
        config: from `resolve_config`.
        out_dir: the run folder (created), or None to write nothing.
        corpus: the chars text (default: ``config.text`` or the package's own source).
        stdout: where lines go (default ``sys.stdout``).
        progress: force the bar on/off; None: on when stderr is a terminal.

    Returns:
        A `TrainResult`.

    Raises:
        TrainingError: the loss became inf or nan.
        ValueError, OSError: bad settings or an unreadable text.
    """
    from tqdm import tqdm  # imported here: only training needs it

    out = stdout if stdout is not None else sys.stdout
    config.validate()
    if out_dir is not None:
        # Fail before training, not after it, if the run folder cannot be made.
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    # Independent streams for initialisation, training data, held-out data and sampling,
    # so changing e.g. the number of steps never changes the test set.
    init_ss, data_ss, test_ss, sample_ss = np.random.SeedSequence(config.seed).spawn(4)
    task = _make_task(config, np.random.default_rng(test_ss), corpus)
    if isinstance(task, _CharsTask):
        config.vocab = list(task.corpus.vocab)
    model = build_model(config, task.input_size, task.output_size, np.random.default_rng(init_ss))
    params = list(model.parameters())
    opt = make_optimizer(config.optim, params, config.lr)
    schedule = make_schedule(config, opt)
    data_rng = np.random.default_rng(data_ss)
    sample_rng = np.random.default_rng(sample_ss)
    history = History()
    samples: list[str] = []
    n_params = sum(p.size for p in params)
    log_every = config.log_every or _default_log_every(config.steps)

    print(
        f"train {config.task}: {config.cell.upper()} hidden={config.hidden} layers={config.layers}"
        f" ({n_params:,} parameters, {config.dtype}), {config.optim} lr={config.lr:g}, "
        f"batch {config.batch}, clip {config.clip}, seed {config.seed}",
        file=out,
    )
    print(f"data: {task.describe()}", file=out)
    if config.init != "default" or config.schedule != "none":
        print(f"init: {config.init}; lr schedule: {schedule.describe()}", file=out)
    print(f"baseline: {task.baseline:.4f} ({task.baseline_label})", file=out)

    bar = tqdm(
        total=config.steps,
        disable=None if progress is None else not progress,
        file=sys.stderr,
        desc=f"{config.task}/{config.cell}",
        unit="step",
        dynamic_ncols=True,
    )
    plain = bool(bar.disable)

    def say(line: str) -> None:
        if plain:
            print(line, file=out, flush=True)
        else:
            bar.write(line, file=out)

    # The untrained model's held-out metric: where the curve starts (about the baseline or
    # worse), so the plot shows the whole descent.
    evaluation = task.evaluate(model)
    last_metric = evaluation["metric"]
    history.eval_steps.append(0)
    history.eval_metrics.append(last_metric)

    def forward_backward(*batch: Any) -> tuple[Any, Any]:
        loss, carry = task.forward(model, *batch)
        loss.backward()
        return loss, carry

    # Traced on the first step (and once more per new batch signature, e.g. chars' first
    # chunk without a state), replayed afterwards: the same numbers, less Python per op.
    step_fn = jit(forward_backward) if config.jit else forward_backward
    start = time.perf_counter()
    smooth = 0.0
    interrupted = False
    try:
        for step in range(1, config.steps + 1):
            opt.zero_grad()
            loss, carry = step_fn(*task.batch(data_rng))
            task.after(carry)
            if config.clip_value is not None:
                optim.clip_grad_value_(params, config.clip_value)
            norm = (
                optim.clip_grad_norm_(params, config.clip)
                if config.clip is not None
                else optim.clip_grad_norm_(params, math.inf)
            )
            value = float(loss.item())
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} at step {step}; try a smaller --lr or --clip"
                )
            opt.step()
            schedule.after_step()
            history.steps.append(step)
            history.losses.append(value)
            history.grad_norms.append(norm)
            smooth = 0.98 * smooth + 0.02 * value
            shown = smooth / (1 - 0.98**step)
            if step % config.eval_every == 0 or step == config.steps:
                evaluation = task.evaluate(model)
                last_metric = evaluation["metric"]
                history.eval_steps.append(step)
                history.eval_metrics.append(last_metric)
                schedule.after_eval(last_metric)
            if not plain:
                bar.set_postfix_str(
                    f"loss {format_loss(shown)}  {task.metric} {format_loss(last_metric)}", False
                )
                bar.update(1)
            elif step % log_every == 0 or step == config.steps:
                say(
                    f"step {step:>6}/{config.steps}  loss {format_loss(shown)}  {task.metric} "
                    f"{format_loss(last_metric)}  ({time.perf_counter() - start:.1f} s)"
                )
            if config.sample_every and step % config.sample_every == 0 and config.vocab:
                text = sample_chars(model, config, config.sample_length, sample_rng)
                samples.append(f"--- step {step} ---\n{text}")
                say(f"--- sample at step {step} ---\n{text}\n---")
    except KeyboardInterrupt:
        # Ctrl-C: keep what was learned so far (the interrupted step is not counted).
        interrupted = True
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    # An interrupt between the appends of one step leaves the lists unequal: drop that step.
    steps_done = min(len(history.steps), len(history.losses), len(history.grad_norms))
    del history.steps[steps_done:], history.losses[steps_done:], history.grad_norms[steps_done:]
    if interrupted and steps_done == 0:
        raise KeyboardInterrupt
    if history.eval_steps[-1] != steps_done:  # interrupted between evaluations
        evaluation = task.evaluate(model)
        last_metric = evaluation["metric"]
        history.eval_steps.append(steps_done)
        history.eval_metrics.append(last_metric)
    extra = {k: v for k, v in evaluation.items() if k != "metric"}
    if config.vocab:
        text = sample_chars(model, config, max(config.sample_length, 400), sample_rng)
        samples.append(
            f"--- final (step {steps_done}, temperature {config.temperature}) ---\n{text}"
        )

    files: dict[str, str] = {}
    if out_dir is not None:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        _save_checkpoint(folder / "checkpoint.npz", model, opt, config, history)
        files["checkpoint"] = str(folder / "checkpoint.npz")
        title = (
            f"{config.task}: {config.cell.upper()} H={config.hidden}"
            f"{'' if config.task == 'chars' else f', T={config.seq_len}'}, seed {config.seed}"
        )
        plot_history(
            history,
            folder / "loss.png",
            baseline=task.baseline,
            baseline_label=task.baseline_label,
            metric=task.metric,
            title=title,
            log_y=task.log_y,
        )
        files["plot"] = str(folder / "loss.png")
        if samples:
            (folder / "samples.txt").write_text("\n\n".join(samples) + "\n", encoding="utf-8")
            files["samples"] = str(folder / "samples.txt")
    result = TrainResult(
        config=config,
        history=history,
        final_metric=last_metric,
        baseline=task.baseline,
        metric_name=task.metric,
        extra=extra,
        seconds=seconds,
        steps_done=steps_done,
        interrupted=interrupted,
        files=files,
        samples=samples,
    )
    if out_dir is not None:
        path = Path(out_dir) / "summary.json"
        path.write_text(json.dumps(result.summary(), indent=2, ensure_ascii=False) + "\n")
        files["summary"] = str(path)
    return result
