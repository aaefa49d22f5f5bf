"""The optimisation loop, in pure torch.

``Trainer`` runs mini-batch training on tensors that stay resident on one device (no
DataLoader, one gather per epoch, slicing per batch) and tells its observers about every
optimizer step (a :class:`Step` record) and every epoch (an :class:`Epoch` record).
Observers are the loop's only extension point: early stopping, stage recording and the
lens monitors are all observers (:mod:`sktelescope._core.observers`); an observer ends
the run with :meth:`Trainer.request_stop`. Nothing here knows about scikit-learn.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import nn
from tqdm.auto import tqdm

from sktelescope._core.fused_step import OptimizerStep
from sktelescope._core.network import flatten_parameters
from sktelescope._core.optim import (
    learning_rate_factor,
    load_optimizer_state,
    make_optimizer,
    save_optimizer_state,
)

__all__ = ["DivergenceError", "Epoch", "Step", "TrainConfig", "TrainResult", "Trainer"]


class DivergenceError(RuntimeError):
    """The training loss became non-finite."""


@dataclass
class TrainConfig:
    """Optimisation settings, under the estimators' own parameter names (their docstrings
    say what each means); ``max_iter`` counts epochs.

    Examples
    --------
    >>> TrainConfig.from_params({"optimizer": "sgd", "max_iter": 3, "random_state": 0})
    ... # doctest: +ELLIPSIS
    TrainConfig(optimizer='sgd', ..., max_iter=3, verbose=0)
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    beta_1: float = 0.9
    beta_2: float = 0.999
    weight_decay: float = 0.0
    weight_decay_biases: bool = True
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    batch_size: int | None = 256
    max_iter: int = 200
    verbose: int = 0

    @classmethod
    def from_params(cls, params: Mapping) -> TrainConfig:
        """The settings among ``params`` (e.g. an estimator's ``get_params()``) that are
        fields of this class; the others keep their defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in params.items() if name in names})

    def batch(self, n_samples: int) -> int:
        """Mini-batch size for ``n_samples`` training points.

        Examples
        --------
        >>> TrainConfig(batch_size=None).batch(10), TrainConfig(batch_size=256).batch(10)
        (10, 10)
        """
        return n_samples if self.batch_size is None else min(self.batch_size, n_samples)

    def steps_per_epoch(self, n_samples: int) -> int:
        """Optimizer steps in one pass over ``n_samples`` points.

        Examples
        --------
        >>> TrainConfig(batch_size=4).steps_per_epoch(10)
        3
        """
        return math.ceil(n_samples / max(self.batch(n_samples), 1))


@dataclass
class Step:
    """What observers see after each optimizer step.

    ``params_before`` is the flat parameter vector before the step, filled only when an
    observer sets ``wants_previous_params = True``. ``batch`` holds the indices (into the
    training tensors) of the mini-batch. ``learning_rate`` is the step's scheduled rate.
    """

    step: int
    epoch: int
    batch: torch.Tensor
    loss: torch.Tensor
    module: nn.Module
    optimizer: torch.optim.Optimizer
    trainer: Trainer
    params_before: torch.Tensor | None = None
    learning_rate: float = 0.0


@dataclass
class Epoch:
    """What observers see after each epoch.

    ``improved`` is set by the early-stopping observer (which runs first) when this epoch
    is the best so far; observers after it can read it.
    """

    index: int
    step: int
    train_loss: float
    trainer: Trainer
    improved: bool = False


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`.

    ``stop_reason`` is "max_epochs", or the reason an observer gave to
    :meth:`Trainer.request_stop` (e.g. "converged"), or "interrupted" (Ctrl-C).
    """

    n_epochs: int = 0
    n_steps: int = 0
    loss_curve: list[float] = field(default_factory=list)
    stop_reason: str = "max_epochs"

    @property
    def interrupted(self) -> bool:
        """Whether Ctrl-C ended the run."""
        return self.stop_reason == "interrupted"


class Trainer:
    """Mini-batch training of ``module`` with observers called after every step and epoch.

    Parameters
    ----------
    module : torch.nn.Module
    loss_fn : callable ``(outputs, targets, weights) -> scalar tensor``
        E.g. a :mod:`sktelescope._core.losses` object.
    config : TrainConfig
    generator : torch.Generator
        Source of the batch order (the global RNG is never used).
    observers : sequence of Observer
        See :class:`sktelescope._core.observers.Observer`.
    input_transform : callable, optional
        Maps raw inputs (a float64 array) to the network's input tensor, for observers
        that evaluate the network on inputs of their own.
    optimizer : torch.optim.Optimizer, optional
        Continue with this optimizer (and its state) instead of building a new one.
    step : int, default=0
        Optimizer steps already taken (a continued run counts on from there).

    Attributes
    ----------
    train_data : tuple of torch.Tensor or None
        The ``(X, Y, W)`` tensors being fitted, set when ``fit`` starts.
    total_steps : int
        Steps planned for the run (the learning-rate schedule spans them).

    Examples
    --------
    >>> from sktelescope._core.network import build_mlp
    >>> X, y = torch.randn(32, 2), torch.randn(32, 1)
    >>> loss = lambda out, t, w: (w * (out - t).pow(2).sum(1)).mean()
    >>> trainer = Trainer(build_mlp(2, (), 1), loss, TrainConfig(batch_size=8, max_iter=2),
    ...                   torch.Generator().manual_seed(0))
    >>> trainer.fit(X, y, torch.ones(32)).n_steps
    8
    """

    def __init__(
        self,
        module: nn.Module,
        loss_fn: Callable,
        config: TrainConfig,
        generator: torch.Generator,
        observers: Sequence = (),
        *,
        input_transform: Callable | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        step: int = 0,
    ) -> None:
        self.module, self.loss_fn, self.config = module, loss_fn, config
        self.generator = generator
        self.observers = list(observers)
        self.input_transform = input_transform
        self._snapshot_before = any(o.wants_previous_params for o in self.observers)
        self.optimizer = optimizer or make_optimizer(module, config)
        self._optimizer_step = OptimizerStep(self.optimizer)
        self.step = int(step)
        self.total_steps = self.step
        self.train_data: tuple[torch.Tensor, ...] | None = None
        self._stop_reason: str | None = None
        self._before: torch.Tensor | None = None
        self._rate = float(config.learning_rate)

    def optimizer_state(self) -> dict:
        """The optimizer's ``state_dict`` with parameters numbered in the network's flat
        order (see :func:`~sktelescope._core.optim.save_optimizer_state`): what
        :meth:`resume_optimizer` takes, whatever the parameter groups of either trainer."""
        return save_optimizer_state(self.optimizer, self.module.parameters())

    def resume_optimizer(self, state: dict) -> None:
        """Continue from an earlier :meth:`optimizer_state` (moments, step counts) with this
        trainer's own settings: every hyperparameter of ``config`` (learning rate, momentum,
        betas, weight decay, which parameters are decayed) applies, not the ones the state
        was saved with."""
        state = {**state, "state": copy.deepcopy(state["state"])}
        load_optimizer_state(self.optimizer, state, self.module.parameters())

    def request_stop(self, reason: str = "requested") -> None:
        """End the run after the current optimizer step (observers call this)."""
        self._stop_reason = reason

    def fit(self, X, Y, W) -> TrainResult:
        """Train for up to ``config.max_iter`` epochs on resident tensors."""
        self.train_data = (X, Y, W)
        self.module.train()  # training mode (dropout acts), whatever mode it was left in
        self.total_steps = self.step + self.config.max_iter * self.config.steps_per_epoch(len(X))
        result = TrainResult()
        for obs in self.observers:
            obs.on_train_begin(self)
        bar = tqdm(range(self.config.max_iter), disable=not self.config.verbose, desc="epochs")
        try:
            for epoch in bar:
                if self._stop_reason is not None:
                    break
                result.loss_curve.append(self._run_epoch(X, Y, W, epoch))
                result.n_epochs = epoch + 1
                bar.set_postfix(loss=f"{result.loss_curve[-1]:.4g}")
                self._end_epoch(epoch, result.loss_curve[-1])
        except KeyboardInterrupt:
            self._stop_reason = "interrupted"
        finally:
            bar.close()
        result.n_steps = self.step
        result.stop_reason = self._stop_reason or "max_epochs"
        for obs in self.observers:
            obs.on_train_end(self, result)
        return result

    def branch(self, generator: torch.Generator, observers: Sequence = ()) -> Trainer:
        """A copy of this trainer at its current step that draws batches from ``generator``.

        Module, optimizer state, step count and learning-rate schedule are copied, so
        :meth:`run_until` continues the same run with another data order (how the lens
        spawns children for mode connectivity).
        """
        child = Trainer(
            copy.deepcopy(self.module), self.loss_fn, self.config, generator, observers,
            input_transform=self.input_transform, step=self.step,
        )  # fmt: skip
        child.optimizer.load_state_dict(copy.deepcopy(self.optimizer.state_dict()))
        child.total_steps = self.total_steps
        return child

    def run_until(self, X, Y, W, last_step: int) -> None:
        """Train on fresh permutations of the data until ``last_step`` steps are done."""
        self.train_data = (X, Y, W)
        self.module.train()
        epoch = 0
        while self.step < last_step and self._stop_reason is None:
            self._run_epoch(X, Y, W, epoch, last_step)
            epoch += 1

    def _run_epoch(self, X, Y, W, epoch: int, last_step: int | None = None) -> float:
        batch = self.config.batch(len(X))
        perm = torch.randperm(len(X), generator=self.generator).to(X.device)
        Xp, Yp, Wp = X[perm], Y[perm], W[perm]
        total = torch.zeros((), device=X.device)
        seen = 0
        for start in range(0, len(X), batch):
            if self._stop_reason is not None or (last_step is not None and self.step >= last_step):
                break
            stop = min(start + batch, len(X))
            loss = self._train_step(Xp[start:stop], Yp[start:stop], Wp[start:stop])
            total += loss * (stop - start)
            seen += stop - start
            self._notify(epoch, perm[start:stop], loss)
        mean = float(total) / max(seen, 1)
        if not math.isfinite(mean):
            raise DivergenceError(f"non-finite training loss at epoch {epoch + 1}")
        return mean

    def _train_step(self, xb, yb, wb) -> torch.Tensor:
        self.step += 1
        self._set_learning_rate()
        self._before = flatten_parameters(self.module) if self._snapshot_before else None
        self._optimizer_step.zero_grad()
        loss = self.loss_fn(self.module(xb), yb, wb)
        loss.backward()
        self._optimizer_step()
        return loss.detach()

    def _set_learning_rate(self) -> None:
        cfg = self.config
        if cfg.lr_schedule == "constant" and self.step > cfg.warmup_steps + 1:
            return
        factor = learning_rate_factor(
            self.step, self.total_steps, cfg.lr_schedule, cfg.warmup_steps
        )
        self._rate = cfg.learning_rate * factor
        for group in self.optimizer.param_groups:
            group["lr"] = self._rate

    def _notify(self, epoch: int, batch: torch.Tensor, loss: torch.Tensor) -> None:
        record = Step(
            self.step, epoch, batch, loss, self.module, self.optimizer, self, self._before,
            self._rate,
        )  # fmt: skip
        for obs in self.observers:
            obs.on_step(record)

    def _end_epoch(self, epoch: int, loss: float) -> None:
        record = Epoch(epoch, self.step, loss, self)
        for obs in self.observers:
            obs.on_epoch_end(record)
