"""Sequence layers [`RNN`][tinygrad_rnn.nn.RNN], [`LSTM`][tinygrad_rnn.nn.LSTM],
[`GRU`][tinygrad_rnn.nn.GRU] and the functional [`unroll`][tinygrad_rnn.nn.unroll].

The layers have PyTorch's signatures, parameter names (``weight_ih_l0``,
``bias_hh_l1_reverse``, ...), shapes and return conventions, so a state_dict
moves between them and ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` unchanged.

How a direction of a layer runs (the part that matters for speed)::

    gi  = X W_ihᵀ + (b_ih + b_hh)      one matmul for all T steps: (T, B, G·H)
    W_hhᵀ is transposed once
    for t: state = step(gi[t], state, W_hhᵀ)   # only h W_hhᵀ + the nonlinearity per step

``step`` is the same function a cell uses ([`tinygrad_rnn.nn.cells`][tinygrad_rnn.nn.cells]), so the
equations are written once and a layer equals its cell unrolled over time.
Each direction runs in ``scope("l0")`` / ``scope("l0_reverse")`` and each step
in ``scope("t=3")`` so graph drawings can cluster the ops per step.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tinygrad_rnn import ops
from tinygrad_rnn.nn._packed import Masks, _carry, forward_packed
from tinygrad_rnn.nn.cells import (
    NONLINEARITIES,
    LSTMState,
    _gru_step,
    _input_projection,
    _lstm_step,
    _rnn_step,
    _summed_bias,
)
from tinygrad_rnn.nn.dropout import _check_p, _dropout
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
from tinygrad_rnn.nn.utils.rnn import PackedSequence
from tinygrad_rnn.scope import is_recording_scopes, scope
from tinygrad_rnn.tensor import Tensor

__all__ = ["GRU", "LSTM", "RNN", "unroll"]

# What a step carries: h for RNN/GRU, (h, c) for LSTM.
State = Any


# The input projection is computed for this many bytes' worth of steps at a time (at least
# one step): large enough that each chunk is one efficient matrix product (all T steps at
# once for the sizes people train at), small enough that a long sequence never holds the
# projection of every step at once, in the forward pass (one chunk) or in the backward
# pass (one chunk's gradient).
_PROJECTION_CHUNK_BYTES = 8 * 2**20


def _projection_span(T: int, bytes_per_step: int) -> int:
    """Steps per input-projection chunk for ``T`` steps of ``bytes_per_step`` each."""
    return max(1, min(T, _PROJECTION_CHUNK_BYTES // max(1, bytes_per_step)))


def _check_dropout(dropout: Any, num_layers: int, where: str) -> float:
    """``dropout`` as a float in ``[0, 1)``; warns, as PyTorch does, when one layer has none
    to drop between."""
    dropout = _check_p(dropout, where, "dropout")
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            f"{where}: dropout={dropout} acts between layers, after every layer but the "
            f"last, so it does nothing with num_layers=1",
            UserWarning,
            stacklevel=4,
        )
    return float(dropout)


def _check_proj_size(proj_size: Any, hidden_size: int, where: str) -> int:
    """``proj_size`` as an int in ``[0, hidden_size)`` (0: no projection)."""
    if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)):
        raise TypeError(f"{where}: proj_size must be an int, got {type(proj_size).__name__}")
    if not 0 <= proj_size < hidden_size:
        raise ValueError(
            f"{where}: proj_size must be in [0, hidden_size) = [0, {hidden_size}) "
            f"(0: no projection), got proj_size={proj_size}"
        )
    return int(proj_size)


class _RNNBase(Module):
    """The machinery shared by [`RNN`][tinygrad_rnn.nn.RNN], [`LSTM`][tinygrad_rnn.nn.LSTM] and
    [`GRU`][tinygrad_rnn.nn.GRU].

    A subclass sets ``_gates`` (G: ``weight_ih`` is ``(G·H, ·)``) and defines
    ``_step`` (one time step through the shared step function) and
    ``_projection_bias`` (what is added once to the hoisted input projection).

    ``dropout`` (PyTorch's): in training mode, each layer's output except the last
    layer's goes through dropout with that probability before the next layer reads it.
    ``proj_size`` is LSTM's (0 for the others): the size of ``h``, see
    [`LSTM`][tinygrad_rnn.nn.LSTM].
    """

    _gates = 1
    # Whether ``_step`` reads its row of the projection with ``getitem`` and ``addmm``
    # (which keep only its shape), so the projection's values can be released after the
    # steps (the rows' views still hold the memory until backward).
    # GRU's step slices the row (a view that keeps the whole projection alive) instead.
    _steps_read_rows = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        dtype: npt.DTypeLike,
        rng: np.random.Generator | None,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        self.input_size = _positive(input_size, "input_size", where)
        self.hidden_size = _positive(hidden_size, "hidden_size", where)
        self.num_layers = _positive(num_layers, "num_layers", where)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = _check_dropout(dropout, self.num_layers, where)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.proj_size = _check_proj_size(proj_size, self.hidden_size, where)
        self.dtype = _check_float_dtype(dtype, where)
        # A Generator given for the initialisation also draws the dropout masks (one seed
        # makes a run reproducible); without one, the package's generator does (manual_seed).
        self._dropout_rng = rng if isinstance(rng, np.random.Generator) else None
        rng = _check_rng(rng, where)
        H, G = self.hidden_size, self._gates
        # The size of h (the output of a step): proj_size when the LSTM projects it.
        R = self.proj_size or H
        bound = 1.0 / math.sqrt(H)
        # PyTorch's order: per layer, per direction: weight_ih, weight_hh, bias_ih, bias_hh,
        # then weight_hr with proj_size.
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else R * self.num_directions
            for suffix in self._suffixes(layer):
                setattr(
                    self, "weight_ih" + suffix, _uniform(rng, bound, (G * H, in_size), self.dtype)
                )
                setattr(self, "weight_hh" + suffix, _uniform(rng, bound, (G * H, R), self.dtype))
                if self.bias:
                    setattr(self, "bias_ih" + suffix, _uniform(rng, bound, (G * H,), self.dtype))
                    setattr(self, "bias_hh" + suffix, _uniform(rng, bound, (G * H,), self.dtype))
                if self.proj_size:
                    setattr(self, "weight_hr" + suffix, _uniform(rng, bound, (R, H), self.dtype))

    if TYPE_CHECKING:
        # The per-layer parameters (weight_ih_l0, bias_hh_l1_reverse, ...) are set with
        # setattr; tell type checkers that such attributes are Parameters.
        def __getattr__(self, name: str) -> Parameter: ...

    def _suffixes(self, layer: int) -> list[str]:
        """Parameter-name suffixes of ``layer``: ``["_l0"]`` or ``["_l0", "_l0_reverse"]``."""
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def _params(
        self, suffix: str
    ) -> tuple[Parameter, Parameter, Parameter | None, Parameter | None]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer and direction."""
        # The biases are absent with bias=False.
        b_ih, b_hh = (
            getattr(self, "bias_ih" + suffix, None),
            getattr(self, "bias_hh" + suffix, None),
        )
        return getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix), b_ih, b_hh

    # ------------------------------------------------------------ subclass hooks
    def _recurrent_weights(self, suffix: str, weight_hh: Tensor) -> Any:
        """What a step multiplies the state by, prepared once per direction: ``W_hhᵀ``."""
        return weight_hh.T

    def _projection_bias(self, bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor | None:
        return _summed_bias(bias_ih, bias_hh)

    def _step(
        self, gi_all: Tensor, t: int, state: State, w_hh_t: Any, bias_hh: Tensor | None
    ) -> State:
        """One step: read row ``t`` of the input projection ``gi_all (T, B, G·H)``.

        ``w_hh_t`` is what ``_recurrent_weights`` prepared (``W_hhᵀ``, or for an LSTM with
        ``proj_size`` the pair ``(W_hhᵀ, W_hrᵀ)``).
        """
        raise NotImplementedError

    @staticmethod
    def _hidden(state: State) -> Tensor:
        """The part of a state that is the layer's output (h)."""
        return state

    # ----------------------------------------------------------------- checks
    def _input(self, input: Any) -> tuple[Tensor, bool]:
        """``input`` as a time-first ``(T, B, D)`` Tensor, and whether it was unbatched."""
        where = type(self).__name__
        x = _as_input(input, self.dtype, where, "input")
        layout = (
            "(batch, seq_len, input_size)" if self.batch_first else "(seq_len, batch, input_size)"
        )
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{where}: input must have shape {layout} or (seq_len, input_size) with "
                f"input_size={self.input_size}, got {x.shape}"
            )
        unbatched = x.ndim == 2
        if unbatched:
            x = ops.reshape(x, (x.shape[0], 1, x.shape[1]))
        elif self.batch_first:
            x = ops.transpose(x, (1, 0, 2))
        if x.shape[0] == 0:
            raise ValueError(
                f"{where}: input is an empty sequence (seq_len=0, shape {input.shape})"
            )
        return x, unbatched

    def _initial(
        self, h0: Any, name: str, batch: int, unbatched: bool, size: int | None = None
    ) -> list[Tensor]:
        """One ``(B, size)`` initial state tensor per layer and direction (zeros for None).

        ``size`` defaults to the size of ``h``: ``proj_size`` if set, else ``hidden_size``.
        """
        where, n = type(self).__name__, self.num_layers * self.num_directions
        H = size if size is not None else self.proj_size or self.hidden_size
        if h0 is None:
            zeros = Tensor._make(np.zeros((batch, H), dtype=self.dtype))
            return [zeros] * n
        h0 = _as_input(h0, self.dtype, where, name)
        expected = (n, H) if unbatched else (n, batch, H)
        if h0.shape != expected:
            feature = "proj_size" if H != self.hidden_size else "hidden_size"
            layout = (
                f"(num_layers*num_directions, {feature})"
                if unbatched
                else (f"(num_layers*num_directions, batch, {feature})")
            )
            raise ValueError(f"{where}: {name} must have shape {expected} {layout}, got {h0.shape}")
        if unbatched:
            h0 = ops.reshape(h0, (n, 1, H))
        return [h0[k] for k in range(n)]

    def _initial_states(self, hx: Any, batch: int, unbatched: bool) -> list[State]:
        """One initial state per layer and direction (LSTM overrides this for ``(h0, c0)``)."""
        return self._initial(hx, "h0", batch, unbatched)

    # ---------------------------------------------------------------- forward
    def _run_direction(
        self, x: Tensor, state: State, suffix: str, reverse: bool, masks: Masks | None = None
    ) -> tuple[list[Tensor], State]:
        """Run one layer in one direction over ``x (T, B, ·)``.

        ``masks`` is None for a padded input, or for a packed one ``(keep, skip)``:
        ``keep[t] = m_t (B, 1)``, 1 while sequence ``b`` has step ``t``, and
        ``skip[t] = 1 − m_t``; the state then passes unchanged through the padding and the
        output there is 0 (why this is exact: ``_packed.py``).

        Returns the per-step outputs ``h_t`` (``m_t·h_t`` with masks) in time order (also
        when running in reverse) and the final state (after the last step processed).
        """
        w_ih, w_hh, b_ih, b_hh = self._params(suffix)
        bias = self._projection_bias(b_ih, b_hh)
        w_hh_t = self._recurrent_weights(suffix, w_hh)  # transposed once, not once per step
        T, B = x.shape[0], x.shape[1]
        span = _projection_span(T, B * w_ih.shape[0] * x.dtype.itemsize)
        hs: list[Tensor] = [None] * T  # type: ignore[list-item]
        step, hidden = self._step, self._hidden
        packed = masks is not None
        keep, skip = masks if masks is not None else ([], [])
        # Step scopes only while a graph drawing records them (one fewer object per step).
        recording = is_recording_scopes()
        starts = range(0, T, span)
        for t0 in reversed(starts) if reverse else starts:
            t1 = min(t0 + span, T)
            gi = _input_projection(x if t1 - t0 == T else x[t0:t1], w_ih, bias)  # (t1-t0, B, G·H)
            for t in reversed(range(t0, t1)) if reverse else range(t0, t1):
                if recording:
                    with scope(f"t={t}"):
                        new = step(gi, t - t0, state, w_hh_t, b_hh)
                        state = _carry(keep[t], skip[t], new, state) if packed else new
                else:
                    new = step(gi, t - t0, state, w_hh_t, b_hh)
                    state = _carry(keep[t], skip[t], new, state) if packed else new
                hs[t] = hidden(state) * keep[t] if packed else hidden(state)
            if self._steps_read_rows:
                # Every step has read its row and no derivative rule reads the projection
                # (a step saves only its shape): its memory can go now, not after backward.
                gi._release_values()
        return hs, state

    def _run_layers(
        self, x: Tensor, states: list[State], masks: Masks | None = None
    ) -> tuple[Tensor, list[State]]:
        """The whole stack over a time-first ``x (T, B, D)``, padded or (with ``masks``, as in
        ``_run_direction``) the padded form of a packed input.

        ``states`` holds one initial state per layer and direction. Returns the last
        layer's output ``(T, B, dirs·R)`` and the final states in ``layer·dirs + direction``
        order.
        """
        finals: list[State] = []
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                with scope(suffix[1:]):
                    hs, final = self._run_direction(
                        x, states[layer * self.num_directions + d], suffix, d == 1, masks
                    )
                outputs.append(ops.stack(hs, axis=0))
                finals.append(final)
            # The next layer reads both directions: (T, B, dirs·R).
            x = outputs[0] if len(outputs) == 1 else ops.concat(outputs, axis=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                # Between layers only. For a packed input the padding is 0 and stays 0.
                x = _dropout(x, self.dropout, self._dropout_rng)
        return x, finals

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Any]:
        """Run the whole stack over a sequence.

        Args:
            input: ``(T, B, D)``, or ``(B, T, D)`` with ``batch_first``, or an
                unbatched ``(T, D)``; or a
                [`PackedSequence`][tinygrad_rnn.nn.utils.rnn.PackedSequence] of sequences of
                different lengths (its ``data`` is ``(ΣL_b, D)``; ``batch_first`` plays no part).
            hx: initial state, None for zeros: ``h0 (L·dirs, B, H)`` (unbatched
                ``(L·dirs, H)``; never batch-first); [`LSTM`][tinygrad_rnn.nn.LSTM] takes
                ``(h0, c0)``.

        Returns:
            ``(output, h_n)`` ([`LSTM`][tinygrad_rnn.nn.LSTM]: ``(output, (h_n, c_n))``), with
            ``output (T, B, dirs·H)`` (batch-first or unbatched like the input),
            the last layer's ``h_t``, forward and reverse halves concatenated; and
            ``h_n (L·dirs, B, H)`` the final state of each layer and direction
            (for the reverse direction: its state after reading ``x_0``). For a packed
            input, ``output`` is a PackedSequence of the same lengths (zero at the padding
            once padded back) and ``h_n`` holds each sequence's state at its own last step
            (the reverse direction starts there), in the batch's original order.
        """
        if isinstance(input, PackedSequence):  # variable lengths: masked steps (_packed.py)
            return forward_packed(self, input, hx)
        x, unbatched = self._input(input)
        states = self._initial_states(hx, x.shape[1], unbatched)
        out, finals = self._run_layers(x, states)
        return self._format_output(out, unbatched), self._format_final(finals, unbatched)

    def _format_output(self, out: Tensor, unbatched: bool) -> Tensor:
        if unbatched:
            return ops.reshape(out, (out.shape[0], out.shape[2]))
        return ops.transpose(out, (1, 0, 2)) if self.batch_first else out

    def _stack_final(self, hs: list[Tensor], unbatched: bool) -> Tensor:
        """Per layer-and-direction ``(B, H)`` tensors -> ``(L·dirs, B, H)`` (or ``(L·dirs, H)``)."""
        h_n = ops.stack(hs, axis=0)
        return ops.reshape(h_n, (h_n.shape[0], h_n.shape[2])) if unbatched else h_n

    def _format_final(self, finals: list[State], unbatched: bool) -> Any:
        return self._stack_final(finals, unbatched)

    # ------------------------------------------------------------------ misc
    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    @classmethod
    def _from_torch(cls, torch_module: Any, **config: Any) -> Any:
        """Build a layer with ``torch_module``'s configuration (``dropout`` and the training
        mode included) and copy its parameters."""
        _check_torch_type(torch_module, cls)
        with warnings.catch_warnings():
            # torch warned already about dropout with one layer, when the module was made.
            warnings.simplefilter("ignore", UserWarning)
            layer = cls(
                torch_module.input_size,
                torch_module.hidden_size,
                num_layers=torch_module.num_layers,
                bias=torch_module.bias,
                batch_first=torch_module.batch_first,
                dropout=torch_module.dropout,
                bidirectional=torch_module.bidirectional,
                dtype=_torch_dtype(torch_module, cls.__name__),
                **config,
            )
        layer.load_state_dict(_torch_state(torch_module))
        layer.train(torch_module.training)
        return layer


class RNN(_RNNBase):
    """Multi-layer Elman RNN, ``torch.nn.RNN``'s signature, parameters and returns.

    Per layer and direction, with ``x_t`` the input of that layer::

        h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh),   act = tanh or relu

    Parameters (``k`` = layer, ``_reverse`` for the backward direction):
    ``weight_ih_lk (H, D)`` (layer ``k>0``: ``(H, dirs·H)``), ``weight_hh_lk (H, H)``,
    ``bias_ih_lk (H,)``, ``bias_hh_lk (H,)``, all from ``U(-1/√H, 1/√H)``.

    ``rnn(input, h0=None) -> (output, h_n)``; shapes as in
    [`LSTM.forward`][tinygrad_rnn.nn.LSTM.forward].

    ``dropout`` (``0 <= dropout < 1``): in training mode, dropout on each layer's output
    except the last's, as in PyTorch (a warning with ``num_layers=1``, where it does
    nothing). ``rng`` draws the initial weights and the dropout masks (None: a fresh
    generator for the weights, the package's, [`manual_seed`][tinygrad_rnn.creation.manual_seed],
    for the masks).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            rng,
        )
        self.nonlinearity = nonlinearity

    def _step(
        self, gi_all: Tensor, t: int, state: State, w_hh_t: Tensor, bias_hh: Tensor | None
    ) -> State:
        return _rnn_step(gi_all, state, w_hh_t, self.nonlinearity, t=t)

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        """``(input, h0=None) -> (output (T, B, dirs·H), h_n (L·dirs, B, H))``.

        ``input`` is ``(T, B, D)``, ``(B, T, D)`` with ``batch_first`` or unbatched
        ``(T, D)``; ``h0`` is None (zeros) or ``(L·dirs, B, H)``. See
        [`LSTM.forward`][tinygrad_rnn.nn.LSTM.forward].
        """
        out, h_n = super().forward(input, hx)
        return out, h_n

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"

    @classmethod
    def from_torch(cls, torch_module: Any) -> RNN:
        """Copy a ``torch.nn.RNN`` (configuration, dtype and every parameter)."""
        layer: RNN = cls._from_torch(torch_module, nonlinearity=torch_module.nonlinearity)
        return layer


class LSTM(_RNNBase):
    """Multi-layer LSTM, ``torch.nn.LSTM``'s signature, parameters and returns.

    Per layer and direction (gate order i, f, g, o)::

        [i, f, g, o] = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh
        c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
        h_t = σ(o) ⊙ tanh(c_t)                     (with proj_size: h_t = (σ(o) ⊙ tanh(c_t)) W_hrᵀ)

    Parameters: ``weight_ih_lk (4H, D)`` (``k>0``: ``(4H, dirs·R)``),
    ``weight_hh_lk (4H, R)``, ``bias_ih_lk (4H,)``, ``bias_hh_lk (4H,)``, with
    ``proj_size > 0`` also ``weight_hr_lk (R, H)`` (and ``..._reverse``), all from
    ``U(-1/√H, 1/√H)``. ``R`` is the size of ``h``: ``proj_size`` if it is set, else ``H``.

    ``lstm(input, (h0, c0)=None) -> (output, (h_n, c_n))``; ``h0, h_n`` are
    ``(L·dirs, B, R)``, ``c0, c_n`` are ``(L·dirs, B, H)``; shapes in
    [`forward`][tinygrad_rnn.nn.LSTM.forward].

    Args:
        input_size: ``D``, the size of ``x_t``.
        hidden_size: ``H``, the size of the cell state ``c``.
        num_layers: the number of stacked layers.
        bias: whether to have ``bias_ih`` and ``bias_hh``.
        batch_first: take and return ``(B, T, ·)`` instead of ``(T, B, ·)``.
        dropout: in training mode, the probability of dropout on each layer's output
            except the last's (``0 <= dropout < 1``).
        bidirectional: add a reverse direction per layer.
        proj_size: ``R``, project ``h`` to this size (``0 <= proj_size < hidden_size``;
            0: no projection).
        dtype: floating dtype of the parameters (inputs must match).
        rng: ``np.random.Generator`` for the initialisation and the dropout masks (None:
            a fresh generator for the weights, the package's for the masks).

    Raises:
        ValueError: ``proj_size`` negative or ``>= hidden_size``; ``dropout`` outside
            ``[0, 1)``; a size not positive.
    """

    _gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            rng,
            proj_size=proj_size,
        )

    def _recurrent_weights(self, suffix: str, weight_hh: Tensor) -> Any:
        if not self.proj_size:
            return weight_hh.T
        return weight_hh.T, getattr(self, "weight_hr" + suffix).T

    def _step(
        self, gi_all: Tensor, t: int, state: State, w_hh_t: Any, bias_hh: Tensor | None
    ) -> State:
        h, c = state
        if self.proj_size:
            w_hh_t, w_hr_t = w_hh_t
            return _lstm_step(gi_all, h, c, w_hh_t, t=t, w_hr_t=w_hr_t)
        return _lstm_step(gi_all, h, c, w_hh_t, t=t)

    @staticmethod
    def _hidden(state: State) -> Tensor:
        return state[0]

    def _initial_states(self, hx: Any, batch: int, unbatched: bool) -> list[State]:
        H = self.hidden_size
        if hx is None:
            hs = self._initial(None, "h0", batch, unbatched)
            cs = hs if not self.proj_size else self._initial(None, "c0", batch, unbatched, H)
            return list(zip(hs, cs))
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTM: hx must be None or a tuple (h0, c0), got {type(hx).__name__}")
        hs = self._initial(hx[0], "h0", batch, unbatched)
        cs = self._initial(hx[1], "c0", batch, unbatched, H)
        return list(zip(hs, cs))

    def _format_final(self, finals: list[State], unbatched: bool) -> Any:
        return (
            self._stack_final([h for h, _ in finals], unbatched),
            self._stack_final([c for _, c in finals], unbatched),
        )

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, LSTMState]:
        """Run the LSTM over a sequence: ``(input, (h0, c0)=None) -> (output, (h_n, c_n))``.

        ``R`` below is ``proj_size`` if set, else ``hidden_size`` ``H``.

        Args:
            input: ``(T, B, D)``, ``(B, T, D)`` with ``batch_first``, or unbatched ``(T, D)``.
            hx: None (zeros) or ``(h0, c0)``, ``h0 (L·dirs, B, R)`` and ``c0 (L·dirs, B, H)``
                (unbatched ``(L·dirs, R)`` and ``(L·dirs, H)``; never batch-first).

        Returns:
            ``output (T, B, dirs·R)`` (batch-first or unbatched like the input): the
            last layer's ``h_t``, forward and reverse halves concatenated; ``h_n (L·dirs, B, R)``
            and ``c_n (L·dirs, B, H)``: the final state of each layer and direction (the
            reverse direction's after reading ``x_0``), index ``layer·dirs + direction``.
        """
        out, (h_n, c_n) = super().forward(input, hx)
        return out, (h_n, c_n)

    @classmethod
    def from_torch(cls, torch_module: Any) -> LSTM:
        """Copy a ``torch.nn.LSTM`` (configuration with ``dropout`` and ``proj_size``, the
        training mode, dtype, every parameter)."""
        layer: LSTM = cls._from_torch(torch_module, proj_size=torch_module.proj_size)
        return layer


class GRU(_RNNBase):
    """Multi-layer GRU, ``torch.nn.GRU``'s signature, parameters and returns.

    Per layer and direction (gate order r, z, n)::

        r_t = σ(x_t W_irᵀ + b_ir + h_{t-1} W_hrᵀ + b_hr)
        z_t = σ(x_t W_izᵀ + b_iz + h_{t-1} W_hzᵀ + b_hz)
        n_t = tanh(x_t W_inᵀ + b_in + r_t ⊙ (h_{t-1} W_hnᵀ + b_hn))
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    Parameters: ``weight_ih_lk (3H, D)`` (``k>0``: ``(3H, dirs·H)``),
    ``weight_hh_lk (3H, H)``, ``bias_ih_lk (3H,)``, ``bias_hh_lk (3H,)`` (and
    ``..._reverse``), all from ``U(-1/√H, 1/√H)``. Only ``b_ih`` is hoisted into
    the all-steps projection: ``b_hn`` sits inside the reset gate.

    ``gru(input, h0=None) -> (output, h_n)``; shapes as in
    [`LSTM.forward`][tinygrad_rnn.nn.LSTM.forward]; ``dropout`` and ``rng`` as in
    [`RNN`][tinygrad_rnn.nn.RNN].
    """

    _gates = 3
    _steps_read_rows = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            rng,
        )

    def _projection_bias(self, bias_ih: Tensor | None, bias_hh: Tensor | None) -> Tensor | None:
        return bias_ih

    def _step(
        self, gi_all: Tensor, t: int, state: State, w_hh_t: Tensor, bias_hh: Tensor | None
    ) -> State:
        return _gru_step(gi_all[t], state, w_hh_t, bias_hh)

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        """``(input, h0=None) -> (output (T, B, dirs·H), h_n (L·dirs, B, H))``.

        ``input`` is ``(T, B, D)``, ``(B, T, D)`` with ``batch_first`` or unbatched
        ``(T, D)``; ``h0`` is None (zeros) or ``(L·dirs, B, H)``. See
        [`LSTM.forward`][tinygrad_rnn.nn.LSTM.forward].
        """
        out, h_n = super().forward(input, hx)
        return out, h_n

    @classmethod
    def from_torch(cls, torch_module: Any) -> GRU:
        """Copy a ``torch.nn.GRU`` (configuration, dtype and every parameter)."""
        layer: GRU = cls._from_torch(torch_module)
        return layer


def unroll(cell: Callable[[Any, Any], Any], xs: Any, state: Any = None) -> list[Any]:
    """Run ``cell`` over a sequence one step at a time and return every state.

    ``states[t] = cell(xs[t], states[t-1])`` with ``states[-1] = state``. For
    an [`RNNCell`][tinygrad_rnn.nn.RNNCell] or [`GRUCell`][tinygrad_rnn.nn.GRUCell]
    each entry is ``h_t (B, H)``; for an [`LSTMCell`][tinygrad_rnn.nn.LSTMCell]
    it is ``(h_t, c_t)``. The entries are the graph's own tensors, so
    ``tinygrad_rnn.grad(loss, [h_0, ..., h_{T-1}])`` gives the total ``∂L/∂h_t``
    (see [`tinygrad_rnn.nn.diagnostics.hidden_grad_norms`][tinygrad_rnn.nn.hidden_grad_norms]).

    Args:
        cell: a cell (any callable ``cell(x_t, state) -> state``).
        xs: ``(T, B, D)`` (or ``(T, D)``) Tensor or array, or a sequence of per-step inputs.
        state: the initial state (None: the cell's zeros).

    Returns:
        The T states, in time order.

    Raises:
        ValueError: ``xs`` is empty (T=0).
        TypeError: ``xs`` is not a Tensor, array or sequence.
    """
    if not callable(cell):
        raise TypeError(f"unroll: cell must be callable, got {type(cell).__name__}")
    if isinstance(xs, (Tensor, np.ndarray)):
        if xs.ndim == 0:
            raise ValueError("unroll: xs must have a time axis first, got a 0-d value")
    elif not isinstance(xs, (list, tuple)):
        raise TypeError(f"unroll: xs must be a Tensor, array or list, got {type(xs).__name__}")
    if len(xs) == 0:
        raise ValueError("unroll: xs is an empty sequence (T=0)")
    states = []
    for t in range(len(xs)):
        with scope(f"t={t}"):
            state = cell(xs[t], state)
        states.append(state)
    return states
