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

import numpy as np
import torch
from sklearn.base import clone

from sktelescope._mlp._base import BaseTelescopingMLP

__all__ = ["as_network_inputs", "check_estimator", "check_replayable", "format_bytes", "replay_fit"]


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


def replay_fit(est, X, y, observers: Sequence, sample_weight=None):
    """Fit a clone of ``est`` on ``(X, y)`` with ``observers`` attached; return the clone.

    If ``est`` is fitted, the replay's final parameters are compared with its own and a
    ``UserWarning`` says so when they differ (``est`` was fitted on other data, or with
    other settings, or on a device where training is not deterministic).
    """
    check_replayable(est)
    twin = clone(est).set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        twin.fit(X, y, sample_weight=sample_weight, monitors=list(observers))
    _warn_if_different(est, twin)
    return twin


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


def as_network_inputs(trainer, X) -> torch.Tensor:
    """Raw inputs -> the network's input tensor, via the trainer's ``input_transform``."""
    if trainer.input_transform is not None:
        return trainer.input_transform(X)
    param = next(trainer.module.parameters())
    return torch.as_tensor(np.asarray(X), dtype=param.dtype, device=param.device)


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
