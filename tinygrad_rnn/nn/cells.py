"""Recurrent cells (one time step) and the step functions shared with the layers.

The equations live exactly once, in `_rnn_step`, `_lstm_step` and
`_gru_step`. A cell calls them with the input projection of one step;
the sequence layers in [`tinygrad_rnn.nn.recurrent`][tinygrad_rnn.nn.recurrent] call the very same
functions with a slice of a projection computed for all steps at once. Both
compute the projection with `_input_projection` and the same bias
grouping, so a layer reproduces a cell unrolled over time.

Parameters use PyTorch's names, shapes and gate order, so state_dicts are
interchangeable with ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell``.
Everything is composed of engine ops; gradients come from autograd only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_rnn import ops
from tinygrad_rnn.nn.module import (
    Module,
    Parameter,
    _as_input,
    _check_float_dtype,
    _check_rng,
    _check_torch_type,
    _positive,
    _torch_dtype,
    _torch_state,
    _uniform,
)
from tinygrad_rnn.tensor import Tensor, _holds_large

__all__ = ["GRUCell", "LSTMCell", "RNNCell"]

LSTMState = tuple[Tensor, Tensor]
NONLINEARITIES = ("tanh", "relu")


# --------------------------------------------------------------------------------------------
# The step functions: the only place the cell equations are written.
# --------------------------------------------------------------------------------------------


def _input_projection(x: Tensor, weight_ih: Tensor, bias: Tensor | None) -> Tensor:
    """``x W_ihᵀ + bias`` for ``x (..., D)`` -> ``(..., G·H)``.

    One ``linear`` op: for a layer, one matrix product over all T·B rows of the sequence.
    """
    return ops.linear(x, weight_ih) if bias is None else ops.linear(x, weight_ih, bias)


def _summed_bias(bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor | None:
    """``b_ih + b_hh`` (RNN, LSTM): both biases are simply added to the pre-activation."""
    if bias_ih is None or bias_hh is None:
        return None
    return bias_ih + bias_hh


def _rnn_step(
    gi: Tensor, h: Tensor, w_hh_t: Tensor, nonlinearity: str, t: int | None = None
) -> Tensor:
    """Elman step ``h' = act(gi + h W_hhᵀ)`` with ``gi = x W_ihᵀ + b_ih + b_hh``.

    ``gi`` is ``(B, H)``, or with ``t`` the projection of all steps ``(T, B, H)`` of which
    row ``t`` is read; ``h`` is ``(B, H)``, ``w_hh_t`` is ``W_hhᵀ (H, H)``; ``act`` is tanh
    or relu. Elementary ops only: ``addmm`` (``c + a @ b``) and the activation.
    """
    z = ops.addmm(gi if t is None else gi[t], h, w_hh_t)
    h_new = z.tanh() if nonlinearity == "tanh" else z.relu()
    _release(z)
    return h_new


def _release(*tensors: Tensor) -> None:
    """Let the memory of a step's intermediates go in eager mode, before the backward pass.

    For values no derivative rule reads (``addmm``'s, the slices' and ``add``'s rules and
    the activations' read no such value; the nodes that took them saved stand-ins), once
    the step has used them. The first tensor is the largest: under
    ``tensor._RELEASE_MIN_BYTES`` nothing is released (batch 1, the small graphs people
    draw). The jit frees values by liveness and needs none of this.
    """
    if _holds_large(tensors[0].data):
        for x in tensors:
            x._release_values()


def _lstm_step(
    gi: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh_t: Tensor,
    t: int | None = None,
    w_hr_t: Tensor | None = None,
) -> LSTMState:
    """LSTM step, PyTorch's gate order i, f, g, o.

    ``gi = x W_ihᵀ + b_ih + b_hh`` ``(B, 4H)`` (or all steps ``(T, B, 4H)`` and the step
    ``t``), ``w_hh_t = W_hhᵀ (R, 4H)``; the documents' equations, one elementary op each::

        z = gi + h W_hhᵀ                       addmm
        [z_i, z_f, z_g, z_o] = z               four slices of the last axis
        i, f, g, o = σ(z_i), σ(z_f), tanh(z_g), σ(z_o)
        c' = f ⊙ c + i ⊙ g
        h' = o ⊙ tanh(c')
        h' = h' W_hrᵀ                          matmul, only with a projection w_hr_t

    ``h`` is ``(B, R)`` and ``c`` ``(B, H)``; ``R = H`` without the projection, else
    ``w_hr_t = W_hrᵀ (H, R)`` (an LSTM's ``proj_size = R``). No derivative is written
    here: autograd composes those of addmm, slicing, σ, tanh, ⊙, + and matmul.
    """
    z = ops.addmm(gi if t is None else gi[t], h, w_hh_t)
    z_i, z_f, z_g, z_o = ops.chunk(z, 4, axis=-1)
    i, f, g, o = z_i.sigmoid(), z_f.sigmoid(), z_g.tanh(), z_o.sigmoid()
    kept, added = f * c, i * g
    c_new = kept + added
    h_new = o * c_new.tanh()
    # No rule reads z, its slices or the two terms: 6H numbers per row and step of memory
    # that can go now in eager mode, not after the backward pass.
    _release(z, z_i, z_f, z_g, z_o, kept, added)
    return (h_new if w_hr_t is None else h_new @ w_hr_t), c_new


def _gru_step(gi: Tensor, h: Tensor, w_hh_t: Tensor, bias_hh: Tensor | None) -> Tensor:
    """GRU step, PyTorch's gate order r, z, n.

    ``gi = x W_ihᵀ + b_ih`` ``(B, 3H)``, ``w_hh_t = W_hhᵀ (H, 3H)``. ``b_hh`` is
    not folded into ``gi`` because its n-part sits inside the reset gate::

        [h_r, h_z, h_n] = h W_hhᵀ + b_hh
        r = σ(i_r + h_r),  z = σ(i_z + h_z)
        n = tanh(i_n + r ⊙ h_n)
        h' = (1 − z) ⊙ n + z ⊙ h
    """
    gh = h @ w_hh_t if bias_hh is None else ops.addmm(bias_hh, h, w_hh_t)
    i_r, i_z, i_n = ops.chunk(gi, 3, axis=-1)
    h_r, h_z, h_n = ops.chunk(gh, 3, axis=-1)
    r = (i_r + h_r).sigmoid()
    z = (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return (1 - z) * n + z * h


# --------------------------------------------------------------------------------------------
# Cells.
# --------------------------------------------------------------------------------------------


class _Cell(Module):
    """Shared set-up of the three cells: sizes, parameters, input and state checks."""

    _gates = 1  # G: weight_ih is (G·H, D)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        dtype: npt.DTypeLike,
        rng: np.random.Generator | None,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        self.input_size = _positive(input_size, "input_size", where)
        self.hidden_size = _positive(hidden_size, "hidden_size", where)
        self.dtype = _check_float_dtype(dtype, where)
        rng = _check_rng(rng, where)
        gh, bound = self._gates * self.hidden_size, 1.0 / math.sqrt(self.hidden_size)
        # PyTorch draws every parameter of a recurrent cell from U(-1/√H, 1/√H).
        self.weight_ih = _uniform(rng, bound, (gh, self.input_size), self.dtype)
        self.weight_hh = _uniform(rng, bound, (gh, self.hidden_size), self.dtype)
        self.bias_ih: Parameter | None = _uniform(rng, bound, (gh,), self.dtype) if bias else None
        self.bias_hh: Parameter | None = _uniform(rng, bound, (gh,), self.dtype) if bias else None

    def _input(self, x: Any) -> tuple[Tensor, bool]:
        """``x`` as a ``(B, D)`` Tensor and whether it came unbatched ``(D,)``."""
        where = type(self).__name__
        x = _as_input(x, self.dtype, where, "input")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{where}: input must have shape (batch, input_size={self.input_size}) or "
                f"(input_size,), got {x.shape}"
            )
        return (ops.reshape(x, (1, x.shape[0])), True) if x.ndim == 1 else (x, False)

    def _state(self, h: Any, name: str, batch: int, unbatched: bool) -> Tensor:
        """A state argument as a ``(B, H)`` Tensor (zeros for None), checked."""
        where = type(self).__name__
        if h is None:
            return Tensor._make(np.zeros((batch, self.hidden_size), dtype=self.dtype))
        h = _as_input(h, self.dtype, where, name)
        expected = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        if h.shape != expected:
            raise ValueError(
                f"{where}: {name} must have shape {expected} "
                f"({'hidden_size' if unbatched else 'batch, hidden_size'}), got {h.shape}"
            )
        return ops.reshape(h, (1, self.hidden_size)) if unbatched else h

    def _output(self, h: Tensor, unbatched: bool) -> Tensor:
        return ops.reshape(h, (self.hidden_size,)) if unbatched else h

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias_ih is None:
            s += ", bias=False"
        return s

    @classmethod
    def _from_torch(cls, torch_module: Any, **config: Any) -> Any:
        """Build a cell with ``torch_module``'s sizes and dtype and copy its parameters."""
        _check_torch_type(torch_module, cls)
        dtype = _torch_dtype(torch_module, cls.__name__)
        m = cls(
            torch_module.input_size,
            torch_module.hidden_size,
            bias=torch_module.bias,
            dtype=dtype,
            **config,
        )
        m.load_state_dict(_torch_state(torch_module))
        return m


class RNNCell(_Cell):
    """Elman RNN cell, ``torch.nn.RNNCell``'s equations and layout.

    ::

        h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh),   act = tanh (default) or relu

    Parameters: ``weight_ih (H, D)``, ``weight_hh (H, H)``, ``bias_ih (H,)``,
    ``bias_hh (H,)``, all initialised from ``U(-1/√H, 1/√H)``. In the documents'
    notation (spec §1) ``U = weight_ih``, ``W = weight_hh``, ``b = bias_ih + bias_hh``.

    Call: ``cell(x, h=None) -> h'`` with ``x (B, D)`` or ``(D,)``, ``h (B, H)``
    or ``(H,)`` (None means zeros), ``h' (B, H)`` or ``(H,)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias, dtype, rng)
        self.nonlinearity = nonlinearity

    def forward(self, x: Any, state: Any = None) -> Tensor:
        """One step: ``(x, h) -> h'``."""
        x, unbatched = self._input(x)
        h = self._state(state, "state", x.shape[0], unbatched)
        gi = _input_projection(x, self.weight_ih, _summed_bias(self.bias_ih, self.bias_hh))
        return self._output(_rnn_step(gi, h, self.weight_hh.T, self.nonlinearity), unbatched)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"

    @classmethod
    def from_torch(cls, torch_module: Any) -> RNNCell:
        """Copy a ``torch.nn.RNNCell`` (sizes, bias, nonlinearity, dtype, weights)."""
        cell: RNNCell = cls._from_torch(torch_module, nonlinearity=torch_module.nonlinearity)
        return cell


class LSTMCell(_Cell):
    """LSTM cell, ``torch.nn.LSTMCell``'s equations and layout (gate order i, f, g, o).

    ::

        [i, f, g, o] = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh        (split in four)
        c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
        h' = σ(o) ⊙ tanh(c')

    Parameters: ``weight_ih (4H, D)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``,
    ``bias_hh (4H,)``; rows ``k·H:(k+1)·H`` belong to gate ``k`` of (i, f, g, o).
    All initialised from ``U(-1/√H, 1/√H)``. Seed 004's ``W_g`` (acting on
    ``[h, x]``) is ``[W_hh,gᵀ; W_ih,gᵀ]``, see [`tinygrad_rnn.nn.convert`][tinygrad_rnn.nn.convert].

    Call: ``cell(x, (h, c)=None) -> (h', c')`` with ``x (B, D)`` or ``(D,)`` and
    ``h, c (B, H)`` or ``(H,)``; None means both zero.
    """

    _gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, dtype, rng)

    def forward(self, x: Any, state: Any = None) -> LSTMState:
        """One step: ``(x, (h, c)) -> (h', c')``."""
        x, unbatched = self._input(x)
        b = x.shape[0]
        if state is None:
            h = c = self._state(None, "state", b, unbatched)
        elif isinstance(state, (tuple, list)) and len(state) == 2:
            h = self._state(state[0], "state[0] (h)", b, unbatched)
            c = self._state(state[1], "state[1] (c)", b, unbatched)
        else:
            raise TypeError(
                f"LSTMCell: state must be None or a tuple (h, c), got {type(state).__name__}"
            )
        gi = _input_projection(x, self.weight_ih, _summed_bias(self.bias_ih, self.bias_hh))
        h_new, c_new = _lstm_step(gi, h, c, self.weight_hh.T)
        return self._output(h_new, unbatched), self._output(c_new, unbatched)

    @classmethod
    def from_torch(cls, torch_module: Any) -> LSTMCell:
        """Copy a ``torch.nn.LSTMCell`` (sizes, bias, dtype, weights)."""
        cell: LSTMCell = cls._from_torch(torch_module)
        return cell


class GRUCell(_Cell):
    """GRU cell, ``torch.nn.GRUCell``'s equations and layout (gate order r, z, n).

    ::

        r  = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)
        z  = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
        n  = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))
        h' = (1 − z) ⊙ n + z ⊙ h

    Parameters: ``weight_ih (3H, D)``, ``weight_hh (3H, H)``, ``bias_ih (3H,)``,
    ``bias_hh (3H,)``, rows stacked r, z, n; initialised from ``U(-1/√H, 1/√H)``.

    Call: ``cell(x, h=None) -> h'`` with ``x (B, D)`` or ``(D,)``, ``h (B, H)``
    or ``(H,)`` (None means zeros).
    """

    _gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, dtype, rng)

    def forward(self, x: Any, state: Any = None) -> Tensor:
        """One step: ``(x, h) -> h'``."""
        x, unbatched = self._input(x)
        h = self._state(state, "state", x.shape[0], unbatched)
        gi = _input_projection(x, self.weight_ih, self.bias_ih)
        return self._output(_gru_step(gi, h, self.weight_hh.T, self.bias_hh), unbatched)

    @classmethod
    def from_torch(cls, torch_module: Any) -> GRUCell:
        """Copy a ``torch.nn.GRUCell`` (sizes, bias, dtype, weights)."""
        cell: GRUCell = cls._from_torch(torch_module)
        return cell
