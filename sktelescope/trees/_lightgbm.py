"""LightGBM backend: read a fitted ``LGBMRegressor`` / ``LGBMClassifier`` into a BoosterSpec.

LightGBM keeps scores and leaf values in float64 but stores labels and computes gradients in
float32, so the weights view is exact to float32 round-off. Its initial score
("boost_from_average": the mean label, or the log-odds of the mean label) is not stored
separately: LightGBM adds it to every leaf of the first tree. The telescope recomputes it from
``y_train`` exactly as LightGBM does (float32 labels, float64 mean) and subtracts it from the
first tree, so column 0 is the initial score and stage 0 is the first tree's own fit; a wrong
``y_train`` then shows in the first tree's leaves.

Refused (see ``_REFUSED``): objectives other than ``regression`` (L2) and ``binary``,
``boosting_type`` other than ``gbdt`` (``dart`` rescales trees, ``rf`` averages them),
``reg_sqrt``, ``is_unbalance``, ``scale_pos_weight != 1``, ``sigmoid != 1``, ``linear_tree``,
monotone constraints, quantized gradients without leaf renewal, categorical features,
multi-class models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import numpy as np

from sktelescope.trees._spec import (
    FLOAT32_RTOL,
    LOG_LOSS,
    SQUARED_ERROR,
    BoosterSpec,
    binary_targets,
    regression_targets,
    with_feature_names,
)

_OBJECTIVES = {"regression": SQUARED_ERROR, "binary": LOG_LOSS}


def _on(value: str) -> bool:
    return value not in ("", "0", "false")


def _nonzero_list(value: str) -> bool:
    return any(v.strip() not in ("", "0") for v in value.split(","))


#: (parameter, refused(params), why): configurations whose leaf values are not a weighted sum
#: of the pseudo-residuals of y_train and that no documented approximation covers.
_REFUSED: list[tuple[str, Callable[[dict], bool], str]] = [
    (
        "boosting",
        lambda p: p.get("boosting", "gbdt") not in ("gbdt", "goss"),
        "'dart' drops and rescales trees and 'rf' averages them; refit with boosting_type='gbdt'",
    ),
    ("reg_sqrt", lambda p: _on(p.get("reg_sqrt", "0")), "the trees fit sqrt-transformed labels"),
    ("is_unbalance", lambda p: _on(p.get("is_unbalance", "0")), "it re-weights the classes"),
    (
        "scale_pos_weight",
        lambda p: float(p.get("scale_pos_weight", 1)) != 1.0,
        "it re-weights the positive examples' gradients",
    ),
    ("sigmoid", lambda p: float(p.get("sigmoid", 1)) != 1.0, "the loss is not the log-loss"),
    ("linear_tree", lambda p: _on(p.get("linear_tree", "0")), "leaves hold linear models"),
    (
        "monotone_constraints",
        lambda p: _nonzero_list(p.get("monotone_constraints", "")),
        "leaf values are clipped to the constraints' bounds",
    ),
    (
        "use_quantized_grad",
        lambda p: (
            _on(p.get("use_quantized_grad", "0")) and not _on(p.get("quant_train_renew_leaf", "0"))
        ),
        "leaf values come from quantized gradients; refit with quant_train_renew_leaf=True",
    ),
    (
        "categorical_feature",
        lambda p: p.get("categorical_feature", "") != "",
        "categorical splits add cat_l2 to their leaves' penalty and the telescope reads inputs "
        "as numbers; ordinal- or one-hot-encode them as numeric columns",
    ),
]


def _model_params(booster) -> dict:
    """Canonical training parameters, read from the model string's ``parameters:`` block."""
    text = booster.model_to_string()
    return dict(re.findall(r"^\[(\w+): ([^\]]*)\]$", text, flags=re.MULTILINE))


def _check_params(params: dict, booster, name: str) -> str:
    """Refuse what the telescope cannot represent; return the loss."""
    objective = params.get("objective", "").split()[0]
    if objective not in _OBJECTIVES:
        raise ValueError(
            f"TreeTelescope supports the LightGBM objectives {sorted(_OBJECTIVES)} (squared "
            f"error, binary log-loss); this {name} uses {objective!r}."
        )
    for key, refused, why in _REFUSED:
        if refused(params):
            raise ValueError(
                f"TreeTelescope does not support {key}={params.get(key)} in this {name}: "
                f"{why}. Refit without it to inspect the model."
            )
    if booster.pandas_categorical:  # [] for a DataFrame without categorical columns
        raise ValueError(
            f"TreeTelescope does not support categorical features; this {name} was fitted on "
            "pandas categorical columns. Encode them as numeric columns and refit."
        )
    if booster.num_model_per_iteration() != 1:
        raise ValueError(
            f"TreeTelescope supports binary classifiers only for now; this {name} is "
            "multi-class. Fit one binary model per class to inspect it."
        )
    return _OBJECTIVES[objective]


def _approximations(params: dict) -> list[str]:
    notes = []
    number = lambda key, default: float(params.get(key, default))  # noqa: E731
    bagging = min(number(k, 1) for k in ("bagging_fraction", "pos_bagging_fraction"))
    bagging = min(bagging, number("neg_bagging_fraction", 1))
    if number("bagging_freq", 0) > 0 and bagging < 1:
        notes.append(
            f"bagging_fraction={params['bagging_fraction']} with bagging_freq > 0: trees were "
            "fitted on random row subsamples that LightGBM does not store."
        )
    if params.get("data_sample_strategy") == "goss" or params.get("boosting") == "goss":
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
    if not _on(params.get("boost_from_average", "1")):
        return 0.0
    mean = float(np.mean(y.astype(np.float32), dtype=np.float64))
    if loss == SQUARED_ERROR:
        return mean
    return float(np.log(mean / (1.0 - mean)))


def _leaf_values(booster, trees: list[dict], init: float) -> list[np.ndarray]:
    values = []
    for k, info in enumerate(trees):
        leaf = np.array([booster.get_leaf_output(k, j) for j in range(info["num_leaves"])])
        values.append(leaf - init if k == 0 else leaf)
    return values


def _walk(tree: dict) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Training points per leaf (the dump's ``leaf_count``: in-bag under bagging) and, per
    leaf, the leaf ids under each of its ancestors, root first."""
    counts = np.zeros(tree["num_leaves"])
    ancestors: list[list[np.ndarray]] = [[] for _ in range(tree["num_leaves"])]
    stack = [(tree["tree_structure"], [])]
    while stack:
        node, path = stack.pop()
        if "left_child" not in node:  # a leaf (a tree without splits has no leaf_index)
            counts[node.get("leaf_index", 0)] = node.get("leaf_count", 0)
            ancestors[node.get("leaf_index", 0)] = path
            continue
        below = np.array(_leaves_below(node))
        stack += [(node["left_child"], [*path, below]), (node["right_child"], [*path, below])]
    return counts, ancestors


def _leaves_below(node: dict) -> list[int]:
    if "left_child" not in node:
        return [node.get("leaf_index", 0)]
    return _leaves_below(node["left_child"]) + _leaves_below(node["right_child"])


def _exactly_checkable(notes: list[str], params: dict, loss: str) -> bool:
    """Not with unstored row sampling, nor with path smoothing under log-loss (LightGBM then
    smooths with node sizes estimated from hessian sums, which it does not store)."""
    sampled = any(note.startswith(("bagging", "GOSS")) for note in notes)
    return not sampled and not (float(params.get("path_smooth", 0)) > 0 and loss == LOG_LOSS)


def lightgbm_spec(model, y_train: np.ndarray) -> BoosterSpec:
    """Build the BoosterSpec of a fitted LightGBM scikit-learn model."""
    import lightgbm

    booster = model.booster_
    params = _model_params(booster)
    name = type(model).__name__
    loss = _check_params(params, booster, name)
    if isinstance(model, lightgbm.LGBMClassifier):
        y = binary_targets(y_train, model.classes_, name)
    else:
        y = regression_targets(y_train)
    y = y.astype(np.float32).astype(np.float64)  # LightGBM's labels are float32
    best = booster.best_iteration
    n_stages = best if best and best > 0 else booster.current_iteration()
    init = _init_score(params, loss, y)
    trees = booster.dump_model(num_iteration=n_stages)["tree_info"][:n_stages]
    counts, ancestors = zip(*[_walk(tree) for tree in trees]) if trees else ((), ())
    notes = _approximations(params)

    def staged(X) -> Iterator[np.ndarray]:
        for k in range(1, n_stages + 1):
            yield np.asarray(booster.predict(X, raw_score=True, num_iteration=k), dtype=np.float64)

    return BoosterSpec.of(
        model,
        loss=loss,
        n_stages=n_stages,
        learning_rate=float(params["learning_rate"]),
        reg_lambda=float(params.get("lambda_l2", 0.0)),
        apply=lambda X: np.asarray(
            booster.predict(X, pred_leaf=True, num_iteration=n_stages), dtype=np.int64
        ).reshape(X.shape[0], -1),
        leaf_values=_leaf_values(booster, trees, init),
        init=lambda X: np.full(X.shape[0], init),
        raw_predict=lambda X: np.asarray(
            model.predict(with_feature_names(X, model), raw_score=True), dtype=np.float64
        ),
        staged_raw_predict=staged,
        y=y,
        fit_masks=[np.ones(y.shape[0], dtype=bool)],
        approximations=notes,
        allow_non_finite=True,
        rtol=FLOAT32_RTOL,
        reg_alpha=float(params.get("lambda_l1", 0.0)),
        max_delta_step=float(params.get("max_delta_step", 0.0)),
        exactly_checkable=_exactly_checkable(notes, params, loss),
        path_smooth=float(params.get("path_smooth", 0)),
        leaf_ancestors=list(ancestors),
        leaf_counts=list(counts),
    )
