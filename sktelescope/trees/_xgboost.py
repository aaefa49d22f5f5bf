"""XGBoost backend: read a fitted ``XGBRegressor`` / ``XGBClassifier`` into a BoosterSpec.

XGBoost stores leaf values in float32, keeps its training predictions in float32 and computes
gradients from float32 labels; the spec says so (``score_dtype``), so that the telescope
recomputes the pseudo-residuals the trees saw to float32 round-off (about 1e-7 relative). A
leaf value is ``-eta * sum(g) / (sum(h) + reg_lambda)`` over the leaf's training points unless
``reg_alpha``, ``max_delta_step`` or row subsampling are in use (listed in ``approximations``).
Refused, because the leaf values are then not that sum and no documented approximation covers
them: objectives other than ``reg:squarederror``, ``binary:logistic`` and ``binary:logitraw``,
``scale_pos_weight != 1``, boosters other than ``gbtree`` (``dart`` rescales trees),
``num_parallel_tree > 1``, monotone constraints (leaf values are clipped to bounds),
categorical features, multi-class and multi-target models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
from scipy.special import logit

from sktelescope.trees._spec import (
    FLOAT32_RTOL,
    LOG_LOSS,
    SQUARED_ERROR,
    BoosterSpec,
    binary_targets,
    parse_float_list,
    regression_targets,
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


def _check_booster(config: dict, name: str) -> str:
    """Refuse what a weighted sum of pseudo-residuals cannot express; return the loss."""
    learner = config["learner"]
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree":
        raise TypeError(
            f"TreeTelescope supports XGBoost's 'gbtree' booster only; this {name} uses "
            f"booster={booster.get('name')!r}. Refit it with booster='gbtree'."
        )
    if int(booster["gbtree_model_param"]["num_parallel_tree"]) != 1:
        raise ValueError(
            f"TreeTelescope needs one tree per boosting round; this {name} has "
            "num_parallel_tree > 1 (a boosted random forest). Refit it with num_parallel_tree=1."
        )
    objective = learner["objective"]["name"]
    if objective not in _OBJECTIVES:
        raise ValueError(
            f"TreeTelescope supports the XGBoost objectives {sorted(_OBJECTIVES)}; this {name} "
            f"uses {objective!r}, whose leaf values are not a weighted sum of pseudo-residuals."
        )
    weight = float(learner["objective"].get("reg_loss_param", {}).get("scale_pos_weight", 1))
    if weight != 1.0:
        raise ValueError(
            f"TreeTelescope does not support scale_pos_weight={weight:g}: it re-weights the "
            f"positive examples' gradients, which this {name}'s telescope cannot see. Refit "
            "with scale_pos_weight=1 to inspect the model."
        )
    constraints = booster["tree_train_param"].get("monotone_constraints", "()")
    if any(c not in ("", "0") for c in constraints.strip("()").split(",")):
        raise ValueError(
            f"TreeTelescope does not support monotone_constraints={constraints}: XGBoost "
            "clips leaf values to the constraints' bounds. Refit without them to inspect it."
        )
    return objective


def _check_model_shape(model, config: dict, name: str) -> None:
    params = config["learner"]["learner_model_param"]
    if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) > 1:
        raise ValueError(
            f"TreeTelescope supports binary classifiers and single-target regressors only; "
            f"this {name} is multi-class or multi-target. Fit one model per class or target."
        )
    types = model.get_booster().feature_types or []
    if "c" in types:
        raise ValueError(
            f"TreeTelescope does not support categorical features; this {name} has "
            f"{types.count('c')}. One-hot or ordinal-encode them as numeric columns and refit."
        )


def _train_params(config: dict) -> dict:
    params = config["learner"]["gradient_booster"]["tree_train_param"]
    return {k: float(v) for k, v in params.items() if _is_number(v)}


def _is_number(value: str) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _approximations(params: dict) -> list[str]:
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


def _leaf_values(trees: list[dict]) -> list[np.ndarray]:
    # split_conditions holds the (learning-rate scaled) leaf value at leaf nodes.
    return [np.asarray(tree["split_conditions"], dtype=np.float64) for tree in trees]


def _leaf_counts(trees: list[dict]) -> list[np.ndarray]:
    """Training points per leaf: the leaf's hessian sum, under squared error (-1: not a leaf)."""
    return [
        np.where(np.asarray(t["left_children"]) == -1, np.asarray(t["sum_hessian"], float), -1)
        for t in trees
    ]


def _init_margin(config: dict, objective: str) -> float:
    base_score = parse_float_list(config["learner"]["learner_model_param"]["base_score"])
    if objective == "binary:logistic":
        return float(logit(np.float64(base_score[0])))
    return float(base_score[0])


def _intercept(config: dict, objective: str, xgboost_version: str):
    """The base margin XGBoost estimates from the targets, or None where it was given.

    XGBoost 2 and 3 both start squared error from the mean target; for the logistic
    objectives XGBoost 3 starts from the mean label (XGBoost 2 from one Newton step, which
    is not checked here).
    """
    if config["learner"]["learner_model_param"].get("boost_from_average", "1") != "1":
        return None
    if objective == "reg:squarederror":
        return lambda y: float(np.float32(np.mean(y)))
    if int(xgboost_version.split(".")[0]) < 3:
        return None
    if objective == "binary:logistic":
        return lambda y: float(logit(np.float64(np.float32(np.mean(y)))))
    return lambda y: float(np.float32(np.mean(y)))


def _leaf_finder(model, n_stages: int):
    """``apply(X)``: leaf ids of every round, through a DMatrix built as predict builds one."""
    import xgboost

    booster = model.get_booster()
    big = np.finfo(np.float32).max

    def apply(X: np.ndarray) -> np.ndarray:
        # predict() reads +-inf as values beyond every threshold; a DMatrix refuses them.
        X = np.clip(X, -big, big) if np.isinf(X).any() else X
        data = xgboost.DMatrix(
            X,
            missing=model.missing,
            feature_names=booster.feature_names,
            feature_types=booster.feature_types,
        )
        leaves = booster.predict(data, pred_leaf=True, iteration_range=(0, n_stages))
        return np.asarray(leaves, dtype=np.int64).reshape(X.shape[0], -1)

    return apply


def _margin(model, X: np.ndarray, **kwargs) -> np.ndarray:
    """The model's own raw prediction (X is validated already, possibly without names)."""
    margin = model.predict(X, output_margin=True, validate_features=False, **kwargs)
    return np.asarray(margin, dtype=np.float64)


def xgboost_spec(model, y_train: np.ndarray) -> BoosterSpec:
    """Build the BoosterSpec of a fitted XGBoost scikit-learn model."""
    import xgboost

    name = type(model).__name__
    booster = model.get_booster()
    config = json.loads(booster.save_config())
    objective = _check_booster(config, name)
    _check_model_shape(model, config, name)
    if isinstance(model, xgboost.XGBClassifier):
        y = binary_targets(y_train, model.classes_, name)
    else:
        y = regression_targets(y_train)
    n_stages = _n_stages(model)
    params = _train_params(config)
    init = _init_margin(config, objective)
    trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
    trees = trees["trees"][:n_stages]
    loss = _OBJECTIVES[objective]

    def staged(X) -> Iterator[np.ndarray]:
        for k in range(1, n_stages + 1):
            yield _margin(model, X, iteration_range=(0, k))

    return BoosterSpec.of(
        model,
        loss=loss,
        n_stages=n_stages,
        learning_rate=params["eta"],
        reg_lambda=params["lambda"],
        apply=_leaf_finder(model, n_stages),
        leaf_values=_leaf_values(trees),
        init=lambda X: np.full(X.shape[0], init),
        raw_predict=lambda X: _margin(model, X),
        staged_raw_predict=staged,
        y=y.astype(np.float32).astype(np.float64),
        fit_masks=[np.ones(y.shape[0], dtype=bool)],
        approximations=_approximations(params),
        intercept=_intercept(config, objective, xgboost.__version__),
        allow_non_finite=True,
        score_dtype=np.float32,
        rtol=FLOAT32_RTOL,
        reg_alpha=params.get("alpha", 0.0),
        max_delta_step=params.get("max_delta_step", 0.0),
        exactly_checkable=params.get("subsample", 1.0) == 1.0,
        leaf_counts=_leaf_counts(trees) if loss == SQUARED_ERROR else None,
    )
