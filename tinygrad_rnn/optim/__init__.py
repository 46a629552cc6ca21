"""Optimizers, learning-rate schedules and gradient clipping with PyTorch's API, computed
with numpy.

An optimizer takes an iterable of parameters (leaf Tensors with
``requires_grad=True``, such as ``nn.Parameter``), or a list of parameter groups, and each
[`Optimizer.step`][tinygrad_rnn.optim.Optimizer.step] moves every parameter that has a gradient;
parameters whose ``grad`` is None are skipped. A typical loop::

    opt = AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=n_steps)
    for batch in data:
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=5.0)
        opt.step()
        sched.step()

Contents: [`SGD`][tinygrad_rnn.optim.SGD], [`Adagrad`][tinygrad_rnn.optim.Adagrad] (min-char-rnn's),
[`RMSProp`][tinygrad_rnn.optim.RMSProp], [`Adam`][tinygrad_rnn.optim.Adam],
[`AdamW`][tinygrad_rnn.optim.AdamW] and their base [`Optimizer`][tinygrad_rnn.optim.Optimizer];
the schedulers of [`tinygrad_rnn.optim.lr_scheduler`][tinygrad_rnn.optim.lr_scheduler]; the
clipping functions [`clip_grad_norm_`][tinygrad_rnn.optim.clip_grad_norm_] and
[`clip_grad_value_`][tinygrad_rnn.optim.clip_grad_value_].

Parameter groups
----------------
As in PyTorch, ``params`` may be a list of dicts, each with its own hyperparameters; the
keyword arguments are the defaults for what a group leaves out::

    opt = SGD([{"params": rnn.parameters(), "lr": 0.1}, {"params": head.parameters()}],
              lr=0.01, momentum=0.9)

``opt.param_groups`` is that list of dicts (``"params"`` and every hyperparameter);
changing ``opt.param_groups[i]["lr"]`` changes that group's learning rate from the next step
on, which is what the schedulers do. ``opt.add_param_group({...})`` adds a group later.
A parameter may be in one group only; a group key that is not a hyperparameter of the
optimizer (a typo such as ``"learning_rate"``) is an error.

Safe by design
--------------
Nothing here writes into an array that a recorded graph may hold:

* ``step()`` gives each parameter a *new* array, ``p.data = p.data - lr * update``,
  never ``p.data -= ...``. A graph built before the step saved the old array, so
  a ``backward`` run after the step still uses the values the forward saw.
* ``step()`` reads ``p.grad`` and never writes into it.
* [`clip_grad_norm_`][tinygrad_rnn.optim.clip_grad_norm_] and
  [`clip_grad_value_`][tinygrad_rnn.optim.clip_grad_value_] replace ``p.grad`` with a new Tensor
  wrapping a new array; the old gradient array (which the caller may still hold, or the engine may
  have given to several leaves at once) is left as it was.

The only arrays updated in place are the optimizer's own state (momentum
buffers, moment estimates, accumulators). They are never handed out:
[`Optimizer.state_dict`][tinygrad_rnn.optim.Optimizer.state_dict] returns copies and
[`Optimizer.load_state_dict`][tinygrad_rnn.optim.Optimizer.load_state_dict] copies what it is given.

dtypes
------
A float32 parameter stays float32: hyperparameters are stored as Python floats
(a numpy float64 ``lr`` would upcast a float32 array under numpy 2; ``step()`` converts
what a user put into a group), state arrays have the parameter's dtype, a gradient of
another dtype is cast to the parameter's, and bias corrections are Python floats.

Checkpoints
-----------
[`Optimizer.state_dict`][tinygrad_rnn.optim.Optimizer.state_dict] is a flat
``dict[str, np.ndarray]`` that ``np.savez`` can store and ``np.load(..., allow_pickle=False)`` can
read back: ``"step"`` (calls of ``step()`` so far); for each group ``g``,
``"param_groups.<g>.params"`` (the positions of its parameters) and
``"param_groups.<g>.<name>"`` for each hyperparameter (``"param_groups.0.lr"``, ... as 0-d
arrays; ``betas`` has shape (2,)); and ``"state.<i>.<name>"`` for the state of the
``i``-th parameter (e.g. ``"state.0.m"``). The schedulers' state dicts are flat dicts of
arrays too, so one checkpoint holds model, optimizer and scheduler.
"""

from tinygrad_rnn.optim import lr_scheduler
from tinygrad_rnn.optim.clipping import clip_grad_norm_, clip_grad_value_
from tinygrad_rnn.optim.optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSProp

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSProp",
    "clip_grad_norm_",
    "clip_grad_value_",
    "lr_scheduler",
]
