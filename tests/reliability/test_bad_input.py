"""Bad input everywhere a user can reach: the right error class, a message that says what was
expected, and nothing the caller passed in is ever modified.

Error classes (the contract, also in ``docs/reliability.md``):

* ``TypeError``: an argument of the wrong kind (a string where a number goes, a float dtype
  where integers go, a Tensor of another dtype than the module's parameters);
* ``ValueError``: the right kind but a wrong value (shapes, sizes, ranges, empty sequences,
  unknown ``reduction``/``nonlinearity``, out-of-range ``axis``);
  ``nn.StateDictError`` (missing/unexpected keys) is both a ``ValueError`` and a ``KeyError``;
* ``IndexError``: an index or class target out of range (``x[5]``, ``targets`` outside
  ``[0, K)``, embedding indices);
* ``RuntimeError``: only for misuse of the backward pass, as in PyTorch (backward of a
  non-scalar without a gradient, of a tensor without a graph, through a freed graph;
  ``requires_grad_`` on a non-leaf; ``clip_grad_norm_(error_if_nonfinite=True)``);
* ``FileNotFoundError``: ``load`` of a path that does not exist.

NaN: a NaN anywhere in the inputs, states or targets propagates (loss and gradients are NaN)
without an exception or a warning; an optimizer step then writes NaN into the parameters.
``tinygrad_rnn.detect_anomaly()`` is the tool that stops at the first NaN. ±inf inputs give
inf/NaN results and may emit numpy's ``RuntimeWarning`` ("invalid value"), never an exception.

Bugs found while writing these tests are the tests at the end: an open one is marked
``xfail(strict=True)`` and its reason says what is wrong and where to fix it; a fixed one has
lost its marker and stays as a regression test.
"""

from __future__ import annotations

import copy
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim
from tinygrad_rnn.tensor import Tensor

F64 = np.float64
B, D, H, K, T = 2, 3, 4, 5, 6


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _x(*shape: int) -> Tensor:
    return Tensor(np.ones(shape or (2, 3)), requires_grad=True)


def _lin() -> nn.Linear:
    return nn.Linear(2, 3, dtype=F64, rng=_rng())


def _cell(cls: Any) -> Any:
    return cls(D, H, dtype=F64, rng=_rng())


def _layer(cls: Any, **kwargs: Any) -> Any:
    return cls(D, H, dtype=F64, rng=_rng(), **kwargs)


def _case(call: Callable[[], Any], error: type[BaseException], match: str, id: str) -> Any:
    return pytest.param(call, error, match, id=id)


def _check(call: Callable[[], Any], error: type[BaseException], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------------------------
# Tensor construction
# --------------------------------------------------------------------------------------------

TENSOR_CASES = [
    _case(lambda: Tensor(None), TypeError, r"Tensor: data must be numeric", "none"),
    _case(lambda: Tensor({}), TypeError, r"Tensor: data must be numeric", "dict"),
    _case(lambda: Tensor(object()), TypeError, r"Tensor: data must be numeric", "object"),
    _case(
        lambda: Tensor([[1.0], [1.0, 2.0]]),
        TypeError,
        r"Tensor: cannot make an array from list",
        "ragged",
    ),
    _case(lambda: Tensor(1.0, dtype="foo"), TypeError, r"Tensor: .*'foo'", "unknown_dtype"),
    _case(lambda: Tensor(1.0, dtype=object), TypeError, r"Tensor: data must be numeric", "obj"),
    _case(
        lambda: Tensor(np.arange(3), requires_grad=True),
        TypeError,
        r"Tensor: only floating-point tensors can require grad, got dtype int64",
        "int_requires_grad",
    ),
    _case(
        lambda: Tensor(1j, requires_grad=True),
        TypeError,
        r"floating-point.*complex128",
        "complex_requires_grad",
    ),
    _case(
        lambda: Tensor([True], requires_grad=True),
        TypeError,
        r"floating-point.*bool",
        "bool_requires_grad",
    ),
    _case(lambda: Tensor(1.0, bogus=1), TypeError, r"bogus", "unknown_keyword"),
    _case(
        lambda: Tensor(np.arange(3)).requires_grad_(),
        TypeError,
        r"requires_grad_: only floating-point tensors can require grad, got int64",
        "requires_grad_int",
    ),
    _case(lambda: _x().item(), ValueError, r"item: only a tensor with one element", "item"),
    _case(lambda: bool(_x()), ValueError, r"truth value of a tensor of shape \(2, 3\)", "bool"),
    _case(lambda: len(Tensor(1.0)), TypeError, r"len\(\) of a 0-d tensor", "len_0d"),
    _case(
        lambda: nn.Parameter(np.arange(3)),
        TypeError,
        r"only floating-point tensors can require grad",
        "int_parameter",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), TENSOR_CASES)
def test_tensor_construction(call: Any, error: Any, match: str) -> None:
    _check(call, error, match)


# --------------------------------------------------------------------------------------------
# Ops and Tensor methods
# --------------------------------------------------------------------------------------------

OP_CASES = [
    _case(
        lambda: _x() + Tensor(np.ones(4)),
        ValueError,
        r"add: .*broadcast.*\(input shapes \(2, 3\), \(4,\)\)",
        "add_shapes",
    ),
    _case(lambda: _x() * None, TypeError, r"^mul: ", "mul_none"),
    _case(lambda: _x() - {}, TypeError, r"^sub: ", "sub_dict"),
    _case(
        lambda: _x() @ Tensor(np.ones((2, 2))),
        ValueError,
        r"matmul: inner dimensions differ: \(2, 3\) @ \(2, 2\)",
        "matmul_inner",
    ),
    _case(
        lambda: _x() @ Tensor(1.0),
        ValueError,
        r"matmul: both operands need at least one dimension",
        "matmul_0d",
    ),
    _case(
        lambda: Tensor(np.arange(3)) ** -1,
        ValueError,
        r"pow: Integers to negative integer powers",
        "int_pow_negative",
    ),
    _case(lambda: -Tensor(np.array([True])), TypeError, r"^neg: ", "neg_bool"),
    _case(
        lambda: tg.where(np.ones((2, 3), dtype=int), _x(), _x()),
        TypeError,
        r"where: cond must be boolean, got dtype int64",
        "where_int_cond",
    ),
    _case(
        lambda: tg.where(np.ones(4, dtype=bool), _x(), _x()),
        ValueError,
        r"^where: .*broadcast",
        "where_shape",
    ),
    _case(
        lambda: tg.maximum(_x(), Tensor(np.ones(4))),
        ValueError,
        r"^maximum: .*broadcast",
        "maximum_shape",
    ),
    _case(lambda: _x().clip(), ValueError, r"clip: give min, max or both", "clip_no_bounds"),
    # reductions
    *[
        _case(
            (lambda name=name: getattr(_x(), name)(axis=5)),
            ValueError,
            rf"^{'max' if name == 'min' else name}: axis 5 is out of range for shape \(2, 3\)",
            f"{name}_axis_out_of_range",
        )
        for name in ("sum", "mean", "max", "min")
    ],
    _case(
        lambda: tg.logsumexp(_x(), axis=-3),
        ValueError,
        r"logsumexp: axis -3 is out of range for shape \(2, 3\)",
        "logsumexp_axis",
    ),
    _case(
        lambda: _x().sum(axis="a"),
        TypeError,
        r"sum: axis must be an int or tuple of ints, got 'a'",
        "sum_axis_str",
    ),
    _case(
        lambda: _x().mean(axis=(0, None)),
        TypeError,
        r"mean: axis must be an int or tuple of ints",
        "mean_axis_tuple_with_none",
    ),
    _case(lambda: _x().sum(axis=(0, 0)), ValueError, r"sum: duplicate", "sum_axis_duplicate"),
    _case(
        lambda: Tensor(np.zeros((0, 3))).max(),
        ValueError,
        r"max: cannot reduce an empty tensor of shape \(0, 3\)",
        "max_empty",
    ),
    _case(
        lambda: tg.logsumexp(Tensor(np.zeros((3, 0)))),
        ValueError,
        r"logsumexp: cannot reduce an empty tensor",
        "logsumexp_empty",
    ),
    # shape ops
    _case(
        lambda: _x().reshape(5),
        ValueError,
        r"reshape: cannot reshape array of size 6 into shape \(5,\)",
        "reshape_size",
    ),
    _case(
        lambda: _x().reshape(-1, -1),
        ValueError,
        r"reshape: can only specify one unknown dimension",
        "reshape_two_unknown",
    ),
    _case(
        lambda: _x().transpose(0, 2),
        ValueError,
        r"transpose: axes \(0, 2\) are not a permutation of 2 axes",
        "transpose_not_permutation",
    ),
    _case(
        lambda: _x().permute(0, 0),
        ValueError,
        r"transpose: axes \(0, 0\) are not a permutation",
        "permute_repeated",
    ),
    _case(lambda: _x().expand(3, 3), ValueError, r"^expand: size 3 at ", "expand_incompatible"),
    _case(lambda: tg.broadcast_to(_x(), (5,)), ValueError, r"^broadcast_to: ", "broadcast_fewer"),
    _case(
        lambda: _x().split(4, axis=1),
        ValueError,
        r"split: axis 1 of length 3 does not split into 4 equal parts",
        "split_uneven",
    ),
    _case(
        lambda: _x().split(0, axis=1),
        ValueError,
        r"split: .* does not split into 0 equal parts",
        "split_zero",
    ),
    _case(
        lambda: _x().split(1, axis=9),
        ValueError,
        r"split: axis 9 is out of range for shape \(2, 3\)",
        "split_axis",
    ),
    _case(
        lambda: _x().chunk(0), ValueError, r"chunk: chunks must be positive, got 0", "chunk_zero"
    ),
    _case(
        lambda: _x().chunk(2, axis=-3),
        ValueError,
        r"chunk: axis -3 is out of range",
        "chunk_axis",
    ),
    _case(lambda: tg.concat([]), ValueError, r"concat: need at least one tensor", "concat_empty"),
    _case(lambda: tg.stack([]), ValueError, r"stack: need at least one tensor", "stack_empty"),
    _case(
        lambda: tg.stack([_x(), Tensor(np.ones(3))]),
        ValueError,
        r"stack: all input arrays must have the same shape \(input shapes \(2, 3\), \(3,\)\)",
        "stack_shapes",
    ),
    _case(
        lambda: tg.concat([_x(), Tensor(np.ones((2, 3, 1)))]),
        ValueError,
        r"^concat: .*dimension",
        "concat_ndim",
    ),
    # numpy's AxisError is both a ValueError and an IndexError; the message names the op.
    _case(
        lambda: tg.concat([_x(), _x()], axis=9),
        ValueError,
        r"concat: axis 9 is out of bounds",
        "concat_axis",
    ),
    # indexing
    _case(
        lambda: _x()[5],
        IndexError,
        r"getitem: index 5 is out of bounds for axis 0 with size 2",
        "index_out_of_range",
    ),
    _case(lambda: _x()[-3], IndexError, r"getitem: index -3 is out of bounds", "index_negative"),
    _case(lambda: _x()[0, 0, 0], IndexError, r"getitem: too many indices", "too_many_indices"),
    _case(
        lambda: _x()[np.array([0.5])],
        IndexError,
        r"getitem: index arrays must be integer or boolean, got float64",
        "float_index_array",
    ),
    _case(
        lambda: _x()[[0.0, 1.0]],
        IndexError,
        r"getitem: index arrays must be integer or boolean",
        "float_index_list",
    ),
    _case(
        lambda: _x()[Tensor([0.0])],
        IndexError,
        r"getitem: index arrays must be integer or boolean",
        "float_index_tensor",
    ),
    _case(lambda: _x()[1.5], IndexError, r"^getitem: only integers", "float_index"),
    _case(lambda: _x()["a"], IndexError, r"^getitem: only integers", "str_index"),
    _case(
        lambda: _x()[np.array([True, False, True])],
        IndexError,
        r"getitem: boolean index did not match",
        "bool_mask_shape",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), OP_CASES)
def test_ops(call: Any, error: Any, match: str) -> None:
    _check(call, error, match)


# --------------------------------------------------------------------------------------------
# backward and grad
# --------------------------------------------------------------------------------------------


def _loss() -> tuple[Tensor, Tensor]:
    x = _x()
    return x, (x * 2).sum()


def _backward_twice() -> None:
    _, loss = _loss()
    loss.backward()
    loss.backward()


GRAD_CASES = [
    _case(
        lambda: (_x() * 2).backward(np.ones(3)),
        ValueError,
        r"backward: gradient has shape \(3,\) but the output has shape \(2, 3\)",
        "backward_grad_shape",
    ),
    _case(
        lambda: tg.grad(_loss()[1], [1.0]),
        TypeError,
        r"grad: inputs\[0\] is a float, expected a Tensor",
        "grad_input_not_tensor",
    ),
    _case(
        lambda: tg.grad([_loss()[1], 2.0], [_x()]),
        TypeError,
        r"grad: outputs\[1\] is a float, expected a Tensor",
        "grad_output_not_tensor",
    ),
    _case(
        lambda: tg.grad(_loss()[1], [Tensor(1.0)]),
        ValueError,
        r"grad: inputs\[0\] \(shape \(\)\) does not require grad",
        "grad_input_without_grad",
    ),
    _case(
        lambda: tg.grad(Tensor(1.0), [_x()]),
        ValueError,
        r"grad: outputs\[0\] does not require grad",
        "grad_output_without_grad",
    ),
    _case(
        lambda: tg.grad(_loss()[1], [_x()]),
        ValueError,
        r"grad: inputs\[0\] \(shape \(2, 3\)\) is not used to compute the outputs",
        "grad_unused_input",
    ),
    _case(
        lambda: tg.grad(_loss()[1], [_x()], grad_outputs=[1.0, 2.0]),
        ValueError,
        r"grad: 1 outputs but 2 grad_outputs",
        "grad_outputs_count",
    ),
    _case(
        lambda: (lambda x: tg.grad(x * 2, [x], grad_outputs=np.ones(3)))(_x()),
        ValueError,
        r"grad: gradient has shape \(3,\) but the output has shape \(2, 3\)",
        "grad_outputs_shape",
    ),
    # RuntimeError, as in PyTorch: misuse of the backward pass itself.
    _case(
        lambda: (_x() * 2).backward(),
        RuntimeError,
        r"backward: grad can be omitted only for an output with one element, got shape \(2, 3\)",
        "backward_non_scalar",
    ),
    _case(
        lambda: Tensor(1.0).backward(),
        RuntimeError,
        r"backward: this tensor does not require grad",
        "backward_no_graph",
    ),
    _case(_backward_twice, RuntimeError, r"freed.*retain_graph=True", "backward_twice"),
    _case(
        lambda: (_x() * 2).requires_grad_(False),
        RuntimeError,
        r"requires_grad_: can only change requires_grad of a leaf",
        "requires_grad_non_leaf",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), GRAD_CASES)
def test_backward_and_grad(call: Any, error: Any, match: str) -> None:
    _check(call, error, match)


# --------------------------------------------------------------------------------------------
# Functional losses, one_hot, embedding; loss modules
# --------------------------------------------------------------------------------------------


def _logits() -> Tensor:
    return Tensor(np.zeros((4, 3)), requires_grad=True)


TARGETS = np.array([0, 1, 2, 0])

LOSS_CASES = [
    _case(
        lambda: F.cross_entropy(_logits(), np.zeros(4)),
        TypeError,
        r"cross_entropy: targets must be integers, got dtype float64",
        "ce_float_targets",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), np.zeros(4, dtype=bool)),
        TypeError,
        r"cross_entropy: targets must be integers, got dtype bool",
        "ce_bool_targets",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), None),
        TypeError,
        r"cross_entropy: targets must be integers",
        "ce_none_targets",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), np.array([0, 1, 2, 3])),
        IndexError,
        r"cross_entropy: targets must lie in \[0, 3\), got values in \[0, 3\]",
        "ce_target_too_large",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), np.array([0, -1, 2, 0])),
        IndexError,
        r"cross_entropy: targets must lie in \[0, 3\), got values in \[-1, 2\]",
        "ce_target_negative",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), np.array([0, 1, 2])),
        ValueError,
        r"cross_entropy: targets have shape \(3,\) but logits \(4, 3\) .* need targets of "
        r"shape \(4,\)",
        "ce_target_shape",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), TARGETS, reduction="avg"),
        ValueError,
        r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'",
        "ce_reduction",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), TARGETS, reduction=None),  # type: ignore[arg-type]
        ValueError,
        r"cross_entropy: reduction must be .*got None",
        "ce_reduction_none",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), TARGETS, axis=3),
        ValueError,
        r"cross_entropy: axis 3 is out of range for logits of shape \(4, 3\)",
        "ce_axis",
    ),
    _case(
        lambda: F.cross_entropy(Tensor(1.0), np.array(0)),
        ValueError,
        r"cross_entropy: logits need a class axis",
        "ce_0d_logits",
    ),
    _case(
        lambda: F.cross_entropy(None, TARGETS),  # type: ignore[arg-type]
        TypeError,
        r"cross_entropy: logits must be a Tensor or array, got NoneType",
        "ce_none_logits",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), TARGETS, mask=np.ones(3)),
        ValueError,
        r"cross_entropy: mask has shape \(3,\) but the per-element loss has shape \(4,\)",
        "ce_mask_shape",
    ),
    _case(
        lambda: F.cross_entropy(_logits(), TARGETS, mask=np.zeros(4)),
        ValueError,
        r"cross_entropy: mask selects no element, so the mean is undefined",
        "ce_mask_all_zero",
    ),
    _case(
        lambda: F.mse_loss(_logits(), np.zeros(3)),
        ValueError,
        r"mse_loss: target has shape \(3,\), pred has shape \(4, 3\)",
        "mse_shape",
    ),
    _case(
        lambda: F.mse_loss(_logits(), None),
        ValueError,
        r"mse_loss: target has shape \(\), pred has shape \(4, 3\)",
        "mse_none_target",
    ),
    _case(
        lambda: F.mse_loss(_logits(), np.zeros((4, 3)), reduction="x"),  # type: ignore[arg-type]
        ValueError,
        r"mse_loss: reduction must be",
        "mse_reduction",
    ),
    _case(
        lambda: F.mse_loss(Tensor(np.zeros(0)), np.zeros(0)),
        ValueError,
        r"mse_loss: the mean of an empty loss is undefined",
        "mse_empty_mean",
    ),
    _case(
        lambda: F.mse_loss("abc", np.zeros(3)),  # type: ignore[arg-type]
        TypeError,
        r"mse_loss: pred must be a Tensor or array, got str",
        "mse_str_pred",
    ),
    _case(
        lambda: F.binary_cross_entropy_with_logits(_logits(), np.zeros(3)),
        ValueError,
        r"binary_cross_entropy_with_logits: targets have shape \(3,\), logits have shape",
        "bce_shape",
    ),
    _case(
        lambda: F.binary_cross_entropy_with_logits(
            _logits(),
            np.zeros((4, 3)),
            reduction=1,  # type: ignore[arg-type]
        ),
        ValueError,
        r"binary_cross_entropy_with_logits: reduction must be .*got 1",
        "bce_reduction",
    ),
    _case(
        lambda: F.softmax(_logits(), axis=5),
        ValueError,
        r"logsumexp: axis 5 is out of range",
        "softmax_axis",
    ),
    _case(
        lambda: F.one_hot(np.zeros(3), 3),
        TypeError,
        r"one_hot: indices must be integers, got dtype float64",
        "one_hot_float",
    ),
    _case(
        lambda: F.one_hot(np.array([3]), 3),
        IndexError,
        r"one_hot: indices must lie in \[0, 3\), got values in \[3, 3\]",
        "one_hot_range",
    ),
    _case(
        lambda: F.embedding(np.zeros(2), Tensor(np.zeros((3, 2)))),
        TypeError,
        r"embedding: indices must be integers, got dtype float64",
        "embedding_float",
    ),
    _case(
        lambda: F.embedding(np.array([-1]), Tensor(np.zeros((3, 2)))),
        IndexError,
        r"embedding: indices must lie in \[0, 3\), got values in \[-1, -1\]",
        "embedding_negative",
    ),
    _case(
        lambda: F.embedding(np.array([0]), Tensor(np.zeros(3))),
        ValueError,
        r"embedding: weight must be 2-D \(V, E\), got shape \(3,\)",
        "embedding_weight_1d",
    ),
    # loss modules
    *[
        _case(
            (lambda cls=cls: cls(reduction="average")),
            ValueError,
            rf"{cls.__name__}: reduction must be 'mean', 'sum' or 'none', got 'average'",
            f"{cls.__name__}_reduction",
        )
        for cls in (nn.CrossEntropyLoss, nn.MSELoss, nn.BCEWithLogitsLoss)
    ],
    _case(
        lambda: nn.MSELoss()(_logits(), np.zeros((4, 3)), mask=np.ones(5)),
        ValueError,
        r"MSELoss: mask has shape \(5,\); it must be the input's shape \(4, 3\)",
        "MSELoss_mask",
    ),
    _case(
        lambda: nn.BCEWithLogitsLoss()(_logits(), np.zeros((4, 3)), mask=np.ones((3, 3))),
        ValueError,
        r"BCEWithLogitsLoss: mask has shape \(3, 3\)",
        "BCEWithLogitsLoss_mask",
    ),
    _case(
        lambda: nn.CrossEntropyLoss()(_logits(), np.array([0, 1, 5, 0])),
        IndexError,
        r"cross_entropy: targets must lie in \[0, 3\)",
        "CrossEntropyLoss_target",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), LOSS_CASES)
def test_losses(call: Any, error: Any, match: str) -> None:
    _check(call, error, match)


# --------------------------------------------------------------------------------------------
# nn: construction
# --------------------------------------------------------------------------------------------

# (class, name of the first size argument, name of the second)
MODULES = [
    (nn.Linear, "in_features", "out_features"),
    (nn.Embedding, "num_embeddings", "embedding_dim"),
    (nn.RNNCell, "input_size", "hidden_size"),
    (nn.LSTMCell, "input_size", "hidden_size"),
    (nn.GRUCell, "input_size", "hidden_size"),
    (nn.RNN, "input_size", "hidden_size"),
    (nn.LSTM, "input_size", "hidden_size"),
    (nn.GRU, "input_size", "hidden_size"),
]
BAD_SIZES = [
    (0, ValueError, r"must be positive, got 0"),
    (-1, ValueError, r"must be positive, got -1"),
    (2.0, TypeError, r"must be an int, got float"),
    ("2", TypeError, r"must be an int, got str"),
    (True, TypeError, r"must be an int, got bool"),
    (None, TypeError, r"must be an int, got NoneType"),
    (np.float64(3), TypeError, r"must be an int, got float64"),
]


def _name(value: Any) -> str:
    return str(getattr(value, "__name__", value))


@pytest.mark.parametrize(("cls", "first", "second"), MODULES, ids=_name)
@pytest.mark.parametrize(("size", "error", "match"), BAD_SIZES, ids=repr)
def test_module_sizes(cls: Any, first: str, second: str, size: Any, error: Any, match: str) -> None:
    with pytest.raises(error, match=rf"{cls.__name__}: {first} {match}"):
        cls(size, 3)
    with pytest.raises(error, match=rf"{cls.__name__}: {second} {match}"):
        cls(3, size)


@pytest.mark.parametrize(("cls", "first", "second"), MODULES, ids=_name)
@pytest.mark.parametrize("dtype", [np.int32, np.complex128, np.bool_, "U3"], ids=str)
def test_module_dtype_must_be_floating(cls: Any, first: str, second: str, dtype: Any) -> None:
    with pytest.raises(TypeError, match=rf"{cls.__name__}: dtype must be a floating dtype"):
        cls(3, 3, dtype=dtype)


MODULE_ARG_CASES = [
    *[
        _case(
            (lambda cls=cls, value=value: cls(3, 4, nonlinearity=value)),
            ValueError,
            rf"{cls.__name__}: nonlinearity must be 'tanh' or 'relu', got {value!r}",
            f"{cls.__name__}_nonlinearity_{value}",
        )
        for cls in (nn.RNNCell, nn.RNN)
        for value in ("sigmoid", None, "TANH")
    ],
    *[
        _case(
            (lambda cls=cls, value=value: cls(3, 4, num_layers=value)),
            error,
            rf"{cls.__name__}: num_layers {match}",
            f"{cls.__name__}_num_layers_{value}",
        )
        for cls in (nn.RNN, nn.LSTM, nn.GRU)
        for value, error, match in [
            (0, ValueError, "must be positive"),
            (1.5, TypeError, "must be an int"),
        ]
    ],
    _case(
        lambda: nn.Sequential(nn.Linear(2, 2), 5),  # type: ignore[arg-type]
        TypeError,
        r"Sequential: argument 1 is a int, not a Module",
        "sequential_non_module",
    ),
    _case(
        lambda: setattr(_lin(), "weight", Tensor(np.zeros((3, 2)))),
        TypeError,
        r"Linear: cannot assign Tensor to parameter 'weight'; wrap it in Parameter",
        "assign_tensor_to_parameter",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), MODULE_ARG_CASES)
def test_module_arguments(call: Any, error: Any, match: str) -> None:
    _check(call, error, match)


# --------------------------------------------------------------------------------------------
# nn: calling modules (inputs, states, sequences)
# --------------------------------------------------------------------------------------------

X2 = np.zeros((B, D))
XS = np.zeros((T, B, D))

CALL_CASES = [
    _case(
        lambda: _lin()(np.zeros((4, 5))),
        ValueError,
        r"Linear: input must have last dimension in_features=2, got shape \(4, 5\)",
        "linear_last_dim",
    ),
    _case(
        lambda: _lin()(1.0),
        ValueError,
        r"Linear: input must have last dimension in_features=2, got shape \(\)",
        "linear_0d",
    ),
    _case(
        lambda: _lin()("ab"),
        TypeError,
        r"Linear: input must be a Tensor or an array, got str",
        "linear_str",
    ),
    _case(
        lambda: _lin()(None),
        TypeError,
        r"Linear: input must be a Tensor or an array, got NoneType",
        "linear_none",
    ),
    _case(
        lambda: _lin()(Tensor(np.zeros((4, 2)), dtype=np.float32)),
        TypeError,
        r"Linear: input has dtype float32 but the parameters are float64",
        "linear_dtype_mismatch",
    ),
    _case(
        lambda: _lin()(np.zeros((4, 2), dtype=bool)),
        TypeError,
        r"Linear: input must be numeric, got dtype bool",
        "linear_bool",
    ),
    _case(
        lambda: _lin()(np.zeros((4, 2), dtype=complex)),
        TypeError,
        r"Linear: input must be numeric, got dtype complex128",
        "linear_complex",
    ),
    _case(
        lambda: _lin()(np.zeros((1, 2)), 5),
        TypeError,
        r"forward\(\) takes 2 positional arguments but 3 were given",
        "linear_extra_argument",
    ),
    _case(
        lambda: nn.Embedding(3, 2, rng=_rng())(np.array([3])),
        IndexError,
        r"embedding: indices must lie in \[0, 3\), got values in \[3, 3\]",
        "embedding_module_range",
    ),
    _case(
        lambda: nn.Embedding(3, 2, rng=_rng())(np.array([0.0])),
        TypeError,
        r"embedding: indices must be integers",
        "embedding_module_float",
    ),
    # cells: inputs
    *[
        _case(
            (lambda cls=cls, x=x: _cell(cls)(x)),
            error,
            rf"{cls.__name__}: {match}",
            f"{cls.__name__}_{name}",
        )
        for cls in (nn.RNNCell, nn.LSTMCell, nn.GRUCell)
        for name, x, error, match in [
            (
                "input_size",
                np.zeros((B, 5)),
                ValueError,
                r"input must have shape \(batch, input_size=3\) or \(input_size,\), got \(2, 5\)",
            ),
            ("input_3d", np.zeros((1, B, D)), ValueError, r"input must have shape .*\(1, 2, 3\)"),
            ("input_none", None, TypeError, r"input must be a Tensor or an array"),
            ("input_str", "abc", TypeError, r"input must be a Tensor or an array, got str"),
            (
                "input_f32",
                Tensor(np.zeros((B, D)), dtype=np.float32),
                TypeError,
                r"input has dtype float32 but the parameters are float64",
            ),
        ]
    ],
    # cells: states
    *[
        _case(
            (lambda cls=cls, x=x, h=h: _cell(cls)(x, h)),
            error,
            rf"{cls.__name__}: {match}",
            f"{cls.__name__}_{name}",
        )
        for cls in (nn.RNNCell, nn.GRUCell)
        for name, x, h, error, match in [
            (
                "state_hidden",
                X2,
                np.zeros((B, 5)),
                ValueError,
                r"state must have shape \(2, 4\) \(batch, hidden_size\), got \(2, 5\)",
            ),
            ("state_batch", X2, np.zeros((3, H)), ValueError, r"state must have shape \(2, 4\)"),
            ("state_1d", X2, np.zeros(H), ValueError, r"state must have shape \(2, 4\).*\(4,\)"),
            (
                "state_unbatched",
                np.zeros(D),
                np.zeros((B, H)),
                ValueError,
                r"state must have shape \(4,\) \(hidden_size\), got \(2, 4\)",
            ),
            (
                "state_tuple",
                X2,
                (np.zeros((B, H)), np.zeros((B, H))),
                ValueError,
                r"state must have shape \(2, 4\)",
            ),
            ("state_str", X2, "h", TypeError, r"state must be a Tensor or an array, got str"),
            (
                "state_f32",
                X2,
                Tensor(np.zeros((B, H)), dtype=np.float32),
                TypeError,
                r"state has dtype float32",
            ),
        ]
    ],
    *[
        _case(
            (lambda state=state: _cell(nn.LSTMCell)(X2, state)),
            error,
            rf"LSTMCell: {match}",
            f"LSTMCell_{name}",
        )
        for name, state, error, match in [
            (
                "state_single_array",
                np.zeros((B, H)),
                TypeError,
                r"state must be None or a tuple \(h, c\), got ndarray",
            ),
            (
                "state_triple",
                (np.zeros((B, H)),) * 3,
                TypeError,
                r"state must be None or a tuple \(h, c\), got tuple",
            ),
            (
                "c_hidden",
                (np.zeros((B, H)), np.zeros((B, 5))),
                ValueError,
                r"state\[1\] \(c\) must have shape \(2, 4\) \(batch, hidden_size\), got \(2, 5\)",
            ),
            (
                "h_batch",
                (np.zeros((1, H)), np.zeros((B, H))),
                ValueError,
                r"state\[0\] \(h\) must have shape \(2, 4\)",
            ),
            (
                "h_str",
                ("h", np.zeros((B, H))),
                TypeError,
                r"state\[0\] \(h\) must be a Tensor or an array, got str",
            ),
        ]
    ],
    # layers: inputs
    *[
        _case(
            (lambda cls=cls, x=x, kw=kw: _layer(cls, **kw)(x)),
            error,
            rf"{cls.__name__}: {match}",
            f"{cls.__name__}_{name}",
        )
        for cls in (nn.RNN, nn.LSTM, nn.GRU)
        for name, kw, x, error, match in [
            (
                "input_size",
                {},
                np.zeros((T, B, 5)),
                ValueError,
                r"input must have shape \(seq_len, batch, input_size\) or \(seq_len, input_size\)"
                r" with input_size=3, got \(6, 2, 5\)",
            ),
            ("input_4d", {}, np.zeros((1, T, B, D)), ValueError, r"input must have shape"),
            ("input_0d", {}, 5, ValueError, r"input must have shape .*got \(\)"),
            (
                "empty_sequence",
                {},
                np.zeros((0, B, D)),
                ValueError,
                r"input is an empty sequence \(seq_len=0, shape \(0, 2, 3\)\)",
            ),
            (
                "empty_sequence_tensor",
                {},
                Tensor(np.zeros((0, B, D))),
                ValueError,
                r"input is an empty sequence",
            ),
            (
                "empty_unbatched_sequence",
                {},
                np.zeros((0, D)),
                ValueError,
                r"input is an empty sequence \(seq_len=0, shape \(0, 3\)\)",
            ),
            (
                "empty_batch_first_sequence",
                {"batch_first": True},
                np.zeros((B, 0, D)),
                ValueError,
                r"input is an empty sequence",
            ),
            (
                "batch_first_layout",
                {"batch_first": True},
                np.zeros((B, T, 5)),
                ValueError,
                r"input must have shape \(batch, seq_len, input_size\)",
            ),
            ("input_none", {}, None, TypeError, r"input must be a Tensor or an array"),
            (
                "input_f32",
                {},
                Tensor(np.zeros((T, B, D)), dtype=np.float32),
                TypeError,
                r"input has dtype float32 but the parameters are float64",
            ),
        ]
    ],
    # layers: initial states
    *[
        _case(
            (lambda cls=cls, h0=h0, kw=kw: _layer(cls, **kw)(XS, h0)),
            error,
            rf"{cls.__name__}: {match}",
            f"{cls.__name__}_{name}",
        )
        for cls in (nn.RNN, nn.GRU)
        for name, kw, h0, error, match in [
            (
                "h0_layers",
                {"num_layers": 2},
                np.zeros((1, B, H)),
                ValueError,
                r"h0 must have shape \(2, 2, 4\) \(num_layers\*num_directions, batch, "
                r"hidden_size\), got \(1, 2, 4\)",
            ),
            (
                "h0_directions",
                {"bidirectional": True},
                np.zeros((1, B, H)),
                ValueError,
                r"h0 must have shape \(2, 2, 4\)",
            ),
            ("h0_batch", {}, np.zeros((1, 3, H)), ValueError, r"h0 must have shape \(1, 2, 4\)"),
            ("h0_hidden", {}, np.zeros((1, B, 5)), ValueError, r"h0 must have shape \(1, 2, 4\)"),
            ("h0_2d", {}, np.zeros((B, H)), ValueError, r"h0 must have shape \(1, 2, 4\)"),
            ("h0_str", {}, "h0", TypeError, r"h0 must be a Tensor or an array, got str"),
        ]
    ],
    *[
        _case(
            (lambda hx=hx: _layer(nn.LSTM)(XS, hx)),
            error,
            rf"LSTM: {match}",
            f"LSTM_{name}",
        )
        for name, hx, error, match in [
            (
                "hx_single_array",
                np.zeros((1, B, H)),
                TypeError,
                r"hx must be None or a tuple \(h0, c0\), got ndarray",
            ),
            (
                "hx_single_tuple",
                (np.zeros((1, B, H)),),
                TypeError,
                r"hx must be None or a tuple \(h0, c0\), got tuple",
            ),
            (
                "c0_hidden",
                (np.zeros((1, B, H)), np.zeros((1, B, 5))),
                ValueError,
                r"c0 must have shape \(1, 2, 4\) .*got \(1, 2, 5\)",
            ),
            (
                "c0_batch",
                (np.zeros((1, B, H)), np.zeros((1, 3, H))),
                ValueError,
                r"c0 must have shape \(1, 2, 4\)",
            ),
            (
                "h0_batch",
                (np.zeros((1, 1, H)), np.zeros((1, B, H))),
                ValueError,
                r"h0 must have shape \(1, 2, 4\)",
            ),
        ]
    ],
    # unroll and truncated BPTT
    _case(
        lambda: nn.unroll(_cell(nn.RNNCell), []),
        ValueError,
        r"unroll: xs is an empty sequence \(T=0\)",
        "unroll_empty_list",
    ),
    _case(
        lambda: nn.unroll(_cell(nn.RNNCell), np.zeros((0, B, D))),
        ValueError,
        r"unroll: xs is an empty sequence",
        "unroll_empty_array",
    ),
    _case(
        lambda: nn.unroll(_cell(nn.RNNCell), np.zeros(())),
        ValueError,
        r"unroll: xs must have a time axis first",
        "unroll_0d",
    ),
    _case(
        lambda: nn.unroll(_cell(nn.RNNCell), None),
        TypeError,
        r"unroll: xs must be a Tensor, array or list, got NoneType",
        "unroll_none",
    ),
    _case(
        lambda: nn.unroll(_cell(nn.RNNCell), XS, np.zeros((9, 9))),
        ValueError,
        r"RNNCell: state must have shape \(2, 4\)",
        "unroll_bad_state",
    ),
    _case(
        lambda: nn.run_tbptt(lambda x, y, s: (None, None), XS, chunk_len=0),
        ValueError,
        r"chunk_bounds: chunk_len must be positive, got 0",
        "tbptt_chunk_zero",
    ),
    _case(
        lambda: nn.run_tbptt(lambda x, y, s: (None, None), np.zeros((0, B, D)), chunk_len=2),
        ValueError,
        r"run_tbptt: inputs is an empty sequence \(T=0\)",
        "tbptt_empty",
    ),
    _case(
        lambda: nn.run_tbptt(lambda x, y, s: (None, None), XS, chunk_len=2),
        TypeError,
        r"run_tbptt: forward must return \(one-element loss Tensor, state\)",
        "tbptt_bad_forward",
    ),
    _case(
        lambda: nn.detach_state(5),
        TypeError,
        r"detach_state: state must be None, a Tensor or a tuple of Tensors, got int",
        "detach_state_int",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), CALL_CASES)
def test_module_calls(call: Any, error: Any, match: str) -> None:
    _check(call, error, match)


# --------------------------------------------------------------------------------------------
# Optimizers and clipping
# --------------------------------------------------------------------------------------------


def _w() -> Tensor:
    return Tensor(np.zeros(3), requires_grad=True)


def _step_with_grad(grad: Any) -> None:
    w = _w()
    opt = optim.SGD([w], lr=0.1)
    w.grad = grad
    opt.step()


OPTIM_CASES = [
    _case(lambda: optim.SGD([_w()]), TypeError, r"missing 1 required .*'lr'", "sgd_no_lr"),
    *[
        _case(
            (lambda v=v: optim.SGD([_w()], lr=v)),
            ValueError,
            r"SGD: lr must be a finite number >= 0, got",
            f"sgd_lr_{v}",
        )
        for v in (-1, -1e-9, float("nan"), float("inf"))
    ],
    *[
        _case(
            (lambda v=v: optim.SGD([_w()], lr=v)),
            TypeError,
            r"SGD: lr must be a real number, got",
            f"sgd_lr_{type(v).__name__}",
        )
        for v in ("0.1", None, True, 1j, Tensor(0.1), np.array(0.1), [0.1])
    ],
    _case(
        lambda: optim.SGD([_w()], lr=0.1, momentum=-0.5),
        ValueError,
        r"SGD: momentum must be a finite number >= 0, got -0.5",
        "sgd_momentum",
    ),
    _case(
        lambda: optim.SGD([_w()], lr=0.1, weight_decay=float("nan")),
        ValueError,
        r"SGD: weight_decay must be a finite number >= 0",
        "sgd_weight_decay",
    ),
    _case(
        lambda: optim.SGD([_w()], lr=0.1, nesterov=True),
        ValueError,
        r"SGD: nesterov=True requires momentum > 0",
        "sgd_nesterov_without_momentum",
    ),
    _case(
        lambda: optim.SGD([_w()], lr=0.1, momentum=0.9, nesterov="yes"),  # type: ignore[arg-type]
        TypeError,
        r"SGD: nesterov must be a bool, got 'yes'",
        "sgd_nesterov_str",
    ),
    _case(
        lambda: optim.Adam([_w()], betas=(0.9, 1.0)),
        ValueError,
        r"Adam: betas\[1\] must be in \[0, 1\), got 1.0",
        "adam_beta2_one",
    ),
    _case(
        lambda: optim.Adam([_w()], betas=(-0.1, 0.9)),
        ValueError,
        r"Adam: betas\[0\] must be in \[0, 1\)",
        "adam_beta1_negative",
    ),
    _case(
        lambda: optim.Adam([_w()], betas=0.9),  # type: ignore[arg-type]
        TypeError,
        r"Adam: betas must be a pair \(beta1, beta2\), got 0.9",
        "adam_betas_scalar",
    ),
    _case(
        lambda: optim.Adam([_w()], betas=(0.9, 0.9, 0.9)),  # type: ignore[arg-type]
        TypeError,
        r"Adam: betas must be a pair",
        "adam_betas_triple",
    ),
    _case(
        lambda: optim.Adam([_w()], eps=-1e-8),
        ValueError,
        r"Adam: eps must be a finite number >= 0",
        "adam_eps",
    ),
    _case(
        lambda: optim.RMSProp([_w()], alpha=1.0),
        ValueError,
        r"RMSProp: alpha must be in \[0, 1\), got 1.0",
        "rmsprop_alpha",
    ),
    _case(
        lambda: optim.Adagrad([_w()], lr=-1),
        ValueError,
        r"Adagrad: lr must be a finite number >= 0",
        "adagrad_lr",
    ),
    _case(
        lambda: optim.Adam([_w()], lr=0.1, amsgrad=True),  # type: ignore[call-arg]
        TypeError,
        r"unexpected keyword argument 'amsgrad'",
        "adam_unknown_keyword",
    ),
    # params
    _case(
        lambda: optim.SGD(_w(), lr=0.1),  # type: ignore[arg-type]
        TypeError,
        r"SGD: params must be an iterable of Tensors, got a single Tensor; pass \[tensor\]",
        "params_single_tensor",
    ),
    _case(lambda: optim.SGD([], lr=0.1), ValueError, r"SGD: params is empty", "params_empty"),
    _case(
        lambda: optim.SGD(None, lr=0.1),  # type: ignore[arg-type]
        TypeError,
        r"SGD: params must be an iterable of Tensors, got NoneType",
        "params_none",
    ),
    _case(
        lambda: (lambda w: optim.SGD([w, w], lr=0.1))(_w()),
        ValueError,
        r"SGD: params\[1\] is the same tensor as params\[0\]",
        "params_duplicate",
    ),
    _case(
        lambda: optim.Adam([Tensor(1.0)]),
        ValueError,
        r"Adam: params\[0\] \(shape \(\)\) does not require grad",
        "params_without_grad",
    ),
    _case(
        lambda: optim.Adam([_w() * 2]),
        ValueError,
        r"Adam: params\[0\] \(shape \(3,\)\) was made by op 'mul', not a leaf",
        "params_non_leaf",
    ),
    _case(
        lambda: optim.Adam([np.zeros(3)]),  # type: ignore[list-item]
        TypeError,
        r"Adam: params\[0\] is a ndarray, expected a Tensor",
        "params_array",
    ),
    _case(
        lambda: optim.Adam({"w": _w()}),  # type: ignore[arg-type]
        TypeError,
        r"Adam: params must be an iterable of Tensors, got a dict; pass its .values\(\)",
        "params_dict",
    ),
    _case(
        lambda: optim.Adam("weights"),  # type: ignore[arg-type]
        TypeError,
        r"Adam: params must be an iterable of Tensors, got str",
        "params_str",
    ),
    # step
    _case(
        lambda: _step_with_grad(Tensor(np.ones(4))),
        ValueError,
        r"SGD.step: params\[0\].grad has shape \(4,\) but the parameter has shape \(3,\)",
        "step_grad_shape",
    ),
    _case(
        lambda: _step_with_grad(np.ones(3)),
        TypeError,
        r"SGD.step: params\[0\].grad is a ndarray, expected a Tensor or None",
        "step_grad_array",
    ),
    # clipping
    _case(
        lambda: optim.clip_grad_norm_([_w()], -1),
        ValueError,
        r"clip_grad_norm_: max_norm must be >= 0, got -1",
        "clip_norm_negative",
    ),
    _case(
        lambda: optim.clip_grad_norm_([_w()], "a"),  # type: ignore[arg-type]
        TypeError,
        r"clip_grad_norm_: max_norm must be a real number, got 'a'",
        "clip_norm_str",
    ),
    _case(
        lambda: optim.clip_grad_norm_([_w()], 1.0, norm_type=0),
        ValueError,
        r"clip_grad_norm_: norm_type must be > 0",
        "clip_norm_type",
    ),
    _case(
        lambda: optim.clip_grad_norm_(None, 1.0),  # type: ignore[arg-type]
        TypeError,
        r"clip_grad_norm_: params must be a Tensor or an iterable of Tensors, got NoneType",
        "clip_norm_params_none",
    ),
    _case(
        lambda: (lambda w: optim.clip_grad_norm_([w, w], 1.0))(_w()),
        ValueError,
        r"clip_grad_norm_: params\[1\] is the same tensor as params\[0\]",
        "clip_norm_duplicate",
    ),
    _case(
        lambda: optim.clip_grad_value_([_w()], -1),
        ValueError,
        r"clip_grad_value_: clip_value must be >= 0, got -1",
        "clip_value_negative",
    ),
    _case(
        lambda: optim.clip_grad_value_([_w()], float("nan")),
        ValueError,
        r"clip_grad_value_: clip_value must be >= 0, got nan",
        "clip_value_nan",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), OPTIM_CASES)
def test_optimizers(call: Any, error: Any, match: str) -> None:
    _check(call, error, match)


def test_nonfinite_gradient_norm_raises_only_when_asked() -> None:
    w = _w()
    w.grad = Tensor(np.array([1.0, np.nan, 0.0]))
    assert np.isnan(optim.clip_grad_norm_([w], 1.0))
    w.grad = Tensor(np.array([1.0, np.inf, 0.0]))
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_: the total norm .* is inf"):
        optim.clip_grad_norm_([w], 1.0, error_if_nonfinite=True)


def _adam_state() -> tuple[optim.Adam, dict[str, np.ndarray]]:
    w = _w()
    opt = optim.Adam([w], lr=0.1)
    w.grad = Tensor(np.ones(3))
    opt.step()
    return opt, opt.state_dict()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda sd: sd.pop("state.0.m"), r"missing key\(s\) 'state.0.m' \(shape \(3,\)\)"),
        (lambda sd: sd.update(zzz=np.zeros(1)), r"unexpected key\(s\) 'zzz'"),
        (
            lambda sd: sd.update({"state.0.m": np.zeros(4)}),
            r"'state.0.m' has shape \(4,\) but this optimizer expects shape \(3,\)",
        ),
        (
            lambda sd: sd.update({"state.0.v": np.array([None] * 3)}),
            r"'state.0.v' has dtype object, which cannot be cast",
        ),
        (
            lambda sd: sd.update({"param_groups.0.lr": np.array("a")}),
            r"'param_groups.0.lr' has dtype <U1, which cannot be cast",
        ),
        (
            lambda sd: sd.update({"param_groups.0.lr": np.array(-1.0)}),
            r"param_groups\[0\]: lr must be a finite number >= 0, got -1.0",
        ),
        (lambda sd: sd.update(step=np.array(-1)), r"'step' must be >= 0, got -1"),
        (lambda sd: sd.update(step=np.array(1.5)), r"'step' has dtype float64"),
        (
            lambda sd: sd.update({"param_groups.0.betas": np.array([0.9])}),
            r"'param_groups.0.betas' has shape \(1,\)",
        ),
        (
            lambda sd: sd.update({"param_groups.0.betas": np.array([0.9, 1.5])}),
            r"betas\[1\] must be in \[0, 1\)",
        ),
    ],
    ids=[
        "missing",
        "unexpected",
        "shape",
        "object_dtype",
        "str_dtype",
        "negative_lr",
        "negative_step",
        "float_step",
        "betas_shape",
        "betas_range",
    ],
)
def test_optimizer_load_state_dict_rejects_and_changes_nothing(change: Any, match: str) -> None:
    opt, good = _adam_state()
    before = opt.state_dict()
    bad = copy.deepcopy(good)
    change(bad)
    with pytest.raises(ValueError, match=rf"Adam.load_state_dict: .*{match}"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


# --------------------------------------------------------------------------------------------
# Module.load_state_dict and checkpoints
# --------------------------------------------------------------------------------------------

STATE_CASES = [
    _case(
        lambda: _lin().load_state_dict({"weight": np.zeros((2, 2)), "bias": np.zeros(3)}),
        ValueError,
        r"load_state_dict: parameter 'weight' has shape \(3, 2\) but the state_dict gives "
        r"shape \(2, 2\)",
        "shape",
    ),
    _case(
        lambda: _lin().load_state_dict({"weight": np.zeros((2, 2))}, strict=False),
        ValueError,
        r"parameter 'weight' has shape \(3, 2\)",
        "shape_non_strict",
    ),
    _case(
        lambda: _lin().load_state_dict({"weight": np.zeros((3, 2))}),
        nn.StateDictError,
        r"load_state_dict for Linear: missing keys \['bias'\]",
        "missing",
    ),
    _case(
        lambda: _lin().load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(3), "x": 1}),
        nn.StateDictError,
        r"load_state_dict for Linear: unexpected keys \['x'\]",
        "unexpected",
    ),
    _case(
        lambda: _lin().load_state_dict({"weight": "abc", "bias": np.zeros(3)}),
        TypeError,
        r"load_state_dict: value for 'weight' has non-numeric dtype <U3",
        "str_value",
    ),
    _case(
        lambda: _lin().load_state_dict({"weight": None, "bias": np.zeros(3)}),
        TypeError,
        r"value for 'weight' has non-numeric dtype object",
        "none_value",
    ),
    _case(
        lambda: _lin().load_state_dict({"weight": np.zeros((3, 2), complex), "bias": np.zeros(3)}),
        TypeError,
        r"value for 'weight' has non-numeric dtype complex128",
        "complex_value",
    ),
    _case(
        lambda: _lin().load_state_dict({"weight": [[1.0], [1.0, 2.0]], "bias": np.zeros(3)}),
        TypeError,
        r"load_state_dict: value for 'weight' is not an array",
        "ragged_value",
    ),
    _case(
        lambda: _lin().load_state_dict([("weight", 1)]),  # type: ignore[arg-type]
        TypeError,
        r"load_state_dict: expected a dict, got list",
        "not_a_dict",
    ),
    _case(
        lambda: nn.rnn_from_document({"U": np.zeros((2, 2))}),
        nn.StateDictError,
        r"rnn_from_document: params must have exactly the keys",
        "from_document_keys",
    ),
    _case(
        lambda: tg.save(None, "x.npz"),  # type: ignore[arg-type]
        TypeError,
        r"save: state_dict must be a dict, got NoneType",
        "save_none",
    ),
    _case(
        lambda: tg.save({1: np.zeros(1)}, "x.npz"),  # type: ignore[dict-item]
        ValueError,
        r"save: keys must be non-empty strings without '/', got 1",
        "save_int_key",
    ),
    _case(
        lambda: tg.save({"a": {"": np.zeros(1)}}, "x.npz"),
        ValueError,
        r"save: keys must be non-empty strings",
        "save_empty_nested_key",
    ),
    _case(
        lambda: tg.save({"a": "abc"}, "x.npz"),
        TypeError,
        r"save: 'a' has dtype <U3; only numbers and booleans are stored",
        "save_str_value",
    ),
    _case(
        lambda: tg.save({"m": {"w": np.array([None])}}, "x.npz"),
        TypeError,
        r"save: 'm/w' has dtype object",
        "save_nested_object",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), STATE_CASES)
def test_state_dicts_and_checkpoints(
    call: Any, error: Any, match: str, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # save() errors must fire before any file is written
    _check(call, error, match)
    assert list(tmp_path.iterdir()) == []


def test_state_dict_error_is_both_a_key_error_and_a_value_error() -> None:
    with pytest.raises(KeyError):
        _lin().load_state_dict({})
    with pytest.raises(ValueError, match=r"missing keys \['weight', 'bias'\]"):
        _lin().load_state_dict({})


def test_a_failed_load_state_dict_changes_no_parameter() -> None:
    lstm = _layer(nn.LSTM, num_layers=2)
    before = {k: v.copy() for k, v in lstm.state_dict().items()}
    arrays = {k: p.data for k, p in lstm.named_parameters()}
    bad = {k: np.full_like(v, 7.0) for k, v in before.items()}
    bad["weight_hh_l1"] = np.zeros((1, 1))  # checked after the earlier keys
    with pytest.raises(ValueError, match=r"parameter 'weight_hh_l1' has shape \(16, 4\)"):
        lstm.load_state_dict(bad)
    for k, p in lstm.named_parameters():
        assert p.data is arrays[k]
        np.testing.assert_array_equal(p.data, before[k], err_msg=k)


def test_loading_bad_checkpoint_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"load: no checkpoint at"):
        tg.load(tmp_path / "missing.npz")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"load: .* is not a readable checkpoint"):
        tg.load(empty)
    noise = tmp_path / "noise.npz"
    noise.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match=r"not a readable checkpoint"):
        tg.load(noise)
    fake_zip = tmp_path / "fake.npz"
    fake_zip.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match=r"not a readable checkpoint"):
        tg.load(fake_zip)
    with pytest.raises(ValueError, match=r"not a readable checkpoint"):
        tg.load(tmp_path)  # a directory
    garbage = tmp_path / "garbage.npz"
    with zipfile.ZipFile(garbage, "w") as z:
        z.writestr("w.npy", b"not an npy file")
    with pytest.raises(ValueError, match=r"not a tinygrad_rnn checkpoint|not a readable"):
        tg.load(garbage)


# --------------------------------------------------------------------------------------------
# NaN and inf
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_nan_in_the_input_propagates_without_error_or_warning(cls: Any) -> None:
    """NaN at one step of one sequence: that sequence's outputs from then on, the loss and
    the gradients are NaN; the other sequence's outputs stay finite. No warning (pytest turns
    warnings into errors), no exception; an optimizer step then spreads the NaN."""
    rng = _rng(1)
    layer = _layer(cls)
    head = nn.Linear(H, K, dtype=F64, rng=rng)
    xs = rng.standard_normal((T, B, D))
    xs[2, 1, 0] = np.nan
    out, _ = layer(xs)
    assert np.isfinite(out.data[:2]).all() and np.isfinite(out.data[:, 0]).all()
    assert np.isnan(out.data[2:, 1]).all()
    loss = F.cross_entropy(head(out), rng.integers(0, K, (T, B)))
    assert np.isnan(loss.item())
    loss.backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and np.isnan(p.grad.data).any(), name
    opt = optim.Adam(list(layer.parameters()), lr=0.1)
    opt.step()
    assert all(np.isnan(p.data).any() for p in layer.parameters())


def test_nan_in_states_targets_and_logits_propagates_without_error_or_warning() -> None:
    rng = _rng(2)
    lstm = _layer(nn.LSTM)
    h0 = np.zeros((1, B, H))
    h0[0, 0, 0] = np.nan
    out, _ = lstm(rng.standard_normal((T, B, D)), (h0, np.zeros((1, B, H))))
    assert np.isnan(out.data[:, 0]).all() and np.isfinite(out.data[:, 1]).all()

    pred = Tensor(np.zeros((2, 3)), requires_grad=True)
    target = np.zeros((2, 3))
    target[1, 2] = np.nan
    loss = F.mse_loss(pred, target)
    loss.backward()
    assert np.isnan(loss.item())
    assert pred.grad is not None
    assert np.isnan(pred.grad.data[1, 2]) and np.isfinite(np.delete(pred.grad.data, 5)).all()

    logits = Tensor(np.array([[np.nan, 0.0], [1.0, 2.0]]), requires_grad=True)
    per_row = F.cross_entropy(logits, np.array([0, 1]), reduction="none")
    assert np.isnan(per_row.data[0]) and np.isfinite(per_row.data[1])
    per_row.sum().backward()
    assert logits.grad is not None and np.isfinite(logits.grad.data[1]).all()

    assert np.isnan(F.softmax(Tensor([np.nan, 1.0])).data).all()
    assert np.isnan(F.mse_loss(Tensor([1.0]), [np.nan]).item())


def test_infinite_inputs_give_inf_or_nan_and_at_most_numpy_warnings() -> None:
    rng = _rng(3)
    xs = rng.standard_normal((T, B, D))
    xs[1, 0, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out, _ = _layer(nn.LSTM)(xs)
        out.sum().backward()  # inf saturates the gates or gives NaN (inf - inf): no exception
        assert np.isfinite(out.data[:, 1]).all()  # the other sequence is untouched
        logits = Tensor(np.array([[np.inf, 0.0]]), requires_grad=True)
        loss = F.cross_entropy(logits, np.array([0]))
        loss.backward()
        assert np.isnan(loss.item())
        assert np.isinf(F.mse_loss(Tensor([np.inf]), [0.0]).item())


# --------------------------------------------------------------------------------------------
# Nothing the caller passed in is modified
# --------------------------------------------------------------------------------------------


def _frozen_copies(*objs: Any) -> list[Any]:
    return [copy.deepcopy(o.data if isinstance(o, Tensor) else o) for o in objs]


def _assert_unchanged(objs: tuple[Any, ...], copies: list[Any]) -> None:
    for k, (obj, before) in enumerate(zip(objs, copies)):
        now = obj.data if isinstance(obj, Tensor) else obj
        if isinstance(before, tuple):
            for a, b in zip(now, before):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"arg {k}")
        else:
            np.testing.assert_array_equal(now, before, err_msg=f"argument {k} was modified")
            assert np.asarray(now).dtype == np.asarray(before).dtype


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("as_tensor", [False, True], ids=["arrays", "tensors"])
def test_layers_modify_neither_inputs_nor_initial_states(cls: Any, as_tensor: bool) -> None:
    rng = _rng(4)
    layer = _layer(cls, num_layers=2, bidirectional=True)
    xs = rng.standard_normal((T, B, D))
    h0 = rng.standard_normal((4, B, H))
    c0 = rng.standard_normal((4, B, H))
    if as_tensor:
        xs, h0, c0 = (Tensor(a, requires_grad=True) for a in (xs, h0, c0))
    hx = (h0, c0) if cls is nn.LSTM else h0
    args = (xs, h0, c0)
    before = _frozen_copies(*args)
    out, final = layer(xs, hx)
    loss = (out * out).sum() + sum(f.sum() for f in (final if cls is nn.LSTM else (final,)))
    loss.backward()
    _assert_unchanged(args, before)
    if as_tensor:
        used = args if cls is nn.LSTM else args[:2]
        assert all(isinstance(a, Tensor) and a.grad is not None for a in used)


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_cells_and_unroll_modify_neither_inputs_nor_states(cls: Any) -> None:
    rng = _rng(5)
    cell = _cell(cls)
    xs = rng.standard_normal((T, B, D))
    h = Tensor(rng.standard_normal((B, H)), requires_grad=True)
    c = Tensor(rng.standard_normal((B, H)), requires_grad=True)
    state = (h, c) if cls is nn.LSTMCell else h
    before = _frozen_copies(xs, h, c)
    states = nn.unroll(cell, xs, state)
    last = states[-1][0] if cls is nn.LSTMCell else states[-1]
    last.sum().backward()
    _assert_unchanged((xs, h, c), before)
    assert h.is_leaf and c.is_leaf


def test_losses_modify_neither_predictions_nor_targets_nor_masks() -> None:
    rng = _rng(6)
    logits = rng.standard_normal((T, B, K))
    targets = rng.integers(0, K, (T, B))
    mask = (rng.random((T, B)) > 0.3).astype(float)
    soft = rng.random((T, B, K))
    args = (logits, targets, mask, soft)
    before = _frozen_copies(*args)
    x = Tensor(logits, requires_grad=True)
    total = (
        F.cross_entropy(x, targets, mask=mask)
        + F.binary_cross_entropy_with_logits(x, soft, mask=mask[..., None] * np.ones(K))
        + F.mse_loss(x, soft, reduction="sum")
        + nn.MSELoss()(x, soft, mask=mask)
        + nn.CrossEntropyLoss(reduction="sum")(x, Tensor(targets))
        + F.embedding(targets, x.reshape(T * B, K)).sum()
        + (F.one_hot(targets, K) * x).sum()
    )
    total.backward()
    _assert_unchanged(args, before)
    np.testing.assert_array_equal(x.data, logits)


def test_ops_modify_no_operand() -> None:
    rng = _rng(7)
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal(4)
    idx = np.array([2, 0, 2])
    cond = rng.random((3, 4)) > 0.5
    g = rng.standard_normal((3, 4))
    args = (a, b, idx, cond, g)
    before = _frozen_copies(*args)
    x = Tensor(a, requires_grad=True)
    outs = [
        x + b,
        b - x,
        x * b,
        b / (x * x + 1),
        x @ b,
        tg.where(cond, x, b),
        tg.maximum(x, b),
        x[idx],
        x[cond],
        tg.concat([x, a], axis=0),
        tg.stack([x, a]),
        x.clip(-0.5, 0.5),
    ]
    for out in outs:
        out.sum().backward()
    y = x * 1.0
    y.backward(g)
    (gx,) = tg.grad(x * 3.0, [x], grad_outputs=g)
    _assert_unchanged(args, before)
    assert not np.shares_memory(gx.data, g)


def test_optimizers_modify_neither_given_state_dicts_nor_gradients() -> None:
    rng = _rng(8)
    for make in (
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.Adam(ps, lr=0.1),
        lambda ps: optim.RMSProp(ps, lr=0.1),
        lambda ps: optim.Adagrad(ps, lr=0.1),
    ):
        w = Tensor(rng.standard_normal(3), requires_grad=True)
        opt = make([w])
        w.grad = Tensor(rng.standard_normal(3))
        opt.step()
        saved = opt.state_dict()
        kept = copy.deepcopy(saved)
        fresh = make([Tensor(rng.standard_normal(3), requires_grad=True)])
        fresh.load_state_dict(saved)
        grad = rng.standard_normal(3)
        fresh.params[0].grad = Tensor(grad)
        grad_before = grad.copy()
        fresh.step()
        fresh.step()
        for key in kept:
            np.testing.assert_array_equal(saved[key], kept[key], err_msg=key)
        np.testing.assert_array_equal(grad, grad_before)
        optim.clip_grad_norm_(fresh.params, 1e-3)
        optim.clip_grad_value_(fresh.params, 1e-4)
        np.testing.assert_array_equal(grad, grad_before)


def test_load_state_dict_copies_what_it_is_given() -> None:
    lin = _lin()
    weight = np.ones((3, 2))
    bias = np.zeros(3, dtype=np.float32)  # cast to the parameter's float64
    lin.load_state_dict({"weight": weight, "bias": bias})
    assert not np.shares_memory(lin.weight.data, weight)
    opt = optim.SGD(list(lin.parameters()), lr=1.0)
    lin(np.ones((1, 2))).sum().backward()
    opt.step()
    np.testing.assert_array_equal(weight, np.ones((3, 2)))
    np.testing.assert_array_equal(bias, np.zeros(3))


def test_run_tbptt_modifies_neither_inputs_targets_nor_the_initial_state() -> None:
    rng = _rng(9)
    model = _layer(nn.LSTM)
    head = nn.Linear(H, K, dtype=F64, rng=rng)
    xs = rng.standard_normal((T, B, D))
    ys = rng.integers(0, K, (T, B))
    h0 = Tensor(rng.standard_normal((1, B, H)), requires_grad=True)
    c0 = Tensor(rng.standard_normal((1, B, H)))
    before = _frozen_copies(xs, ys, h0, c0)

    def forward(x: Any, y: Any, state: Any) -> tuple[Tensor, Any]:
        out, final = model(x, state)
        return F.cross_entropy(head(out), y), final

    nn.run_tbptt(forward, xs, ys, chunk_len=4, state=(h0, c0))
    _assert_unchanged((xs, ys, h0, c0), before)
    assert h0.grad is None  # the initial state is detached before use


def test_failed_calls_modify_nothing() -> None:
    rng = _rng(10)
    lstm = _layer(nn.LSTM)
    xs = rng.standard_normal((T, B, D))
    h0 = Tensor(rng.standard_normal((1, B, H)), requires_grad=True)
    bad_c0 = rng.standard_normal((1, B + 1, H))
    logits = Tensor(rng.standard_normal((T, B, K)), requires_grad=True)
    targets = rng.integers(0, K, (T, B))
    targets[0, 0] = K  # out of range
    params = {k: p.data.copy() for k, p in lstm.named_parameters()}
    before = _frozen_copies(xs, h0, bad_c0, logits, targets)
    with pytest.raises(ValueError):
        lstm(xs, (h0, bad_c0))
    with pytest.raises(IndexError):
        F.cross_entropy(logits, targets)
    with pytest.raises(ValueError):
        optim.Adam(list(lstm.parameters()), lr=-1.0)
    _assert_unchanged((xs, h0, bad_c0, logits, targets), before)
    assert h0.grad is None and logits.grad is None
    for k, p in lstm.named_parameters():
        np.testing.assert_array_equal(p.data, params[k])


# --------------------------------------------------------------------------------------------
# Bugs found by these tests. An open one is marked xfail(strict=True) with the fix in its
# reason: once fixed it XPASSes, which fails, and the marker goes; the test stays as a
# regression test.
# --------------------------------------------------------------------------------------------


def _each(calls: dict[str, Callable[[], Any]], error: Any, match: str) -> None:
    """Every call raises ``error`` matching ``match`` (with the call's name in the failure)."""
    for name, call in calls.items():
        try:
            call()
        except error as exc:
            assert re.search(match, str(exc)), f"{name}: {exc}"
        else:
            raise AssertionError(f"{name}: no {error} raised")


def test_iterating_over_a_0d_tensor_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="0-d"):
        list(Tensor(1.0))


def test_tensor_refuses_string_bytes_and_datetime_data() -> None:
    _each(
        {
            "str": lambda: Tensor("abc"),
            "bytes": lambda: Tensor(b"x"),
            "dtype_str": lambda: Tensor(1.0, dtype=str),
            "datetime": lambda: Tensor(np.datetime64("2020-01-01")),
        },
        TypeError,
        r"^Tensor: data must be numeric",
    )


def test_tensor_integer_overflow_is_a_value_error() -> None:
    _each(
        {
            "int8": lambda: Tensor(300, dtype=np.int8),
            "uint8": lambda: Tensor(-1, dtype=np.uint8),
            "float_to_int64": lambda: Tensor(9.3e18, dtype=np.int64),
            "inf_to_int": lambda: Tensor(np.inf, dtype=np.int32),
        },
        ValueError,
        r"^Tensor: ",
    )


def test_ops_refuse_object_array_operands() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    _each(
        {
            "add": lambda: x + np.ones(3, dtype=object),
            "mul": lambda: np.array([1, None, 2], dtype=object) * x,
        },
        TypeError,
        r"^(add|mul): ",
    )


def test_an_operand_of_the_wrong_type_is_a_type_error() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    _each(
        {
            "str": lambda: x + "a",
            "str_array": lambda: x * np.array(["a", "b", "c"]),
            "maximum": lambda: tg.maximum(x, "a"),
        },
        TypeError,
        r"^(add|mul|maximum): ",
    )


def test_comparisons_with_non_numbers_name_the_comparison() -> None:
    x = Tensor(np.ones(3))
    _each(
        {"str": lambda: x < "a", "object": lambda: x >= object()},
        TypeError,
        r"^(less|greater|lt|ge|compare|comparison)",
    )


def test_a_float_axis_names_the_op() -> None:
    x = Tensor(np.ones((2, 3)))
    _each(
        {
            "sum": lambda: x.sum(axis=1.5),
            "mean": lambda: x.mean(axis=1.0),
            "max": lambda: x.max(axis=0.0),
            "logsumexp": lambda: tg.logsumexp(x, axis=-1.0),
        },
        TypeError,
        r"^(sum|mean|max|logsumexp): axis must be an int",
    )


def test_mean_over_axis_0_of_a_0d_tensor_works_like_sum() -> None:
    assert Tensor(2.0).sum(axis=0).item() == 2.0
    assert Tensor(2.0).mean(axis=0).item() == 2.0


def test_split_and_chunk_of_a_0d_tensor_name_the_op() -> None:
    _each(
        {"split": lambda: Tensor(1.0).split(1), "chunk": lambda: Tensor(1.0).chunk(1)},
        ValueError,
        r"^(split|chunk): ",
    )


def test_split_and_chunk_counts_must_be_integers() -> None:
    x = Tensor(np.ones((2, 4)))
    _each(
        {
            "split_float": lambda: x.split(1.5),
            "split_none": lambda: x.split(None),  # type: ignore[arg-type]
            "chunk_str": lambda: x.chunk("a"),  # type: ignore[arg-type]
            "chunk_float": lambda: x.chunk(1.5),  # type: ignore[arg-type]
        },
        TypeError,
        r"^(split|chunk): ",
    )


def test_shape_arguments_must_be_integers() -> None:
    x = Tensor(np.ones((2, 3)))
    _each(
        {
            "reshape_float": lambda: x.reshape(2.5, 3),
            "reshape_str": lambda: x.reshape("a"),
            "reshape_none": lambda: x.reshape(None),
            "expand_str": lambda: x.expand("a"),
            "transpose_str": lambda: x.transpose("a"),
            "permute_float": lambda: x.permute(1.0, 0.0),
        },
        TypeError,
        r"^(reshape|expand|broadcast_to|transpose|permute): ",
    )


def test_clip_bounds_must_be_numbers() -> None:
    x = Tensor(np.ones(3))
    _each(
        {"str": lambda: x.clip("a"), "complex": lambda: x.clip(max=1j)},  # type: ignore[arg-type]
        TypeError,
        r"^clip: ",
    )


def test_concat_and_stack_need_a_sequence_of_tensors() -> None:
    _each(
        {
            "concat_none": lambda: tg.concat(None),  # type: ignore[arg-type]
            "concat_int": lambda: tg.concat(5),  # type: ignore[arg-type]
            "concat_str": lambda: tg.concat("ab"),
            "stack_none": lambda: tg.stack(None),  # type: ignore[arg-type]
        },
        TypeError,
        r"^(concat|stack): ",
    )


def test_concat_and_stack_huge_axis_is_a_value_error() -> None:
    x = Tensor(np.ones(2))
    _each(
        {
            "concat": lambda: tg.concat([x, x], axis=10**30),
            "stack": lambda: tg.stack([x, x], axis=-(10**30)),
        },
        ValueError,
        r"^(concat|stack): ",
    )


def test_top_level_ops_on_lists_and_none() -> None:
    lst = [1.0, 2.0]
    calls: dict[str, Callable[[Any], Any]] = {
        "broadcast_to": lambda v: tg.broadcast_to(v, (2, 2)),
        "chunk": lambda v: tg.chunk(v, 2),
        "clip": lambda v: tg.clip(v, 0.0, 1.0),
        "logsumexp": lambda v: tg.logsumexp(v),
        "matmul": lambda v: tg.matmul(v, v),
        "maximum": lambda v: tg.maximum(v, v),
        "reshape": lambda v: tg.reshape(v, (2,)),
        "split": lambda v: tg.split(v, 2),
        "sum_to": lambda v: tg.sum_to(v, (1,)),
        "transpose": lambda v: tg.transpose(v),
        "where": lambda v: tg.where(np.array([True, False]), v, v),
    }
    for name, call in calls.items():
        for value in (lst, None):
            try:
                out = call(value)
            except TypeError as exc:
                assert name in str(exc), f"{name}({value!r}): {exc}"
            else:
                outs = out if isinstance(out, list) else [out]
                for o in outs:
                    assert np.asarray(o).dtype != object, f"{name}({value!r}) -> object array"


def test_softmax_and_embedding_refuse_non_tensors() -> None:
    _each(
        {
            "softmax_none": lambda: F.softmax(None),  # type: ignore[arg-type]
            "log_softmax_str": lambda: F.log_softmax("ab"),  # type: ignore[arg-type]
            "embedding_weight_list": lambda: F.embedding(np.array([0]), [[1.0]]),  # type: ignore[arg-type]
            "embedding_weight_none": lambda: F.embedding(np.array([0]), None),  # type: ignore[arg-type]
        },
        TypeError,
        r"^(softmax|log_softmax|logsumexp|embedding): ",
    )
    out = F.softmax([1.0, 2.0])  # type: ignore[arg-type]  # a list is data, like everywhere else
    np.testing.assert_allclose(np.asarray(out.data).sum(), 1.0)


def test_a_ragged_index_is_an_index_error() -> None:
    with pytest.raises(IndexError, match=r"^getitem: "):
        Tensor(np.ones((2, 3)))[[[0], [0, 1]]]


def test_a_non_numeric_gradient_names_backward() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    _each(
        {
            "str": lambda: (x * 2).backward("abc"),
            "object": lambda: (x * 2).backward(object()),
            "grad_outputs": lambda: tg.grad(x * 2, [x], grad_outputs=[{}]),
        },
        TypeError,
        r"^(backward|grad): ",
    )


def test_grad_with_non_tensor_arguments_names_the_argument() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    _each(
        {
            "outputs_float": lambda: tg.grad(1.0, [x]),  # type: ignore[arg-type]
            "outputs_none": lambda: tg.grad(None, [x]),  # type: ignore[arg-type]
            "inputs_none": lambda: tg.grad((x * 2).sum(), None),  # type: ignore[arg-type]
            "inputs_int": lambda: tg.grad((x * 2).sum(), 5),  # type: ignore[arg-type]
            "grad_outputs_int": lambda: tg.grad((x * 2).sum(), [x], grad_outputs=5),
        },
        TypeError,
        r"^grad: (outputs|inputs|grad_outputs)",
    )


def test_cross_entropy_axis_must_be_an_int() -> None:
    logits = Tensor(np.zeros((4, 3)))
    _each(
        {
            "str": lambda: F.cross_entropy(logits, TARGETS, axis="a"),  # type: ignore[arg-type]
            "float": lambda: F.cross_entropy(logits, TARGETS, axis=1.0),  # type: ignore[arg-type]
            "module": lambda: nn.CrossEntropyLoss(axis="a"),  # type: ignore[arg-type]
        },
        TypeError,
        r"^(cross_entropy|CrossEntropyLoss): axis",
    )


def test_non_numeric_targets_and_masks_name_the_loss() -> None:
    logits = Tensor(np.zeros((4, 3)))
    _each(
        {
            "bce_targets": lambda: F.binary_cross_entropy_with_logits(logits, "abc"),
            "ce_mask": lambda: F.cross_entropy(logits, TARGETS, mask=np.array(["a"] * 4)),
        },
        TypeError,
        r"^(binary_cross_entropy_with_logits|cross_entropy): (targets|mask)",
    )


def test_one_hot_checks_num_classes() -> None:
    idx = np.array([0])
    _each(
        {"negative": lambda: F.one_hot(idx, -1)},
        ValueError,
        r"^one_hot: num_classes",
    )
    _each(
        {
            "str": lambda: F.one_hot(idx, "3"),  # type: ignore[arg-type]
            "float": lambda: F.one_hot(idx, 2.5),  # type: ignore[arg-type]
            "none": lambda: F.one_hot(idx, None),  # type: ignore[arg-type]
        },
        TypeError,
        r"^one_hot: num_classes",
    )


def test_an_empty_list_of_indices_selects_nothing() -> None:
    assert F.embedding([], Tensor(np.zeros((3, 2)))).shape == (0, 2)
    assert F.one_hot([], 3).shape == (0, 3)


def test_modules_check_rng_and_dtype() -> None:
    _each(
        {
            "linear_rng": lambda: nn.Linear(2, 3, rng=5),  # type: ignore[arg-type]
            "embedding_rng": lambda: nn.Embedding(2, 3, rng="seed"),  # type: ignore[arg-type]
            "lstm_cell_rng": lambda: nn.LSTMCell(2, 3, rng=0),  # type: ignore[arg-type]
            "gru_rng": lambda: nn.GRU(2, 3, rng=object()),  # type: ignore[arg-type]
            "linear_dtype": lambda: nn.Linear(2, 3, dtype="foo"),
            "rnn_dtype": lambda: nn.RNN(2, 3, dtype="float128x"),
        },
        TypeError,
        r"^(Linear|Embedding|LSTMCell|GRU|RNN): (rng|dtype)",
    )


def test_unroll_needs_a_callable_cell() -> None:
    with pytest.raises(TypeError, match=r"^unroll: cell"):
        nn.unroll(None, XS)  # type: ignore[arg-type]


def test_run_tbptt_checks_its_arguments() -> None:
    def forward(x: Any, y: Any, s: Any) -> Any:
        return Tensor(1.0)

    _each(
        {
            "chunk_float": lambda: nn.run_tbptt(forward, XS, chunk_len=2.5),  # type: ignore[arg-type]
            "chunk_str": lambda: nn.run_tbptt(forward, XS, chunk_len="a"),  # type: ignore[arg-type]
            "inputs_none": lambda: nn.run_tbptt(forward, None, chunk_len=2),
            "forward_not_pair": lambda: nn.run_tbptt(forward, XS, chunk_len=2),
        },
        TypeError,
        r"^(run_tbptt|chunk_bounds): ",
    )
    with pytest.raises((ValueError, IndexError), match=r"^run_tbptt: time_axis"):
        nn.run_tbptt(forward, XS, chunk_len=2, time_axis=5)


def test_optimizer_load_state_dict_needs_a_mapping() -> None:
    opt, _ = _adam_state()
    _each(
        {"none": lambda: opt.load_state_dict(None), "list": lambda: opt.load_state_dict([1])},  # type: ignore[arg-type]
        TypeError,
        r"^Adam.load_state_dict: .*(mapping|dict)",
    )


def test_huge_integer_hyperparameters_are_value_errors() -> None:
    _each(
        {
            "sgd_lr": lambda: optim.SGD([_w()], lr=10**400),
            "adam_eps": lambda: optim.Adam([_w()], eps=10**400),
            "clip_norm": lambda: optim.clip_grad_norm_([_w()], 10**400),
        },
        ValueError,
        r"^(SGD|Adam|clip_grad_norm_): ",
    )


def test_save_refuses_the_reserved_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^save: .*__tinygrad_rnn_checkpoint__"):
        tg.save({"__tinygrad_rnn_checkpoint__": np.zeros(2)}, tmp_path / "c.npz")


def test_save_and_load_argument_errors_name_the_function(tmp_path: Path) -> None:
    _each(
        {
            "ragged": lambda: tg.save({"a": [[1.0], [1.0, 2.0]]}, tmp_path / "c.npz"),
            "save_path": lambda: tg.save({"a": 1}, None),  # type: ignore[arg-type]
            "load_path": lambda: tg.load(None),  # type: ignore[arg-type]
        },
        (TypeError, ValueError),
        r"^(save|load): ",
    )


def _npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def test_a_crafted_checkpoint_is_a_value_error(tmp_path: Path) -> None:
    marker = "__tinygrad_rnn_checkpoint__"
    zero = np.zeros(1)
    _each(
        {
            "marker_str": lambda: tg.load(_npz(tmp_path / "s.npz", **{marker: np.array("x")})),
            "marker_vector": lambda: tg.load(_npz(tmp_path / "v.npz", **{marker: np.ones(2)})),
            "leaf_then_folder": lambda: tg.load(
                _npz(tmp_path / "l.npz", **{marker: np.array(1), "a": zero, "a/b": zero})
            ),
            "folder_then_leaf": lambda: tg.load(
                _npz(tmp_path / "f.npz", **{marker: np.array(1), "a/b": zero, "a": zero})
            ),
        },
        ValueError,
        r"^load: ",
    )


def test_gradcheck_checks_its_arguments() -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    _each(
        {"eps": lambda: tg.gradcheck(lambda t: t * 2, [x], eps=0)}, ValueError, r"^gradcheck: eps"
    )
    _each(
        {
            "returns_int": lambda: tg.gradcheck(lambda t: 5, [x]),
            "inputs_none": lambda: tg.gradcheck(lambda t: t, None),  # type: ignore[arg-type]
        },
        TypeError,
        r"^gradcheck: ",
    )


def test_cross_entropy_of_an_empty_batch() -> None:
    logits = Tensor(np.zeros((0, 3)), requires_grad=True)
    targets = np.zeros(0, dtype=int)
    assert F.cross_entropy(logits, targets, reduction="none").shape == (0,)
    total = F.cross_entropy(logits, targets, reduction="sum")
    assert total.item() == 0.0
    with pytest.raises(ValueError, match=r"cross_entropy: the mean of an empty loss"):
        F.cross_entropy(logits, targets)


def test_nan_logits_in_binary_cross_entropy_give_nan_without_a_warning() -> None:
    logits = Tensor(np.array([[np.nan, 0.0]]), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, np.zeros((1, 2)))
    assert np.isnan(loss.item())


def test_python_ints_too_large_for_the_dtype_are_value_errors() -> None:
    x = Tensor([1.0], requires_grad=True)
    _each(
        {
            "add": lambda: x + 10**400,
            "mul": lambda: -(10**400) * x,
            "maximum_no_tensor": lambda: tg.maximum(10**30, False),
            "maximum_int64": lambda: tg.maximum(2**63, 1),
        },
        (ValueError, TypeError),
        r"^(add|mul|maximum): ",
    )


HUGE = 10**400  # a Python int beyond float64 (and int64)


def test_comparisons_with_ints_too_large_for_a_float() -> None:
    x = Tensor([1.0])
    for name, call in {"lt": lambda: x < HUGE, "eq": lambda: x == HUGE}.items():
        try:
            out = call()
        except (ValueError, TypeError) as exc:
            assert re.match(r"(less|equal)", str(exc)), f"{name}: {exc}"
        else:
            assert out.dtype == np.bool_


def test_module_sizes_too_large_for_a_float_are_value_errors() -> None:
    _each(
        {
            "linear": lambda: nn.Linear(HUGE, 2),
            "rnn": lambda: nn.RNN(1, HUGE),
            "gru_cell": lambda: nn.GRUCell(2, HUGE),
        },
        ValueError,
        r"^(Linear|RNN|GRUCell): (in_features|hidden_size)",
    )


def test_backward_and_gradcheck_with_ints_too_large_for_a_float() -> None:
    x = Tensor([1.0], requires_grad=True)
    _each(
        {
            "backward": lambda: (x * 2).backward(HUGE),
            "gradcheck": lambda: tg.gradcheck(lambda t: t * 2, [x], eps=HUGE),
        },
        (ValueError, TypeError),
        r"^(backward|gradcheck): ",
    )
