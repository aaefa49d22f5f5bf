"""What TreeTelescope is given: input arrays, and whether X_train/y_train are the training data.

A booster does not keep its training data, yet every smoother quantity (pseudo-residuals,
weights, kernels normalised by leaf hessian sums, effective parameters) is computed from the
``X_train``/``y_train`` the user passes. So the telescope checks them against what the booster
does keep: its initial prediction, its leaf sizes where the library stores them, and its leaf
values. Each leaf value must be rebuilt, to the library's float precision, by the library's
own leaf formula ``-lr * T(G) / (H + lambda)`` over the leaf's training points (``T``
soft-thresholds at the L1 penalty, the result clipped at ``max_delta_step``, then smoothed
along the leaf's path with LightGBM's ``path_smooth``), and each leaf must hold as many
training points as the library says. This is exact even where the *smoother* view is not
(L1 penalty, clipping, path smoothing). Where the trees saw a random subset of the points
that the library does not store (row subsampling, GOSS, an internal split that cannot be
re-drawn), a leaf can only be checked to hold at least the library's count and to lie within
the range of its points' Newton steps ``r / h`` (shrunk towards 0; with path smoothing, the
whole round's range). That weaker check is listed among the telescope's approximations.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array

from sktelescope.trees._spec import BoosterSpec

APPROXIMATE_CHECK = (
    "X_train/y_train could only be checked approximately: each leaf was only checked to hold "
    "at least the booster's count of training points (where it stores one) and to lie within "
    "the range of its training points' pseudo-residual / hessian ratios."
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
    _check_feature_names(X, spec, name)
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


def _check_feature_names(X, spec: BoosterSpec, name: str) -> None:
    """A DataFrame's columns must be those the model was fitted on, in the same order."""
    columns = getattr(X, "columns", None)
    if spec.feature_names is None or columns is None:
        return
    columns = [str(c) for c in columns]
    if columns != [str(c) for c in spec.feature_names]:
        raise ValueError(
            f"{name} has columns {columns[:10]}, but this {spec.library} was fitted on columns "
            f"{[str(c) for c in spec.feature_names][:10]}. Pass {name} with the columns the "
            "model was fitted on, in the same order."
        )


def exact_check_possible(spec: BoosterSpec) -> bool:
    """Whether X_train/y_train can be checked to float precision (no unstored sampling)."""
    return spec.exactly_checkable


def check_training_data(
    spec: BoosterSpec, X_train: np.ndarray, leaves_train: np.ndarray, gradients: list
) -> tuple[np.ndarray, list[str]]:
    """The fit mask with which X_train/y_train reproduce the booster, and notes to list.

    Tries ``spec.fit_masks`` in order (an internal validation split the library does not
    record, then all points); raises ``ValueError`` saying what did not match if none works.
    """
    failures = []
    for mask in spec.fit_masks:
        failure = (
            _intercept_mismatch(spec, X_train, mask)
            or _count_mismatch(spec, leaves_train, mask)
            or _leaf_mismatch(spec, leaves_train, gradients, mask)
        )
        if failure is None:
            return mask, [] if exact_check_possible(spec) else [APPROXIMATE_CHECK]
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


def _count_mismatch(spec: BoosterSpec, leaves_train: np.ndarray, mask: np.ndarray):
    """``(relative error, description)`` of the first leaf whose size is not the library's."""
    if spec.leaf_counts is None:
        return None
    for k, library in enumerate(spec.leaf_counts):
        ours = np.bincount(leaves_train[mask, k], minlength=library.shape[0])
        leaf = library >= 0
        ours, library = ours[: library.shape[0]][leaf], library[leaf]
        bad = ours != library if spec.exactly_checkable else ours < library
        if bad.any():
            i = np.flatnonzero(bad)[0]
            error = abs(float(ours[i] - library[i])) / max(float(library[i]), 1.0)
            return error, (
                f"leaf sizes (a leaf of stages_[{k}] holds {library[i]:.0f} training points "
                f"in the booster but {ours[i]} of X_train)"
            )
    return None


def _leaf_mismatch(spec, leaves_train, gradients, mask):
    """``(relative error, description)`` of the worst round whose leaves do not match."""
    exact = exact_check_possible(spec)
    worst = (0.0, 0)
    for k, (residuals, hessians) in enumerate(gradients):
        args = (spec, k, leaves_train[mask, k], residuals[mask], hessians[mask])
        worst = max(worst, (_exact_error(*args) if exact else _range_error(*args), k))
    error, k = worst
    if error <= spec.rtol:
        return None
    if exact:
        return error, f"leaf values (largest relative error {error:.2g} in stages_[{k}])"
    return error, (
        f"leaf values even allowing for {' '.join(spec.approximations)} (a leaf value lies "
        f"outside its training points' range by {error:.2g} relative, in stages_[{k}])"
    )


def _round_sums(spec, k: int, leaves, residuals, hessians):
    """Library leaf values, our gradient and hessian sums and occupancy, per leaf id."""
    values = spec.leaf_values[k]
    n_leaves = max(values.shape[0], int(leaves.max(initial=-1)) + 1)
    library = np.zeros(n_leaves)
    library[: values.shape[0]] = values
    G = np.bincount(leaves, residuals, n_leaves)  # sum of -g
    H = np.bincount(leaves, hessians, n_leaves)
    occupied = np.bincount(leaves, minlength=n_leaves) > 0
    # A leaf's rounding error is relative to the sum of its |residuals| over its hessians:
    # where residuals of both signs cancel (a confident log-loss leaf), G is tiny beside
    # them and the summation order (the library's against ours) shows in G / H.
    absolute = np.bincount(leaves, np.abs(residuals), n_leaves)
    denominator = H + spec.reg_lambda
    cancelling = np.divide(absolute, denominator, out=np.zeros(n_leaves), where=denominator > 0)
    largest = float(np.max(np.abs(residuals), initial=0))
    scale = np.abs(library) + spec.learning_rate * (largest + cancelling)
    return library, G, H, occupied, scale + 1e-300


def _exact_error(spec, k: int, leaves, residuals, hessians) -> float:
    """Largest ``|rebuilt - library| / (|library| + lr * max |r|)`` over round k's leaves."""
    library, G, H, occupied, scale = _round_sums(spec, k, leaves, residuals, hessians)
    step = _newton_step(spec, G, H)
    if spec.path_smooth > 0:
        counts = np.bincount(leaves, minlength=library.shape[0]).astype(np.float64)
        step = _smoothed(spec, spec.leaf_ancestors[k], step, G, H, counts)
    error = np.abs(spec.learning_rate * step - library) / scale
    return float(error[occupied].max(initial=0.0))


def _newton_step(spec, G, H):
    """The library's node value before shrinkage: ``T(G) / (H + lambda)``, clipped."""
    G = np.sign(G) * np.maximum(np.abs(G) - spec.reg_alpha, 0.0)  # L1 soft-thresholding
    denominator = H + spec.reg_lambda
    step = G / np.where(denominator > 0, denominator, np.inf)
    if spec.max_delta_step > 0:
        step = np.clip(step, -spec.max_delta_step, spec.max_delta_step)
    return step


def _smoothed(spec, ancestors, step, G, H, counts) -> np.ndarray:
    """LightGBM's path smoothing: each node's value pulled towards its smoothed parent's."""
    a = spec.path_smooth
    smoothed = np.zeros_like(step)
    for leaf, path in enumerate(ancestors):
        parent = 0.0
        for below in path:  # root first
            n = counts[below].sum()
            value = _newton_step(spec, G[below].sum(), H[below].sum())
            parent = (value * n / a + parent) / (n / a + 1)
        smoothed[leaf] = (step[leaf] * counts[leaf] / a + parent) / (counts[leaf] / a + 1)
    return smoothed


def _range_error(spec, k: int, leaves, residuals, hessians) -> float:
    """How far round k's leaves lie outside ``lr * [min(0, min r/h), max(0, max r/h)]``."""
    library, _, _, occupied, scale = _round_sums(spec, k, leaves, residuals, hessians)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.where(hessians > 0, residuals / hessians, np.sign(residuals) * np.inf)
    steps = spec.learning_rate * np.nan_to_num(steps, nan=0.0, posinf=np.inf, neginf=-np.inf)
    low, high = np.zeros(library.shape[0]), np.zeros(library.shape[0])
    if spec.path_smooth > 0:  # a leaf mixes in its ancestors: compare with the whole round
        low[:], high[:] = min(0.0, steps.min(initial=0.0)), max(0.0, steps.max(initial=0.0))
    else:
        np.minimum.at(low, leaves, steps)
        np.maximum.at(high, leaves, steps)
    outside = np.maximum(np.maximum(low - library, library - high), 0.0) / scale
    return float(outside[occupied].max(initial=0.0))
