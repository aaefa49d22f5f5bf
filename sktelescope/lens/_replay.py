"""Deterministic replay of an estimator's fit with lens monitors attached.

On CPU a run started from the same integer ``random_state`` draws the same initial
parameters, validation split and batch order, so fitting a clone with monitors
(``fit(X, y, monitors=[...])``) reproduces the original run bit for bit while the monitors
watch every step. A monitor can also be attached to the user's own fit directly; the
replay is for models that are already fitted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral

import torch
from sklearn.base import clone, is_classifier

from sktelescope._core.network import n_inputs
from sktelescope._mlp._base import BaseTelescopingMLP
from sktelescope._mlp._validation import check_features, check_targets, checked_sample_weight

__all__ = [
    "as_network_inputs",
    "check_estimator",
    "check_fit_data",
    "check_replayable",
    "format_bytes",
    "positive_int",
    "replay_fit",
]


def check_estimator(est, what: str = "This measurement") -> None:
    """Raise ``TypeError`` unless ``est`` is a telescoping MLP estimator.

    Examples
    --------
    >>> check_estimator(object(), "kernels")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: kernels needs a TelescopingMLPRegressor or ... got object.
    """
    if not isinstance(est, BaseTelescopingMLP):
        raise TypeError(
            f"{what} needs a TelescopingMLPRegressor or TelescopingMLPClassifier, got "
            f"{type(est).__name__}."
        )


def check_replayable(est) -> None:
    """Raise unless ``est`` is one of our MLP estimators with an integer ``random_state``."""
    check_estimator(est, "Replaying a fit")
    seed = est.get_params().get("random_state")
    if not isinstance(seed, Integral) or isinstance(seed, bool):
        raise ValueError(
            "Replaying a fit needs an integer random_state so that the initial parameters "
            f"and batch order can be reproduced; got random_state={seed!r}. Set "
            "random_state=0 (or any int) and fit again, or attach the monitor to your own "
            "fit: est.fit(X, y, monitors=[monitor])."
        )


def replay_fit(
    est, X, y, observers: Sequence, sample_weight=None, names: tuple[str, str] = ("X", "y"),
    *, compare: bool = True,
):  # fmt: skip
    """Fit a clone of ``est`` on ``(X, y)`` with ``observers`` attached; return the clone.

    ``X``, ``y`` and ``sample_weight`` are checked first, with errors that call them by
    ``names`` (the caller's argument names); a fitted ``est`` also needs ``X`` to have its
    features. If ``est`` is fitted and ``compare`` is true, the replay's final parameters
    are compared with its own and a ``UserWarning`` says so when they differ (``est`` was
    fitted on other data, or with other settings, or on a device where training is not
    deterministic). Pass ``compare=False`` for a replay that an observer stops early.
    """
    check_replayable(est)
    check_fit_data(est, X, y, sample_weight, names)
    twin = clone(est).set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        twin.fit(X, y, sample_weight=sample_weight, monitors=list(observers))
    if compare:
        _warn_if_different(est, twin)
    return twin


def check_fit_data(est, X, y, sample_weight=None, names: tuple[str, str] = ("X", "y")) -> None:
    """Raise ``ValueError`` unless ``(X, y, sample_weight)`` can be what ``est`` is fitted on.

    ``X``: numeric, finite, 2-D and non-empty (with the fitted features when ``est`` is
    fitted); ``y``: one finite target (regressors) or label (classifiers) per row;
    ``sample_weight``: one non-negative weight per row. Errors name ``names``.

    Examples
    --------
    >>> from sktelescope import TelescopingMLPRegressor
    >>> check_fit_data(TelescopingMLPRegressor(), [[0.0], [1.0]], [1.0],
    ...                names=("X_train", "y_train"))
    Traceback (most recent call last):
    ...
    ValueError: y_train has 1 rows, but X_train has 2; pass one target per row of X_train.
    """
    X_name, y_name = names
    run = getattr(est, "run_", None)
    if run is None:
        X = check_features(X, X_name)
    else:
        X = run.validate_features(X, X_name)
    check_targets(y, len(X), names, numeric=not is_classifier(est))
    checked_sample_weight(sample_weight, X, X_name)


def _warn_if_different(est, twin) -> None:
    run = getattr(est, "run_", None)
    if run is None:
        return
    ours, theirs = run.final_parameters.cpu(), twin.run_.final_parameters.cpu()
    if ours.shape != theirs.shape or not torch.equal(ours, theirs):
        warnings.warn(
            "The replayed fit did not reproduce the fitted estimator's parameters "
            "(it was fitted on other data, with other settings, or non-deterministically). "
            "The trace describes the replayed run.",
            UserWarning,
            stacklevel=3,
        )


def as_network_inputs(trainer, X, name: str = "X") -> torch.Tensor:
    """Raw inputs -> the network's input tensor, via the trainer's ``input_transform``.

    ``X`` is checked first, with errors that name ``name`` (the monitor's argument): it
    must be numeric, finite, 2-D, non-empty and have the network's number of inputs.
    Without an ``input_transform`` (a bare ``Trainer``) ``X`` is taken as network inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from sktelescope._core.network import build_mlp
    >>> from sktelescope._core.training import TrainConfig, Trainer
    >>> trainer = Trainer(build_mlp(3, (), 1), None, TrainConfig(), torch.Generator())
    >>> as_network_inputs(trainer, np.ones((2, 1)), "X_eval")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X_eval has 1 features, but the network takes 3 inputs (...).
    """
    raw = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X
    checked = check_features(raw, name)
    inputs = n_inputs(trainer.module)
    if checked.shape[1] != inputs:
        raise ValueError(
            f"{name} has {checked.shape[1]} features, but the network takes {inputs} "
            "inputs (the features it is fitted on)."
        )
    if trainer.input_transform is not None:
        return trainer.input_transform(X)
    param = next(trainer.module.parameters())
    return torch.as_tensor(checked, dtype=param.dtype, device=param.device)


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
