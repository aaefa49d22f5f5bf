"""LightGBM backend: read a fitted ``LGBMRegressor`` / ``LGBMClassifier`` into a BoosterSpec.

LightGBM keeps leaf values in float64 but computes gradients in float32, so the weights view is
exact to float32 round-off. Its initial score ("boost_from_average": the mean target, or the
log-odds of the mean label) is not stored separately: LightGBM adds it to every leaf of the first
tree. The telescope recomputes it from ``y_train`` exactly as LightGBM does (float32 labels,
float64 mean) and subtracts it from the first tree, so column 0 is the initial score and stage 0
is the first tree's own fit.
"""

from __future__ import annotations

import re

import numpy as np

from sktelescope.trees._spec import LOG_LOSS, SQUARED_ERROR, BoosterSpec, binary_targets

_OBJECTIVES = {"regression": SQUARED_ERROR, "binary": LOG_LOSS}


def _model_params(booster) -> dict:
    """Canonical training parameters, read from the model string's ``parameters:`` block."""
    text = booster.model_to_string()
    return dict(re.findall(r"^\[(\w+): ([^\]]*)\]$", text, flags=re.MULTILINE))


def _approximations(params: dict) -> list[str]:
    notes = []
    number = lambda key, default: float(params.get(key, default))  # noqa: E731
    if number("bagging_freq", 0) > 0 and number("bagging_fraction", 1) < 1:
        notes.append(
            f"bagging_fraction={params['bagging_fraction']} with bagging_freq > 0: trees were "
            "fitted on random row subsamples that LightGBM does not store."
        )
    if params.get("data_sample_strategy", "bagging") == "goss":
        notes.append("GOSS sampling drops and re-weights gradients at random.")
    for key, why in [
        ("lambda_l1", "the L1 penalty soft-thresholds the gradient sum"),
        ("max_delta_step", "leaf values are clipped"),
        ("path_smooth", "leaf values are shrunk towards their parent's"),
    ]:
        if number(key, 0) > 0:
            notes.append(f"{key}={params[key]} > 0: {why}, so leaves are not linear in g.")
    return notes


def _init_score(params: dict, loss: str, y: np.ndarray) -> float:
    """The score LightGBM boosts from (0 when ``boost_from_average`` is off)."""
    if params.get("boost_from_average", "1") not in ("1", "true"):
        return 0.0
    mean = float(np.mean(y.astype(np.float32), dtype=np.float64))
    if loss == SQUARED_ERROR:
        return mean
    sigmoid = float(params.get("sigmoid", 1.0))
    return float(np.log(mean / (1.0 - mean)) / sigmoid)


def _check_objective(params: dict, name: str) -> str:
    objective = params.get("objective", "").split()[0]
    if objective not in _OBJECTIVES:
        raise ValueError(
            f"TreeTelescope supports the LightGBM objectives {sorted(_OBJECTIVES)} (squared "
            f"error, binary log-loss); this {name} uses {objective!r}."
        )
    if params.get("linear_tree", "0") not in ("0", "false"):
        raise ValueError("TreeTelescope does not support LightGBM linear trees (linear_tree=True).")
    if objective == "binary" and float(params.get("sigmoid", 1.0)) != 1.0:
        raise ValueError("TreeTelescope supports LightGBM's binary objective with sigmoid=1 only.")
    if params.get("is_unbalance", "0") not in ("0", "false") or (
        float(params.get("scale_pos_weight", 1.0)) != 1.0
    ):
        raise ValueError("TreeTelescope does not support is_unbalance or scale_pos_weight.")
    return _OBJECTIVES[objective]


def _leaf_values(booster, n_stages: int, init: float) -> list[np.ndarray]:
    dump = booster.dump_model(num_iteration=n_stages)
    values = []
    for k, info in enumerate(dump["tree_info"][:n_stages]):
        leaf = np.array([booster.get_leaf_output(k, j) for j in range(info["num_leaves"])])
        values.append(leaf - init if k == 0 else leaf)
    return values


def lightgbm_spec(model, X_train: np.ndarray, y_train: np.ndarray) -> BoosterSpec:
    """Build the BoosterSpec of a fitted LightGBM scikit-learn model."""
    import lightgbm

    booster = model.booster_
    params = _model_params(booster)
    name = type(model).__name__
    loss = _check_objective(params, name)
    if booster.num_model_per_iteration() != 1:
        raise ValueError("TreeTelescope supports binary classifiers only for now (multiclass).")
    if isinstance(model, lightgbm.LGBMClassifier):
        y = binary_targets(y_train, model.classes_, name)
    else:
        y = np.asarray(y_train, dtype=np.float64)
    best = booster.best_iteration
    n_stages = best if best and best > 0 else booster.current_iteration()
    init = _init_score(params, loss, y)

    def apply(X) -> np.ndarray:
        leaves = booster.predict(X, pred_leaf=True, num_iteration=n_stages)
        return np.asarray(leaves, dtype=np.int64).reshape(X.shape[0], -1)

    def staged(X, k: int) -> np.ndarray:
        if k == 0:
            return np.full(X.shape[0], init)
        return np.asarray(booster.predict(X, raw_score=True, num_iteration=k), dtype=np.float64)

    return BoosterSpec(
        library=name,
        loss=loss,
        n_stages=n_stages,
        learning_rate=float(params["learning_rate"]),
        reg_lambda=float(params.get("lambda_l2", 0.0)),
        apply=apply,
        leaf_values=_leaf_values(booster, n_stages, init),
        init=lambda X: np.full(X.shape[0], init),
        raw_predict=lambda X: np.asarray(model.predict(X, raw_score=True), dtype=np.float64),
        staged_raw_predict=staged,
        y=y,
        fit_mask=np.ones(y.shape[0], dtype=bool),
        approximations=_approximations(params),
    )
