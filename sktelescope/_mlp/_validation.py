"""Checks an estimator runs before it allocates or trains anything."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.utils.validation import _check_sample_weight, check_array

__all__ = [
    "check_features",
    "check_targets",
    "check_hidden_layer_sizes",
    "check_network_memory",
    "checked_sample_weight",
    "resolve_device",
    "standardisation",
    "user_stacklevel",
]

_PACKAGE_DIRS = (str(Path(__file__).resolve().parents[1]), str(Path(sklearn.__file__).parent))


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


def check_hidden_layer_sizes(sizes) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints, or a ValueError.

    Examples
    --------
    >>> check_hidden_layer_sizes([64, 32])
    (64, 32)
    """
    arr = np.asarray(sizes, dtype=object).reshape(-1)
    ok = all(isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1 for s in arr)
    if not ok:
        raise ValueError(
            f"hidden_layer_sizes must be a sequence of positive integers, got {sizes!r}."
        )
    return tuple(int(s) for s in arr)


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_network_memory(n_params: int, n_checkpoints: int, adaptive: bool) -> int:
    """Bytes the fit will hold for the network; refuse what exceeds physical memory.

    Counts the parameters, their gradients and the optimizer's state (two moments for
    Adam/AdamW, one momentum buffer for SGD) in float32, and the kept checkpoints (one
    parameter vector each, two with Adam's preconditioner).

    Examples
    --------
    >>> check_network_memory(1000, n_checkpoints=51, adaptive=True)
    424000
    """
    per_param = 4 * (4 if adaptive else 3) + 4 * n_checkpoints * (2 if adaptive else 1)
    need = int(n_params) * per_param
    available = _physical_memory()
    if available is not None and need > available:
        raise ValueError(
            f"This network has {n_params:,} parameters and would need about "
            f"{need / 2**30:,.1f} GiB (parameters, gradients, optimizer state and "
            f"{n_checkpoints} stage checkpoints), more than this machine's "
            f"{available / 2**30:,.1f} GiB. Use smaller hidden_layer_sizes or fewer "
            "max_stages."
        )
    return need


def resolve_device(device: str) -> torch.device:
    """The torch device for ``device`` ("auto", or any torch device string that works here).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
        torch.empty(1, device=resolved)
    except (RuntimeError, ValueError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"device={device!r} cannot be used here ({first}). Use 'cpu', 'auto' (CUDA when "
            "available), or a torch device this machine has, such as 'cuda:0'."
        ) from None
    if resolved.type == "meta":
        raise ValueError("device='meta' holds no data; use 'cpu' or a GPU device.")
    return resolved


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
