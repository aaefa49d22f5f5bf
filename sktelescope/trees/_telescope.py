"""TreeTelescope: a fitted booster as a telescoping sum of kernel smoothers."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array

from sktelescope._staged import EffectiveParameters
from sktelescope.trees import _sklearn as sk
from sktelescope.trees import _smoother as sm
from sktelescope.trees._lightgbm import lightgbm_spec
from sktelescope.trees._smoother import TreeSmoother
from sktelescope.trees._spec import SQUARED_ERROR, BoosterSpec, negative_gradient_and_hessian
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


def _spec_for(model, X_train: np.ndarray, y_train: np.ndarray) -> BoosterSpec:
    """Dispatch on the model's class name, so that xgboost / lightgbm stay optional imports."""
    name = type(model).__name__
    module = type(model).__module__.split(".")[0]
    if module == "xgboost" and name in ("XGBRegressor", "XGBClassifier"):
        _check_fitted(model, "_Booster")
        return xgboost_spec(model, X_train, y_train)
    if module == "lightgbm" and name in ("LGBMRegressor", "LGBMClassifier"):
        _check_fitted(model, "_Booster")
        return lightgbm_spec(model, X_train, y_train)
    if module == "sklearn":
        if name in ("GradientBoostingRegressor", "GradientBoostingClassifier"):
            _check_fitted(model, "estimators_")
            return sk.gradient_boosting_spec(model, X_train, y_train)
        if name in ("HistGradientBoostingRegressor", "HistGradientBoostingClassifier"):
            _check_fitted(model, "_predictors")
            return sk.hist_gradient_boosting_spec(model, X_train, y_train)
    raise TypeError(f"TreeTelescope does not support {name}; supported models are {_SUPPORTED}.")


def _check_fitted(model, attribute: str) -> None:
    if getattr(model, attribute, None) is None:
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before passing it to TreeTelescope."
        )


class TreeTelescope:
    """A fitted gradient-boosted tree ensemble as a telescoping sum of kernel smoothers.

    Parameters
    ----------
    model : fitted estimator
        One of ``xgboost.XGBRegressor`` / ``XGBClassifier`` (binary), ``lightgbm.LGBMRegressor``
        / ``LGBMClassifier`` (binary), scikit-learn's ``GradientBoostingRegressor`` /
        ``GradientBoostingClassifier`` (binary) or ``HistGradientBoostingRegressor`` /
        ``HistGradientBoostingClassifier`` (binary), with squared-error or log-loss objective.
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
        Why ``weights @ pseudo_residuals`` may differ from ``stage.predict`` for this model
        (empty when the smoother view is exact).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = GradientBoostingRegressor(n_estimators=10, max_depth=2).fit(X, y)
    >>> tel = TreeTelescope(model, X, y)
    >>> tel.n_stages_
    10
    >>> parts = tel.telescope(X[:5])
    >>> bool(np.allclose(parts.sum(axis=1), model.predict(X[:5])))
    True
    """

    def __init__(self, model, X_train, y_train) -> None:
        y_train = np.asarray(y_train)
        if y_train.ndim != 1:
            raise ValueError(f"y_train must be 1-dimensional, got shape {y_train.shape}.")
        if _n_rows(X_train) != y_train.shape[0]:
            raise ValueError(
                f"X_train has {_n_rows(X_train)} rows but y_train has {y_train.shape[0]}; "
                "pass the data the model was fitted on."
            )
        self.model = model
        self._spec = _spec_for(model, X_train, y_train)
        self._X_train = X_train
        self._leaf_cache = None
        self._leaves_train = self._spec.apply(X_train)
        self.n_stages_ = self._spec.n_stages
        self.loss_ = self._spec.loss
        self.approximations_ = list(self._spec.approximations)
        if self.approximations_:
            warnings.warn(
                "TreeTelescope: weights @ pseudo_residuals only approximates the stages of this "
                f"{self._spec.library}: " + " ".join(self.approximations_) + " Measure the gap "
                "with reconstruction_errors().",
                UserWarning,
                stacklevel=2,
            )
        self.stages_ = self._build_stages()

    def _build_stages(self) -> list[TreeStage]:
        spec = self._spec
        raw = spec.init(self._X_train).astype(np.float64)
        stages = []
        for k in range(spec.n_stages):
            residuals, hessians = negative_gradient_and_hessian(spec.loss, raw, spec.y)
            stages.append(TreeStage(self, k, residuals, hessians, self._leaves_train[:, k]))
            raw = raw + spec.leaf_values[k][self._leaves_train[:, k]]
        return stages

    def _leaves(self, X) -> np.ndarray:
        """Leaf ids (n_samples, n_stages), remembered for the last array seen (by content)."""
        if X is self._X_train:
            return self._leaves_train
        if not isinstance(X, np.ndarray):
            return self._spec.apply(X)
        key = (X.shape, X.dtype.str, hashlib.blake2b(np.ascontiguousarray(X).tobytes()).digest())
        if self._leaf_cache is None or self._leaf_cache[0] != key:
            self._leaf_cache = (key, self._spec.apply(X))
        return self._leaf_cache[1]

    @property
    def fit_mask_(self) -> np.ndarray:
        """Boolean mask of the training points the trees were fitted on."""
        return self._spec.fit_mask

    def pseudo_residuals(self, k: int) -> np.ndarray:
        """Pseudo-residuals ``-dl/df`` of round ``k`` on the training points.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> tel = TreeTelescope(GradientBoostingRegressor(n_estimators=3).fit(X, y), X, y)
        >>> bool(np.allclose(tel.pseudo_residuals(0), y - y.mean()))
        True
        """
        return self.stages_[k].pseudo_residuals

    def telescope(self, X) -> np.ndarray:
        """Initial prediction and per-round contributions, shape (n_samples, 1 + n_stages).

        Column 0 is the initial raw prediction (base score / init estimator); the rows sum to
        the model's raw prediction (margin / decision function).

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import HistGradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = HistGradientBoostingRegressor(max_iter=5).fit(X, y)
        >>> TreeTelescope(model, X, y).telescope(X[:2]).shape
        (2, 6)
        """
        leaves = self._leaves(X)
        columns = [self._spec.init(X).astype(np.float64)]
        columns += [self._spec.leaf_values[k][leaves[:, k]] for k in range(self.n_stages_)]
        return np.column_stack(columns)

    def staged_predict(self, X) -> Iterator[np.ndarray]:
        """Raw prediction after each round; the last one is the model's raw prediction.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = GradientBoostingRegressor(n_estimators=4).fit(X, y)
        >>> len(list(TreeTelescope(model, X, y).staged_predict(X[:3])))
        4
        """
        parts = self.telescope(X)
        yield from np.cumsum(parts, axis=1)[:, 1:].T

    def reconstruction_errors(self, X=None) -> dict[str, np.ndarray | float]:
        """Measured gaps between this view and the library, on ``X`` (default: X_train).

        Returns
        -------
        dict with
            ``"telescope"``: max |row sum of telescope(X) - library raw prediction|;
            ``"staged"``: per round, max |staged_predict - library staged raw prediction|;
            ``"weights"``: per round, max |weights(X) @ pseudo_residuals - stage.predict(X)|.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> tel = TreeTelescope(GradientBoostingRegressor(n_estimators=3).fit(X, y), X, y)
        >>> bool(tel.reconstruction_errors()["weights"].max() < 1e-9)
        True
        """
        X = self._X_train if X is None else X
        parts = self.telescope(X)
        staged = np.cumsum(parts, axis=1)
        library = [self._spec.staged_raw_predict(X, k) for k in range(1, self.n_stages_ + 1)]
        weights = [
            np.max(np.abs(s.weights(X) @ s.pseudo_residuals - parts[:, k + 1]))
            for k, s in enumerate(self.stages_)
        ]
        return {
            "telescope": float(np.max(np.abs(staged[:, -1] - self._spec.raw_predict(X)))),
            "staged": np.array(
                [np.max(np.abs(staged[:, k + 1] - lib)) for k, lib in enumerate(library)]
            ),
            "weights": np.array(weights),
        }

    def _check_squared_error(self) -> None:
        if self.loss_ != SQUARED_ERROR:
            raise ValueError(
                f"The smoother S y + c exists only under squared-error loss; this "
                f"{self._spec.library} uses {self.loss_!r}, whose rounds are not linear in y."
            )

    def _states(self, X_eval, max_entries: int) -> Iterator[tuple]:
        self._check_squared_error()
        n = self._spec.y.shape[0]
        sm.check_size(n, n, max_entries, "training")
        init_eval = None
        if X_eval is not None:
            sm.check_size(_n_rows(X_eval), n, max_entries, "evaluation")
            init_eval = self._spec.init(X_eval).astype(np.float64)
        init_train = self._spec.init(self._X_train).astype(np.float64)
        start = sm.initial_smoother(init_train, init_eval, self._spec.y, self.fit_mask_)
        w_train = (s.weights(self._X_train) for s in self.stages_)
        w_eval = (None if X_eval is None else s.weights(X_eval) for s in self.stages_)
        return sm.run_recursion(w_train, w_eval, start)

    def smoother(self, X_eval=None, *, max_entries: int = MAX_SMOOTHER_ENTRIES) -> TreeSmoother:
        """Smoother matrices of the whole (squared-error) ensemble.

        ``S_train @ y_train + c_train`` is the raw prediction on the training inputs and
        ``s_eval @ y_train + c_eval`` on ``X_eval``. Dense: raises ValueError when a block has
        more than ``max_entries`` entries (default 25 million = 200 MB, e.g. 5000 x 5000).

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = GradientBoostingRegressor(n_estimators=5, max_depth=2).fit(X, y)
        >>> S, s, c, c_eval = TreeTelescope(model, X, y).smoother(X[:4])
        >>> bool(np.allclose(s @ y + c_eval, model.predict(X[:4])))
        True
        """
        *_, last = self._states(X_eval, max_entries)
        return TreeSmoother(*last)

    def effective_parameters(
        self, X_eval=None, *, max_entries: int = MAX_SMOOTHER_ENTRIES
    ) -> EffectiveParameters:
        """Effective parameters ``p^train`` and ``p^test`` after each stage (PAPER.md §2b).

        Entry 0 is the initial prediction, entry t the ensemble after t rounds (aligned with
        the columns of :meth:`telescope`); the last entry is the whole ensemble. ``p_test`` is
        NaN without ``X_eval``. ``steps`` are the boosting rounds ``0..n_stages``.
        Squared-error loss only; same memory limit as :meth:`smoother`.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = GradientBoostingRegressor(n_estimators=5, max_depth=2).fit(X[:300], y[:300])
        >>> p = TreeTelescope(model, X[:300], y[:300]).effective_parameters(X[300:])
        >>> float(round(p.p_train[0], 6)), p.p_test.shape
        (1.0, (6,))
        """
        p_train, p_test = sm.effective_parameters(self._states(X_eval, max_entries), self.fit_mask_)
        if p_test is None:
            p_test = np.full_like(p_train, np.nan)
        return EffectiveParameters(np.arange(len(p_train)), p_train, p_test)


def _n_rows(X) -> int:
    shape = getattr(X, "shape", None)
    if shape is None:
        X = check_array(X, ensure_all_finite=False)
        shape = X.shape
    return int(shape[0])
