"""Library-neutral description of a fitted boosted tree ensemble.

Each backend (``_xgboost``, ``_lightgbm``, ``_sklearn``) turns a fitted model
into a :class:`BoosterSpec`; :mod:`sktelescope.trees` builds stages, kernels and smoothers from it
without knowing which library the trees came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_array

SQUARED_ERROR = "squared_error"
LOG_LOSS = "log_loss"

#: Relative precision of leaf values rebuilt from float64 gradients (scikit-learn
#: GradientBoosting) and from float32 gradients or scores (XGBoost, LightGBM,
#: HistGradientBoosting). Measured worst cases on diabetes and breast cancer, 100 to 200
#: rounds: 5e-14 and 5e-6; a wrong X_train or y_train gives errors of order 0.01 to 1.
FLOAT64_RTOL = 1e-9
FLOAT32_RTOL = 1e-4


@dataclass
class BoosterSpec:
    """What the telescope needs to know about one fitted booster.

    Attributes
    ----------
    library : str
        Human-readable name of the model class, used in messages.
    loss : {"squared_error", "log_loss"}
        The training loss, as a function of the raw prediction.
    n_stages : int
        Number of boosting rounds the model's own prediction uses (after early stopping).
    n_features : int
        Number of input columns the model was fitted on (its ``n_features_in_``).
    feature_names : ndarray of str or None
        The column names the model was fitted on (its ``feature_names_in_``), if any.
    learning_rate : float
        Shrinkage applied to every leaf value.
    reg_lambda : float
        Constant added to the hessian sum of every leaf (L2 leaf penalty and numerical guards).
    apply : callable
        ``apply(X) -> ndarray (n_samples, n_stages)`` of integer leaf ids, one column per round.
    leaf_values : list of ndarray
        ``leaf_values[k][leaf_id]`` is round k's contribution (learning rate included) for
        inputs falling in that leaf.
    init : callable
        ``init(X) -> ndarray (n_samples,)``, the initial raw prediction (base score).
    raw_predict : callable
        ``raw_predict(X) -> ndarray (n_samples,)``, the library's own final raw prediction.
    staged_raw_predict : callable
        ``staged_raw_predict(X) -> iterator of ndarray``: the library's own raw prediction
        after each round ``1..n_stages``, in order, from one pass over the trees (a library
        whose staged prediction restarts at round 0 for every k would cost
        ``n_stages**2 / 2`` tree evaluations).
    y : ndarray
        Training targets as the library's loss sees them (0/1 for binary classifiers, rounded
        to float32 where the library stores labels in float32).
    fit_masks : list of ndarray of bool
        Candidates for the training points the trees were fitted on, most likely first (an
        internal early-stopping split the library does not record, then all points). The
        telescope keeps the first one with which ``y`` reproduces the leaf values.
    approximations : list of str
        Every way in which the library departs from "leaf value = learning rate x weighted sum
        of pseudo-residuals of the training points in the leaf".
    intercept : callable or None
        ``intercept(y_fit) -> float``: the initial raw prediction the library derives from
        the targets it was fitted on (mean, log-odds of the mean); ``None`` where it is given
        rather than derived (a user's base score or init estimator) or folded into the first
        tree (LightGBM), so that only the leaves can check it.
    allow_non_finite : bool
        Whether the library's prediction accepts NaN and infinite inputs (missing values).
    score_dtype : numpy dtype
        Precision in which the library accumulates raw predictions during training.
    rtol : float
        Relative precision to which the library's leaf values are reproducible (float64 or
        float32 gradients): the tolerance of the check on ``X_train``/``y_train``.
    reg_alpha : float
        L1 leaf penalty: a leaf value is ``-lr * T(G) / (H + reg_lambda)`` with ``T`` the
        soft-thresholding of the gradient sum ``G`` at ``reg_alpha``.
    max_delta_step : float
        Leaf values before shrinkage are clipped to ``[-max_delta_step, max_delta_step]``
        (0: no clipping).
    exactly_checkable : bool
        Whether the leaf values can be rebuilt exactly from X_train/y_train. Not when each
        tree saw a random subset or re-weighting of the training points that the library
        does not store (row subsampling, GOSS, an internal split that cannot be re-drawn),
        nor when the leaf formula uses quantities the library does not store (LightGBM's
        path smoothing under log-loss estimates node sizes from hessian sums). Leaf values
        and sizes are then only checked approximately.
    path_smooth : float
        LightGBM's path smoothing ``a``: every node's value ``v`` (root first) becomes
        ``(v * n / a + parent) / (n / a + 1)`` with ``n`` its training points (0: none).
    leaf_ancestors : list of list of list of ndarray, or None
        With path smoothing, ``leaf_ancestors[k][leaf]`` lists, root first, the leaf ids
        under each ancestor of that leaf in round k.
    leaf_counts : list of ndarray or None
        ``leaf_counts[k][leaf_id]``: how many training points the library put in that leaf of
        round k (-1 for ids that are not leaves); ``None`` where the library does not store it.
    """

    library: str
    loss: str
    n_stages: int
    n_features: int
    feature_names: np.ndarray | None
    learning_rate: float
    reg_lambda: float
    apply: Callable[[np.ndarray], np.ndarray]
    leaf_values: list[np.ndarray]
    init: Callable[[np.ndarray], np.ndarray]
    raw_predict: Callable[[np.ndarray], np.ndarray]
    staged_raw_predict: Callable[[np.ndarray], Iterator[np.ndarray]]
    y: np.ndarray
    fit_masks: list[np.ndarray]
    approximations: list[str] = field(default_factory=list)
    intercept: Callable[[np.ndarray], float] | None = None
    allow_non_finite: bool = True
    score_dtype: type = np.float64
    rtol: float = FLOAT32_RTOL
    reg_alpha: float = 0.0
    max_delta_step: float = 0.0
    exactly_checkable: bool = True
    path_smooth: float = 0.0
    leaf_ancestors: list[list[list[np.ndarray]]] | None = None
    binomial: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None

    @classmethod
    def of(cls, model, **fields) -> BoosterSpec:
        """The spec of ``model``: its class name, feature count and names, then ``fields``."""
        return cls(
            library=type(model).__name__,
            n_features=int(model.n_features_in_),
            feature_names=fitted_feature_names(model),
            **fields,
        )

    leaf_counts: list[np.ndarray] | None = None


def round_gradients(
    spec: BoosterSpec, X_train: np.ndarray, leaves_train: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield each round's pseudo-residuals and hessians on the training points.

    The raw predictions are accumulated as the library accumulates them during training
    (``spec.score_dtype``: float32 for XGBoost), from the initial prediction and the
    library's own leaf values, so that the gradients are those the library's trees saw.
    """
    raw = spec.init(X_train).astype(spec.score_dtype)
    for k in range(spec.n_stages):
        yield negative_gradient_and_hessian(spec.loss, raw.astype(np.float64), spec.y,
                                            spec.binomial)  # fmt: skip
        raw = raw + spec.leaf_values[k][leaves_train[:, k]].astype(spec.score_dtype)


def negative_gradient_and_hessian(
    loss: str, raw: np.ndarray, y: np.ndarray, binomial=None
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-residuals ``-dl/df`` and hessians ``d2l/df2`` at raw predictions ``raw``.

    ``squared_error`` is ``(y - f)**2 / 2``; ``log_loss`` is the binomial deviance of
    ``sigmoid(f)`` against 0/1 labels, as every supported library defines them, computed as
    ``y - sigmoid(f)`` and ``p(1 - p)``, or by the library's own arithmetic ``binomial(raw,
    y)`` where its leaf values carry it (:func:`sklearn_binomial`).
    """
    if loss == SQUARED_ERROR:
        return y - raw, np.ones_like(raw)
    if binomial is not None:
        return binomial(raw, y)
    p = expit(raw)
    return y - p, p * (1.0 - p)


def sklearn_binomial(raw: np.ndarray, y: np.ndarray, loss=None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn GradientBoosting's log-loss terms: its ``HalfBinomialLoss`` gradient,
    negated, and the hessian its leaf update takes from it (``p = y - r``, then
    ``p * (1 - p)``).

    Far from 0 these differ from ``y - sigmoid(f)`` and ``p(1 - p)`` in the last bits, which
    a confident leaf's Newton step (a ratio of two tiny sums) magnifies to percents; the
    library's leaf values carry its rounding, so the check uses its arithmetic: ``loss``, the
    model's own loss object when it has one, else the same stable formula.

    Examples
    --------
    >>> r, h = sklearn_binomial(np.array([35.0, 0.0]), np.array([1.0, 1.0]))
    >>> bool(r[0] > 0), float(r[1]), float(h[1])
    (True, 0.5, 0.25)
    """
    if hasattr(loss, "gradient"):
        residual = -np.asarray(loss.gradient(y_true=y, raw_prediction=raw), dtype=np.float64)
    else:
        with np.errstate(over="ignore"):
            upper, lower = np.exp(-raw), np.exp(raw)
        residual = -np.where(raw > -37, ((1 - y) - y * upper) / (1 + upper), lower - y)
    p = y - residual
    return residual, p * (1 - p)


def leaf_indicator(
    leaves: np.ndarray, n_leaves: int, mask: np.ndarray | None = None
) -> sparse.csr_array:
    """One-hot CSR matrix (n_samples, n_leaves) of leaf membership, rows outside mask empty."""
    n = leaves.shape[0]
    rows = np.arange(n)
    if mask is not None:
        rows, leaves = rows[mask], leaves[mask]
    data = np.ones(rows.shape[0])
    return sparse.csr_array((data, (rows, leaves)), shape=(n, n_leaves))


def validation_split_mask(
    n_samples: int, test_size: float, random_state, stratify: np.ndarray | None
) -> np.ndarray:
    """Boolean mask of the points a library's internal ``train_test_split`` kept for training."""
    train_idx, _ = train_test_split(
        np.arange(n_samples), test_size=test_size, random_state=random_state, stratify=stratify
    )
    mask = np.zeros(n_samples, dtype=bool)
    mask[train_idx] = True
    return mask


def binary_targets(y: np.ndarray, classes: np.ndarray, library: str) -> np.ndarray:
    """Encode binary labels as 0/1 floats in the order of ``classes``; refuse multiclass."""
    classes = np.asarray(classes)
    if classes.shape[0] != 2:
        raise ValueError(
            f"TreeTelescope supports binary classifiers only for now; this {library} was fitted "
            f"on {classes.shape[0]} classes. Fit one binary model per class to inspect it."
        )
    y = np.asarray(y)
    unknown = ~np.isin(y, classes)
    if unknown.any():
        raise ValueError(
            f"y_train contains labels {np.unique(y[unknown])[:5]} the {library} was not "
            f"fitted on (classes_={classes}). Pass the training labels the model was fitted on."
        )
    return (y == classes[1]).astype(np.float64)


def fitted_feature_names(model) -> np.ndarray | None:
    """The column names a model was fitted on, or None if it was fitted on an array."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else np.asarray(names, dtype=object)


def with_feature_names(X: np.ndarray, model):
    """``X`` as the DataFrame a model fitted on named columns expects (for its own predict)."""
    names = fitted_feature_names(model)
    return X if names is None else pd.DataFrame(X, columns=names)


def regression_targets(y: np.ndarray) -> np.ndarray:
    """Regression targets as finite float64 numbers; refuse NaN and infinity."""
    return check_array(y, ensure_2d=False, dtype=np.float64, input_name="y_train")


def parse_float_list(text: str) -> np.ndarray:
    """Parse XGBoost-style numbers such as ``"0.5"`` or ``"[5E-1]"`` into a float array."""
    text = text.strip().strip("[]")
    return np.array([float(t) for t in text.split(",") if t.strip()], dtype=np.float64)
