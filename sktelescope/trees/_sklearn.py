"""scikit-learn backend: GradientBoosting* and HistGradientBoosting* models as BoosterSpecs.

``GradientBoosting*`` stores leaf values in float64: squared-error leaves are means of the
in-bag pseudo-residuals, log-loss leaves are one Newton step ``sum(r) / sum(h)``; both exact.
It refuses NaN and infinite inputs, and so does the telescope.
``HistGradientBoosting*`` has no public leaf API: this module reads its fitted predictors
(``_predictors[k][0].nodes``, ``_baseline_prediction``) and walks the trees itself. Its leaves are
``-sum(g) / (sum(h) + l2_regularization + 1e-15)`` with gradients in float32, so its weights view
is exact to float32 round-off. Any change of those private attributes in a future scikit-learn
release makes ``tests/test_trees.py`` fail loudly.

Neither records whether an internal early-stopping split was drawn (``X_val`` may have been
given instead): the spec offers both candidates and the telescope keeps the one with which
``X_train``/``y_train`` reproduce the leaves. Refused: losses other than squared error and
log-loss, multi-class models, and for ``HistGradientBoosting*`` categorical features,
``monotonic_cst`` (leaf values clipped to bounds) and ``class_weight`` (re-weighted gradients).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from itertools import islice

import numpy as np
from threadpoolctl import threadpool_limits

from sktelescope.trees._spec import (
    FLOAT32_RTOL,
    FLOAT64_RTOL,
    LOG_LOSS,
    SQUARED_ERROR,
    BoosterSpec,
    binary_targets,
    regression_targets,
    sklearn_binomial,
    validation_split_mask,
    with_feature_names,
)

_LOSSES = {"squared_error": SQUARED_ERROR, "log_loss": LOG_LOSS}


def _targets(model, y_train, name: str) -> np.ndarray:
    if hasattr(model, "classes_"):
        return binary_targets(y_train, model.classes_, name)
    return regression_targets(y_train)


def _check_loss(model, name: str) -> str:
    if model.loss not in _LOSSES:
        raise ValueError(
            f"TreeTelescope supports {name} with loss in {sorted(_LOSSES)}; got {model.loss!r}, "
            "whose leaves are not a weighted sum of pseudo-residuals."
        )
    return _LOSSES[model.loss]


def _mean_or_log_odds(classifier: bool):
    """The initial raw prediction both estimators derive from the fitted targets."""

    def intercept(y_fit: np.ndarray) -> float:
        mean = float(np.mean(y_fit))
        return float(np.log(mean / (1.0 - mean))) if classifier else mean

    return intercept


def _gb_fit_masks(model, y: np.ndarray) -> tuple[list[np.ndarray], str | None]:
    """Candidate training points of GradientBoosting (its re-drawn early-stopping split, all)
    and, where the split cannot be re-drawn, why."""
    everything = np.ones(y.shape[0], dtype=bool)
    if model.n_iter_no_change is None:
        return [everything], None
    if not isinstance(model.random_state, int | np.integer):
        return [everything], (
            "n_iter_no_change is set but random_state is not an int, so the internal "
            "validation split cannot be re-drawn; weights use all training points."
        )
    stratify = y if hasattr(model, "classes_") else None
    split = validation_split_mask(
        y.shape[0], model.validation_fraction, model.random_state, stratify
    )
    return [split, everything], None


def gradient_boosting_spec(model, y_train: np.ndarray) -> BoosterSpec:
    """Build the BoosterSpec of a fitted GradientBoostingRegressor / Classifier."""
    name = type(model).__name__
    loss = _check_loss(model, name)
    if model.estimators_.shape[1] != 1:
        raise ValueError(
            f"TreeTelescope supports binary classifiers only for now; this {name} is "
            "multi-class. Fit one binary model per class to inspect it."
        )
    y = _targets(model, y_train, name)
    fit_masks, unknown_split = _gb_fit_masks(model, y)
    notes = [] if unknown_split is None else [unknown_split]
    if model.subsample < 1.0:
        notes.append(
            f"subsample={model.subsample:g} < 1: each tree was fitted on a random in-bag subset "
            "that scikit-learn does not store; weights use all training points."
        )
    lr = float(model.learning_rate)
    n_stages = int(model.estimators_.shape[0])
    derived = model.init is None and unknown_split is None  # init_ is then the mean / prior
    return BoosterSpec.of(
        model,
        loss=loss,
        n_stages=n_stages,
        learning_rate=lr,
        reg_lambda=0.0,
        apply=lambda X: _gb_apply(model, X),
        leaf_values=[lr * est.tree_.value[:, 0, 0].copy() for est in model.estimators_[:, 0]],
        init=lambda X: model._raw_predict_init(X)[:, 0].astype(np.float64),
        raw_predict=lambda X: _library_raw(model, X),
        staged_raw_predict=lambda X: _library_staged(model, X, n_stages),
        binomial=partial(sklearn_binomial, loss=getattr(model, "_loss", None)),
        y=y,
        fit_masks=fit_masks,
        approximations=notes,
        intercept=_mean_or_log_odds(hasattr(model, "classes_")) if derived else None,
        allow_non_finite=False,
        score_dtype=np.float64,
        rtol=FLOAT64_RTOL,
        exactly_checkable=not notes,  # no unstored in-bag rows or internal split
        leaf_counts=[_tree_leaf_counts(est.tree_) for est in model.estimators_[:, 0]],
    )


def _tree_leaf_counts(tree) -> np.ndarray:
    """Training points per node id of a fitted scikit-learn tree (-1 for split nodes)."""
    return np.where(tree.children_left == -1, tree.n_node_samples, -1).astype(np.float64)


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


def _hgb_fit_masks(model, y: np.ndarray) -> list[np.ndarray]:
    """Candidate training points of HistGradientBoosting: its early-stopping split, all."""
    everything = np.ones(y.shape[0], dtype=bool)
    if not (model.do_early_stopping_ and model._use_validation_data):
        return [everything]
    stratify = y if hasattr(model, "classes_") else None
    split = validation_split_mask(
        y.shape[0], model.validation_fraction, model._random_seed, stratify
    )
    return [split, everything]  # X_val given: no split was drawn


def _hgb_checks(model, name: str) -> str:
    loss = _check_loss(model, name)
    if model.n_trees_per_iteration_ != 1:
        raise ValueError(
            f"TreeTelescope supports binary classifiers only for now; this {name} is "
            "multi-class. Fit one binary model per class to inspect it."
        )
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        raise ValueError(
            f"TreeTelescope does not support categorical features in {name} yet; encode them "
            "as numeric columns (categorical_features=None) and refit."
        )
    monotonic = getattr(model, "monotonic_cst", None)
    if monotonic is not None and np.any(np.asarray(list(_values(monotonic))) != 0):
        raise ValueError(
            f"TreeTelescope does not support monotonic_cst in {name}: leaf values are clipped "
            "to the constraints' bounds. Refit without them to inspect the model."
        )
    if getattr(model, "class_weight", None) is not None:
        raise ValueError(
            f"TreeTelescope does not support class_weight={model.class_weight!r} in {name}: "
            "it re-weights the gradients. Refit with class_weight=None to inspect the model."
        )
    return loss


def _values(constraints) -> list:
    return list(constraints.values()) if isinstance(constraints, dict) else list(constraints)


def hist_gradient_boosting_spec(model, y_train: np.ndarray) -> BoosterSpec:
    """Build the BoosterSpec of a fitted HistGradientBoostingRegressor / Classifier."""
    name = type(model).__name__
    loss = _hgb_checks(model, name)
    y = _targets(model, y_train, name)
    predictors = [stage[0] for stage in model._predictors]
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
    return BoosterSpec.of(
        model,
        loss=loss,
        n_stages=len(predictors),
        learning_rate=float(model.learning_rate),
        reg_lambda=float(model.l2_regularization) + 1e-15,
        apply=lambda X: np.stack([_hgb_apply(p.nodes, X) for p in predictors], axis=1),
        leaf_values=[p.nodes["value"].astype(np.float64) for p in predictors],
        init=lambda X: np.full(X.shape[0], baseline),
        raw_predict=lambda X: _library_raw(model, X),
        staged_raw_predict=lambda X: _library_staged(model, X, len(predictors)),
        y=y,
        fit_masks=_hgb_fit_masks(model, y),
        intercept=_mean_or_log_odds(hasattr(model, "classes_")),
        allow_non_finite=True,
        score_dtype=np.float64,
        rtol=FLOAT32_RTOL,
        leaf_counts=[
            np.where(p.nodes["is_leaf"].astype(bool), p.nodes["count"].astype(np.float64), -1.0)
            for p in predictors
        ],
    )


def _gb_apply(model, X: np.ndarray) -> np.ndarray:
    """Leaf ids per round (GB's apply checks X against its trees, fitted without names)."""
    return model.apply(X).reshape(X.shape[0], -1).astype(np.int64)


def _library_raw(model, X) -> np.ndarray:
    """The model's public raw prediction: decision_function, or predict under squared error."""
    X = with_feature_names(X, model)
    if hasattr(model, "classes_"):
        return np.asarray(model.decision_function(X), dtype=np.float64)
    return np.asarray(model.predict(X), dtype=np.float64)


def _library_staged(model, X, n_stages: int) -> Iterator[np.ndarray]:
    """The model's public staged raw predictions after rounds 1..n_stages, from one pass:
    scikit-learn's staged methods add one round at a time to the previous round's sum.

    On one OpenMP thread: HistGradientBoosting evaluates each round in its own parallel
    region, and with one thread per core beside other busy processes every region waits
    for a descheduled thread (200 rounds on 442 rows: 43 s on a loaded 2-core machine, where
    the single-threaded pass takes a fraction of a second).
    """
    X = with_feature_names(X, model)
    with threadpool_limits(limits=1, user_api="openmp"):
        stages = model.staged_decision_function(X) if hasattr(model, "classes_") else None
        stages = model.staged_predict(X) if stages is None else stages
        rounds = [np.asarray(raw, dtype=np.float64).ravel() for raw in islice(stages, n_stages)]
    return iter(rounds)
