# %% [markdown]
# # 2. The vanilla RNN: BPTT by hand, next to autograd
#
# Seeds 000, 002 and 003 (Chinese blog posts on RNN backpropagation) derive the
# gradients of a vanilla RNN in closed form. This notebook runs their formulas step
# by step in plain numpy, right next to the autograd engine, and shows that every
# intermediate quantity agrees to rounding error; then it demonstrates, with numbers,
# each erratum the formulas contain as printed (spec §1).
#
# ## The model, in the documents' notation
#
# Column vectors, as in the documents. At step $t$ the input is $x_t \in \mathbb{R}^D$,
# the hidden state $s_t \in \mathbb{R}^H$, the output $o_t \in \mathbb{R}^K$, and the
# class $y_t \in \{0, \dots, K-1\}$:
#
# $$a_t = b + W s_{t-1} + U x_t, \qquad s_t = \tanh(a_t), \qquad
# o_t = c + V s_t, \qquad \hat y_t = \operatorname{softmax}(o_t),$$
# $$L = \sum_t L_t, \qquad L_t = -\log \hat y_t[y_t], \qquad s_{-1} = s_0 = 0 .$$
#
# | symbol | shape | role |
# | --- | --- | --- |
# | $U$ | $H \times D$ | input → hidden |
# | $W$ | $H \times H$ | hidden → hidden (the recurrence) |
# | $V$ | $K \times H$ | hidden → output |
# | $b$, $c$ | $H$, $K$ | biases |
#
# The weights are shared by all steps, so each gradient is a **sum over time** of
# per-step contributions.

# %%
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


# %% [markdown]
# A small problem: $D = 3$ inputs, $H = 4$ hidden units, $K = 5$ classes, $T = 6$
# steps, one sequence. `reference.init_rnn_params` draws the weights as min-char-rnn
# does, $\mathcal N(0, 1) \cdot \text{scale}$; we take scale 0.5 rather than
# min-char-rnn's 0.01 so that the states use the non-linear part of $\tanh$ and every
# number below is of a readable size, and random biases so the bias paths are tested.

# %%
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

# %% [markdown]
# ## Forward pass by hand
#
# The equations above, one line each, in numpy:

# %%
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


# %% [markdown]
# ## The same network, with autograd — two ways
#
# **(a) The equations themselves, written with Tensors.** This keeps a handle on every
# $a_t$, $s_t$ and $o_t$, so `tg.grad` can return $\partial L / \partial a_t$ (which
# is $\delta_t$), $\partial L / \partial s_t$ and $\partial L / \partial o_t$ at every
# step. `tg.grad` gives the **total** derivative: for $s_t$ it sums the path through
# $o_t$ and the path through $a_{t+1}$ and everything after it.


# %%
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

# %% [markdown]
# **(b) The library's modules.** `nn.rnn_from_document` builds an `nn.RNNCell` and an
# `nn.Linear` head holding exactly $U, W, b$ and $V, c$ (PyTorch's layout:
# `weight_ih` $= U$, `weight_hh` $= W$, `bias_ih` $= b$, `bias_hh` $= 0$).
# `nn.unroll` runs the cell over the sequence and returns the graph's own state tensors
# $s_0, \dots, s_{T-1}$ (each of shape `(batch, H)`; here the batch is one sequence).
# After `backward`, `nn.rnn_grads_to_document` reads the module gradients back in the
# documents' layout.

# %%
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

# %% [markdown]
# ## Backward pass by hand: the closed-form BPTT
#
# With the error term $\delta_t = \partial L / \partial a_t$ (seed 002), going from the
# last step $t = T-1$ down to $0$:
#
# $$\frac{\partial L}{\partial o_t} = \hat y_t - \operatorname{onehot}(y_t), \qquad
# \frac{\partial L}{\partial s_t} = V^\top \frac{\partial L}{\partial o_t}
# + W^\top \delta_{t+1}, \qquad
# \delta_t = (1 - s_t^2) \odot \frac{\partial L}{\partial s_t},$$
#
# with $W^\top \delta_{T} = 0$ after the last step (seed 003 calls this vector
# `dhnext`). The parameter gradients sum the per-step terms:
#
# $$\frac{\partial L}{\partial c} = \sum_t \frac{\partial L}{\partial o_t}, \quad
# \frac{\partial L}{\partial V} = \sum_t \frac{\partial L}{\partial o_t} s_t^\top, \quad
# \frac{\partial L}{\partial b} = \sum_t \delta_t, \quad
# \frac{\partial L}{\partial W} = \sum_t \delta_t s_{t-1}^\top, \quad
# \frac{\partial L}{\partial U} = \sum_t \delta_t x_t^\top, \quad
# \frac{\partial L}{\partial s_0} = W^\top \delta_0 .$$

# %%
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

# %% [markdown]
# ## Step by step: the closed form against autograd
#
# For every step, the norm of each hand-computed vector and its relative error
# $\max|\text{hand} - \text{autograd}| / \max|\text{autograd}|$ against autograd
# (a); the last column compares $\partial L / \partial s_t$ with the library's
# `RNNCell` (b). An error around $10^{-16}$ is float64 rounding: the two compute the
# same numbers in a different order.

# %%
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

# %% [markdown]
# ## The parameter gradients: by hand, `reference.rnn_bptt`, autograd
#
# `tinygrad_rnn.reference.rnn_bptt` is the package's own hand-written closed form (the
# oracle of its test suite; batched, so `x` becomes `(T, 1, D)`). All three agree, and
# a finite-difference `gradcheck` of the Tensor forward confirms autograd
# independently of any derivative rule.

# %%
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


# %% [markdown]
# # The documents' errata (spec §1)
#
# The formulas above are the *corrected* ones. As printed, the documents contain five
# mistakes. `tinygrad_rnn.reference.errata` evaluates each printed form as literally
# as its shapes allow, so we can watch it disagree with autograd (or fail to evaluate).
# For the comparisons we wrap part (b) above in a function:


# %%
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

# %% [markdown]
# ## Erratum 1 — seed 000's output layer uses $U$
#
# Printed: $o_t = c + U s_t$. Correct: $o_t = c + V s_t$. $U$ is the *input* weight
# ($H \times D$): $U s_t$ needs $D = H$ and adding $c$ needs $K = H$. With our sizes
# ($D=3, H=4, K=5$) the printed form cannot even be evaluated; on a square problem
# ($D = H = K = 4$) it evaluates, to the wrong numbers.

# %%
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

# %% [markdown]
# ## Erratum 2 — seed 000's $\nabla_b L$ multiplies the wrong vector
#
# Printed: $\nabla_b L = \sum_t \operatorname{diag}(1 - s_t^2)\, \nabla_{o_t} L$.
# Correct: $\nabla_b L = \sum_t (1 - s_t^2) \odot \nabla_{s_t} L = \sum_t \delta_t$.
# An $H \times H$ diagonal times a $K$-vector: with $K \ne H$ the shapes do not match;
# with $K = H$ it evaluates to a different vector.

# %%
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

# %% [markdown]
# ## Erratum 3 — seed 000's $\nabla_{o_t} L$ is garbled
#
# Printed: $\nabla_{o_t} L = y_t * \hat y_t - I_{i=j} * y_t$, which has no unambiguous
# reading (so `errata` has no function for it). For softmax with cross-entropy,
# $\partial(-\log \hat y[y]) / \partial o_j = \hat y_j - [j = y]$, i.e.
# $\hat y_t - \operatorname{onehot}(y_t)$: the first column of the step table above
# already showed it equal to autograd at every step. At $t = 0$:

# %%
print("ŷ_0            :", y_hat[0])
print("onehot(y_0)    :", np.eye(K)[y[0]])
print("ŷ_0 - onehot   :", y_hat[0] - np.eye(K)[y[0]])
print("autograd ∂L/∂o_0:", do_ag[0])

# %% [markdown]
# ## Erratum 4 — seed 000's recursion puts the $\tanh'$ factor after $W^\top$
#
# Printed: $\nabla_{s_t} L = W^\top \nabla_{s_{t+1}} L\, \operatorname{diag}(1 -
# s_{t+1}^2) + V^\top \nabla_{o_t} L$, read (as its order suggests) as
# $(W^\top \nabla_{s_{t+1}} L) \odot (1 - s_{t+1}^2)$. Correct:
# $W^\top \big((1 - s_{t+1}^2) \odot \nabla_{s_{t+1}} L\big) = W^\top \delta_{t+1}$: the
# derivative of $\tanh$ at step $t+1$ must be applied *before* going back through $W$.
# The two agree only when the diagonal commutes with $W^\top$, e.g. $H = 1$.

# %%
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

# %% [markdown]
# ## Erratum 5 — seed 002 updates the weights inside the backward loop
#
# Seed 002's algorithm: forward over all steps; compute the output layer's gradients
# and **update** $V, c$; then for $t = T, \dots, 1$: compute $\delta_t$, compute the
# recurrent gradients from it, and **update** $U, W, b$ — so each later $\delta_t$ is
# computed with the already-updated $V$ and $W$. The sum of these updates is not
# $-\eta\, \partial L / \partial \theta$. The correct step computes every $\delta_t$
# with the forward pass's weights, then updates once: $\theta - \eta\,\partial L /
# \partial\theta$.
#
# The two differ at order $\eta^2$ (each later $\delta_t$ sees weights changed by
# $O(\eta)$, and is then multiplied by $\eta$): dividing the difference by $\eta^2$
# gives a roughly constant number. $V$ and $c$ are updated once, before the loop,
# so they agree up to rounding.

# %%
rows = []
for lr in (1e-1, 1e-2, 1e-3):
    printed = errata.seed002_update_in_loop(*batched(x, y, s0), **params, lr=lr)
    diffs = {k: np.max(np.abs(printed[k] - (params[k] - lr * g_ag[k]))) for k in params}
    worst = max(diffs.values())
    rows.append((lr, *(f"{diffs[k]:.1e}" for k in params), f"{worst / lr**2:.3f}"))
table(["η", *(f"max diff {k}" for k in params), "max diff / η²"], rows)

# %% [markdown]
# ## Summary
#
# * Every intermediate of the closed-form BPTT — $\partial L/\partial o_t$,
#   $\partial L/\partial s_t$, $\delta_t$ — and every parameter gradient equals what the
#   autograd engine computes, to about $10^{-16}$, both on the equations written with
#   Tensors and on the library's `RNNCell`.
# * Of the printed formulas: seed 000's output layer and bias gradient do not even
#   have matching shapes in general, its $\nabla_{o_t} L$ is garbled, its recursion
#   applies $\tanh'$ at the wrong place (invisible only when $H = 1$), and seed 002's
#   update-in-the-loop is not a gradient step (off by $O(\eta^2)$).
#
# Notebook 3 does the same for seed 004's LSTM.
