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
- the record of every ``fit`` call (``fits``: seed, settings, data digests, the rows trained
  on), from which the lens replays the run and with which it recognises the fit's data.

The run owns its lifecycle: :meth:`TrainingRun.finish` keeps what a training pass reached,
:meth:`TrainingRun.resume` gives the copy a ``warm_start`` continuation trains (so a failed
continuation leaves the fitted run untouched). All evaluation is functional (parameters are
arguments, the module is only read), so one fitted run can be used from several threads.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sktelescope._checks import check_fitted_features, check_targets, checked_sample_weight
from sktelescope._core.checkpoints import CheckpointStore
from sktelescope._core.layers import set_layer_generator_states
from sktelescope._core.losses import Loss
from sktelescope._core.network import (
    flatten_parameters,
    forward_flat,
    forward_stacked,
    n_inputs,
)
from sktelescope._core.observers import cpu_state_copy
from sktelescope._core.training import TrainConfig
from sktelescope._mlp._fits import DataDigest, FitRecord
from sktelescope._mlp._scaling import InputScaling
from sktelescope._mlp._targets import ClassTargets, ValueTargets
from sktelescope._staged import check_training_rows, row_hashes

__all__ = ["FeatureSpec", "Scaling", "TrainingRun"]


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


@dataclass(frozen=True)
class FeatureSpec:
    """The features a run was fitted on: their number, their names, the model's name.

    Examples
    --------
    >>> FeatureSpec(2, None, "MyModel").validate([[1.0, 2.0, 3.0]], "X_test")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X_test has 3 features, but MyModel is expecting 2 features as input ...
    """

    n_features: int
    names: np.ndarray | None = None
    owner: str = "The model"

    def validate(self, X, name: str = "X") -> np.ndarray:
        """``X`` as float64 after the checks ``predict`` runs; errors name ``name``."""
        return check_fitted_features(X, self.n_features, self.names, self.owner, name)


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
        The optimisation settings of the last fit.
    scaling : Scaling
        Input and target scaling.
    features : FeatureSpec
        The fitted features (number, names).
    targets : ValueTargets or ClassTargets
        What the targets are (outputs, or classes).
    classes : ndarray or None
        The classifier's classes (``None`` for regressors).
    seed : int
        The integer all random draws of the run came from (see :class:`FitRecord`).
    fits : list of FitRecord
        One record per ``fit`` call: the first fit, then each ``warm_start`` continuation.
    n_steps : int
        Optimizer steps the last fit's trainer took (the kept model ends at
        ``checkpoints.steps[-1]``, which is smaller under early stopping).

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    >>> run = TelescopingMLPRegressor((8,), max_iter=3, random_state=0).fit(X, y).run_
    >>> run.inputs(X[:2]).shape, run.checkpoints.steps[0], run.fits[0].n_train
    (torch.Size([2, 3]), 0, 54)
    """

    def __init__(
        self, module: nn.Module, loss: Loss, config: TrainConfig, scaling: Scaling,
        features: FeatureSpec, targets: ValueTargets | ClassTargets, seed: int,
    ) -> None:  # fmt: skip
        self.module, self.checkpoints, self.loss = module, CheckpointStore(), loss
        self.config, self.scaling = config, scaling
        self.features, self.targets, self.seed = features, targets, int(seed)
        self.fits: list[FitRecord] = []
        self.n_steps = 0
        self.final_parameters = flatten_parameters(module)
        self.optimizer_state: dict | None = None
        self.generator_state: torch.Tensor | None = None
        self.stage_interval = 1
        self._fit_rows = np.empty(0, np.uint64)  # sorted row hashes of every fit's X
        self._fit_pairs = np.empty(0, np.uint64)  # ... of its (X row, y row) pairs
        self._trained_rows = np.empty(0, np.uint64)  # ... of the rows trained on

    @property
    def classes(self) -> np.ndarray | None:
        """The classifier's classes (``None`` for regressors)."""
        return self.targets.classes

    # ------------------------------------------------------------------ lifecycle
    def resume(self, config: TrainConfig) -> TrainingRun:
        """The copy a ``warm_start`` continuation trains with ``config``.

        Module, checkpoints, records and optimizer state are copied, so this run (and the
        estimator holding it, and its ``stages_``) is unchanged whatever the continuation
        does; the continuation replaces it only when it finishes.
        """
        twin = copy.copy(self)
        twin.module = copy.deepcopy(self.module)
        twin.checkpoints = self.checkpoints.copy()
        twin.fits = list(self.fits)
        twin.optimizer_state = copy.deepcopy(self.optimizer_state)
        twin.config = config
        return twin

    def finish(self, trainer, stopping, record: FitRecord, stage_interval: int) -> None:
        """Keep what a training pass reached: the best epoch under early stopping (with the
        optimizer, batch-order and dropout state of that epoch, so a continuation goes on
        from the model kept), else the last step; record the fit."""
        best = stopping.best
        if best is not None:
            torch.nn.utils.vector_to_parameters(best.params.to(self.device),
                                                self.module.parameters())  # fmt: skip
            self.optimizer_state, self.generator_state = best.optimizer_state, best.generator
            set_layer_generator_states(self.module, best.layer_generators)
        else:
            self.optimizer_state = cpu_state_copy(trainer.optimizer_state())
            self.generator_state = trainer.generator.get_state()
        self.module.eval()
        self._sync_last_checkpoint(best is not None)
        self.final_parameters = self.checkpoints.flats[-1].to(self.device)
        self.n_steps = trainer.step
        self.stage_interval = stage_interval
        self.fits.append(record)

    def _sync_last_checkpoint(self, restored: bool) -> None:
        """The last checkpoint is the module's parameters: an observer may have edited them
        after the stage recorder took the step's copy."""
        current = flatten_parameters(self.module).cpu()
        if not restored and not torch.equal(current, self.checkpoints.flats[-1]):
            self.checkpoints.flats[-1] = current

    def remember_rows(self, digest: DataDigest, train_rows: np.ndarray) -> None:
        """Add the rows of a fit's data (its digest) and those trained on to the run's."""
        self._fit_rows = np.union1d(self._fit_rows, digest.X)
        self._fit_pairs = np.union1d(self._fit_pairs, _pairs(digest.X, digest.y))
        self._trained_rows = np.union1d(self._trained_rows, digest.X[train_rows])

    # ------------------------------------------------------------------ mappings
    @property
    def device(self) -> torch.device:
        """Device of the network (its parameters and evaluation)."""
        return self.final_parameters.device

    @property
    def n_inputs(self) -> int:
        """Number of network inputs (the fitted features)."""
        return n_inputs(self.module)

    def validate_features(self, X, name: str = "X") -> np.ndarray:
        """``X`` as float64 after the checks ``predict`` runs; errors name ``name``.

        Refuses a wrong feature count or feature names, NaN/inf, empty or non-numeric data.
        """
        return self.features.validate(X, name)

    def inputs(self, X, dtype: torch.dtype = torch.float64, name: str = "X") -> torch.Tensor:
        """Validate raw features like ``predict`` does and scale them, as a tensor.

        Raises ``ValueError`` (naming ``name``) for a wrong feature count, NaN/inf,
        non-numeric data, or values so far from the training data that scaling
        them overflows ``dtype``.
        """
        return self.scaled(self.validate_features(X, name), dtype, name)

    def scaled(self, X: np.ndarray, dtype: torch.dtype = torch.float64, name: str = "X"):
        """Already validated float64 features -> scaled network inputs (a tensor)."""
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

    def checked_targets(self, y, n_rows: int, names: tuple[str, str] = ("X", "y")) -> np.ndarray:
        """``y`` checked like ``fit`` checks targets (one per row of ``names[0]``)."""
        numeric = self.targets.numeric
        y = check_targets(y, n_rows, names, numeric)
        return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 and not numeric else y

    def network_targets(self, y, name: str = "y") -> np.ndarray:
        """Targets in network units (encoded, then scaled) for labels/values ``y``."""
        return self.scale_targets(self.loss.encode(self.targets.indices(y, name)))

    def scale_targets(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded targets -> network units (class indices stay integers)."""
        if np.issubdtype(encoded.dtype, np.integer):
            return encoded
        return (encoded - self.scaling.t_mean) / self.scaling.t_scale

    def fit_data(self, X, y, sample_weight=None, names: tuple[str, str] = ("X", "y")):
        """``(X, y, weights)`` validated as ``fit`` validates them, and their digest."""
        X = self.validate_features(X, names[0])
        y = self.checked_targets(y, len(X), names)
        weights = checked_sample_weight(sample_weight, X, names[0])
        return X, y, weights, DataDigest.of(X, y, weights)

    def training_tensors(self, X, y, sample_weight=None, dtype: torch.dtype = torch.float32):
        """``(inputs, targets, weights)`` of ``(X, y)`` exactly as the fit encodes them.

        Weights are normalised to mean one; float targets take ``dtype``.
        """
        X, y, weights, _ = self.fit_data(X, y, sample_weight)
        targets = torch.as_tensor(self.network_targets(y), device=self.device)
        if targets.is_floating_point():
            targets = targets.to(dtype)
        w = torch.as_tensor(weights / weights.mean(), dtype=dtype, device=self.device)
        return self.scaled(X, dtype), targets, w

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

    # ------------------------------------------------------------------ the fit's data
    def check_training_inputs(self, X, name: str = "X_train", y=None) -> np.ndarray:
        """Raise unless every row of ``X`` is a row of the data this run was fitted on (and,
        with ``y``, unless each row's target is the one it was fitted with).

        Returns the validated float64 array. A subset of the rows (in any order) passes.
        """
        X = self.validate_features(X, name)
        check_training_rows(X, self._fit_rows, name)
        if y is not None:
            y = self.checked_targets(y, len(X), (name, "y"))
            other = ~np.isin(_pairs(row_hashes(X), row_hashes(y)), self._fit_pairs)
            if other.any():
                raise ValueError(
                    f"y has other targets than the model was fitted with for {int(other.sum())} "
                    f"of its {len(X)} rows. Pass the y given to fit."
                )
        return X

    def trained_on(self, X: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows of validated ``X`` the network trained on (rows of an
        early-stopping hold-out are ``False``)."""
        return np.isin(row_hashes(np.asarray(X, dtype=np.float64)), self._trained_rows)

    def cpu(self) -> TrainingRun:
        """This run with every tensor on the CPU (a copy when it was elsewhere)."""
        if self.device.type == "cpu":
            return self
        twin = copy.copy(self)
        twin.module = copy.deepcopy(self.module).cpu()
        twin.final_parameters = self.final_parameters.cpu()
        return twin


def _pairs(x_hashes: np.ndarray, y_hashes: np.ndarray) -> np.ndarray:
    """One 64-bit hash per (feature row, target row) pair (wrapping integer arithmetic)."""
    return x_hashes * np.uint64(0x9E3779B97F4A7C15) + y_hashes
