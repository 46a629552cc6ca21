"""The learning-rate schedule of a run (``tinygrad-rnn train --schedule``).

The loop has no epochs, so the epoch-driven schedulers step once per optimizer step, and
``plateau`` steps once per held-out evaluation, with the held-out metric (every task's
metric is a loss: lower is better). With ``S`` the number of steps, ``γ`` the
``schedule_gamma`` and ``P`` the ``schedule_period`` of the config (None: the default in
brackets):

* ``none``: the learning rate stays ``lr``.
* ``step``: [`StepLR`][tinygrad_rnn.optim.lr_scheduler.StepLR], ``lr * γ`` every ``P`` steps
  [γ = 0.1, P = S // 3 (at least 1)].
* ``exponential``: [`ExponentialLR`][tinygrad_rnn.optim.lr_scheduler.ExponentialLR], ``lr * γ``
  every step [γ = 0.01 ** (1 / S): a hundredfold decay over the run].
* ``cosine``: [`CosineAnnealingLR`][tinygrad_rnn.optim.lr_scheduler.CosineAnnealingLR] from
  ``lr`` towards 0 over ``T_max = P`` steps [P = S].
* ``plateau``: [`ReduceLROnPlateau`][tinygrad_rnn.optim.lr_scheduler.ReduceLROnPlateau],
  ``lr * γ`` after more than ``P`` evaluations without a 0.01 % improvement [γ = 0.5, P = 2].
"""

from __future__ import annotations

from typing import Any

from tinygrad_rnn import optim
from tinygrad_rnn.optim import lr_scheduler

SCHEDULES = ("none", "step", "exponential", "cosine", "plateau")
# Which of schedule_gamma / schedule_period each schedule uses.
USES_GAMMA = ("step", "exponential", "plateau")
USES_PERIOD = ("step", "cosine", "plateau")


class Schedule:
    """The scheduler of a run and the points of the loop where it steps.

    Attributes:
        name: one of ``SCHEDULES``.
        scheduler: the scheduler, or None for ``none``.
    """

    def __init__(self, name: str, scheduler: Any) -> None:
        self.name = name
        self.scheduler = scheduler

    def after_step(self) -> None:
        """Call after every ``opt.step()``: steps the epoch-driven schedulers."""
        if self.scheduler is not None and self.name != "plateau":
            self.scheduler.step()

    def after_eval(self, metric: float) -> None:
        """Call after every held-out evaluation of the loop: steps ``plateau``."""
        if self.name == "plateau":
            self.scheduler.step(metric)

    def describe(self) -> str:
        """The schedule and its parameters, for the run's first lines."""
        s = self.scheduler
        if s is None:
            return "none"
        if self.name == "step":
            return f"step (gamma {s.gamma:g} every {s.step_size} steps)"
        if self.name == "exponential":
            return f"exponential (gamma {s.gamma:.6g} per step)"
        if self.name == "cosine":
            return f"cosine (T_max {s.T_max} steps, eta_min {s.eta_min:g})"
        return f"plateau (factor {s.factor:g} after {s.patience} evaluations without improvement)"


def make_schedule(config: Any, opt: optim.Optimizer) -> Schedule:
    """The schedule ``config.schedule`` names, on ``opt`` (see the module's list).

    Args:
        config: a validated ``TrainConfig``.
        opt: the run's optimizer.

    Raises:
        ValueError: an unknown schedule name.
    """
    name, gamma, period, steps = (
        config.schedule,
        config.schedule_gamma,
        config.schedule_period,
        config.steps,
    )
    if name == "none":
        return Schedule(name, None)
    if name == "step":
        return Schedule(
            name,
            lr_scheduler.StepLR(
                opt,
                step_size=period if period is not None else max(1, steps // 3),
                gamma=gamma if gamma is not None else 0.1,
            ),
        )
    if name == "exponential":
        return Schedule(
            name,
            lr_scheduler.ExponentialLR(
                opt, gamma=gamma if gamma is not None else 0.01 ** (1 / steps)
            ),
        )
    if name == "cosine":
        return Schedule(
            name, lr_scheduler.CosineAnnealingLR(opt, T_max=period if period is not None else steps)
        )
    if name == "plateau":
        return Schedule(
            name,
            lr_scheduler.ReduceLROnPlateau(
                opt,
                mode="min",
                factor=gamma if gamma is not None else 0.5,
                patience=period if period is not None else 2,
            ),
        )
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
