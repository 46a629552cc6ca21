"""``tinygrad_rnn.jit`` equals eager: values, every leaf's ``.grad``, over repeated calls.

The oracle is the same function run eagerly (float64, to 1e-12), on the same parameters
and data, for the built-in layers, random configurations, a cell the library does not ship,
new data and new parameter arrays on every call, and changed shapes. What jit cannot replay
is refused with an error that says what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn, optim

Tensor = tg.Tensor


def _grads(params: list[Any]) -> list[np.ndarray]:
    out = []
    for p in params:
        assert p.grad is not None
        out.append(p.grad.data.copy())
    return out


def _compare(step: Any, params: list[Any], calls: list[tuple[Any, ...]]) -> int:
    """Run ``step`` eagerly and jitted on each call's data; return how many programs were traced."""
    jitted = tg.jit(step)
    rng = np.random.default_rng(1)
    for args in calls:
        for p in params:
            p.grad = None
        eager = step(*args)
        want = _grads(params)
        for p in params:
            p.grad = None
        got = jitted(*args)
        np.testing.assert_allclose(got.data, eager.data, rtol=1e-12, atol=1e-12)
        assert not got.requires_grad and got.is_leaf  # detached
        for g, w in zip(_grads(params), want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
        for p in params:  # an optimizer's update: a new array every call
            p.data = p.data - 0.1 * rng.standard_normal(p.shape)
    return len(jitted.programs)


@settings(max_examples=12, deadline=None)
@given(
    kind=st.sampled_from(["RNN", "LSTM", "GRU"]),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    with_state=st.booleans(),
    T=st.integers(1, 4),
    B=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_jit_equals_eager_for_random_layer_configurations(
    kind: str,
    layers: int,
    bidirectional: bool,
    batch_first: bool,
    with_state: bool,
    T: int,
    B: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    D, H, V = 3, 4, 5
    layer = getattr(nn, kind)(
        D,
        H,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=np.float64,
        rng=rng,
    )
    dirs = 2 if bidirectional else 1
    head = nn.Linear(dirs * H, V, dtype=np.float64, rng=rng)
    params = [*layer.parameters(), *head.parameters()]

    def step(x: Any, y: Any, h0: Any) -> Any:
        state = None
        if h0 is not None:
            state = (h0, h0 * 0.5) if kind == "LSTM" else h0
        out, _ = layer(x, state)
        loss = F.cross_entropy(head(out), y, axis=-1, reduction="sum")
        loss.backward()
        return loss

    def data() -> tuple[Any, ...]:
        shape = (B, T, D) if batch_first else (T, B, D)
        x = rng.standard_normal(shape)
        y = rng.integers(0, V, shape[:2])
        h0 = Tensor(rng.standard_normal((layers * dirs, B, H))) if with_state else None
        return x, y, h0

    assert _compare(step, params, [data(), data(), data()]) == 1


def test_a_new_shape_traces_again_and_equals_eager() -> None:
    rng = np.random.default_rng(0)
    lstm, head = nn.LSTM(3, 4, dtype=np.float64, rng=rng), nn.Linear(4, 2, dtype=np.float64)
    params = [*lstm.parameters(), *head.parameters()]

    def step(x: Any, y: Any) -> Any:
        loss = F.cross_entropy(head(lstm(x)[0]), y, reduction="sum")
        loss.backward()
        return loss

    calls = [(rng.standard_normal((T, 2, 3)), rng.integers(0, 2, (T, 2))) for T in (3, 5, 3)]
    assert _compare(step, params, calls) == 2


def test_a_users_own_cell_in_a_python_loop_jits_and_equals_eager() -> None:
    """A minimal gated cell (not in the library), written with elementary ops."""
    rng = np.random.default_rng(0)
    D, H = 3, 4
    w = Tensor(rng.standard_normal((D + H, 2 * H)) * 0.5, requires_grad=True)
    b = Tensor(np.zeros(2 * H), requires_grad=True)

    def step(xs: Any, target: Any) -> Any:
        h = Tensor(np.zeros((xs.shape[1], H)))
        for t in range(xs.shape[0]):
            z = tg.concat([xs[t], h], axis=-1) @ w + b
            gate, cand = tg.chunk(z, 2, axis=-1)
            u = gate.sigmoid()
            h = u * h + (1 - u) * cand.tanh()
        loss = ((h - target) ** 2).sum()
        loss.backward()
        return loss

    calls = [(rng.standard_normal((5, 2, D)), rng.standard_normal((2, H))) for _ in range(3)]
    assert _compare(step, [w, b], calls) == 1


def test_grads_accumulate_across_calls_like_backward() -> None:
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    @tg.jit
    def step(x: Any) -> Any:
        loss = (w * x).sum()
        loss.backward()
        return loss

    step(np.array([1.0, 1.0]))
    step(np.array([2.0, 3.0]))  # a replay: adds to .grad
    assert w.grad is not None
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])


def test_returned_tensors_are_copies_not_the_programs_buffers() -> None:
    w = Tensor(np.ones(3), requires_grad=True)

    @tg.jit
    def f(x: Any) -> Any:
        return (w * x, x + 1)

    a, _ = f(np.ones(3))
    b, _ = f(np.full(3, 2.0))
    np.testing.assert_array_equal(a.data, np.ones(3))
    np.testing.assert_array_equal(b.data, np.full(3, 2.0))


def test_an_optimizer_step_inside_is_refused_and_says_where_it_belongs() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    @tg.jit
    def step(x: Any) -> Any:
        loss = (w * x).sum()
        loss.backward()
        opt.step()
        return loss

    with pytest.raises(RuntimeError, match=r"opt\.step\(\).*after the jitted function returns"):
        step(np.ones(3))


def _hooked(t: Tensor) -> Tensor:
    t.register_hook(lambda g: g * 2)
    return t


def _retained(t: Tensor) -> Tensor:
    t.retain_grad()
    return t


def test_a_hook_on_a_parameter_is_refused() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    w.register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="has a hook or retains its gradient"):
        tg.jit(lambda x: (w * x).sum().backward())(np.ones(3))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda w, x: (w * x).sum().backward(create_graph=True), "create_graph=True cannot be"),
        (lambda w, x: tg.grad((w * x).sum(), [w]), "grad: not available inside"),
        (lambda w, x: _hooked(w * x).sum().backward(), "has a hook or retains its gradient"),
        (lambda w, x: _retained(w * x).sum().backward(), "has a hook or retains its gradient"),
    ],
)
def test_what_cannot_be_replayed_is_refused(body: Any, message: str) -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=message):
        tg.jit(lambda x: body(w, x))(np.ones(3))


def test_anomaly_mode_is_refused() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(RuntimeError, match="jit: anomaly mode"):
        tg.jit(lambda x: w * x)(np.ones(3))


def test_a_copy_of_an_argument_made_outside_the_ops_is_refused() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"argument 0 .* copy made outside"):
        tg.jit(lambda x: w * Tensor(np.array(x.data)))(np.array([1.0, 2.0, 3.0]))


def test_a_number_returned_is_refused() -> None:
    w = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match=r"return the Tensor and call \.item\(\) outside"):
        tg.jit(lambda x: (w * x).sum().item())(np.ones(3))


def test_masks_computed_inside_are_computed_again_on_every_call() -> None:
    """Comparisons, ``where`` and masks made from them are ops: a replay recomputes them."""
    w = Tensor(np.linspace(-1.0, 1.0, 6), requires_grad=True)

    def step(x: Tensor) -> Tensor:
        pre = x * w
        relu_by_mask = pre * (pre > 0)  # a boolean mask as an operand
        picked = tg.where(x < 0.25, pre, -pre)  # a mask as where's condition
        loss = (relu_by_mask + picked * picked).sum()
        loss.backward()
        return loss

    rng = np.random.default_rng(3)
    calls = [(Tensor(rng.standard_normal(6)),) for _ in range(4)]
    assert _compare(step, [w], calls) == 1


# ------------------------------------------------------ random programs of the engine's ops
_UNARY = {
    "tanh": lambda a: a.tanh(),
    "sigmoid": lambda a: a.sigmoid(),
    "exp_tanh": lambda a: a.tanh().exp(),
    "relu": lambda a: a.relu(),
    "abs": lambda a: a.abs(),
    "neg": lambda a: -a,
    "square": lambda a: a * a,
    "scale": lambda a: a * 0.5 + 1.0,
    "one_minus": lambda a: 1 - a,
    "row_slice": lambda a: tg.concat([a[1:], a[:1]], axis=0),
    "col_chunks": lambda a: tg.concat(list(reversed(tg.chunk(a, 2, axis=1))), axis=1),
    "transpose_twice": lambda a: a.T.T,
    "reshape": lambda a: a.reshape(4, 3).reshape(3, 4),
    "softmax": lambda a: F.softmax(a, axis=-1),
    "log_softmax": lambda a: F.log_softmax(a, axis=0),
    "sum_keep": lambda a: a - a.sum(axis=1, keepdims=True),
    "mean_bcast": lambda a: a * a.mean(axis=0),
    "max_bcast": lambda a: a - a.max(axis=1, keepdims=True),
    "logsumexp": lambda a: a - tg.logsumexp(a, axis=1, keepdims=True),
    "masked": lambda a: a * (a > 0),
    "clip": lambda a: tg.clip(a, -0.5, 0.5),
}
_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (1.5 + b.tanh()),
    "maximum": lambda a, b: tg.maximum(a, b),
    "where": lambda a, b: tg.where(a > b, a, b * 2),
    "matmul": lambda a, b: a @ b.T @ a * 0.1,
    "stack_sum": lambda a, b: tg.stack([a, b], axis=0).sum(axis=0),
    "bias": lambda a, b: a + b[0],
}


@st.composite
def _programs(draw: Any) -> list[tuple[str, str, int, int]]:
    n = draw(st.integers(2, 9))
    steps = []
    for k in range(n):
        avail = 3 + k  # two inputs, one parameter, then each step's result
        if draw(st.booleans()):
            steps.append(
                ("u", draw(st.sampled_from(sorted(_UNARY))), draw(st.integers(0, avail - 1)), 0)
            )
        else:
            a, b = draw(st.integers(0, avail - 1)), draw(st.integers(0, avail - 1))
            steps.append(("b", draw(st.sampled_from(sorted(_BINARY))), a, b))
    return steps


@settings(max_examples=40, deadline=None)
@given(program=_programs(), seed=st.integers(0, 2**16))
# Found by this test: the same mask computed twice, once baked into the program.
@example(program=[("b", "where", 1, 0), ("u", "abs", 0, 0), ("b", "where", 1, 0)], seed=0)
def test_jit_equals_eager_for_random_programs_of_the_engines_ops(program: Any, seed: int) -> None:
    """Random compositions (slices, views, broadcasting, reductions, masks, shared
    values): the replay's values and gradients equal eager on new data, to 1e-12."""
    rng = np.random.default_rng(seed)
    w = Tensor(rng.standard_normal((3, 4)), requires_grad=True)

    def step(x: Tensor, y: Tensor) -> Tensor:
        vals = [x, y, w]
        for kind, name, i, j in program:
            if kind == "u":
                vals.append(_UNARY[name](vals[i]))
            else:
                vals.append(_BINARY[name](vals[i], vals[j]))
        # Every value feeds the loss, several of them more than once.
        loss = sum(((v * (k + 1)).tanh() * v).sum() for k, v in enumerate(vals[3:]))
        loss = loss + (vals[-1] * vals[-1]).sum() + (x * w).sum()  # w and x always used
        loss.backward()
        return loss

    def data() -> tuple[Tensor, Tensor]:
        return (
            Tensor(rng.standard_normal((3, 4)), requires_grad=True),
            Tensor(rng.standard_normal((3, 4))),
        )

    jitted = tg.jit(step)
    for _ in range(3):
        args = data()
        w.grad = args[0].grad = None
        eager = step(*args)
        want = [w.grad.data.copy(), args[0].grad.data.copy()]  # type: ignore[union-attr]
        w.grad = args[0].grad = None
        for prog in jitted.programs.values():  # kept buffers hold garbage between calls
            for r in _reused_buffers(prog):
                if r.array is not None:
                    r.array.fill(np.nan)
        got = jitted(*args)
        np.testing.assert_allclose(got.data, eager.data, rtol=1e-12, atol=1e-12)
        for t, expected in zip((w, args[0]), want):
            assert t.grad is not None
            np.testing.assert_allclose(t.grad.data, expected, rtol=1e-11, atol=1e-12)
        w.data = w.data + 0.1 * rng.standard_normal(w.shape)
    assert len(jitted.programs) == 1


def test_an_op_repeated_with_and_without_grad_keeps_its_gradient() -> None:
    """The same op on the same values twice, once under no_grad: merging the two must not
    lose the gradient of the one with a graph."""
    w = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)

    def step(x: Tensor) -> Tensor:
        with tg.no_grad():
            frozen = w.T
        loss = (x @ w.T).sum() + (x @ frozen).sum() * 0.5
        loss.backward()
        return loss

    rng = np.random.default_rng(0)
    assert _compare(step, [w], [(Tensor(rng.standard_normal((4, 3))),) for _ in range(3)]) == 1


def test_a_users_cell_taking_the_transpose_every_step_gets_one_weight_product() -> None:
    """``h @ W.T`` written inside the loop: the T transposes are one op of the program, and
    the weight's gradient is one product over all steps, not one per step."""
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((4, 4)) * 0.3, requires_grad=True)

    def step(xs: Tensor) -> Tensor:
        h = xs[0]
        for t in range(1, xs.shape[0]):
            h = (xs[t] + h @ w.T).tanh()
        loss = (h * h).sum()
        loss.backward()
        return loss

    calls = [(Tensor(rng.standard_normal((12, 2, 4))),) for _ in range(3)]
    jitted = tg.jit(step)
    assert _compare(step, [w], calls) == 1
    jitted(*calls[0])
    prog = next(iter(jitted.programs.values()))
    import importlib

    products = [
        fn
        for fn, _, _ in prog.instrs
        if fn is importlib.import_module("tinygrad_rnn.jit")._multiply_out
    ]
    assert len(products) == 1


def _program(jitted: Any) -> Any:
    return next(iter(jitted.programs.values()))


def _reused_buffers(prog: Any) -> list[Any]:
    import importlib

    reused_type = importlib.import_module("tinygrad_rnn.jit._plan")._Reused
    return [fn for fn, _, _ in prog.instrs if isinstance(fn, reused_type)]


def _rnn_step(rnn: Any, head: Any, returns_output: bool) -> Any:
    def step(xs: Any, ys: Any) -> Any:
        out, _ = rnn(xs)
        loss = F.cross_entropy(head(out), ys, reduction="sum")
        loss.backward()
        return (loss, out) if returns_output else loss

    return step


def _replay_equals_eager(step: Any, jitted: Any, params: list[Any], *args: Any) -> None:
    """One call of ``jitted`` gives ``step``'s loss and every parameter's gradient, to 1e-12."""
    for p in params:
        p.grad = None
    want_loss = step(*args).item()
    want = _grads(params)
    for p in params:
        p.grad = None
    assert jitted(*args).item() == pytest.approx(want_loss, rel=1e-12)
    for g, w in zip(_grads(params), want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_a_replay_reuses_the_buffers_it_allocates_and_still_equals_eager() -> None:
    """The stack of hidden states and the gradient buffers are the same arrays on every
    replay (the memory plan allocates them once), and the results stay eager's."""
    rng = np.random.default_rng(0)
    rnn = nn.RNN(3, 5, dtype=np.float64, rng=rng)
    head = nn.Linear(5, 4, dtype=np.float64, rng=rng)
    step = _rnn_step(rnn, head, returns_output=False)
    calls = [(Tensor(rng.standard_normal((6, 2, 3))), rng.integers(0, 4, (6, 2))) for _ in range(4)]
    params = [*rnn.parameters(), *head.parameters()]
    jitted = tg.jit(step)
    jitted(*calls[0])
    jitted(*calls[0])  # planned here
    reused = _reused_buffers(_program(jitted))
    assert reused, "the hidden-state stack and the gradient buffers are reused"
    arrays = [r.array for r in reused]
    for xs, ys in calls:
        _replay_equals_eager(step, jitted, params, xs, ys)
        assert all(r.array is a for r, a in zip(reused, arrays))  # the same memory


def test_a_buffer_the_caller_may_receive_is_not_reused() -> None:
    """Returning the layer's output, a view of the hidden-state stack, keeps that stack a
    fresh array on every replay: the plan follows views from each buffer to what is
    returned."""
    rng = np.random.default_rng(1)
    rnn = nn.RNN(3, 5, dtype=np.float64, rng=rng)
    head = nn.Linear(5, 4, dtype=np.float64, rng=rng)
    kept = tg.jit(_rnn_step(rnn, head, returns_output=False))
    returned = tg.jit(_rnn_step(rnn, head, returns_output=True))
    xs, ys = Tensor(rng.standard_normal((6, 2, 3))), rng.integers(0, 4, (6, 2))
    for f in (kept, returned):
        f(xs, ys)
        f(xs, ys)
    assert len(_reused_buffers(_program(returned))) < len(_reused_buffers(_program(kept)))
    first = returned(xs, ys)[1].data.copy()
    out = returned(xs, ys)[1]
    returned(Tensor(rng.standard_normal((6, 2, 3))), ys)  # another call must not touch it
    np.testing.assert_array_equal(out.data, first)


def test_a_replay_that_starts_while_another_runs_gets_fresh_buffers() -> None:
    """Two threads replaying one program at once: the second must not write into the
    first one's buffers (seen as a replay that runs while the count says one is running)."""
    rng = np.random.default_rng(2)
    rnn = nn.RNN(3, 5, dtype=np.float64, rng=rng)
    head = nn.Linear(5, 4, dtype=np.float64, rng=rng)
    step = _rnn_step(rnn, head, returns_output=False)
    jitted = tg.jit(step)
    xs, ys = Tensor(rng.standard_normal((6, 2, 3))), rng.integers(0, 4, (6, 2))
    jitted(xs, ys)
    jitted(xs, ys)
    prog = _program(jitted)
    before = [r.array.copy() for r in _reused_buffers(prog)]
    other = Tensor(rng.standard_normal((6, 2, 3)))
    params = [*rnn.parameters(), *head.parameters()]
    prog.replays_running += 1  # as if another thread were in the middle of a replay
    try:
        _replay_equals_eager(step, jitted, params, other, ys)
    finally:
        prog.replays_running -= 1
    for r, b in zip(_reused_buffers(prog), before):
        np.testing.assert_array_equal(r.array, b)


def test_reused_buffers_hold_nothing_a_replay_reads_before_writing() -> None:
    """Poison every kept buffer between replays: a replay must write (or zero) each element
    before reading it. ``z``'s gradient buffer is written with ``out=`` in two column ranges
    and not in the column between them, which must stay zero."""
    rng = np.random.default_rng(3)
    w = Tensor(rng.standard_normal((4, 6)), requires_grad=True)

    def step(x: Any) -> Any:
        z = x @ w  # an intermediate: its gradient buffer is the program's own
        loss = (z[:, 0:2].tanh() * 2.0).sum() + (z[:, 3:6].tanh() * 3.0).sum()
        loss.backward()
        return loss

    jitted = tg.jit(step)
    calls = [Tensor(rng.standard_normal((5, 4))) for _ in range(4)]
    jitted(calls[0])
    jitted(calls[0])
    reused = _reused_buffers(_program(jitted))
    assert reused
    for x in calls:
        for r in reused:
            r.array.fill(np.nan)
        w.grad = None
        want_loss = step(x).item()
        want = w.grad.data.copy()
        w.grad = None
        assert jitted(x).item() == pytest.approx(want_loss, rel=1e-12)
        np.testing.assert_allclose(w.grad.data, want, rtol=1e-12, atol=1e-12)


def test_ops_of_constants_are_folded_and_unread_ops_dropped() -> None:
    """The backward of ``loss.sum()`` (broadcasting the constant 1) is computed once, at
    planning, and a layer's final state that the step never reads is not computed; the
    results stay eager's."""
    rng = np.random.default_rng(4)
    rnn = nn.RNN(3, 5, dtype=np.float64, rng=rng)
    head = nn.Linear(5, 4, dtype=np.float64, rng=rng)
    step = _rnn_step(rnn, head, returns_output=False)
    calls = [(Tensor(rng.standard_normal((6, 2, 3))), rng.integers(0, 4, (6, 2))) for _ in range(3)]
    assert _compare(step, [*rnn.parameters(), *head.parameters()], calls) == 1
    jitted = tg.jit(step)
    jitted(*calls[0])
    jitted(*calls[0])
    prog = _program(jitted)
    names = [getattr(m[0], "name", m[0]) for m in prog.meta.values()]
    assert "broadcast_to" not in names  # folded into a constant
    # The final state h_n = stack([h_T]) is never read: only the stack of all h_t is run.
    assert names.count("stack") <= 1


def test_an_lstm_steps_kept_buffers_may_hold_garbage_between_replays() -> None:
    """The buffers an LSTM step keeps across replays (the stack of h, the cross-entropy's
    gradient buffer; the gate-gradient buffer, which holds views, keeps fresh zeros) are
    written or zeroed before they are read: poisoning them between replays changes
    nothing."""
    rng = np.random.default_rng(5)
    lstm = nn.LSTM(3, 4, dtype=np.float64, rng=rng)
    head = nn.Linear(4, 5, dtype=np.float64, rng=rng)
    params = [*lstm.parameters(), *head.parameters()]

    def step(xs: Any, ys: Any) -> Any:
        out, _ = lstm(xs)
        loss = F.cross_entropy(head(out), ys, reduction="sum")
        loss.backward()
        return loss

    jitted = tg.jit(step)
    calls = [(Tensor(rng.standard_normal((6, 3, 3))), rng.integers(0, 5, (6, 3))) for _ in range(4)]
    jitted(*calls[0])
    jitted(*calls[0])
    reused = _reused_buffers(_program(jitted))
    assert len(reused) >= 2
    for xs, ys in calls:
        for r in reused:
            r.array.fill(np.nan)
        _replay_equals_eager(step, jitted, params, xs, ys)


def _count(prog: Any, fn: Any) -> int:
    return sum(1 for f, _, _ in prog.instrs if f is fn)


def test_a_tanhs_derivative_is_computed_for_all_steps_at_once() -> None:
    """The backward's ``(1 - h_t)(1 + h_t)`` of a small RNN is one call over the stack of
    all ``h_t`` (the jit batches an op on the rows of a complete stack), not one per step;
    the results stay eager's."""
    rng = np.random.default_rng(6)
    rnn = nn.RNN(3, 5, dtype=np.float64, rng=rng)
    head = nn.Linear(5, 4, dtype=np.float64, rng=rng)
    step = _rnn_step(rnn, head, returns_output=False)
    T = 6
    calls = [(Tensor(rng.standard_normal((T, 2, 3))), rng.integers(0, 4, (T, 2))) for _ in range(3)]
    assert _compare(step, [*rnn.parameters(), *head.parameters()], calls) == 1
    jitted = tg.jit(step)
    jitted(*calls[0])
    jitted(*calls[0])
    prog = _program(jitted)
    assert _count(prog, np.subtract) == 1  # 1 - h, for all T steps (T of them without)


@st.composite
def _stacked_cells(draw: Any) -> dict[str, Any]:
    return {
        "T": draw(st.integers(1, 7)),
        "B": draw(st.integers(1, 3)),
        "H": draw(st.integers(1, 4)),
        "recurrent": draw(st.booleans()),  # independent steps: only some rows get gradient
        "lo": draw(st.integers(0, 3)),
        "gate": draw(st.sampled_from(["sigmoid", "tanh"])),
        "scale": draw(st.sampled_from([1.0, 30.0])),  # saturated activations too
    }


@settings(max_examples=30, deadline=None)
@given(cfg=_stacked_cells(), seed=st.integers(0, 2**16))
def test_ops_batched_over_a_stack_equal_eager(cfg: dict[str, Any], seed: int) -> None:
    """A user's cell whose states are stacked: the ops of the backward that the jit batches
    over the rows of the stack (all of them, or the rows that get a gradient) give eager's
    values and gradients."""
    rng = np.random.default_rng(seed)
    T, B, H = cfg["T"], cfg["B"], cfg["H"]
    w = Tensor(rng.standard_normal((H, H)) * 0.5, requires_grad=True)
    u = Tensor(rng.standard_normal((H, H)) * 0.5, requires_grad=True)

    def gate(a: Tensor) -> Tensor:
        return a.sigmoid() if cfg["gate"] == "sigmoid" else a.tanh()

    def step(xs: Tensor) -> Tensor:
        h = xs[0] * 0.0
        hs = []
        for t in range(T):
            z = xs[t] * cfg["scale"] + (h @ w if cfg["recurrent"] else xs[t] @ w)
            h = gate(z @ u)  # the stacked rows are an activation's outputs
            hs.append(h)
        out = tg.stack(hs)
        loss = (out[cfg["lo"] :] * out[cfg["lo"] :]).sum()
        loss.backward()
        return loss

    calls = [(Tensor(rng.standard_normal((T, B, H))),) for _ in range(3)]
    assert _compare(step, [w, u], calls) == 1


def test_a_batched_op_reads_only_the_rows_that_need_it() -> None:
    """Rows of a stack that need no gradient (the first two steps do not depend on the
    parameter) are left out of the batched call: it reads the other rows only."""
    rng = np.random.default_rng(7)
    w = Tensor(rng.standard_normal((3, 3)), requires_grad=True)

    def step(xs: Tensor) -> Tensor:
        out = tg.stack([(xs[t] @ w if t >= 2 else xs[t]).tanh() for t in range(6)])
        loss = (out * 2.0).sum()
        loss.backward()
        return loss

    calls = [(Tensor(rng.standard_normal((6, 2, 3))),) for _ in range(3)]
    assert _compare(step, [w], calls) == 1
    jitted = tg.jit(step)
    jitted(*calls[0])
    jitted(*calls[0])
    prog = _program(jitted)
    assert _count(prog, np.subtract) == 1
    (operands,) = [ins for f, ins, _ in prog.instrs if f is np.subtract]
    cuts = [f.args[0] for f, _, out in prog.instrs if out in operands and hasattr(f, "args")]
    assert cuts == [slice(2, 6)]  # rows 2..5 of the stack


def test_gradients_handed_over_without_a_copy_are_the_leaves_own() -> None:
    """A replay gives a leaf a gradient it made for that leaf alone without copying it
    (the weight products); a gradient two leaves share (an RNN's two biases) is copied.
    A gradient kept from one call is not changed by the next, and no two leaves share
    memory."""
    rng = np.random.default_rng(8)
    rnn = nn.RNN(3, 5, dtype=np.float64, rng=rng)
    head = nn.Linear(5, 4, dtype=np.float64, rng=rng)
    params = [*rnn.parameters(), *head.parameters()]
    step = _rnn_step(rnn, head, returns_output=False)
    calls = [(Tensor(rng.standard_normal((6, 2, 3))), rng.integers(0, 4, (6, 2))) for _ in range(3)]
    jitted = tg.jit(step)
    jitted(*calls[0])
    for p in params:
        p.grad = None
    jitted(*calls[0])
    assert _program(jitted).owned_grads  # planned: some go without a copy
    held = [p.grad for p in params]
    values = [g.data.copy() for g in held]
    for p in params:
        p.grad = None
    _replay_equals_eager(step, jitted, params, *calls[1])
    for g, v in zip(held, values):
        np.testing.assert_array_equal(g.data, v)  # the next replay wrote elsewhere
    arrays = [p.grad.data for p in params] + [g.data for g in held]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.may_share_memory(a, b)
