"""The module system: [`Parameter`][tinygrad_rnn.nn.Parameter], [`Module`][tinygrad_rnn.nn.Module]
and [`Sequential`][tinygrad_rnn.nn.Sequential].

A [`Module`][tinygrad_rnn.nn.Module] owns [`Parameter`][tinygrad_rnn.nn.Parameter] tensors and child
modules. Both are found by assignment (``self.weight = Parameter(...)``, ``self.lstm = LSTM(...)``)
and kept in insertion order, so ``named_parameters()`` yields dotted paths such
as ``"lstm.weight_ih_l0"`` in a stable order, and ``state_dict()`` uses the same
names as PyTorch for the same architecture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tinygrad_rnn.scope import scope
from tinygrad_rnn.tensor import Tensor

__all__ = ["IncompatibleKeys", "Module", "Parameter", "Sequential", "StateDictError"]


class Parameter(Tensor):
    """A Tensor that is a trainable weight of a [`Module`][tinygrad_rnn.nn.Module].

    ``Parameter(data, dtype=None, name=None)`` copies ``data`` like
    [`Tensor`][tinygrad_rnn.Tensor] does and always sets ``requires_grad=True``,
    so the data must be floating point (an integer array raises TypeError).
    Assigning a Parameter as a module attribute registers it with the module and
    sets ``name`` to the attribute name (graph drawings use it as the label).
    """

    # Tensor uses __slots__; a subclass must not add a __dict__ (that would make
    # every parameter heavier and break the slot-only contract of Tensor).
    __slots__ = ()

    def __init__(
        self, data: Any, dtype: npt.DTypeLike | None = None, name: str | None = None
    ) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor") :]


class StateDictError(KeyError, ValueError):
    """Missing or unexpected keys in
    [`Module.load_state_dict`][tinygrad_rnn.nn.Module.load_state_dict].

    It is both a KeyError and a ValueError so either ``except`` clause catches it.
    """

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of the message (with quotes).
        return str(self.args[0]) if self.args else ""


class IncompatibleKeys(NamedTuple):
    """What a non-strict [`Module.load_state_dict`][tinygrad_rnn.nn.Module.load_state_dict]
    skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _to_numpy(value: Any, key: str) -> np.ndarray:
    """A state_dict value (ndarray, Tensor, torch tensor, nested list) as an ndarray."""
    if isinstance(value, Tensor):
        return value.data
    # A torch.Tensor, recognised without importing torch.
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return np.asarray(value.detach().cpu().numpy())
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"load_state_dict: value for {key!r} is not an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"load_state_dict: value for {key!r} has non-numeric dtype {arr.dtype}")
    return arr


class Module:
    """Base class of every layer: registers parameters and children, calls ``forward``.

    Subclasses call ``super().__init__()`` first, then assign their
    [`Parameter`][tinygrad_rnn.nn.Parameter]s and child modules as attributes, and define
    ``forward``. ``module(*args)`` runs ``forward`` inside
    ``tinygrad_rnn.scope.scope(name)``, where ``name`` is the attribute name the
    module was assigned to in its parent (or the lower-cased class name), so
    graph drawings can group the ops by module.

    Attributes:
        training: True after [`train`][tinygrad_rnn.nn.Module.train] (the default), False after
            [`eval`][tinygrad_rnn.nn.Module.eval].
    """

    training: bool
    _scope_name: str | None

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_scope_name", None)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        params: dict[str, Parameter] | None = self.__dict__.get("_parameters")
        modules: dict[str, Module] | None = self.__dict__.get("_modules")
        if params is None or modules is None:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        if isinstance(value, Parameter):
            modules.pop(name, None)
            params[name] = value
            value.name = name
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
            object.__setattr__(value, "_scope_name", name)
        elif name in params and value is not None:
            # Replacing a weight by a plain Tensor would silently drop it from
            # parameters() (and so from the optimizer): refuse, like PyTorch.
            raise TypeError(
                f"{type(self).__name__}: cannot assign {type(value).__name__} to parameter "
                f"{name!r}; wrap it in Parameter(...) or assign None to remove it"
            )
        else:
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # These two are declared for type checkers; the dicts are made in __init__.
    _parameters: dict[str, Parameter]
    _modules: dict[str, Module]

    # --------------------------------------------------------------- calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with scope(self._scope_name or type(self).__name__.lower()):
            return self.forward(*args, **kwargs)

    # ------------------------------------------------------------- traversal
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(attribute name, module)`` for each direct child, in assignment order."""
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        """The direct child modules, in assignment order."""
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(dotted path, module)`` for this module (path ``prefix``) and every descendant."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            path, mod = stack.pop()
            if id(mod) in seen:  # a module shared by two parents is listed once
                continue
            seen.add(id(mod))
            yield path, mod
            kids = [(f"{path}.{n}" if path else n, m) for n, m in mod._modules.items()]
            stack.extend(reversed(kids))  # reversed: children come out in order

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, depth first, in assignment order."""
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(dotted path, parameter)`` pairs, e.g. ``("lstm.weight_ih_l0", p)``.

        Order: a module's own parameters in assignment order, then each child's
        (depth first). A parameter shared by two modules is listed once, under
        its first path, so an optimizer never updates it twice.
        """
        seen: set[int] = set()
        for path, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{path}.{name}" if path else name), p

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter (see [`named_parameters`][tinygrad_rnn.nn.Module.named_parameters] for
        the order)."""
        for _, p in self.named_parameters():
            yield p

    def zero_grad(self) -> None:
        """Set ``grad`` of every parameter to None (the next backward starts afresh)."""
        for p in self.parameters():
            p.grad = None

    # ---------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and all descendants; returns ``self``."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Same as ``train(False)``; returns ``self``."""
        return self.train(False)

    # ---------------------------------------------------------------- dtype
    def to(self, dtype: Any) -> Module:
        """Convert every parameter (and its ``.grad``) to ``dtype``, in place; returns ``self``.

        Like ``torch_module.to(torch.float64)``: the Parameter objects stay the same (an
        optimizer built before keeps them) and each gets a new array of the new dtype; a
        gradient already accumulated is converted too. Every module's ``dtype`` attribute
        follows, so inputs are then expected in the new dtype. Converting to the dtype the
        parameters already have changes nothing. (Our modules have no buffers.)

        Args:
            dtype: a floating dtype: ``np.float64``, ``np.dtype("float32")``, a numpy name
                such as ``"float64"``, or a torch dtype such as ``torch.float64``.

        Returns:
            This module.

        Raises:
            TypeError: ``dtype`` is not a floating dtype (e.g. ``np.int64``, ``"cpu"``).
        """
        dt = _check_float_dtype(_dtype_from_torch_like(dtype), f"{type(self).__name__}.to")
        for p in self.parameters():
            if p.data.dtype != dt:
                p.data = p.data.astype(dt)
            if p.grad is not None and p.grad.dtype != dt:
                p.grad = Tensor._make(p.grad.data.astype(dt))
        for m in self.modules():
            if isinstance(m.__dict__.get("dtype"), np.dtype):
                object.__setattr__(m, "dtype", dt)
        return self

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, np.ndarray]:
        """``{dotted name: copy of the parameter's array}``, in
        [`named_parameters`][tinygrad_rnn.nn.Module.named_parameters] order.

        The arrays are copies: changing them never changes the module.
        """
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Replace the parameters' arrays with the values of ``state_dict``.

        Values may be ndarrays, Tensors or torch tensors; each is cast to its
        parameter's dtype and stored as a NEW array (the old ``.data`` is never
        written into, so arrays held elsewhere, e.g. by an optimizer, keep their
        values). Nothing is changed unless every check passes.

        Args:
            state_dict: ``{dotted name: array}`` as returned by
                [`state_dict`][tinygrad_rnn.nn.Module.state_dict].
            strict: require exactly the module's names.

        Returns:
            [`IncompatibleKeys`][tinygrad_rnn.nn.IncompatibleKeys]
            ``(missing_keys, unexpected_keys)``, both empty when ``strict``.

        Raises:
            StateDictError: (a KeyError and a ValueError) ``strict`` and keys are
                missing or unexpected; the message names them.
            ValueError: a value's shape differs from its parameter's (the message
                names the parameter and both shapes).
            TypeError: a value is not numeric.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"load_state_dict: expected a dict, got {type(state_dict).__name__}")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise StateDictError(
                f"load_state_dict for {type(self).__name__}: {' and '.join(parts)}"
            )
        new: dict[str, np.ndarray] = {}
        for key, p in own.items():
            if key not in state_dict:
                continue
            arr = _to_numpy(state_dict[key], key)
            if arr.shape != p.shape:
                raise ValueError(
                    f"load_state_dict: parameter {key!r} has shape {p.shape} but the "
                    f"state_dict gives shape {arr.shape}"
                )
            new[key] = np.array(arr, dtype=p.dtype, copy=True)
        for key, arr in new.items():
            own[key].data = arr
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The configuration shown between the parentheses of ``repr`` (override it)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"

    # ----------------------------------------------------------------- torch
    @classmethod
    def from_torch(cls, torch_module: Any) -> Module:
        """Build this module from the corresponding ``torch.nn`` module (weights copied)."""
        raise NotImplementedError(f"{cls.__name__} has no from_torch")


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(a, b)(x) == b(a(x))``.

    The children are named ``"0"``, ``"1"``, ... as in PyTorch (so parameter
    names are ``"0.weight"``); their scope names are ``"linear0"``, ``"tanh1"``,
    ... so that a graph drawing shows more than a bare number.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for k, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {k} is a {type(m).__name__}, not a Module")
            setattr(self, str(k), m)
            object.__setattr__(m, "_scope_name", f"{type(m).__name__.lower()}{k}")

    def forward(self, x: Any) -> Any:
        """Feed ``x`` through every child in order."""
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    @classmethod
    def from_torch(cls, torch_module: Any) -> Sequential:
        """Convert a ``torch.nn.Sequential`` whose children all have a counterpart here."""
        seq = cls(*(module_from_torch(m) for m in torch_module.children()))
        object.__setattr__(seq, "training", bool(torch_module.training))
        return seq


# torch.nn class name -> our counterpart, for module_from_torch. The counterparts live in
# modules that import this one, so tinygrad_rnn.nn.convert enters them (it is imported with
# tinygrad_rnn.nn); this module imports none of them.
_FROM_TORCH: dict[str, type[Module]] = {}


def module_from_torch(torch_module: Any) -> Module:
    """Our counterpart of a torch Linear, Embedding, Dropout, cell, RNN/LSTM/GRU, loss or
    Sequential (weights copied; Dropout and the recurrent layers also keep torch's training
    mode)."""
    name = type(torch_module).__name__
    if name == "Sequential":
        return Sequential.from_torch(torch_module)
    cls = _FROM_TORCH.get(name)
    if cls is None:
        raise TypeError(
            f"module_from_torch: no counterpart for torch.nn.{name}; "
            f"supported: {sorted([*_FROM_TORCH, 'Sequential'])}"
        )
    return cls.from_torch(torch_module)


def _positive(value: Any, name: str, where: str) -> int:
    """``value`` as a positive int, or a TypeError/ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{where}: {name} must be positive, got {value}")
    if value > np.iinfo(np.int64).max:
        raise ValueError(f"{where}: {name} is too large (more than 2**63 - 1)")
    return int(value)


def _check_rng(rng: Any, where: str) -> np.random.Generator:
    """The generator for a module's initialisation: ``rng`` itself, or a fresh one for None."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, (np.random.Generator, np.random.RandomState)):
        raise TypeError(
            f"{where}: rng must be a np.random.Generator or None, got {type(rng).__name__}"
        )
    return rng  # type: ignore[return-value]  # a RandomState has the same methods used here


def _dtype_from_torch_like(dtype: Any) -> Any:
    """A ``torch.float64`` (recognised by its name, torch is not imported) as ``"float64"``.

    Anything else is returned unchanged, for ``np.dtype`` to read.
    """
    if type(dtype).__name__ == "dtype" and type(dtype).__module__ == "torch":
        return str(dtype).replace("torch.", "")
    return dtype


def _check_float_dtype(dtype: npt.DTypeLike, where: str) -> np.dtype[Any]:
    """The dtype a module's parameters are made in; must be floating point."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(
            f"{where}: dtype must be a floating dtype, got {dtype!r:.60}: {exc}"
        ) from None
    if dt.kind != "f":
        raise TypeError(f"{where}: dtype must be a floating dtype, got {dt}")
    return dt


def _as_input(x: Any, dtype: np.dtype[Any], where: str, name: str = "input") -> Tensor:
    """A float input as a Tensor in the parameters' ``dtype``.

    Arrays and lists are converted (they cannot require grad, so nothing is
    lost); a Tensor of another dtype raises TypeError instead of being upcast
    silently, as in PyTorch.
    """
    if isinstance(x, Tensor):
        if x.dtype != dtype:
            raise TypeError(
                f"{where}: {name} has dtype {x.dtype} but the parameters are {dtype}; "
                f"convert one of them (e.g. build the module with dtype=np.{x.dtype})"
            )
        return x
    if isinstance(x, (np.ndarray, list, tuple, float, int)) and not isinstance(x, bool):
        arr = np.asarray(x)
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{where}: {name} must be numeric, got dtype {arr.dtype}")
        return Tensor._make(arr.astype(dtype, copy=True))
    raise TypeError(f"{where}: {name} must be a Tensor or an array, got {type(x).__name__}")


def _uniform(
    rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> Parameter:
    """A parameter drawn from U(-bound, bound), PyTorch's default for Linear and RNNs."""
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(dtype))


def _check_torch_type(torch_module: Any, cls: type) -> None:
    """Refuse a torch module of the wrong kind (e.g. a ``torch.nn.GRU`` for ``LSTM.from_torch``).

    Compares class names (torch is never imported here); ``cls`` may be a user
    subclass, whose first base from this package gives the name to look for.
    """
    expected = next(c.__name__ for c in cls.__mro__ if c.__module__.startswith("tinygrad_rnn.nn"))
    if expected not in {c.__name__ for c in type(torch_module).__mro__}:
        raise TypeError(
            f"{cls.__name__}.from_torch: expected a torch.nn.{expected}, "
            f"got {type(torch_module).__name__}"
        )


def _torch_dtype(torch_module: Any, where: str) -> np.dtype[Any]:
    """The numpy dtype matching the parameters of a torch module (float32 or float64)."""
    params: Iterable[Any] = list(torch_module.parameters())
    for p in params:
        name = str(p.dtype).replace("torch.", "")
        if name not in ("float32", "float64"):
            raise TypeError(
                f"{where}.from_torch: parameters must be float32 or float64, got {name}"
            )
        return np.dtype(name)
    return np.dtype(np.float32)


def _torch_state(torch_module: Any) -> dict[str, np.ndarray]:
    """A torch module's parameters as ``{name: ndarray}`` (CPU copies)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in torch_module.named_parameters()}
