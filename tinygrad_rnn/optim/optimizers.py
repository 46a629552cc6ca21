"""Optimizers and gradient clipping with PyTorch's API, computed with numpy.

An optimizer takes an iterable of parameters (leaf Tensors with
``requires_grad=True``, such as ``nn.Parameter``), and each
[`Optimizer.step`][tinygrad_rnn.optim.Optimizer.step] moves every parameter that has a gradient;
parameters whose ``grad`` is None are skipped. A typical loop::

    opt = Adam(model.parameters(), lr=1e-3)
    for batch in data:
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=5.0)
        opt.step()

Safe by design
--------------
Nothing here writes into an array that a recorded graph may hold:

* ``step()`` gives each parameter a *new* array, ``p.data = p.data - lr * update``,
  never ``p.data -= ...``. A graph built before the step saved the old array, so
  a ``backward`` run after the step still uses the values the forward saw.
* ``step()`` reads ``p.grad`` and never writes into it.
* [`clip_grad_norm_`][tinygrad_rnn.optim.clip_grad_norm_] and
  [`clip_grad_value_`][tinygrad_rnn.optim.clip_grad_value_] replace ``p.grad`` with a new Tensor
  wrapping a new array; the old gradient array (which the caller may still hold, or the engine may
  have given to several leaves at once) is left as it was.

The only arrays updated in place are the optimizer's own state (momentum
buffers, moment estimates, accumulators). They are never handed out:
[`Optimizer.state_dict`][tinygrad_rnn.optim.Optimizer.state_dict] returns copies and
[`Optimizer.load_state_dict`][tinygrad_rnn.optim.Optimizer.load_state_dict] copies what it is given.

dtypes
------
A float32 parameter stays float32: hyperparameters are stored as Python floats
(a numpy float64 ``lr`` would upcast a float32 array under numpy 2), state arrays
have the parameter's dtype, a gradient of another dtype is cast to the
parameter's, and bias corrections are Python floats.

Checkpoints
-----------
[`Optimizer.state_dict`][tinygrad_rnn.optim.Optimizer.state_dict] is a flat
``dict[str, np.ndarray]`` that ``np.savez`` can store and ``np.load(..., allow_pickle=False)`` can
read back: ``"step"`` (calls of ``step()`` so far), one entry per hyperparameter (``"lr"``,
``"eps"``, ... as 0-d arrays; ``"betas"`` has shape (2,)), and
``"state.<i>.<name>"`` for the state of ``params[i]`` (e.g. ``"state.0.m"``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from tinygrad_rnn.tensor import Tensor

State = dict[str, np.ndarray]

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "Optimizer",
    "RMSProp",
    "clip_grad_norm_",
    "clip_grad_value_",
]


# ------------------------------------------------------------ validation
def _real(where: str, name: str, value: Any) -> float:
    """``value`` as a Python float; TypeError for bools and non-numbers."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{where}: {name} must be a real number, got {value!r} ({type(value).__name__})"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{where}: {name} must be a finite number, got {value!r:.60}") from None


def _non_negative(where: str, name: str, value: Any) -> float:
    """A finite number >= 0, as a Python float."""
    x = _real(where, name, value)
    if not (x >= 0.0 and math.isfinite(x)):
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}")
    return x


def _unit_interval(where: str, name: str, value: Any) -> float:
    """A number in [0, 1), as a Python float."""
    x = _real(where, name, value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {value!r}")
    return x


def _betas(where: str, name: str, value: Any) -> tuple[float, float]:
    """A pair of numbers in [0, 1)."""
    try:
        b1, b2 = value
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {name} must be a pair (beta1, beta2), got {value!r}") from None
    return (_unit_interval(where, f"{name}[0]", b1), _unit_interval(where, f"{name}[1]", b2))


def _flag(where: str, name: str, value: Any) -> bool:
    """A bool (Python or numpy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


# How each known hyperparameter is checked and normalised. Names not listed here
# (hyperparameters of a user's own subclass) are stored as given.
_HPARAM_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    "lr": _non_negative,
    "momentum": _non_negative,
    "weight_decay": _non_negative,
    "eps": _non_negative,
    "alpha": _unit_interval,
    "betas": _betas,
    "nesterov": _flag,
}


def _check_hparams(where: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise every hyperparameter (Python floats, tuples, bools)."""
    out: dict[str, Any] = {}
    for name, value in hparams.items():
        check = _HPARAM_CHECKS.get(name)
        out[name] = value if check is None else check(where, name, value)
    return out


def _collect_params(params: Iterable[Tensor], where: str) -> list[Tensor]:
    """The parameters as a list, each a distinct leaf Tensor that requires grad."""
    if isinstance(params, Tensor):
        raise TypeError(
            f"{where}: params must be an iterable of Tensors, got a single Tensor; "
            "pass [tensor] instead"
        )
    if isinstance(params, Mapping):
        raise TypeError(
            f"{where}: params must be an iterable of Tensors, got a {type(params).__name__}; "
            "pass its .values()"
        )
    if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(
            f"{where}: params must be an iterable of Tensors, got {type(params).__name__}"
        )
    out: list[Tensor] = []
    seen: dict[int, int] = {}
    for k, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: params[{k}] is a {type(p).__name__}, expected a Tensor")
        if not p.requires_grad:
            raise ValueError(
                f"{where}: params[{k}] (shape {p.shape}) does not require grad; "
                "create it with requires_grad=True"
            )
        if not p.is_leaf:
            raise ValueError(
                f"{where}: params[{k}] (shape {p.shape}) was made by op '{p.op}', not a leaf; "
                "backward only fills .grad of leaves"
            )
        first = seen.get(id(p))
        if first is not None:
            raise ValueError(
                f"{where}: params[{k}] is the same tensor as params[{first}]; "
                "each parameter may appear only once"
            )
        seen[id(p)] = k
        out.append(p)
    if not out:
        raise ValueError(f"{where}: params is empty; pass at least one Tensor")
    return out


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


# ------------------------------------------------------------ optimizers
class Optimizer:
    """Base class: holds the parameters, hyperparameters and per-parameter state.

    Subclasses give ``_init_state(p)`` (the state of one parameter, arrays of its
    shape and dtype) and ``_update(p, g, state, hparams)`` (the new parameter
    array). ``step()`` calls ``_update`` for every parameter with a gradient and
    assigns the result to ``p.data``: parameters are replaced, never written into.

    Args:
        params: an iterable of distinct leaf Tensors that require grad.
        **defaults: the hyperparameters, validated by name (``lr``, ``eps``, ...
            must be finite and >= 0; ``alpha`` and each of ``betas`` in [0, 1)).

    Attributes:
        params: the list of parameters, in the order given.
        defaults: the hyperparameters (Python floats, bools and tuples);
            changing ``defaults["lr"]`` between steps changes the learning rate.
        state: one dict of numpy arrays per parameter.
        step_count: how many times ``step()`` has been called.

    Raises:
        TypeError: ``params`` is a single Tensor, or holds something that is not
            a Tensor; a hyperparameter has the wrong type.
        ValueError: ``params`` is empty, holds a tensor twice, a tensor that
            does not require grad or is not a leaf; a hyperparameter is out of range.
    """

    def __init__(self, params: Iterable[Tensor], **defaults: Any) -> None:
        where = type(self).__name__
        self.defaults: dict[str, Any] = _check_hparams(where, defaults)
        self._check_defaults(self.defaults)
        self.params: list[Tensor] = _collect_params(params, where)
        self.state: list[State] = [self._init_state(p) for p in self.params]
        self.step_count: int = 0

    # ----------------------------------------------------------- hooks
    def _check_defaults(self, hparams: dict[str, Any]) -> None:
        """Checks that involve several hyperparameters (raise ValueError)."""

    def _init_state(self, p: Tensor) -> State:
        """The optimizer state of one parameter (no state by default)."""
        return {}

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: State, hparams: dict[str, Any]
    ) -> np.ndarray:
        """The new value of a parameter ``p`` with gradient ``g`` (a new array)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    # ---------------------------------------------------------- public
    @property
    def lr(self) -> float:
        """The learning rate ``defaults["lr"]``; assigning validates the new value."""
        return float(self.defaults["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self.defaults["lr"] = _non_negative(type(self).__name__, "lr", value)

    def zero_grad(self) -> None:
        """Set ``p.grad = None`` for every parameter (the next backward starts afresh)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient: ``p.data = _update(p.data, g)``.

        Parameters with ``grad is None`` are skipped. All gradients are checked
        (shape equal to the parameter's) before any parameter changes, so a
        failing step leaves everything as it was.
        """
        where = f"{type(self).__name__}.step"
        pending = [
            (k, p, _grad_array(p, k, where))
            for k, p in enumerate(self.params)
            if p.grad is not None
        ]
        hparams = self.defaults
        for k, p, g in pending:
            p.data = self._update(p.data, g, self.state[k], hparams)
        self.step_count += 1

    def _flat(self) -> dict[str, np.ndarray]:
        """The state dict without copies of the state arrays."""
        out: dict[str, np.ndarray] = {"step": np.asarray(self.step_count, dtype=np.int64)}
        for name, value in self.defaults.items():
            arr = np.asarray(value)
            if arr.dtype == object:
                raise TypeError(
                    f"{type(self).__name__}.state_dict: hyperparameter {name!r} = {value!r} "
                    "cannot be stored as a numpy array"
                )
            out[name] = arr
        for k, st in enumerate(self.state):
            for name, arr in st.items():
                out[f"state.{k}.{name}"] = arr
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume: a flat dict of numpy arrays (copies).

        Keys: ``"step"``; each hyperparameter (``"lr"``, ...) as a 0-d array
        (``"betas"`` has shape (2,)); ``"state.<i>.<name>"`` for ``params[i]``.
        ``np.savez(path, **opt.state_dict())`` stores it without pickle.
        """
        return {key: np.array(arr, copy=True) for key, arr in self._flat().items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore step count, hyperparameters and state from
        [`state_dict`][tinygrad_rnn.optim.Optimizer.state_dict]'s output.

        Accepts any mapping of the same keys to arrays (e.g. the ``NpzFile``
        from ``np.load``). Arrays are copied (and cast to this optimizer's
        dtypes); hyperparameters are replaced, like PyTorch's ``param_groups``.
        Nothing changes unless every check passes.

        Raises:
            ValueError: a key is missing or unexpected, an array has the wrong
                shape or a dtype of another kind, or a hyperparameter is invalid.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{where}: expected a mapping of names to arrays (a dict), "
                f"got {type(state_dict).__name__}"
            )
        current = self._flat()
        missing = [key for key in current if key not in state_dict]
        if missing:
            listed = ", ".join(f"{key!r} (shape {current[key].shape})" for key in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ValueError(f"{where}: missing key(s) {listed}{more}")
        unexpected = [key for key in state_dict if key not in current]
        if unexpected:
            listed = ", ".join(repr(key) for key in unexpected[:5])
            more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
            raise ValueError(
                f"{where}: unexpected key(s) {listed}{more} (this optimizer has "
                f"{len(self.params)} parameters)"
            )
        loaded: dict[str, np.ndarray] = {}
        for key, cur in current.items():
            arr = np.asarray(state_dict[key])
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
        step_count = int(loaded["step"])
        if step_count < 0:
            raise ValueError(f"{where}: 'step' must be >= 0, got {step_count}")
        hparams = _check_hparams(
            where, {name: _from_array(value, loaded[name]) for name, value in self.defaults.items()}
        )
        self._check_defaults(hparams)
        # Every check passed: commit.
        self.step_count = step_count
        self.defaults = hparams
        for k, st in enumerate(self.state):
            for name in st:
                st[name] = loaded[f"state.{k}.{name}"]

    def __repr__(self) -> str:
        hp = ", ".join(f"{name}={value!r}" for name, value in self.defaults.items())
        return f"{type(self).__name__}({hp}; {len(self.params)} params)"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's convention).

    For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p              (if weight_decay > 0)
        v = momentum * v + g                  (if momentum > 0; v starts at 0)
        g = g + momentum * v  if nesterov  else  v
        p = p - lr * g

    With ``momentum=0`` this is exactly ``p = p - lr * g``.

    Args:
        params: the parameters to update.
        lr: the learning rate, >= 0.
        momentum: the momentum factor μ, >= 0.
        weight_decay: L2 penalty added to the gradient, >= 0.
        nesterov: use Nesterov momentum (requires ``momentum > 0``).

    State per parameter: ``momentum_buffer`` (only when ``momentum > 0``).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
        )

    def _check_defaults(self, hparams: dict[str, Any]) -> None:
        if hparams["nesterov"] and hparams["momentum"] == 0.0:
            raise ValueError(
                f"{type(self).__name__}: nesterov=True requires momentum > 0, "
                f"got momentum={hparams['momentum']!r}"
            )

    def _init_state(self, p: Tensor) -> State:
        if self.defaults["momentum"] > 0.0:
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
        params: the parameters to update.
        lr: the learning rate, >= 0.
        eps: added to the accumulator before the square root, >= 0.

    State per parameter: ``mem``, the running sum of squared gradients.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-1, eps: float = 1e-8) -> None:
        super().__init__(params, lr=lr, eps=eps)

    def _init_state(self, p: Tensor) -> State:
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
        params: the parameters to update.
        lr: the learning rate, >= 0.
        alpha: smoothing constant of the squared-gradient average, in [0, 1).
        eps: added to the root mean square, >= 0.

    State per parameter: ``square_avg`` (v).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps)

    def _init_state(self, p: Tensor) -> State:
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
        params: the parameters to update.
        lr: the learning rate, >= 0.
        betas: decay rates (beta1, beta2) of the moment estimates, each in [0, 1).
        eps: added to the root of the second moment, >= 0.
        weight_decay: L2 penalty added to the gradient, >= 0.

    State per parameter: ``m``, ``v`` and ``step`` (t, a 0-d int64 array).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _init_state(self, p: Tensor) -> State:
        return {
            "m": np.zeros(p.data.shape, dtype=p.data.dtype),
            "v": np.zeros(p.data.shape, dtype=p.data.dtype),
            "step": np.zeros((), dtype=np.int64),
        }

    def _update(
        self, p: np.ndarray, g: np.ndarray, state: State, hparams: dict[str, Any]
    ) -> np.ndarray:
        beta1, beta2 = hparams["betas"]
        weight_decay = hparams["weight_decay"]
        m, v, t_arr = state["m"], state["v"], state["step"]
        t_arr += 1
        t = int(t_arr)
        if weight_decay != 0.0:
            g = g + weight_decay * p
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * g * g
        # Python floats: they never upcast a float32 array.
        bias1 = 1.0 - beta1**t
        bias2 = 1.0 - beta2**t
        return p - hparams["lr"] * (m / bias1) / (np.sqrt(v / bias2) + hparams["eps"])


# ------------------------------------------------------------ clipping
def _grads(params: Tensor | Iterable[Tensor], where: str) -> list[tuple[Tensor, np.ndarray]]:
    """``(p, p.grad.data)`` for every distinct Tensor in ``params`` that has a grad."""
    items = [params] if isinstance(params, Tensor) else params
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(
            f"{where}: params must be a Tensor or an iterable of Tensors, "
            f"got {type(items).__name__}"
        )
    out: list[tuple[Tensor, np.ndarray]] = []
    seen: dict[int, int] = {}
    for k, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: params[{k}] is a {type(p).__name__}, expected a Tensor")
        first = seen.get(id(p))
        if first is not None:
            raise ValueError(
                f"{where}: params[{k}] is the same tensor as params[{first}]; "
                "its gradient would be counted twice"
            )
        seen[id(p)] = k
        grad = p.grad
        if grad is None:
            continue
        if not isinstance(grad, Tensor):
            raise TypeError(
                f"{where}: params[{k}].grad is a {type(grad).__name__}, expected a Tensor or None"
            )
        out.append((p, grad.data))
    return out


def _norm64(g: np.ndarray, norm_type: float) -> float:
    """The ``norm_type``-norm of all elements of ``g``, computed in float64."""
    if g.size == 0:
        return 0.0
    flat = g.ravel().astype(np.float64, copy=False)
    return float(np.linalg.norm(flat, ord=norm_type))


def clip_grad_norm_(
    params: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients together so that their global norm is at most ``max_norm``.

    ::

        total = ||concat(g.ravel() for every p with a grad)||_norm_type
        if total > max_norm:  p.grad = g * (max_norm / total)   for every such p

    The norm is computed in float64 (float32 gradients of size ~1e19 would
    overflow otherwise). Each clipped ``p.grad`` is a *new* Tensor; the old
    gradient array is not changed. Unlike PyTorch there is no ``1e-6`` in the
    denominator, so after clipping the norm is ``max_norm`` up to rounding.
    A non-finite total (inf/nan gradients) gives inf or nan; with an infinite
    total the gradients are multiplied by 0 (inf entries become nan), as in PyTorch.

    Args:
        params: a Tensor or an iterable of Tensors; those with ``grad is None``
            are ignored.
        max_norm: the largest allowed norm, >= 0.
        norm_type: p of the p-norm, > 0 (``float("inf")`` for the max-abs norm).
        error_if_nonfinite: raise RuntimeError instead if the total is inf or nan.

    Returns:
        The total norm *before* clipping, as a Python float (0.0 when no
        parameter has a gradient).
    """
    where = "clip_grad_norm_"
    max_norm_f = _real(where, "max_norm", max_norm)
    if not max_norm_f >= 0.0:
        raise ValueError(f"{where}: max_norm must be >= 0, got {max_norm!r}")
    p_norm = _real(where, "norm_type", norm_type)
    if not p_norm > 0.0:
        raise ValueError(f"{where}: norm_type must be > 0 (or inf), got {norm_type!r}")
    pairs = _grads(params, where)
    if not pairs:
        return 0.0
    norms = np.array([_norm64(g, p_norm) for _, g in pairs], dtype=np.float64)
    total = float(np.linalg.norm(norms, ord=p_norm))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"{where}: the total norm of order {p_norm} of the gradients is {total}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    if total > max_norm_f:
        scale = max_norm_f / total  # a Python float: keeps each gradient's dtype
        for p, g in pairs:
            p.grad = Tensor._make(g * scale)
    return total


def clip_grad_value_(params: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``.

    ::

        p.grad = clip(g, -clip_value, clip_value)   for every p with a grad

    (min-char-rnn does this with ``clip_value=5``.) Each ``p.grad`` becomes a
    *new* Tensor; the old gradient array is not changed. dtypes are kept.

    Args:
        params: a Tensor or an iterable of Tensors; those with ``grad is None``
            are ignored.
        clip_value: the bound, >= 0 (``inf`` leaves values unchanged).
    """
    where = "clip_grad_value_"
    c = _real(where, "clip_value", clip_value)
    if not c >= 0.0:
        raise ValueError(f"{where}: clip_value must be >= 0, got {clip_value!r}")
    for p, g in _grads(params, where):
        p.grad = Tensor._make(np.clip(g, -c, c))
