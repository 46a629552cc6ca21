"""Models, the training loop, sampling and plots behind ``tinygrad-rnn train``.

Everything the console script does is a plain function here, so a notebook can do
the same thing without a subprocess::

    from tinygrad_rnn import training

    config = training.resolve_config("adding", seq_len=30, steps=500)
    result = training.train(config, out_dir="runs/adding-lstm")
    result.final_metric, result.baseline          # test MSE vs 1/6

The model is one recurrent layer stack ([`RNN`][tinygrad_rnn.nn.RNN], ``LSTM`` or
``GRU``) and a [`Linear`][tinygrad_rnn.nn.Linear] head (`SequenceModel`). Each
task (`tinygrad_rnn.tasks`) supplies batches, a loss and a held-out metric in
the units of its baseline, so every loss curve has a horizontal line to beat.

Plots use matplotlib's Agg canvas directly (no ``pyplot``), so importing or calling
this module never changes the matplotlib backend of a notebook.
"""

from tinygrad_rnn.training.checkpoints import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
from tinygrad_rnn.training.checkpoints import Checkpoint, load_checkpoint
from tinygrad_rnn.training.config import (
    CELLS,
    INITS,
    OPTIMIZERS,
    TASKS,
    TrainConfig,
    resolve_config,
)
from tinygrad_rnn.training.config import DTYPES as DTYPES
from tinygrad_rnn.training.gradients import gradient_profile
from tinygrad_rnn.training.history import History
from tinygrad_rnn.training.loop import TrainingError, TrainResult, format_loss, train
from tinygrad_rnn.training.model import SequenceModel, apply_init, build_model, make_optimizer
from tinygrad_rnn.training.plots import plot_gradient_profiles, plot_history, plot_runs
from tinygrad_rnn.training.sampling import sample_chars
from tinygrad_rnn.training.schedules import SCHEDULES, Schedule, make_schedule

__all__ = [
    "CELLS",
    "INITS",
    "OPTIMIZERS",
    "SCHEDULES",
    "TASKS",
    "Checkpoint",
    "History",
    "Schedule",
    "SequenceModel",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "apply_init",
    "build_model",
    "format_loss",
    "gradient_profile",
    "load_checkpoint",
    "make_optimizer",
    "make_schedule",
    "plot_gradient_profiles",
    "plot_history",
    "plot_runs",
    "resolve_config",
    "sample_chars",
    "train",
]
