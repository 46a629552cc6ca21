"""``benchmarks/fast_forms.py`` switches the fast forms off and on without changing the step.

The benchmark times the eager training step with each fast-path field of ``Primitive``
set to its absent value. Its numbers mean something only if

- switching a field off and back on restores every field of every primitive exactly (the
  very objects), also after an exception, so later configurations and other code see the
  primitives as shipped;
- every configuration computes the same loss and gradients as "all on" (float64, 1e-10),
  and the floor's;
- each field is really in use by the step when on and really unused when off (otherwise
  "off" would time the same code path as "on").

No timings are asserted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_rnn import tensor

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import fast_forms  # noqa: E402

TOL = 1e-10
F64 = np.dtype(np.float64)
TINY = (3, 6, 5, 7)  # B, H, V, T: batch > 1, several steps, milliseconds per step


def _snapshot() -> dict[tuple[int, str], Any]:
    return {(id(p), f): getattr(p, f) for p in fast_forms.primitives() for f in fast_forms.ABSENT}


def _assert_same_objects(before: dict[tuple[int, str], Any]) -> None:
    after = _snapshot()
    assert after.keys() == before.keys()
    changed = [key for key, value in before.items() if after[key] is not value]
    assert not changed


@pytest.fixture
def stand_ins_at_any_size(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``shape_only`` stand-ins are made for inputs of any size, so the tiny step uses them."""
    monkeypatch.setattr(tensor, "_RELEASE_MIN_BYTES", 0)
    yield


def test_the_primitives_are_those_of_ops_and_each_field_is_declared() -> None:
    prims = fast_forms.primitives()
    assert len({id(p) for p in prims}) == len(prims)
    names = {p.name for p in prims}
    assert {"addmm", "getitem", "stack", "tanh", "sigmoid", "softmax_cross_entropy"} <= names
    for field in fast_forms.ABSENT:  # switching an undeclared field off would measure nothing
        assert fast_forms.declared(field), field


@pytest.mark.parametrize("config", list(fast_forms.CONFIGS))
def test_fields_off_sets_only_its_fields_and_restores_every_field(config: str) -> None:
    before = _snapshot()
    off = fast_forms.CONFIGS[config]
    with fast_forms.fields_off(off):
        for p in fast_forms.primitives():
            for f, absent in fast_forms.ABSENT.items():
                if f in off:
                    assert getattr(p, f) == absent, (p.name, f)
                else:
                    assert getattr(p, f) is before[(id(p), f)], (p.name, f)
    _assert_same_objects(before)
    with pytest.raises(KeyError):  # restored after an exception too
        with fast_forms.fields_off(off):
            raise KeyError("inside")
    _assert_same_objects(before)


def test_fields_off_rejects_an_unknown_field() -> None:
    with pytest.raises(ValueError, match=r"fields_off: unknown field.*'vjps'"):
        with fast_forms.fields_off(("vjps",)):
            pass


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_every_configuration_gives_the_gradients_of_all_on(
    model: str, stand_ins_at_any_size: None
) -> None:
    problem = fast_forms.make_eager(model, "tiny", F64, TINY)
    loss_on, grads_on = fast_forms.gradients(problem)
    assert problem.agree() <= TOL  # all on = the floor
    for config, off in fast_forms.CONFIGS.items():
        with fast_forms.fields_off(off):
            loss, grads = fast_forms.gradients(problem)
            assert problem.agree() <= TOL, config
        assert abs(loss - loss_on) <= TOL * abs(loss_on), config
        assert all(g.dtype == F64 for g in grads)
        for g, ref in zip(grads, grads_on, strict=True):
            assert np.max(np.abs(g - ref)) <= TOL * np.max(np.abs(ref)), config


def _counting(fn: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return fn(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize("field", ["factors", "accumulate", "vjp_all"])
def test_a_callable_fast_form_runs_when_on_and_never_when_off(
    field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [0]
    for p in fast_forms.primitives():
        value = getattr(p, field)
        if value is None:
            continue
        if field == "factors":
            monkeypatch.setattr(p, field, {i: _counting(f, calls) for i, f in value.items()})
        else:
            monkeypatch.setattr(p, field, _counting(value, calls))
    problem = fast_forms.make_eager("lstm", "tiny", F64, TINY)
    problem.step()
    assert calls[0] > 0
    calls[0] = 0
    with fast_forms.fields_off((field,)):
        problem.step()
    assert calls[0] == 0


def test_eager_nodes_save_stand_ins_for_large_inputs_no_rule_reads() -> None:
    """``shape_only`` in eager: an input of 16 KiB or more (or a view of one) whose value no
    rule reads is saved as a stand-in, a smaller one as it is (small graphs keep values),
    and the gradient is the closed form's either way."""
    from tinygrad_rnn import Tensor
    from tinygrad_rnn.tensor import _is_stand_in

    rng = np.random.default_rng(0)
    for shape, index, stood_in in (
        ((64, 64), slice(None), True),  # 32 KiB
        ((4, 4), slice(None), False),
        ((64, 64), slice(0, 2), True),  # a view of 32 KiB counts its base
    ):
        w = Tensor(rng.standard_normal(shape), requires_grad=True)
        x = (w * 1.0)[index]
        y = x.tanh()  # tanh's rule reads its output only
        assert y._node is not None
        assert _is_stand_in(y._node.arrays[0]) is stood_in
        y.sum().backward()
        want = np.zeros(shape)
        want[index] = 1 - np.tanh(w.data[index]) ** 2
        assert w.grad is not None
        np.testing.assert_allclose(w.grad.data, want, rtol=1e-12, atol=1e-15)


def test_the_report_renders_from_a_quick_measurement(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_json = tmp_path / "fast_forms.json"
    argv = [
        "--models",
        "rnn",
        "--sizes",
        "S",
        "--runs",
        "2",
        "--repeats",
        "2",
        "--long-T",
        "3",
        "--long-repeats",
        "2",
    ]
    fast_forms.main([*argv, "--json", str(out_json)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    for config in fast_forms.CONFIGS:
        assert sum(line.startswith(f"| rnn S | {config} |") for line in lines) == 2  # 2 runs
        # The summary has a row per configuration switched off; the long step, every one.
        rows = sum(line.startswith(f"| {config} |") for line in lines)
        assert rows == (1 if config == fast_forms.ALL_ON else 2), config
    assert "## Run 2 of 2" in out and "## One LSTM step, T = 3" in out
    recs = json.loads(out_json.read_text())["records"]
    n = len(fast_forms.CONFIGS)
    assert len(recs) == 2 * n + n  # two runs of rnn S, and the long step
    assert all(len(r["times_ms"]) == 2 and r["grad_diff"] <= 1e-4 for r in recs)
    assert {r["config"] for r in recs} == set(fast_forms.CONFIGS)
