"""Learning-rate schedules with the names, arguments and semantics of PyTorch's
``torch.optim.lr_scheduler``.

A scheduler wraps an [`Optimizer`][tinygrad_rnn.optim.Optimizer] and sets the ``"lr"`` of each
of its param groups; call its ``step()`` after the optimizer's::

    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        train_one_epoch(model, opt)          # opt.step() inside
        sched.step()
        sched.get_last_lr()                   # [0.1] for epochs 0..29, then [0.01], ...

[`ReduceLROnPlateau`][tinygrad_rnn.optim.lr_scheduler.ReduceLROnPlateau] is stepped with the
monitored metric instead: ``sched.step(val_loss)``.

As in PyTorch:

* Making a scheduler (with ``last_epoch=-1``) stores each group's learning rate as
  ``group["initial_lr"]``; those are the ``base_lrs``. It then takes the first step, to
  ``last_epoch = 0``, which sets the learning rates for epoch 0 (for LambdaLR,
  ``base_lr * lr_lambda(0)``).
* [`StepLR`][tinygrad_rnn.optim.lr_scheduler.StepLR],
  [`ExponentialLR`][tinygrad_rnn.optim.lr_scheduler.ExponentialLR] and
  [`CosineAnnealingLR`][tinygrad_rnn.optim.lr_scheduler.CosineAnnealingLR] are *chainable*: each
  step computes the new rate from the group's current ``lr`` (so two schedulers on one
  optimizer compose, and a change a user makes to ``lr`` carries on);
  [`LambdaLR`][tinygrad_rnn.optim.lr_scheduler.LambdaLR] computes it from ``base_lrs``.
* Every group has its own rate; ``get_last_lr()`` returns one per group.
* ``last_epoch=k >= 0`` resumes a schedule: the groups must already hold ``initial_lr``
  (load the optimizer's state dict first).

Unlike PyTorch, ``step()`` takes no ``epoch`` (PyTorch deprecated it), a rate a schedule would
make negative or non-finite is an error, and ``state_dict()`` is a flat dict of numpy arrays
(like the optimizers'), so ``tinygrad_rnn.save`` can store it next to the model: ``last_epoch``,
``step_count``, ``base_lrs``, ``last_lr`` (one entry per group) and the scheduler's own
arguments (strings such as ``mode`` as UTF-8 bytes). LambdaLR's functions are not stored:
the scheduler you load into is made with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from tinygrad_rnn.optim._validation import _int_at_least, _non_negative, _real
from tinygrad_rnn.optim.optimizers import Optimizer
from tinygrad_rnn.tensor import Tensor

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "ReduceLROnPlateau",
    "StepLR",
]

_Check = Callable[[str, str, Any], Any]


# ------------------------------------------------------------------------------ helpers
def _check_optimizer(where: str, optimizer: Any) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"{where}: optimizer must be a tinygrad_rnn.optim.Optimizer (such as optim.SGD), "
            f"got {type(optimizer).__module__}.{type(optimizer).__qualname__}"
        )
    return optimizer


def _lr_list(where: str, name: str, values: Any) -> list[float]:
    """A list of learning rates (finite, >= 0)."""
    return [_non_negative(where, f"{name}[{i}]", v) for i, v in enumerate(values)]


def _last_epoch_check(where: str, name: str, value: Any) -> int:
    return _int_at_least(where, name, value, -1)


def _count_check(where: str, name: str, value: Any) -> int:
    return _int_at_least(where, name, value, 0)


def _positive_int_check(where: str, name: str, value: Any) -> int:
    return _int_at_least(where, name, value, 1)


def _one_of(*choices: str) -> _Check:
    def check(where: str, name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            listed = " or ".join(repr(c) for c in choices)
            raise ValueError(f"{where}: {name} must be {listed}, got {value!r:.60}")
        return value

    return check


def _factor_check(where: str, name: str, value: Any) -> float:
    x = _real(where, name, value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1) (new lr = lr * {name}), got {value!r}")
    return x


def _real_check(where: str, name: str, value: Any) -> float:
    return _real(where, name, value)


def _to_array(value: Any) -> np.ndarray:
    """A state value as an array that ``tinygrad_rnn.save`` stores (strings as UTF-8 bytes)."""
    if isinstance(value, str):
        return np.frombuffer(value.encode("utf-8"), dtype=np.uint8).copy()
    if isinstance(value, list):
        return np.asarray(value, dtype=np.float64)
    if isinstance(value, bool):
        return np.asarray(value, dtype=np.bool_)
    if isinstance(value, int):
        return np.asarray(value, dtype=np.int64)
    return np.asarray(value, dtype=np.float64)


def _from_array(where: str, key: str, current: Any, given: Any) -> Any:
    """A loaded array back in the Python type of the current value (after shape/dtype checks)."""
    try:
        arr = np.asarray(given)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {key!r} is not an array: {exc}") from None
    expected = _to_array(current)
    if isinstance(current, str):
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise ValueError(
                f"{where}: {key!r} must be a 1-d array of UTF-8 bytes, got shape {arr.shape} "
                f"and dtype {arr.dtype}"
            )
        try:
            return bytes(arr.astype(np.uint8)).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{where}: {key!r} is not UTF-8 text") from None
    if arr.shape != expected.shape:
        raise ValueError(
            f"{where}: {key!r} has shape {arr.shape} but this scheduler expects shape "
            f"{expected.shape}"
        )
    if arr.dtype.kind not in "biuf" or not np.can_cast(
        arr.dtype, expected.dtype, casting="same_kind"
    ):
        raise ValueError(
            f"{where}: {key!r} has dtype {arr.dtype}, which cannot be cast to this scheduler's "
            f"{expected.dtype}"
        )
    if isinstance(current, list):
        return [float(v) for v in arr]
    if isinstance(current, bool):
        return bool(arr)
    if isinstance(current, int):
        return int(arr)
    return float(arr)


# ---------------------------------------------------------------------------- schedulers
class LRScheduler:
    """Base class of the epoch-driven schedulers (PyTorch's ``LRScheduler``).

    A subclass gives ``get_lr()``: the learning rate of every param group for epoch
    ``self.last_epoch`` (already advanced when ``step()`` calls it); it may read the
    groups' current ``"lr"`` (a chainable form) or ``self.base_lrs``.

    Args:
        optimizer: the [`Optimizer`][tinygrad_rnn.optim.Optimizer] whose groups' ``"lr"``
            this scheduler sets.
        last_epoch: the index of the last epoch: -1 (the default) starts the schedule;
            ``k >= 0`` resumes one, which needs ``"initial_lr"`` in every group.

    Attributes:
        optimizer: the wrapped optimizer.
        base_lrs: the learning rate of each group at the start of the schedule
            (``group["initial_lr"]``).
        last_epoch: how many times ``step()`` has been called since epoch 0.

    Raises:
        TypeError: ``optimizer`` is not an Optimizer, ``last_epoch`` is not an int.
        ValueError: ``last_epoch < -1``, or ``>= 0`` with a group without ``initial_lr``.
    """

    # The subclass's own arguments, stored in the state dict with these checks.
    _arguments: ClassVar[dict[str, _Check]] = {}
    # State names whose attribute is private (PyTorch's ``_step_count``, ``_last_lr``).
    _ATTRIBUTES: ClassVar[dict[str, str]] = {"step_count": "_step_count", "last_lr": "_last_lr"}

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        where = type(self).__name__
        self.optimizer = _check_optimizer(where, optimizer)
        self.last_epoch: int = _last_epoch_check(where, "last_epoch", last_epoch)
        last_epoch = self.last_epoch
        groups = optimizer.param_groups
        added = []
        if last_epoch == -1:
            added = [group for group in groups if "initial_lr" not in group]
        else:
            for g, group in enumerate(groups):
                if "initial_lr" not in group:
                    raise ValueError(
                        f"{where}: last_epoch={last_epoch} resumes a schedule, but "
                        f"param_groups[{g}] has no 'initial_lr'; load the optimizer's state "
                        "dict (saved with a scheduler attached) first, or pass last_epoch=-1"
                    )
        for group in added:
            group["initial_lr"] = group["lr"]
        self.base_lrs: list[float] = [float(group["initial_lr"]) for group in groups]
        self._step_count = 0
        self._last_lr: list[float] = [float(group["lr"]) for group in groups]
        # The first step (to epoch last_epoch + 1) sets epoch 0's rates. ``_is_initial`` tells
        # the chainable forms that it is not a decay step (PyTorch's ``_initial_mode``).
        self._is_initial = True
        try:
            self.step()
        except BaseException:
            for group in added:  # a failed construction leaves the optimizer as it was
                del group["initial_lr"]
            raise
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rate of every group for epoch ``last_epoch``; called by ``step()``.

        To read the current rates use ``get_last_lr()``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def get_last_lr(self) -> list[float]:
        """The learning rate of every param group set by the last ``step()`` (a new list)."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch: ``last_epoch += 1`` and set every group's ``"lr"``.

        Call it after ``optimizer.step()``. Every new rate is checked before any is set.

        Raises:
            ValueError: the optimizer has more or fewer groups than when the scheduler was
                made, or a rate would be negative or not finite.
            TypeError: a rate is not a real number (e.g. what an ``lr_lambda`` returned).
        """
        where = f"{type(self).__name__}.step"
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise ValueError(
                f"{where}: the optimizer has {len(groups)} param groups but this scheduler "
                f"was made for {len(self.base_lrs)}; make a new scheduler after "
                "add_param_group"
            )
        self.last_epoch += 1
        try:
            values = list(self.get_lr())
            if len(values) != len(groups):
                raise ValueError(
                    f"{where}: get_lr returned {len(values)} learning rates for "
                    f"{len(groups)} param groups"
                )
            lrs = [
                _non_negative(where, f"the new learning rate of param_groups[{g}]", value)
                for g, value in enumerate(values)
            ]
        except BaseException:
            self.last_epoch -= 1
            raise
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self._step_count += 1
        self._last_lr = lrs

    def state_dict(self) -> dict[str, np.ndarray]:
        """The scheduler's state: a flat dict of numpy arrays (``tinygrad_rnn.save`` stores it).

        The optimizer is not part of it; save the optimizer's own state dict beside it.
        """
        return {name: _to_array(value) for name, value in self._state_items().items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what [`state_dict`][tinygrad_rnn.optim.lr_scheduler.LRScheduler.state_dict]
        returned (checked entry by entry; nothing changes unless all pass).

        As in PyTorch the optimizer's learning rates are not touched: load the optimizer's
        state dict too.

        Raises:
            TypeError: ``state_dict`` is not a mapping.
            ValueError: a key is missing or unexpected, an entry has the wrong shape or
                dtype, or a value is out of range.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{where}: expected a mapping of names to arrays (a dict), "
                f"got {type(state_dict).__name__}"
            )
        current = self._state_items()
        missing = [name for name in current if name not in state_dict]
        if missing:
            raise ValueError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
        unexpected = [key for key in state_dict if key not in current]
        if unexpected:
            raise ValueError(f"{where}: unexpected key(s) {', '.join(map(repr, unexpected))}")
        checks = self._state_checks()
        values = {
            name: checks[name](where, name, _from_array(where, name, cur, state_dict[name]))
            for name, cur in current.items()
        }
        for name, value in values.items():
            setattr(self, self._ATTRIBUTES.get(name, name), value)

    def _group_lrs(self) -> list[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def _state_items(self) -> dict[str, Any]:
        return {
            "last_epoch": self.last_epoch,
            "step_count": self._step_count,
            "base_lrs": list(self.base_lrs),
            "last_lr": list(self._last_lr),
            **{name: getattr(self, name) for name in self._arguments},
        }

    def _state_checks(self) -> dict[str, _Check]:
        return {
            "last_epoch": _last_epoch_check,
            "step_count": _count_check,
            "base_lrs": _lr_list,
            "last_lr": _lr_list,
            **self._arguments,
        }


class StepLR(LRScheduler):
    """Multiply each group's learning rate by ``gamma`` every ``step_size`` epochs.

    With ``base_lr`` the rate at the start: ``lr = base_lr * gamma ** (epoch // step_size)``
    (computed step by step from the group's current rate: at each epoch that is a multiple of
    ``step_size``, ``lr = lr * gamma``).

    Args:
        optimizer: the optimizer.
        step_size: the period of the decay, in epochs (``step()`` calls), an int >= 1.
        gamma: the factor, >= 0.
        last_epoch: -1 to start, or the epoch to resume from (see
            [`LRScheduler`][tinygrad_rnn.optim.lr_scheduler.LRScheduler]).

    Raises:
        TypeError, ValueError: a bad optimizer or argument (named in the message).
    """

    _arguments: ClassVar[dict[str, _Check]] = {
        "step_size": _positive_int_check,
        "gamma": _non_negative,
    }

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size: int = _positive_int_check("StepLR", "step_size", step_size)
        self.gamma: float = _non_negative("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch``: the current ones, times ``gamma`` at a multiple of
        ``step_size``."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]


class ExponentialLR(LRScheduler):
    """Multiply each group's learning rate by ``gamma`` every epoch: ``base_lr * gamma**epoch``.

    Args:
        optimizer: the optimizer.
        gamma: the factor per epoch, >= 0.
        last_epoch: -1 to start, or the epoch to resume from.

    Raises:
        TypeError, ValueError: a bad optimizer or argument (named in the message).
    """

    _arguments: ClassVar[dict[str, _Check]] = {"gamma": _non_negative}

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma: float = _non_negative("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The current rates times ``gamma`` (unchanged on the constructor's first step)."""
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal each group's learning rate along a cosine from ``base_lr`` to ``eta_min``.

    The rate follows (SGDR without restarts; it rises again after ``T_max``, with period
    ``2 * T_max``, as in PyTorch)

    $$\eta_t = \eta_{\min} + \tfrac12(\eta_{\text{base}} - \eta_{\min})
    \left(1 + \cos\frac{\pi t}{T_{\max}}\right),$$

    computed as PyTorch does, recursively from the group's current rate
    ($\eta_{t} = \eta_{\min} + (\eta_{t-1} - \eta_{\min})
    \frac{1 + \cos(\pi t / T_{\max})}{1 + \cos(\pi (t - 1) / T_{\max})}$, and at
    $t - 1 - T_{\max}$ a multiple of $2 T_{\max}$, where that ratio would divide by zero,
    $\eta_t = \eta_{t-1} + \tfrac12(\eta_{\text{base}} - \eta_{\min})(1 - \cos(\pi / T_{\max}))$).

    Args:
        optimizer: the optimizer.
        T_max: the number of epochs from ``base_lr`` down to ``eta_min``, an int >= 1.
        eta_min: the lowest rate, >= 0.
        last_epoch: -1 to start, or the epoch to resume from.

    Raises:
        TypeError, ValueError: a bad optimizer or argument (named in the message).
    """

    _arguments: ClassVar[dict[str, _Check]] = {
        "T_max": _positive_int_check,
        "eta_min": _non_negative,
    }

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max: int = _positive_int_check("CosineAnnealingLR", "T_max", T_max)
        self.eta_min: float = _non_negative("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch`` by the recursive form above."""
        current = self._group_lrs()
        if self._is_initial:
            return current
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if (t - 1 - T) % (2 * T) == 0:
            # The step after a minimum: cos(pi (t - 1) / T) = -1.
            rise = (1.0 - math.cos(math.pi / T)) / 2
            return [lr + (base - eta_min) * rise for lr, base in zip(current, self.base_lrs)]
        ratio = (1.0 + math.cos(math.pi * t / T)) / (1.0 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in current]


class LambdaLR(LRScheduler):
    """Set each group's learning rate to ``base_lr * lr_lambda(epoch)``.

    Args:
        optimizer: the optimizer.
        lr_lambda: a function of the epoch (an int) returning the factor, or a list of
            such functions, one per param group.
        last_epoch: -1 to start, or the epoch to resume from.

    The functions are not part of ``state_dict()``.

    Raises:
        TypeError: ``lr_lambda`` is not callable (or not a list of callables); a function
            returned something that is not a real number.
        ValueError: a list of the wrong length; a rate that would be negative or not finite.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        where = "LambdaLR"
        n_groups = len(_check_optimizer(where, optimizer).param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n_groups:
                raise ValueError(
                    f"{where}: lr_lambda has {len(lr_lambda)} functions but the optimizer has "
                    f"{n_groups} param groups"
                )
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * n_groups
        for g, fn in enumerate(lambdas):
            if not callable(fn):
                raise TypeError(
                    f"{where}: lr_lambda must be a function of the epoch or a list of them, "
                    f"got {type(fn).__name__}" + (f" for group {g}" if n_groups > 1 else "")
                )
        self.lr_lambdas: list[Callable[[int], float]] = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """``base_lr * lr_lambda(last_epoch)`` for every group."""
        out = []
        for g, (fn, base) in enumerate(zip(self.lr_lambdas, self.base_lrs)):
            factor = _real(
                f"{type(self).__name__}.step",
                f"lr_lambda[{g}]({self.last_epoch})",
                fn(self.last_epoch),
            )
            out.append(base * factor)
        return out


class ReduceLROnPlateau(LRScheduler):
    """Reduce the learning rates when a metric has stopped improving (PyTorch's semantics).

    ``step(metrics)`` once per evaluation. The metric improves when it beats ``best`` by
    the threshold (mode ``"min"``: below ``best * (1 - threshold)`` with
    ``threshold_mode="rel"``, below ``best - threshold`` with ``"abs"``; mode ``"max"``:
    above ``best * (1 + threshold)`` or ``best + threshold``); otherwise it is a bad epoch.
    After more than ``patience`` bad epochs in a row every group's rate becomes
    ``max(lr * factor, min_lr)`` (unless that changes it by ``eps`` or less), and the next
    ``cooldown`` epochs count no bad epochs. A NaN metric never improves.

    Args:
        optimizer: the optimizer.
        mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
        factor: the factor of a reduction, in [0, 1).
        patience: bad epochs tolerated before a reduction, an int >= 0.
        threshold: the least improvement that counts, >= 0.
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: epochs after a reduction in which bad epochs are not counted, an int >= 0.
        min_lr: the lowest rate, >= 0, or a list of them, one per group.
        eps: the smallest change of a rate that is applied, >= 0.

    Attributes:
        best: the best metric so far (``inf`` for ``"min"``, ``-inf`` for ``"max"`` at first).
        num_bad_epochs: bad epochs since the last improvement or reduction.
        cooldown_counter: cooldown epochs left.
        min_lrs: the lowest rate of each group.
        last_epoch: how many times ``step()`` has been called.

    Raises:
        TypeError, ValueError: a bad optimizer or argument (named in the message), a
            ``min_lr`` list of the wrong length.
    """

    _arguments: ClassVar[dict[str, _Check]] = {
        "mode": _one_of("min", "max"),
        "factor": _factor_check,
        "patience": _count_check,
        "threshold": _non_negative,
        "threshold_mode": _one_of("rel", "abs"),
        "cooldown": _count_check,
        "min_lrs": _lr_list,
        "eps": _non_negative,
    }

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        where = "ReduceLROnPlateau"
        self.optimizer = _check_optimizer(where, optimizer)
        n_groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n_groups:
                raise ValueError(
                    f"{where}: min_lr has {len(min_lr)} values but the optimizer has "
                    f"{n_groups} param groups"
                )
            min_lrs = _lr_list(where, "min_lr", min_lr)
        else:
            min_lrs = [_non_negative(where, "min_lr", min_lr)] * n_groups
        checks = self._arguments
        self.mode: str = checks["mode"](where, "mode", mode)
        self.factor: float = checks["factor"](where, "factor", factor)
        self.patience: int = checks["patience"](where, "patience", patience)
        self.threshold: float = checks["threshold"](where, "threshold", threshold)
        self.threshold_mode: str = checks["threshold_mode"](where, "threshold_mode", threshold_mode)
        self.cooldown: int = checks["cooldown"](where, "cooldown", cooldown)
        self.eps: float = checks["eps"](where, "eps", eps)
        self.min_lrs: list[float] = min_lrs
        self.last_epoch = 0
        self._step_count = 0
        self._last_lr = self._group_lrs()
        self.best: float = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def mode_worse(self) -> float:
        """The worst possible metric: ``inf`` for mode ``"min"``, ``-inf`` for ``"max"``."""
        return math.inf if self.mode == "min" else -math.inf

    @property
    def in_cooldown(self) -> bool:
        """True while bad epochs are not counted, after a reduction."""
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric ``a`` improves on ``best`` by the threshold."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def get_lr(self) -> list[float]:
        """The groups' current rates (this scheduler changes them in ``step(metrics)``)."""
        return self._group_lrs()

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Count one epoch with metric ``metrics``; reduce the rates after a plateau.

        Args:
            metrics: the monitored value: a real number, or a Tensor or array of one element.

        Raises:
            TypeError: ``metrics`` is not a real number (or one-element Tensor/array).
            ValueError: ``metrics`` has more than one element; the optimizer has another
                number of groups than ``min_lrs``.
        """
        where = f"{type(self).__name__}.step"
        if isinstance(metrics, (Tensor, np.ndarray)):
            if metrics.size != 1:
                raise ValueError(
                    f"{where}: metrics must be a number or have one element, got shape "
                    f"{metrics.shape}"
                )
            metrics = metrics.item()
        current = _real(where, "metrics", metrics)
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            raise ValueError(
                f"{where}: the optimizer has {len(groups)} param groups but min_lrs has "
                f"{len(self.min_lrs)} values (a group was added?); set scheduler.min_lrs"
            )
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(groups, self.min_lrs):
                old = float(group["lr"])
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._group_lrs()

    def _state_items(self) -> dict[str, Any]:
        return {
            "last_epoch": self.last_epoch,
            "last_lr": list(self._last_lr),
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            **{name: getattr(self, name) for name in self._arguments},
        }

    def _state_checks(self) -> dict[str, _Check]:
        return {
            "last_epoch": _count_check,
            "last_lr": _lr_list,
            "best": _real_check,
            "num_bad_epochs": _count_check,
            "cooldown_counter": _count_check,
            **self._arguments,
        }
