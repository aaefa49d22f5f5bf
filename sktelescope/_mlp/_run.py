"""The fitted run of a telescoping MLP: the one seam between an estimator and the lens.

A fitted ``TelescopingMLPRegressor``/``Classifier`` keeps its training run as ``run_``, a
:class:`TrainingRun`. It hands out what the lens needs to measure the run, and nothing
else reaches into the estimator:

- the network's architecture (``module``) and its parameters at every stage boundary
  (``checkpoints``), with the preconditioners the optimizer applied;
- the input mapping (``inputs``: validate and scale raw features, as training did)
  and the output mapping (``outputs``: network units back to prediction units);
- the loss object (``loss``: target encoding, the training loss, the inverse link);
- the training tensors of any data (``training_tensors``) exactly as the fit encodes them;
- a check that some inputs are rows of the data the run was fitted on.

All evaluation is functional (parameters are arguments, the module is only read), so one
fitted run can be used from several threads at once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sktelescope._core.checkpoints import CheckpointStore
from sktelescope._core.losses import Loss
from sktelescope._core.network import flatten_parameters, forward_flat, forward_stacked
from sktelescope._core.training import TrainConfig
from sktelescope._mlp._scaling import InputScaling
from sktelescope._staged import check_training_rows

__all__ = ["Scaling", "TrainingRun"]


@dataclass
class Scaling:
    """Scaling of the inputs and (regression) targets learnt at fit time.

    Network inputs are ``inputs.transform(X)`` (the estimator's ``input_scaling``, see
    :mod:`sktelescope._mlp._scaling`); network targets are ``(encoded_y - t_mean) /
    t_scale``, so predictions are ``raw * t_scale + t_mean``.
    """

    inputs: InputScaling
    t_mean: np.ndarray | float = 0.0
    t_scale: np.ndarray | float = 1.0


class TrainingRun:
    """What a fitted telescoping MLP offers the lens: its run, its mappings and its loss.

    Obtain it as ``est.run_`` after ``fit``; do not build it directly.

    Attributes
    ----------
    module : torch.nn.Sequential
        The trained network (its structure is what the checkpoints parameterise).
    checkpoints : CheckpointStore
        Parameters at every stage boundary (``checkpoints.steps``, ``checkpoints.flats``)
        and the preconditioner each stage's first step applied (Adam/AdamW).
    loss : sktelescope._core.losses.Loss
        The training loss: ``loss.encode``, ``loss(outputs, targets, weights)``,
        ``loss.is_squared_error``; classifiers' losses also give ``predict_proba`` and
        ``class_index`` from raw outputs.
    config : TrainConfig
        The optimisation settings of the run.
    scaling : Scaling
        Input and target scaling.
    classes : ndarray or None
        The classifier's classes (``None`` for regressors).
    n_steps : int
        Optimizer steps run (the kept run ends at ``checkpoints.steps[-1]``, which is
        smaller under early stopping).
    early_stopping : bool
        Whether the fit held out a validation split.
    random_state : int or None
        The estimator's integer ``random_state`` (``None`` when it was not an integer: the
        run cannot then be replayed).

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    >>> run = TelescopingMLPRegressor((8,), max_iter=3, random_state=0).fit(X, y).run_
    >>> run.inputs(X[:2]).shape, run.checkpoints.steps[0]
    (torch.Size([2, 3]), 0)
    """

    def __init__(
        self, estimator, module: nn.Module, checkpoints: CheckpointStore, loss: Loss,
        config: TrainConfig, scaling: Scaling, fingerprints: np.ndarray,
    ) -> None:  # fmt: skip
        self._estimator = estimator
        self.module, self.checkpoints, self.loss = module, checkpoints, loss
        self.config, self.scaling = config, scaling
        self._fingerprints = fingerprints
        self.classes = getattr(estimator, "classes_", None)
        self.n_steps = 0
        self.early_stopping = False
        seed = estimator.random_state
        self.random_state = seed if isinstance(seed, int | np.integer) else None
        self.final_parameters = flatten_parameters(module)
        self.optimizer_state: dict | None = None
        self.generator_state: torch.Tensor | None = None
        self.stage_interval = 1

    # ------------------------------------------------------------------ mappings
    @property
    def device(self) -> torch.device:
        """Device of the network (its parameters and evaluation)."""
        return self.final_parameters.device

    def validate_features(self, X, name: str = "X") -> np.ndarray:
        """``X`` as float64 after the checks ``predict`` runs; errors name ``name``.

        Refuses a wrong feature count or feature names, NaN/inf, empty or non-numeric data.
        """
        return self._estimator._validate_features(X, name=name)

    def inputs(self, X, dtype: torch.dtype = torch.float64, name: str = "X") -> torch.Tensor:
        """Validate raw features like ``predict`` does and scale them, as a tensor.

        Raises ``ValueError`` (naming ``name``) for a wrong feature count, NaN/inf,
        non-numeric data, or values so far from the training data that scaling
        them overflows ``dtype``.
        """
        X = self.validate_features(X, name)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = torch.as_tensor(self.scaling.inputs.transform(X), dtype=dtype)
        if not torch.isfinite(scaled).all():
            raise ValueError(
                f"{name} has values too far from the training data: scaled as the training "
                f"inputs were, they overflow {str(dtype).replace('torch.', '')} "
                f"(largest input {np.max(np.abs(X)):.3g}). Check their units, or rescale X "
                "before fitting (e.g. a log transform in a Pipeline)."
            )
        return scaled.to(self.device)

    def outputs(
        self, raw: torch.Tensor | np.ndarray, shift: bool = True, *, overwrite: bool = False
    ) -> np.ndarray:
        """Network outputs -> prediction units; ``shift=False`` for increments.

        Regressors un-standardise (``raw * t_scale + t_mean``); classifiers are unchanged
        (decision-function units). One output gives shape ``(..., n)``, else ``(..., n, k)``.
        ``raw`` is a tensor or an array; ``overwrite=True`` converts a float64 array in
        place instead of copying it (for large records).
        """
        if isinstance(raw, torch.Tensor):
            raw = raw.detach().cpu().double().numpy()
        out = raw if overwrite and raw.dtype == np.float64 else np.array(raw, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            out *= self.scaling.t_scale
            if shift:
                out += self.scaling.t_mean
        if out.size and not (np.isfinite(out.max()) and np.isfinite(out.min())):
            raise ValueError(
                "The network's output is not finite on these inputs: they lie too far "
                "outside the training data for float64 arithmetic. Check their units, or "
                "clip them to the training range."
            )
        return out[..., 0] if out.shape[-1] == 1 else out

    def network_targets(self, y) -> np.ndarray:
        """Targets in network units (encoded, then scaled) for labels/values ``y``."""
        return self.scale_targets(self.loss.encode(self._estimator._target_indices(y)))

    def scale_targets(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded targets -> network units (class indices stay integers)."""
        if np.issubdtype(encoded.dtype, np.integer):
            return encoded
        return (encoded - self.scaling.t_mean) / self.scaling.t_scale

    def training_tensors(self, X, y, sample_weight=None, dtype: torch.dtype = torch.float32):
        """``(inputs, targets, weights)`` of ``(X, y)`` exactly as the fit encodes them.

        Weights are normalised to mean one; float targets take ``dtype``.
        """
        X, y = self._estimator._validate_features_and_targets(X, y)
        weights = self._estimator._checked_weights(sample_weight, X)
        targets = torch.as_tensor(self.network_targets(y), device=self.device)
        if targets.is_floating_point():
            targets = targets.to(dtype)
        w = torch.as_tensor(weights / weights.mean(), dtype=dtype, device=self.device)
        return self.inputs(X, dtype), targets, w

    # ------------------------------------------------------------------ evaluation
    def predict_raw(self, X, parameters: torch.Tensor | None = None) -> np.ndarray:
        """The network's output on ``X`` in prediction units (at ``parameters``, default final)."""
        Xt = self.inputs(X)
        flat = self.final_parameters if parameters is None else parameters
        with torch.no_grad():
            return self.outputs(forward_flat(self.module, flat.to(Xt), Xt))

    def staged_raw(self, X, chunk_size: int = 16) -> Iterator[np.ndarray]:
        """The output after each stage, evaluated in stacked chunks of checkpoints."""
        Xt = self.inputs(X)
        flats = self.checkpoints.stacked()
        for start in range(1, len(flats), chunk_size):
            block = forward_stacked(self.module, flats[start : start + chunk_size].to(Xt), Xt)
            yield from (self.outputs(out) for out in block)

    def telescope(self, X) -> np.ndarray:
        """``f_0(X)`` and each stage's exact contribution, shape ``(n, 1 + n_stages[, k])``."""
        Xt = self.inputs(X)
        outs = forward_stacked(self.module, self.checkpoints.stacked().to(Xt), Xt)
        first = self.outputs(outs[:1], shift=True)
        steps = self.outputs(outs[1:] - outs[:-1], shift=False)
        return np.moveaxis(np.concatenate([first, steps], axis=0), 0, 1)

    # ------------------------------------------------------------------ checks
    def check_training_inputs(self, X, name: str = "X_train") -> np.ndarray:
        """Raise unless every row of ``X`` is a row of the data this run was fitted on.

        Returns the validated float64 array. A subset of the rows (in any order) passes.
        """
        X = self._estimator._validate_features(X, name=name)
        check_training_rows(X, self._fingerprints, name)
        return X

    def cpu(self) -> TrainingRun:
        """This run with every tensor on the CPU (a copy when it was elsewhere)."""
        if self.device.type == "cpu":
            return self
        twin = copy.copy(self)
        twin.module = copy.deepcopy(self.module).cpu()
        twin.final_parameters = self.final_parameters.cpu()
        return twin
