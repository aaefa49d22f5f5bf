"""TreeTelescope: a fitted booster as a telescoping sum of kernel smoothers."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator

import numpy as np
from sklearn.exceptions import NotFittedError

import sktelescope.trees._sklearn as sk
import sktelescope.trees._smoother as sm
from sktelescope._staged import EffectiveParameters, check_training_rows, row_fingerprints
from sktelescope._wrapped import unwrap
from sktelescope.trees._check import check_inputs, check_training_data
from sktelescope.trees._lightgbm import lightgbm_spec
from sktelescope.trees._smoother import TreeSmoother
from sktelescope.trees._spec import SQUARED_ERROR, BoosterSpec, round_gradients
from sktelescope.trees._stage import TreeStage
from sktelescope.trees._xgboost import xgboost_spec

#: Largest dense smoother block (rows x training points) built without being asked to:
#: 25 million float64 entries = 200 MB, e.g. 5000 x 5000.
MAX_SMOOTHER_ENTRIES = 25_000_000

_SUPPORTED = (
    "xgboost.XGBRegressor, xgboost.XGBClassifier (binary), lightgbm.LGBMRegressor, "
    "lightgbm.LGBMClassifier (binary), sklearn GradientBoostingRegressor/Classifier (binary), "
    "sklearn HistGradientBoostingRegressor/Classifier (binary)"
)

#: (module, class names, attribute set by fit, backend) per supported library.
_BACKENDS = [
    ("xgboost", ("XGBRegressor", "XGBClassifier"), "_Booster", xgboost_spec),
    ("lightgbm", ("LGBMRegressor", "LGBMClassifier"), "_Booster", lightgbm_spec),
    (
        "sklearn",
        ("GradientBoostingRegressor", "GradientBoostingClassifier"),
        "estimators_",
        sk.gradient_boosting_spec,
    ),
    (
        "sklearn",
        ("HistGradientBoostingRegressor", "HistGradientBoostingClassifier"),
        "_predictors",
        sk.hist_gradient_boosting_spec,
    ),
]


def _spec_for(model, y_train: np.ndarray) -> BoosterSpec:
    """Dispatch on the model's class name, so that xgboost / lightgbm stay optional imports."""
    name = type(model).__name__
    module = type(model).__module__.split(".")[0]
    for library, names, fitted_attribute, backend in _BACKENDS:
        if module == library and name in names:
            if getattr(model, fitted_attribute, None) is None:
                raise NotFittedError(
                    f"This {name} instance is not fitted yet. Call 'fit' with appropriate "
                    "arguments before passing it to TreeTelescope."
                )
            return backend(model, y_train)
    raise TypeError(f"TreeTelescope does not support {name}; supported models are {_SUPPORTED}.")


class TreeTelescope:
    """A fitted gradient-boosted tree ensemble as a telescoping sum of kernel smoothers.

    At construction the telescope checks that ``X_train``/``y_train`` reproduce the booster:
    their pseudo-residuals must rebuild the library's initial prediction and every leaf
    value, to the library's float precision (approximately, within each leaf's range, where
    the library departs from a weighted sum of pseudo-residuals: see ``approximations_``).
    It keeps a copy of ``X_train`` and ``y_train``: changing the caller's arrays later
    changes nothing here.

    Parameters
    ----------
    model : fitted estimator, Pipeline or search
        One of ``xgboost.XGBRegressor`` / ``XGBClassifier`` (binary), ``lightgbm.LGBMRegressor``
        / ``LGBMClassifier`` (binary), scikit-learn's ``GradientBoostingRegressor`` /
        ``GradientBoostingClassifier`` (binary) or ``HistGradientBoostingRegressor`` /
        ``HistGradientBoostingClassifier`` (binary), with squared-error or log-loss objective;
        or a fitted Pipeline ending in one (every input of every method is then raw data,
        passed through the pipeline's transformers as ``predict`` passes it), or a fitted
        ``GridSearchCV``/``RandomizedSearchCV`` over one (its ``best_estimator_``).
    X_train : array-like of shape (n_train, n_features)
        The inputs the model was fitted on (all of them, including any internal validation
        split: that split is re-drawn and its points get zero weight).
    y_train : array-like of shape (n_train,)
        The targets the model was fitted on.

    Attributes
    ----------
    stages_ : list of TreeStage
        One per boosting round that the model's own prediction uses. After early stopping
        that is ``best_iteration + 1`` rounds for XGBoost and ``best_iteration_`` for LightGBM,
        so the telescope always ends at ``model.predict``'s raw prediction.
    n_stages_ : int
    loss_ : {"squared_error", "log_loss"}
    approximations_ : list of str
        Every way in which ``weights @ pseudo_residuals`` may differ from ``stage.predict``
        for this model, and that ``X_train``/``y_train`` could then only be checked
        approximately (empty when the smoother view is exact).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = GradientBoostingRegressor(n_estimators=10, max_depth=2).fit(X[:300], y[:300])
    >>> tel = TreeTelescope(model, X[:300], y[:300])
    >>> tel.n_stages_, tel.approximations_
    (10, [])
    >>> parts = tel.telescope(X[300:])  # initial prediction, then one column per round
    >>> bool(np.allclose(parts.sum(axis=1), model.predict(X[300:])))
    True
    >>> S, s, c, c_eval = tel.smoother(X[300:])  # prediction = s @ y_train + c (squared error)
    >>> bool(np.allclose(s @ y[:300] + c_eval, model.predict(X[300:])))
    True
    >>> TreeTelescope(model, X[:300], y[:300] + 1.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X_train/y_train do not reproduce the GradientBoostingRegressor's initial ...
    """

    def __init__(self, model, X_train, y_train) -> None:
        y_train = np.asarray(y_train)
        if y_train.ndim != 1:
            raise ValueError(f"y_train must be 1-dimensional, got shape {y_train.shape}.")
        self.model = model
        self._wrapped = inner = unwrap(model, "TreeTelescope")
        self._spec = spec = _spec_for(inner.model, y_train)
        self._X_train = self._inputs(X_train, "X_train", copy=True)
        if self._X_train.shape[0] != y_train.shape[0]:
            raise ValueError(
                f"X_train has {self._X_train.shape[0]} rows but y_train has "
                f"{y_train.shape[0]}; pass the data the model was fitted on."
            )
        self._leaves_train = spec.apply(self._X_train)
        self._fingerprints = row_fingerprints(self._X_train)
        self._leaf_cache: tuple | None = None
        gradients = list(round_gradients(spec, self._X_train, self._leaves_train))
        fit_mask, notes = check_training_data(spec, self._X_train, self._leaves_train, gradients)
        self._fit_mask = fit_mask.copy()
        self._fit_mask.setflags(write=False)
        self.n_stages_ = spec.n_stages
        self.loss_ = spec.loss
        self.approximations_ = [*spec.approximations, *notes]
        if self.approximations_:
            warnings.warn(
                "TreeTelescope: weights @ pseudo_residuals only approximates the stages of this "
                f"{spec.library}: " + " ".join(self.approximations_) + " Measure the gap "
                "with reconstruction_errors().",
                UserWarning,
                stacklevel=2,
            )
        self.stages_ = [
            TreeStage(k, r, h, self._leaves_train[:, k], spec=spec, fit_mask=self._fit_mask,
                      leaves_of=self._leaf_ids)
            for k, (r, h) in enumerate(gradients)
        ]  # fmt: skip

    def _inputs(self, X, name: str, copy: bool = False) -> np.ndarray:
        """Raw inputs -> the booster's (through a Pipeline's transformers), checked."""
        return check_inputs(self._wrapped.transform(X), self._spec, name, copy=copy)

    def _validated(self, X, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``X`` checked (feature count, NaN/inf) and its leaf ids (n_samples, n_stages).

        The leaf ids of the last array seen are remembered by content, never by identity, so
        an array changed in place is looked up again.
        """
        X = self._inputs(X, name)
        digest = hashlib.blake2b(np.ascontiguousarray(X).tobytes()).digest()
        key = (X.shape, digest)
        if self._leaf_cache is None or self._leaf_cache[0] != key:
            self._leaf_cache = (key, self._spec.apply(X))
        return X, self._leaf_cache[1]

    def _leaf_ids(self, X, name: str) -> np.ndarray:
        return self._validated(X, name)[1]

    def _parts(self, X: np.ndarray, leaves: np.ndarray) -> np.ndarray:
        columns = [self._spec.init(X).astype(np.float64)]
        columns += [self._spec.leaf_values[k][leaves[:, k]] for k in range(self.n_stages_)]
        return np.column_stack(columns)

    @property
    def fit_mask_(self) -> np.ndarray:
        """Boolean mask of the training points the trees were fitted on (read-only).

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> bool(tel.fit_mask_.all())  # no internal early-stopping split
        True
        """
        return self._fit_mask

    def pseudo_residuals(self, k: int) -> np.ndarray:
        """Pseudo-residuals ``-dl/df`` of round ``k`` on the training points.

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> bool(np.allclose(tel.pseudo_residuals(0), y - y.mean()))
        True
        """
        if not -self.n_stages_ <= k < self.n_stages_:
            raise IndexError(f"k must index one of the {self.n_stages_} stages, got {k}.")
        return self.stages_[k].pseudo_residuals

    def check_training_inputs(self, X, name: str = "X_train") -> np.ndarray:
        """Raise unless every row of ``X`` is a row of the ``X_train`` this view was built on.

        A subset of the rows, in any order, passes. Returns ``X`` as a validated float64
        array. The lens calls this before it measures kernels against ``X``.

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> tel.check_training_inputs(X[:5]).shape
        (5, 10)
        """
        X = self._inputs(X, name)
        check_training_rows(X, self._fingerprints, name)
        return X

    def telescope(self, X) -> np.ndarray:
        """Initial prediction and per-round contributions, shape (n_samples, 1 + n_stages).

        Column 0 is the initial raw prediction (base score / init estimator); the rows sum to
        the model's raw prediction (margin / decision function).

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> tel.telescope(X[:2]).shape
        (2, 11)
        """
        return self._parts(*self._validated(X, "X"))

    def staged_predict(self, X) -> Iterator[np.ndarray]:
        """Raw prediction after each round; the last one is the model's raw prediction.

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> len(list(tel.staged_predict(X[:3])))
        10
        """
        parts = self.telescope(X)
        yield from np.cumsum(parts, axis=1)[:, 1:].T

    def reconstruction_errors(self, X=None) -> dict[str, np.ndarray | float]:
        """Measured gaps between this view and the library, on ``X`` (default: X_train).

        Returns
        -------
        dict with
            ``"telescope"``: ``max |row sum of telescope(X) - library raw prediction|``;
            ``"staged"``: per round, ``max |staged_predict - library staged raw prediction|``;
            ``"weights"``: per round, ``max |weights(X) @ pseudo_residuals - stage.predict(X)|``.

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> bool(tel.reconstruction_errors()["weights"].max() < 1e-9)
        True
        """
        if X is None:
            X, leaves = self._X_train, self._leaves_train
        else:
            X, leaves = self._validated(X, "X")
        parts = self._parts(X, leaves)
        staged = np.cumsum(parts, axis=1)
        library = list(self._spec.staged_raw_predict(X))
        weights = [
            np.max(np.abs(s.weights_of_leaves(leaves[:, k]) @ s.pseudo_residuals - parts[:, k + 1]))
            for k, s in enumerate(self.stages_)
        ]
        return {
            "telescope": float(np.max(np.abs(staged[:, -1] - self._spec.raw_predict(X)))),
            "staged": np.array(
                [np.max(np.abs(staged[:, k + 1] - lib)) for k, lib in enumerate(library)]
            ),
            "weights": np.array(weights),
        }

    def _states(self, X_eval, max_entries: int) -> Iterator[tuple]:
        if self.loss_ != SQUARED_ERROR:
            raise ValueError(
                f"The smoother S y + c exists only under squared-error loss; this "
                f"{self._spec.library} uses {self.loss_!r}, whose rounds are not linear in y."
            )
        n = self._spec.y.shape[0]
        sm.check_size(n, n, max_entries, "training")
        init_eval = leaves_eval = None
        if X_eval is not None:
            X_eval, leaves_eval = self._validated(X_eval, "X_eval")
            sm.check_size(X_eval.shape[0], n, max_entries, "evaluation")
            init_eval = self._spec.init(X_eval).astype(np.float64)
        init_train = self._spec.init(self._X_train).astype(np.float64)
        start = sm.initial_smoother(init_train, init_eval, self._spec.y, self._fit_mask)
        train = self._leaves_train
        w_train = (s.weights_of_leaves(train[:, k]) for k, s in enumerate(self.stages_))
        w_eval = (
            None if X_eval is None else s.weights_of_leaves(leaves_eval[:, k])
            for k, s in enumerate(self.stages_)
        )
        return sm.run_recursion(w_train, w_eval, start)

    def smoother(self, X_eval=None, *, max_entries: int = MAX_SMOOTHER_ENTRIES) -> TreeSmoother:
        """Smoother matrices of the whole (squared-error) ensemble.

        ``S_train @ y_train + c_train`` is the raw prediction on the training inputs and
        ``s_eval @ y_train + c_eval`` on ``X_eval``. Dense: raises ValueError when a block has
        more than ``max_entries`` entries (default 25 million = 200 MB, e.g. 5000 x 5000).

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> smoother = tel.smoother()
        >>> bool(np.allclose(smoother.S_train @ y + smoother.c_train, tel.model.predict(X)))
        True
        """
        *_, last = self._states(X_eval, max_entries)
        return TreeSmoother(*last)

    def effective_parameters(
        self, X_eval=None, *, max_entries: int = MAX_SMOOTHER_ENTRIES
    ) -> EffectiveParameters:
        """Effective parameters ``p^train`` and ``p^test`` after each stage.

        See :ref:`math-effective-parameters`.

        Entry 0 is the initial prediction, entry t the ensemble after t rounds (aligned with
        the columns of :meth:`telescope`); the last entry is the whole ensemble. ``p_test`` is
        NaN without ``X_eval``. ``steps`` are the boosting rounds ``0..n_stages``.
        Squared-error loss only; same memory limit as :meth:`smoother`.

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> p = tel.effective_parameters(X[:50])
        >>> float(round(p.p_train[0], 6)), p.p_test.shape
        (1.0, (11,))
        """
        p_train, p_test = sm.effective_parameters(self._states(X_eval, max_entries), self._fit_mask)
        if p_test is None:
            p_test = np.full_like(p_train, np.nan)
        return EffectiveParameters(np.arange(len(p_train)), p_train, p_test)
