"""The optimisation loop, in pure torch.

``Trainer`` runs mini-batch training on tensors that stay resident on one device (no
DataLoader, one gather per epoch, slicing per batch) and tells its observers about
every optimizer step through a :class:`Step` record. Nothing here knows about
scikit-learn: validation, scaling and the estimator API live in ``_mlp``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from sktelescope._network import flatten_parameters

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class DivergenceError(RuntimeError):
    """The training loss became non-finite."""


@dataclass
class TrainConfig:
    """Optimisation settings (see the estimators' docstrings for their meaning)."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    batch_size: int | None = 256
    max_epochs: int = 200
    n_iter_no_change: int | None = 10
    tol: float = 1e-4
    verbose: int = 0


@dataclass
class Step:
    """What observers see after each optimizer step.

    ``params_before`` is the flat parameter vector before the step, filled only when
    an observer sets ``wants_previous_params = True``.
    """

    step: int
    epoch: int
    batch: torch.Tensor
    loss: torch.Tensor
    module: nn.Module
    optimizer: torch.optim.Optimizer
    params_before: torch.Tensor | None = None


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`."""

    n_epochs: int = 0
    n_steps: int = 0
    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)
    best_step: int | None = None
    best_params: torch.Tensor | None = None
    best_preconditioner: torch.Tensor | None = None
    converged: bool = False
    interrupted: bool = False


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """Build the torch optimizer named by ``config.optimizer``.

    Examples
    --------
    >>> import torch
    >>> p = [torch.nn.Parameter(torch.zeros(2))]
    >>> type(make_optimizer(p, TrainConfig(optimizer="sgd"))).__name__
    'SGD'
    """
    lr, wd = config.learning_rate, config.weight_decay
    if config.optimizer == "sgd":
        kwargs = dict(lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=wd)
        return _fused_if_possible(torch.optim.SGD, params, kwargs)
    if config.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return _fused_if_possible(cls, params, dict(lr=lr, betas=config.betas, weight_decay=wd))
    raise ValueError(f"Unknown optimizer {config.optimizer!r}; expected 'sgd', 'adam' or 'adamw'.")


def _fused_if_possible(cls, params, kwargs) -> torch.optim.Optimizer:
    """The fused (single-kernel) implementation where this torch build has one for the device.

    On CPU it is an order of magnitude faster per step than the per-tensor loop for small
    networks; the update is the same algorithm.
    """
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, **kwargs)


def adam_preconditioner(optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
    """Adam's current diagonal preconditioner ``1 / (sqrt(v / (1 - β2^t)) + ε)``, flat.

    Matches PyTorch's ``Adam``/``AdamW`` update exactly (ε outside the square root,
    bias-corrected second moment). Returns ``None`` for other optimizers or before
    the first step.
    """
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        return None
    parts = []
    for group in optimizer.param_groups:
        beta2, eps = group["betas"][1], group["eps"]
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state:
                return None
            v_hat = state["exp_avg_sq"] / (1 - beta2 ** float(state["step"]))
            parts.append((1.0 / (v_hat.sqrt() + eps)).reshape(-1))
    return torch.cat(parts)


def learning_rate_factor(step: int, total_steps: int, config: TrainConfig) -> float:
    """Multiplier of the base learning rate before optimizer step ``step`` (1-based).

    Linear warm-up over ``warmup_steps``, then constant, linear decay to zero or a
    cosine decay to zero over the remaining planned steps.

    Examples
    --------
    >>> learning_rate_factor(1, 100, TrainConfig(warmup_steps=4))
    0.25
    """
    if step <= config.warmup_steps:
        return step / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    span = max(total_steps - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    if config.lr_schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """Mini-batch training of ``module`` with observers called after every step.

    Parameters
    ----------
    module : torch.nn.Module
    loss_fn : callable ``(outputs, targets, weights) -> scalar tensor``
    config : TrainConfig
    generator : torch.Generator
        Source of the batch order (the global RNG is never used).
    observers : sequence
        Objects with ``on_train_begin(trainer)``, ``on_step(step)`` and
        ``on_train_end(trainer, result)``; an observer that sets
        ``wants_previous_params = True`` receives ``Step.params_before``.
        ``trainer.input_transform`` (set by the estimator before ``fit``) maps raw
        inputs to the network's standardised input tensor, for observers that
        evaluate the network on inputs of their own. ``trainer.train_data`` holds the
        ``(X, Y, W)`` tensors being fitted (after any validation split) once ``fit`` starts.

    Examples
    --------
    >>> import torch
    >>> from sktelescope._network import build_mlp
    >>> X, y = torch.randn(32, 2), torch.randn(32, 1)
    >>> loss = lambda out, t, w: (w * (out - t).pow(2).sum(1)).mean()
    >>> trainer = Trainer(build_mlp(2, (), 1), loss, TrainConfig(batch_size=8, max_epochs=2),
    ...                   torch.Generator().manual_seed(0))
    >>> trainer.fit(X, y, torch.ones(32)).n_steps
    8
    """

    def __init__(
        self,
        module: nn.Module,
        loss_fn: LossFn,
        config: TrainConfig,
        generator: torch.Generator,
        observers: Sequence = (),
    ) -> None:
        self.module = module
        self.loss_fn = loss_fn
        self.config = config
        self.generator = generator
        self.observers = list(observers)
        wants = [getattr(o, "wants_previous_params", False) for o in self.observers]
        self._snapshot_before = any(wants)
        self.optimizer = make_optimizer(list(module.parameters()), config)
        self.step = 0
        self.total_steps = 0
        self.input_transform: Callable | None = None
        self.train_data: tuple[torch.Tensor, ...] | None = None

    def fit(self, X, Y, W, validation=None) -> TrainResult:
        """Train for up to ``config.max_epochs`` epochs on resident tensors.

        ``validation`` is ``(X_val, Y_val, W_val)`` to early-stop on the validation
        loss (the parameters of the best epoch are returned in ``best_params``), or
        ``None`` to stop when the training loss stops improving.
        """
        n = len(X)
        batch = n if self.config.batch_size is None else min(self.config.batch_size, n)
        self.total_steps = self.config.max_epochs * math.ceil(n / batch)
        self.train_data = (X, Y, W)
        result = TrainResult()
        for obs in self.observers:
            obs.on_train_begin(self)
        bar = tqdm(range(self.config.max_epochs), disable=not self.config.verbose, desc="epochs")
        try:
            for epoch in bar:
                loss = self._run_epoch(X, Y, W, batch, epoch)
                result.loss_curve.append(loss)
                result.n_epochs = epoch + 1
                bar.set_postfix(loss=f"{loss:.4g}")
                if self._should_stop(result, validation):
                    break
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            bar.close()
        result.n_steps = self.step
        for obs in self.observers:
            obs.on_train_end(self, result)
        return result

    def branch(self, generator: torch.Generator, observers: Sequence = ()) -> Trainer:
        """A copy of this trainer at its current step that draws batches from ``generator``.

        Module, optimizer state, step count and learning-rate schedule are copied, so
        ``run_until`` continues the same run with another data order (how the lens spawns
        children for mode connectivity).
        """
        child = Trainer(copy.deepcopy(self.module), self.loss_fn, self.config, generator, observers)
        child.optimizer.load_state_dict(copy.deepcopy(self.optimizer.state_dict()))
        child.step, child.total_steps = self.step, self.total_steps
        child.input_transform = self.input_transform
        return child

    def run_until(self, X, Y, W, last_step: int) -> None:
        """Train on fresh permutations of the data until ``last_step`` steps are done."""
        batch = len(X) if self.config.batch_size is None else min(self.config.batch_size, len(X))
        epoch = 0
        while self.step < last_step:
            self._run_epoch(X, Y, W, batch, epoch, last_step)
            epoch += 1

    def _run_epoch(self, X, Y, W, batch: int, epoch: int, last_step: int | None = None) -> float:
        perm = torch.randperm(len(X), generator=self.generator).to(X.device)
        Xp, Yp, Wp = X[perm], Y[perm], W[perm]
        total = torch.zeros((), device=X.device)
        seen = 0
        for start in range(0, len(X), batch):
            if last_step is not None and self.step >= last_step:
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
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.module(xb), yb, wb)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _set_learning_rate(self) -> None:
        cfg = self.config
        if cfg.lr_schedule == "constant" and self.step > cfg.warmup_steps + 1:
            return
        lr = cfg.learning_rate * learning_rate_factor(self.step, self.total_steps, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _notify(self, epoch: int, batch: torch.Tensor, loss: torch.Tensor) -> None:
        if not self.observers:
            return
        record = Step(self.step, epoch, batch, loss, self.module, self.optimizer, self._before)
        for obs in self.observers:
            obs.on_step(record)

    def _should_stop(self, result: TrainResult, validation) -> bool:
        cfg = self.config
        if validation is None:
            scores = [-v for v in result.loss_curve]
        else:
            scores = result.validation_scores
            scores.append(-self._validation_loss(*validation))
        improved = len(scores) == 1 or scores[-1] > max(scores[:-1]) + cfg.tol
        if improved and validation is not None:
            result.best_step = self.step
            result.best_params = flatten_parameters(self.module)
            result.best_preconditioner = adam_preconditioner(self.optimizer)
        if cfg.n_iter_no_change is None or len(scores) <= cfg.n_iter_no_change:
            return False
        recent_best = max(scores[-cfg.n_iter_no_change :])
        earlier_best = max(scores[: -cfg.n_iter_no_change])
        result.converged = recent_best <= earlier_best + cfg.tol
        return result.converged

    @torch.no_grad()
    def _validation_loss(self, X, Y, W) -> float:
        loss = float(self.loss_fn(self.module(X), Y, W))
        if not math.isfinite(loss):
            raise DivergenceError("non-finite validation loss")
        return loss
