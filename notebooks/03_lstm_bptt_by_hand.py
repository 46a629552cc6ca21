# %% [markdown]
# # 3. The LSTM: BPTT by hand, next to autograd
#
# Seed 004 derives the backward pass of an LSTM and implements it in numpy, one step
# at a time, carrying two vectors backwards: `dh_next` and `dc_next`. This notebook
# runs that recursion next to the autograd engine and shows that $\partial L/\partial
# h_t$, $\partial L/\partial c_t$, $\partial L / \partial x_t$ and every parameter
# gradient agree to rounding error. Then section 5 of the spec: seed 001's LSTM
# trained with a squared error on the hidden state itself.
#
# ## The model, in seed 004's notation
#
# **Row vectors**, as in the document: $x_t \in \mathbb{R}^{1 \times D}$,
# $h_t, c_t \in \mathbb{R}^{1 \times H}$, and the gates read the concatenation
# $z_t = [h_{t-1}, x_t] \in \mathbb{R}^{1 \times (H + D)}$ (hidden state first):
#
# $$f_t = \sigma(z_t W_f + b_f), \quad i_t = \sigma(z_t W_i + b_i), \quad
# \tilde c_t = \tanh(z_t W_c + b_c), \quad o_t = \sigma(z_t W_o + b_o),$$
# $$c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t, \qquad h_t = o_t \odot \tanh(c_t),$$
# $$y_t = h_t W_y + b_y, \qquad p_t = \operatorname{softmax}(y_t), \qquad
# L = \sum_t -\log p_t[\text{target}_t] .$$
#
# The gate weights $W_f, W_i, W_c, W_o$ are $(H + D) \times H$, the output layer
# $W_y$ is $H \times K$. The document predicts the next symbol of a text, so the inputs
# are one-hot vectors and $K = D$.

# %%
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


# %% [markdown]
# The data: the characters of `"hello world"`, each predicting the next one. The
# parameters are initialised as in seed 004, $W_* \sim \mathcal N(0,1)/\sqrt{Z/2}$
# with $Z = H + D$ and $W_y \sim \mathcal N(0,1)/\sqrt{D/2}$, plus random biases (the
# document's are zero) so that every bias path is tested.

# %%
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

# %% [markdown]
# ## Forward pass by hand
#
# Each row of the arrays below is one step; the backward pass needs all of them.

# %%
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

# %% [markdown]
# ## The same LSTM with autograd
#
# `nn.lstm_from_document` builds an `nn.LSTMCell` and an `nn.Linear` head from these
# parameters. The cell uses PyTorch's layout: gate order $(i, f, g, o)$, where
# PyTorch's $g$ is the document's candidate $\tilde c$, and separate input and hidden
# weights; the document's $W_g$ acting on $[h, x]$ is
# $\big[W_{hh,g}^\top;\ W_{ih,g}^\top\big]$, hidden rows first.
#
# `nn.unroll` returns the pair $(h_t, c_t)$ of every step — the graph's own tensors —
# so `tg.grad` gives the **total** $\partial L / \partial h_t$ and $\partial L /
# \partial c_t$ (through every later step). The inputs `xs` require a gradient too, to
# compare $\partial L / \partial x_t$.

# %%
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

# %% [markdown]
# ## Backward pass by hand: seed 004's recursion
#
# From the last step down, carrying $dh_{\text{next}}$ and $dc_{\text{next}}$ (both 0
# at the end). $dh^{\text{out}}_t$ is what the output layer sends into $h_t$; for the
# softmax output it is $dy_t W_y^\top$ with $dy_t = p_t - \operatorname{onehot}
# (\text{target}_t)$:
#
# $$
# \begin{aligned}
# dh &= dh^{\text{out}}_t + dh_{\text{next}}
#     && \text{total } \partial L / \partial h_t \\
# do &= dh \odot \tanh(c_t) \odot o_t (1 - o_t) \\
# dc &= dh \odot o_t \odot (1 - \tanh^2 c_t) + dc_{\text{next}}
#     && \text{total } \partial L / \partial c_t \\
# df &= dc \odot c_{t-1} \odot f_t (1 - f_t), \quad
# di = dc \odot \tilde c_t \odot i_t (1 - i_t), \quad
# d\tilde c = dc \odot i_t \odot (1 - \tilde c_t^2) \\
# dW_g &\mathrel{+}= z_t^\top dg, \quad db_g \mathrel{+}= dg
#     && g \in \{f, i, \tilde c, o\} \\
# dz &= df\, W_f^\top + di\, W_i^\top + d\tilde c\, W_c^\top + do\, W_o^\top \\
# dh_{\text{next}} &= dz_{[:H]}, \qquad \partial L / \partial x_t = dz_{[H:]}, \qquad
# dc_{\text{next}} = f_t \odot dc
# \end{aligned}
# $$
#
# The function takes $dh^{\text{out}}$ as an argument so that section 5 can reuse it.

# %%
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

# %% [markdown]
# ## Step by step against autograd
#
# The totals $dh$ and $dc$ of every step, and $\partial L / \partial x_t$ (relative
# errors as in notebook 2: about $10^{-16}$ is rounding):

# %%
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

# %% [markdown]
# ## Parameter gradients: by hand, `reference.lstm_bptt`, autograd
#
# `nn.lstm_grads_to_document` rearranges the cell's gradients into seed 004's layout
# (the map from one layout to the other is linear, so gradients move exactly like the
# weights). `reference.lstm_bptt` is the package's own hand-written closed form.

# %%
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

# %% [markdown]
# Note the line `dc_next = f_t ⊙ dc` of the recursion: along the cell state, the
# gradient is multiplied by nothing but the forget gate — no weight matrix, no
# saturating derivative. This is why an LSTM can carry gradients over long spans when
# $f_t \approx 1$; notebook 4 measures it.
#
# # Section 5: squared error on the hidden state (seed 001)
#
# Seed 001 trains the LSTM with no output layer and the loss
# $l(t) = \lVert h_t - y_t \rVert^2$ on the hidden state itself. It introduces
# $L(t) = \sum_{s \ge t} l(s)$, the loss from step $t$ to the end, and writes the
# recursion
#
# $$\frac{\partial L(t)}{\partial h_t} = \frac{\partial l(t)}{\partial h_t}
# + \frac{\partial L(t+1)}{\partial h_t},$$
#
# because $h_t$ cannot affect the losses before $t$. In the recursion above this only
# changes what enters at each step: $dh^{\text{out}}_t = 2(h_t - y_t)$.

# %%
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

# %% [markdown]
# Seed 001's recursion, checked with autograd alone: for each $t$, `tg.grad` computes
# $\partial L(t) / \partial h_t$, $\partial L(t+1) / \partial h_t$ and the total
# $\partial L / \partial h_t$ directly from the graph.

# %%
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

# %% [markdown]
# And the parameter gradients of section 5: by hand, by `reference.lstm_hidden_mse_bptt`
# and by autograd.

# %%
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

# %% [markdown]
# ## Summary
#
# Seed 004's recursion with `dh_next` and `dc_next` is exactly reverse-mode
# differentiation of the LSTM: every total derivative along the way, and every
# parameter gradient, matches the engine to about $10^{-16}$. Seed 001's squared-error
# variant is the same recursion fed with $2(h_t - y_t)$, and its formula
# $\partial L(t)/\partial h_t = \partial l(t)/\partial h_t + \partial L(t+1)/\partial
# h_t$ holds step by step.
