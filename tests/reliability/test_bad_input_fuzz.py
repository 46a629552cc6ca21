"""Fuzz the public API with junk and check that only the documented error classes come out.

Random bad (and odd but valid) inputs go to the Tensor constructor, every Tensor method and
operator, the top-level ops and ``grad``/``gradcheck``, the functional losses, the nn
modules (construction and calls), the optimizers and clipping, and ``save``/``load`` (random
bytes files, random dicts). Junk means: random shapes and dtypes (float, int, bool, complex,
object, str), None, nested and ragged lists, dicts, NaN/inf, negative and huge sizes, extra
positional arguments and unknown keywords.

Only the exception *class* is asserted. Allowed everywhere: ``ValueError`` (which includes
``nn.StateDictError`` and numpy's ``AxisError``), ``TypeError``, ``IndexError``. Also allowed
where documented: ``RuntimeError`` for the backward pass (``backward``, ``grad``,
``requires_grad_`` on a non-leaf, ``run_tbptt``) and ``clip_grad_norm_``;
``FileNotFoundError`` for ``load``; ``GradcheckError`` for ``gradcheck``. Anything else
(AttributeError, KeyError, ZeroDivisionError, OverflowError, RecursionError, MemoryError, ...)
fails the test, except the known bugs listed in ``KNOWN_BUGS``, each pinned by an xfail test
in ``test_bad_input.py``: delete an entry when its xfail test starts to pass.

numpy's RuntimeWarnings on odd values (overflow, invalid value) are not errors here.
Bounded: the CI profile runs 25 examples per test.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.tensor import Tensor

ALLOWED: tuple[type[BaseException], ...] = (ValueError, TypeError, IndexError)

# Failures tolerated while their bug is open: (target regex, exception class, message regex,
# the xfail test in test_bad_input.py that pins the bug). Every bug found so far is fixed.
KNOWN_BUGS: list[tuple[str, type[BaseException], str, str]] = []


def _known(where: str, exc: BaseException) -> bool:
    return any(
        re.fullmatch(target, where) and isinstance(exc, cls) and re.search(pattern, str(exc))
        for target, cls, pattern, _ in KNOWN_BUGS
    )


def _call(
    where: str,
    fn: Callable[..., Any],
    *args: Any,
    allowed: tuple[type[BaseException], ...] = (),
    **kwargs: Any,
) -> Any:
    """Call ``fn``; pass if it returns or raises an allowed error, fail on anything else."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except ALLOWED + allowed:
            return None
        except Exception as exc:
            if _known(where, exc):
                return None
            raise AssertionError(
                f"{where} raised {type(exc).__name__}: {exc}\n  args={args!r:.300}\n"
                f"  kwargs={kwargs!r:.300}"
            ) from exc


# --------------------------------------------------------------------------------------------
# Junk
# --------------------------------------------------------------------------------------------

DTYPES = [np.float64, np.float32, np.int64, np.int8, np.uint8, np.bool_, np.complex128]
HUGE = [2**62, -(2**62), 2**63, 10**30, 10**400]  # int64, beyond int64, beyond float64
SIZES = st.one_of(st.integers(-2, 5), st.sampled_from(HUGE))
# No Python ints beyond int64 where they could become an exponent of an object array
# (2 ** 10**30 would never finish): that is a valid if absurd request, not bad input.
SMALL_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.complex_numbers(max_magnitude=10, allow_nan=False),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.sampled_from([object(), Ellipsis, slice(None), slice(1, None, 2)]),
)
SCALARS = st.one_of(SMALL_SCALARS, st.sampled_from(HUGE))
SHAPES = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def arrays(draw: Any, dtypes: list[Any] | None = None) -> np.ndarray:
    shape = draw(SHAPES)
    kind = draw(st.sampled_from(["num", "num", "num", "object", "str"]))
    n = int(np.prod(shape))
    if kind == "object":
        return np.array([draw(SMALL_SCALARS) for _ in range(n)] + [None], dtype=object)[:n].reshape(
            shape
        )
    if kind == "str":
        return np.full(shape, draw(st.text(max_size=2)))
    dtype = np.dtype(draw(st.sampled_from(dtypes or DTYPES)))
    values = draw(st.lists(st.floats(-5, 5) | st.sampled_from([np.nan, np.inf, -np.inf, 0.0])))
    data = np.resize(np.array(values or [1.0]), shape) if n else np.zeros(shape)
    if dtype.kind in "iub":
        data = np.nan_to_num(data, nan=0.0, posinf=3.0, neginf=-3.0)
        data = np.clip(data, 0, 5) if dtype.kind == "u" else data
    return data.astype(dtype)


@st.composite
def tensors(draw: Any, floating: bool = False) -> Tensor:
    arr = draw(arrays(dtypes=[np.float64, np.float32] if floating else None))
    if arr.dtype.kind in "OU":
        arr = np.zeros(arr.shape)
    grad = arr.dtype.kind == "f" and draw(st.booleans())
    return Tensor(arr, requires_grad=grad)


NESTED = st.recursive(
    st.floats(-3, 3) | st.integers(-3, 3) | st.none(),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=8,
)

JUNK = st.one_of(
    SCALARS,
    arrays(),
    tensors(),
    NESTED,
    SHAPES,
    st.dictionaries(st.text(max_size=2), SMALL_SCALARS, max_size=2),
    st.lists(tensors(), max_size=3),
)
SMALL_JUNK = st.one_of(  # JUNK without Python ints beyond int64 (see SMALL_SCALARS)
    SMALL_SCALARS, arrays(), tensors(), NESTED, SHAPES, st.lists(tensors(), max_size=3)
)
JUNK_KEYWORDS = st.dictionaries(
    st.sampled_from(["axis", "keepdims", "bogus", "dtype", "reduction", "mask", "grad"]),
    JUNK,
    max_size=2,
)

FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------
# Tensor, its methods and operators, the top-level ops
# --------------------------------------------------------------------------------------------


@FUZZ
@given(data=JUNK, dtype=st.one_of(st.none(), st.sampled_from([*DTYPES, object, str, "x"])))
def test_fuzz_tensor_constructor(data: Any, dtype: Any) -> None:
    _call("Tensor()", Tensor, data, dtype=dtype)
    _call("Tensor()", Tensor, data, requires_grad=True)
    _call("Tensor()", Tensor, data, 1, 2, 3, 4)
    _call("nn.Parameter()", nn.Parameter, data)


BINARY = [
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
    "__rtruediv__", "__matmul__", "__rmatmul__", "__getitem__", "__lt__", "__le__", "__gt__",
    "__ge__", "__eq__", "__ne__",
]  # fmt: skip
UNARY = [
    "__neg__", "__pos__", "__len__", "__bool__", "__repr__", "__array__", "exp", "log", "log1p",
    "tanh", "sigmoid", "relu", "abs", "sqrt", "item", "numpy", "detach", "zero_grad",
]  # fmt: skip
WITH_ARGS = [
    "clip", "sum", "mean", "max", "min", "reshape", "transpose", "permute", "expand",
    "broadcast_to", "split", "chunk", "requires_grad_", "backward",
]  # fmt: skip


@FUZZ
@given(
    receiver=tensors(),
    name=st.sampled_from(BINARY + UNARY + WITH_ARGS),
    args=st.lists(JUNK, max_size=3),
    kwargs=JUNK_KEYWORDS,
)
def test_fuzz_tensor_methods(receiver: Tensor, name: str, args: list[Any], kwargs: Any) -> None:
    allowed: tuple[type[BaseException], ...] = ()
    if name in ("backward", "requires_grad_"):
        allowed = (RuntimeError,)
    method = getattr(receiver, name)
    if name in BINARY:
        _call(f"Tensor.{name}", method, args[0] if args else None)
    elif name in UNARY:
        _call(f"Tensor.{name}", method)
    else:
        _call(f"Tensor.{name}", method, *args, allowed=allowed)
    _call(f"Tensor.{name}", method, *args, allowed=allowed, **kwargs)


@FUZZ
@given(receiver=tensors(), exponent=SMALL_JUNK, reverse=st.booleans())
def test_fuzz_power(receiver: Tensor, exponent: Any, reverse: bool) -> None:
    _call("Tensor.__pow__", receiver.__rpow__ if reverse else receiver.__pow__, exponent)


TOP_LEVEL = {
    "broadcast_to": 2,
    "chunk": 2,
    "clip": 3,
    "concat": 2,
    "logsumexp": 3,
    "matmul": 2,
    "maximum": 2,
    "minimum": 2,
    "reshape": 2,
    "split": 3,
    "stack": 2,
    "sum_to": 2,
    "transpose": 2,
    "where": 3,
}


@FUZZ
@given(
    name=st.sampled_from(sorted(TOP_LEVEL)),
    first=st.one_of(tensors(), st.lists(tensors(), min_size=1, max_size=3), JUNK),
    rest=st.lists(JUNK, max_size=3),
    kwargs=JUNK_KEYWORDS,
)
def test_fuzz_top_level_ops(name: str, first: Any, rest: list[Any], kwargs: Any) -> None:
    fn = getattr(tg, name)
    _call(f"tg.{name}", fn, first, *rest[: TOP_LEVEL[name] - 1])
    _call(f"tg.{name}", fn, first, *rest, **kwargs)


_LOSS, _X, _GOOD = object(), object(), object()  # placeholders for the real thing


@FUZZ
@given(
    outputs=st.one_of(JUNK, st.just(_LOSS)),
    inputs=st.one_of(JUNK, st.just(_X)),
    grad_outputs=st.one_of(st.none(), JUNK),
    flags=st.lists(JUNK, max_size=3),
)
def test_fuzz_grad_and_backward(outputs: Any, inputs: Any, grad_outputs: Any, flags: Any) -> None:
    x = Tensor(np.arange(1.0, 4.0), requires_grad=True)
    loss = (x * x).sum()
    outputs = loss if outputs is _LOSS else outputs
    inputs = [x] if inputs is _X else inputs
    _call("tg.grad", tg.grad, outputs, inputs, grad_outputs, *flags, allowed=(RuntimeError,))
    y = x.tanh() * 2
    _call("Tensor.backward", y.backward, grad_outputs, *flags, allowed=(RuntimeError,))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "identity": lambda t: t,
    "square": lambda t: t * t,
    "tuple": lambda t: (t.tanh(), t.sum()),
    "number": lambda t: 5,
    "none": lambda t: None,
    "raises_value_error": lambda t: t.reshape(-7),
}


@FUZZ
@given(
    fn=st.sampled_from(sorted(FUNCTIONS)),
    inputs=st.one_of(JUNK, st.lists(tensors(floating=True), max_size=2)),
    options=st.dictionaries(
        st.sampled_from(["eps", "atol", "rtol", "seed", "raise_exception", "bogus"]),
        SCALARS,
        max_size=2,
    ),
    second=st.booleans(),
)
def test_fuzz_gradcheck(fn: str, inputs: Any, options: Any, second: bool) -> None:
    check = tg.gradgradcheck if second else tg.gradcheck
    _call("tg.gradcheck", check, FUNCTIONS[fn], inputs, allowed=(tg.GradcheckError,), **options)


# --------------------------------------------------------------------------------------------
# Functional losses
# --------------------------------------------------------------------------------------------

LOSSES: dict[str, Callable[..., Any]] = {
    "F.cross_entropy": F.cross_entropy,
    "F.binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "F.mse_loss": F.mse_loss,
    "F.softmax": F.softmax,
    "F.log_softmax": F.log_softmax,
    "F.one_hot": F.one_hot,
    "F.embedding": F.embedding,
    "nn.CrossEntropyLoss": lambda *a, **k: nn.CrossEntropyLoss()(*a, **k),
    "nn.MSELoss": lambda *a, **k: nn.MSELoss()(*a, **k),
    "nn.BCEWithLogitsLoss": lambda *a, **k: nn.BCEWithLogitsLoss()(*a, **k),
}

PLAUSIBLE_FIRST = st.one_of(
    tensors(floating=True), st.just(Tensor(np.zeros((4, 3)), requires_grad=True)), JUNK
)
PLAUSIBLE_SECOND = st.one_of(
    st.just(np.array([0, 1, 2, 0])),
    st.integers(-1, 3).map(lambda k: np.full(4, k)),
    st.just(np.zeros((4, 3))),
    st.just(Tensor(np.zeros((3, 2)))),
    JUNK,
)


@FUZZ
@given(
    name=st.sampled_from(sorted(LOSSES)),
    first=PLAUSIBLE_FIRST,
    second=PLAUSIBLE_SECOND,
    kwargs=st.dictionaries(
        st.sampled_from(["axis", "reduction", "mask", "dtype", "bogus"]),
        st.one_of(st.sampled_from(["mean", "sum", "none", -1, 0, 1]), JUNK),
        max_size=3,
    ),
)
def test_fuzz_losses(name: str, first: Any, second: Any, kwargs: Any) -> None:
    out = _call(name, LOSSES[name], first, second, **kwargs)
    if isinstance(out, Tensor) and out.requires_grad and out.size == 1:
        _call(f"{name} backward", out.backward, allowed=(RuntimeError,))
    for cls in (nn.CrossEntropyLoss, nn.MSELoss, nn.BCEWithLogitsLoss):
        _call(f"nn.{cls.__name__}()", cls, **{k: v for k, v in kwargs.items() if k != "mask"})


# --------------------------------------------------------------------------------------------
# nn modules: construction and calls
# --------------------------------------------------------------------------------------------

MODULES = [nn.Linear, nn.Embedding, nn.RNNCell, nn.LSTMCell, nn.GRUCell, nn.RNN, nn.LSTM, nn.GRU]
NOT_HUGE = JUNK.filter(lambda v: not (isinstance(v, int) and v > 8))


@FUZZ
@given(
    cls=st.sampled_from(MODULES),
    first=st.one_of(SIZES, JUNK),
    second=st.one_of(SIZES, JUNK),
    options=st.dictionaries(
        st.sampled_from(
            ["bias", "dtype", "rng", "nonlinearity", "batch_first", "bidirectional", "bogus"]
        ),
        JUNK,
        max_size=3,
    ),
    num_layers=st.one_of(st.none(), NOT_HUGE),  # a huge *valid* num_layers would just run
)
def test_fuzz_module_construction(
    cls: Any, first: Any, second: Any, options: Any, num_layers: Any
) -> None:
    if num_layers is not None and cls in (nn.RNN, nn.LSTM, nn.GRU):
        options["num_layers"] = num_layers
    module = _call(f"nn.{cls.__name__}()", cls, first, second, **options)
    if module is not None:
        _call(f"nn.{cls.__name__}.state_dict", module.state_dict)


def _modules() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    made: dict[str, Any] = {
        "nn.Linear": nn.Linear(3, 4, dtype=np.float64, rng=rng),
        "nn.Embedding": nn.Embedding(5, 3, dtype=np.float64, rng=rng),
        "nn.Sequential": nn.Sequential(nn.Linear(3, 3, dtype=np.float64, rng=rng)),
    }
    for cls in (nn.RNNCell, nn.LSTMCell, nn.GRUCell):
        made[f"nn.{cls.__name__}"] = cls(3, 4, dtype=np.float64, rng=rng)
    for cls in (nn.RNN, nn.LSTM, nn.GRU):
        made[f"nn.{cls.__name__}"] = cls(3, 4, num_layers=2, dtype=np.float64, rng=rng)
    return made


MODULE_INSTANCES = _modules()
PLAUSIBLE_INPUT = st.one_of(
    st.sampled_from([(2, 3), (3,), (5, 2, 3), (5, 3), (0, 2, 3), (2, 0, 3), (5, 2, 4)]).map(
        np.zeros
    ),
    JUNK,
)
PLAUSIBLE_STATE = st.one_of(
    st.none(),
    st.sampled_from([(2, 4), (4,), (2, 2, 4), (1, 2, 4), (2, 3, 4)]).map(np.zeros),
    st.tuples(
        st.sampled_from([(2, 4), (2, 2, 4), (2, 5)]).map(np.zeros),
        st.sampled_from([(2, 4), (2, 2, 4), (3, 4)]).map(np.zeros),
    ),
    JUNK,
)


@FUZZ
@given(
    name=st.sampled_from(sorted(MODULE_INSTANCES)),
    x=PLAUSIBLE_INPUT,
    state=PLAUSIBLE_STATE,
    extra=st.lists(JUNK, max_size=2),
    kwargs=st.dictionaries(st.sampled_from(["hx", "state", "bogus", "mask"]), JUNK, max_size=1),
)
def test_fuzz_module_calls(name: str, x: Any, state: Any, extra: Any, kwargs: Any) -> None:
    module = MODULE_INSTANCES[name]
    module.zero_grad()
    _call(name, module, x)
    out = _call(name, module, x, state)
    _call(name, module, x, state, *extra, **kwargs)
    _call("nn.unroll", nn.unroll, module, x, state)
    _call(f"{name}.load_state_dict", module.load_state_dict, {"weight": x} if extra else x)
    first = out[0] if isinstance(out, tuple) else out
    if isinstance(first, Tensor) and first.requires_grad:
        _call(f"{name} backward", first.sum().backward, allowed=(RuntimeError,))


@FUZZ
@given(
    inputs=st.one_of(st.just(np.zeros((7, 2, 3))), JUNK),
    chunk_len=st.one_of(SIZES, JUNK),
    options=st.dictionaries(
        st.sampled_from(["time_axis", "state", "targets", "after_backward", "bogus"]),
        JUNK,
        max_size=2,
    ),
)
def test_fuzz_truncated_bptt(inputs: Any, chunk_len: Any, options: Any) -> None:
    layer = MODULE_INSTANCES["nn.RNN"]

    def forward(x: Any, y: Any, state: Any) -> Any:
        out, final = layer(x, state)
        return out.sum(), final

    _call(
        "nn.run_tbptt",
        nn.run_tbptt,
        forward,
        inputs,
        chunk_len=chunk_len,
        allowed=(RuntimeError,),
        **options,
    )
    _call("nn.detach_state", nn.detach_state, inputs)


# --------------------------------------------------------------------------------------------
# Optimizers and clipping
# --------------------------------------------------------------------------------------------

OPTIMIZERS = {
    "optim.SGD": optim.SGD,
    "optim.Adam": optim.Adam,
    "optim.RMSProp": optim.RMSProp,
    "optim.Adagrad": optim.Adagrad,
}
HPARAMS = ["lr", "momentum", "weight_decay", "nesterov", "betas", "eps", "alpha", "bogus"]


@FUZZ
@given(
    name=st.sampled_from(sorted(OPTIMIZERS)),
    params=st.one_of(st.just(_GOOD), JUNK),
    hparams=st.dictionaries(
        st.sampled_from(HPARAMS),
        st.one_of(SCALARS, st.tuples(SCALARS, SCALARS), JUNK),
        max_size=3,
    ),
    grad=st.one_of(st.none(), JUNK),
    state=st.one_of(JUNK, st.dictionaries(st.sampled_from(["step", "lr", "state.0.m"]), JUNK)),
)
def test_fuzz_optimizers(name: str, params: Any, hparams: Any, grad: Any, state: Any) -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    opt = _call(name, OPTIMIZERS[name], [w] if params is _GOOD else params, **hparams)
    if opt is None:
        opt = OPTIMIZERS[name]([w], lr=0.1)
    w.grad = grad
    _call(f"{name}.step", opt.step)
    _call(f"{name}.load_state_dict", opt.load_state_dict, state)
    w.grad = Tensor(np.ones(3))
    _call(f"{name}.step", opt.step)
    _call(
        "optim.clip_grad_norm_",
        optim.clip_grad_norm_,
        [w] if params is _GOOD else params,
        *hparams.values(),
        allowed=(RuntimeError,),
    )
    _call("optim.clip_grad_value_", optim.clip_grad_value_, [w], grad)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


@FUZZ
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b),
        st.just(b"\x93NUMPY"),
    ),
    tree=st.one_of(
        JUNK,
        st.dictionaries(
            st.one_of(st.text(max_size=3), st.integers(0, 2)),
            st.one_of(JUNK, st.dictionaries(st.text(max_size=2), JUNK, max_size=2)),
            max_size=3,
        ),
    ),
)
def test_fuzz_save_and_load(tmp_path_factory: Any, content: bytes, tree: Any) -> None:
    folder: Path = tmp_path_factory.mktemp("ckpt")
    junk_file = folder / "junk.npz"
    junk_file.write_bytes(content)
    _call("tg.load", tg.load, junk_file)
    _call("tg.load", tg.load, folder / "missing.npz", allowed=(FileNotFoundError,))
    path = folder / "tree.npz"
    _call("tg.save", tg.save, tree, path)
    if path.exists():
        loaded = _call("tg.load", tg.load, path)
        assert isinstance(loaded, dict)
    lin = MODULE_INSTANCES["nn.Linear"]
    saved = lin.state_dict()
    _call("nn.Linear.load_state_dict", lin.load_state_dict, tree)
    lin.load_state_dict(saved)
