"""One calling convention for the lens, and the forms of earlier releases.

Every data-taking lens function is called ``function(model, X, y, X_eval, *, keywords)``:
``X, y`` are the data given to ``fit`` (the raw data of a Pipeline), ``X_eval`` the inputs
measured. The forms of the previous release (``X_train=``/``y_train=`` keywords, the
evaluation inputs where ``y`` now is, parameter vectors before the data) keep working for
one release with a ``FutureWarning``, as scikit-learn deprecates.
"""

from __future__ import annotations

import warnings

import numpy as np

from sktelescope._checks import user_stacklevel
from sktelescope.lens._subject import Subject

__all__ = ["data_call", "legacy_call", "looks_like_features"]


def data_call(function: str, X, y, legacy: dict) -> tuple:
    """``(X, y)`` of a call that may use the old keyword names ``X_train``/``y_train``.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     X, y = data_call("f", None, None, {"X_train": [[1.0]], "y_train": [2.0]})
    >>> X, y, seen[0].category.__name__
    ([[1.0]], [2.0], 'FutureWarning')
    """
    unknown = sorted(set(legacy) - {"X_train", "y_train"})
    if unknown:
        raise TypeError(f"{function}() got unexpected keyword arguments {unknown}.")
    if legacy:
        legacy_call(function, "(model, X, y, X_eval, ...)", "(model, X_train=..., y_train=...)")
        X = legacy.get("X_train", X) if X is None else X
        y = legacy.get("y_train", y) if y is None else y
    if X is None or y is None:
        raise TypeError(
            f"{function}() needs the data given to fit: {function}(model, X, y, X_eval, ...)."
        )
    return X, y


def legacy_call(function: str, new_form: str, old_form: str) -> None:
    """Warn that ``function`` was called in a form of an earlier release (``FutureWarning``,
    as scikit-learn deprecates: the old form keeps working for one release)."""
    warnings.warn(
        f"{function}{old_form} is deprecated and will stop working in sktelescope 0.2; call "
        f"{function}{new_form}, where X, y are the data given to fit.",
        FutureWarning,
        stacklevel=user_stacklevel(),
    )


def looks_like_features(y, subject: Subject) -> bool:
    """Whether a ``y`` argument is in fact a feature matrix (an old-form call that passed
    inputs where the new form takes targets): 2-D, as many columns as the model has features,
    not the model's number of outputs."""
    if y is None or np.ndim(y) != 2:
        return False
    n_features = _n_features(subject)
    n_outputs = _n_outputs(subject)
    return n_features is not None and np.shape(y)[1] == n_features != n_outputs


def _n_features(subject: Subject) -> int | None:
    if subject.steps:
        return getattr(subject.steps[0][1], "n_features_in_", None)
    return getattr(subject.model, "n_features_in_", None)


def _n_outputs(subject: Subject) -> int:
    return int(getattr(subject.model, "n_outputs_", 1))
