"""Weights between three layouts: the source documents', PyTorch's, and ours.

(a) The documents (spec §1 and §4):

* RNN, column vectors: ``U (H, D)``, ``W (H, H)``, ``V (K, H)``, ``b (H,)``,
  ``c (K,)`` with ``s_t = tanh(U x_t + W s_{t-1} + b)``, ``o_t = V s_t + c``.
* LSTM, row vectors acting on ``z_t = [h_{t-1}, x_t]`` (hidden state FIRST):
  ``W_f, W_i, W_c, W_o (H+D, H)``, ``b_f, b_i, b_c, b_o (H,)``,
  ``W_y (H, K)``, ``b_y (K,)``.

(b) PyTorch's state_dict layout (``nn.RNN``/``nn.LSTM``/``nn.GRU`` and cells,
gate order i, f, g, o and r, z, n), which (c) our modules use natively, so
between (b) and (c) names and arrays are identical.

Mapping (a) <-> (c)::

    RNN:   U = weight_ih      W = weight_hh     b = bias_ih + bias_hh
           V = head.weight    c = head.bias
    LSTM:  for gate g in i, f, g (the document's c), o, with rows g·H:(g+1)·H:
           W_g = [weight_hh_gᵀ ; weight_ih_gᵀ]      (H+D, H), h-rows first
           b_g = bias_ih_g + bias_hh_g
           W_y = head.weightᵀ   b_y = head.bias

From a document the two biases are not identifiable, so ``bias_ih = b`` and
``bias_hh = 0``. The dict keys are exactly the keyword names of
[`tinygrad_rnn.reference`][tinygrad_rnn.reference] (``rnn_bptt(xs, y, s0, **doc)``).
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from tinygrad_rnn.nn.cells import GRUCell, LSTMCell, RNNCell, _Cell
from tinygrad_rnn.nn.dropout import Dropout
from tinygrad_rnn.nn.layers import Embedding, Linear
from tinygrad_rnn.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinygrad_rnn.nn.module import (
    _FROM_TORCH,
    Module,
    StateDictError,
    _to_numpy,
    module_from_torch,
)
from tinygrad_rnn.nn.recurrent import GRU, LSTM, RNN, _RNNBase

__all__ = [
    "LSTM_DOC_KEYS",
    "RNN_DOC_KEYS",
    "cell_from_layer",
    "load_torch_state_dict",
    "lstm_from_document",
    "lstm_grads_to_document",
    "lstm_to_document",
    "module_from_torch",
    "rnn_from_document",
    "rnn_grads_to_document",
    "rnn_to_document",
    "to_torch_state_dict",
]

RNN_DOC_KEYS = ("U", "W", "V", "b", "c")
LSTM_DOC_KEYS = ("W_f", "W_i", "W_c", "W_o", "b_f", "b_i", "b_c", "b_o", "W_y", "b_y")
# PyTorch's gate order i, f, g, o and the document's name of each gate.
_TORCH_GATES = ("i", "f", "c", "o")


# --------------------------------------------------------------------------------------------
# Reading our modules.
# --------------------------------------------------------------------------------------------


def _arrays(
    module: Module, kind: type[_Cell], layer_kind: type[_RNNBase], grads: bool, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(weight_ih, weight_hh, bias_ih, bias_hh)`` values (or grads) of a cell or 1-layer layer."""
    if isinstance(module, kind):
        params = [module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh]
    elif isinstance(module, layer_kind):
        if module.num_layers != 1 or module.bidirectional or module.proj_size:
            raise ValueError(
                f"{where}: the documents describe one unidirectional layer without a "
                f"projection; got num_layers={module.num_layers}, "
                f"bidirectional={module.bidirectional}, proj_size={module.proj_size}"
            )
        params = list(module._params("_l0"))
    else:
        raise TypeError(
            f"{where}: expected a {kind.__name__} or {layer_kind.__name__}, "
            f"got {type(module).__name__}"
        )
    if isinstance(module, (RNNCell, RNN)) and module.nonlinearity != "tanh":
        raise ValueError(f"{where}: the documents' RNN uses tanh, got {module.nonlinearity!r}")
    if not grads:
        return tuple(None if p is None else p.data.copy() for p in params)  # type: ignore[return-value]
    if all(p is None or p.grad is None for p in params):
        raise ValueError(f"{where}: no parameter has a gradient; run backward first")
    return tuple(  # type: ignore[return-value]
        None if p is None else (np.zeros_like(p.data) if p.grad is None else p.grad.data.copy())
        for p in params
    )


def _head_arrays(
    head: Linear, hidden: int, grads: bool, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(weight (K, H), bias (K,))`` values or gradients of the output layer (bias 0 if absent)."""
    if not isinstance(head, Linear):
        raise TypeError(f"{where}: head must be a Linear, got {type(head).__name__}")
    if head.in_features != hidden:
        raise ValueError(
            f"{where}: head.in_features={head.in_features} must equal hidden_size={hidden}"
        )

    def value(p: Any, shape: tuple[int, ...]) -> np.ndarray:
        if p is None or (grads and p.grad is None):
            return np.zeros(shape, dtype=head.dtype)
        return (p.grad.data if grads else p.data).copy()

    return value(head.weight, head.weight.shape), value(head.bias, (head.out_features,))


def _sum_biases(b_ih: np.ndarray | None, b_hh: np.ndarray | None, n: int, dtype: Any) -> np.ndarray:
    if b_ih is None or b_hh is None:
        return np.zeros(n, dtype=dtype)
    return b_ih + b_hh


def _rnn_doc(rnn: RNNCell | RNN, head: Linear, grads: bool, where: str) -> dict[str, np.ndarray]:
    w_ih, w_hh, b_ih, b_hh = _arrays(rnn, RNNCell, RNN, grads, where)
    V, c = _head_arrays(head, w_hh.shape[0], grads, where)
    # b = b_ih + b_hh, so ∂L/∂b equals ∂L/∂b_ih (and ∂L/∂b_hh): not their sum.
    b = (
        _sum_biases(b_ih, b_hh, w_hh.shape[0], w_hh.dtype)
        if not grads
        else (np.zeros(w_hh.shape[0], dtype=w_hh.dtype) if b_ih is None else b_ih)
    )
    return {"U": w_ih, "W": w_hh, "V": V, "b": b, "c": c}


def rnn_to_document(rnn: RNNCell | RNN, head: Linear) -> dict[str, np.ndarray]:
    """The documents' RNN parameters (spec §1) from a tanh RNN and its output layer.

    Args:
        rnn: an [`RNNCell`][tinygrad_rnn.nn.RNNCell] or a one-layer unidirectional
            [`RNN`][tinygrad_rnn.nn.RNN] (tanh).
        head: the output [`Linear`][tinygrad_rnn.nn.Linear] ``(H -> K)``.

    Returns:
        ``{"U": (H, D), "W": (H, H), "V": (K, H), "b": (H,), "c": (K,)}`` (copies), with
        ``U = weight_ih``, ``W = weight_hh``, ``b = bias_ih + bias_hh``, ``V = head.weight``,
        ``c = head.bias`` (zeros for absent biases).
    """
    return _rnn_doc(rnn, head, False, "rnn_to_document")


def rnn_grads_to_document(rnn: RNNCell | RNN, head: Linear) -> dict[str, np.ndarray]:
    """The gradients of [`rnn_to_document`][tinygrad_rnn.nn.rnn_to_document]'s parameters, from
    ``.grad`` after a backward.

    Since ``b = bias_ih + bias_hh``, ``∂L/∂b = ∂L/∂bias_ih``. Same keys and shapes
    as [`rnn_to_document`][tinygrad_rnn.nn.rnn_to_document], so it compares directly with
    ``tinygrad_rnn.reference.rnn_bptt(...).grads``.
    """
    return _rnn_doc(rnn, head, True, "rnn_grads_to_document")


def _gate_rows(w: np.ndarray, k: int, hidden: int) -> np.ndarray:
    """Rows of gate ``k`` in a fused ``(4H, ·)`` weight or ``(4H,)`` bias."""
    return w[k * hidden : (k + 1) * hidden]


def _lstm_doc(
    lstm: LSTMCell | LSTM, head: Linear, grads: bool, where: str
) -> dict[str, np.ndarray]:
    w_ih, w_hh, b_ih, b_hh = _arrays(lstm, LSTMCell, LSTM, grads, where)
    H = w_hh.shape[1]
    W_y, b_y = _head_arrays(head, H, grads, where)
    out: dict[str, np.ndarray] = {}
    for k, g in enumerate(_TORCH_GATES):
        # z W_g = h W_hh,gᵀ + x W_ih,gᵀ with z = [h, x]: the h-rows come first.
        out[f"W_{g}"] = np.concatenate([_gate_rows(w_hh, k, H).T, _gate_rows(w_ih, k, H).T], axis=0)
        if b_ih is None or b_hh is None:
            out[f"b_{g}"] = np.zeros(H, dtype=w_hh.dtype)
        elif grads:  # b_g = b_ih,g + b_hh,g, so ∂L/∂b_g = ∂L/∂b_ih,g
            out[f"b_{g}"] = _gate_rows(b_ih, k, H).copy()
        else:
            out[f"b_{g}"] = _gate_rows(b_ih, k, H) + _gate_rows(b_hh, k, H)
    out["W_y"] = W_y.T.copy()
    out["b_y"] = b_y
    return {key: out[key] for key in LSTM_DOC_KEYS}


def lstm_to_document(lstm: LSTMCell | LSTM, head: Linear) -> dict[str, np.ndarray]:
    """Seed 004's LSTM parameters (spec §4) from an LSTM and its output layer.

    Args:
        lstm: an [`LSTMCell`][tinygrad_rnn.nn.LSTMCell] or a one-layer unidirectional
            [`LSTM`][tinygrad_rnn.nn.LSTM].
        head: the output [`Linear`][tinygrad_rnn.nn.Linear] ``(H -> K)``.

    Returns:
        ``{"W_f", "W_i", "W_c", "W_o": (H+D, H), "b_f", "b_i", "b_c", "b_o": (H,),
        "W_y": (H, K), "b_y": (K,)}`` with ``W_g = [weight_hh_gᵀ; weight_ih_gᵀ]`` (rows for
        ``h`` first), ``b_g = bias_ih_g + bias_hh_g``, ``W_y = head.weightᵀ``, ``b_y = head.bias``.
        PyTorch's gate ``g`` is the document's candidate ``c̃`` (``W_c``).
    """
    return _lstm_doc(lstm, head, False, "lstm_to_document")


def lstm_grads_to_document(lstm: LSTMCell | LSTM, head: Linear) -> dict[str, np.ndarray]:
    """The gradients of [`lstm_to_document`][tinygrad_rnn.nn.lstm_to_document]'s parameters, from
    ``.grad`` after a backward.

    The map is linear in the weights, so the gradients rearrange the same way;
    ``∂L/∂b_g = ∂L/∂bias_ih_g``. Compares directly with
    ``tinygrad_rnn.reference.lstm_bptt(...).grads``.
    """
    return _lstm_doc(lstm, head, True, "lstm_grads_to_document")


# --------------------------------------------------------------------------------------------
# Building our modules from a document's parameters.
# --------------------------------------------------------------------------------------------


def _doc_arrays(
    params: dict[str, Any], keys: tuple[str, ...], dtype: npt.DTypeLike | None, where: str
) -> dict[str, np.ndarray]:
    """The document's arrays, keys checked, in one floating dtype."""
    if not isinstance(params, dict):
        raise TypeError(f"{where}: params must be a dict, got {type(params).__name__}")
    missing = [k for k in keys if k not in params]
    unexpected = [k for k in params if k not in keys]
    if missing or unexpected:
        raise StateDictError(
            f"{where}: params must have exactly the keys {list(keys)}; "
            f"missing {missing}, unexpected {unexpected}"
        )
    arrays = {k: _to_numpy(params[k], k) for k in keys}
    if dtype is None:
        dt = np.result_type(*arrays.values())
        dt = dt if dt.kind == "f" else np.dtype(np.float64)
    else:
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"{where}: dtype must be floating, got {dt}")
    return {k: np.asarray(a, dtype=dt) for k, a in arrays.items()}


def _expect(where: str, name: str, arr: np.ndarray, shape: tuple[int, ...], layout: str) -> None:
    if arr.shape != shape:
        raise ValueError(f"{where}: {name} must have shape {layout} = {shape}, got {arr.shape}")


def _build(
    as_layer: bool,
    cell_cls: Any,
    layer_cls: Any,
    sizes: tuple[int, int],
    state: dict[str, np.ndarray],
    dtype: np.dtype[Any],
) -> Any:
    """A cell or a one-layer layer with the given (cell-named) parameters."""
    if as_layer:
        module: Any = layer_cls(*sizes, dtype=dtype)
        module.load_state_dict({f"{k}_l0": v for k, v in state.items()})
    else:
        module = cell_cls(*sizes, dtype=dtype)
        module.load_state_dict(state)
    return module


def _make_head(weight: np.ndarray, bias: np.ndarray, dtype: np.dtype[Any]) -> Linear:
    head = Linear(weight.shape[1], weight.shape[0], dtype=dtype)
    head.load_state_dict({"weight": weight, "bias": bias})
    return head


@overload
def rnn_from_document(
    params: dict[str, Any], dtype: npt.DTypeLike | None = ..., as_layer: Literal[False] = ...
) -> tuple[RNNCell, Linear]: ...
@overload
def rnn_from_document(
    params: dict[str, Any], dtype: npt.DTypeLike | None = ..., *, as_layer: Literal[True]
) -> tuple[RNN, Linear]: ...
@overload
def rnn_from_document(
    params: dict[str, Any], dtype: npt.DTypeLike | None = ..., as_layer: bool = ...
) -> tuple[RNNCell | RNN, Linear]: ...
def rnn_from_document(
    params: dict[str, Any], dtype: npt.DTypeLike | None = None, as_layer: bool = False
) -> tuple[RNNCell | RNN, Linear]:
    """An RNN and its output layer from the documents' ``{U, W, V, b, c}`` (spec §1).

    Args:
        params: ``{"U": (H, D), "W": (H, H), "V": (K, H), "b": (H,), "c": (K,)}``
            (arrays, Tensors or torch tensors), e.g. from
            [`tinygrad_rnn.reference.init_rnn_params`][tinygrad_rnn.reference.init_rnn_params].
        dtype: dtype of the modules (default: the arrays' floating dtype).
        as_layer: return a one-layer [`RNN`][tinygrad_rnn.nn.RNN] instead of an
            [`RNNCell`][tinygrad_rnn.nn.RNNCell].

    Returns:
        ``(rnn, head)`` with ``weight_ih = U``, ``weight_hh = W``, ``bias_ih = b``,
        ``bias_hh = 0``, ``head.weight = V``, ``head.bias = c``.

    Raises:
        StateDictError: missing or extra keys (a KeyError and a ValueError).
        ValueError: inconsistent shapes (the message names the key).
    """
    where = "rnn_from_document"
    p = _doc_arrays(params, RNN_DOC_KEYS, dtype, where)
    if p["U"].ndim != 2 or p["V"].ndim != 2:
        raise ValueError(
            f"{where}: U must be (H, D) and V (K, H), got {p['U'].shape} and {p['V'].shape}"
        )
    (H, D), K = p["U"].shape, p["V"].shape[0]
    _expect(where, "W", p["W"], (H, H), "(H, H)")
    _expect(where, "V", p["V"], (K, H), "(K, H)")
    _expect(where, "b", p["b"], (H,), "(H,)")
    _expect(where, "c", p["c"], (K,), "(K,)")
    dt = p["U"].dtype
    state = {
        "weight_ih": p["U"],
        "weight_hh": p["W"],
        "bias_ih": p["b"],
        "bias_hh": np.zeros(H, dt),
    }
    rnn = _build(as_layer, RNNCell, RNN, (D, H), state, dt)
    return rnn, _make_head(p["V"], p["c"], dt)


@overload
def lstm_from_document(
    params: dict[str, Any], dtype: npt.DTypeLike | None = ..., as_layer: Literal[False] = ...
) -> tuple[LSTMCell, Linear]: ...
@overload
def lstm_from_document(
    params: dict[str, Any], dtype: npt.DTypeLike | None = ..., *, as_layer: Literal[True]
) -> tuple[LSTM, Linear]: ...
@overload
def lstm_from_document(
    params: dict[str, Any], dtype: npt.DTypeLike | None = ..., as_layer: bool = ...
) -> tuple[LSTMCell | LSTM, Linear]: ...
def lstm_from_document(
    params: dict[str, Any], dtype: npt.DTypeLike | None = None, as_layer: bool = False
) -> tuple[LSTMCell | LSTM, Linear]:
    """An LSTM and its output layer from seed 004's parameters (spec §4).

    Args:
        params: ``{"W_f", "W_i", "W_c", "W_o": (H+D, H), "b_f", "b_i", "b_c", "b_o": (H,),
            "W_y": (H, K), "b_y": (K,)}``; rows ``:H`` of ``W_g`` act on ``h_{t-1}``.
        dtype: dtype of the modules (default: the arrays' floating dtype).
        as_layer: return a one-layer [`LSTM`][tinygrad_rnn.nn.LSTM] instead of an
            [`LSTMCell`][tinygrad_rnn.nn.LSTMCell].

    Returns:
        ``(lstm, head)``: gate ``g`` (order i, f, g=c̃, o) gets ``weight_ih_g = W_g[H:]ᵀ``,
        ``weight_hh_g = W_g[:H]ᵀ``, ``bias_ih_g = b_g``, ``bias_hh_g = 0``;
        ``head.weight = W_yᵀ``, ``head.bias = b_y``.

    Raises:
        StateDictError: missing or extra keys (a KeyError and a ValueError).
        ValueError: inconsistent shapes (the message names the key).
    """
    where = "lstm_from_document"
    p = _doc_arrays(params, LSTM_DOC_KEYS, dtype, where)
    if p["W_f"].ndim != 2 or p["W_y"].ndim != 2:
        raise ValueError(
            f"{where}: W_f must be (H+D, H) and W_y (H, K), got {p['W_f'].shape} "
            f"and {p['W_y'].shape}"
        )
    Z, H = p["W_f"].shape
    D, K = Z - H, p["W_y"].shape[1]
    if D <= 0:
        raise ValueError(f"{where}: W_f must be (H+D, H) with D > 0, got {p['W_f'].shape}")
    for g in _TORCH_GATES:
        _expect(where, f"W_{g}", p[f"W_{g}"], (Z, H), "(H+D, H)")
        _expect(where, f"b_{g}", p[f"b_{g}"], (H,), "(H,)")
    _expect(where, "W_y", p["W_y"], (H, K), "(H, K)")
    _expect(where, "b_y", p["b_y"], (K,), "(K,)")
    dt = p["W_f"].dtype
    state = {
        "weight_ih": np.concatenate([p[f"W_{g}"][H:].T for g in _TORCH_GATES], axis=0),
        "weight_hh": np.concatenate([p[f"W_{g}"][:H].T for g in _TORCH_GATES], axis=0),
        "bias_ih": np.concatenate([p[f"b_{g}"] for g in _TORCH_GATES]),
        "bias_hh": np.zeros(4 * H, dt),
    }
    lstm = _build(as_layer, LSTMCell, LSTM, (D, H), state, dt)
    return lstm, _make_head(p["W_y"].T, p["b_y"], dt)


# --------------------------------------------------------------------------------------------
# Layers and cells; PyTorch.
# --------------------------------------------------------------------------------------------

_CELL_OF: dict[type[_RNNBase], type[_Cell]] = {RNN: RNNCell, LSTM: LSTMCell, GRU: GRUCell}


def cell_from_layer(layer: RNN | LSTM | GRU, layer_index: int = 0, reverse: bool = False) -> Any:
    """A cell holding copies of one layer-and-direction's weights of a sequence layer.

    ``unroll(cell_from_layer(rnn), x)`` computes what ``rnn(x)`` computes for a
    one-layer unidirectional ``rnn`` (the cell and the layer share the step
    functions); with ``reverse=True``, unroll over ``x`` reversed in time.

    Args:
        layer: an [`RNN`][tinygrad_rnn.nn.RNN], [`LSTM`][tinygrad_rnn.nn.LSTM] or
            [`GRU`][tinygrad_rnn.nn.GRU].
        layer_index: which layer ``k`` (its input size is ``D`` for ``k = 0``, else ``dirs·H``).
        reverse: take the ``_reverse`` direction of a bidirectional layer.

    Returns:
        An [`RNNCell`][tinygrad_rnn.nn.RNNCell], [`LSTMCell`][tinygrad_rnn.nn.LSTMCell] or
        [`GRUCell`][tinygrad_rnn.nn.GRUCell] in the layer's dtype.
    """
    cell_cls = next((c for k, c in _CELL_OF.items() if isinstance(layer, k)), None)
    if cell_cls is None:
        raise TypeError(
            f"cell_from_layer: expected an RNN, LSTM or GRU, got {type(layer).__name__}"
        )
    if not 0 <= layer_index < layer.num_layers:
        raise ValueError(
            f"cell_from_layer: layer_index must be in [0, {layer.num_layers}), got {layer_index}"
        )
    if reverse and not layer.bidirectional:
        raise ValueError("cell_from_layer: reverse=True needs a bidirectional layer")
    if layer.proj_size:
        raise ValueError(
            f"cell_from_layer: an LSTM with proj_size={layer.proj_size} has no cell "
            "counterpart (LSTMCell has no projection)"
        )
    suffix = f"_l{layer_index}" + ("_reverse" if reverse else "")
    w_ih, _, _, _ = layer._params(suffix)
    kwargs: dict[str, Any] = {"bias": layer.bias, "dtype": layer.dtype}
    if isinstance(layer, RNN):
        kwargs["nonlinearity"] = layer.nonlinearity
    cell = cell_cls(w_ih.shape[1], layer.hidden_size, **kwargs)
    names = (
        ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        if layer.bias
        else ("weight_ih", "weight_hh")
    )
    cell.load_state_dict({n: getattr(layer, n + suffix).data for n in names})
    return cell


def to_torch_state_dict(module: Module) -> dict[str, np.ndarray]:
    """``module``'s parameters under PyTorch's names (copies).

    Our modules use PyTorch's names and layouts, so this is
    [`Module.state_dict`][tinygrad_rnn.nn.Module.state_dict]; load it into torch with
    ``torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
    """
    if not isinstance(module, Module):
        raise TypeError(f"to_torch_state_dict: expected a Module, got {type(module).__name__}")
    return module.state_dict()


def load_torch_state_dict(module: Module, state_dict: dict[str, Any], strict: bool = True) -> None:
    """Load a PyTorch state_dict (torch tensors or arrays) into ``module``.

    Values are copied to CPU numpy and cast to each parameter's dtype; the same
    checks as [`Module.load_state_dict`][tinygrad_rnn.nn.Module.load_state_dict] apply
    (missing/unexpected keys, shapes). Buffers are not expected: our modules have none.
    The names include ``weight_hr_l{k}`` of an LSTM with ``proj_size``; a state_dict has no
    entry for a ``Dropout`` (it has no parameters) or for ``padding_idx`` (a constructor
    argument: build the module with the same one).
    """
    if not isinstance(module, Module):
        raise TypeError(f"load_torch_state_dict: expected a Module, got {type(module).__name__}")
    module.load_state_dict({k: _to_numpy(v, k) for k, v in state_dict.items()}, strict=strict)


# The counterparts module_from_torch (in .module) looks up by torch.nn class name.
_FROM_TORCH.update(
    {
        "Linear": Linear,
        "Embedding": Embedding,
        "Dropout": Dropout,
        "RNNCell": RNNCell,
        "LSTMCell": LSTMCell,
        "GRUCell": GRUCell,
        "RNN": RNN,
        "LSTM": LSTM,
        "GRU": GRU,
        "CrossEntropyLoss": CrossEntropyLoss,
        "MSELoss": MSELoss,
        "BCEWithLogitsLoss": BCEWithLogitsLoss,
    }
)
