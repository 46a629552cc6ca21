"""``Tensor.retain_grad`` and ``Tensor.register_hook`` against PyTorch (float64, 1e-9).

Every test builds the same computation in both libraries (cells moved over with
``from_torch``), registers the same hooks, and compares what the hooks saw, the retained
``.grad`` of intermediates and the gradients upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import nn  # noqa: E402

TOL = 1e-9


def values(t: Any) -> np.ndarray:
    """A copy of the values of a Tensor of either library (or of an array)."""
    if isinstance(t, torch.Tensor):
        return t.detach().numpy().copy()
    return np.array(t.data if isinstance(t, tg.Tensor) else t)


def close(ours: Any, theirs: Any, what: str) -> None:
    np.testing.assert_allclose(values(ours), values(theirs), rtol=TOL, atol=TOL, err_msg=what)


def unroll_both(
    kind: str, xs: np.ndarray, hidden: int, seed: int, hook_step: int | None = None
) -> tuple[Any, Any]:
    """The same cell unrolled over ``xs`` (T, B, D) in torch and here, every h_t retained.

    The loss reads every step (a random linear readout), so each ``h_t`` gets gradient from
    its own output and from step ``t + 1``: the total ∂L/∂h_t of BPTT.
    """
    torch.manual_seed(seed)
    steps, batch, dim = xs.shape
    cell_t = getattr(torch.nn, kind)(dim, hidden).double()
    cell = getattr(nn, kind).from_torch(cell_t)
    readout = np.random.default_rng(seed).standard_normal((steps, batch, hidden))

    def run(lib: Any, cell: Any, tensor: Callable[..., Any]) -> dict[str, Any]:
        x = tensor(xs)
        state = None
        hs, cs = [], []
        loss = 0.0
        for t in range(steps):
            state = cell(x[t], state)
            h = state[0] if kind == "LSTMCell" else state
            h.retain_grad()
            hs.append(h)
            if kind == "LSTMCell":
                state[1].retain_grad()
                cs.append(state[1])
            loss = loss + (h * tensor(readout[t], grad=False)).sum() + (h * h).sum() * 0.1
        return {"loss": loss, "hs": hs, "cs": cs, "x": x, "cell": cell}

    ours = run(tg, cell, lambda a, grad=True: tg.Tensor(a, requires_grad=grad))
    theirs = run(torch, cell_t, lambda a, grad=True: torch.tensor(a, requires_grad=grad))
    return ours, theirs


@given(
    kind=st.sampled_from(["RNNCell", "LSTMCell"]),
    steps=st.integers(1, 6),
    batch=st.integers(1, 3),
    dim=st.integers(1, 4),
    hidden=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_retained_hidden_grads_match_torch(
    kind: str, steps: int, batch: int, dim: int, hidden: int, seed: int
) -> None:
    xs = np.random.default_rng(seed + 1).standard_normal((steps, batch, dim))
    ours, theirs = unroll_both(kind, xs, hidden, seed)
    ours["loss"].backward()
    theirs["loss"].backward()
    close(ours["loss"], theirs["loss"], "loss")
    for t, (h, h_t) in enumerate(zip(ours["hs"], theirs["hs"])):
        assert h.retains_grad and h_t.retains_grad
        close(h.grad, h_t.grad, f"dL/dh_{t}")
    for t, (c, c_t) in enumerate(zip(ours["cs"], theirs["cs"])):
        close(c.grad, c_t.grad, f"dL/dc_{t}")
    close(ours["x"].grad, theirs["x"].grad, "dL/dx")
    for (name, p), (_, p_t) in zip(
        ours["cell"].named_parameters(), theirs["cell"].named_parameters()
    ):
        close(p.grad, p_t.grad, name)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell"])
def test_scaling_hook_changes_upstream_grads_as_torch(kind: str) -> None:
    xs = np.random.default_rng(3).standard_normal((5, 2, 3))
    ours, theirs = unroll_both(kind, xs, 4, seed=7)
    seen: dict[str, list[Any]] = {"ours": [], "torch": []}

    def scale(log: list[Any]) -> Callable[[Any], Any]:
        def hook(g: Any) -> Any:
            log.append(values(g))
            return g * 10.0

        return hook

    ours["hs"][2].register_hook(scale(seen["ours"]))
    theirs["hs"][2].register_hook(scale(seen["torch"]))
    ours["loss"].backward()
    theirs["loss"].backward()
    assert len(seen["ours"]) == len(seen["torch"]) == 1
    close(seen["ours"][0], seen["torch"][0], "the gradient the hook saw")
    for t in range(5):
        # h_2 itself retains the scaled value; h_0, h_1 get the scaled one through the step.
        close(ours["hs"][t].grad, theirs["hs"][t].grad, f"dL/dh_{t} with the hook")
    close(ours["x"].grad, theirs["x"].grad, "dL/dx with the hook")
    for (name, p), (_, p_t) in zip(
        ours["cell"].named_parameters(), theirs["cell"].named_parameters()
    ):
        close(p.grad, p_t.grad, f"{name} with the hook")
    # The hook made a difference upstream and none downstream of h_2.
    xs_plain = unroll_both(kind, xs, 4, seed=7)[0]
    xs_plain["loss"].backward()
    assert not np.allclose(xs_plain["hs"][0].grad.data, ours["hs"][0].grad.data)
    np.testing.assert_array_equal(xs_plain["hs"][4].grad.data, ours["hs"][4].grad.data)


def chain(lib: Any, x: Any) -> tuple[Any, Any, Any]:
    """``h = tanh(2x)``, ``z = h * x``, ``L = sum(z**2)``: one intermediate with two uses."""
    h = (x * 2.0).tanh() if lib is tg else torch.tanh(x * 2.0)
    z = h * x
    return h, z, (z * z).sum()


def both_leaves(seed: int = 0) -> tuple[tg.Tensor, Any]:
    a = np.random.default_rng(seed).standard_normal(4)
    return tg.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def test_hooks_run_in_registration_order_each_seeing_the_previous_result() -> None:
    x, x_t = both_leaves()
    logs: dict[str, list[tuple[str, np.ndarray]]] = {"ours": [], "torch": []}
    for lib, leaf, log in ((tg, x, logs["ours"]), (torch, x_t, logs["torch"])):
        h, _, loss = chain(lib, leaf)

        def first(g: Any, log: list[Any] = log) -> Any:
            log.append(("first", values(g)))
            return g * 3.0

        def second(g: Any, log: list[Any] = log) -> None:
            log.append(("second", values(g)))

        h.register_hook(first)
        h.retain_grad()  # registered between the two: .grad still comes after both
        h.register_hook(second)
        loss.backward()
        log.append(("grad", values(h.grad)))
        log.append(("x", values(leaf.grad)))
    assert [k for k, _ in logs["ours"]] == [k for k, _ in logs["torch"]]
    for (k, a), (_, b) in zip(logs["ours"], logs["torch"]):
        close(a, b, k)
    close(logs["ours"][1][1], 3 * logs["ours"][0][1], "the second hook sees the first's result")


def test_handle_remove() -> None:
    x, _ = both_leaves()
    h, _, loss = chain(tg, x)
    calls: list[int] = []
    handle = h.register_hook(lambda g: calls.append(1) or g * 0.0)
    keep = h.register_hook(lambda g: calls.append(2))
    assert h._hooks is not None
    handle.remove()
    handle.remove()  # twice: a no-op
    loss.backward(retain_graph=True)
    assert calls == [2]
    x_plain, _ = both_leaves()
    chain(tg, x_plain)[2].backward()
    np.testing.assert_array_equal(x.grad.data, x_plain.grad.data)  # the zeroing hook is gone
    keep.remove()
    assert h._hooks is None  # no hook and no retain_grad: the hook-free path again
    x.grad = None
    loss.backward()
    assert calls == [2]
    np.testing.assert_array_equal(x.grad.data, x_plain.grad.data)


def test_handle_as_context_manager() -> None:
    x, _ = both_leaves()
    h, _, loss = chain(tg, x)
    calls: list[int] = []
    with h.register_hook(lambda g: calls.append(1)):
        loss.backward(retain_graph=True)
    loss.backward()
    assert calls == [1]


def test_removed_handle_of_a_retained_tensor_keeps_retaining() -> None:
    x, _ = both_leaves()
    h, _, loss = chain(tg, x)
    h.retain_grad()
    h.register_hook(lambda g: g * 2.0).remove()
    assert h._hooks is not None and h.retains_grad
    loss.backward()
    assert h.grad is not None


def test_hooks_on_leaves_run_before_accumulation() -> None:
    x, x_t = both_leaves()
    for leaf in (x, x_t):
        leaf.register_hook(lambda g: g * -2.0)
        leaf.retain_grad()  # on a leaf: a no-op
        assert not leaf.retains_grad
    for _ in range(2):  # the second pass adds the hooked gradient to the first
        chain(tg, x)[2].backward()
        chain(torch, x_t)[2].backward()
        close(x.grad, x_t.grad, "leaf .grad with a hook")


def test_hook_on_a_parameter_of_a_cell_matches_torch() -> None:
    xs = np.random.default_rng(5).standard_normal((4, 2, 3))
    ours, theirs = unroll_both("RNNCell", xs, 3, seed=11)
    ours["cell"].weight_hh.register_hook(lambda g: g * 0.5)
    theirs["cell"].weight_hh.register_hook(lambda g: g * 0.5)
    ours["loss"].backward()
    theirs["loss"].backward()
    close(ours["cell"].weight_hh.grad, theirs["cell"].weight_hh.grad, "weight_hh")
    close(ours["cell"].weight_ih.grad, theirs["cell"].weight_ih.grad, "weight_ih (no hook)")


def test_retain_grad_accumulates_over_two_backward_calls_with_retain_graph() -> None:
    xs = np.random.default_rng(9).standard_normal((4, 2, 3))
    ours, theirs = unroll_both("LSTMCell", xs, 3, seed=2)
    ours["loss"].backward(retain_graph=True)
    theirs["loss"].backward(retain_graph=True)
    first = [h.grad.data.copy() for h in ours["hs"]]
    ours["loss"].backward()
    theirs["loss"].backward()
    for t, (h, h_t) in enumerate(zip(ours["hs"], theirs["hs"])):
        close(h.grad, h_t.grad, f"dL/dh_{t} after two backward calls")
        close(h.grad, 2 * first[t], f"dL/dh_{t}: twice the first")
    for c, c_t in zip(ours["cs"], theirs["cs"]):
        close(c.grad, c_t.grad, "dL/dc_t after two backward calls")


def test_retained_grad_owns_its_memory() -> None:
    # Two intermediates that receive the very same gradient array (an add passes it through).
    x, _ = both_leaves()
    a, b = x * 2.0, x * 3.0
    a.retain_grad()
    b.retain_grad()
    (a + b).sum().backward()
    a.grad.data[...] = 100.0
    np.testing.assert_array_equal(b.grad.data, np.ones(4))
    np.testing.assert_array_equal(x.grad.data, np.full(4, 5.0))


def test_grad_runs_hooks_like_torch_autograd_grad() -> None:
    x, x_t = both_leaves(1)
    results = {}
    for lib, leaf in ((tg, x), (torch, x_t)):
        h, z, loss = chain(lib, leaf)
        z.retain_grad()  # between the output and the input: torch fills its .grad too
        z.register_hook(lambda g: g * 3.0)
        leaf.register_hook(lambda g: g + 1.0)
        grad_fn = tg.grad if lib is tg else torch.autograd.grad
        (gx,) = grad_fn(loss, [leaf], retain_graph=True)
        (gh,) = grad_fn(loss, [h], retain_graph=True)  # an intermediate as the only input
        results[lib.__name__] = (gx, gh, z.grad)
    for what, a, b in zip(("dL/dx", "dL/dh", "z.grad"), results["tinygrad_rnn"], results["torch"]):
        close(a, b, what)
    assert x.grad is None  # grad() does not accumulate into leaves


def test_grad_does_not_run_hooks_beyond_the_inputs() -> None:
    x, _ = both_leaves()
    before = x * 3.0
    calls: list[int] = []
    before.register_hook(lambda g: calls.append(1))
    before.retain_grad()
    h = before.tanh()
    tg.grad((h * h).sum(), [h])
    assert calls == [] and before.grad is None


def test_hooks_under_create_graph_are_differentiated() -> None:
    x, x_t = both_leaves(2)
    out = {}
    for lib, leaf in ((tg, x), (torch, x_t)):
        h = leaf * leaf
        h.register_hook(lambda g, leaf=leaf: g * leaf)  # the hook's own op is recorded
        grad_fn = tg.grad if lib is tg else torch.autograd.grad
        (gx,) = grad_fn((h * 1.5).sum(), [leaf], create_graph=True)
        (gx * gx).sum().backward()
        out[lib.__name__] = (gx, leaf.grad)
    close(out["tinygrad_rnn"][0], out["torch"][0], "first derivative with the hook")
    close(out["tinygrad_rnn"][1], out["torch"][1], "second derivative through the hook")


def test_hook_on_the_output_sees_ones() -> None:
    x, x_t = both_leaves()
    seen = []
    for lib, leaf in ((tg, x), (torch, x_t)):
        loss = chain(lib, leaf)[2]
        loss.register_hook(lambda g: seen.append(float(g.item())) or g * 4.0)
        loss.backward()
    assert seen == [1.0, 1.0]
    close(x.grad, x_t.grad, "dL/dx after the output's hook")


def test_fast_path_marker() -> None:
    # ``_hooks is None`` is how the engine (and the jit) know a tensor has no hooks.
    x, _ = both_leaves()
    h = x.tanh()
    assert x._hooks is None and h._hooks is None and not h.retains_grad
    h.retain_grad()
    assert h._hooks is not None and h.retains_grad
    assert x.detach()._hooks is None
    x.register_hook(lambda g: None)
    assert x._hooks is not None


def test_bad_hooks_and_tensors() -> None:
    plain = tg.Tensor(np.ones(3))
    with pytest.raises(RuntimeError, match=r"register_hook: .*does not require grad"):
        plain.register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match=r"retain_grad: .*does not require grad"):
        plain.retain_grad()
    x, _ = both_leaves()
    with pytest.raises(TypeError, match="register_hook: hook must be callable"):
        x.register_hook(3)  # type: ignore[arg-type]
    cases: list[tuple[Callable[[Any], Any], type[Exception], str]] = [
        (lambda g: g[:2], ValueError, r"changed the shape of the gradient from \(4,\) to \(2,\)"),
        (lambda g: tg.Tensor(g.data.astype(np.float32)), TypeError, "changed the dtype"),
        (lambda g: 3, TypeError, "returned a int"),
        (lambda g: g.data, TypeError, "returned a ndarray"),
    ]
    for hook, error, message in cases:
        h = x.tanh()
        h.register_hook(hook)
        with pytest.raises(error, match=f"register_hook: hook .*{message}"):
            h.sum().backward()
    assert tg.is_grad_enabled()  # an error in a hook leaves the grad mode as it was


def test_grad_returns_an_intermediate_input_after_its_hooks() -> None:
    # Documented: always after the hooks, also when the pass walks on past the input (there
    # PyTorch returns the gradient before them), so a hook's replacement is what grad() sees.
    x, _ = both_leaves(3)
    h, _, loss = chain(tg, x)
    (plain_h, plain_x) = tg.grad(loss, [h, x], retain_graph=True)
    h.register_hook(lambda g: g * 10.0)
    (hooked_h, hooked_x) = tg.grad(loss, [h, x])
    close(hooked_h, 10 * plain_h.data, "dL/dh after the hook")
    assert not np.allclose(hooked_x.data, plain_x.data)  # the hook's gradient flowed on to x
