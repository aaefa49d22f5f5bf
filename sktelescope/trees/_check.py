"""What TreeTelescope is given: input arrays, and whether X_train/y_train are the training data.

A booster does not keep its training data, yet every smoother quantity (pseudo-residuals,
weights, kernels normalised by leaf hessian sums, effective parameters) is computed from the
``X_train``/``y_train`` the user passes. So the telescope checks them against what the
booster does keep: its initial prediction and its leaf values. Where the smoother view is
exact, the pseudo-residuals of ``y_train`` on ``X_train`` must rebuild every leaf value to the
library's float precision. Where the library departs from it (row subsampling, L1 penalties,
clipping, path smoothing: ``spec.approximations``), a leaf value is still a weighted average of
its points' Newton steps ``r / h``, shrunk towards 0 (or, with path smoothing, of the whole
round's), so it must lie in their range; that weaker check is listed among the approximations.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array

from sktelescope.trees._spec import BoosterSpec

APPROXIMATE_CHECK = (
    "X_train/y_train could only be checked approximately: with the approximations above, each "
    "leaf value was only checked to lie within the range of its training points' "
    "pseudo-residual / hessian ratios."
)

_ADVICE = (
    "pass the data the model was fitted on (all rows, in the same order, with the labels it "
    "was fitted on; models fitted with sample_weight, base_margin or init_score are not "
    "supported)"
)


def check_inputs(X, spec: BoosterSpec, name: str, *, copy: bool = False) -> np.ndarray:
    """``X`` as a float64 array with the model's feature count; NaN/inf as the library allows.

    Raises
    ------
    ValueError
        Naming ``name``, when ``X`` is not 2-D numeric, has another number of features than
        the model was fitted on, or holds NaN/inf the library's own prediction refuses.
    """
    X = check_array(
        X,
        dtype=np.float64,
        ensure_all_finite=not spec.allow_non_finite,
        estimator=spec.library,
        input_name=name,
        copy=copy,
    )
    if X.shape[1] != spec.n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but this {spec.library} was fitted on "
            f"{spec.n_features} features. Pass {name} with the model's {spec.n_features} "
            "columns, in the order it was fitted on."
        )
    return X


def check_training_data(
    spec: BoosterSpec, X_train: np.ndarray, leaves_train: np.ndarray, gradients: list
) -> tuple[np.ndarray, list[str]]:
    """The fit mask with which X_train/y_train reproduce the booster, and notes to list.

    Tries ``spec.fit_masks`` in order (an internal validation split the library does not
    record, then all points); raises ``ValueError`` saying what did not match if none works.
    """
    approximate = bool(spec.approximations)
    failures = []
    for mask in spec.fit_masks:
        failure = _intercept_mismatch(spec, X_train, mask) or _leaf_mismatch(
            spec, leaves_train, gradients, mask, approximate
        )
        if failure is None:
            return mask, [APPROXIMATE_CHECK] if approximate else []
        failures.append(failure)
    error, what = min(failures)
    raise ValueError(f"X_train/y_train do not reproduce the {spec.library}'s {what}: {_ADVICE}.")


def _intercept_mismatch(spec: BoosterSpec, X_train: np.ndarray, mask: np.ndarray):
    """``(relative error, description)`` when the initial prediction is not the targets'."""
    if spec.intercept is None:
        return None
    start = float(spec.init(X_train[:1])[0])
    implied = spec.intercept(spec.y[mask])
    error = abs(start - implied) / (abs(start) + float(np.std(spec.y[mask])) + 1e-300)
    if error <= spec.rtol:
        return None
    return error, (
        f"initial prediction (the model starts from {start:.6g}, y_train implies "
        f"{implied:.6g}: relative error {error:.2g})"
    )


def _leaf_mismatch(spec, leaves_train, gradients, mask, approximate: bool):
    """``(relative error, description)`` of the worst round whose leaves do not match."""
    worst = (0.0, 0)
    for k, (residuals, hessians) in enumerate(gradients):
        errors = _round_error(spec, k, leaves_train[mask, k], residuals[mask], hessians[mask])
        error = errors[1] if approximate else errors[0]
        worst = max(worst, (error, k))
    error, k = worst
    if error <= spec.rtol:
        return None
    if approximate:
        return error, (
            f"leaf values even allowing for {'; '.join(spec.approximations)} (a leaf value lies "
            f"outside its training points' range by {error:.2g} relative, in stages_[{k}])"
        )
    return error, f"leaf values (largest relative error {error:.2g} in stages_[{k}])"


def _round_error(spec, k: int, leaves, residuals, hessians) -> tuple[float, float]:
    """Exact and range errors of round k's leaves, relative to ``|leaf| + lr * max |r|``.

    Exact: ``|lr * sum(r) / (sum(h) + lambda) - leaf|``. Range: how far the leaf lies
    outside ``lr * [min(0, min r/h), max(0, max r/h)]`` over its points (over the round's
    points when leaves are smoothed towards their ancestors).
    """
    lr = spec.learning_rate
    values = spec.leaf_values[k]
    n_leaves = max(values.shape[0], int(leaves.max(initial=-1)) + 1)
    occupied = np.bincount(leaves, minlength=n_leaves) > 0
    library = np.zeros(n_leaves)
    library[: values.shape[0]] = values
    denominator = np.bincount(leaves, hessians, n_leaves) + spec.reg_lambda
    rebuilt = (
        lr * np.bincount(leaves, residuals, n_leaves) / np.where(denominator > 0, denominator, 1)
    )
    scale = np.abs(library) + lr * float(np.max(np.abs(residuals), initial=0.0)) + 1e-300
    exact = np.abs(rebuilt - library)[occupied] / scale[occupied]
    low, high = _newton_step_range(leaves, residuals, hessians, n_leaves, spec.smoothed_leaves)
    outside = np.maximum(lr * low - library, library - lr * high)
    outside = np.maximum(outside, 0.0)[occupied] / scale[occupied]
    return float(exact.max(initial=0.0)), float(outside.max(initial=0.0))


def _newton_step_range(leaves, residuals, hessians, n_leaves: int, whole_round: bool):
    """Per leaf, ``min(0, min r/h)`` and ``max(0, max r/h)`` over its points (or the round's)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.where(hessians > 0, residuals / hessians, np.sign(residuals) * np.inf)
    steps = np.nan_to_num(steps, nan=0.0)
    if whole_round:
        low = np.full(n_leaves, min(0.0, float(steps.min(initial=0.0))))
        high = np.full(n_leaves, max(0.0, float(steps.max(initial=0.0))))
        return low, high
    low, high = np.zeros(n_leaves), np.zeros(n_leaves)
    np.minimum.at(low, leaves, steps)
    np.maximum.at(high, leaves, steps)
    return low, high
