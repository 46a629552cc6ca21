"""Registry-driven property tests of every op (in the spirit of PyTorch's OpInfo).

``SPECS`` lists one :class:`OpSpec` per op and calling form, each with a hypothesis
strategy that draws valid float64 inputs (shapes, domain, parameters). Every spec is
checked for

a. first derivatives against central finite differences (``tg.gradcheck``),
b. second derivatives against finite differences of the first (``tg.gradgradcheck``),
c. linearity of the backward pass in the upstream gradient,
e. float32 preservation (forward, ``.grad``, and every array recorded by a
   ``create_graph`` backward).

``PRIM_CASES`` covers every :class:`Primitive` of ``ops.py`` directly:

d. the derivative rule on arrays (plain backward) and on Tensors (``create_graph``)
   give the same numbers, shapes and float32 dtypes.

The oracles are finite differences, numpy, closed forms and identities, never values
produced by the engine itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import ops
from tinygrad_rnn.autograd import Primitive
from tinygrad_rnn.testing import (
    broadcastable_shapes,
    distinct_float_arrays,
    float_arrays,
    shapes,
)

Tensor = tg.Tensor
SIDE = 4  # largest side of any drawn shape
DIMS = 3  # most axes of any drawn shape
SECOND_ORDER_EXAMPLES = 8  # gradgradcheck runs a create_graph backward per FD step


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Case:
    """One drawn input: float64 arrays (one per differentiable input) and fixed params."""

    arrays: tuple[np.ndarray, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpSpec:
    """An op under test: ``fn(*tensors, **case.params)`` on inputs drawn from ``cases``."""

    name: str
    fn: Callable[..., Any]
    cases: st.SearchStrategy[Case]
    covers: tuple[str, ...]
    second_order: bool = True


Params = Callable[[tuple[tuple[int, ...], ...]], st.SearchStrategy[dict[str, Any]]]


@st.composite
def _case(
    draw: Any,
    shape_tuples: st.SearchStrategy[tuple[tuple[int, ...], ...]],
    domains: Sequence[dict[str, Any]] = ({},),
    params: Params | None = None,
) -> Case:
    """Arrays of the drawn shapes; input i takes ``domains[i]`` (the last one repeats)."""
    shs = draw(shape_tuples)
    arrays = tuple(
        draw(float_arrays(s, **domains[min(i, len(domains) - 1)])) for i, s in enumerate(shs)
    )
    return Case(arrays, draw(params(shs)) if params else {})


@st.composite
def _distinct_case(
    draw: Any,
    shape_tuples: st.SearchStrategy[tuple[tuple[int, ...], ...]],
    params: Params | None = None,
) -> Case:
    """Inputs whose values are all pairwise >= 1e-3 apart, also across inputs (no ties)."""
    shs = draw(shape_tuples)
    sizes = [int(np.prod(s)) for s in shs]
    flat = draw(distinct_float_arrays((sum(sizes),)))
    cuts = np.cumsum(sizes)[:-1]
    arrays = tuple(p.reshape(s) for p, s in zip(np.split(flat, cuts), shs))
    return Case(arrays, draw(params(shs)) if params else {})


def one(min_dims: int = 0, max_dims: int = DIMS) -> st.SearchStrategy[tuple[tuple[int, ...]]]:
    return shapes(min_dims=min_dims, max_dims=max_dims, max_side=SIDE).map(lambda s: (s,))


def pair() -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return broadcastable_shapes(2, max_dims=DIMS, max_side=SIDE)


def unary(name: str, fn: Callable[..., Any], covers: str, **domain: Any) -> OpSpec:
    return OpSpec(name, fn, _case(one(), [domain]), (covers,))


def binary(name: str, fn: Callable[..., Any], covers: str, *domains: dict[str, Any]) -> OpSpec:
    return OpSpec(name, fn, _case(pair(), domains or ({},)), (covers,))


# -- reductions: every axis form, keepdims drawn
def _axis_params(kind: str) -> Params:
    def make(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
        nd = len(shs[0])
        axis: st.SearchStrategy[Any]
        if kind == "None":
            axis = st.none()
        elif kind == "int":
            axis = st.integers(0, nd - 1)
        elif kind == "negint":
            axis = st.integers(-nd, -1)
        else:  # tuple, possibly empty, entries of both signs
            axis = st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).flatmap(
                lambda ax: st.tuples(*(st.sampled_from([a, a - nd]) for a in ax))
            )
        return st.fixed_dictionaries({"axis": axis, "keepdims": st.booleans()})

    return make


REDUCTIONS: dict[str, tuple[Callable[..., Any], bool]] = {
    # name: (fn, needs distinct values)
    "sum": (lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims), False),
    "mean": (lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims), False),
    "max": (lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims), True),
    "min": (lambda x, axis, keepdims: ops.min(x, axis=axis, keepdims=keepdims), True),
    "logsumexp": (lambda x, axis, keepdims: tg.logsumexp(x, axis=axis, keepdims=keepdims), False),
}


def _reduction_specs() -> list[OpSpec]:
    specs = []
    for name, (fn, distinct) in REDUCTIONS.items():
        for kind in ("None", "int", "negint", "tuple"):
            shape_st = one(min_dims=0 if kind == "None" else 1)
            params = _axis_params(kind)
            cases = _distinct_case(shape_st, params) if distinct else _case(shape_st, [{}], params)
            specs.append(OpSpec(f"{name}[axis={kind}]", fn, cases, (name,)))
    return specs


# -- matmul: every rank combination, batch dims broadcasting
@st.composite
def _matmul_shapes(draw: Any, kind: str) -> tuple[tuple[int, ...], ...]:
    n, k, m = (draw(st.integers(1, SIDE)) for _ in range(3))
    b1, b2 = draw(broadcastable_shapes(2, min_dims=0, max_dims=2, max_side=3))
    return {
        "1d@1d": ((k,), (k,)),
        "1d@2d": ((k,), (k, m)),
        "2d@1d": ((n, k), (k,)),
        "2d@2d": ((n, k), (k, m)),
        "batched": ((*b1, n, k), (*b2, k, m)),
        "1d@batched": ((k,), (*b2, k, m)),
        "batched@1d": ((*b1, n, k), (k,)),
    }[kind]


MATMUL_KINDS = ("1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "1d@batched", "batched@1d")


@st.composite
def _addmm_shapes(draw: Any) -> tuple[tuple[int, ...], ...]:
    """``c, a, b`` for ``c + a @ b``: 2-D a and b, c anything that broadcasts to (n, m)."""
    n, k, m = (draw(st.integers(1, SIDE)) for _ in range(3))
    c = draw(st.sampled_from([(n, m), (m,), (1, m), (n, 1), ()]))
    return c, (n, k), (k, m)


@st.composite
def _linear_case(draw: Any) -> Case:
    """``linear(x, w[, b])``: x with 1-3 axes, PyTorch's ``(out, in)`` weight, bias or none."""
    lead = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    n_in, n_out = draw(st.integers(1, SIDE)), draw(st.integers(1, SIDE))
    with_bias = draw(st.booleans())
    shs = [(*lead, n_in), (n_out, n_in)] + ([(n_out,)] if with_bias else [])
    return Case(tuple(draw(float_arrays(sh)) for sh in shs))


# -- shape ops
def _reshape_params(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    s = shs[0]
    size = int(np.prod(s))
    return st.sampled_from([(size,), (-1,), tuple(reversed(s)), (*s, 1), (1, -1)]).map(
        lambda shape: {"shape": shape}
    )


def _perm_params(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.permutations(range(len(shs[0]))).map(lambda p: {"axes": tuple(p)})


@st.composite
def _broadcast_pair(draw: Any, reverse: bool) -> tuple[tuple[tuple[int, ...]], dict[str, Any]]:
    """(small,) and the shape it broadcasts to; ``reverse`` gives (big,) and small instead."""
    s1, s2 = draw(pair())
    big = tuple(np.broadcast_shapes(s1, s2))
    return ((s1,), {"shape": big}) if not reverse else ((big,), {"shape": s1})


@st.composite
def _shape_param_case(draw: Any, reverse: bool) -> Case:
    (shape,), params = draw(_broadcast_pair(reverse))
    return Case((draw(float_arrays(shape)),), params)


def _basic_index(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    return hnp.basic_indices(shs[0], allow_newaxis=True, allow_ellipsis=True).map(
        lambda i: {"index": i}
    )


def _repeated_rows(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    """An integer array on axis 0 with negatives and at least one repeated row."""
    n = shs[0][0]
    rows = st.lists(st.integers(-n, n - 1), min_size=1, max_size=6)
    return rows.map(lambda r: {"index": np.array([*r, r[0]])})


def _int_arrays_all_axes(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    idx = hnp.integer_array_indices(shs[0], result_shape=hnp.array_shapes(max_dims=2, max_side=4))
    return idx.map(lambda i: {"index": i})


def _mixed_index(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Slices, Ellipsis and None together with a repeated integer array on the last axis."""
    nd, n = len(shs[0]), shs[0][-1]
    arr = st.lists(st.integers(-n, n - 1), min_size=1, max_size=4).map(
        lambda r: np.array([*r, r[-1]])
    )
    forms = st.sampled_from(["slices", "ellipsis_none", "none_reversed"])
    return st.tuples(forms, arr).map(
        lambda fa: {
            "index": {
                "slices": (*[slice(None)] * (nd - 1), fa[1]),
                "ellipsis_none": (Ellipsis, None, fa[1]),
                "none_reversed": (None, slice(None, None, -1), Ellipsis, fa[1]),
            }[fa[0]]
        }
    )


def _mask(full: bool) -> Params:
    def make(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
        s = shs[0] if full else shs[0][:1]
        return hnp.arrays(np.bool_, s).map(lambda m: {"index": m})

    return make


@st.composite
def _concat_case(draw: Any, stack: bool) -> Case:
    nd = draw(st.integers(0 if stack else 1, DIMS - 1 if stack else DIMS))
    base = list(draw(shapes(min_dims=nd, max_dims=nd, max_side=SIDE)))
    count = draw(st.integers(1, 3))
    if stack:
        axis = draw(st.integers(-(nd + 1), nd))
        arrays = tuple(draw(float_arrays(tuple(base))) for _ in range(count))
    else:
        axis = draw(st.integers(-nd, nd - 1))
        arrays = tuple(
            draw(float_arrays((*base[: axis % nd], n, *base[axis % nd + 1 :])))
            for n in draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
        )
    return Case(arrays, {"axis": axis})


@st.composite
def _split_case(draw: Any, kind: str) -> Case:
    (shape,) = draw(one(min_dims=1))
    nd = len(shape)
    axis = draw(st.integers(-nd, nd - 1))
    length = shape[axis]
    if kind == "equal":
        sections: Any = draw(st.sampled_from([d for d in range(1, length + 1) if length % d == 0]))
    elif kind == "indices":
        sections = sorted(draw(st.lists(st.integers(0, length), max_size=3)))
    else:  # chunk
        sections = draw(st.integers(1, 4))
    return Case((draw(float_arrays(shape)),), {"sections": sections, "axis": axis})


@st.composite
def _where_case(draw: Any) -> Case:
    sc, sa, sb = draw(broadcastable_shapes(3, max_dims=DIMS, max_side=SIDE))
    a, b = draw(float_arrays(sa)), draw(float_arrays(sb))
    return Case((a, b), {"cond": draw(hnp.arrays(np.bool_, sc))})


def _softmax_axis(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    nd = len(shs[0])
    return st.integers(-nd, nd - 1).map(lambda a: {"axis": a})


def _xent_params(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    """A class axis and integer targets of the logits' shape without it."""
    shape = shs[0]

    @st.composite
    def draw_params(draw: Any) -> dict[str, Any]:
        axis = draw(st.integers(0, len(shape) - 1))
        rest = shape[:axis] + shape[axis + 1 :]
        targets = draw(hnp.arrays(np.intp, rest, elements=st.integers(0, shape[axis] - 1)))
        return {"targets": targets, "axis": axis}

    return draw_params()


def _xent_ignore_params(shs: tuple[tuple[int, ...], ...]) -> st.SearchStrategy[dict[str, Any]]:
    """``_xent_params`` with some targets set to an ``ignore_index`` (loss and gradient 0)."""
    shape = shs[0]

    @st.composite
    def draw_params(draw: Any) -> dict[str, Any]:
        axis = draw(st.integers(0, len(shape) - 1))
        rest = shape[:axis] + shape[axis + 1 :]
        ignore = draw(st.sampled_from([-100, -1, shape[axis]]))
        classes = st.integers(0, shape[axis] - 1)
        targets = draw(hnp.arrays(np.intp, rest, elements=st.one_of(classes, st.just(ignore))))
        return {"targets": targets, "axis": axis, "ignore_index": ignore}

    return draw_params()


@st.composite
def _special_exponent_case(draw: Any) -> Case:
    """Positive bases with exponents 0, 1, 2, -1, 0.5 exactly (special-cased in pow's rule)."""
    sa, sb = draw(pair())
    exponents = st.sampled_from([0.0, 1.0, 2.0, -1.0, 0.5])
    return Case(
        (
            draw(float_arrays(sa, min_value=0.5)),
            draw(hnp.arrays(np.float64, sb, elements=exponents)),
        )
    )


POSITIVE = {"min_value": 0.25}
AWAY_FROM_ZERO = {"min_magnitude": 0.5}

SPECS: list[OpSpec] = [
    # arithmetic (broadcasting)
    binary("add", lambda a, b: a + b, "add"),
    binary("sub", lambda a, b: a - b, "sub"),
    binary("mul", lambda a, b: a * b, "mul"),
    binary("div", lambda a, b: a / b, "div", {}, AWAY_FROM_ZERO),
    binary("pow[tensor**tensor]", lambda a, b: a**b, "pow", {"min_value": 0.5}, {"max_value": 2.0}),
    OpSpec("pow[tensor**special]", lambda a, b: a**b, _special_exponent_case(), ("pow",)),
    OpSpec("maximum", tg.maximum, _distinct_case(pair()), ("maximum",)),
    OpSpec("minimum", tg.minimum, _distinct_case(pair()), ("minimum",)),
    OpSpec("where", lambda a, b, cond: tg.where(cond, a, b), _where_case(), ("where",)),
    unary("neg", lambda x: -x, "neg"),
    unary("pow[**2]", lambda x: x**2, "pow"),
    unary("pow[**3]", lambda x: x**3, "pow"),
    unary("pow[**0.5]", lambda x: x**0.5, "pow", **POSITIVE),
    unary("pow[**-1]", lambda x: x**-1, "pow", **AWAY_FROM_ZERO),
    unary("pow[2.0**x]", lambda x: 2.0**x, "pow"),
    unary("sqrt", lambda x: x.sqrt(), "sqrt", **POSITIVE),
    # elementwise
    unary("exp", lambda x: x.exp(), "exp"),
    unary("log", lambda x: x.log(), "log", **POSITIVE),
    unary("log1p", lambda x: x.log1p(), "log1p", min_value=-0.75),
    unary("tanh", lambda x: x.tanh(), "tanh"),
    unary("softplus", lambda x: ops.softplus(x), "softplus", min_value=-30.0, max_value=30.0),
    unary("sigmoid", lambda x: x.sigmoid(), "sigmoid"),
    unary("relu", lambda x: x.relu(), "relu", avoid=(0.0,)),
    unary("abs", lambda x: x.abs(), "abs", avoid=(0.0,)),
    unary("clip[-1,1]", lambda x: x.clip(-1.0, 1.0), "clip", avoid=(-1.0, 1.0)),
    unary("clip[min]", lambda x: tg.clip(x, min=-0.5), "clip", avoid=(-0.5,)),
    unary("clip[max]", lambda x: tg.clip(x, max=0.5), "clip", avoid=(0.5,)),
    # matmul
    *(
        OpSpec(f"matmul[{k}]", lambda a, b: a @ b, _case(_matmul_shapes(k)), ("matmul",))
        for k in MATMUL_KINDS
    ),
    OpSpec("matmul[fn]", tg.matmul, _case(_matmul_shapes("batched")), ("matmul",)),
    OpSpec("addmm", ops.addmm, _case(_addmm_shapes()), ("addmm",)),
    OpSpec("linear", ops.linear, _linear_case(), ("linear",)),
    # values drawn past -2, where the sigmoid switches to its tail form
    OpSpec(
        "sigmoid[tail]",
        lambda x: x.sigmoid(),
        _case(one(), [{"min_value": -8.0, "max_value": 8.0}]),
        ("sigmoid",),
    ),
    # reductions
    *_reduction_specs(),
    OpSpec(
        "softmax",
        lambda x, axis: F.softmax(x, axis),
        _case(one(1), [{}], _softmax_axis),
        ("softmax",),
    ),
    OpSpec(
        "log_softmax",
        lambda x, axis: F.log_softmax(x, axis),
        _case(one(1), [{}], _softmax_axis),
        ("log_softmax",),
    ),
    OpSpec(
        "softmax_cross_entropy",
        ops.softmax_cross_entropy,
        _case(one(1), [{"min_value": -30.0, "max_value": 30.0}], _xent_params),
        ("softmax_cross_entropy",),
    ),
    OpSpec(  # the targets as the op's second input (how F.cross_entropy passes them)
        "softmax_cross_entropy[targets as input]",
        lambda x, targets, axis: ops.softmax_cross_entropy(x, targets, axis=axis),
        _case(one(1), [{"min_value": -30.0, "max_value": 30.0}], _xent_params),
        ("softmax_cross_entropy",),
    ),
    OpSpec(  # some targets ignored: their loss and gradient are 0 inside the op
        "softmax_cross_entropy[ignore_index]",
        ops.softmax_cross_entropy,
        _case(one(1), [{"min_value": -30.0, "max_value": 30.0}], _xent_ignore_params),
        ("softmax_cross_entropy",),
    ),
    OpSpec("astype", lambda x: ops.astype(x, x.dtype) * x, _case(one()), ("astype",)),
    # shape ops
    OpSpec(
        "reshape[*shape]",
        lambda x, shape: x.reshape(*shape),
        _case(one(), [{}], _reshape_params),
        ("reshape",),
    ),
    OpSpec(
        "reshape[tuple]",
        lambda x, shape: x.reshape(shape),
        _case(one(), [{}], _reshape_params),
        ("reshape",),
    ),
    OpSpec("reshape[fn]", tg.reshape, _case(one(), [{}], _reshape_params), ("reshape",)),
    unary("T", lambda x: x.T, "T"),
    unary("transpose[]", lambda x: x.transpose(), "transpose"),
    OpSpec(
        "transpose[*axes]",
        lambda x, axes: x.transpose(*axes),
        _case(one(), [{}], _perm_params),
        ("transpose",),
    ),
    OpSpec(
        "permute[tuple]",
        lambda x, axes: x.permute(axes),
        _case(one(), [{}], _perm_params),
        ("permute",),
    ),
    OpSpec("transpose[fn]", tg.transpose, _case(one(), [{}], _perm_params), ("transpose",)),
    OpSpec(
        "broadcast_to",
        lambda x, shape: x.broadcast_to(shape),
        _shape_param_case(False),
        ("broadcast_to",),
    ),
    OpSpec(
        "expand[*shape]",
        lambda x, shape: x.expand(*shape),
        _shape_param_case(False),
        ("expand",),
    ),
    OpSpec("broadcast_to[fn]", tg.broadcast_to, _shape_param_case(False), ("broadcast_to",)),
    OpSpec("sum_to", tg.sum_to, _shape_param_case(True), ("sum_to",)),
    OpSpec(
        "getitem[basic]", lambda x, index: x[index], _case(one(), [{}], _basic_index), ("getitem",)
    ),
    OpSpec(
        "getitem[int-array,repeats]",
        lambda x, index: x[index],
        _case(one(1), [{}], _repeated_rows),
        ("getitem",),
    ),
    OpSpec(
        "getitem[int-arrays,all-axes]",
        lambda x, index: x[index],
        _case(one(1), [{}], _int_arrays_all_axes),
        ("getitem",),
    ),
    OpSpec(
        "getitem[mixed]",
        lambda x, index: x[index],
        _case(one(2), [{}], _mixed_index),
        ("getitem",),
    ),
    OpSpec(
        "getitem[bool-mask]",
        lambda x, index: x[index],
        _case(one(), [{}], _mask(full=True)),
        ("getitem",),
    ),
    OpSpec(
        "getitem[bool-rows]",
        lambda x, index: x[index],
        _case(one(1), [{}], _mask(full=False)),
        ("getitem",),
    ),
    OpSpec(
        "getitem[list]",
        lambda x, index: x[list(index)],
        _case(one(1), [{}], _repeated_rows),
        ("getitem",),
    ),
    OpSpec(
        "getitem[multi-use]",  # sparse and dense gradients of one input add up
        lambda x, index: (x[index], x[index].tanh(), x * 3.0, x[::-1], x),
        _case(one(1), [{}], _repeated_rows),
        ("getitem",),
    ),
    OpSpec("concat", lambda *xs, axis: tg.concat(xs, axis), _concat_case(False), ("concat",)),
    OpSpec("stack", lambda *xs, axis: tg.stack(xs, axis), _concat_case(True), ("stack",)),
    OpSpec(
        "split[equal]",
        lambda x, sections, axis: x.split(sections, axis),
        _split_case("equal"),
        ("split",),
    ),
    OpSpec(
        "split[indices]",
        lambda x, sections, axis: tg.split(x, sections, axis),
        _split_case("indices"),
        ("split",),
    ),
    OpSpec(
        "chunk",
        lambda x, sections, axis: x.chunk(sections, axis),
        _split_case("chunk"),
        ("chunk",),
    ),
]

REQUIRED = {
    *"add sub mul div neg pow matmul exp log log1p tanh sigmoid softplus relu abs clip".split(),
    *"maximum minimum where sum mean max min logsumexp softmax log_softmax sqrt".split(),
    *"reshape transpose permute T broadcast_to expand sum_to getitem".split(),
    *"concat stack split chunk".split(),
    *"addmm linear softmax_cross_entropy astype".split(),
}


def test_registry_covers_every_public_op() -> None:
    covered = {c for spec in SPECS for c in spec.covers}
    assert REQUIRED <= covered, f"ops without a spec: {sorted(REQUIRED - covered)}"
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names))


# ------------------------------------------------------------------------- helpers
def _leaves(case: Case, dtype: Any = np.float64) -> list[Tensor]:
    return [Tensor(a.astype(dtype), requires_grad=True) for a in case.arrays]


def _outs(result: Any) -> list[Tensor]:
    return [result] if isinstance(result, Tensor) else list(result)


def _call(spec: OpSpec, case: Case) -> Callable[..., Any]:
    return lambda *xs: spec.fn(*xs, **case.params)


def _recorded_arrays(roots: Sequence[Tensor]) -> list[np.ndarray]:
    """Every array saved by every node reachable from ``roots`` (the recorded graph)."""
    seen: set[int] = set()
    stack = list(roots)
    found: list[np.ndarray] = []
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        found.append(np.asarray(t.data))
        node = t._node
        if node is not None and node.inputs is not None:
            found.extend(np.asarray(a) for a in node.arrays or ())
            stack.extend(p for p in node.inputs if p is not None)
    return found


ids = [s.name for s in SPECS]
SECOND = [s for s in SPECS if s.second_order]


# ---------------------------------------------------------------- a. first order
@pytest.mark.parametrize("spec", SPECS, ids=ids)
@given(data=st.data())
def test_first_derivatives_match_finite_differences(spec: OpSpec, data: st.DataObject) -> None:
    case = data.draw(spec.cases, label="case")
    xs = _leaves(case)
    assert tg.gradcheck(_call(spec, case), xs)
    # The create_graph backward (rules run on Tensors) must give the same, FD-checked,
    # first derivative: gradgradcheck alone cannot see its value for linear ops.
    outs = _outs(spec.fn(*xs, **case.params))
    rng = np.random.default_rng(0)
    gs = [np.asarray(rng.standard_normal(o.shape)) for o in outs]
    plain = tg.grad(outs, xs, grad_outputs=gs, retain_graph=True, allow_unused=True)
    recorded = tg.grad(outs, xs, grad_outputs=gs, create_graph=True, allow_unused=True)
    for p, r in zip(plain, recorded):
        assert (p is None) == (r is None)
        if p is not None and r is not None:
            # atol: an entry such as softmax - onehot = (1 - 1e-9) - 1 is known only to a few
            # ulps of 1, times |g| (up to ~4): 1e-15 was seen exceeded by 1.2e-15.
            np.testing.assert_allclose(r.data, p.data, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------- b. second order
@pytest.mark.parametrize("spec", SECOND, ids=[s.name for s in SECOND])
@settings(max_examples=SECOND_ORDER_EXAMPLES)
@given(data=st.data())
def test_second_derivatives_match_finite_differences(spec: OpSpec, data: st.DataObject) -> None:
    case = data.draw(spec.cases, label="case")
    assert tg.gradgradcheck(_call(spec, case), _leaves(case))


# ---------------------------------------------------------------- c. linearity
@pytest.mark.parametrize("spec", SPECS, ids=ids)
@given(
    data=st.data(),
    alpha=st.floats(-2, 2),
    beta=st.floats(-2, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_backward_is_linear_in_the_upstream_gradient(
    spec: OpSpec, data: st.DataObject, alpha: float, beta: float, seed: int
) -> None:
    case = data.draw(spec.cases, label="case")
    xs = _leaves(case)
    outs = _outs(spec.fn(*xs, **case.params))
    rng = np.random.default_rng(seed)
    g1 = [np.asarray(rng.standard_normal(o.shape)) for o in outs]
    g2 = [np.asarray(rng.standard_normal(o.shape)) for o in outs]

    def vjp(gs: list[np.ndarray]) -> list[np.ndarray]:
        res = tg.grad(outs, xs, grad_outputs=gs, retain_graph=True, allow_unused=True)
        return [np.zeros(x.shape) if r is None else np.asarray(r.data) for x, r in zip(xs, res)]

    combined = vjp([alpha * a + beta * b for a, b in zip(g1, g2)])
    v1, v2 = vjp(g1), vjp(g2)
    for c, a, b in zip(combined, v1, v2):
        np.testing.assert_allclose(c, alpha * a + beta * b, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ e. float32
@pytest.mark.parametrize("spec", SPECS, ids=ids)
@settings(max_examples=10)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_float32_stays_float32(spec: OpSpec, data: st.DataObject, seed: int) -> None:
    case = data.draw(spec.cases, label="case")
    xs = _leaves(case, np.float32)
    outs = _outs(spec.fn(*xs, **case.params))
    assert [o.dtype for o in outs] == [np.float32] * len(outs)
    rng = np.random.default_rng(seed)
    loss = sum(
        ((o * rng.standard_normal(o.shape).astype(np.float32)).sum() for o in outs),
        start=Tensor(np.float32(0)),
    )
    assert loss.dtype == np.float32
    grads = tg.grad(loss, xs, create_graph=True, allow_unused=True)
    recorded = _recorded_arrays([g for g in grads if g is not None])
    upcast = {a.dtype for a in recorded if a.dtype.kind == "f" and a.dtype != np.float32}
    assert not upcast, f"create_graph backward recorded {upcast} arrays"
    loss.backward()
    for x in xs:
        assert x.grad is not None and x.grad.dtype == np.float32


SCALAR_FORMS: list[tuple[str, Callable[[Tensor, Any], Tensor]]] = [
    ("x+s", lambda x, s: x + s),
    ("s+x", lambda x, s: s + x),
    ("x-s", lambda x, s: x - s),
    ("s-x", lambda x, s: s - x),
    ("x*s", lambda x, s: x * s),
    ("s*x", lambda x, s: s * x),
    ("x/s", lambda x, s: x / s),
    ("s/x", lambda x, s: s / x),
    ("x**s", lambda x, s: x**s),
    ("s**x", lambda x, s: s**x),
    ("maximum(x,s)", lambda x, s: tg.maximum(x, s)),
    ("maximum(s,x)", lambda x, s: tg.maximum(s, x)),
    ("minimum(x,s)", lambda x, s: tg.minimum(x, s)),
    ("minimum(s,x)", lambda x, s: tg.minimum(s, x)),
    ("where(c,x,s)", lambda x, s: tg.where(x.data > 1, x, s)),
    ("where(c,s,x)", lambda x, s: tg.where(x.data > 1, s, x)),
    ("clip(x,float)", lambda x, s: x.clip(float(s) - 1, float(s))),
]


@pytest.mark.parametrize("form", SCALAR_FORMS, ids=[f[0] for f in SCALAR_FORMS])
@pytest.mark.parametrize("scalar", [1.5, np.float64(1.5), 2], ids=["float", "np.float64", "int"])
@settings(max_examples=5)
@given(x=float_arrays(shapes(max_dims=2, max_side=SIDE), np.float32, min_value=0.5, max_value=2))
def test_float32_survives_scalar_operands(
    form: tuple[str, Callable[[Tensor, Any], Tensor]], scalar: Any, x: np.ndarray
) -> None:
    t = Tensor(x, requires_grad=True)
    out = form[1](t, scalar)
    assert out.dtype == np.float32
    (g,) = tg.grad(out.sum(), [t], create_graph=True)
    upcast = {a.dtype for a in _recorded_arrays([g]) if a.dtype != np.float32}
    assert not upcast
    out.sum().backward()
    assert t.grad is not None and t.grad.dtype == np.float32


# ---------------------------------------------- d. array path == Tensor path
@dataclass(frozen=True)
class PrimCase:
    prim: Primitive
    cases: st.SearchStrategy[Case]


def _params(**fixed: Any) -> Params:
    return lambda shs: st.just(dict(fixed))


@st.composite
def _scatter_case(draw: Any) -> Case:
    (shape,) = draw(one(1))
    index = draw(_repeated_rows((shape,)))["index"]
    g = draw(float_arrays(np.zeros(shape)[index].shape))
    return Case((g,), {"shape": shape, "index": index})


def _reduction_case(distinct: bool) -> st.SearchStrategy[Case]:
    shape_st = one(0)
    return (
        _distinct_case(shape_st, _axis_params("None"))
        | _distinct_case(one(1), _axis_params("tuple"))
        if distinct
        else _case(shape_st, [{}], _axis_params("None"))
        | _case(one(1), [{}], _axis_params("tuple"))
    )


PRIM_CASES: list[PrimCase] = [
    PrimCase(ops.add, _case(pair())),
    PrimCase(ops.sub, _case(pair())),
    PrimCase(ops.mul, _case(pair())),
    PrimCase(ops.div, _case(pair(), [{}, AWAY_FROM_ZERO])),
    PrimCase(ops.pow, _case(pair(), [{"min_value": 0.5}, {}])),
    PrimCase(ops.neg, _case(one())),
    *(PrimCase(ops.matmul, _case(_matmul_shapes(k))) for k in MATMUL_KINDS),
    PrimCase(ops.addmm, _case(_addmm_shapes())),
    PrimCase(ops.linear, _linear_case()),
    PrimCase(ops.sigmoid, _case(one(), [{"min_value": -8.0, "max_value": 8.0}])),
    PrimCase(ops.softmax_cross_entropy, _case(one(1), [{}], _xent_params)),
    PrimCase(ops.softmax_cross_entropy, _case(one(1), [{}], _xent_ignore_params)),
    PrimCase(ops.exp, _case(one())),
    PrimCase(ops.log, _case(one(), [POSITIVE])),
    PrimCase(ops.log1p, _case(one(), [{"min_value": -0.75}])),
    PrimCase(ops.tanh, _case(one())),
    PrimCase(ops.softplus, _case(one(), [{"min_value": -30.0, "max_value": 30.0}])),
    PrimCase(ops.sigmoid, _case(one())),
    PrimCase(ops.relu, _case(one(), [{"avoid": (0.0,)}])),
    PrimCase(ops.abs, _case(one(), [{"avoid": (0.0,)}])),
    PrimCase(ops._clip, _case(one(), [{}], _params(lo=-1.0, hi=1.0))),
    PrimCase(ops.maximum, _case(pair())),  # ties included: both paths must split alike
    PrimCase(ops._where, _where_case()),
    PrimCase(ops._sum, _reduction_case(False)),
    PrimCase(ops._max, _case(one(1), [{}], _axis_params("tuple"))),  # ties on purpose
    PrimCase(ops._argmax, _case(one(1), [{}], _axis_params("int"))),
    PrimCase(ops._argmin, _case(one(), [{}], _axis_params("None"))),
    PrimCase(ops._logsumexp, _reduction_case(False)),
    PrimCase(ops._reshape, _case(one(), [{}], _reshape_params)),
    PrimCase(ops._transpose, _case(one(), [{}], _perm_params)),
    PrimCase(ops._broadcast_to, _shape_param_case(False)),
    PrimCase(ops._sum_to, _shape_param_case(True)),
    PrimCase(ops._getitem, _case(one(1), [{}], _repeated_rows)),
    PrimCase(ops._getitem, _case(one(), [{}], _basic_index)),
    PrimCase(ops._getitem, _case(one(), [{}], _mask(full=True))),
    PrimCase(ops._scatter, _scatter_case()),
    PrimCase(ops._concat, _concat_case(False)),
    PrimCase(ops._stack, _concat_case(True)),
    PrimCase(ops._astype, _case(one(), [{}], _params(dtype=np.dtype(np.float64)))),
]


def _each_case(cases: list[PrimCase]) -> Any:
    """Parametrize a test over ``cases`` as ``pc``, with ids "op-index"."""
    return pytest.mark.parametrize(
        "pc", cases, ids=[f"{c.prim.name}-{k}" for k, c in enumerate(cases)]
    )


def test_every_primitive_has_a_path_agreement_case() -> None:
    prims = {v.name for v in vars(ops).values() if isinstance(v, Primitive) and not v.nondiff}
    assert prims == {c.prim.name for c in PRIM_CASES}
    # The ops without rules are the comparisons, tested on their own below.
    nondiff = {v.name for v in vars(ops).values() if isinstance(v, Primitive) and v.nondiff}
    assert nondiff == {c[1].__name__ for c in COMPARISONS}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@_each_case(PRIM_CASES)
@settings(max_examples=15)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_rule_on_arrays_equals_rule_on_tensors(
    pc: PrimCase, dtype: Any, data: st.DataObject, seed: int
) -> None:
    case = data.draw(pc.cases, label="case")
    prim, params = pc.prim, case.params
    arrays = tuple(a.astype(dtype) for a in case.arrays)
    ans = prim.forward(*arrays, **params)
    g = np.asarray(np.random.default_rng(seed).standard_normal(np.shape(ans))).astype(dtype)
    tensors = tuple(Tensor(a, requires_grad=True) for a in arrays)
    ans_t = prim(*tensors, **params)
    np.testing.assert_array_equal(ans_t.data, ans)
    for i, a in enumerate(arrays):
        on_arrays = prim.vjp(i, g, ans, arrays, params)
        on_tensors = prim.vjp(i, Tensor(g), ans_t, tensors, params)
        assert isinstance(on_tensors, Tensor)
        assert np.shape(on_arrays) == a.shape == on_tensors.shape
        assert np.asarray(on_arrays).dtype == dtype == on_tensors.dtype
        np.testing.assert_allclose(on_tensors.data, on_arrays, rtol=1e-12, atol=0)


ACCUMULATING = [c for c in PRIM_CASES if getattr(c.prim, "accumulate", None) is not None]


@_each_case(ACCUMULATING)
@settings(max_examples=15)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_in_place_rule_adds_what_the_rule_returns(
    pc: PrimCase, data: st.DataObject, seed: int
) -> None:
    """``Primitive.accumulate`` (the engine's in-place fast path) adds exactly ``vjp(0, ...)``."""
    case = data.draw(pc.cases, label="case")
    prim, params, arrays = pc.prim, case.params, case.arrays
    rng = np.random.default_rng(seed)
    ans = prim.forward(*arrays, **params)
    g = np.asarray(rng.standard_normal(np.shape(ans)))
    before = rng.standard_normal(arrays[0].shape)
    buf = before.copy()
    prim.accumulate(buf, g, *arrays, **params)
    expected = before + prim.vjp(0, g, ans, arrays, params)
    np.testing.assert_allclose(buf, expected, rtol=1e-12, atol=1e-14)  # summation order


SAVING = [c for c in PRIM_CASES if getattr(c.prim, "saving", None) is not None]


@_each_case(SAVING)
@settings(max_examples=15)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_a_saving_forward_gives_the_forward_and_its_residual_the_same_gradient(
    pc: PrimCase, data: st.DataObject, seed: int
) -> None:
    """``Primitive.saving`` returns what ``forward`` returns, and the array forms given its
    residual add what they add without it (which recomputes, and is checked above)."""
    case = data.draw(pc.cases, label="case")
    prim, params, arrays = pc.prim, case.params, case.arrays
    rng = np.random.default_rng(seed)
    ans, residual = prim.saving(*arrays, **params)
    np.testing.assert_array_equal(ans, prim.forward(*arrays, **params))
    assert residual is not None
    g = np.asarray(rng.standard_normal(np.shape(ans)))
    before = rng.standard_normal(arrays[0].shape)
    with_residual, without = before.copy(), before.copy()
    prim.accumulate(with_residual, g, *arrays, **params, residual=residual)
    prim.accumulate(without, g, *arrays, **params)
    np.testing.assert_allclose(with_residual, without, rtol=1e-12, atol=1e-14)
    # An eager node keeps the residual for the backward pass.
    tensors = [Tensor(a, requires_grad=True) if a.dtype.kind == "f" else a for a in arrays]
    out = prim(*tensors, **params)
    assert out._node is not None
    np.testing.assert_array_equal(out._node.params["residual"], residual)


ALL_AT_ONCE = [c for c in PRIM_CASES if getattr(c.prim, "vjp_all", None) is not None]


@_each_case(ALL_AT_ONCE)
@settings(max_examples=15)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_all_at_once_rule_gives_what_each_rule_gives(
    pc: PrimCase, data: st.DataObject, seed: int
) -> None:
    """``Primitive.vjp_all`` (a variadic op's fast form) equals ``vjp(i, ...)`` for every i."""
    case = data.draw(pc.cases, label="case")
    prim, params, arrays = pc.prim, case.params, case.arrays
    ans = prim.forward(*arrays, **params)
    g = np.asarray(np.random.default_rng(seed).standard_normal(np.shape(ans)))
    every = prim.vjp_all(g, ans, arrays, **params)
    assert len(every) == len(arrays)
    for i, got in enumerate(every):
        want = prim.vjp(i, g, ans, arrays, params)
        assert isinstance(got, np.ndarray) and got.shape == np.shape(want)
        np.testing.assert_array_equal(got, want)


def test_stack_of_many_small_arrays_equals_numpys_stack() -> None:
    rng = np.random.default_rng(0)
    for shape, axis in [((1, 5), 0), ((3,), 0), ((2, 3), 1), ((2, 3), -1)]:
        xs = [rng.standard_normal(shape) for _ in range(7)]
        np.testing.assert_array_equal(ops._stack(*xs, axis=axis), np.stack(xs, axis=axis))


# ------------------------------------------------------------- specific checks
@given(
    shape=shapes(min_dims=1, max_dims=3, max_side=SIDE),
    data=st.data(),
)
def test_repeated_integer_indices_accumulate(shape: tuple[int, ...], data: st.DataObject) -> None:
    n = shape[0]
    rows = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=8), label="rows")
    x = Tensor(data.draw(float_arrays(shape)), requires_grad=True)
    g = data.draw(float_arrays((len(rows), *shape[1:])), label="g")
    x[rows].backward(g)
    expected = np.zeros(shape)
    for k, r in enumerate(rows):  # one row at a time: each pick adds its share
        expected[r] += g[k]
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-15, atol=0)


def test_repeated_index_gradient_counts_each_pick() -> None:
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    x[[0, 0, 1]].sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.data, [[2, 2], [1, 1], [0, 0]])
    y = Tensor(np.arange(4.0), requires_grad=True)
    y[np.array([-1, 3, 0, -4])].sum().backward()  # -1 is 3, -4 is 0
    assert y.grad is not None
    np.testing.assert_array_equal(y.grad.data, [2, 0, 0, 2])


@given(
    data=st.data(),
    shape=shapes(min_dims=1, max_dims=3, max_side=SIDE),
)
def test_boolean_mask_gradient_scatters_back(data: st.DataObject, shape: tuple[int, ...]) -> None:
    mask = data.draw(hnp.arrays(np.bool_, shape), label="mask")
    x = Tensor(data.draw(float_arrays(shape)), requires_grad=True)
    g = data.draw(float_arrays((int(mask.sum()),)), label="g")
    x[mask].backward(g)
    expected = np.zeros(shape)
    expected[mask] = g
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.data, expected)


COMPARISONS = [
    ("<", np.less, lambda a, b: a < b),
    ("<=", np.less_equal, lambda a, b: a <= b),
    (">", np.greater, lambda a, b: a > b),
    (">=", np.greater_equal, lambda a, b: a >= b),
    ("==", np.equal, lambda a, b: a == b),
    ("!=", np.not_equal, lambda a, b: a != b),
]


@pytest.mark.parametrize("cmp", COMPARISONS, ids=[c[0] for c in COMPARISONS])
@given(data=st.data())
def test_comparisons_return_bool_tensors_without_grad(cmp: Any, data: st.DataObject) -> None:
    sa, sb = data.draw(pair(), label="shapes")
    # few distinct values, so equality actually happens
    a = data.draw(hnp.arrays(np.float64, sa, elements=st.sampled_from([-1.0, 0.0, 0.5])))
    b = data.draw(hnp.arrays(np.float64, sb, elements=st.sampled_from([-1.0, 0.0, 0.5])))
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    for other, other_np in ((y, b), (0.5, 0.5), (b, b)):
        r = cmp[2](x, other)
        assert isinstance(r, Tensor)
        assert r.dtype == np.bool_
        assert not r.requires_grad and r.is_leaf
        np.testing.assert_array_equal(r.data, cmp[1](a, other_np))


def test_where_cond_broadcasts_beyond_both_branches() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = Tensor(np.array(10.0), requires_grad=True)
    cond = np.array([[True, False, True], [False, False, True]])
    out = tg.where(cond, x, y)
    np.testing.assert_array_equal(out.data, np.where(cond, x.data, y.data))
    out.backward(np.ones((2, 3)))
    assert x.grad is not None and y.grad is not None
    np.testing.assert_array_equal(x.grad.data, cond.sum(axis=0))
    np.testing.assert_array_equal(y.grad.data, (~cond).sum())


def test_ties_share_the_gradient() -> None:
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 3.0]), requires_grad=True)
    tg.maximum(a, b).sum().backward()
    assert a.grad is not None and b.grad is not None
    np.testing.assert_array_equal(a.grad.data, [0.5, 0.0])
    np.testing.assert_array_equal(b.grad.data, [0.5, 1.0])


# ------------------------------------------- regressions of bugs found by this file
def test_transpose_with_negative_axes() -> None:
    """Once the inverse permutation argsorted negative axes as given (wrong shape)."""
    x = Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    assert tg.gradcheck(lambda t: t.permute(0, -1, 1), [x])
    assert tg.gradcheck(lambda t: tg.transpose(t, (-1, -3, -2)), [x])


def test_gradcheck_does_not_hide_failures_behind_a_nan() -> None:
    """Once np.max(err) was NaN when one numeric entry was NaN, and every failure passed."""
    wrong = Primitive("wrong", lambda a: 3 * a, lambda g, ans, a: 2 * g)  # true derivative: 3

    def fn(t: Tensor) -> Tensor:
        return wrong(t[0:1]).sum() + t[1:2].log().sum()  # log(1e-7 - eps) is NaN

    x = Tensor(np.array([1.0, 1e-7]), requires_grad=True)
    with np.errstate(invalid="ignore"):
        assert not tg.gradcheck(fn, [x], raise_exception=False)
        with pytest.raises(tg.GradcheckError):
            tg.gradcheck(fn, [x])


def test_clip_with_numpy_float64_bounds_keeps_float32() -> None:
    """Once np.clip got np.float64 bounds, which upcast a float32 tensor."""
    x = Tensor(np.array([-2.0, 0.0, 2.0], np.float32), requires_grad=True)
    out = x.clip(np.float64(-1), np.float64(1))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.data, [-1, 0, 1])


def test_accumulated_gradient_of_a_0d_leaf_is_an_ndarray() -> None:
    """Once the sum of two 0-d gradients became a numpy scalar in ``.grad.data``."""
    a = Tensor(1.0, requires_grad=True)
    (a * 2.0).backward()
    assert a.grad is not None and isinstance(a.grad.data, np.ndarray)
    (a * 2.0).backward()
    assert a.grad.data == 4.0
    assert isinstance(a.grad.data, np.ndarray)


def test_empty_list_index_selects_nothing() -> None:
    """Once ``np.asarray([])`` (float64) made ``x[[]]`` an IndexError."""
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    y = x[[]]
    assert y.shape == (0, 2)
    (y.sum() + x.sum()).backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.data, np.ones((3, 2)))


def test_transpose_rejects_out_of_range_axes() -> None:
    """Once ``a % ndim`` let axis 3 of a 2-D tensor wrap silently to axis 1."""
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    for axes in [(0, 3), (2, 3), (-3, 0)]:
        with pytest.raises(ValueError):
            x.transpose(*axes)


def test_pow_zero_exponent_gradient_at_zero_base() -> None:
    """Once ``0 * 0**-1`` gave NaN and a divide-by-zero warning for d(x**0)/dx at x = 0."""
    x = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x**0).sum().backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_logsumexp_of_an_all_minus_inf_slice() -> None:
    """Once ``np.log(0)`` warned for an all -inf slice (fully masked logits)."""
    x = Tensor(np.array([[-np.inf, -np.inf], [0.0, -np.inf]]))
    np.testing.assert_array_equal(tg.logsumexp(x, axis=1).data, [-np.inf, 0.0])


def test_chunk_of_an_empty_axis() -> None:
    """Once ``range(0, 0, 0)`` raised 'range() arg 3 must not be zero'."""
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    pieces = x.chunk(2)
    assert tg.concat(pieces).shape == (0, 3)


def test_reductions_of_a_0d_tensor_accept_axis_minus_one() -> None:
    """Once axis 0 but not axis -1 was accepted for a 0-d tensor (numpy takes both)."""
    x = Tensor(2.0, requires_grad=True)
    assert x.sum(axis=0).item() == np.sum(np.float64(2.0), axis=0)
    assert x.sum(axis=-1).item() == np.sum(np.array(2.0), axis=-1)
    assert tg.logsumexp(x).item() == 2.0


def test_pow_mixed_second_derivative_at_zero_exponent() -> None:
    """Once the x**0 fix shifted the exponent wherever y == 0 (not only where x == 0 too),
    which made d2(x**y)/dxdy equal g instead of g/x at y = 0."""
    x, y = Tensor(2.0, requires_grad=True), Tensor(0.0, requires_grad=True)
    (gx,) = tg.grad(x**y, [x], create_graph=True)
    (d2,) = tg.grad(gx, [y])
    assert d2 is not None
    assert d2.item() == pytest.approx(0.5)  # d/dy [y x**(y-1)] = x**(y-1) (1 + y log x) = 1/x
    xs = [Tensor(2.0, requires_grad=True), Tensor(0.0, requires_grad=True)]
    assert tg.gradgradcheck(lambda a, b: a**b, xs)


# ---------------------------------------------- d(0**y)/dy = 0 for y > 0 (was NaN)
def test_pow_exponent_gradient_at_zero_base() -> None:
    y = Tensor(np.array([2.0, 0.5]), requires_grad=True)
    (0.0**y).sum().backward()
    assert y.grad is not None
    np.testing.assert_array_equal(y.grad.data, [0.0, 0.0])


def test_a_saved_residual_goes_with_the_backward_pass_unless_the_graph_is_retained() -> None:
    """The softmax a cross-entropy node keeps is dropped by ``backward()`` (the loss may
    outlive it), kept by ``retain_graph=True``, and a second pass then gives the same
    gradient (the residual is read, not overwritten)."""
    rng = np.random.default_rng(0)
    logits = Tensor(rng.standard_normal((6, 5)), requires_grad=True)
    targets = rng.integers(0, 5, 6)
    loss = ops.softmax_cross_entropy(logits, targets=targets, axis=1).sum()
    node = loss._node.inputs[0]._node  # type: ignore[union-attr,index]
    assert "residual" in node.params
    loss.backward(retain_graph=True)
    first = logits.grad.data.copy()  # type: ignore[union-attr]
    assert "residual" in node.params
    logits.grad = None
    loss.backward()
    np.testing.assert_array_equal(logits.grad.data, first)  # type: ignore[union-attr]
    assert "residual" not in node.params and node.params["axis"] == 1
    p = np.exp(logits.data - logits.data.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(6), targets] -= 1
    np.testing.assert_allclose(first, p, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("targets", "ignore_index", "message"),
    [
        ([0, 3, 1], None, r"\[0, 3\]"),
        ([0, -1, 1], None, r"\[-1, 1\]"),
        ([0, -1, 1], -100, r"\[-1, 1\]"),
        ([0, 3, -100], -100, r"\[0, 3\]"),
    ],
)
def test_softmax_cross_entropy_refuses_targets_outside_the_classes(
    targets: list[int], ignore_index: int | None, message: str
) -> None:
    """Out-of-range targets raise an IndexError naming the op and the values, whatever
    ``ignore_index`` is (targets equal to it are the only ones left out of the check)."""
    logits = tg.Tensor(np.zeros((3, 3)))
    within = r"softmax_cross_entropy: targets must lie in \[0, 3\), got values in "
    with pytest.raises(IndexError, match=within + message):
        ops.softmax_cross_entropy(
            logits, targets=np.array(targets), axis=1, ignore_index=ignore_index
        )


@pytest.mark.parametrize("ignore_index", [None, -100, 0, 2, 5])
def test_softmax_cross_entropy_with_ignore_index_is_the_masked_log_softmax(
    ignore_index: int | None,
) -> None:
    """The loss per row is ``-log softmax[target]`` (numpy, float64), 0 where the target
    is ``ignore_index`` (a class index too: 0, 2), and its gradient is
    ``softmax - onehot`` on the other rows only."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)) * 3
    t = np.array([0, 2, 1, 3, 2, 0])
    logits = tg.Tensor(x, requires_grad=True)
    loss = ops.softmax_cross_entropy(logits, targets=t, axis=1, ignore_index=ignore_index)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    keep = np.ones(6) if ignore_index is None else (t != ignore_index).astype(float)
    np.testing.assert_allclose(loss.data, -np.log(p[np.arange(6), t]) * keep, rtol=1e-12)
    loss.sum().backward()
    want = (p - np.eye(4)[t]) * keep[:, None]
    assert logits.grad is not None
    np.testing.assert_allclose(logits.grad.data, want, rtol=1e-12, atol=1e-15)
