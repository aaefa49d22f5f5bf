"""The classifier: a telescoping MLP on class indices, binary or multiclass."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets

from sktelescope._core.losses import classification_loss
from sktelescope._mlp._base import BaseTelescopingMLP
from sktelescope._mlp._docs import document_parameters
from sktelescope._mlp._presets import AUTO_OPTION, preset_choices
from sktelescope._mlp._targets import ClassTargets

__all__ = ["TelescopingMLPClassifier"]

_OWN_LOCALS = {"self", "__class__", "label_smoothing"}


_LOSS = """\
loss : {"auto", "log_loss", "squared_error"}, default="auto"
    "auto" is "log_loss" (a logit for binary problems, softmax cross-entropy for
    multiclass); "squared_error" regresses one output on ±1 (binary) or one output per
    class on one-hot targets, as in the paper, and gives uncalibrated
    ``predict_proba`` (clipped outputs)."""

_LABEL_SMOOTHING = """\
label_smoothing : float in [0, 1) or "auto", default="auto"
    Train on ``1 - label_smoothing`` times the one-hot target plus
    ``label_smoothing / n_classes`` on every class (RealMLP uses 0.1). With
    ``loss="squared_error"`` the regression targets themselves are smoothed (±1 becomes
    ±(1 - label_smoothing)), so the lens's smoother acts on them, and ``predict_proba``
    maps them back; with "log_loss" ``predict_proba`` is the model's sigmoid/softmax,
    pulled towards uniform: keep 0 where calibrated probabilities matter.
    """ + preset_choices("label_smoothing")  # fmt: skip

_EARLY_STOPPING = """\
early_stopping : "auto" or bool, default="auto"
    Hold out ``validation_fraction`` of the data (or use ``X_val, y_val`` given to
    ``fit``), stop when the validation loss stops improving and keep the best epoch.
    "auto" enables it from 1,000 samples on: below that, holding out a validation
    split costs the classifier more accuracy than early stopping saves (measured on
    scikit-learn's bundled datasets at 10 to 160 rows; ``benchmarks/defaults.py``)."""


@document_parameters(loss=_LOSS, label_smoothing=_LABEL_SMOOTHING, early_stopping=_EARLY_STOPPING)
class TelescopingMLPClassifier(ClassifierMixin, BaseTelescopingMLP):
    """MLP classifier whose training run is an additive, boosting-like ensemble of stages.

    Binary problems use one output (a logit, or a ±1 regression with
    ``loss="squared_error"``), multiclass problems one output per class. ``telescope``
    and the stages decompose ``decision_function``.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    run_ : TrainingRun
        The fitted run: network, checkpoints, input/output mappings and loss.
    module_ : torch.nn.Sequential
        The trained network (outputs in decision-function units).
    stages_ : list of Stage
        The run as consecutive blocks of optimizer steps.
    n_stages_ : int
        ``len(stages_)``.
    n_iter_ : int
        Epochs run (accumulated over ``warm_start`` fits).
    n_steps_ : int
        Optimizer steps run.
    best_step_ : int
        Step whose parameters the model keeps.
    loss_curve_ : list of float
        Mean training loss per epoch.
    validation_score_ : ndarray
        Negative validation loss per epoch (only with early stopping).
    resolved_params_ : dict
        The value each setting that ``preset`` can fill took in the last fit (the preset's
        for those left at ``"auto"``); ``get_resolved_params()`` gives them before a fit.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of str
        Names of the features seen during ``fit`` (pandas input only).

    See Also
    --------
    TelescopingMLPRegressor : The regressor.
    sklearn.neural_network.MLPClassifier : scikit-learn's MLP, without stages.

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
        **BaseTelescopingMLP._parameter_constraints,
        "loss": [StrOptions({"auto", "log_loss", "squared_error"})],
        "label_smoothing": [Interval(Real, 0, 1, closed="left"), AUTO_OPTION],
    }

    _task = "classification"

    # Every parameter of BaseTelescopingMLP, plus label_smoothing (tests/test_docs.py checks
    # that the two signatures agree).
    def __init__(
        self, hidden_layer_sizes="auto", activation="auto", *, preset="tabular", loss="auto",
        label_smoothing="auto", optimizer="adam", learning_rate=1e-3, momentum=0.9,
        nesterov=False, beta_1=0.9, beta_2="auto", weight_decay=0.0, weight_decay_biases=True,
        lr_schedule="auto", warmup_steps=0, batch_size=256, max_iter="auto",
        early_stopping="auto", validation_fraction=0.1, n_iter_no_change="auto", tol=1e-4,
        init_scale=1.0, input_scaling="standard", max_stages=50, stage_every=None,
        warm_start=False, n_jobs=None, random_state=None, device="cpu", verbose=0,
        numerical_embedding="auto", embedding_dim=None, embedding_frequencies=16,
        embedding_sigma=0.1, embedding_bins=48, embedding_lr_factor=0.1,
        feature_scaling="auto", feature_scaling_lr_factor=6.0, dropout="auto",
    ):  # fmt: skip
        shared = {k: v for k, v in locals().items() if k not in _OWN_LOCALS}
        super().__init__(**shared)
        self.label_smoothing = label_smoothing

    def _target_spec(self, y) -> ClassTargets:
        check_classification_targets(y)
        classes = LabelEncoder().fit(y).classes_
        if len(classes) < 2:
            raise ValueError(
                "The classifier needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {classes[0]!r}."
            )
        return ClassTargets(classes)

    def _fitted_target_attributes(self, targets) -> dict:
        return {"classes_": targets.classes}

    def _make_loss(self, targets, params: dict):
        name = "log_loss" if self.loss == "auto" else self.loss
        return classification_loss(name, len(targets.classes), params["label_smoothing"])

    def _stratify(self, indices, targets) -> np.ndarray | None:
        counts = np.bincount(indices, minlength=len(targets.classes))
        counts = counts[counts > 0]
        n_val = math.ceil(self.validation_fraction * len(indices))
        n_train = len(indices) - n_val
        every_class_twice = counts.min() >= 2
        room_for_each_class = n_val >= len(counts) and n_train >= len(counts)
        return indices if every_class_twice and room_for_each_class else None

    def decision_function(self, X) -> np.ndarray:
        """Raw network output: a logit (binary) or one score per class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        return self._raw_output(X)

    def predict(self, X) -> np.ndarray:
        """Predict class labels for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        run = self._fitted_run()
        return run.classes[run.loss.class_index(run.predict_raw(X))]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        run = self._fitted_run()
        return run.loss.predict_proba(run.predict_raw(X))

    def staged_decision_function(self, X):
        """Yield ``decision_function(X)`` after each stage.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Yields
        ------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        yield from self._staged_raw_output(X)

    def staged_predict(self, X):
        """Yield ``predict(X)`` after each stage; the last equals ``predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Yields
        ------
        labels : ndarray of shape (n_samples,)
        """
        run = self._fitted_run()
        for scores in run.staged_raw(X):
            yield run.classes[run.loss.class_index(scores)]

    def staged_predict_proba(self, X):
        """Yield ``predict_proba(X)`` after each stage.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Yields
        ------
        proba : ndarray of shape (n_samples, n_classes)
        """
        run = self._fitted_run()
        for scores in run.staged_raw(X):
            yield run.loss.predict_proba(scores)
