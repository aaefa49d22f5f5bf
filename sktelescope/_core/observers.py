"""Training observers: the base class, early stopping, and stage recording.

An observer watches a :class:`~sktelescope._core.training.Trainer`: ``on_train_begin``
once (the trainer's module, optimizer, ``train_data``, ``total_steps`` and
``input_transform`` are set), ``on_step`` after every optimizer step, ``on_epoch_end``
after every pass over the data, ``on_train_end`` once with the result. Every hook is a
no-op by default, so an observer overrides only what it needs. Set the class attribute
``wants_previous_params = True`` to receive the parameters before each step in
``Step.params_before``. An observer ends the run with ``trainer.request_stop(reason)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from sktelescope._core.checkpoints import CheckpointStore
from sktelescope._core.layers import layer_generator_states
from sktelescope._core.network import flatten_parameters
from sktelescope._core.optim import record_preconditioner
from sktelescope._core.training import DivergenceError, Epoch, Step, TrainResult

__all__ = ["BestEpoch", "EarlyStopping", "Observer", "StageRecorder", "cpu_state_copy"]


class Observer:
    """Base class of training observers; every hook does nothing.

    Examples
    --------
    >>> class StepCounter(Observer):
    ...     def on_train_begin(self, trainer):
    ...         self.n = 0
    ...     def on_step(self, step):
    ...         self.n += 1
    >>> StepCounter().wants_previous_params
    False
    """

    wants_previous_params: bool = False

    def on_train_begin(self, trainer) -> None:
        """Called once before the first step."""

    def on_step(self, step: Step) -> None:
        """Called after every optimizer step."""

    def on_epoch_end(self, epoch: Epoch) -> None:
        """Called after every pass over the training data."""

    def on_train_end(self, trainer, result: TrainResult) -> None:
        """Called once after the last step (also after Ctrl-C)."""


def cpu_state_copy(state):
    """A deep copy of an optimizer ``state_dict`` (or any nest of dicts, lists and tensors)
    with every tensor detached and on the CPU.

    Examples
    --------
    >>> state = {"state": {0: {"step": torch.tensor(1.0)}}, "param_groups": [{"lr": 0.1}]}
    >>> cpu_state_copy(state)["state"][0]["step"] is state["state"][0]["step"]
    False
    """
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: cpu_state_copy(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(cpu_state_copy(v) for v in state)
    return copy.deepcopy(state)


@dataclass
class BestEpoch:
    """The state of a run at its best epoch: enough to keep it and to continue from it.

    ``params`` are the flat parameters after optimizer step ``step``; ``optimizer_state`` a CPU
    copy of the optimizer's ``state_dict`` and ``generator`` the batch-order generator's state
    at that moment (``layer_generators``: the dropout layers'), so a continued fit goes on
    exactly as if the run had stopped there.
    """

    step: int
    params: torch.Tensor
    optimizer_state: dict
    generator: torch.Tensor
    layer_generators: dict = field(default_factory=dict)


class EarlyStopping(Observer):
    """Stop when the score has not improved by more than ``tol`` for ``patience`` epochs.

    The score is minus the validation loss when ``validation`` tensors are given, else
    minus the epoch's mean training loss. With validation data the best epoch is kept
    (``best``: its parameters, optimizer and generator state) for the caller to restore;
    ``epoch.improved`` tells later observers that an epoch is the best so far. Put it first
    among observers.

    Parameters
    ----------
    patience : int or None
        Epochs without improvement before stopping; ``None`` never stops (scores are
        still recorded).
    tol : float
    validation : tuple of torch.Tensor, optional
        ``(X_val, Y_val, W_val)`` in network units.

    Examples
    --------
    >>> EarlyStopping(patience=10, tol=1e-4).restores_best
    False
    """

    def __init__(self, patience: int | None, tol: float, validation=None) -> None:
        self.patience, self.tol, self.validation = patience, float(tol), validation
        self.scores: list[float] = []
        self.best: BestEpoch | None = None
        self.converged = False

    @property
    def restores_best(self) -> bool:
        """Whether the best epoch's parameters are kept (validation data given)."""
        return self.validation is not None

    @property
    def best_step(self) -> int | None:
        """Optimizer step of the best epoch (``None`` without validation data)."""
        return None if self.best is None else self.best.step

    @property
    def best_params(self) -> torch.Tensor | None:
        """Flat parameters of the best epoch (``None`` without validation data)."""
        return None if self.best is None else self.best.params

    def on_epoch_end(self, epoch: Epoch) -> None:
        self.scores.append(self._score(epoch))
        if len(self.scores) == 1 or self.scores[-1] > max(self.scores[:-1]) + self.tol:
            epoch.improved = True
            if self.restores_best:
                trainer = epoch.trainer
                self.best = BestEpoch(
                    epoch.step, flatten_parameters(trainer.module),
                    cpu_state_copy(trainer.optimizer_state()), trainer.generator.get_state(),
                    layer_generator_states(trainer.module),
                )  # fmt: skip
        if self.patience is None or len(self.scores) <= self.patience:
            return
        recent, earlier = self.scores[-self.patience :], self.scores[: -self.patience]
        if max(recent) <= max(earlier) + self.tol:
            self.converged = True
            epoch.trainer.request_stop("converged")

    def _score(self, epoch: Epoch) -> float:
        if self.validation is None:
            return -epoch.train_loss
        trainer = epoch.trainer
        with torch.no_grad():
            loss = float(trainer.loss_fn(trainer.module(self.validation[0]), *self.validation[1:]))
        if not math.isfinite(loss):
            raise DivergenceError("non-finite validation loss")
        return -loss


class StageRecorder(Observer):
    """Fill a :class:`CheckpointStore` so the run ends with between ``max_stages // 2`` and
    ``max_stages`` stages, however long it turns out to be.

    A boundary is recorded every ``every`` steps (``k``, 1 by default). With ``thinning``,
    when the store would exceed ``max_stages`` stages, every other boundary is dropped and
    ``k`` doubles; a continued run passes the ``k`` its store reached. The end of the run
    (last step, or the restored best epoch under early stopping) is always a boundary.
    Without ``thinning`` (a ``stage_every`` chosen by the user) ``k`` stays fixed. The
    preconditioner of each stage is the one its first step applied.

    With early stopping the store is snapshotted at every improving epoch and restored at
    the end, so the kept run (up to the best step) has the same stage count guarantee;
    during the fit at most ``2 * max_stages + 2`` checkpoints are held.

    Examples
    --------
    >>> recorder = StageRecorder(CheckpointStore(), max_stages=4)
    >>> recorder.every
    1
    """

    def __init__(
        self,
        store: CheckpointStore,
        max_stages: int,
        every: int = 1,
        thinning: bool = True,
        early_stopping: EarlyStopping | None = None,
    ) -> None:
        self.store, self.max_stages = store, int(max_stages)
        self.every, self.thinning = int(every), bool(thinning)
        self.early_stopping = early_stopping
        self._best: tuple[CheckpointStore, int] | None = None
        self._pending_preconditioner = False

    def on_train_begin(self, trainer) -> None:
        if not self.store.steps:
            self.store.record(trainer.step, flatten_parameters(trainer.module))
        while self.thinning and self.store.n_stages > self.max_stages:
            self.store.thin()  # a continuation with a lower max_stages
            self.every *= 2
        self._pending_preconditioner = True

    def on_step(self, step: Step) -> None:
        if self._pending_preconditioner:
            pre = record_preconditioner(step.optimizer, step.module.parameters())
            self.store.set_last_preconditioner(pre)
            self._pending_preconditioner = False
        if step.step % self.every == 0:
            self.store.record(step.step, flatten_parameters(step.module), owned=True)
            self._pending_preconditioner = True
            if self.thinning and self.store.n_stages > self.max_stages:
                self.store.thin()
                self.every *= 2

    def on_epoch_end(self, epoch: Epoch) -> None:
        if epoch.improved and self.early_stopping is not None:
            if self.early_stopping.restores_best:
                snapshot = self._closed_copy(epoch.step, self.early_stopping.best_params)
                self._best = (snapshot, self.every)

    def on_train_end(self, trainer, result: TrainResult) -> None:
        es = self.early_stopping
        if es is not None and es.restores_best and self._best is not None:
            best, self.every = self._best  # the run as it stood at its best epoch
            self.store.steps, self.store.flats = best.steps, best.flats
            self.store.preconditioners = best.preconditioners
        elif self.store.steps[-1] != trainer.step:
            self._close(self.store, trainer.step, flatten_parameters(trainer.module))
        self._best = None

    def _closed_copy(self, step: int, flat: torch.Tensor) -> CheckpointStore:
        snapshot = self.store.copy()
        if snapshot.steps[-1] != step:
            self._close(snapshot, step, flat)
        return snapshot

    def _close(self, store: CheckpointStore, step: int, flat: torch.Tensor) -> None:
        store.record(step, flat)
        if self.thinning and store.n_stages > self.max_stages:
            store.merge_last_two_stages()
