"""scikit-learn backend: GradientBoosting* and HistGradientBoosting* models as BoosterSpecs.

``GradientBoosting*`` stores leaf values in float64: squared-error leaves are means of the
in-bag pseudo-residuals, log-loss leaves are one Newton step ``sum(r) / sum(h)``; both exact.
``HistGradientBoosting*`` has no public leaf API: this module reads its fitted predictors
(``_predictors[k][0].nodes``, ``_baseline_prediction``) and walks the trees itself. Its leaves are
``-sum(g) / (sum(h) + l2_regularization + 1e-15)`` with gradients in float32, so its weights view
is exact to float32 round-off. Any change of those private attributes in a future scikit-learn
release makes ``tests/test_trees.py`` fail loudly.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array

from sktelescope.trees._spec import (
    LOG_LOSS,
    SQUARED_ERROR,
    BoosterSpec,
    binary_targets,
    validation_split_mask,
)

_GB_LOSSES = {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS}
_HGB_LOSSES = {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS}


def _targets(model, y_train, name: str) -> np.ndarray:
    if hasattr(model, "classes_"):
        return binary_targets(y_train, model.classes_, name)
    return np.asarray(y_train, dtype=np.float64)


def _check_loss(model, losses: dict, name: str) -> str:
    if model.loss not in losses:
        raise ValueError(
            f"TreeTelescope supports {name} with loss in {sorted(losses)}; got {model.loss!r}, "
            "whose leaves are not a weighted sum of pseudo-residuals."
        )
    return losses[model.loss]


def _implied_init(y: np.ndarray, classifier: bool) -> float:
    mean = float(np.mean(y))
    return float(np.log(mean / (1.0 - mean))) if classifier else mean


def _pick_fit_mask(y, split, init_value, classifier: bool, notes: list[str]) -> np.ndarray:
    """The training points the trees saw: the early-stopping split or all of them.

    Whether a split happened is not always recorded, so each candidate is kept only if the
    initial prediction it implies (mean target / log-odds of the mean label) is the model's own.
    """
    everything = np.ones(y.shape[0], dtype=bool)
    candidates = [everything] if split is None else [split, everything]
    if init_value is None:
        return candidates[0]
    for mask in candidates:
        implied = _implied_init(y[mask], classifier)
        if abs(implied - init_value) <= 1e-9 * (1.0 + abs(init_value)):
            return mask
    notes.append(
        "could not identify which training points the trees were fitted on (early-stopping "
        "split, or y_train is not the training target); weights use all training points."
    )
    return everything


def _gb_fit_mask(model, X, y: np.ndarray, notes: list[str]) -> np.ndarray:
    """Training points GradientBoosting fitted on, re-drawing its early-stopping split."""
    classifier = hasattr(model, "classes_")
    split = None
    if model.n_iter_no_change is not None:
        if isinstance(model.random_state, int | np.integer):
            stratify = y if classifier else None
            split = validation_split_mask(
                y.shape[0], model.validation_fraction, model.random_state, stratify
            )
        else:
            notes.append(
                "n_iter_no_change is set but random_state is not an int, so the internal "
                "validation split cannot be re-drawn; weights use all training points."
            )
    init_value = None
    if not isinstance(model.init_, str):
        init_value = float(model._raw_predict_init(X[:1])[0, 0])
    if model.init is not None:
        init_value = None  # a user-supplied init need not be the mean target
    return _pick_fit_mask(y, split, init_value, classifier, notes)


def gradient_boosting_spec(model, X_train: np.ndarray, y_train: np.ndarray) -> BoosterSpec:
    """Build the BoosterSpec of a fitted GradientBoostingRegressor / Classifier."""
    name = type(model).__name__
    loss = _check_loss(model, _GB_LOSSES, name)
    if model.estimators_.shape[1] != 1:
        raise ValueError(f"TreeTelescope supports binary classifiers only for now ({name}).")
    y = _targets(model, y_train, name)
    notes: list[str] = []
    fit_mask = _gb_fit_mask(model, X_train, y, notes)
    if model.subsample < 1.0:
        notes.append(
            f"subsample={model.subsample:g} < 1: each tree was fitted on a random in-bag subset "
            "that scikit-learn does not store; weights use all training points."
        )
    lr = float(model.learning_rate)
    n_stages = int(model.estimators_.shape[0])
    leaf_values = [lr * est.tree_.value[:, 0, 0].copy() for est in model.estimators_[:, 0]]

    def staged(X, k: int) -> np.ndarray:
        if k == 0:
            return model._raw_predict_init(X)[:, 0]
        return _library_staged(model, X, k)

    return BoosterSpec(
        library=name,
        loss=loss,
        n_stages=n_stages,
        learning_rate=lr,
        reg_lambda=0.0,
        apply=lambda X: model.apply(X).reshape(_n_rows(X), n_stages).astype(np.int64),
        leaf_values=leaf_values,
        init=lambda X: model._raw_predict_init(X)[:, 0].astype(np.float64),
        raw_predict=lambda X: _library_raw(model, X),
        staged_raw_predict=staged,
        y=y,
        fit_mask=fit_mask,
        approximations=notes,
    )


def _hgb_apply(nodes: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Leaf node index of every row of X in one HistGradientBoosting predictor (numerical only)."""
    node = np.zeros(X.shape[0], dtype=np.int64)
    active = np.flatnonzero(~nodes["is_leaf"][node].astype(bool))
    while active.size:
        current = node[active]
        values = X[active, nodes["feature_idx"][current]]
        go_left = np.where(
            np.isnan(values),
            nodes["missing_go_to_left"][current].astype(bool),
            values <= nodes["num_threshold"][current],
        )
        node[active] = np.where(go_left, nodes["left"][current], nodes["right"][current])
        active = active[~nodes["is_leaf"][node[active]].astype(bool)]
    return node


def _hgb_fit_mask(model, y: np.ndarray, baseline: float, notes: list[str]) -> np.ndarray:
    classifier = hasattr(model, "classes_")
    split = None
    if model.do_early_stopping_ and model._use_validation_data:
        stratify = y if classifier else None
        split = validation_split_mask(
            y.shape[0], model.validation_fraction, model._random_seed, stratify
        )
    return _pick_fit_mask(y, split, baseline, classifier, notes)


def _hgb_checks(model, name: str) -> str:
    loss = _check_loss(model, _HGB_LOSSES, name)
    if model.n_trees_per_iteration_ != 1:
        raise ValueError(f"TreeTelescope supports binary classifiers only for now ({name}).")
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        raise ValueError(f"TreeTelescope does not support categorical features in {name} yet.")
    return loss


def hist_gradient_boosting_spec(model, X_train: np.ndarray, y_train: np.ndarray) -> BoosterSpec:
    """Build the BoosterSpec of a fitted HistGradientBoostingRegressor / Classifier."""
    name = type(model).__name__
    loss = _hgb_checks(model, name)
    y = _targets(model, y_train, name)
    predictors = [stage[0] for stage in model._predictors]
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
    n_stages = len(predictors)
    notes: list[str] = []
    fit_mask = _hgb_fit_mask(model, y, baseline, notes)

    def prepare(X) -> np.ndarray:
        return check_array(X, dtype=np.float64, ensure_all_finite=False)

    def apply(X) -> np.ndarray:
        X = prepare(X)
        return np.stack([_hgb_apply(p.nodes, X) for p in predictors], axis=1)

    def staged(X, k: int) -> np.ndarray:
        if k == 0:
            return np.full(_n_rows(X), baseline)
        return _library_staged(model, X, k)

    return BoosterSpec(
        library=name,
        loss=loss,
        n_stages=n_stages,
        learning_rate=float(model.learning_rate),
        reg_lambda=float(model.l2_regularization) + 1e-15,
        apply=apply,
        leaf_values=[p.nodes["value"].astype(np.float64) for p in predictors],
        init=lambda X: np.full(X.shape[0], baseline),
        raw_predict=lambda X: _library_raw(model, X),
        staged_raw_predict=staged,
        y=y,
        fit_mask=fit_mask,
        approximations=notes,
    )


def _n_rows(X) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _library_raw(model, X) -> np.ndarray:
    """The model's public raw prediction: decision_function, or predict under squared error."""
    if hasattr(model, "classes_"):
        return np.asarray(model.decision_function(X), dtype=np.float64)
    return np.asarray(model.predict(X), dtype=np.float64)


def _library_staged(model, X, k: int) -> np.ndarray:
    """The model's public staged raw prediction after k rounds (k >= 1)."""
    stages = model.staged_decision_function(X) if hasattr(model, "classes_") else None
    stages = model.staged_predict(X) if stages is None else stages
    for i, raw in enumerate(stages, start=1):
        if i == k:
            return np.asarray(raw, dtype=np.float64).ravel()
    raise ValueError(f"k={k} exceeds the number of boosting rounds.")
