"""Spec §3, seed 001's five architectures, built from ``nn`` layers, against the closed form.

Only the set of steps carrying a loss changes between them (and, for the
encoder–decoder, where the gradient enters): one-to-one, one-to-many,
many-to-one, encoder–decoder, aligned many-to-many.
"""

from __future__ import annotations

import numpy as np
import pytest
from _models import assert_grads_equal, rel_error, rnn_grads_in_document_layout, stable_scale
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.reference import init_rnn_params, rnn_bptt

TOL = 1e-10
dims = st.integers(1, 10)


def _rnn_and_head(params: dict[str, np.ndarray]) -> tuple[nn.RNN, nn.Linear]:
    cell, head = nn.rnn_from_document(params, dtype=np.float64)
    layer = nn.RNN(cell.input_size, cell.hidden_size, dtype=np.float64)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    return layer, head


def _case(kind: str, T: int, B: int, D: int, rng: np.random.Generator):
    """Inputs and loss mask of each architecture (T steps, batch B)."""
    xs = rng.standard_normal((T, B, D))
    mask = np.ones((T, B))
    if kind == "one_to_one":
        xs, mask = xs[:1], mask[:1]
    elif kind == "one_to_many":  # one input, then nothing is fed; a loss at every step
        xs[1:] = 0.0
    elif kind == "many_to_one":  # a loss only at the last step
        mask[:-1] = 0.0
    return xs, mask


@pytest.mark.parametrize("kind", ["one_to_one", "one_to_many", "many_to_one", "many_to_many"])
@given(B=dims, D=dims, H=dims, K=dims, T=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_single_rnn_architectures(kind, B, D, H, K, T, seed) -> None:
    rng = np.random.default_rng(seed)
    params = init_rnn_params(D, H, K, rng, scale=stable_scale(H), random_biases=True)
    xs, mask = _case(kind, T, B, D, rng)
    targets = rng.integers(0, K, mask.shape)
    s0 = rng.standard_normal((B, H))
    ref = rnn_bptt(xs, targets, s0, **params, mask=mask)

    layer, head = _rnn_and_head(params)
    s0_t = tg.Tensor(s0[None], requires_grad=True)
    out, _ = layer(tg.Tensor(xs), s0_t)
    F.cross_entropy(head(out), targets, reduction="sum", mask=mask).backward()
    grads = rnn_grads_in_document_layout(layer, head, "_l0")
    grads["s0"] = s0_t.grad.data[0]
    assert_grads_equal(grads, ref.grads, TOL)


@given(
    B=dims,
    D_src=dims,
    D_tgt=dims,
    H=dims,
    K=dims,
    T_src=st.integers(1, 15),
    T_tgt=st.integers(1, 15),
    seed=st.integers(0, 2**32 - 1),
)
def test_encoder_decoder(B, D_src, D_tgt, H, K, T_src, T_tgt, seed) -> None:
    """The encoder's last state is the decoder's s0; losses only on the decoder's steps, so the
    encoder's whole gradient arrives through ∂L/∂s0 of the decoder (closed form: ds_last)."""
    rng = np.random.default_rng(seed)
    enc_p = init_rnn_params(D_src, H, 1, rng, scale=stable_scale(H), random_biases=True)
    dec_p = init_rnn_params(D_tgt, H, K, rng, scale=stable_scale(H), random_biases=True)
    src = rng.standard_normal((T_src, B, D_src))
    tgt_in = rng.standard_normal((T_tgt, B, D_tgt))
    targets = rng.integers(0, K, (T_tgt, B))
    s0 = rng.standard_normal((B, H))

    # Closed form: decoder first, then the encoder seeded with the decoder's ∂L/∂s0.
    enc_ref_fwd = rnn_bptt(src, np.zeros((T_src, B), int), s0, **enc_p, mask=np.zeros((T_src, B)))
    dec_ref = rnn_bptt(tgt_in, targets, enc_ref_fwd.hidden[-1], **dec_p)
    enc_ref = rnn_bptt(
        src,
        np.zeros((T_src, B), int),
        s0,
        **enc_p,
        mask=np.zeros((T_src, B)),
        ds_last=dec_ref.grads["s0"],
    )

    encoder, _ = _rnn_and_head(enc_p)
    decoder, head = _rnn_and_head(dec_p)
    s0_t = tg.Tensor(s0[None], requires_grad=True)
    _, h_src = encoder(tg.Tensor(src), s0_t)
    out, _ = decoder(tg.Tensor(tgt_in), h_src)
    loss = F.cross_entropy(head(out), targets, reduction="sum")
    loss.backward()

    assert abs(loss.item() - dec_ref.loss) <= TOL * max(1.0, dec_ref.loss)
    assert_grads_equal(rnn_grads_in_document_layout(decoder, head, "_l0"), dec_ref.grads, TOL)
    enc_grads = {
        "U": encoder.weight_ih_l0.grad.data,
        "W": encoder.weight_hh_l0.grad.data,
        "b": encoder.bias_ih_l0.grad.data,
    }
    assert_grads_equal(enc_grads, enc_ref.grads, TOL)
    assert rel_error(s0_t.grad.data[0], enc_ref.grads["s0"]) <= TOL
