"""The model trained (a recurrent stack and a linear head) and its optimizer."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_rnn import nn, optim
from tinygrad_rnn.tensor import Tensor
from tinygrad_rnn.training.config import CELLS, INITS, OPTIMIZERS, TrainConfig


# ------------------------------------------------------------------------------- model
class SequenceModel(nn.Module):
    """A recurrent stack and a linear head: ``(T, B, D) -> (T, B, O)`` (or ``(B, O)``).

    Attributes:
        rnn: ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` with ``layers`` layers of ``hidden`` units.
        head: ``nn.Linear(hidden, output_size)``.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden: int,
        output_size: int,
        layers: int = 1,
        dtype: npt.DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        self.cell = cell
        self.rnn = CELLS[cell](input_size, hidden, num_layers=layers, dtype=dtype, rng=rng)
        self.head = nn.Linear(hidden, output_size, dtype=dtype, rng=rng)

    def forward(self, x: Any, state: Any = None, last_only: bool = False) -> tuple[Tensor, Any]:
        """Run the sequence.

        Args:
            x: ``(T, B, D)`` inputs.
            state: the initial state (None: zeros), as the layer takes it (LSTM: ``(h, c)``).
            last_only: apply the head to the last step only.

        Returns:
            ``(outputs, final_state)``: outputs ``(T, B, O)``, or ``(B, O)`` with ``last_only``.
        """
        out, final = self.rnn(x, state)
        return self.head(out[-1] if last_only else out), final

    def set_forget_bias(self, value: float) -> None:
        """Set the LSTM forget-gate bias of every layer to ``value`` (no-op for RNN/GRU).

        PyTorch's gate order is (i, f, g, o), so rows ``H:2H`` are the forget gate; the
        pre-activation adds ``b_ih + b_hh``, so ``b_ih`` gets ``value`` and ``b_hh`` 0.
        A bias of 1 keeps the cell state flowing at the start of training
        (Gers et al. 2000; Jozefowicz et al. 2015), which is what lets gradients reach
        far back before the gates have learned anything.
        """
        if self.cell != "lstm":
            return
        H = self.rnn.hidden_size
        for name, p in self.rnn.named_parameters():
            if name.startswith(("bias_ih", "bias_hh")):
                new = p.data.copy()  # a new array: never write into one a graph may hold
                new[H : 2 * H] = value if name.startswith("bias_ih") else 0.0
                p.data = new


def apply_init(model: SequenceModel, name: str, rng: np.random.Generator | None) -> None:
    """Re-initialise ``model`` as ``--init name`` says (``rng``: None for nn.init's generator).

    * ``default``: leave PyTorch's initialisation, U(-1/√H, 1/√H) for every weight and bias.
    * ``orthogonal``: every recurrent weight ``weight_hh_l*`` gets orthogonal gate blocks:
      each ``(H, H)`` block (one per gate: 1 for RNN, 4 for LSTM, 3 for GRU) is filled by
      [`orthogonal_`][tinygrad_rnn.nn.init.orthogonal_], so the recurrence of every gate
      preserves the norm of ``h`` at the start (Saxe et al. 2013). Other parameters keep
      the default.
    * ``xavier``: [`xavier_uniform_`][tinygrad_rnn.nn.init.xavier_uniform_] on every weight
      matrix (input, recurrent, head), zeros for every bias.

    The forget-gate bias of ``build_model`` is applied afterwards.
    """
    if name not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {name!r}")
    if name == "default":
        return
    H = model.rnn.hidden_size
    for pname, p in model.named_parameters():
        is_recurrent = pname.startswith("rnn.weight_hh")
        if name == "orthogonal" and is_recurrent:
            blocks = [
                Tensor(np.zeros((H, p.shape[1]), dtype=p.dtype)) for _ in range(p.shape[0] // H)
            ]
            for block in blocks:
                nn.init.orthogonal_(block, rng=rng)
            p.data = np.concatenate([block.data for block in blocks])
        elif name == "xavier":
            if p.ndim >= 2:
                nn.init.xavier_uniform_(p, rng=rng)
            else:
                nn.init.zeros_(p)


def build_model(
    config: TrainConfig, input_size: int, output_size: int, rng: np.random.Generator | None
) -> SequenceModel:
    """The model ``config`` describes (``init`` and ``forget_bias`` applied), initialised from
    ``rng``."""
    model = SequenceModel(
        config.cell,
        input_size,
        config.hidden,
        output_size,
        layers=config.layers,
        dtype=config.np_dtype,
        rng=rng,
    )
    apply_init(model, config.init, rng)
    if config.forget_bias is not None:
        model.set_forget_bias(config.forget_bias)
    return model


def make_optimizer(name: str, params: Any, lr: float) -> optim.Optimizer:
    """``adam`` / ``adagrad`` (min-char-rnn's) / ``sgd`` (plain, seed 002) / ``rmsprop``."""
    if name == "adam":
        return optim.Adam(params, lr=lr)
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr)
    if name == "sgd":
        return optim.SGD(params, lr=lr)
    if name == "rmsprop":
        return optim.RMSProp(params, lr=lr)
    raise ValueError(f"optim must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
