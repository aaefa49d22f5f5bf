"""Generic checks of user input, shared by every layer of the package.

Arrays (features, targets, sample weights), positive integers and sizes, with errors in
scikit-learn's style that always name the argument the user passed. Nothing here knows
about networks, runs or boosters; the estimators' own checks (hidden layer sizes, memory of a
network, devices) are in :mod:`sktelescope._mlp._validation`.
"""

from __future__ import annotations

import functools
import os
import sys
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.utils.validation import _check_feature_names, _check_sample_weight, check_array

__all__ = [
    "check_features",
    "check_fitted_features",
    "check_targets",
    "checked_sample_weight",
    "format_bytes",
    "n_rows",
    "physical_memory",
    "positive_int",
    "standardisation",
    "user_stacklevel",
]

_PACKAGE_DIRS = (str(Path(__file__).resolve().parent), str(Path(sklearn.__file__).parent))


def check_features(X, name: str = "X") -> np.ndarray:
    """``X`` as a 2-D float64 array of finite numbers with a row and a column at least.

    ``sklearn.utils.check_array`` with errors that always name ``name``: its own messages
    for an empty array, text or complex values do not.

    Examples
    --------
    >>> check_features([["a", "b"]], "X_eval")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X_eval must be numeric features: could not convert string to float: ...
    >>> check_features(np.empty((0, 3)), "X_eval")
    Traceback (most recent call last):
    ...
    ValueError: X_eval is empty (shape (0, 3)); pass at least one row and one column.
    >>> check_features(np.array([[1.0, pd.NA]], dtype=object), "X_eval")
    Traceback (most recent call last):
    ...
    ValueError: Input X_eval contains NaN (None or pd.NA values).
    """
    try:
        X = check_array(
            X, dtype=np.float64, input_name=name, ensure_min_samples=0, ensure_min_features=0
        )
    except (TypeError, ValueError) as exc:
        if name in str(exc):
            raise
        if _has_missing(X):  # None or pd.NA in an object array: float() refuses them
            raise ValueError(f"Input {name} contains NaN (None or pd.NA values).") from None
        raise ValueError(f"{name} must be numeric features: {exc}") from None
    if X.size == 0:
        raise ValueError(
            f"{name} is empty (shape {X.shape}); pass at least one row and one column."
        )
    return X


@functools.cache
def _named(owner: str) -> type:
    """A class called ``owner``, for scikit-learn's feature-name messages."""
    return type(owner, (), {})


def check_fitted_features(
    X, n_features: int, feature_names=None, owner: str = "The model", name: str = "X"
) -> np.ndarray:
    """``X`` checked like a fitted model's ``predict`` checks it: feature names (warnings and
    errors worded as scikit-learn words them, naming ``owner``), then :func:`check_features`,
    then the number of features.

    Examples
    --------
    >>> check_fitted_features(np.ones((2, 3)), 2, owner="MyModel", name="X_test")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X_test has 3 features, but MyModel is expecting 2 features as input ...
    """
    holder = _named(owner)()
    if feature_names is not None:
        holder.feature_names_in_ = feature_names
    _check_feature_names(holder, X, reset=False)
    X = check_features(X, name)
    if X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but {owner} is expecting {n_features} "
            "features as input (the features it was fitted on)."
        )
    return X


def check_targets(y, n_rows: int, names: tuple[str, str], numeric: bool) -> np.ndarray:
    """``y`` checked like ``fit`` checks targets: finite numbers (``numeric``) or labels, one
    per row of the features. Errors name ``names`` (features, targets).

    Examples
    --------
    >>> check_targets([1.0], 2, ("X_train", "y_train"), numeric=True)
    Traceback (most recent call last):
    ...
    ValueError: y_train has 1 rows, but X_train has 2; pass one target per row of X_train.
    """
    X_name, y_name = names
    y = check_array(y, ensure_2d=False, dtype=np.float64 if numeric else None,
                    input_name=y_name, ensure_min_samples=0)  # fmt: skip
    if len(y) != n_rows:
        raise ValueError(
            f"{y_name} has {len(y)} rows, but {X_name} has {n_rows}; pass one target per "
            f"row of {X_name}."
        )
    return y


def _has_missing(X) -> bool:
    try:
        return bool(np.any(pd.isna(np.asarray(X, dtype=object))))
    except (TypeError, ValueError):
        return False


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def standardisation(values: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where constant) of finite ``values``.

    Each column is divided by its largest magnitude first, so that values near the ends
    of float64's range (1e300, 1e-300) neither overflow nor underflow when squared: data
    in any units is standardised alike.

    Examples
    --------
    >>> standardisation(np.array([[1.0], [3.0]]), "X")
    (array([2.]), array([1.]))
    >>> standardisation(np.array([[1e-200, 1e300, 0.5], [3e-200, 3e300, 0.5]]), "X")[1]
    array([1.e-200, 1.e+300, 1.e+000])
    """
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or infinity; pass finite values.")
    largest = np.max(np.abs(values), axis=0) if len(values) else np.ones(values.shape[1:])
    largest = np.where(largest > 0, largest, 1.0)
    unit = values / largest
    mean, scale = unit.mean(axis=0) * largest, unit.std(axis=0) * largest
    # Constant: no spread beyond float64 round-off of the mean. Relative, so that a
    # feature measured in tiny units (spread 1e-20 around 0) is standardised, not dropped.
    scale[scale <= 1e-12 * np.abs(mean)] = 1.0
    return mean, scale


def checked_sample_weight(sample_weight, X: np.ndarray, X_name: str = "X") -> np.ndarray:
    """``sample_weight`` as float64 of shape (n,), refusing negative or all-zero weights.

    Examples
    --------
    >>> checked_sample_weight(None, np.zeros((3, 1))).tolist()
    [1.0, 1.0, 1.0]
    >>> checked_sample_weight([1.0, 2.0], np.zeros((3, 1)))
    Traceback (most recent call last):
    ...
    ValueError: sample_weight has 2 values, but X has 3 rows; pass one weight per row of X.
    """
    n = len(X)
    if sample_weight is not None and not np.isscalar(sample_weight):
        sample_weight = np.asarray(sample_weight)
        if sample_weight.shape != (n,):
            size = sample_weight.shape
            what = f"{size[0]} values" if len(size) == 1 else f"shape {size}"
            raise ValueError(
                f"sample_weight has {what}, but {X_name} has {n} rows; pass one weight per "
                f"row of {X_name}."
            )
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if np.any(weights < 0):
        n_negative = int(np.sum(weights < 0))
        raise ValueError(
            f"sample_weight must be non-negative; got {n_negative} negative "
            f"value{'' if n_negative == 1 else 's'} (smallest {weights.min():g})."
        )
    if not np.any(weights > 0):
        raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight.")
    total = float(np.sum(weights))
    if not np.isfinite(total):
        raise ValueError(
            f"sample_weight sums to {total:g} in float64: rescale the weights (only their "
            "ratios matter, they are normalised to mean one)."
        )
    return weights


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` that points at the first frame outside
    sktelescope and scikit-learn (the user's line, also through a Pipeline)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIRS):
        frame, level = frame.f_back, level + 1
    return level


def positive_int(value, name: str) -> int:
    """``value`` as an int, or a ValueError naming ``name`` unless it is an integer >= 1.

    Examples
    --------
    >>> positive_int(2.5, "every")
    Traceback (most recent call last):
    ...
    ValueError: every must be a positive integer, got 2.5.
    """
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def format_bytes(n: float) -> str:
    """Human-readable size, e.g. ``'1.5 GiB'``.

    Examples
    --------
    >>> format_bytes(3 * 2**30 / 2)
    '1.5 GiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def n_rows(X) -> int:
    """Rows of an array-like, without converting it.

    Examples
    --------
    >>> n_rows([[1, 2], [3, 4]]), n_rows(None)
    (2, 0)
    """
    if X is None:
        return 0
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else len(X)
