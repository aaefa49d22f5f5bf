"""The regressor: a telescoping MLP with standardised real-valued targets."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import StrOptions

from sktelescope._checks import standardisation
from sktelescope._core.losses import SquaredError
from sktelescope._mlp._base import BaseTelescopingMLP
from sktelescope._mlp._docs import document_parameters
from sktelescope._mlp._targets import ValueTargets

__all__ = ["TelescopingMLPRegressor"]


_LOSS = """\
loss : {"auto", "squared_error"}, default="auto"
    The training loss; "auto" is "squared_error" (half the squared error of the
    standardised targets)."""

_EARLY_STOPPING = """\
early_stopping : "auto" or bool, default="auto"
    Hold out ``validation_fraction`` of the data (or use ``X_val, y_val`` given to
    ``fit``), stop when the validation loss stops improving and keep the best epoch.
    "auto" enables it from 20 samples on: without it the default network overfits
    small regression data badly (diabetes, 5-fold R² 0.20 without, 0.47 with;
    ``benchmarks/defaults.py``), and below 20 rows a validation split is too small."""


@document_parameters(loss=_LOSS, early_stopping=_EARLY_STOPPING)
class TelescopingMLPRegressor(RegressorMixin, BaseTelescopingMLP):
    """MLP regressor whose training run is an additive, boosting-like ensemble of stages.

    Inputs are scaled (``input_scaling``) and targets standardised internally. After
    ``fit``, ``stages_`` holds the run as blocks of optimizer steps: ``telescope(X)``
    splits each prediction into the initial network plus one contribution per stage,
    ``staged_predict`` yields the prediction after each stage, and every stage exposes
    its tangent kernel.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    run_ : TrainingRun
        The fitted run: network, checkpoints, input/output mappings and loss (what the
        lens measures).
    module_ : torch.nn.Sequential
        The trained network, in scaled units.
    stages_ : list of Stage
        The run as consecutive blocks of optimizer steps.
    n_stages_ : int
        ``len(stages_)``.
    n_iter_ : int
        Epochs run (accumulated over ``warm_start`` fits).
    n_steps_ : int
        Optimizer steps run.
    best_step_ : int
        Step whose parameters the model keeps (the last step without early stopping).
    loss_curve_ : list of float
        Mean training loss (standardised units) per epoch.
    validation_score_ : ndarray
        Negative validation loss per epoch (only with early stopping).
    resolved_params_ : dict
        The value each setting that ``preset`` can fill took in the last fit (the preset's
        for those left at ``"auto"``); ``get_resolved_params()`` gives them before a fit.
    n_outputs_ : int
        Number of targets.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of str
        Names of the features seen during ``fit`` (pandas input only).

    See Also
    --------
    TelescopingMLPClassifier : The classifier.
    sklearn.neural_network.MLPRegressor : scikit-learn's MLP, without stages.

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
    >>> bool(np.allclose(parts.sum(axis=1), est.predict(X[:3])))
    True
    """

    _parameter_constraints = {
        **BaseTelescopingMLP._parameter_constraints,
        "loss": [StrOptions({"auto", "squared_error"})],
    }

    def _validate_y_kwargs(self) -> dict:
        return {"multi_output": True, "y_numeric": True}

    def _target_spec(self, y) -> ValueTargets:
        return ValueTargets(1 if y.ndim == 1 else y.shape[1], type(self).__name__)

    def _fitted_target_attributes(self, targets) -> dict:
        return {"n_outputs_": targets.n_outputs}

    def _make_loss(self, targets, params: dict) -> SquaredError:
        return SquaredError(targets.n_outputs)

    def _target_scaling(self, encoded: np.ndarray):
        return standardisation(encoded, "y")

    def predict(self, X) -> np.ndarray:
        """Predict targets for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._raw_output(X)

    def staged_predict(self, X):
        """Yield the prediction on ``X`` after each stage; the last equals ``predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Yields
        ------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        yield from self._staged_raw_output(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
