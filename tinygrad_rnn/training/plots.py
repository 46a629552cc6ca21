"""The PNG plots: one run's loss curves, several runs, gradient profiles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_rnn.training.history import History, _smooth


# ------------------------------------------------------------------------------- plots
def _figure(width: float = 7.0, height: float = 4.2) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save_figure(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, format="png")
    return out


def plot_history(
    history: History,
    path: str | Path,
    *,
    baseline: float,
    baseline_label: str,
    metric: str,
    title: str,
    log_y: bool = True,
) -> Path:
    """The loss-curve PNG of one run: training loss (raw and smoothed), held-out metric,
    and the task's baseline as a dashed horizontal line. Returns the path written."""
    fig, ax = _figure()
    if history.losses:
        ax.plot(history.steps, history.losses, color="tab:blue", alpha=0.2, lw=0.7)
        ax.plot(
            history.steps,
            _smooth(history.losses),
            color="tab:blue",
            lw=1.6,
            label="training loss (smoothed)",
        )
    if history.eval_steps:
        ax.plot(
            history.eval_steps,
            history.eval_metrics,
            "o-",
            color="tab:orange",
            ms=3,
            lw=1.2,
            label=metric,
        )
    ax.axhline(
        baseline, color="k", ls="--", lw=1.2, label=f"baseline {baseline:.3f} ({baseline_label})"
    )
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save_figure(fig, path)


def plot_runs(
    runs: Sequence[tuple[str, History]],
    path: str | Path,
    *,
    baseline: float,
    baseline_label: str,
    metric: str,
    title: str,
    log_y: bool = True,
) -> Path:
    """Several runs' held-out curves (and faint smoothed training losses) on one plot."""
    fig, ax = _figure()
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:olive"]
    for (label, history), color in zip(runs, colors * 10):
        if history.losses:
            ax.plot(history.steps, _smooth(history.losses), color=color, alpha=0.35, lw=1.0)
        ax.plot(
            history.eval_steps,
            history.eval_metrics,
            "-",
            color=color,
            lw=1.8,
            label=f"{label}: {metric}",
        )
    ax.axhline(
        baseline, color="k", ls="--", lw=1.2, label=f"baseline {baseline:.3f} ({baseline_label})"
    )
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{metric} (bold), training loss (faint)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save_figure(fig, path)


def plot_gradient_profiles(
    profiles: dict[str, np.ndarray], path: str | Path, *, title: str
) -> Path:
    """``‖∂L/∂h_t‖`` against ``t`` for each cell, log-scale y (the vanishing-gradient plot)."""
    fig, ax = _figure()
    colors = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
    floor = np.finfo(np.float64).tiny
    for name, norms in profiles.items():
        t = np.arange(len(norms))
        ax.plot(
            t,
            np.maximum(norms, floor),
            "o-",
            ms=2.5,
            lw=1.4,
            color=colors.get(name),
            label=name.upper(),
        )
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the loss reads only the last step)")
    ax.set_ylabel("‖∂L/∂h_t‖")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    return _save_figure(fig, path)
