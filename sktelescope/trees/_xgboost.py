"""XGBoost backend: read a fitted ``XGBRegressor`` / ``XGBClassifier`` into a BoosterSpec.

XGBoost stores leaf values in float32 and sums them in float32, so everything here is exact only
up to float32 round-off (about 1e-6 relative). A leaf value is
``-eta * sum(g) / (sum(h) + reg_lambda)`` over the leaf's training points unless ``reg_alpha``,
``max_delta_step`` or row subsampling are in use (listed in ``approximations``).
"""

from __future__ import annotations

import json

import numpy as np
from scipy.special import logit

from sktelescope.trees._spec import (
    LOG_LOSS,
    SQUARED_ERROR,
    BoosterSpec,
    binary_targets,
    parse_float_list,
)

_OBJECTIVES = {
    "reg:squarederror": SQUARED_ERROR,
    "binary:logistic": LOG_LOSS,
    "binary:logitraw": LOG_LOSS,
}


def _n_stages(model) -> int:
    """Rounds the model's own ``predict`` uses: ``best_iteration + 1`` after early stopping."""
    booster = model.get_booster()
    try:
        best = model.best_iteration
    except AttributeError:
        best = None
    if best is None:
        return booster.num_boosted_rounds()
    return int(best) + 1


def _train_params(config: dict) -> dict:
    learner = config["learner"]
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree":
        raise TypeError(
            f"TreeTelescope supports XGBoost's 'gbtree' booster only, got {booster.get('name')!r}."
        )
    if int(booster["gbtree_model_param"]["num_parallel_tree"]) != 1:
        raise ValueError(
            "TreeTelescope needs one tree per boosting round; this XGBoost model has "
            "num_parallel_tree > 1 (a boosted random forest)."
        )
    return {k: float(v) for k, v in booster["tree_train_param"].items() if _is_number(v)}


def _is_number(value: str) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _approximations(params: dict, objective: str) -> list[str]:
    notes = []
    if params.get("subsample", 1.0) < 1.0:
        notes.append(
            f"subsample={params['subsample']:g} < 1: each tree was fitted on a random row "
            "subsample that XGBoost does not store; weights use all training points."
        )
    if params.get("alpha", 0.0) > 0.0:
        notes.append(
            f"reg_alpha={params['alpha']:g} > 0: the L1 penalty soft-thresholds the gradient "
            "sum, so a leaf value is not linear in the pseudo-residuals."
        )
    if params.get("max_delta_step", 0.0) > 0.0:
        notes.append(
            f"max_delta_step={params['max_delta_step']:g} > 0: leaf values are clipped, so "
            "they are not linear in the pseudo-residuals."
        )
    return notes


def _leaf_values(model_json: dict, n_stages: int) -> list[np.ndarray]:
    trees = model_json["learner"]["gradient_booster"]["model"]["trees"]
    # split_conditions holds the (learning-rate scaled) leaf value at leaf nodes.
    return [np.asarray(trees[k]["split_conditions"], dtype=np.float64) for k in range(n_stages)]


def _init_margin(config: dict, objective: str) -> float:
    base_score = parse_float_list(config["learner"]["learner_model_param"]["base_score"])
    if base_score.shape[0] != 1:
        raise ValueError("TreeTelescope supports single-target XGBoost models only.")
    if objective == "binary:logistic":
        return float(logit(np.float64(base_score[0])))
    return float(base_score[0])


def xgboost_spec(model, X_train: np.ndarray, y_train: np.ndarray) -> BoosterSpec:
    """Build the BoosterSpec of a fitted XGBoost scikit-learn model."""
    import xgboost

    booster = model.get_booster()
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    if objective not in _OBJECTIVES:
        raise ValueError(
            f"TreeTelescope supports the XGBoost objectives {sorted(_OBJECTIVES)}; got "
            f"{objective!r}, whose leaf values are not a weighted sum of pseudo-residuals."
        )
    params = _train_params(config)
    if int(config["learner"]["learner_model_param"].get("num_class", "0")) > 1:
        raise ValueError("TreeTelescope supports binary classifiers only for now (multiclass).")
    name = type(model).__name__
    if isinstance(model, xgboost.XGBClassifier):
        y = binary_targets(y_train, model.classes_, name)
    else:
        y = np.asarray(y_train, dtype=np.float64)
    n_stages = _n_stages(model)
    model_json = json.loads(booster.save_raw("json"))
    init = _init_margin(config, objective)

    def apply(X) -> np.ndarray:
        leaves = booster.predict(xgboost.DMatrix(X), pred_leaf=True, iteration_range=(0, n_stages))
        return np.asarray(leaves, dtype=np.int64).reshape(X.shape[0], -1)

    def staged(X, k: int) -> np.ndarray:
        if k == 0:
            return np.full(X.shape[0], init)
        margin = booster.predict(xgboost.DMatrix(X), output_margin=True, iteration_range=(0, k))
        return np.asarray(margin, dtype=np.float64)

    return BoosterSpec(
        library=name,
        loss=_OBJECTIVES[objective],
        n_stages=n_stages,
        learning_rate=params["eta"],
        reg_lambda=params["lambda"],
        apply=apply,
        leaf_values=_leaf_values(model_json, n_stages),
        init=lambda X: np.full(X.shape[0], init),
        raw_predict=lambda X: np.asarray(model.predict(X, output_margin=True), dtype=np.float64),
        staged_raw_predict=staged,
        y=y,
        fit_mask=np.ones(y.shape[0], dtype=bool),
        approximations=_approximations(params, objective),
    )
