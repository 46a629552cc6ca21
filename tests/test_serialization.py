"""Checkpoints: round trips, atomic writes, corrupt and foreign files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4, rng=np.random.default_rng(0)), nn.Linear(4, 2))


def test_module_and_optimizer_round_trip(tmp_path: Path) -> None:
    model = _model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    x = tg.Tensor(np.ones((5, 3), dtype=np.float32))
    model(x).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.npz"
    tg.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": 7}, path)
    state = tg.load(path)
    fresh = _model()
    fresh.load_state_dict(state["model"])
    for (name, a), (_, b) in zip(model.named_parameters(), fresh.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert a.dtype == b.dtype
    opt2 = optim.Adam(fresh.parameters(), lr=0.5)
    opt2.load_state_dict(state["optim"])
    assert opt2.state_dict().keys() == opt.state_dict().keys()
    assert int(state["step"]) == 7


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(3.0)}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        tg.save({"w": np.zeros(3)}, path)
    np.testing.assert_array_equal(tg.load(path)["w"], np.arange(3.0))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary left behind


def test_truncated_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(1000.0)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        tg.load(path)


def test_foreign_npz_and_non_npz_files_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, w=np.zeros(2))
    with pytest.raises(ValueError, match="not a tinygrad_rnn checkpoint"):
        tg.load(foreign)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        tg.load(text)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        tg.load(tmp_path / "missing.npz")


class _Boom:
    def __reduce__(self):
        return (Path.write_text, (Path("/tmp/tinygrad_rnn_pwned"), "pwned"))


def test_a_crafted_pickle_is_never_executed(tmp_path: Path) -> None:
    marker = Path("/tmp/tinygrad_rnn_pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "evil.npz"
    evil = np.empty(1, dtype=object)
    evil[0] = _Boom()
    np.savez(path, w=evil, __tinygrad_rnn_checkpoint__=np.asarray(1))
    assert pickle.dumps(_Boom())  # the payload really is a pickle that would run
    with pytest.raises(ValueError, match="pickle"):
        tg.load(path)
    assert not marker.exists()


def test_shape_mismatch_on_load_names_the_parameter(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    tg.save(nn.Linear(3, 5).state_dict(), path)
    with pytest.raises(ValueError, match=r"weight.*\(4, 3\).*\(5, 3\)|weight.*\(5, 3\).*\(4, 3\)"):
        nn.Linear(3, 4).load_state_dict(tg.load(path))


def test_objects_are_refused_when_saving(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="dtype object"):
        tg.save({"w": np.array([None])}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="'/'"):
        tg.save({"a/b": np.zeros(1)}, tmp_path / "x.npz")
