"""Checkpoints: ``save(state_dict, path)`` and ``load(path) -> state_dict``.

A checkpoint is an ``.npz`` file of plain arrays, read back with ``allow_pickle=False``, so
a crafted file can never run code. Saving writes a temporary file in the same folder and
renames it over the target, so a crash while saving leaves the previous checkpoint intact.
Nested dicts (``{"model": ..., "optim": ...}``) are stored with ``/``-joined keys.

    tinygrad_rnn.save({"model": model.state_dict(), "optim": opt.state_dict()}, "ckpt.npz")
    state = tinygrad_rnn.load("ckpt.npz")
    model.load_state_dict(state["model"])
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_rnn.tensor import Tensor

__all__ = ["load", "save"]

_FORMAT_KEY = "__tinygrad_rnn_checkpoint__"
_FORMAT_VERSION = 1
_SEP = "/"


def _flatten(tree: Mapping[str, Any], prefix: str, out: dict[str, np.ndarray]) -> None:
    for key, value in tree.items():
        if not isinstance(key, str) or not key or _SEP in key:
            raise ValueError(f"save: keys must be non-empty strings without '/', got {key!r}")
        name = prefix + key
        if name == _FORMAT_KEY:
            raise ValueError(f"save: the key {_FORMAT_KEY!r} is reserved for the format marker")
        if isinstance(value, Mapping):
            _flatten(value, name + _SEP, out)
            continue
        try:
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"save: {name!r} cannot be stored as an array ({type(value).__name__}): {exc}"
            ) from None
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"save: {name!r} has dtype {array.dtype}; only numbers and booleans are stored "
                "(no objects, so loading never needs pickle)"
            )
        out[name] = array


def _check_path(path: Any, where: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{where}: path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def save(state_dict: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state_dict`` (arrays, numbers, Tensors, nested dicts of them) to ``path``.

    The write is atomic: a temporary file in the same folder is renamed over ``path``
    only once it is complete.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"save: state_dict must be a dict, got {type(state_dict).__name__}")
    target = _check_path(path, "save")
    arrays: dict[str, np.ndarray] = {}
    _flatten(state_dict, "", arrays)
    arrays[_FORMAT_KEY] = np.asarray(_FORMAT_VERSION)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # stubs clash with allow_pickle
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by [`save`][tinygrad_rnn.save]; returns the (nested) dict of
    arrays.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, not an ``.npz``, needs pickle, or was not
            written by [`save`][tinygrad_rnn.save].
    """
    path = _check_path(path, "load")
    if not path.exists():
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    # An .npz is a zip archive; a truncated one loses its central directory at the end.
    if not zipfile.is_zipfile(path):
        raise ValueError(f"load: {path} is not a readable checkpoint (truncated or not an .npz)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            flat = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise ValueError(
            f"load: {path} is not a readable checkpoint (truncated or not an .npz): {exc}"
        ) from None
    except ValueError as exc:  # object arrays need pickle, which is refused
        raise ValueError(f"load: {path} holds data that needs pickle; refused: {exc}") from None
    if _FORMAT_KEY not in flat:
        raise ValueError(f"load: {path} is an .npz but not a tinygrad_rnn checkpoint")
    marker = flat.pop(_FORMAT_KEY)
    if marker.ndim != 0 or marker.dtype.kind not in "iu":
        raise ValueError(
            f"load: {path} is not a valid checkpoint: its format marker is not an integer "
            f"(dtype {marker.dtype}, shape {marker.shape})"
        )
    version = int(marker)
    if version > _FORMAT_VERSION:
        raise ValueError(f"load: {path} has checkpoint format {version}, newer than this library")
    tree: dict[str, Any] = {}
    for name, array in flat.items():
        *parents, leaf = name.split(_SEP)
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(_clash(path, name))
        if leaf in node:
            raise ValueError(_clash(path, name))
        node[leaf] = array
    return tree


def _clash(path: Path, name: str) -> str:
    return (
        f"load: {path} is not a valid checkpoint: {name!r} clashes with another key "
        "(a name is both an array and a folder)"
    )
