# %% [markdown]
# # 1. Autograd basics: tensors, backward, gradcheck, higher order, the graph
#
# This is the first of five notebooks about **backpropagation through time** (BPTT) with
# `tinygrad_rnn`, a reverse-mode automatic-differentiation engine written from scratch
# on numpy. Notebooks 2 and 3 prove that its gradients of a vanilla RNN and of an LSTM
# equal the closed-form BPTT formulas of the source documents; notebook 4 looks at
# vanishing and exploding gradients; notebook 5 trains networks. This one introduces
# the engine itself.
#
# **Reverse mode in one paragraph.** Every operation on a tensor that requires a
# gradient records a *node*: which primitive ran, on which inputs. `loss.backward()`
# then visits the recorded graph from the loss back to the leaves, in reverse
# topological order, and applies the chain rule at each node. For a node
# $y = f(x_1, \dots, x_n)$ that has received $\bar y = \partial L / \partial y$, the
# rule of input $k$ adds a **vector–Jacobian product** to that input's gradient:
#
# $$\bar x_k \mathrel{+}= \Big(\frac{\partial y}{\partial x_k}\Big)^{\!\top} \bar y .$$
#
# The Jacobian is never formed: each primitive's rule computes the product directly
# (for `tanh`, $\bar x = \bar y \odot (1 - y^2)$). How the engine does this is
# described in `docs/design.md`.

# %%
import numpy as np
from IPython.display import display

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.autograd import Primitive

np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)
print("tinygrad_rnn", tg.__version__, "| numpy", np.__version__)

# %% [markdown]
# ## Tensors and ops
#
# `tg.Tensor(data, requires_grad=True)` copies `data` into a numpy array (`.data`;
# Python floats become float64). Every op on it returns a new tensor that remembers the
# op that made it (`op=...` in its repr). Tensors that no op made are **leaves**: that
# is where `backward` stores gradients, in `.grad`.

# %%
x = tg.Tensor([1.0, -2.0, 3.0], requires_grad=True, name="x")
y = (x * x).sum()
print(x)
print(y)
print("y.op =", y.op, "| x.is_leaf =", x.is_leaf, "| y.is_leaf =", y.is_leaf)

# %% [markdown]
# $y = \sum_i x_i^2$, so $\partial y / \partial x_i = 2 x_i$. `backward()` starts from
# $\bar y = 1$ (a one-element output needs no upstream gradient) and fills `x.grad`:

# %%
y.backward()
print("x.grad =", x.grad)
print("equals 2x:", np.array_equal(x.grad.data, 2 * x.data))

# %% [markdown]
# ## A layer, by hand and by autograd
#
# Take one layer $H = \tanh(XW + b)$ on a batch $X$ (4 rows, 3 features, 5 units) and
# the loss $L = \sum_{ij} H_{ij}^2$. The chain rule, written backwards from $L$:
#
# $$\bar H = 2H, \qquad \bar A = \bar H \odot (1 - H^2) \quad (A = XW + b),$$
# $$\bar W = X^\top \bar A, \qquad \bar b = \textstyle\sum_{\text{rows}} \bar A,
# \qquad \bar X = \bar A\, W^\top .$$
#
# Autograd must give exactly these arrays (up to rounding, ~1e-16).

# %%
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

# %% [markdown]
# ## Gradients accumulate, graphs are freed
#
# Two things behave as in PyTorch:
#
# * `backward` **adds** into `.grad`, so the gradients of two losses sum up. Clear
#   them with `zero_grad()` (optimizers do this for every parameter).
# * After `backward` the graph's saved arrays are **freed**, to release memory as early
#   as possible. A second `backward` through the same graph is an error, unless the
#   first one was called with `retain_graph=True`.

# %%
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

# %% [markdown]
# ## `tg.grad`: gradients of any tensor, returned instead of accumulated
#
# `tg.grad(outputs, inputs)` walks the same graph but *returns* the gradients of
# `inputs`, which may be intermediate tensors (leaves' `.grad` is left alone). This is
# how the next notebooks read $\partial L / \partial s_t$ and
# $\delta_t = \partial L / \partial a_t$ at every time step. Here: $\bar A$ from above.

# %%
A = X @ W + b
L = (A.tanh() ** 2).sum()
(A_bar_autograd,) = tg.grad(L, [A])
diff = np.max(np.abs(A_bar_autograd.data - A_bar))
print(f"max |dL/dA (tg.grad) - dL/dA (by hand)| = {diff:.1e}")


# %% [markdown]
# ## `gradcheck`: autograd against finite differences
#
# The central difference
# $\frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon}$ approximates
# $\partial f / \partial x_i$ with an error of order $\epsilon^2$, independently of any
# derivative rule. `tg.gradcheck(fn, inputs)` reduces the outputs of `fn` to one number
# with fixed random weights $v$ (so one backward pass tests the whole vector–Jacobian
# product $J^\top v$), perturbs every input entry in turn (float64 is required), and
# returns `True` or raises `GradcheckError` naming the worst entry.


# %%
def layer(X, W, b):
    return (X @ W + b).tanh()


print("gradcheck(layer):", tg.gradcheck(layer, [X, W, b]))

# %% [markdown]
# A new primitive is declared with its numpy forward and one derivative rule per input,
# `rule(g, ans, x)`: `g` is the upstream gradient, `ans` the forward's output. Below,
# `my_tanh` has the right rule $g\,(1 - y)(1 + y)$, and `bad_tanh` the classic slip
# $g\,(1 - y)$ (forgot the square). `gradcheck` passes the first and catches the second:

# %%
my_tanh = Primitive("my_tanh", np.tanh, lambda g, ans, x: g * (1 - ans) * (1 + ans))
bad_tanh = Primitive("bad_tanh", np.tanh, lambda g, ans, x: g * (1 - ans))

print("my_tanh :", tg.gradcheck(lambda X: my_tanh(X), [X]))
try:
    tg.gradcheck(lambda X: bad_tanh(X), [X])
except tg.GradcheckError as err:
    print("bad_tanh: GradcheckError:", err)

# %% [markdown]
# ## Higher-order derivatives: `create_graph=True`
#
# A derivative rule is written with the engine's own ops, so when the backward pass
# runs with `create_graph=True` the rule's computations are *recorded* like any
# other, and the gradient it returns can be differentiated again. For $f(x) = x^3$:
# $f'(x) = 3x^2$ and $f''(x) = 6x$.

# %%
x = tg.Tensor([0.5, -1.0, 2.0], requires_grad=True)
(d1,) = tg.grad((x**3).sum(), [x], create_graph=True)
(d2,) = tg.grad(d1.sum(), [x])
print("f'(x)  =", d1.data, " 3x^2 =", 3 * x.data**2)
print("f''(x) =", d2.data, " 6x   =", 6 * x.data)

# %% [markdown]
# ### A Hessian–vector product
#
# For a scalar $f(x)$ the Hessian–vector product $Hv$ is the gradient of
# $\nabla f(x) \cdot v$: two backward passes, and the $n \times n$ Hessian is never
# formed. Take $f(x) = \sum_i \tanh(Ax)_i$ with $A$ of size $4 \times 3$ and
# $t = \tanh(Ax)$. Then
#
# $$\nabla f = A^\top (1 - t^2), \qquad
# H = A^\top \operatorname{diag}\!\big(-2t \odot (1 - t^2)\big) A .$$
#
# We compare autograd's $Hv$ with this closed form and with a finite difference of
# gradients, $\big(\nabla f(x + \epsilon v) - \nabla f(x - \epsilon v)\big) / 2\epsilon$.

# %%
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

# %%
print("gradgradcheck(layer):", tg.gradgradcheck(layer, [X, W, b]))

# %% [markdown]
# ## The graph picture
#
# `viz.draw_graph(t)` draws the graph behind a tensor: yellow ellipses are ops, white
# rounded boxes intermediate tensors (shape, dtype), blue boxes leaves that require a
# gradient, the orange box the output. The result is a `graphviz.Digraph`, which
# Jupyter draws inline (rendering needs Graphviz's `dot` program). Here is
# $\tanh(XW + b)$:

# %%
graph = viz.draw_graph((X @ W + b).tanh(), title="tanh(X @ W + b)")
display(graph)

# %% [markdown]
# The DOT text behind the picture needs nothing installed: `graph.source`. The drawing
# is also available as Python objects in `graph.model` (nodes, edges, boxes), which is
# handy in tests:

# %%
print(graph.source)
m = graph.model
print(f"{len(m.of_kind('op'))} ops, {len(m.nodes)} nodes, {len(m.edges)} edges")

# %% [markdown]
# With `show_values=True, show_grads=True` each tensor also shows
# `min / mean / max` of its values and the norm of its gradient, after a
# `backward(retain_graph=True)` (the graph must still be in memory to be drawn). The
# chain rule can be followed by eye: the gradient reaching the `tanh` output is
# $2H$, the one leaving it $2H \odot (1 - H^2)$.

# %%
for leaf in (X, W, b):
    leaf.zero_grad()  # .grad still holds the first backward's result: start afresh
L = ((X @ W + b).tanh() ** 2).sum()
L.backward(retain_graph=True)
viz.draw_graph(L, show_values=True, show_grads=True)

# %% [markdown]
# ## What next
#
# That is the whole engine: tensors that record, rules that compute vector–Jacobian
# products, a backward walk that sums them, and the same rules reused for higher
# orders. Notebook 2 applies it to a recurrent network unrolled over time and compares
# every intermediate gradient with the documents' closed-form BPTT.
