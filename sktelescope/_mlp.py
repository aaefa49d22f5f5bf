"""The estimators: TelescopingMLPRegressor and TelescopingMLPClassifier.

Each adds its targets, loss and outputs to the shared machinery of ``_mlp_base``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets

from sktelescope import _losses
from sktelescope._mlp_base import _COMMON_PARAMS_DOC, _BaseTelescopingMLP, _standardisation


class TelescopingMLPRegressor(RegressorMixin, _BaseTelescopingMLP):
    """MLP regressor whose training run is an additive, boosting-like ensemble of stages.

    Inputs and targets are standardised internally. After ``fit``, ``stages_`` holds
    the run as blocks of optimizer steps: ``telescope(X)`` splits each prediction into
    the initial network plus one contribution per stage, ``staged_predict`` yields the
    prediction after each stage, and every stage exposes its tangent kernel.

    Parameters
    ----------
    %(common)s
    loss : {"squared_error"}, default="squared_error"

    Attributes
    ----------
    module_ : torch.nn.Sequential
        The trained network (on the training device), in standardised units.
    stages_ : list of Stage
        The run as consecutive blocks of optimizer steps.
    n_stages_ : int
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Optimizer steps run.
    best_step_ : int
        Step whose parameters the model keeps (the last step without early stopping).
    loss_curve_ : list of float
        Mean training loss (standardised units) per epoch.
    validation_score_ : ndarray
        Negative validation loss per epoch (only with early stopping).
    n_outputs_, n_features_in_, feature_names_in_

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_diabetes
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(32,), max_iter=20,
    ...                               random_state=0).fit(X, y)
    >>> parts = est.telescope(X[:3])
    >>> parts.shape == (3, 1 + est.n_stages_)
    True
    >>> bool(np.allclose(parts.sum(axis=1), est.predict(X[:3]), atol=1e-3))
    True
    """

    _parameter_constraints = {
        **_BaseTelescopingMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        *,
        loss="squared_error",
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=False,
        beta_1=0.9,
        beta_2=0.999,
        weight_decay=0.0,
        lr_schedule="constant",
        warmup_steps=0,
        batch_size=256,
        max_iter=200,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        init_scale=1.0,
        max_stages=50,
        stage_every=None,
        random_state=None,
        device="cpu",
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.warmup_steps = warmup_steps
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.init_scale = init_scale
        self.max_stages = max_stages
        self.stage_every = stage_every
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _validate_y_kwargs(self) -> dict:
        return {"multi_output": True, "y_numeric": True}

    def _target_info(self, y) -> dict:
        return {"n_outputs_": 1 if y.ndim == 1 else y.shape[1]}

    def _encode_targets(self, y, info) -> np.ndarray:
        return np.asarray(y, dtype=np.float64).reshape(len(y), -1)

    def _target_scaling(self, targets):
        mean, scale = _standardisation(targets)
        return mean, scale

    def _n_network_outputs(self, info) -> int:
        return info["n_outputs_"]

    def _target_dtype(self, info):
        return torch.float32

    def _loss_function(self, info):
        return _losses.squared_error

    def predict(self, X) -> np.ndarray:
        """Predict targets for ``X``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._raw_output(X)

    def staged_predict(self, X):
        """Yield the prediction on ``X`` after each stage; the last equals ``predict(X)``.

        Yields
        ------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        yield from self._staged_raw_output(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class TelescopingMLPClassifier(ClassifierMixin, _BaseTelescopingMLP):
    """MLP classifier whose training run is an additive, boosting-like ensemble of stages.

    Binary problems use one output (a logit with ``loss="log_loss"``, a ±1 regression
    with ``loss="squared_error"``), multiclass problems one output per class (softmax
    cross-entropy, or squared error on one-hot targets as in the paper). ``telescope``
    and the stages decompose ``decision_function``.

    Parameters
    ----------
    %(common)s
    loss : {"log_loss", "squared_error"}, default="log_loss"
        ``"squared_error"`` gives uncalibrated ``predict_proba`` (clipped outputs).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    module_, stages_, n_stages_, n_iter_, n_steps_, best_step_, loss_curve_,
    validation_score_, n_features_in_, feature_names_in_
        As for :class:`TelescopingMLPRegressor`.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sktelescope import TelescopingMLPClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = TelescopingMLPClassifier(hidden_layer_sizes=(16,), max_iter=10,
    ...                                random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> clf.telescope(X[:2]).shape == (2, 1 + clf.n_stages_)
    True
    """

    _parameter_constraints = {
        **_BaseTelescopingMLP._parameter_constraints,
        "loss": [StrOptions({"log_loss", "squared_error"})],
    }

    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        *,
        loss="log_loss",
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=False,
        beta_1=0.9,
        beta_2=0.999,
        weight_decay=0.0,
        lr_schedule="constant",
        warmup_steps=0,
        batch_size=256,
        max_iter=200,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        init_scale=1.0,
        max_stages=50,
        stage_every=None,
        random_state=None,
        device="cpu",
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.warmup_steps = warmup_steps
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.init_scale = init_scale
        self.max_stages = max_stages
        self.stage_every = stage_every
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _validate_y_kwargs(self) -> dict:
        return {}

    def _target_info(self, y) -> dict:
        check_classification_targets(y)
        classes = LabelEncoder().fit(y).classes_
        if len(classes) < 2:
            raise ValueError(
                "The classifier needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {classes[0]!r}."
            )
        return {"classes_": classes}

    def _encode_targets(self, y, info) -> np.ndarray:
        classes = info["classes_"]
        idx = np.searchsorted(classes, y)
        unseen = (idx >= len(classes)) | (classes[np.minimum(idx, len(classes) - 1)] != y)
        if np.any(unseen):
            raise ValueError(f"y_val contains labels not seen in y: {np.unique(y[unseen])!r}.")
        binary = len(classes) == 2
        if self.loss == "log_loss":
            return idx.reshape(-1, 1).astype(np.float64) if binary else idx
        if binary:
            return (2.0 * idx - 1.0).reshape(-1, 1)
        return np.eye(len(classes))[idx]

    def _stratify_validation(self, targets, info) -> bool:
        labels = targets.reshape(len(targets), -1).argmax(1) if targets.ndim > 1 else targets
        counts = np.unique(labels, return_counts=True)[1]
        n_val = math.ceil(self.validation_fraction * len(targets))
        return counts.min() >= 2 and n_val >= len(counts)

    def _target_scaling(self, targets):
        return 0.0, 1.0

    def _n_network_outputs(self, info) -> int:
        return 1 if len(info["classes_"]) == 2 else len(info["classes_"])

    def _target_dtype(self, info):
        if self.loss == "log_loss" and len(info["classes_"]) > 2:
            return torch.int64
        return torch.float32

    def _loss_function(self, info):
        if self.loss == "squared_error":
            return _losses.squared_error
        if len(info["classes_"]) == 2:
            return _losses.binary_log_loss
        return _losses.multiclass_log_loss

    def decision_function(self, X) -> np.ndarray:
        """Raw network output: a logit (binary) or one score per class.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        return self._raw_output(X)

    def predict(self, X) -> np.ndarray:
        """Predict class labels for ``X``."""
        return self._labels(self.decision_function(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for ``X``, shape (n_samples, n_classes)."""
        return self._probabilities(self.decision_function(X))

    def staged_decision_function(self, X):
        """Yield ``decision_function(X)`` after each stage."""
        yield from self._staged_raw_output(X)

    def staged_predict(self, X):
        """Yield ``predict(X)`` after each stage; the last equals ``predict(X)``."""
        for scores in self._staged_raw_output(X):
            yield self._labels(scores)

    def staged_predict_proba(self, X):
        """Yield ``predict_proba(X)`` after each stage."""
        for scores in self._staged_raw_output(X):
            yield self._probabilities(scores)

    def _labels(self, scores: np.ndarray) -> np.ndarray:
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        if self.loss == "log_loss":
            if scores.ndim == 1:
                p1 = 1.0 / (1.0 + np.exp(-scores))
                return np.column_stack([1.0 - p1, p1])
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        if scores.ndim == 1:
            p1 = np.clip((scores + 1.0) / 2.0, 0.0, 1.0)
            return np.column_stack([1.0 - p1, p1])
        clipped = np.clip(scores, 0.0, None)
        total = clipped.sum(axis=1, keepdims=True)
        uniform = np.full_like(clipped, 1.0 / clipped.shape[1])
        return np.where(total > 0, clipped / np.where(total > 0, total, 1.0), uniform)


for _cls in (TelescopingMLPRegressor, TelescopingMLPClassifier):
    _cls.__doc__ = _cls.__doc__.replace("%(common)s", _COMMON_PARAMS_DOC.strip())
