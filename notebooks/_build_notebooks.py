"""Build the teaching notebooks of ``notebooks/`` from the cell sources in this file.

The ``.ipynb`` files are generated, never edited by hand: change a cell here, then run::

    python notebooks/_build_notebooks.py            # rebuild and execute all five notebooks
    python notebooks/_build_notebooks.py 03         # only the notebooks whose name contains "03"
    python notebooks/_build_notebooks.py --no-execute

Executing stores the outputs (printed numbers, tables, PNG plots, SVG graph pictures) in the
committed files. Every random number comes from a seeded ``np.random.default_rng``, and the
kernel runs with one BLAS thread (summation order fixed), so a rebuild reproduces the same
outputs on the same machine. ``tests/test_notebooks.py`` checks that the committed notebooks
hold exactly the sources below and that each one runs top to bottom without an error.

Needs ``nbformat``, ``nbclient`` and ``ipykernel`` (the ``dev`` extra), and Graphviz's ``dot``
for the graph pictures.

Ruff lints and format-checks the ``.ipynb`` files too (``ruff check .``, ``ruff format --check
.``), so write each code cell exactly as ``ruff format`` would, with lines of at most 92
characters (the cells sit 8 spaces deep here, and this file's lines must stay within 100).
Markdown cells may use LaTeX (``$...$``); code cells use comments rather than docstrings.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CELL_TIMEOUT = 120  # seconds per cell, as in tests/test_notebooks.py
KERNEL = "python3"
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")  # the memory address in a default object repr

Cells = list[nbformat.NotebookNode]


def md(text: str) -> nbformat.NotebookNode:
    """A markdown cell (the text is dedented and stripped)."""
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str) -> nbformat.NotebookNode:
    """A code cell (the text is dedented and stripped)."""
    return new_code_cell(textwrap.dedent(text).strip())


def kernel_env() -> dict[str, str]:
    """The environment the notebooks run in: this checkout importable, one BLAS thread.

    ``PYTHONPATH`` keeps whatever it already holds first and adds the repository root, so the
    notebooks import this checkout's ``tinygrad_rnn`` even when it is not installed. One BLAS
    thread makes the small matrix products faster (no thread start-up per product) and fixes
    the order of floating-point sums, so the outputs are the same on every run.
    """
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return env


# ============================================================================================
# 01 — autograd basics
# ============================================================================================


def nb01_autograd_basics() -> Cells:
    return [
        md(r"""
        # 1. Autograd basics: tensors, backward, gradcheck, higher order, the graph

        This is the first of five notebooks about **backpropagation through time** (BPTT) with
        `tinygrad_rnn`, a reverse-mode automatic-differentiation engine written from scratch
        on numpy. Notebooks 2 and 3 prove that its gradients of a vanilla RNN and of an LSTM
        equal the closed-form BPTT formulas of the source documents; notebook 4 looks at
        vanishing and exploding gradients; notebook 5 trains networks. This one introduces
        the engine itself.

        **Reverse mode in one paragraph.** Every operation on a tensor that requires a
        gradient records a *node*: which primitive ran, on which inputs. `loss.backward()`
        then visits the recorded graph from the loss back to the leaves, in reverse
        topological order, and applies the chain rule at each node. For a node
        $y = f(x_1, \dots, x_n)$ that has received $\bar y = \partial L / \partial y$, the
        rule of input $k$ adds a **vector–Jacobian product** to that input's gradient:

        $$\bar x_k \mathrel{+}= \Big(\frac{\partial y}{\partial x_k}\Big)^{\!\top} \bar y .$$

        The Jacobian is never formed: each primitive's rule computes the product directly
        (for `tanh`, $\bar x = \bar y \odot (1 - y^2)$). How the engine does this is
        described in `docs/design.md`.
        """),
        code(r"""
        import numpy as np

        import tinygrad_rnn as tg
        from tinygrad_rnn import viz
        from tinygrad_rnn.autograd import Primitive

        np.set_printoptions(precision=4, suppress=True)
        rng = np.random.default_rng(0)
        print("tinygrad_rnn", tg.__version__, "| numpy", np.__version__)
        """),
        md(r"""
        ## Tensors and ops

        `tg.Tensor(data, requires_grad=True)` copies `data` into a numpy array (`.data`;
        Python floats become float64). Every op on it returns a new tensor that remembers the
        op that made it (`op=...` in its repr). Tensors that no op made are **leaves**: that
        is where `backward` stores gradients, in `.grad`.
        """),
        code(r"""
        x = tg.Tensor([1.0, -2.0, 3.0], requires_grad=True, name="x")
        y = (x * x).sum()
        print(x)
        print(y)
        print("y.op =", y.op, "| x.is_leaf =", x.is_leaf, "| y.is_leaf =", y.is_leaf)
        """),
        md(r"""
        $y = \sum_i x_i^2$, so $\partial y / \partial x_i = 2 x_i$. `backward()` starts from
        $\bar y = 1$ (a one-element output needs no upstream gradient) and fills `x.grad`:
        """),
        code(r"""
        y.backward()
        print("x.grad =", x.grad)
        print("equals 2x:", np.array_equal(x.grad.data, 2 * x.data))
        """),
        md(r"""
        ## A layer, by hand and by autograd

        Take one layer $H = \tanh(XW + b)$ on a batch $X$ (4 rows, 3 features, 5 units) and
        the loss $L = \sum_{ij} H_{ij}^2$. The chain rule, written backwards from $L$:

        $$\bar H = 2H, \qquad \bar A = \bar H \odot (1 - H^2) \quad (A = XW + b),$$
        $$\bar W = X^\top \bar A, \qquad \bar b = \textstyle\sum_{\text{rows}} \bar A,
        \qquad \bar X = \bar A\, W^\top .$$

        Autograd must give exactly these arrays (up to rounding, ~1e-16).
        """),
        code(r"""
        X = tg.Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="X")
        W = tg.Tensor(rng.standard_normal((3, 5)), requires_grad=True, name="W")
        b = tg.Tensor(rng.standard_normal(5), requires_grad=True, name="b")

        A = X @ W + b
        H = A.tanh()
        L = (H**2).sum()
        L.backward()

        # The same gradients, by hand, with numpy only.
        H_ = H.data
        A_bar = 2 * H_ * (1 - H_**2)
        by_hand = {"W": X.data.T @ A_bar, "b": A_bar.sum(axis=0), "X": A_bar @ W.data.T}
        for name, tensor in {"W": W, "b": b, "X": X}.items():
            diff = np.max(np.abs(tensor.grad.data - by_hand[name]))
            print(f"dL/d{name}: shape {tensor.grad.shape}, max |autograd - by hand| = {diff:.1e}")
        """),
        md(r"""
        ## Gradients accumulate, graphs are freed

        Two things behave as in PyTorch:

        * `backward` **adds** into `.grad`, so the gradients of two losses sum up. Clear
          them with `zero_grad()` (optimizers do this for every parameter).
        * After `backward` the graph's saved arrays are **freed**, to release memory as early
          as possible. A second `backward` through the same graph is an error, unless the
          first one was called with `retain_graph=True`.
        """),
        code(r"""
        w = tg.Tensor([2.0], requires_grad=True)
        (3 * w).sum().backward()
        (5 * w).sum().backward()
        print("after two backward passes: w.grad =", w.grad, "(3 + 5)")
        w.zero_grad()
        print("after zero_grad:          w.grad =", w.grad)

        z = (w * w).sum()
        z.backward()
        try:
            z.backward()
        except RuntimeError as err:
            print("second backward -> RuntimeError:", err)
        """),
        md(r"""
        ## `tg.grad`: gradients of any tensor, returned instead of accumulated

        `tg.grad(outputs, inputs)` walks the same graph but *returns* the gradients of
        `inputs`, which may be intermediate tensors (leaves' `.grad` is left alone). This is
        how the next notebooks read $\partial L / \partial s_t$ and
        $\delta_t = \partial L / \partial a_t$ at every time step. Here: $\bar A$ from above.
        """),
        code(r"""
        A = X @ W + b
        L = (A.tanh() ** 2).sum()
        (A_bar_autograd,) = tg.grad(L, [A])
        diff = np.max(np.abs(A_bar_autograd.data - A_bar))
        print(f"max |dL/dA (tg.grad) - dL/dA (by hand)| = {diff:.1e}")
        """),
        md(r"""
        ## `gradcheck`: autograd against finite differences

        The central difference
        $\frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon}$ approximates
        $\partial f / \partial x_i$ with an error of order $\epsilon^2$, independently of any
        derivative rule. `tg.gradcheck(fn, inputs)` reduces the outputs of `fn` to one number
        with fixed random weights $v$ (so one backward pass tests the whole vector–Jacobian
        product $J^\top v$), perturbs every input entry in turn (float64 is required), and
        returns `True` or raises `GradcheckError` naming the worst entry.
        """),
        code(r"""
        def layer(X, W, b):
            return (X @ W + b).tanh()


        print("gradcheck(layer):", tg.gradcheck(layer, [X, W, b]))
        """),
        md(r"""
        A new primitive is declared with its numpy forward and one derivative rule per input,
        `rule(g, ans, x)`: `g` is the upstream gradient, `ans` the forward's output. Below,
        `my_tanh` has the right rule $g\,(1 - y)(1 + y)$, and `bad_tanh` the classic slip
        $g\,(1 - y)$ (forgot the square). `gradcheck` passes the first and catches the second:
        """),
        code(r"""
        my_tanh = Primitive("my_tanh", np.tanh, lambda g, ans, x: g * (1 - ans) * (1 + ans))
        bad_tanh = Primitive("bad_tanh", np.tanh, lambda g, ans, x: g * (1 - ans))

        print("my_tanh :", tg.gradcheck(lambda X: my_tanh(X), [X]))
        try:
            tg.gradcheck(lambda X: bad_tanh(X), [X])
        except tg.GradcheckError as err:
            print("bad_tanh: GradcheckError:", err)
        """),
        md(r"""
        ## Higher-order derivatives: `create_graph=True`

        A derivative rule is written with the engine's own ops, so when the backward pass
        runs with `create_graph=True` the rule's computations are *recorded* like any
        other, and the gradient it returns can be differentiated again. For $f(x) = x^3$:
        $f'(x) = 3x^2$ and $f''(x) = 6x$.
        """),
        code(r"""
        x = tg.Tensor([0.5, -1.0, 2.0], requires_grad=True)
        (d1,) = tg.grad((x**3).sum(), [x], create_graph=True)
        (d2,) = tg.grad(d1.sum(), [x])
        print("f'(x)  =", d1.data, " 3x^2 =", 3 * x.data**2)
        print("f''(x) =", d2.data, " 6x   =", 6 * x.data)
        """),
        md(r"""
        ### A Hessian–vector product

        For a scalar $f(x)$ the Hessian–vector product $Hv$ is the gradient of
        $\nabla f(x) \cdot v$: two backward passes, and the $n \times n$ Hessian is never
        formed. Take $f(x) = \sum_i \tanh(Ax)_i$ with $A$ of size $4 \times 3$ and
        $t = \tanh(Ax)$. Then

        $$\nabla f = A^\top (1 - t^2), \qquad
        H = A^\top \operatorname{diag}\!\big(-2t \odot (1 - t^2)\big) A .$$

        We compare autograd's $Hv$ with this closed form and with a finite difference of
        gradients, $\big(\nabla f(x + \epsilon v) - \nabla f(x - \epsilon v)\big) / 2\epsilon$.
        """),
        code(r"""
        A = rng.standard_normal((4, 3))
        v = rng.standard_normal(3)
        x = tg.Tensor(rng.standard_normal(3), requires_grad=True)


        def f(x):
            return (tg.Tensor(A) @ x).tanh().sum()


        (g,) = tg.grad(f(x), [x], create_graph=True)  # g = ∇f(x), itself a recorded graph
        (hv,) = tg.grad((g * v).sum(), [x])  # ∇(∇f · v) = H v

        t = np.tanh(A @ x.data)
        H_closed = A.T @ np.diag(-2 * t * (1 - t**2)) @ A


        def grad_f(x0):
            x0 = tg.Tensor(x0, requires_grad=True)
            return tg.grad(f(x0), [x0])[0].data


        eps = 1e-6
        hv_fd = (grad_f(x.data + eps * v) - grad_f(x.data - eps * v)) / (2 * eps)

        print("H v, autograd         :", hv.data)
        print("H v, closed form      :", H_closed @ v)
        print("H v, finite difference:", hv_fd)
        print(f"max |autograd - closed form|       = {np.max(np.abs(hv.data - H_closed @ v)):.1e}")
        print(f"max |autograd - finite difference| = {np.max(np.abs(hv.data - hv_fd)):.1e}")
        """),
        code(r"""
        print("gradgradcheck(layer):", tg.gradgradcheck(layer, [X, W, b]))
        """),
        md(r"""
        ## The graph picture

        `viz.draw_graph(t)` draws the graph behind a tensor: yellow ellipses are ops, white
        rounded boxes intermediate tensors (shape, dtype), blue boxes leaves that require a
        gradient, the orange box the output. The result is a `graphviz.Digraph`, which
        Jupyter draws inline (rendering needs Graphviz's `dot` program). Here is
        $\tanh(XW + b)$:
        """),
        code(r"""
        graph = viz.draw_graph((X @ W + b).tanh(), title="tanh(X @ W + b)")
        graph
        """),
        md(r"""
        The DOT text behind the picture needs nothing installed: `graph.source`. The drawing
        is also available as Python objects in `graph.model` (nodes, edges, boxes), which is
        handy in tests:
        """),
        code(r"""
        print(graph.source)
        m = graph.model
        print(f"{len(m.of_kind('op'))} ops, {len(m.nodes)} nodes, {len(m.edges)} edges")
        """),
        md(r"""
        With `show_values=True, show_grads=True` each tensor also shows
        `min / mean / max` of its values and the norm of its gradient, after a
        `backward(retain_graph=True)` (the graph must still be in memory to be drawn). The
        chain rule can be followed by eye: the gradient reaching the `tanh` output is
        $2H$, the one leaving it $2H \odot (1 - H^2)$.
        """),
        code(r"""
        for leaf in (X, W, b):
            leaf.zero_grad()  # .grad still holds the first backward's result: start afresh
        L = ((X @ W + b).tanh() ** 2).sum()
        L.backward(retain_graph=True)
        viz.draw_graph(L, show_values=True, show_grads=True)
        """),
        md(r"""
        ## What next

        That is the whole engine: tensors that record, rules that compute vector–Jacobian
        products, a backward walk that sums them, and the same rules reused for higher
        orders. Notebook 2 applies it to a recurrent network unrolled over time and compares
        every intermediate gradient with the documents' closed-form BPTT.
        """),
    ]


# ============================================================================================
# 02 — the vanilla RNN's BPTT by hand
# ============================================================================================


def nb02_rnn_bptt_by_hand() -> Cells:
    return [
        md(r"""
        # 2. The vanilla RNN: BPTT by hand, next to autograd

        Seeds 000, 002 and 003 (Chinese blog posts on RNN backpropagation) derive the
        gradients of a vanilla RNN in closed form. This notebook runs their formulas step
        by step in plain numpy, right next to the autograd engine, and shows that every
        intermediate quantity agrees to rounding error; then it demonstrates, with numbers,
        each erratum the formulas contain as printed (spec §1).

        ## The model, in the documents' notation

        Column vectors, as in the documents. At step $t$ the input is $x_t \in \mathbb{R}^D$,
        the hidden state $s_t \in \mathbb{R}^H$, the output $o_t \in \mathbb{R}^K$, and the
        class $y_t \in \{0, \dots, K-1\}$:

        $$a_t = b + W s_{t-1} + U x_t, \qquad s_t = \tanh(a_t), \qquad
        o_t = c + V s_t, \qquad \hat y_t = \operatorname{softmax}(o_t),$$
        $$L = \sum_t L_t, \qquad L_t = -\log \hat y_t[y_t], \qquad s_{-1} = s_0 = 0 .$$

        | symbol | shape | role |
        | --- | --- | --- |
        | $U$ | $H \times D$ | input → hidden |
        | $W$ | $H \times H$ | hidden → hidden (the recurrence) |
        | $V$ | $K \times H$ | hidden → output |
        | $b$, $c$ | $H$, $K$ | biases |

        The weights are shared by all steps, so each gradient is a **sum over time** of
        per-step contributions.
        """),
        code(r"""
        import numpy as np
        from IPython.display import Markdown, display

        import tinygrad_rnn as tg
        from tinygrad_rnn import functional as F
        from tinygrad_rnn import nn, reference
        from tinygrad_rnn.reference import errata

        np.set_printoptions(precision=4, suppress=True)


        def rel_err(actual, expected):
            # max |actual - expected| / max |expected|; about 1e-16 means equal up to rounding.
            actual, expected = np.asarray(actual), np.asarray(expected)
            return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


        def table(header, rows):
            # Display rows as a Markdown table.
            lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
            display(Markdown("\n".join(lines)))
        """),
        md(r"""
        A small problem: $D = 3$ inputs, $H = 4$ hidden units, $K = 5$ classes, $T = 6$
        steps, one sequence. `reference.init_rnn_params` draws the weights as min-char-rnn
        does, $\mathcal N(0, 1) \cdot \text{scale}$; we take scale 0.5 rather than
        min-char-rnn's 0.01 so that the states use the non-linear part of $\tanh$ and every
        number below is of a readable size, and random biases so the bias paths are tested.
        """),
        code(r"""
        D, H, K, T = 3, 4, 5, 6
        rng = np.random.default_rng(2)
        params = reference.init_rnn_params(D, H, K, rng, scale=0.5, random_biases=True)
        U, W, V, b, c = (params[k] for k in ("U", "W", "V", "b", "c"))
        x = rng.standard_normal((T, D))  # x[t] is the column vector x_t
        y = rng.integers(0, K, T)  # the class y_t of each step
        s0 = np.zeros(H)  # s_{-1}

        for name, value in params.items():
            print(f"{name}: shape {value.shape}")
        print("targets y_t:", y)
        print(f"spectral radius of W: {np.max(np.abs(np.linalg.eigvals(W))):.3f}")
        """),
        md(r"""
        ## Forward pass by hand

        The equations above, one line each, in numpy:
        """),
        code(r"""
        a, s = np.zeros((T, H)), np.zeros((T, H))
        o, y_hat, L_t = np.zeros((T, K)), np.zeros((T, K)), np.zeros(T)
        s_prev = s0
        for t in range(T):
            a[t] = b + W @ s_prev + U @ x[t]  # a_t = b + W s_{t-1} + U x_t
            s[t] = np.tanh(a[t])  # s_t = tanh(a_t)
            o[t] = c + V @ s[t]  # o_t = c + V s_t
            e = np.exp(o[t] - o[t].max())
            y_hat[t] = e / e.sum()  # ŷ_t = softmax(o_t)
            L_t[t] = -np.log(y_hat[t, y[t]])  # L_t = -log ŷ_t[y_t]
            s_prev = s[t]
        L = L_t.sum()

        table(
            ["t", "y_t", "ŷ_t[y_t]", "L_t", "s_t"],
            [(t, y[t], f"{y_hat[t, y[t]]:.4f}", f"{L_t[t]:.4f}", s[t]) for t in range(T)],
        )
        print(f"L = {L:.12f}")
        """),
        md(r"""
        ## The same network, with autograd — two ways

        **(a) The equations themselves, written with Tensors.** This keeps a handle on every
        $a_t$, $s_t$ and $o_t$, so `tg.grad` can return $\partial L / \partial a_t$ (which
        is $\delta_t$), $\partial L / \partial s_t$ and $\partial L / \partial o_t$ at every
        step. `tg.grad` gives the **total** derivative: for $s_t$ it sums the path through
        $o_t$ and the path through $a_{t+1}$ and everything after it.
        """),
        code(r"""
        def forward(U, W, V, b, c, s0):
            # L and the per-step Tensors a_t, s_t, o_t of the documents' forward pass.
            loss, a_list, s_list, o_list = 0.0, [], [], []
            s_prev = s0
            for t in range(T):
                a_list.append(b + W @ s_prev + U @ x[t])
                s_list.append(a_list[t].tanh())
                o_list.append(c + V @ s_list[t])
                loss = loss - F.log_softmax(o_list[t])[int(y[t])]
                s_prev = s_list[t]
            return loss, a_list, s_list, o_list


        leaves = {k: tg.Tensor(v, requires_grad=True) for k, v in params.items()}
        leaves["s0"] = tg.Tensor(s0, requires_grad=True)
        loss_a, a_list, s_list, o_list = forward(**leaves)

        per_step = tg.grad(loss_a, [*o_list, *s_list, *a_list], retain_graph=True)
        do_ag = np.stack([g.data for g in per_step[:T]])  # ∂L/∂o_t
        ds_ag = np.stack([g.data for g in per_step[T : 2 * T]])  # ∂L/∂s_t
        delta_ag = np.stack([g.data for g in per_step[2 * T :]])  # ∂L/∂a_t = δ_t
        loss_a.backward()  # fills leaves[...].grad
        grads_a = {k: v.grad.data for k, v in leaves.items()}
        print(f"L (Tensors) = {loss_a.item():.12f}, |L - L by hand| = {abs(loss_a.item() - L):.0e}")
        """),
        md(r"""
        **(b) The library's modules.** `nn.rnn_from_document` builds an `nn.RNNCell` and an
        `nn.Linear` head holding exactly $U, W, b$ and $V, c$ (PyTorch's layout:
        `weight_ih` $= U$, `weight_hh` $= W$, `bias_ih` $= b$, `bias_hh` $= 0$).
        `nn.unroll` runs the cell over the sequence and returns the graph's own state tensors
        $s_0, \dots, s_{T-1}$ (each of shape `(batch, H)`; here the batch is one sequence).
        After `backward`, `nn.rnn_grads_to_document` reads the module gradients back in the
        documents' layout.
        """),
        code(r"""
        cell, head = nn.rnn_from_document(params, dtype=np.float64)
        print(cell, head, sep="\n")

        s0_nn = tg.Tensor(s0[None, :], requires_grad=True)  # (batch=1, H)
        states = nn.unroll(cell, tg.Tensor(x[:, None, :]), s0_nn)  # T tensors of shape (1, H)
        logits = head(tg.stack(states))  # (T, 1, K): o_t for every step
        loss_nn = F.cross_entropy(logits, y[:, None], reduction="sum")

        ds_nn = np.stack([g.data[0] for g in tg.grad(loss_nn, states, retain_graph=True)])
        loss_nn.backward()
        grads_nn = nn.rnn_grads_to_document(cell, head) | {"s0": s0_nn.grad.data[0]}
        print(f"L (nn) = {loss_nn.item():.12f}, |L - L by hand| = {abs(loss_nn.item() - L):.0e}")
        """),
        md(r"""
        ## Backward pass by hand: the closed-form BPTT

        With the error term $\delta_t = \partial L / \partial a_t$ (seed 002), going from the
        last step $t = T-1$ down to $0$:

        $$\frac{\partial L}{\partial o_t} = \hat y_t - \operatorname{onehot}(y_t), \qquad
        \frac{\partial L}{\partial s_t} = V^\top \frac{\partial L}{\partial o_t}
        + W^\top \delta_{t+1}, \qquad
        \delta_t = (1 - s_t^2) \odot \frac{\partial L}{\partial s_t},$$

        with $W^\top \delta_{T} = 0$ after the last step (seed 003 calls this vector
        `dhnext`). The parameter gradients sum the per-step terms:

        $$\frac{\partial L}{\partial c} = \sum_t \frac{\partial L}{\partial o_t}, \quad
        \frac{\partial L}{\partial V} = \sum_t \frac{\partial L}{\partial o_t} s_t^\top, \quad
        \frac{\partial L}{\partial b} = \sum_t \delta_t, \quad
        \frac{\partial L}{\partial W} = \sum_t \delta_t s_{t-1}^\top, \quad
        \frac{\partial L}{\partial U} = \sum_t \delta_t x_t^\top, \quad
        \frac{\partial L}{\partial s_0} = W^\top \delta_0 .$$
        """),
        code(r"""
        do, ds, delta = np.zeros((T, K)), np.zeros((T, H)), np.zeros((T, H))
        hand = {k: np.zeros_like(v) for k, v in params.items()}
        dhnext = np.zeros(H)  # W^T δ_{t+1}: nothing comes back from after the last step
        for t in reversed(range(T)):
            do[t] = y_hat[t] - np.eye(K)[y[t]]  # ∂L/∂o_t = ŷ_t - onehot(y_t)
            ds[t] = V.T @ do[t] + dhnext  # ∂L/∂s_t = V^T ∂L/∂o_t + W^T δ_{t+1}
            delta[t] = (1 - s[t] ** 2) * ds[t]  # δ_t = (1 - s_t²) ⊙ ∂L/∂s_t
            s_prev = s[t - 1] if t > 0 else s0
            hand["c"] += do[t]
            hand["V"] += np.outer(do[t], s[t])
            hand["b"] += delta[t]
            hand["W"] += np.outer(delta[t], s_prev)
            hand["U"] += np.outer(delta[t], x[t])
            dhnext = W.T @ delta[t]
        hand["s0"] = dhnext  # W^T δ_0
        """),
        md(r"""
        ## Step by step: the closed form against autograd

        For every step, the norm of each hand-computed vector and its relative error
        $\max|\text{hand} - \text{autograd}| / \max|\text{autograd}|$ against autograd
        (a); the last column compares $\partial L / \partial s_t$ with the library's
        `RNNCell` (b). An error around $10^{-16}$ is float64 rounding: the two compute the
        same numbers in a different order.
        """),
        code(r"""
        table(
            ["t", "‖∂L/∂o_t‖", "err", "‖∂L/∂s_t‖", "err (a)", "err (b, nn)", "‖δ_t‖", "err"],
            [
                (
                    t,
                    f"{np.linalg.norm(do[t]):.4f}",
                    f"{rel_err(do[t], do_ag[t]):.1e}",
                    f"{np.linalg.norm(ds[t]):.4f}",
                    f"{rel_err(ds[t], ds_ag[t]):.1e}",
                    f"{rel_err(ds[t], ds_nn[t]):.1e}",
                    f"{np.linalg.norm(delta[t]):.4f}",
                    f"{rel_err(delta[t], delta_ag[t]):.1e}",
                )
                for t in range(T)
            ],
        )
        """),
        md(r"""
        ## The parameter gradients: by hand, `reference.rnn_bptt`, autograd

        `tinygrad_rnn.reference.rnn_bptt` is the package's own hand-written closed form (the
        oracle of its test suite; batched, so `x` becomes `(T, 1, D)`). All three agree, and
        a finite-difference `gradcheck` of the Tensor forward confirms autograd
        independently of any derivative rule.
        """),
        code(r"""
        ref = reference.rnn_bptt(x[:, None, :], y[:, None], s0[None, :], **params)
        ref_grads = {k: v[0] if k == "s0" else v for k, v in ref.grads.items()}
        table(
            ["θ", "shape", "‖∂L/∂θ‖", "hand vs (a)", "hand vs (b, nn)", "reference vs (b, nn)"],
            [
                (
                    k,
                    hand[k].shape,
                    f"{np.linalg.norm(hand[k]):.4f}",
                    f"{rel_err(hand[k], grads_a[k]):.1e}",
                    f"{rel_err(hand[k], grads_nn[k]):.1e}",
                    f"{rel_err(ref_grads[k], grads_nn[k]):.1e}",
                )
                for k in ("U", "W", "V", "b", "c", "s0")
            ],
        )
        print(f"reference loss {ref.loss:.12f}, |ref - hand| = {abs(ref.loss - L):.1e}")
        print(f"reference ∂L/∂s_t vs hand: {rel_err(ref.dhidden[:, 0], ds):.1e}")
        fresh = [tg.Tensor(v, requires_grad=True) for v in leaves.values()]
        print("gradcheck of L(U, W, V, b, c, s0):", tg.gradcheck(lambda *p: forward(*p)[0], fresh))
        """),
        md(r"""
        # The documents' errata (spec §1)

        The formulas above are the *corrected* ones. As printed, the documents contain five
        mistakes. `tinygrad_rnn.reference.errata` evaluates each printed form as literally
        as its shapes allow, so we can watch it disagree with autograd (or fail to evaluate).
        For the comparisons we wrap part (b) above in a function:
        """),
        code(r"""
        def autograd_rnn(params, x, y, s0):
            # L, o_t, s_t and the document-layout gradients, from nn.RNNCell + autograd.
            cell, head = nn.rnn_from_document(params, dtype=np.float64)
            s0_t = tg.Tensor(s0[None, :], requires_grad=True)
            states = nn.unroll(cell, tg.Tensor(x[:, None, :]), s0_t)
            logits = head(tg.stack(states))
            loss = F.cross_entropy(logits, y[:, None], reduction="sum")
            loss.backward()
            grads = nn.rnn_grads_to_document(cell, head) | {"s0": s0_t.grad.data[0]}
            return loss.item(), logits.data[:, 0], tg.stack(states).data[:, 0], grads


        def problem(D, H, K, seed, T=6):
            # A random problem of the given sizes: params, x, y, s0.
            rng = np.random.default_rng(seed)
            p = reference.init_rnn_params(D, H, K, rng, scale=0.5, random_biases=True)
            return p, rng.standard_normal((T, D)), rng.integers(0, K, T), np.zeros(H)


        def batched(x, y, s0):
            # The (T, B=1, ·) layout of tinygrad_rnn.reference and errata.
            return x[:, None, :], y[:, None], s0[None, :]


        _, o_ag, s_ag, g_ag = autograd_rnn(params, x, y, s0)
        """),
        md(r"""
        ## Erratum 1 — seed 000's output layer uses $U$

        Printed: $o_t = c + U s_t$. Correct: $o_t = c + V s_t$. $U$ is the *input* weight
        ($H \times D$): $U s_t$ needs $D = H$ and adding $c$ needs $K = H$. With our sizes
        ($D=3, H=4, K=5$) the printed form cannot even be evaluated; on a square problem
        ($D = H = K = 4$) it evaluates, to the wrong numbers.
        """),
        code(r"""
        try:
            errata.seed000_output_layer(s_ag, U, c)
        except ValueError as err:
            print("D=3, H=4, K=5:  ValueError:", err)

        sq, x_sq, y_sq, s0_sq = problem(4, 4, 4, seed=3)
        _, o_sq, s_sq, _ = autograd_rnn(sq, x_sq, y_sq, s0_sq)
        printed = errata.seed000_output_layer(s_sq, sq["U"], sq["c"])
        correct = sq["c"] + s_sq @ sq["V"].T
        print(f"D=H=K=4: printed c + U s_t vs autograd: rel. error {rel_err(printed, o_sq):.2f}")
        print(f"         correct c + V s_t vs autograd: rel. error {rel_err(correct, o_sq):.1e}")
        """),
        md(r"""
        ## Erratum 2 — seed 000's $\nabla_b L$ multiplies the wrong vector

        Printed: $\nabla_b L = \sum_t \operatorname{diag}(1 - s_t^2)\, \nabla_{o_t} L$.
        Correct: $\nabla_b L = \sum_t (1 - s_t^2) \odot \nabla_{s_t} L = \sum_t \delta_t$.
        An $H \times H$ diagonal times a $K$-vector: with $K \ne H$ the shapes do not match;
        with $K = H$ it evaluates to a different vector.
        """),
        code(r"""
        try:
            errata.seed000_grad_b(*batched(x, y, s0), **params)
        except ValueError as err:
            print("K=5, H=4:  ValueError:", err)

        kh, x_kh, y_kh, s0_kh = problem(3, 4, 4, seed=4)
        _, _, _, g_kh = autograd_rnn(kh, x_kh, y_kh, s0_kh)
        printed = errata.seed000_grad_b(*batched(x_kh, y_kh, s0_kh), **kh)
        correct = reference.rnn_bptt(*batched(x_kh, y_kh, s0_kh), **kh).grads["b"]
        print("K=H=4:  printed ∇_b L:", printed)
        print("        autograd      :", g_kh["b"])
        print(f"        printed vs autograd: rel. error {rel_err(printed, g_kh['b']):.2f}")
        print(f"        correct Σ_t δ_t vs autograd: rel. error {rel_err(correct, g_kh['b']):.1e}")
        """),
        md(r"""
        ## Erratum 3 — seed 000's $\nabla_{o_t} L$ is garbled

        Printed: $\nabla_{o_t} L = y_t * \hat y_t - I_{i=j} * y_t$, which has no unambiguous
        reading (so `errata` has no function for it). For softmax with cross-entropy,
        $\partial(-\log \hat y[y]) / \partial o_j = \hat y_j - [j = y]$, i.e.
        $\hat y_t - \operatorname{onehot}(y_t)$: the first column of the step table above
        already showed it equal to autograd at every step. At $t = 0$:
        """),
        code(r"""
        print("ŷ_0            :", y_hat[0])
        print("onehot(y_0)    :", np.eye(K)[y[0]])
        print("ŷ_0 - onehot   :", y_hat[0] - np.eye(K)[y[0]])
        print("autograd ∂L/∂o_0:", do_ag[0])
        """),
        md(r"""
        ## Erratum 4 — seed 000's recursion puts the $\tanh'$ factor after $W^\top$

        Printed: $\nabla_{s_t} L = W^\top \nabla_{s_{t+1}} L\, \operatorname{diag}(1 -
        s_{t+1}^2) + V^\top \nabla_{o_t} L$, read (as its order suggests) as
        $(W^\top \nabla_{s_{t+1}} L) \odot (1 - s_{t+1}^2)$. Correct:
        $W^\top \big((1 - s_{t+1}^2) \odot \nabla_{s_{t+1}} L\big) = W^\top \delta_{t+1}$: the
        derivative of $\tanh$ at step $t+1$ must be applied *before* going back through $W$.
        The two agree only when the diagonal commutes with $W^\top$, e.g. $H = 1$.
        """),
        code(r"""
        printed = errata.seed000_recursion(*batched(x, y, s0), **params)
        printed["s0"] = printed["s0"][0]
        table(
            ["θ", "printed recursion vs autograd (H=4)"],
            [(k, f"{rel_err(printed[k], g_ag[k]):.2f}") for k in ("U", "W", "b", "s0")],
        )

        one, x1, y1, s01 = problem(3, 1, 5, seed=5)
        _, _, _, g1 = autograd_rnn(one, x1, y1, s01)
        printed1 = errata.seed000_recursion(*batched(x1, y1, s01), **one)
        errs = ", ".join(f"{k} {rel_err(printed1[k], g1[k]):.1e}" for k in ("U", "W", "b"))
        print("H = 1: printed recursion vs autograd:", errs)
        """),
        md(r"""
        ## Erratum 5 — seed 002 updates the weights inside the backward loop

        Seed 002's algorithm: forward over all steps; compute the output layer's gradients
        and **update** $V, c$; then for $t = T, \dots, 1$: compute $\delta_t$, compute the
        recurrent gradients from it, and **update** $U, W, b$ — so each later $\delta_t$ is
        computed with the already-updated $V$ and $W$. The sum of these updates is not
        $-\eta\, \partial L / \partial \theta$. The correct step computes every $\delta_t$
        with the forward pass's weights, then updates once: $\theta - \eta\,\partial L /
        \partial\theta$.

        The two differ at order $\eta^2$ (each later $\delta_t$ sees weights changed by
        $O(\eta)$, and is then multiplied by $\eta$): dividing the difference by $\eta^2$
        gives a roughly constant number. $V$ and $c$ are updated once, before the loop,
        so they agree up to rounding.
        """),
        code(r"""
        rows = []
        for lr in (1e-1, 1e-2, 1e-3):
            printed = errata.seed002_update_in_loop(*batched(x, y, s0), **params, lr=lr)
            diffs = {k: np.max(np.abs(printed[k] - (params[k] - lr * g_ag[k]))) for k in params}
            worst = max(diffs.values())
            rows.append((lr, *(f"{diffs[k]:.1e}" for k in params), f"{worst / lr**2:.3f}"))
        table(["η", *(f"max diff {k}" for k in params), "max diff / η²"], rows)
        """),
        md(r"""
        ## Summary

        * Every intermediate of the closed-form BPTT — $\partial L/\partial o_t$,
          $\partial L/\partial s_t$, $\delta_t$ — and every parameter gradient equals what the
          autograd engine computes, to about $10^{-16}$, both on the equations written with
          Tensors and on the library's `RNNCell`.
        * Of the printed formulas: seed 000's output layer and bias gradient do not even
          have matching shapes in general, its $\nabla_{o_t} L$ is garbled, its recursion
          applies $\tanh'$ at the wrong place (invisible only when $H = 1$), and seed 002's
          update-in-the-loop is not a gradient step (off by $O(\eta^2)$).

        Notebook 3 does the same for seed 004's LSTM.
        """),
    ]


# ============================================================================================
# 03 — the LSTM's BPTT by hand
# ============================================================================================


def nb03_lstm_bptt_by_hand() -> Cells:
    return [
        md(r"""
        # 3. The LSTM: BPTT by hand, next to autograd

        Seed 004 derives the backward pass of an LSTM and implements it in numpy, one step
        at a time, carrying two vectors backwards: `dh_next` and `dc_next`. This notebook
        runs that recursion next to the autograd engine and shows that $\partial L/\partial
        h_t$, $\partial L/\partial c_t$, $\partial L / \partial x_t$ and every parameter
        gradient agree to rounding error. Then section 5 of the spec: seed 001's LSTM
        trained with a squared error on the hidden state itself.

        ## The model, in seed 004's notation

        **Row vectors**, as in the document: $x_t \in \mathbb{R}^{1 \times D}$,
        $h_t, c_t \in \mathbb{R}^{1 \times H}$, and the gates read the concatenation
        $z_t = [h_{t-1}, x_t] \in \mathbb{R}^{1 \times (H + D)}$ (hidden state first):

        $$f_t = \sigma(z_t W_f + b_f), \quad i_t = \sigma(z_t W_i + b_i), \quad
        \tilde c_t = \tanh(z_t W_c + b_c), \quad o_t = \sigma(z_t W_o + b_o),$$
        $$c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t, \qquad h_t = o_t \odot \tanh(c_t),$$
        $$y_t = h_t W_y + b_y, \qquad p_t = \operatorname{softmax}(y_t), \qquad
        L = \sum_t -\log p_t[\text{target}_t] .$$

        The gate weights $W_f, W_i, W_c, W_o$ are $(H + D) \times H$, the output layer
        $W_y$ is $H \times K$. The document predicts the next symbol of a text, so the inputs
        are one-hot vectors and $K = D$.
        """),
        code(r"""
        import numpy as np
        from IPython.display import Markdown, display

        import tinygrad_rnn as tg
        from tinygrad_rnn import functional as F
        from tinygrad_rnn import nn, reference

        np.set_printoptions(precision=4, suppress=True)


        def rel_err(actual, expected):
            # max |actual - expected| / max |expected|; about 1e-16 means equal up to rounding.
            actual, expected = np.asarray(actual), np.asarray(expected)
            return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


        def table(header, rows):
            # Display rows as a Markdown table.
            lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
            display(Markdown("\n".join(lines)))


        def sigmoid(v):
            return 1 / (1 + np.exp(-v))
        """),
        md(r"""
        The data: the characters of `"hello world"`, each predicting the next one. The
        parameters are initialised as in seed 004, $W_* \sim \mathcal N(0,1)/\sqrt{Z/2}$
        with $Z = H + D$ and $W_y \sim \mathcal N(0,1)/\sqrt{D/2}$, plus random biases (the
        document's are zero) so that every bias path is tested.
        """),
        code(r"""
        text = "hello world"
        vocab = sorted(set(text))
        ids = np.array([vocab.index(ch) for ch in text])
        D = K = len(vocab)
        H = 4
        X = np.eye(D)[ids[:-1]]  # x_t: one-hot rows, (T, D)
        targets = ids[1:]  # the next character
        T = len(targets)

        params = reference.init_lstm_params(D, H, K, np.random.default_rng(4), random_biases=True)
        W_f, W_i, W_c, W_o = (params[f"W_{g}"] for g in "fico")
        b_f, b_i, b_c, b_o = (params[f"b_{g}"] for g in "fico")
        W_y, b_y = params["W_y"], params["b_y"]
        h0, c0 = np.zeros(H), np.zeros(H)

        print("vocabulary:", vocab, f"-> D = K = {D}, H = {H}, T = {T}")
        for name, value in params.items():
            print(f"{name}: shape {value.shape}")
        """),
        md(r"""
        ## Forward pass by hand

        Each row of the arrays below is one step; the backward pass needs all of them.
        """),
        code(r"""
        z = np.zeros((T, H + D))
        f, i, c_bar, o, c, h = (np.zeros((T, H)) for _ in range(6))
        h_prev, c_prev_t = h0, c0
        for t in range(T):
            z[t] = np.concatenate([h_prev, X[t]])  # z_t = [h_{t-1}, x_t]
            f[t] = sigmoid(z[t] @ W_f + b_f)  # forget gate
            i[t] = sigmoid(z[t] @ W_i + b_i)  # input gate
            c_bar[t] = np.tanh(z[t] @ W_c + b_c)  # candidate c̃_t
            o[t] = sigmoid(z[t] @ W_o + b_o)  # output gate
            c[t] = f[t] * c_prev_t + i[t] * c_bar[t]  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
            h[t] = o[t] * np.tanh(c[t])  # h_t = o ⊙ tanh(c_t)
            h_prev, c_prev_t = h[t], c[t]
        c_prev = np.vstack([c0, c[:-1]])  # c_{t-1} for every step
        tanh_c = np.tanh(c)

        logits = h @ W_y + b_y  # y_t = h_t W_y + b_y
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)  # p_t = softmax(y_t)
        L_t = -np.log(p[np.arange(T), targets])
        L = L_t.sum()

        table(
            ["t", "x_t", "target", "mean f_t", "mean i_t", "mean o_t", "p_t[target]", "L_t"],
            [
                (
                    t,
                    repr(text[t]),
                    repr(text[t + 1]),
                    f"{f[t].mean():.3f}",
                    f"{i[t].mean():.3f}",
                    f"{o[t].mean():.3f}",
                    f"{p[t, targets[t]]:.4f}",
                    f"{L_t[t]:.4f}",
                )
                for t in range(T)
            ],
        )
        print(f"L = {L:.12f}")
        """),
        md(r"""
        ## The same LSTM with autograd

        `nn.lstm_from_document` builds an `nn.LSTMCell` and an `nn.Linear` head from these
        parameters. The cell uses PyTorch's layout: gate order $(i, f, g, o)$, where
        PyTorch's $g$ is the document's candidate $\tilde c$, and separate input and hidden
        weights; the document's $W_g$ acting on $[h, x]$ is
        $\big[W_{hh,g}^\top;\ W_{ih,g}^\top\big]$, hidden rows first.

        `nn.unroll` returns the pair $(h_t, c_t)$ of every step — the graph's own tensors —
        so `tg.grad` gives the **total** $\partial L / \partial h_t$ and $\partial L /
        \partial c_t$ (through every later step). The inputs `xs` require a gradient too, to
        compare $\partial L / \partial x_t$.
        """),
        code(r"""
        cell, head = nn.lstm_from_document(params, dtype=np.float64)
        print(cell, head, sep="\n")

        h0_t = tg.Tensor(h0[None, :], requires_grad=True)  # (batch=1, H)
        c0_t = tg.Tensor(c0[None, :], requires_grad=True)
        xs_t = tg.Tensor(X[:, None, :], requires_grad=True)  # (T, 1, D)
        states = nn.unroll(cell, xs_t, (h0_t, c0_t))  # T pairs (h_t, c_t), each (1, H)
        hs, cs = [h_t for h_t, _ in states], [c_t for _, c_t in states]
        loss = F.cross_entropy(head(tg.stack(hs)), targets[:, None], reduction="sum")

        per_step = tg.grad(loss, [*hs, *cs], retain_graph=True)
        dh_ag = np.stack([g.data[0] for g in per_step[:T]])  # total ∂L/∂h_t
        dc_ag = np.stack([g.data[0] for g in per_step[T:]])  # total ∂L/∂c_t
        loss.backward()
        grads_ag = nn.lstm_grads_to_document(cell, head)
        grads_ag |= {"h0": h0_t.grad.data[0], "c0": c0_t.grad.data[0], "xs": xs_t.grad.data[:, 0]}
        print(f"L (autograd) = {loss.item():.12f}, |L - L by hand| = {abs(loss.item() - L):.0e}")
        """),
        md(r"""
        ## Backward pass by hand: seed 004's recursion

        From the last step down, carrying $dh_{\text{next}}$ and $dc_{\text{next}}$ (both 0
        at the end). $dh^{\text{out}}_t$ is what the output layer sends into $h_t$; for the
        softmax output it is $dy_t W_y^\top$ with $dy_t = p_t - \operatorname{onehot}
        (\text{target}_t)$:

        $$
        \begin{aligned}
        dh &= dh^{\text{out}}_t + dh_{\text{next}}
            && \text{total } \partial L / \partial h_t \\
        do &= dh \odot \tanh(c_t) \odot o_t (1 - o_t) \\
        dc &= dh \odot o_t \odot (1 - \tanh^2 c_t) + dc_{\text{next}}
            && \text{total } \partial L / \partial c_t \\
        df &= dc \odot c_{t-1} \odot f_t (1 - f_t), \quad
        di = dc \odot \tilde c_t \odot i_t (1 - i_t), \quad
        d\tilde c = dc \odot i_t \odot (1 - \tilde c_t^2) \\
        dW_g &\mathrel{+}= z_t^\top dg, \quad db_g \mathrel{+}= dg
            && g \in \{f, i, \tilde c, o\} \\
        dz &= df\, W_f^\top + di\, W_i^\top + d\tilde c\, W_c^\top + do\, W_o^\top \\
        dh_{\text{next}} &= dz_{[:H]}, \qquad \partial L / \partial x_t = dz_{[H:]}, \qquad
        dc_{\text{next}} = f_t \odot dc
        \end{aligned}
        $$

        The function takes $dh^{\text{out}}$ as an argument so that section 5 can reuse it.
        """),
        code(r"""
        GATE_KEYS = [f"{w}_{g}" for w in ("W", "b") for g in "fico"]


        def backward_by_hand(dh_out):
            # Seed 004's per-step recursion; dh_out[t] is the output layer's ∂L_t/∂h_t.
            grads = {k: np.zeros_like(params[k]) for k in GATE_KEYS}
            dh_all, dc_all, dx = np.zeros((T, H)), np.zeros((T, H)), np.zeros((T, D))
            dh_next, dc_next = np.zeros(H), np.zeros(H)
            for t in reversed(range(T)):
                dh = dh_out[t] + dh_next
                do = dh * tanh_c[t] * o[t] * (1 - o[t])
                dc = dh * o[t] * (1 - tanh_c[t] ** 2) + dc_next
                df = dc * c_prev[t] * f[t] * (1 - f[t])
                di = dc * c_bar[t] * i[t] * (1 - i[t])
                dc_bar = dc * i[t] * (1 - c_bar[t] ** 2)
                for g, dg in (("f", df), ("i", di), ("c", dc_bar), ("o", do)):
                    grads[f"W_{g}"] += np.outer(z[t], dg)  # z_t^T dg
                    grads[f"b_{g}"] += dg
                dz = df @ W_f.T + di @ W_i.T + dc_bar @ W_c.T + do @ W_o.T
                dh_next, dx[t] = dz[:H], dz[H:]
                dc_next = f[t] * dc
                dh_all[t], dc_all[t] = dh, dc
            return grads | {"h0": dh_next, "c0": dc_next, "xs": dx}, dh_all, dc_all


        dy = p - np.eye(K)[targets]  # dy_t = p_t - onehot(target_t)
        hand, dh_hand, dc_hand = backward_by_hand(dy @ W_y.T)
        hand["W_y"] = h.T @ dy  # Σ_t h_t^T dy_t
        hand["b_y"] = dy.sum(axis=0)
        """),
        md(r"""
        ## Step by step against autograd

        The totals $dh$ and $dc$ of every step, and $\partial L / \partial x_t$ (relative
        errors as in notebook 2: about $10^{-16}$ is rounding):
        """),
        code(r"""
        table(
            ["t", "‖∂L/∂h_t‖", "err", "‖∂L/∂c_t‖", "err", "‖∂L/∂x_t‖", "err"],
            [
                (
                    t,
                    f"{np.linalg.norm(dh_hand[t]):.4f}",
                    f"{rel_err(dh_hand[t], dh_ag[t]):.1e}",
                    f"{np.linalg.norm(dc_hand[t]):.4f}",
                    f"{rel_err(dc_hand[t], dc_ag[t]):.1e}",
                    f"{np.linalg.norm(hand['xs'][t]):.4f}",
                    f"{rel_err(hand['xs'][t], grads_ag['xs'][t]):.1e}",
                )
                for t in range(T)
            ],
        )
        """),
        md(r"""
        ## Parameter gradients: by hand, `reference.lstm_bptt`, autograd

        `nn.lstm_grads_to_document` rearranges the cell's gradients into seed 004's layout
        (the map from one layout to the other is linear, so gradients move exactly like the
        weights). `reference.lstm_bptt` is the package's own hand-written closed form.
        """),
        code(r"""
        ref = reference.lstm_bptt(X[:, None, :], targets[:, None], h0[None], c0[None], **params)
        ref_grads = {k: v[:, 0] if k == "xs" else v for k, v in ref.grads.items()}
        ref_grads["h0"], ref_grads["c0"] = ref_grads["h0"][0], ref_grads["c0"][0]
        table(
            ["θ", "shape", "‖∂L/∂θ‖", "hand vs autograd", "reference vs autograd"],
            [
                (
                    k,
                    hand[k].shape,
                    f"{np.linalg.norm(hand[k]):.4f}",
                    f"{rel_err(hand[k], grads_ag[k]):.1e}",
                    f"{rel_err(ref_grads[k], grads_ag[k]):.1e}",
                )
                for k in [*GATE_KEYS, "W_y", "b_y", "h0", "c0", "xs"]
            ],
        )
        print(f"reference loss: {ref.loss:.12f}, |reference - hand| = {abs(ref.loss - L):.0e}")
        """),
        md(r"""
        Note the line `dc_next = f_t ⊙ dc` of the recursion: along the cell state, the
        gradient is multiplied by nothing but the forget gate — no weight matrix, no
        saturating derivative. This is why an LSTM can carry gradients over long spans when
        $f_t \approx 1$; notebook 4 measures it.

        # Section 5: squared error on the hidden state (seed 001)

        Seed 001 trains the LSTM with no output layer and the loss
        $l(t) = \lVert h_t - y_t \rVert^2$ on the hidden state itself. It introduces
        $L(t) = \sum_{s \ge t} l(s)$, the loss from step $t$ to the end, and writes the
        recursion

        $$\frac{\partial L(t)}{\partial h_t} = \frac{\partial l(t)}{\partial h_t}
        + \frac{\partial L(t+1)}{\partial h_t},$$

        because $h_t$ cannot affect the losses before $t$. In the recursion above this only
        changes what enters at each step: $dh^{\text{out}}_t = 2(h_t - y_t)$.
        """),
        code(r"""
        y_h = np.random.default_rng(5).uniform(-0.5, 0.5, (T, H))  # targets for h_t
        L5 = ((h - y_h) ** 2).sum()
        hand5, dh5_hand, _ = backward_by_hand(2 * (h - y_h))

        gate_params = {k: params[k] for k in GATE_KEYS}
        ref5 = reference.lstm_hidden_mse_bptt(
            X[:, None, :], y_h[:, None, :], h0[None], c0[None], **gate_params
        )

        cell.zero_grad()  # forget the gradients of section 4
        h0_t = tg.Tensor(h0[None, :], requires_grad=True)
        c0_t = tg.Tensor(c0[None, :], requires_grad=True)
        hs = [h_t for h_t, _ in nn.unroll(cell, tg.Tensor(X[:, None, :]), (h0_t, c0_t))]
        l_t = [((h_t - y_h[t]) ** 2).sum() for t, h_t in enumerate(hs)]  # l(t)
        tails = [sum(l_t[t:], tg.Tensor(0.0)) for t in range(T)]  # L(t) = Σ_{s≥t} l(s)
        loss5 = tails[0]
        print(
            f"L = {loss5.item():.12f}, |autograd - hand| = {abs(loss5.item() - L5):.0e}, "
            f"|reference - hand| = {abs(ref5.loss - L5):.0e}"
        )
        """),
        md(r"""
        Seed 001's recursion, checked with autograd alone: for each $t$, `tg.grad` computes
        $\partial L(t) / \partial h_t$, $\partial L(t+1) / \partial h_t$ and the total
        $\partial L / \partial h_t$ directly from the graph.
        """),
        code(r"""
        rows = []
        for t in range(T):
            (d_tail,) = tg.grad(tails[t], [hs[t]], retain_graph=True)  # ∂L(t)/∂h_t
            (d_full,) = tg.grad(loss5, [hs[t]], retain_graph=True)  # ∂L/∂h_t
            d_next = np.zeros((1, H))  # ∂L(t+1)/∂h_t, 0 at the last step
            if t + 1 < T:
                d_next = tg.grad(tails[t + 1], [hs[t]], retain_graph=True)[0].data
            d_l = 2 * (hs[t].data - y_h[t])  # ∂l(t)/∂h_t
            rows.append(
                (
                    t,
                    f"{np.linalg.norm(d_tail.data):.4f}",
                    f"{rel_err(d_l + d_next, d_tail.data):.1e}",
                    f"{rel_err(d_tail.data, d_full.data):.1e}",
                    f"{rel_err(dh5_hand[t], d_tail.data[0]):.1e}",
                )
            )
        table(
            ["t", "‖∂L(t)/∂h_t‖", "∂l(t)/∂h_t + ∂L(t+1)/∂h_t", "= ∂L/∂h_t", "= dh by hand"],
            rows,
        )
        """),
        md(r"""
        And the parameter gradients of section 5: by hand, by `reference.lstm_hidden_mse_bptt`
        and by autograd.
        """),
        code(r"""
        loss5.backward()
        grads5 = nn.lstm_grads_to_document(cell, head)  # the head is unused: W_y, b_y are 0
        grads5 |= {"h0": h0_t.grad.data[0], "c0": c0_t.grad.data[0]}
        ref5_grads = ref5.grads | {"h0": ref5.grads["h0"][0], "c0": ref5.grads["c0"][0]}
        table(
            ["θ", "‖∂L/∂θ‖", "hand vs autograd", "reference vs autograd"],
            [
                (
                    k,
                    f"{np.linalg.norm(hand5[k]):.4f}",
                    f"{rel_err(hand5[k], grads5[k]):.1e}",
                    f"{rel_err(ref5_grads[k], grads5[k]):.1e}",
                )
                for k in [*GATE_KEYS, "h0", "c0"]
            ],
        )
        """),
        md(r"""
        ## Summary

        Seed 004's recursion with `dh_next` and `dc_next` is exactly reverse-mode
        differentiation of the LSTM: every total derivative along the way, and every
        parameter gradient, matches the engine to about $10^{-16}$. Seed 001's squared-error
        variant is the same recursion fed with $2(h_t - y_t)$, and its formula
        $\partial L(t)/\partial h_t = \partial l(t)/\partial h_t + \partial L(t+1)/\partial
        h_t$ holds step by step.
        """),
    ]


# ============================================================================================
# 04 — vanishing and exploding gradients
# ============================================================================================


def nb04_vanishing_exploding() -> Cells:
    return [
        md(r"""
        # 4. Vanishing and exploding gradients

        Seed 001 explains why a plain RNN struggles with long-range dependencies: the
        gradient that reaches an early step is a long product of Jacobians. With
        $s_k = \tanh(W s_{k-1} + U x_k + b)$, one step back multiplies by
        $\partial s_k / \partial s_{k-1} = \operatorname{diag}(1 - s_k^2)\, W$, so

        $$\frac{\partial s_T}{\partial s_t} = \prod_{k=t+1}^{T} \operatorname{diag}(1 - s_k^2)
        \, W, \qquad
        \frac{\partial L}{\partial s_t} = \Big(\frac{\partial s_T}{\partial s_t}\Big)^{\!\top}
        \frac{\partial L}{\partial s_T} \quad \text{(loss at the last step only).}$$

        Every factor has norm at most $\lVert W \rVert_2$ (because $0 < 1 - s_k^2 \le 1$), so
        $\lVert \partial s_T / \partial s_t \rVert \le \lVert W \rVert_2^{\,T-t}$: if
        $\lVert W \rVert_2 < 1$ the gradient **must** vanish geometrically, and it can only
        explode if $\lVert W \rVert_2 > 1$ (Pascanu, Mikolov & Bengio, 2013). In an LSTM
        the cell state is carried by $c_t = f_t \odot c_{t-1} + \dots$, and one step back
        along it multiplies by the forget gate $f_t$ alone (notebook 3's
        `dc_next = f ⊙ dc`).

        This notebook measures all of that: per-step norms of $\partial L / \partial h_t$
        (`nn.hidden_grad_norms`), the product formula itself, the role of the spectral
        radius, gradient clipping, and a picture of the gradient flowing back through time.
        """),
        code(r"""
        %matplotlib inline
        import matplotlib.pyplot as plt
        import numpy as np
        from IPython.display import Markdown, display

        import tinygrad_rnn as tg
        from tinygrad_rnn import nn, optim, viz

        np.set_printoptions(precision=4, suppress=True)


        def table(header, rows):
            # Display rows as a Markdown table.
            lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
            display(Markdown("\n".join(lines)))


        def sigmoid(v):
            return 1 / (1 + np.exp(-v))
        """),
        md(r"""
        ## The set-up: many-to-one, the loss at the last step only

        A batch of $B = 8$ sequences of $T = 60$ steps with $D = 3$ random inputs; $H = 16$
        hidden units; a linear head reads the **last** hidden state, and the loss is the
        squared error to a random target. Every gradient that reaches step $t < T-1$ has
        travelled back through all the steps after it.

        The recurrent matrix of each RNN is one fixed random matrix scaled to a chosen
        spectral radius $\rho(W)$ (the largest $|\lambda|$ of its eigenvalues). The LSTMs
        use PyTorch's default initialisation with the forget gate's bias set to 1 (a common
        recommendation) or 3. All networks see the same inputs.
        """),
        code(r"""
        T, B, D, H = 60, 8, 3, 16
        data_rng = np.random.default_rng(0)
        xs = data_rng.standard_normal((T, B, D))
        target = data_rng.standard_normal((B, 1))
        W_dir = data_rng.standard_normal((H, H))
        W_dir /= np.max(np.abs(np.linalg.eigvals(W_dir)))  # spectral radius 1


        class ManyToOne(nn.Module):
            # A recurrent cell, unrolled; a linear head reads the last hidden state.
            def __init__(self, cell):
                super().__init__()
                self.cell = cell
                self.head = nn.Linear(H, 1, dtype=np.float64, rng=np.random.default_rng(2))

            def forward(self, xs):
                states = nn.unroll(self.cell, tg.Tensor(xs))  # s_t, or (h_t, c_t) for an LSTM
                last = states[-1][0] if isinstance(states[-1], tuple) else states[-1]
                return ((self.head(last) - target) ** 2).mean(), states


        def rnn(rho):
            cell = nn.RNNCell(D, H, dtype=np.float64, rng=np.random.default_rng(1))
            cell.weight_hh.data = rho * W_dir  # recurrent weights with spectral radius rho
            return ManyToOne(cell)


        def lstm(forget_bias):
            cell = nn.LSTMCell(D, H, dtype=np.float64, rng=np.random.default_rng(1))
            cell.bias_ih.data[H : 2 * H] = forget_bias  # gate order (i, f, g, o): rows H..2H
            cell.bias_hh.data[H : 2 * H] = 0.0
            return ManyToOne(cell)


        nets = {
            "RNN, ρ(W) = 0.5 (small weights)": rnn(0.5),
            "RNN, ρ(W) = 1": rnn(1.0),
            "RNN, ρ(W) = 3 (large weights)": rnn(3.0),
            "LSTM, forget bias 1": lstm(1.0),
            "LSTM, forget bias 3": lstm(3.0),
        }
        norms, states_of = {}, {}
        for name, net in nets.items():
            loss, states = net(xs)
            norms[name] = nn.hidden_grad_norms(loss, states)  # ‖∂L/∂h_t‖ for t = 0..T-1
            states_of[name] = states

        table(
            ["network", "‖∂L/∂h_59‖", "‖∂L/∂h_30‖", "‖∂L/∂h_0‖", "‖∂L/∂h_0‖ / ‖∂L/∂h_59‖"],
            [
                (name, f"{n[-1]:.2e}", f"{n[30]:.2e}", f"{n[0]:.2e}", f"{n[0] / n[-1]:.1e}")
                for name, n in norms.items()
            ],
        )
        """),
        code(r"""
        fig, ax = plt.subplots(figsize=(9, 5))
        styles = ["-", "-", "-", "--", "--"]
        for (name, n), style in zip(norms.items(), styles):
            ax.semilogy(np.arange(T), n, style, lw=2, label=name)
        ax.set_xlabel("time step t  (the loss is at t = 59)")
        ax.set_ylabel("‖∂L/∂h_t‖  (log scale)")
        ax.set_title("How much gradient reaches each step, going back from the loss")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
        plt.show()
        """),
        md(r"""
        Read the plot from right to left, the way the gradient travels. The lines are
        straight on a log scale: each step back multiplies the norm by a roughly constant
        factor.

        * **Small recurrent weights** ($\rho = 0.5$): the gradient shrinks by about 2× per
          step; after 60 steps nothing is left that could teach the network to use $x_0$.
        * **Large recurrent weights** ($\rho = 3$): the gradient *grows* going back, by
          orders of magnitude — exploding.
        * **LSTM**: the decay rate is set by the forget gate. With bias 1 the gate starts
          near $\sigma(1) \approx 0.73$ and the gradient still decays; with bias 3 it starts
          near $\sigma(3) \approx 0.95$ and much more survives. The point is not that an LSTM
          never loses gradient, but that the factor is a gate the network can learn to keep
          near 1, with no weight matrix and no $\tanh'$ in the way.

        ## The product formula, checked

        For the $\rho = 0.5$ RNN we rebuild every $\partial L / \partial s_t$ from
        $\partial L / \partial s_{T-1}$ with the product formula alone, in numpy: one step
        back is $g_{t-1} = W^\top \big((1 - s_t^2) \odot g_t\big)$ (for a batch stored as
        rows: `g @ W` after the element-wise product), and compare with autograd.
        """),
        code(r"""
        name = "RNN, ρ(W) = 0.5 (small weights)"
        net, states = nets[name], states_of[name]
        loss, states = net(xs)
        W = net.cell.weight_hh.data
        S = np.stack([s.data for s in states])  # s_t, (T, B, H)
        autograd = np.stack([g.data for g in tg.grad(loss, states)])  # ∂L/∂s_t

        product = np.zeros_like(S)
        product[-1] = autograd[-1]  # start from ∂L/∂s_{T-1}
        for t in range(T - 1, 0, -1):
            product[t - 1] = (product[t] * (1 - S[t] ** 2)) @ W  # (diag(1 - s_t²) W)^T g_t

        scale = np.max(np.abs(autograd), axis=(1, 2))
        err = np.max(np.abs(product - autograd), axis=(1, 2)) / scale  # one error per step
        print(f"max over t of the relative error, product formula vs autograd: {err.max():.1e}")
        """),
        md(r"""
        ## The spectral-radius story

        For one fixed direction of $W$ we sweep its spectral radius and measure the factor
        by which the gradient is multiplied per step back (fitted to the slope of
        $\log \lVert \partial L / \partial h_t \rVert$). While the states stay in the linear
        part of $\tanh$, the Jacobians $\operatorname{diag}(1 - s_k^2) W$ are close to
        $\bar\gamma W$ (with $\bar\gamma$ the average $\tanh'$), whose long products grow
        like $\rho(W)^{T-t}$: the factor is about $\rho(W)\,\bar\gamma$. For large $W$ the
        states saturate ($\bar\gamma$ drops) and that estimate stops being accurate, but
        the gradient explodes all the same.
        """),
        code(r"""
        def per_step_factor(n):
            # The factor by which ‖∂L/∂h_t‖ grows per step back: n_{t-1} ≈ factor · n_t.
            return float(np.exp(-np.polyfit(np.arange(len(n)), np.log(n), 1)[0]))


        sweep = []
        for rho in np.arange(0.25, 4.01, 0.25):
            net = rnn(rho)
            loss, states = net(xs)
            gamma = np.mean([1 - s.data**2 for s in states])  # average tanh'
            factor = per_step_factor(nn.hidden_grad_norms(loss, states))
            sweep.append((rho, np.linalg.norm(net.cell.weight_hh.data, 2), gamma, factor))
        sweep = np.array(sweep)

        rows = []
        for r, w, g, f in sweep:
            rows.append((f"{r:.2f}", f"{w:.2f}", f"{g:.3f}", f"{r * g:.3f}", f"{f:.3f}"))
        table(["ρ(W)", "‖W‖₂", "mean tanh' γ̄", "ρ·γ̄", "measured factor per step back"], rows)
        """),
        code(r"""
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.plot(sweep[:, 0], sweep[:, 3], "o-", lw=2, label="measured factor per step back")
        ax.plot(sweep[:, 0], sweep[:, 0] * sweep[:, 2], "s--", label="ρ(W) · mean tanh'")
        ax.axhline(1.0, color="gray", lw=1)
        ax.fill_between(sweep[:, 0], 0, 1, color="tab:blue", alpha=0.07, label="vanishing")
        ax.fill_between(sweep[:, 0], 1, 1.5, color="tab:red", alpha=0.07, label="exploding")
        ax.set_ylim(0, 1.5)
        ax.set_xlabel("spectral radius ρ(W)")
        ax.set_ylabel("gradient factor per step")
        ax.set_title("Vanilla RNN, T = 60: per-step gradient factor against ρ(W)")
        ax.legend(loc="lower right")
        plt.show()
        """),
        md(r"""
        The bound $\lVert W \rVert_2 < 1$ guarantees vanishing, but the table shows the
        gradient vanishing far beyond it: a random $W$ has $\lVert W \rVert_2$ well above
        $\rho(W)$, and $\tanh' < 1$ shrinks every factor further. The transition from
        vanishing to exploding comes roughly where $\rho(W)\,\bar\gamma$ reaches 1, which
        is above $\rho(W) = 1$ because $\bar\gamma < 1$.

        The LSTM's factor, next to the average value of its forget gate over the sequence:
        """),
        code(r"""
        def forget_gate_mean(cell, states):
            # Average f_t = σ(x_t W_if^T + b_if + b_hf + h_{t-1} W_hf^T), rows H..2H of the cell.
            rows = slice(H, 2 * H)
            w_ih, w_hh = cell.weight_ih.data[rows], cell.weight_hh.data[rows]
            bias = cell.bias_ih.data[rows] + cell.bias_hh.data[rows]
            h_prev = [np.zeros((B, H))] + [h.data for h, _ in states[:-1]]
            return np.mean([sigmoid(xs[t] @ w_ih.T + bias + h_prev[t] @ w_hh.T) for t in range(T)])


        table(
            ["network", "mean forget gate f̄", "measured factor per step back"],
            [
                (
                    name,
                    f"{forget_gate_mean(nets[name].cell, states_of[name]):.3f}",
                    f"{per_step_factor(norms[name]):.3f}",
                )
                for name in ("LSTM, forget bias 1", "LSTM, forget bias 3")
            ],
        )
        """),
        md(r"""
        ## Gradient clipping for the exploding case

        An exploding gradient is mostly a problem of *step size*: its direction is still
        useful, but $\eta \lVert g \rVert$ can be huge. `optim.clip_grad_norm_(params,
        max_norm)` rescales all gradients together,

        $$g \leftarrow g \cdot \min\!\Big(1, \frac{\tau}{\lVert g \rVert}\Big), \qquad
        \lVert g \rVert = \Big(\sum_{p} \lVert g_p \rVert^2\Big)^{1/2},$$

        so the direction is unchanged and the global norm is at most $\tau$. It returns the
        norm before clipping. Seed 003's min-char-rnn instead clips every entry to
        $[-5, 5]$ (`optim.clip_grad_value_`), which also bounds the step but changes its
        direction.
        """),
        code(r"""
        net = rnn(3.0)
        loss, _ = net(xs)
        loss.backward()
        params = list(net.parameters())
        before = nn.parameter_grad_norms(net)
        g_before = np.concatenate([p.grad.data.ravel() for p in params])

        total = optim.clip_grad_norm_(params, max_norm=1.0)

        after = nn.parameter_grad_norms(net)
        g_after = np.concatenate([p.grad.data.ravel() for p in params])
        cosine = g_before @ g_after / (np.linalg.norm(g_before) * np.linalg.norm(g_after))
        print(f"global gradient norm before clipping: {total:.4g}")
        print(f"global gradient norm after clipping : {np.linalg.norm(g_after):.4g}")
        print(f"cosine(before, after) = {cosine:.12f}  (same direction)")
        table(
            ["parameter", "‖g‖ before", "‖g‖ after"],
            [(k, f"{before[k]:.3e}", f"{after[k]:.3e}") for k in before],
        )
        """),
        md(r"""
        What one plain gradient-descent step ($\eta = 0.1$) does to the exploding network,
        without and with clipping: how far the parameters move relative to their own size,
        the loss afterwards, and — measured by a second forward and backward pass — the
        average $\tanh'$ of the states and the gradient reaching the recurrent weights.
        """),
        code(r"""
        rows = []
        for clip in (False, True):
            net = rnn(3.0)
            loss, _ = net(xs)
            loss.backward()
            if clip:
                optim.clip_grad_norm_(net.parameters(), max_norm=1.0)
            theta = np.concatenate([p.data.ravel() for p in net.parameters()])
            optim.SGD(net.parameters(), lr=0.1).step()
            moved = np.concatenate([p.data.ravel() for p in net.parameters()]) - theta

            net.zero_grad()
            new_loss, states = net(xs)
            new_loss.backward()
            rows.append(
                (
                    "clip to norm 1" if clip else "no clipping",
                    f"{loss.item():.4f}",
                    f"{np.linalg.norm(moved) / np.linalg.norm(theta):.2e}",
                    f"{new_loss.item():.4f}",
                    f"{np.mean([1 - s.data**2 for s in states]):.2e}",
                    f"{np.linalg.norm(net.cell.weight_hh.grad.data):.2e}",
                )
            )
        table(
            ["step", "loss before", "‖Δθ‖/‖θ‖", "loss after", "mean tanh' after", "‖∂L/∂W‖ after"],
            rows,
        )
        """),
        md(r"""
        Without clipping the step moves the parameters by thousands of times their own
        size. The loss after this one step may even be lower, but the recurrent part of the
        network is wrecked: every state is saturated ($\tanh' \approx 0$), so the recurrent
        weights receive no gradient at all from then on. With clipping the step is small and
        the network remains trainable (its gradient is still huge, so clipping must be
        applied at every step).

        ## The gradient flowing back through time, drawn

        `viz.draw_graph(loss, grad_flow=True, collapse=True)` draws each time step as one
        box (`collapse=True`; the ops of a step are recorded in a scope when the forward
        pass runs inside `viz.trace()`) and colours every box and edge by the norm of the
        gradient that flowed back through it: dark red is strong, pale is weak. Both
        pictures use the same colour scale (`grad_range`), for the first 20 steps of the
        inputs. In the RNN with small weights the colour fades step by step going back from
        the loss; the LSTM with forget bias 3 keeps it.
        """),
        code(r"""
        pictures = {}
        for name in ("RNN, ρ(W) = 0.5 (small weights)", "LSTM, forget bias 3"):
            net = nets[name]
            with viz.trace():
                loss, _ = net(xs[:20])
            pictures[name] = viz.draw_graph(
                loss,
                params=net,
                grad_flow=True,
                collapse=True,
                grad_range=(1e-6, 1.0),
                wrap=10,
                title=f"{name}: gradient flow, T = 20",
            )
            norms_20 = [v for _, v in sorted(pictures[name].model.step_grad_norms.items())]
            print(f"{name}: step-gradient norm at t=19 {norms_20[-1]:.2e}, t=0 {norms_20[0]:.2e}")
        """),
        code(r"""
        pictures["RNN, ρ(W) = 0.5 (small weights)"]
        """),
        code(r"""
        pictures["LSTM, forget bias 3"]
        """),
        md(r"""
        ## Summary

        * The gradient reaching step $t$ is a product of $T - t$ Jacobians
          $\operatorname{diag}(1 - s_k^2) W$ — checked above against autograd to rounding
          error — so it changes geometrically with the distance from the loss.
        * The per-step factor follows $\rho(W)$ times the average $\tanh'$ while the states
          are unsaturated; it is below 1 (vanishing) for small weights and above 1
          (exploding) for large ones.
        * Clipping by the global norm keeps the direction and bounds the step, which tames
          exploding gradients (not vanishing ones).
        * Along an LSTM's cell state the factor is the forget gate: a bias of 1 still lets the
          gradient decay over 60 steps at initialisation; a larger bias, or training, keeps
          it near 1. Notebook 5 shows the consequence: an LSTM learns a task with a 20-step
          dependency that a vanilla RNN of the same size does not.
        """),
    ]


# ============================================================================================
# 05 — training
# ============================================================================================


def nb05_training() -> Cells:
    return [
        md(r"""
        # 5. Training recurrent networks

        The previous notebooks checked gradients; this one uses them. Two small tasks, both
        with their data generated right here:

        1. **The adding problem** (Hochreiter & Schmidhuber, 1997): a long-range dependency
           that a small LSTM learns in a few hundred steps and a vanilla RNN with as many
           hidden units does not — notebook 4's vanishing gradients, seen in a loss curve.
        2. **A character model** of one paragraph of text, trained like seed 003's
           min-char-rnn with truncated BPTT (`nn.detach_state`), then sampled.

        Everything uses Adam and gradient clipping (`optim.clip_grad_norm_`).
        """),
        code(r"""
        %matplotlib inline
        import matplotlib.pyplot as plt
        import numpy as np
        from IPython.display import Markdown, display

        import tinygrad_rnn as tg
        from tinygrad_rnn import functional as F
        from tinygrad_rnn import nn, optim

        np.set_printoptions(precision=3, suppress=True)


        def table(header, rows):
            # Display rows as a Markdown table.
            lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
            display(Markdown("\n".join(lines)))
        """),
        md(r"""
        ## The adding problem

        Each input sequence has $T = 20$ steps and two channels: channel 0 holds numbers
        drawn uniformly from $[0, 1]$, channel 1 is 0 except at two **marked** steps, one in
        each half of the sequence. The target is the sum of the two marked numbers. To
        solve it the network must notice a marker, remember the value beside it for up to
        19 steps, and add the second one.

        **Baseline.** A model that ignores the input does best by predicting the mean of the
        target, $\mathbb E[a + b] = 1$; its mean squared error is the variance
        $\operatorname{Var}(a + b) = 2 \cdot \tfrac{1}{12} = \tfrac16 \approx 0.1667$. A
        network that does better than $1/6$ has learned to use the markers.
        """),
        code(r"""
        def adding_problem(rng, batch, T=20):
            # Inputs (T, batch, 2) and targets (batch, 1), float32.
            x = np.zeros((T, batch, 2), dtype=np.float32)
            x[:, :, 0] = rng.uniform(0, 1, (T, batch))  # channel 0: the numbers
            first = rng.integers(0, T // 2, batch)  # one marker in the first half
            second = rng.integers(T // 2, T, batch)  # and one in the second half
            rows = np.arange(batch)
            x[first, rows, 1] = 1.0  # channel 1: the markers
            x[second, rows, 1] = 1.0
            y = x[first, rows, 0] + x[second, rows, 0]
            return x, y[:, None]


        x, y = adding_problem(np.random.default_rng(0), 1)
        print("numbers:", x[:, 0, 0])
        print("markers:", x[:, 0, 1].astype(int))
        marked = x[:, 0, 1] == 1
        print(f"target : {x[marked, 0, 0][0]:.3f} + {x[marked, 0, 0][1]:.3f} = {y[0, 0]:.3f}")

        _, y_many = adding_problem(np.random.default_rng(1), 100_000)
        baseline = float(np.mean((y_many - 1.0) ** 2))
        print(f"\nalways predicting 1: MSE {baseline:.4f} on 100,000 sequences, 1/6 = {1 / 6:.4f}")
        """),
        md(r"""
        ## The model and the training loop

        A one-layer recurrent network with $H = 32$ units runs over the sequence; a linear
        head reads its **last** output. The LSTM's forget-gate bias starts at 1 (notebook 4).
        Each step draws a fresh batch of 64 sequences, and the loop is the usual one:
        forward, `zero_grad`, `backward`, clip the global gradient norm to 1, Adam step
        (learning rate 0.01). Every 25 steps we measure the MSE on a fixed validation set of
        1,000 sequences, under `tg.no_grad()` (no graph is recorded).
        """),
        code(r"""
        H = 32
        x_val, y_val = adding_problem(np.random.default_rng(123), 1000)


        class LastStep(nn.Module):
            # A recurrent layer over the sequence; a linear head reads the last step.
            def __init__(self, layer):
                super().__init__()
                self.rnn = layer
                self.head = nn.Linear(H, 1, rng=np.random.default_rng(11))

            def forward(self, x):
                out, _ = self.rnn(x)  # out: (T, batch, H)
                return self.head(out[-1])


        def train(model, steps=500, batch=64, lr=1e-2, max_norm=1.0, seed=0):
            rng = np.random.default_rng(seed)
            opt = optim.Adam(model.parameters(), lr=lr)
            log = {"train": [], "grad_norm": [], "val_step": [], "val": []}
            for step in range(steps + 1):
                if step % 25 == 0:
                    with tg.no_grad():
                        log["val"].append(F.mse_loss(model(x_val), y_val).item())
                    log["val_step"].append(step)
                if step == steps:
                    break
                x, y = adding_problem(rng, batch)
                loss = F.mse_loss(model(x), y)
                opt.zero_grad()
                loss.backward()
                log["grad_norm"].append(optim.clip_grad_norm_(model.parameters(), max_norm))
                opt.step()
                log["train"].append(loss.item())
            return log


        lstm_layer = nn.LSTM(2, H, rng=np.random.default_rng(10))
        lstm_layer.bias_ih_l0.data[H : 2 * H] = 1.0  # forget gate (gate order i, f, g, o)
        lstm_layer.bias_hh_l0.data[H : 2 * H] = 0.0
        models = {
            "LSTM": LastStep(lstm_layer),
            "vanilla RNN": LastStep(nn.RNN(2, H, rng=np.random.default_rng(10))),
        }
        logs = {name: train(model) for name, model in models.items()}

        table(
            ["model", "parameters", "val MSE, step 0", "step 250", "step 500", "÷ baseline (1/6)"],
            [
                (
                    name,
                    sum(p.size for p in models[name].parameters()),
                    f"{log['val'][0]:.4f}",
                    f"{log['val'][10]:.4f}",
                    f"{log['val'][-1]:.4f}",
                    f"{log['val'][-1] / (1 / 6):.3f}",
                )
                for name, log in logs.items()
            ],
        )
        """),
        code(r"""
        fig, ax = plt.subplots(figsize=(9, 5))
        for (name, log), color in zip(logs.items(), ["tab:blue", "tab:orange"]):
            train_loss = np.array(log["train"])
            smooth = np.convolve(train_loss, np.ones(20) / 20, mode="valid")
            ax.plot(train_loss, color=color, alpha=0.2, lw=1)
            steps = np.arange(19, len(train_loss))
            ax.plot(steps, smooth, color=color, lw=2, label=f"{name}, train (moving average)")
            val_label = f"{name}, validation"
            ax.plot(log["val_step"], log["val"], "o", color=color, ms=4, label=val_label)
        ax.axhline(1 / 6, color="black", ls="--", lw=1.5, label="baseline: always predict 1 (1/6)")
        ax.set_yscale("log")
        ax.set_xlabel("training step (batch of 64)")
        ax.set_ylabel("mean squared error (log scale)")
        ax.set_title("The adding problem, T = 20")
        ax.legend()
        plt.show()
        """),
        md(r"""
        Both networks first learn the baseline — predict about 1 — and sit on it. The LSTM
        then finds the markers and its error falls far below $1/6$; the vanilla RNN, whose
        gradient from the last step back to the first marker shrinks geometrically, stays
        near the baseline over the same number of steps. A few validation sequences:
        """),
        code(r"""
        with tg.no_grad():
            predictions = {name: model(x_val[:, :6]).data[:, 0] for name, model in models.items()}
        rows = []
        for k in range(6):
            rows.append((f"{y_val[k, 0]:.3f}", *(f"{predictions[m][k]:.3f}" for m in models)))
        table(["target", *(f"{name} prediction" for name in models)], rows)
        print(
            "median gradient norm before clipping:",
            {name: round(float(np.median(log["grad_norm"])), 3) for name, log in logs.items()},
        )
        """),
        md(r"""
        ## A character model with truncated BPTT

        Seed 003 derives the gradients of min-char-rnn, Karpathy's minimal character-level
        RNN: it reads the text 25 characters at a time, and the last hidden state of one chunk
        becomes the first state of the next, while the backward pass of each chunk stops at
        the chunk's start. That is **truncated BPTT**: the network's memory reaches across
        chunks (forward), but the gradient of a chunk never does (backward).

        The text is one paragraph; the task is to predict each next character.
        """),
        code(r"""
        text = (
            "Backpropagation through time unrolls a recurrent network into a deep feedforward "
            "network with one layer per time step and shared weights. The gradient of the loss "
            "with respect to the recurrent weights is the sum of the gradients at every step. "
            "Errors flow backwards from the last step to the first, multiplied at each step by "
            "the transposed recurrent matrix and the derivative of the nonlinearity, so over "
            "long spans they shrink or grow geometrically. Truncated backpropagation carries "
            "the hidden state forward from one chunk to the next but cuts the gradient at the "
            "chunk boundary."
        )
        chars = sorted(set(text))
        V = len(chars)
        ids = np.array([chars.index(ch) for ch in text])
        one_hot = np.eye(V, dtype=np.float32)
        print(f"{len(text)} characters, vocabulary of {V}: {''.join(chars)!r}")
        print(f"uniform guessing costs log V = {np.log(V):.3f} nats per character")


        class CharLSTM(nn.Module):
            def __init__(self, hidden=64):
                super().__init__()
                self.lstm = nn.LSTM(V, hidden, rng=np.random.default_rng(3))
                self.head = nn.Linear(hidden, V, rng=np.random.default_rng(4))

            def forward(self, chunk_ids, state=None):
                # One-hot inputs (T, batch=1, V) -> logits (T, V) and the final (h, c).
                out, state = self.lstm(one_hot[chunk_ids][:, None, :], state)
                return self.head(out[:, 0]), state
        """),
        md(r"""
        Why the state must be **detached**: after chunk 1's `backward`, its graph is freed.
        If chunk 2 starts from chunk 1's final state as it is — still attached to that
        graph — chunk 2's backward tries to continue into chunk 1 and fails. (With
        `retain_graph=True` it would succeed, and every chunk would backpropagate through
        the whole history: full BPTT, growing in cost with every chunk.)
        `nn.detach_state(state)` keeps the values and cuts the link.
        """),
        code(r"""
        model = CharLSTM()
        logits, state = model(ids[0:25])
        F.cross_entropy(logits, ids[1:26]).backward()

        logits, _ = model(ids[25:50], state)  # chunk 2 from chunk 1's state, not detached
        try:
            F.cross_entropy(logits, ids[26:51]).backward()
        except RuntimeError as err:
            print("without detach_state -> RuntimeError:", err)

        h, c = nn.detach_state(state)
        print(
            "after detach_state: same values:",
            np.array_equal(h.data, state[0].data),
            "| requires_grad:",
            h.requires_grad,
        )
        """),
        md(r"""
        The training loop, min-char-rnn's, with an LSTM of 64 units, Adam and clipping
        (min-char-rnn itself uses a vanilla RNN, Adagrad and clips every entry to
        $[-5, 5]$). One epoch is one pass over the paragraph in chunks of 25 characters,
        starting from a zero state; `nn.run_tbptt` packages the same loop.
        """),
        code(r"""
        model = CharLSTM()
        opt = optim.Adam(model.parameters(), lr=1e-2)
        chunk, epochs = 25, 40
        epoch_loss = []
        for epoch in range(epochs):
            state, total = None, 0.0
            for start in range(0, len(ids) - 1, chunk):
                stop = min(start + chunk, len(ids) - 1)
                logits, state = model(ids[start:stop], state)
                loss = F.cross_entropy(logits, ids[start + 1 : stop + 1])  # mean per character
                opt.zero_grad()
                loss.backward()
                optim.clip_grad_norm_(model.parameters(), max_norm=5.0)
                opt.step()
                state = nn.detach_state(state)  # carry the values on, cut the gradient
                total += loss.item() * (stop - start)
            epoch_loss.append(total / (len(ids) - 1))
            if epoch % 5 == 0 or epoch == epochs - 1:
                print(f"epoch {epoch:2d}: {epoch_loss[-1]:.3f} nats per character")
        """),
        code(r"""
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot(np.arange(1, epochs + 1), epoch_loss, "o-", ms=3, label="training loss")
        ax.axhline(np.log(V), color="gray", ls="--", label="uniform guessing, log V")
        ax.set_xlabel("epoch (one pass over the paragraph, 24 chunks)")
        ax.set_ylabel("cross-entropy, nats per character")
        ax.set_title("Character LSTM with truncated BPTT (chunks of 25)")
        ax.legend()
        plt.show()
        """),
        md(r"""
        ## Sampling

        To generate text, feed one character, turn the logits into probabilities
        $p = \operatorname{softmax}(o / \tau)$, draw the next character from $p$, feed it
        back, and carry the state along. The temperature $\tau$ trades variety ($\tau = 1$:
        the model's own distribution) for confidence ($\tau < 1$: sharper). We also count how
        many of the sample's 8-character windows occur somewhere in the paragraph: a small
        model trained on one paragraph mostly recombines pieces of it.
        """),
        code(r"""
        def sample(model, first, n, temperature, rng):
            out = [chars.index(first)]
            state = None
            with tg.no_grad():
                for _ in range(n):
                    logits, state = model(np.array(out[-1:]), state)
                    p = F.softmax(logits / temperature).data[0].astype(np.float64)
                    out.append(int(rng.choice(V, p=p / p.sum())))
            return "".join(chars[i] for i in out)


        for temperature in (1.0, 0.5):
            generated = sample(model, "B", 300, temperature, np.random.default_rng(7))
            windows = [generated[k : k + 8] for k in range(len(generated) - 7)]
            found = np.mean([w in text for w in windows])
            print(f"τ = {temperature}: ({found:.0%} of 8-character windows occur in the text)")
            print(generated, end="\n\n")
        """),
        md(r"""
        ## Summary

        * The adding problem makes notebook 4's measurements concrete: with a dependency
          up to 19 steps long, the LSTM learns it and the vanilla RNN with as many hidden
          units stays near the baseline for as long as we train it here.
        * Truncated BPTT is a one-line change to the training loop — `state =
          nn.detach_state(state)` — that bounds the cost of each backward pass while the
          network's state still flows through the whole text.
        * Every gradient used here is the one notebooks 2 and 3 proved equal to the
          documents' closed-form BPTT.
        """),
    ]


NOTEBOOKS: dict[str, Callable[[], Cells]] = {
    "01_autograd_basics.ipynb": nb01_autograd_basics,
    "02_rnn_bptt_by_hand.ipynb": nb02_rnn_bptt_by_hand,
    "03_lstm_bptt_by_hand.ipynb": nb03_lstm_bptt_by_hand,
    "04_vanishing_exploding.ipynb": nb04_vanishing_exploding,
    "05_training.ipynb": nb05_training,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` with its cells, not executed."""
    nb = new_notebook(cells=NOTEBOOKS[name]())
    for k, cell in enumerate(nb.cells):
        cell.id = f"cell-{k:02d}"  # stable ids: a rebuild changes only what really changed
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` in a fresh kernel (in ``cwd``) and store the outputs."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,
    )
    client.execute(env=kernel_env())
    return nb


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make the stored outputs independent of the run: same notebook, same bytes.

    * Consecutive stream outputs are merged (how a kernel splits printed text into messages
      depends on timing).
    * A picture's plain-text fallback that is just an object's repr with its memory address
      (``<GraphDrawing at 0x7f...>``) is dropped; the SVG or PNG stays.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged: list[nbformat.NotebookNode] = []
        for out in cell.outputs:
            prev = merged[-1] if merged else None
            if (
                out.output_type == "stream"
                and prev is not None
                and prev.output_type == "stream"
                and prev.name == out.name
            ):
                prev.text += out.text
                continue
            data = out.get("data", {})
            if ("image/svg+xml" in data or "image/png" in data) and ADDRESS.search(
                data.get("text/plain", "")
            ):
                del data["text/plain"]
            merged.append(out)
        cell.outputs = merged
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="build only notebooks whose name contains this")
    parser.add_argument("--no-execute", action="store_true", help="write the cells, no outputs")
    args = parser.parse_args(argv)
    names = [n for n in NOTEBOOKS if not args.only or any(s in n for s in args.only)]
    if not names:
        parser.error(f"no notebook matches {args.only}; choose from {list(NOTEBOOKS)}")
    for name in names:
        nb = build(name)
        if not args.no_execute:
            tidy(execute(nb, HERE))
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote notebooks/{name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
