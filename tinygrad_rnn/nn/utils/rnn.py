"""``tinygrad_rnn.nn.utils.rnn``: batches of sequences of different lengths, as in PyTorch.

A batch of ``B`` sequences of lengths ``L_b`` is padded to ``T = max L_b`` steps
(``(T, B, *)``, or ``(B, T, *)`` with ``batch_first``) or *packed*: a
[`PackedSequence`][tinygrad_rnn.nn.utils.rnn.PackedSequence] holds only the real steps,
``data (ΣL_b, *)``, step by step (at step ``t`` the ``batch_sizes[t]`` sequences still
running, longest first). [`RNN`][tinygrad_rnn.nn.RNN], [`LSTM`][tinygrad_rnn.nn.LSTM] and
[`GRU`][tinygrad_rnn.nn.GRU] take a PackedSequence and return one::

    import numpy as np
    from tinygrad_rnn import nn
    from tinygrad_rnn.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    lstm = nn.LSTM(3, 5, batch_first=True, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 4, 3))       # (B, T, D), padded
    packed = pack_padded_sequence(x, [4, 2], batch_first=True)
    out, (h_n, c_n) = lstm(packed)          # h_n: each sequence's state at its own last step
    y, lengths = pad_packed_sequence(out, batch_first=True)       # (B, T, 2·5); y[1, 2:] == 0

How it is computed: everything is made of the engine's ops (``getitem`` with index arrays,
``concat``, ``stack``, ``*``, ``+``), so gradients flow back through packing, the layers
and padding with no hand-written backward. A PackedSequence keeps, besides PyTorch's fields,
the padded ``(T, B, *)`` form in the original batch order and a mask ``m[t, b] = 1`` for
``t < L_b`` (else 0). A layer runs every step of the padded form and carries its state
through the padding, ``h = m·step(h) + (1 − m)·h``, so ``h_n`` is each sequence's state at
its own last step and the reverse direction starts at that step; its output is ``m·h``,
zero at the padding, which therefore sends no gradient back.

Under [`tinygrad_rnn.jit`][tinygrad_rnn.jit]: ``lengths`` given as a list or tuple of ints
are part of the jit signature (each new ``lengths`` traces once more). ``lengths`` given as
an array argument are read anew on every call: the mask is built with engine ops from them,
so the layers' outputs, ``h_n``/``c_n`` and
[`pad_packed_sequence(..., total_length=T)`][tinygrad_rnn.nn.utils.rnn.pad_packed_sequence]
replay right for new lengths of the same shape. The packed layout itself (``data``'s number
of rows, ``batch_sizes``, ``sorted_indices``) and ``pad_packed_sequence``'s length without
``total_length`` depend on the lengths' values, which a replay could not follow: reading them
inside a jitted function with array lengths raises a RuntimeError that says what to do.
Lengths are checked when the function is traced (a replay only recomputes the mask).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tinygrad_rnn import autograd, ops
from tinygrad_rnn.tensor import Tensor

__all__ = [
    "PackedSequence",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
]


# ---------------------------------------------------------------- small helpers
def _tracing() -> bool:
    """True while a [`tinygrad_rnn.jit`][tinygrad_rnn.jit] function is being traced."""
    return autograd._TRACE[0] is not None


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a`` made read-only: the layout arrays are shared by every PackedSequence derived
    from one batch, so a write into one would silently change the others."""
    a.flags.writeable = False
    return a


def _as_sequence_tensor(x: Any, where: str, name: str) -> Tensor:
    """``x`` as a Tensor of numbers (an array is copied: the caller's stays theirs)."""
    if isinstance(x, Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        t = Tensor(x)
    else:
        raise TypeError(
            f"{where}: {name} must be a Tensor or a numpy array, got {type(x).__name__}"
        )
    if t.dtype.kind not in "if":
        raise TypeError(f"{where}: {name} must hold floats or signed integers, got dtype {t.dtype}")
    return t


def _int_array(values: Any, where: str, name: str) -> np.ndarray:
    """A 1-D integer list, tuple, array or Tensor as a new int64 array."""
    if isinstance(values, Tensor):
        a = values.data
    elif isinstance(values, np.ndarray):
        a = values
    elif isinstance(values, (list, tuple)):
        for v in values:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{where}: {name} must be integers, got {v!r:.40} in {name}")
        a = np.asarray(values, dtype=np.int64)
    else:
        raise TypeError(
            f"{where}: {name} must be a list, tuple, array or Tensor of ints, "
            f"got {type(values).__name__}"
        )
    if a.dtype.kind not in "iu":
        raise TypeError(f"{where}: {name} must be integers, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{where}: {name} must be 1-D, got shape {a.shape}")
    return a.astype(np.int64)  # a copy: the caller's object is never kept


def _check_lengths(lengths: np.ndarray, batch: int, steps: int, where: str) -> None:
    """One length per sequence, each in ``[1, steps]``."""
    if lengths.shape[0] != batch:
        raise ValueError(
            f"{where}: lengths has {lengths.shape[0]} entries but the input holds {batch} "
            "sequences (one length per sequence)"
        )
    short = np.flatnonzero(lengths < 1)
    if short.size:
        i = int(short[0])
        raise ValueError(
            f"{where}: lengths[{i}] = {lengths[i]}: every sequence needs at least one step "
            "(lengths must be >= 1)"
        )
    long = np.flatnonzero(lengths > steps)
    if long.size:
        i = int(long[0])
        raise ValueError(
            f"{where}: lengths[{i}] = {lengths[i]} is longer than the input's "
            f"{steps} time steps (seq_len)"
        )


def _check_sorted(lengths: np.ndarray, where: str) -> None:
    rises = np.flatnonzero(lengths[1:] > lengths[:-1])
    if rises.size:
        i = int(rises[0])
        raise ValueError(
            f"{where}: lengths must be sorted in decreasing order when enforce_sorted=True, "
            f"got lengths[{i}] = {lengths[i]} < lengths[{i + 1}] = {lengths[i + 1]}; pass "
            "enforce_sorted=False to accept any order"
        )


def _length_mask(steps: int, lengths: Any, dtype: np.dtype[Any], ndim: int) -> Tensor:
    """``m (steps, B, 1, ...)`` of ``ndim`` axes: 1 where ``t < lengths[b]``, else 0.

    Built with the engine's ops from ``lengths`` used as an index (``getitem``'s index): when
    ``lengths`` is the array argument of a jitted function, jit reads it anew on every call,
    so a replay builds the mask of that call's lengths.
    """
    # lengths[b] as a number of ``dtype`` (a row of 0, 1, ..., steps), then m = min(max(L - t,
    # 0), 1), which is 1 for t < L and 0 for t >= L (all integers, so exact).
    counts = ops.getitem(Tensor._make(np.arange(steps + 1, dtype=dtype)), lengths)  # (B,)
    below = counts - np.arange(steps, dtype=dtype)[:, None]  # (steps, B)
    mask = ops.minimum(ops.maximum(below, np.zeros((), dtype)), np.ones((), dtype))
    return ops.reshape(mask, (steps, counts.shape[0]) + (1,) * (ndim - 2))


def _check_padding_value(value: Any, dtype: np.dtype[Any], where: str) -> float | int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{where}: padding_value must be a number, got {type(value).__name__}")
    if dtype.kind != "f":
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError(
                f"{where}: padding_value must be an integer for sequences of dtype {dtype}, "
                f"got {value}"
            )
        return int(value)
    return float(value)


# ------------------------------------------------------------- PackedSequence
class PackedSequence:
    """A batch of sequences of different lengths, packed step by step (PyTorch's layout).

    Like ``torch.nn.utils.rnn.PackedSequence``, a named tuple of four fields (``data,
    batch_sizes, sorted_indices, unsorted_indices = packed`` works; ``packed._fields`` names
    them). Make one with
    [`pack_padded_sequence`][tinygrad_rnn.nn.utils.rnn.pack_padded_sequence] or
    [`pack_sequence`][tinygrad_rnn.nn.utils.rnn.pack_sequence]; the recurrent layers take and
    return one; [`pad_packed_sequence`][tinygrad_rnn.nn.utils.rnn.pad_packed_sequence] pads it
    back. The constructor builds one from PyTorch's four fields.

    Fields:
        data: ``(ΣL_b, *)`` Tensor, the real steps: first step 0 of every sequence (longest
            first), then step 1 of those that have one, and so on. Gradients flow through it.
        batch_sizes: ``(max L_b,)`` int64 array, how many sequences have step ``t``.
        sorted_indices: ``(B,)`` int64 array, the batch positions from longest to shortest
            sequence, or None when the batch was given sorted (``enforce_sorted=True``).
        unsorted_indices: its inverse permutation (None with it).

    Args:
        data: the packed steps ``(ΣL_b, *)``, a Tensor.
        batch_sizes: positive, non-increasing ints summing to ``data.shape[0]``.
        sorted_indices: None, or a permutation of ``range(batch_sizes[0])``.
        unsorted_indices: None (computed from ``sorted_indices``) or its inverse.

    Raises:
        TypeError: ``data`` is not a Tensor, or an index field is not integers.
        ValueError: the fields do not fit together.
    """

    __slots__ = (
        "_batch_sizes",
        "_data",
        "_lengths",
        "_lengths_arg",
        "_mask",
        "_padded",
        "_sorted",
        "_source",
        "_unsorted",
    )
    _fields = ("data", "batch_sizes", "sorted_indices", "unsorted_indices")

    _data: Tensor | None
    _batch_sizes: np.ndarray | None
    _sorted: np.ndarray | None
    _unsorted: np.ndarray | None
    _lengths: np.ndarray  # (B,) int64, in the caller's batch order
    _lengths_arg: Tensor | None  # the lengths of a jit argument, read anew per call
    _source: Tensor | None  # (T, B, *) the padded input as given, time-major
    _padded: Tensor | None  # (T, B, *) zeros beyond each length
    _mask: Tensor | None  # (T, B, 1, ...) 1 for t < L_b, else 0

    def __init__(
        self,
        data: Tensor,
        batch_sizes: Any,
        sorted_indices: Any = None,
        unsorted_indices: Any = None,
    ) -> None:
        where = "PackedSequence"
        if not isinstance(data, Tensor):
            raise TypeError(f"{where}: data must be a Tensor, got {type(data).__name__}")
        if data.ndim < 1:
            raise ValueError(f"{where}: data must be (sum of lengths, *), got a 0-d tensor")
        if data.dtype.kind not in "if":
            raise TypeError(
                f"{where}: data must hold floats or signed integers, got dtype {data.dtype}"
            )
        sizes = _int_array(batch_sizes, where, "batch_sizes")
        if sizes.size == 0 or sizes[-1] < 1 or (sizes[1:] > sizes[:-1]).any():
            raise ValueError(
                f"{where}: batch_sizes must be positive and non-increasing (how many "
                f"sequences have each step), got {sizes.tolist()}"
            )
        if int(sizes.sum()) != data.shape[0]:
            raise ValueError(
                f"{where}: data has {data.shape[0]} rows but batch_sizes sum to {sizes.sum()}"
            )
        batch = int(sizes[0])
        order = inverse = None
        if sorted_indices is None:
            if unsorted_indices is not None:
                raise ValueError(f"{where}: unsorted_indices given without sorted_indices")
        else:
            order = _int_array(sorted_indices, where, "sorted_indices")
            if order.shape != (batch,) or not np.array_equal(np.sort(order), np.arange(batch)):
                raise ValueError(
                    f"{where}: sorted_indices must be a permutation of range({batch}) "
                    f"(batch_sizes[0] = {batch} sequences), got {order.tolist()}"
                )
            inverse = np.argsort(order)
            if unsorted_indices is not None:
                given = _int_array(unsorted_indices, where, "unsorted_indices")
                if not np.array_equal(given, inverse):
                    raise ValueError(
                        f"{where}: unsorted_indices must be the inverse permutation of "
                        f"sorted_indices ({inverse.tolist()}), got {given.tolist()}"
                    )
        # Sequence j of the sorted batch has as many steps as batch_sizes entries above j.
        sorted_lengths = (sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1)
        lengths = sorted_lengths if order is None else sorted_lengths[inverse]
        self._data = data
        self._batch_sizes = _frozen(sizes)
        self._sorted = None if order is None else _frozen(order)
        self._unsorted = None if inverse is None else _frozen(inverse)
        self._lengths = _frozen(lengths.astype(np.int64))
        self._lengths_arg = None
        self._source = self._padded = self._mask = None

    @classmethod
    def _from_padded(
        cls,
        padded: Tensor | None,
        mask: Tensor,
        lengths: np.ndarray,
        order: np.ndarray | None,
        lengths_arg: Tensor | None,
        source: Tensor | None = None,
    ) -> PackedSequence:
        """A PackedSequence from its padded time-major form (the layout comes when read)."""
        self = object.__new__(cls)
        self._data = self._batch_sizes = self._unsorted = None
        self._sorted = order
        if order is not None:
            self._unsorted = _frozen(np.argsort(order))
        self._lengths = lengths
        self._lengths_arg = lengths_arg
        self._source, self._padded, self._mask = source, padded, mask
        return self

    def _like(self, padded: Tensor) -> PackedSequence:
        """A PackedSequence of the same lengths and order holding ``padded (T, B, *)``."""
        assert self._mask is not None
        return PackedSequence._from_padded(
            padded, self._mask, self._lengths, self._sorted, self._lengths_arg
        )

    # ------------------------------------------------------------ the layout
    def _check_layout_readable(self, name: str) -> None:
        if self._lengths_arg is not None and _tracing():
            raise RuntimeError(
                f"PackedSequence.{name}: inside a tinygrad_rnn.jit function the lengths were "
                "passed as an array, which jit reads anew on every call, but the packed layout "
                "(data's rows, batch_sizes, sorted_indices) depends on their values, so a replay "
                "would keep the first call's. Pass lengths as a list or tuple of ints (then "
                "each new lengths is traced once), or use the padded form: "
                "pad_packed_sequence(..., total_length=seq_len)"
            )

    def _layout_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(t, b)`` of each row of ``data``, in packed order (``b`` in the caller's order)."""
        steps = int(self._lengths.max())
        by_length = self._lengths if self._sorted is None else self._lengths[self._sorted]
        running = by_length[None, :] > np.arange(steps)[:, None]  # (T, B), sorted columns
        t, j = np.nonzero(running)  # row-major: step by step, longest sequence first
        return t, (j if self._sorted is None else self._sorted[j])

    @property
    def data(self) -> Tensor:
        """``(ΣL_b, *)`` Tensor: the real steps in packed order."""
        if self._data is None:
            self._check_layout_readable("data")
            source = self._source if self._source is not None else self._padded
            assert source is not None
            self._data = ops.getitem(source, self._layout_index())
        return self._data

    @property
    def batch_sizes(self) -> np.ndarray:
        """``(max L_b,)`` int64 array: the number of sequences that have step ``t``."""
        if self._batch_sizes is None:
            self._check_layout_readable("batch_sizes")
            steps = np.arange(int(self._lengths.max()))
            self._batch_sizes = _frozen((self._lengths[None, :] > steps[:, None]).sum(axis=1))
        return self._batch_sizes

    @property
    def sorted_indices(self) -> np.ndarray | None:
        """``(B,)`` int64 array, batch positions from longest to shortest, or None."""
        self._check_layout_readable("sorted_indices")
        return self._sorted

    @property
    def unsorted_indices(self) -> np.ndarray | None:
        """The inverse permutation of ``sorted_indices`` (None with it)."""
        self._check_layout_readable("unsorted_indices")
        return self._unsorted

    # ------------------------------------------------------------ the padded form
    def _padded_form(self) -> tuple[Tensor, Tensor]:
        """``(padded (T, B, *), mask (T, B, 1, ...))``: zeros beyond each sequence's length."""
        if self._padded is None:
            if self._source is not None:
                self._padded = self._masked_source()
            else:  # built from PyTorch's fields: scatter the rows into zeros
                data = self._data
                assert data is not None
                steps, batch = int(self._lengths.max()), self._lengths.shape[0]
                t, b = self._layout_index()
                # Each (t, b) reads its row of data, or the zero row appended after them.
                rows = np.full((steps, batch), data.shape[0], dtype=np.intp)
                rows[t, b] = np.arange(data.shape[0])
                zero = Tensor._make(np.zeros((1, *data.shape[1:]), dtype=data.dtype))
                self._padded = ops.getitem(ops.concat([data, zero], axis=0), rows)
                self._mask = _length_mask(steps, self._lengths, data.dtype, data.ndim + 1)
        assert self._mask is not None
        return self._padded, self._mask

    def _masked_source(self) -> Tensor:
        """The input times the mask: zeros (and zero gradient) beyond each length."""
        source, mask = self._source, self._mask
        assert source is not None and mask is not None
        if source.dtype.kind == "f" and not np.isfinite(source.data).all():
            beyond = ~np.isfinite(source.data) & (mask.data == 0)
            if beyond.any():
                at = tuple(int(i) for i in np.argwhere(beyond)[0])
                t, b = at[:2]
                raise ValueError(
                    f"pack_padded_sequence: the input holds {source.data[at]} at step {t} of "
                    f"sequence {b}, beyond its length {self._lengths[b]}: "
                    "the padding is multiplied by 0, so it must be finite (pad with 0)"
                )
        return source * mask

    # ------------------------------------------------------------ tuple protocol
    def __iter__(self) -> Iterator[Any]:
        return iter((self.data, self.batch_sizes, self.sorted_indices, self.unsorted_indices))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int | slice) -> Any:
        return tuple(self)[index]

    def _asdict(self) -> dict[str, Any]:
        """The four fields by name."""
        return dict(zip(self._fields, self))

    def __repr__(self) -> str:
        if self._lengths_arg is not None and _tracing():
            return f"PackedSequence(<traced by jit>, lengths of shape {self._lengths.shape})"
        fields = ", ".join(f"{k}={v!r}" for k, v in self._asdict().items())
        return f"PackedSequence({fields})"


# ---------------------------------------------------------------- packing
def pack_padded_sequence(
    input: Tensor | np.ndarray,
    lengths: Sequence[int] | np.ndarray | Tensor,
    batch_first: bool = False,
    enforce_sorted: bool = True,
) -> PackedSequence:
    """Pack a padded batch: keep the first ``lengths[b]`` steps of each sequence ``b``.

    Args:
        input: ``(T, B, *)``, or ``(B, T, *)`` with ``batch_first``; the entries beyond a
            sequence's length are ignored (they must be finite) and get zero gradient.
        lengths: ``B`` ints in ``[1, T]``: a list, tuple, integer array or Tensor. Under
            [`tinygrad_rnn.jit`][tinygrad_rnn.jit], a list or tuple is part of the
            signature, an array argument is read anew on every call (see the module notes).
        batch_first: whether ``input`` is batch-first.
        enforce_sorted: whether ``lengths`` must be in decreasing order; False accepts any
            order (the batch is sorted internally and ``sorted_indices`` records how).

    Returns:
        A [`PackedSequence`][tinygrad_rnn.nn.utils.rnn.PackedSequence] of ``input``'s dtype.

    Raises:
        TypeError: ``input`` is not a Tensor or array of numbers, or ``lengths`` not ints.
        ValueError: ``input`` has fewer than 2 axes; ``lengths`` does not have one entry per
            sequence, has an entry below 1 or above T, or is not sorted while
            ``enforce_sorted=True``.
    """
    return _pack(input, lengths, batch_first, enforce_sorted, "pack_padded_sequence")


def _pack(
    input: Any, lengths: Any, batch_first: bool, enforce_sorted: bool, where: str
) -> PackedSequence:
    """[`pack_padded_sequence`][tinygrad_rnn.nn.utils.rnn.pack_padded_sequence], its errors
    naming ``where``."""
    x = _as_sequence_tensor(input, where, "input")
    if x.ndim < 2:
        layout = "(batch, seq_len, *)" if batch_first else "(seq_len, batch, *)"
        raise ValueError(f"{where}: input must be {layout}, got shape {x.shape}")
    if batch_first:
        x = ops.transpose(x, (1, 0, *range(2, x.ndim)))
    steps, batch = x.shape[0], x.shape[1]
    values = _int_array(lengths, where, "lengths")
    _check_lengths(values, batch, steps, where)
    if enforce_sorted:
        _check_sorted(values, where)
        order = None
    else:  # stable, so equal lengths keep their order
        order = _frozen(np.argsort(-values, kind="stable"))
    values = _frozen(values)
    per_call = _tracing() and isinstance(lengths, Tensor)
    if per_call:
        # The caller's own array is the mask's index, so a replay reads each call's lengths;
        # the padded form keeps all T steps (its shape must not depend on their values).
        assert isinstance(lengths, Tensor)
        mask = _length_mask(steps, lengths, x.dtype, x.ndim)
        return PackedSequence._from_padded(None, mask, values, order, lengths, source=x)
    longest = int(values.max())
    if longest < steps:  # steps no sequence has: not run, not padded back
        x = x[:longest]
    mask = _length_mask(longest, values, x.dtype, x.ndim)
    return PackedSequence._from_padded(None, mask, values, order, None, source=x)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Any]:
    """Pad a packed batch back: the inverse of
    [`pack_padded_sequence`][tinygrad_rnn.nn.utils.rnn.pack_padded_sequence].

    Args:
        sequence: a [`PackedSequence`][tinygrad_rnn.nn.utils.rnn.PackedSequence].
        batch_first: return ``(B, T, *)`` instead of ``(T, B, *)``.
        padding_value: the value beyond each sequence's length (no gradient flows from it).
        total_length: pad to this many steps (at least the longest length) instead of the
            longest length; needed inside a jitted function given array lengths.

    Returns:
        ``(padded, lengths)``: ``padded`` is ``(T, B, *)`` (or ``(B, T, *)``) with
        ``T = total_length`` or the longest length, in the batch's original order;
        ``lengths`` a new ``(B,)`` int64 array in that order (inside a jitted function given
        array lengths: the lengths Tensor that was passed, read anew per call).

    Raises:
        TypeError: ``sequence`` is not a PackedSequence, ``padding_value`` not a number or
            ``total_length`` not an int.
        ValueError: ``total_length`` is shorter than the longest sequence.
        RuntimeError: ``total_length=None`` inside a jitted function given array lengths.
    """
    where = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise TypeError(
            f"{where}: sequence must be a PackedSequence, got {type(sequence).__name__}"
        )
    padded, mask = sequence._padded_form()
    per_call = sequence._lengths_arg is not None and _tracing()
    longest = int(sequence._lengths.max())
    if total_length is None:
        if per_call:
            raise RuntimeError(
                f"{where}: inside a tinygrad_rnn.jit function the lengths were passed as an "
                "array, read anew on every call, so the padded length (the longest length) "
                "would be the first call's; pass total_length= (e.g. the input's seq_len), "
                "or pass lengths as a list or tuple of ints"
            )
        steps = longest
    else:
        if isinstance(total_length, (bool, np.bool_)) or not isinstance(
            total_length, (int, np.integer)
        ):
            raise TypeError(
                f"{where}: total_length must be an int or None, got {type(total_length).__name__}"
            )
        if total_length < longest:
            raise ValueError(
                f"{where}: total_length={total_length} is shorter than the longest sequence "
                f"({longest} steps)"
            )
        steps = int(total_length)
    value = _check_padding_value(padding_value, padded.dtype, where)
    if value != 0:
        if not math.isfinite(value):
            # value·(1 − m) would be inf·0 = nan at the real steps: select instead. (The
            # selection is fixed when traced, hence not with per-call lengths.)
            if per_call:
                raise RuntimeError(
                    f"{where}: a non-finite padding_value ({value}) inside a tinygrad_rnn.jit "
                    "function given array lengths is not supported; pad with a finite value "
                    "or pass lengths as a list or tuple of ints"
                )
            padded = ops.where(np.broadcast_to(mask.data, padded.shape) != 0, padded, value)
        else:
            # The padded form is 0 beyond the lengths: adding value·(1 − m) writes value there
            # and adds exactly 0 at the real steps.
            padded = padded + (1 - mask) * value
    have = padded.shape[0]
    if steps < have:
        padded = padded[:steps]
    elif steps > have:
        fill = np.full((steps - have, *padded.shape[1:]), value, dtype=padded.dtype)
        padded = ops.concat([padded, Tensor._make(fill)], axis=0)
    if batch_first:
        padded = ops.transpose(padded, (1, 0, *range(2, padded.ndim)))
    lengths: Any = sequence._lengths_arg if per_call else np.array(sequence._lengths)
    return padded, lengths


def pad_sequence(
    sequences: Sequence[Tensor | np.ndarray],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stack sequences of different lengths into one padded batch.

    Args:
        sequences: ``B`` Tensors (or arrays) ``(L_b, *)`` with the same trailing shape and dtype.
        batch_first: return ``(B, T, *)`` instead of ``(T, B, *)``; ``T = max L_b``.
        padding_value: the value of the added steps.
        padding_side: ``"right"`` (pad after each sequence) or ``"left"`` (before).

    Returns:
        The padded batch; gradients flow back to each sequence.

    Raises:
        TypeError: not a list or tuple of Tensors/arrays, mixed dtypes, or a bad
            ``padding_value``.
        ValueError: no sequences, 0-d sequences, different trailing shapes, or a
            ``padding_side`` other than ``"right"``/``"left"``.
    """
    return _pad(sequences, batch_first, padding_value, padding_side, "pad_sequence")


def _pad(
    sequences: Any, batch_first: bool, padding_value: Any, padding_side: str, where: str
) -> Tensor:
    """[`pad_sequence`][tinygrad_rnn.nn.utils.rnn.pad_sequence], its errors naming ``where``."""
    if isinstance(sequences, (Tensor, np.ndarray)) or not isinstance(sequences, (list, tuple)):
        raise TypeError(
            f"{where}: sequences must be a list or tuple of Tensors, got {type(sequences).__name__}"
        )
    if len(sequences) == 0:
        raise ValueError(f"{where}: sequences is empty (need at least one sequence)")
    if padding_side not in ("right", "left"):
        raise ValueError(f"{where}: padding_side must be 'right' or 'left', got {padding_side!r}")
    seqs = [_as_sequence_tensor(s, where, f"sequences[{i}]") for i, s in enumerate(sequences)]
    first = seqs[0]
    for i, s in enumerate(seqs):
        if s.ndim < 1:
            raise ValueError(f"{where}: sequences[{i}] is 0-d; each must be (length, *)")
        if s.shape[1:] != first.shape[1:]:
            raise ValueError(
                f"{where}: sequences[{i}] has shape {s.shape} but sequences[0] has {first.shape}"
                "; all must share the shape after the length axis"
            )
        if s.dtype != first.dtype:
            raise TypeError(
                f"{where}: sequences[{i}] has dtype {s.dtype} but sequences[0] has {first.dtype}"
            )
    value = _check_padding_value(padding_value, first.dtype, where)
    steps = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        if s.shape[0] == steps:
            padded.append(s)
            continue
        fill = Tensor._make(np.full((steps - s.shape[0], *s.shape[1:]), value, dtype=s.dtype))
        padded.append(ops.concat([s, fill] if padding_side == "right" else [fill, s], axis=0))
    return ops.stack(padded, axis=0 if batch_first else 1)


def pack_sequence(
    sequences: Sequence[Tensor | np.ndarray], enforce_sorted: bool = True
) -> PackedSequence:
    """Pack a list of sequences ``(L_b, *)`` of different lengths.

    The same as ``pack_padded_sequence(pad_sequence(sequences), [len(s) for s in
    sequences], enforce_sorted=enforce_sorted)``.

    Args:
        sequences: ``B`` Tensors (or arrays) ``(L_b, *)``, each of at least one step.
        enforce_sorted: whether the sequences must come longest first.

    Returns:
        A [`PackedSequence`][tinygrad_rnn.nn.utils.rnn.PackedSequence].

    Raises:
        TypeError: not a list or tuple of Tensors/arrays of one dtype.
        ValueError: no sequences, an empty sequence, different trailing shapes, or sequences
            not longest first while ``enforce_sorted=True``.
    """
    where = "pack_sequence"
    padded = _pad(sequences, False, 0.0, "right", where)
    lengths = [int(np.shape(s)[0]) for s in sequences]
    return _pack(padded, lengths, False, enforce_sorted, where)
