"""Stages of a training run and the checkpoint store that holds them.

A stage is a block of consecutive optimizer steps. The store keeps one flat parameter
vector per stage boundary (``(n_stages + 1, n_params)`` float32, i.e. ``4 * n_params``
bytes per stage) and, for Adam-family optimizers, the diagonal preconditioner at each
boundary (another ``4 * n_params`` bytes per stage). Stage objects are thin views on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from sktelescope._network import flatten_parameters, forward_stacked, linearised_increment
from sktelescope._training import adam_preconditioner
from sktelescope.lens.kernels import tangent_kernel


class CheckpointStore:
    """Parameter checkpoints at stage boundaries of one training run.

    Parameters
    ----------
    module : torch.nn.Module
        A module with the run's architecture; only its structure is used.
    stage_every : int
        Optimizer steps per stage.

    Examples
    --------
    >>> from sktelescope._network import build_mlp
    >>> store = CheckpointStore(build_mlp(2, (), 1), stage_every=10)
    >>> store.n_stages
    0
    """

    def __init__(self, module: nn.Module, stage_every: int) -> None:
        self.module = module
        self.stage_every = int(stage_every)
        self.flats: list[torch.Tensor] = []
        self.preconditioners: list[torch.Tensor | None] = []
        self.steps: list[int] = []

    @property
    def n_stages(self) -> int:
        return max(len(self.flats) - 1, 0)

    def record(self, step: int, flat: torch.Tensor, preconditioner: torch.Tensor | None) -> None:
        """Store the parameters (and preconditioner) reached after optimizer step ``step``."""
        self.flats.append(flat.detach().to("cpu", copy=True))
        pre = None if preconditioner is None else preconditioner.detach().to("cpu", copy=True)
        self.preconditioners.append(pre)
        self.steps.append(int(step))

    def truncate(self, step: int, flat: torch.Tensor, preconditioner: torch.Tensor | None) -> None:
        """End the run at ``step`` with parameters ``flat`` (early stopping's best step)."""
        keep = [i for i, s in enumerate(self.steps) if s < step]
        self.flats = [self.flats[i] for i in keep]
        self.preconditioners = [self.preconditioners[i] for i in keep]
        self.steps = [self.steps[i] for i in keep]
        self.record(step, flat, preconditioner)

    def stacked(self) -> torch.Tensor:
        """All checkpoints as one ``(n_stages + 1, n_params)`` tensor."""
        return torch.stack(self.flats)

    def nbytes(self) -> int:
        """Bytes held by the checkpoints and preconditioners."""
        tensors = self.flats + [p for p in self.preconditioners if p is not None]
        return sum(t.numel() * t.element_size() for t in tensors)

    def build_stages(self, to_network: Callable, to_output: Callable) -> list[Stage]:
        """Stage objects for each consecutive pair of checkpoints."""
        return [Stage(self, k, to_network, to_output) for k in range(self.n_stages)]


class Stage:
    """One block of optimizer steps of a fitted network, seen as a boosting stage.

    ``predict(X)`` is the exact contribution ``f_k(X) - f_{k-1}(X)`` in output units
    (regression targets are un-standardised; classifiers give decision-function units).
    Obtain stages from a fitted estimator's ``stages_``; do not build them directly.

    Attributes
    ----------
    steps : range
        The optimizer steps the stage covers (1-based step counts, like ``n_steps_``).
    index : int
        Position of the stage in ``stages_``.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=3,
    ...                               random_state=0).fit(X, y)
    >>> stage = est.stages_[0]
    >>> stage.predict(X[:2]).shape, stage.kernel(X[:2], X[:5]).shape
    ((2,), (2, 5))
    """

    def __init__(self, store: CheckpointStore, index: int, to_network, to_output) -> None:
        self._store = store
        self.index = index
        self._to_network = to_network
        self._to_output = to_output

    @property
    def steps(self) -> range:
        return range(self._store.steps[self.index] + 1, self._store.steps[self.index + 1] + 1)

    @property
    def start_parameters(self) -> torch.Tensor:
        """Flat parameters at the start of the stage, shape (n_params,)."""
        return self._store.flats[self.index]

    @property
    def end_parameters(self) -> torch.Tensor:
        """Flat parameters at the end of the stage, shape (n_params,)."""
        return self._store.flats[self.index + 1]

    @property
    def preconditioner(self) -> torch.Tensor | None:
        """Adam's diagonal preconditioner at the start of the stage (``None`` for SGD).

        It is the state after the stage's first step was prepared from: Adam's second
        moment after the boundary step. The stage's first update applies one more EMA
        update of it (a relative change of order ``1 - β2`` = 0.001 by default).
        """
        return self._store.preconditioners[self.index]

    def predict(self, X, linear: bool = False) -> np.ndarray:
        """Contribution of this stage to the prediction on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        linear : bool, default=False
            If True, the first-order contribution ``∇f_{k-1}(X) · Δθ_k`` (one JVP)
            instead of the exact difference ``f_k(X) - f_{k-1}(X)``.

        Returns
        -------
        contribution : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        Xt = self._to_network(X)
        start, end = self.start_parameters.to(Xt), self.end_parameters.to(Xt)
        if linear:
            delta = linearised_increment(self._store.module, start, end - start, Xt)
        else:
            both = forward_stacked(self._store.module, torch.stack([start, end]), Xt)
            delta = both[1] - both[0]
        return self._to_output(delta, shift=False)

    def kernel(self, X, Z=None, output: int | None = None, preconditioned: bool = False):
        """Tangent kernel ``∇f(X)·∇f(Z)`` at the start of the stage.

        Parameters
        ----------
        X, Z : array-like of shape (n, n_features) and (m, n_features); ``Z=None`` uses X.
        output : int, optional
            Network output (multi-output models); default all outputs.
        preconditioned : bool, default=False
            Include the optimizer's diagonal preconditioner (Adam/AdamW), as the
            optimizer applies it; SGD has none and raises if asked.

        Returns
        -------
        kernel : ndarray of shape (n, m), or (n_outputs, n, m) for several outputs
        """
        pre = None
        if preconditioned:
            pre = self.preconditioner
            if pre is None:
                raise ValueError(
                    f"Stage {self.index} has no recorded preconditioner: the run used SGD, "
                    "or the stage starts before Adam's first step. Use preconditioned=False."
                )
        Xt = self._to_network(X)
        Zt = None if Z is None else self._to_network(Z)
        pre = None if pre is None else pre.to(Xt)
        start = self.start_parameters.to(Xt)
        k = tangent_kernel(self._store.module, start, Xt, Zt, output, pre)
        return k.detach().cpu().numpy()

    def __repr__(self) -> str:
        s = self.steps
        return f"Stage(index={self.index}, steps=range({s.start}, {s.stop}))"


def staged_outputs(store: CheckpointStore, Xt: torch.Tensor, chunk_size: int) -> Iterator:
    """Yield the raw network outputs at each stage end, evaluated in stacked chunks."""
    flats = store.stacked().to(Xt)
    for start in range(1, len(flats), chunk_size):
        block = forward_stacked(store.module, flats[start : start + chunk_size], Xt)
        yield from block


class StageRecorder:
    """Training observer that fills a :class:`CheckpointStore` every ``stage_every`` steps.

    Records the initial parameters, every ``stage_every``-th step and the last step; when
    early stopping restored the best epoch, the stages end at that step instead.
    """

    wants_previous_params = False

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store

    def on_train_begin(self, trainer) -> None:
        self.store.record(0, flatten_parameters(trainer.module), None)

    def on_step(self, step) -> None:
        if step.step % self.store.stage_every == 0:
            pre = adam_preconditioner(step.optimizer)
            self.store.record(step.step, flatten_parameters(step.module), pre)

    def on_train_end(self, trainer, result) -> None:
        if result.best_params is not None:
            self.store.truncate(result.best_step, result.best_params, result.best_preconditioner)
        elif self.store.steps[-1] != result.n_steps:
            pre = adam_preconditioner(trainer.optimizer)
            self.store.record(result.n_steps, flatten_parameters(trainer.module), pre)
