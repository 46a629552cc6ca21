"""The optimizers: [`Optimizer`][tinygrad_rnn.optim.Optimizer] (the base class, with PyTorch's
parameter groups) and [`SGD`][tinygrad_rnn.optim.SGD], [`Adagrad`][tinygrad_rnn.optim.Adagrad],
[`RMSProp`][tinygrad_rnn.optim.RMSProp], [`Adam`][tinygrad_rnn.optim.Adam],
[`AdamW`][tinygrad_rnn.optim.AdamW]. The package page, [`tinygrad_rnn.optim`][tinygrad_rnn.optim],
describes what they share (safety, dtypes, groups, the state-dict format).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from tinygrad_rnn.optim._validation import _betas, _flag, _non_negative, _unit_interval
from tinygrad_rnn.tensor import Tensor

State = dict[str, np.ndarray]
ParamGroup = dict[str, Any]

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSProp"]


# How each known hyperparameter is checked and normalised. Names not listed here
# (hyperparameters of a user's own subclass) are stored as given. ``initial_lr`` is the
# entry a learning-rate scheduler adds to every group (PyTorch's name).
_HPARAM_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    "lr": _non_negative,
    "initial_lr": _non_negative,
    "momentum": _non_negative,
    "weight_decay": _non_negative,
    "eps": _non_negative,
    "alpha": _unit_interval,
    "betas": _betas,
    "nesterov": _flag,
}
# Group entries that are not hyperparameters of the optimizer but may be in any group.
_EXTRA_GROUP_KEYS = ("initial_lr",)
_GROUP_PARAMS_KEY = re.compile(r"param_groups\.(\d+)\.params")


def _check_hparams(where: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise every hyperparameter (Python floats, tuples, bools)."""
    out: dict[str, Any] = {}
    for name, value in hparams.items():
        check = _HPARAM_CHECKS.get(name)
        out[name] = value if check is None else check(where, name, value)
    return out


def _hparams_of(group: Mapping[str, Any]) -> dict[str, Any]:
    """A group's entries without its ``"params"``."""
    return {name: value for name, value in group.items() if name != "params"}


def _collect_params(params: Any, where: str, label: str) -> list[Tensor]:
    """The parameters as a list, each a distinct leaf Tensor that requires grad.

    ``label`` names the collection in messages: ``"params"`` or
    ``"param_groups[1]['params']"``.
    """
    if isinstance(params, Tensor):
        raise TypeError(
            f"{where}: {label} must be an iterable of Tensors, got a single Tensor; "
            "pass [tensor] instead"
        )
    if isinstance(params, Mapping):
        raise TypeError(
            f"{where}: {label} must be an iterable of Tensors, got a {type(params).__name__}; "
            "pass its .values() (or a list of param group dicts {'params': ..., 'lr': ...})"
        )
    if isinstance(params, (set, frozenset)):
        raise TypeError(
            f"{where}: {label} must be an ordered collection such as a list, got a "
            f"{type(params).__name__}: its order changes from run to run, and a state dict "
            "refers to parameters by position"
        )
    if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(
            f"{where}: {label} must be an iterable of Tensors, got {type(params).__name__}"
        )
    out: list[Tensor] = []
    seen: dict[int, int] = {}
    for k, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: {label}[{k}] is a {type(p).__name__}, expected a Tensor")
        if not p.requires_grad:
            raise ValueError(
                f"{where}: {label}[{k}] (shape {p.shape}) does not require grad; "
                "create it with requires_grad=True"
            )
        if not p.is_leaf:
            raise ValueError(
                f"{where}: {label}[{k}] (shape {p.shape}) was made by op '{p.op}', not a leaf; "
                "backward only fills .grad of leaves"
            )
        first = seen.get(id(p))
        if first is not None:
            raise ValueError(
                f"{where}: {label}[{k}] is the same tensor as {label}[{first}]; "
                "each parameter may appear only once"
            )
        seen[id(p)] = k
        out.append(p)
    return out


def _split_groups(params: Any, where: str) -> tuple[list[Mapping[str, Any]], bool]:
    """``params`` as raw group mappings, and whether it was a plain iterable of Tensors.

    A plain iterable becomes one group ``{"params": [...]}``; an iterable of dicts is
    taken as PyTorch's list of param groups. Nothing the caller passed is modified.
    """
    if isinstance(params, (Tensor, Mapping, set, frozenset, str, bytes)) or not isinstance(
        params, Iterable
    ):
        _collect_params(params, where, "params")  # raises the message for that kind
    items = list(params)
    if not items:
        raise ValueError(f"{where}: params is empty; pass at least one Tensor")
    dicts = [k for k, item in enumerate(items) if isinstance(item, Mapping)]
    if not dicts:
        return [{"params": items}], True
    for k, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise TypeError(
                f"{where}: params[{k}] is a {type(item).__name__} but params[{dicts[0]}] is a "
                "param group dict; pass either Tensors or param group dicts, not both"
            )
    return items, False


def _grad_array(p: Tensor, k: int, where: str) -> np.ndarray:
    """``p.grad``'s array, checked against ``p`` and cast to ``p``'s dtype (never in place)."""
    grad = p.grad
    if not isinstance(grad, Tensor):
        raise TypeError(
            f"{where}: params[{k}].grad is a {type(grad).__name__}, expected a Tensor or None"
        )
    g = grad.data
    if g.shape != p.data.shape:
        raise ValueError(
            f"{where}: params[{k}].grad has shape {g.shape} but the parameter has shape "
            f"{p.data.shape}"
        )
    if g.dtype != p.data.dtype:
        g = g.astype(p.data.dtype)
    return g


def _from_array(current: Any, value: np.ndarray) -> Any:
    """A loaded hyperparameter back in the Python type of the current one."""
    if isinstance(current, (bool, np.bool_)):
        return bool(value)
    if isinstance(current, tuple):
        return tuple(v.item() for v in value)
    if isinstance(current, numbers.Integral):
        return int(value)
    if isinstance(current, numbers.Real):
        return float(value)
    return value.item() if value.ndim == 0 else value.tolist()


def _list_keys(keys: list[str], shapes: Mapping[str, np.ndarray] | None = None) -> str:
    """At most five keys for a message (with their shapes when known), then a count."""
    shown = ", ".join(
        f"{key!r} (shape {shapes[key].shape})" if shapes is not None else repr(key)
        for key in keys[:5]
    )
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


# ------------------------------------------------------------ optimizers
class Optimizer:
    """Base class: holds the parameter groups, the hyperparameters and per-parameter state.

    ``params`` is either an iterable of Tensors (one group, with the constructor's
    hyperparameters) or, as in PyTorch, an iterable of dicts, each with a ``"params"``
    entry and any hyperparameters of its own; the constructor's keyword arguments are
    the defaults for what a group leaves out::

        opt = SGD([{"params": encoder.parameters(), "lr": 0.1},
                   {"params": head.parameters()}], lr=0.01, momentum=0.9)
        opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]   # 0.1, 0.01

    Subclasses give ``_init_state(p, group)`` (the state of one parameter, arrays of its
    shape and dtype) and ``_update(p, g, state, hparams)`` (the new parameter array).
    ``step()`` calls ``_update`` for every parameter with a gradient, with its group's
    hyperparameters, and assigns the result to ``p.data``: parameters are replaced, never
    written into.

    Args:
        params: an iterable of distinct leaf Tensors that require grad, or an iterable of
            param group dicts ``{"params": tensors, "lr": ..., ...}``.
        **defaults: the hyperparameters, validated by name (``lr``, ``eps``, ...
            must be finite and >= 0; ``alpha`` and each of ``betas`` in [0, 1)).

    Attributes:
        param_groups: one dict per group, as in PyTorch: ``"params"`` (the list of its
            Tensors) and every hyperparameter. Changing ``param_groups[i]["lr"]`` between
            steps changes that group's learning rate (this is what the schedulers of
            [`lr_scheduler`][tinygrad_rnn.optim.lr_scheduler] do); values are checked at
            every step.
        defaults: the constructor's hyperparameters; they fill in what a group added
            later by [`add_param_group`][tinygrad_rnn.optim.Optimizer.add_param_group]
            leaves out (changing them does not change existing groups).
        state: one dict of numpy arrays per parameter, in the order of
            [`params`][tinygrad_rnn.optim.Optimizer.params].
        step_count: how many times ``step()`` has been called.

    Raises:
        TypeError: ``params`` is a single Tensor, a dict or a set, holds something that is
            not a Tensor, or mixes Tensors and group dicts; a hyperparameter has the
            wrong type.
        ValueError: ``params`` is empty, holds a tensor twice (also across groups), a
            tensor that does not require grad or is not a leaf; a group has no
            ``"params"``, no parameters or a key that is not a hyperparameter of this
            optimizer; a hyperparameter is out of range.
    """

    def __init__(self, params: Iterable[Any], **defaults: Any) -> None:
        where = type(self).__name__
        self.defaults: dict[str, Any] = _check_hparams(where, defaults)
        self._check_combination(where, self.defaults)
        raw_groups, plain = _split_groups(params, where)
        groups: list[ParamGroup] = []
        owner: dict[int, str] = {}
        for g, raw in enumerate(raw_groups):
            group = self._make_group(raw, g, where, owner, plain)
            owner.update((id(p), f"param_groups[{g}]['params']") for p in group["params"])
            groups.append(group)
        self.param_groups: list[ParamGroup] = []
        self.state: list[State] = []
        self.step_count: int = 0
        for group in groups:
            self._append_group(group)

    # ----------------------------------------------------------- hooks
    def _check_combination(self, where: str, hparams: dict[str, Any]) -> None:
        """Checks that involve several hyperparameters of one group (raise ValueError)."""

    def _init_state(self, p: Tensor, group: ParamGroup) -> State:
        """The optimizer state of parameter ``p`` of ``group`` (no state by default)."""
        return {}

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: State, hparams: dict[str, Any]
    ) -> np.ndarray:
        """The new value of a parameter ``p`` with gradient ``g`` (a new array)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    # ----------------------------------------------------------- groups
    def _make_group(
        self, raw: Any, g: int, where: str, owner: Mapping[int, str], plain: bool
    ) -> ParamGroup:
        """A checked group dict: its own Tensors list, then every hyperparameter."""
        if not isinstance(raw, Mapping):
            raise TypeError(
                f"{where}: a param group must be a dict with a 'params' entry, "
                f"got {type(raw).__name__}"
            )
        if "params" not in raw:
            keys = ", ".join(repr(k) for k in raw) or "none"
            raise ValueError(
                f"{where}: param_groups[{g}] has no 'params' entry (its keys: {keys}); "
                "a group is a dict {'params': tensors, 'lr': ..., ...}"
            )
        label = "params" if plain else f"param_groups[{g}]['params']"
        value = raw["params"]
        # A group may name a single Tensor, as in PyTorch.
        params = _collect_params([value] if isinstance(value, Tensor) else value, where, label)
        if not params:
            raise ValueError(f"{where}: {label} is empty; a group needs at least one Tensor")
        for k, p in enumerate(params):
            if id(p) in owner:
                raise ValueError(
                    f"{where}: {label}[{k}] is already in {owner[id(p)]}; "
                    "a parameter may be in only one group"
                )
        own = _hparams_of(raw)
        unknown = [k for k in own if k not in self.defaults and k not in _EXTRA_GROUP_KEYS]
        if unknown:
            raise ValueError(
                f"{where}: param_groups[{g}] has key(s) {', '.join(repr(k) for k in unknown)} "
                f"that are not hyperparameters of {type(self).__name__}; its hyperparameters "
                f"are {', '.join(self.defaults)}"
            )
        group_where = where if plain else f"{where}: param_groups[{g}]"
        hparams = _check_hparams(group_where, {**self.defaults, **own})
        self._check_combination(group_where, hparams)
        return {"params": params, **hparams}

    def _append_group(self, group: ParamGroup) -> None:
        self.param_groups.append(group)
        self.state.extend(self._init_state(p, group) for p in group["params"])

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group of parameters (PyTorch's method), e.g. layers unfrozen later.

        What ``param_group`` leaves out is taken from
        [`defaults`][tinygrad_rnn.optim.Optimizer]. The new parameters get fresh state.

        Args:
            param_group: a dict ``{"params": tensors, "lr": ..., ...}``; it is not modified.

        Raises:
            TypeError: ``param_group`` is not a dict, or its ``"params"`` are not Tensors.
            ValueError: no ``"params"``, no parameters, a parameter already in a group,
                a key that is not a hyperparameter, a hyperparameter out of range.
        """
        where = f"{type(self).__name__}.add_param_group"
        owner = {
            id(p): f"param_groups[{g}]['params']"
            for g, group in enumerate(self.param_groups)
            for p in group["params"]
        }
        group = self._make_group(param_group, len(self.param_groups), where, owner, False)
        self._append_group(group)

    # ---------------------------------------------------------- public
    @property
    def params(self) -> list[Tensor]:
        """All parameters, group after group (a new list; the state is in this order)."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self) -> float:
        """The learning rate, when every group has the same one.

        Assigning sets the learning rate of every group and of
        [`defaults`][tinygrad_rnn.optim.Optimizer] (validated first).

        Raises:
            ValueError: reading it while the groups have different learning rates
                (read ``param_groups[i]["lr"]`` instead).
        """
        lrs = [group["lr"] for group in self.param_groups]
        if any(lr != lrs[0] for lr in lrs):
            raise ValueError(
                f"{type(self).__name__}.lr: the param groups have different learning rates "
                f"{lrs}; read param_groups[i]['lr'] instead"
            )
        return float(lrs[0])

    @lr.setter
    def lr(self, value: float) -> None:
        lr = _non_negative(type(self).__name__, "lr", value)
        self.defaults["lr"] = lr
        for group in self.param_groups:
            group["lr"] = lr

    def zero_grad(self) -> None:
        """Set ``p.grad = None`` for every parameter (the next backward starts afresh)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient: ``p.data = _update(p.data, g)``.

        Each parameter is updated with its group's hyperparameters as they are now.
        Parameters with ``grad is None`` are skipped. All gradients and all groups'
        hyperparameters are checked (gradient shapes equal to the parameters') before
        any parameter changes, so a failing step leaves everything as it was.
        """
        where = f"{type(self).__name__}.step"
        pending: list[tuple[int, Tensor, np.ndarray, dict[str, Any]]] = []
        k = 0
        for g, group in enumerate(self.param_groups):
            # Checked (and made Python floats) every step: a user or a scheduler may have
            # changed the group; a numpy float64 lr would upcast a float32 parameter.
            group_where = f"{where}: param_groups[{g}]"
            hparams = _check_hparams(group_where, _hparams_of(group))
            self._check_combination(group_where, hparams)
            for p in group["params"]:
                if p.grad is not None:
                    pending.append((k, p, _grad_array(p, k, where), hparams))
                k += 1
        for k, p, grad, hparams in pending:
            p.data = self._update(p.data, grad, self.state[k], hparams)
        self.step_count += 1

    def _flat(self) -> dict[str, np.ndarray]:
        """The state dict without copies of the state arrays."""
        out: dict[str, np.ndarray] = {"step": np.asarray(self.step_count, dtype=np.int64)}
        first = 0
        for g, group in enumerate(self.param_groups):
            n = len(group["params"])
            out[f"param_groups.{g}.params"] = np.arange(first, first + n, dtype=np.int64)
            first += n
            for name, value in _hparams_of(group).items():
                arr = np.asarray(value)
                if arr.dtype == object:
                    raise TypeError(
                        f"{type(self).__name__}.state_dict: hyperparameter {name!r} = "
                        f"{value!r} of param_groups[{g}] cannot be stored as a numpy array"
                    )
                out[f"param_groups.{g}.{name}"] = arr
        for k, st in enumerate(self.state):
            for name, arr in st.items():
                out[f"state.{k}.{name}"] = arr
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: a flat dict of numpy arrays (copies).

        Keys: ``"step"``; for each group ``g``, ``"param_groups.<g>.params"`` (the
        positions of its parameters in [`params`][tinygrad_rnn.optim.Optimizer.params],
        an int64 array) and ``"param_groups.<g>.<name>"`` for each hyperparameter (0-d
        arrays; ``betas`` has shape (2,)); ``"state.<i>.<name>"`` for ``params[i]``.
        ``np.savez(path, **opt.state_dict())`` stores it without pickle.
        """
        return {key: np.array(arr, copy=True) for key, arr in self._flat().items()}

    def _upgrade(self, state_dict: Mapping[Any, Any], where: str) -> Mapping[Any, Any]:
        """The earlier flat format (hyperparameters at the top level, one group) in today's."""
        if any(isinstance(key, str) and key.startswith("param_groups.") for key in state_dict):
            return state_dict
        if len(self.param_groups) != 1:
            raise ValueError(
                f"{where}: the state dict has no 'param_groups.*' entries (the format of "
                "earlier versions, with one group), but this optimizer has "
                f"{len(self.param_groups)} param groups"
            )
        names = _hparams_of(self.param_groups[0])
        out: dict[Any, Any] = {
            (f"param_groups.0.{key}" if key in names else key): value
            for key, value in state_dict.items()
        }
        out["param_groups.0.params"] = np.arange(len(self.param_groups[0]["params"]))
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore step count, every group's hyperparameters and the state from
        [`state_dict`][tinygrad_rnn.optim.Optimizer.state_dict]'s output.

        Accepts any mapping of the same keys to arrays (e.g. the ``NpzFile``
        from ``np.load``), and the flat format of earlier versions (hyperparameters
        as top-level keys) for an optimizer with one group. The groups must hold as
        many parameters as the saved ones, in the same order (as in PyTorch). Arrays are
        copied (and cast to this optimizer's dtypes); the groups' hyperparameters are
        replaced, ``initial_lr`` (a scheduler's entry) included when saved. Nothing
        changes unless every check passes.

        Raises:
            TypeError: ``state_dict`` is not a mapping.
            ValueError: a key is missing or unexpected, the number or sizes of the
                groups differ, an array has the wrong shape or a dtype of another kind,
                or a hyperparameter is invalid.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{where}: expected a mapping of names to arrays (a dict), "
                f"got {type(state_dict).__name__}"
            )
        given = self._upgrade(state_dict, where)
        saved_groups = sum(
            1 for key in given if isinstance(key, str) and _GROUP_PARAMS_KEY.fullmatch(key)
        )
        if saved_groups != len(self.param_groups):
            raise ValueError(
                f"{where}: the state dict has {saved_groups} param group(s) but this optimizer "
                f"has {len(self.param_groups)}"
            )
        current = self._flat()
        optional = {
            f"param_groups.{g}.{name}": np.asarray(0.0)
            for g in range(len(self.param_groups))
            for name in _EXTRA_GROUP_KEYS
            if f"param_groups.{g}.{name}" not in current
        }
        # ``initial_lr`` (a scheduler's entry) may be on either side only.
        missing = [
            key for key in current if key not in given and key.rpartition(".")[2] != "initial_lr"
        ]
        if missing:
            raise ValueError(f"{where}: missing key(s) {_list_keys(missing, current)}")
        unexpected = [key for key in given if key not in current and key not in optional]
        if unexpected:
            raise ValueError(
                f"{where}: unexpected key(s) {_list_keys(unexpected)} (this optimizer has "
                f"{len(self.params)} parameters in {len(self.param_groups)} group(s))"
            )
        loaded: dict[str, np.ndarray] = {}
        for key, cur in [*current.items(), *optional.items()]:
            if key not in given:
                continue
            arr = np.asarray(given[key])
            if arr.shape != cur.shape:
                raise ValueError(
                    f"{where}: {key!r} has shape {arr.shape} but this optimizer expects "
                    f"shape {cur.shape}"
                )
            if not np.can_cast(arr.dtype, cur.dtype, casting="same_kind"):
                raise ValueError(
                    f"{where}: {key!r} has dtype {arr.dtype}, which cannot be cast to "
                    f"this optimizer's {cur.dtype}"
                )
            loaded[key] = np.array(arr, dtype=cur.dtype, copy=True)
        for g in range(len(self.param_groups)):
            key = f"param_groups.{g}.params"
            if not np.array_equal(loaded[key], current[key]):
                raise ValueError(
                    f"{where}: {key!r} is {loaded[key].tolist()} but this optimizer's group {g} "
                    f"holds parameters {current[key].tolist()}"
                )
        step_count = int(loaded["step"])
        if step_count < 0:
            raise ValueError(f"{where}: 'step' must be >= 0, got {step_count}")
        new_hparams: list[dict[str, Any]] = []
        for g, group in enumerate(self.param_groups):
            prefix = f"param_groups.{g}."
            names = [key[len(prefix) :] for key in loaded if key.startswith(prefix)]
            values = {
                name: _from_array(group.get(name, 0.0), loaded[prefix + name])
                for name in names
                if name != "params"
            }
            group_where = f"{where}: param_groups[{g}]"
            hparams = _check_hparams(group_where, values)
            self._check_combination(group_where, hparams)
            new_hparams.append(hparams)
        # Every check passed: commit (the group dicts are updated, not replaced).
        self.step_count = step_count
        for group, hparams in zip(self.param_groups, new_hparams):
            group.update(hparams)
        for k, st in enumerate(self.state):
            for name in st:
                st[name] = loaded[f"state.{k}.{name}"]

    def __repr__(self) -> str:
        groups = self.param_groups
        if len(groups) == 1:
            hp = ", ".join(f"{name}={value!r}" for name, value in _hparams_of(groups[0]).items())
            return f"{type(self).__name__}({hp}; {len(groups[0]['params'])} params)"
        parts = "; ".join(
            f"group {g}: {len(group['params'])} params, lr={group['lr']!r}"
            for g, group in enumerate(groups)
        )
        return f"{type(self).__name__}({parts})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's convention).

    For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p              (if weight_decay > 0)
        v = momentum * v + g                  (if momentum > 0; v starts at 0)
        g = g + momentum * v  if nesterov  else  v
        p = p - lr * g

    With ``momentum=0`` this is exactly ``p = p - lr * g``.

    Args:
        params: the parameters to update, or param group dicts (see
            [`Optimizer`][tinygrad_rnn.optim.Optimizer]).
        lr: the learning rate, >= 0.
        momentum: the momentum factor μ, >= 0.
        weight_decay: L2 penalty added to the gradient, >= 0.
        nesterov: use Nesterov momentum (requires ``momentum > 0``).

    State per parameter: ``momentum_buffer`` (only when its group has ``momentum > 0``).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
        )

    def _check_combination(self, where: str, hparams: dict[str, Any]) -> None:
        if hparams["nesterov"] and hparams["momentum"] == 0.0:
            raise ValueError(
                f"{where}: nesterov=True requires momentum > 0, "
                f"got momentum={hparams['momentum']!r}"
            )

    def _init_state(self, p: Tensor, group: ParamGroup) -> State:
        if group["momentum"] > 0.0:
            return {"momentum_buffer": np.zeros(p.data.shape, dtype=p.data.dtype)}
        return {}

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: State, hparams: dict[str, Any]
    ) -> np.ndarray:
        lr, momentum, weight_decay = hparams["lr"], hparams["momentum"], hparams["weight_decay"]
        if weight_decay != 0.0:
            g = g + weight_decay * p
        if momentum != 0.0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.zeros(p.shape, dtype=p.dtype)
            buf *= momentum
            buf += g
            g = g + momentum * buf if hparams["nesterov"] else buf
        return p - lr * g


class Adagrad(Optimizer):
    """Adagrad exactly as in Karpathy's min-char-rnn.

    For each parameter ``p`` with gradient ``g``::

        mem = mem + g * g                     (mem starts at 0)
        p = p - lr * g / sqrt(mem + eps)

    Note ``eps`` is inside the square root (min-char-rnn's form); PyTorch's
    Adagrad uses ``sqrt(mem) + eps`` instead.

    Args:
        params: the parameters to update, or param group dicts (see
            [`Optimizer`][tinygrad_rnn.optim.Optimizer]).
        lr: the learning rate, >= 0.
        eps: added to the accumulator before the square root, >= 0.

    State per parameter: ``mem``, the running sum of squared gradients.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-1, eps: float = 1e-8) -> None:
        super().__init__(params, lr=lr, eps=eps)

    def _init_state(self, p: Tensor, group: ParamGroup) -> State:
        return {"mem": np.zeros(p.data.shape, dtype=p.data.dtype)}

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: State, hparams: dict[str, Any]
    ) -> np.ndarray:
        mem = state["mem"]
        mem += g * g
        return p - hparams["lr"] * g / np.sqrt(mem + hparams["eps"])


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton), in PyTorch's form.

    For each parameter ``p`` with gradient ``g``::

        v = alpha * v + (1 - alpha) * g * g   (v starts at 0)
        p = p - lr * g / (sqrt(v) + eps)

    Args:
        params: the parameters to update, or param group dicts (see
            [`Optimizer`][tinygrad_rnn.optim.Optimizer]).
        lr: the learning rate, >= 0.
        alpha: smoothing constant of the squared-gradient average, in [0, 1).
        eps: added to the root mean square, >= 0.

    State per parameter: ``square_avg`` (v).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps)

    def _init_state(self, p: Tensor, group: ParamGroup) -> State:
        return {"square_avg": np.zeros(p.data.shape, dtype=p.data.dtype)}

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: State, hparams: dict[str, Any]
    ) -> np.ndarray:
        alpha = hparams["alpha"]
        v = state["square_avg"]
        v *= alpha
        v += (1.0 - alpha) * g * g
        return p - hparams["lr"] * g / (np.sqrt(v) + hparams["eps"])


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1) with bias correction.

    For each parameter ``p`` with gradient ``g``, at its ``t``-th update
    (``t`` counts the steps in which this parameter had a gradient)::

        g = g + weight_decay * p              (if weight_decay > 0; L2, not AdamW)
        m = beta1 * m + (1 - beta1) * g       (m, v start at 0)
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    Args:
        params: the parameters to update, or param group dicts (see
            [`Optimizer`][tinygrad_rnn.optim.Optimizer]).
        lr: the learning rate, >= 0.
        betas: decay rates (beta1, beta2) of the moment estimates, each in [0, 1).
        eps: added to the root of the second moment, >= 0.
        weight_decay: L2 penalty added to the gradient, >= 0 (for the decoupled
            weight decay of AdamW use [`AdamW`][tinygrad_rnn.optim.AdamW]).

    State per parameter: ``m``, ``v`` and ``step`` (t, a 0-d int64 array).
    """

    # AdamW sets this: weight decay shrinks the parameter instead of entering the gradient.
    _decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _init_state(self, p: Tensor, group: ParamGroup) -> State:
        return {
            "m": np.zeros(p.data.shape, dtype=p.data.dtype),
            "v": np.zeros(p.data.shape, dtype=p.data.dtype),
            "step": np.zeros((), dtype=np.int64),
        }

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: State, hparams: dict[str, Any]
    ) -> np.ndarray:
        beta1, beta2 = hparams["betas"]
        lr, weight_decay = hparams["lr"], hparams["weight_decay"]
        m, v, t_arr = state["m"], state["v"], state["step"]
        t_arr += 1
        t = int(t_arr)
        if weight_decay != 0.0 and not self._decoupled_weight_decay:
            g = g + weight_decay * p
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * g * g
        # Python floats: they never upcast a float32 array.
        bias1 = 1.0 - beta1**t
        bias2 = 1.0 - beta2**t
        if weight_decay != 0.0 and self._decoupled_weight_decay:
            p = p * (1.0 - lr * weight_decay)
        return p - lr * (m / bias1) / (np.sqrt(v / bias2) + hparams["eps"])


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay, PyTorch's defaults.

    For each parameter ``p`` with gradient ``g``, at its ``t``-th update::

        p = p * (1 - lr * weight_decay)       (the decay is not part of g, m or v)
        m = beta1 * m + (1 - beta1) * g       (m, v start at 0)
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

    Unlike Adam's L2 penalty, the decay is not divided by ``sqrt(v_hat)``: every weight
    shrinks by the same fraction ``lr * weight_decay`` per step, however large its
    gradients. (PyTorch's ``amsgrad``, ``maximize`` and the implementation flags are
    not offered, as for [`Adam`][tinygrad_rnn.optim.Adam].)

    Args:
        params: the parameters to update, or param group dicts (see
            [`Optimizer`][tinygrad_rnn.optim.Optimizer]); a common use is a group of
            biases with ``weight_decay=0``.
        lr: the learning rate, >= 0.
        betas: decay rates (beta1, beta2) of the moment estimates, each in [0, 1).
        eps: added to the root of the second moment, >= 0.
        weight_decay: the decoupled weight decay λ, >= 0.

    State per parameter: ``m``, ``v`` and ``step`` (t, a 0-d int64 array).
    """

    _decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
