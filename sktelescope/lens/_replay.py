"""Deterministic replay of a fitted model's run with lens monitors attached.

Every fit records what a replay needs (``est.run_.fits``: the integer seed its random draws
came from, the settings, digests of the data, the rows trained on, the step of the model it
kept), whatever ``random_state`` was. :func:`replay` checks that the data given is the data
of the fit (naming what differs when it is not), fits a clone of the estimator with the
recorded settings and the monitors attached, fit after fit for ``warm_start``
continuations, stops at the step of the model the estimator keeps (its best epoch under
early stopping), and checks that the replay reproduced the fitted parameters bit for bit.
A measurement is therefore always of the user's model, or refused.

Attaching a monitor to the user's own fit (``est.fit(X, y, monitors=[monitor])``) measures
without a replay: half the cost, and the way to measure on a device where training is not
deterministic.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from sklearn.base import clone, is_regressor

from sktelescope._checks import check_features, check_targets, checked_sample_weight
from sktelescope._core.network import n_inputs
from sktelescope._core.observers import Observer
from sktelescope._mlp import BaseTelescopingMLP, FitRecord, TrainingRun
from sktelescope.lens._subject import Subject, resolve

__all__ = ["as_network_inputs", "check_estimator", "check_fit_data", "replay"]


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
        resolve(est, what, trees=False)  # the full message


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
    run = getattr(est, "run_", None)
    if run is not None:
        run.fit_data(X, y, sample_weight, names)
        return
    X = check_features(X, names[0])
    check_targets(y, len(X), names, numeric=is_regressor(est))
    checked_sample_weight(sample_weight, X, names[0])


def replay(
    subject: Subject, X, y, observers: Sequence, *, sample_weight=None,
    fit_params: dict | None = None, names: tuple[str, str] = ("X", "y"), until: int | None = None,
) -> BaseTelescopingMLP:  # fmt: skip
    """Fit a clone of the subject's network on ``(X, y)`` with ``observers``; return the clone.

    An unfitted network is simply fitted (a clone of it, with the monitors). A fitted one is
    replayed: ``(X, y, sample_weight)`` must be the data of its fits (else a ``ValueError``
    says what differs and what to pass), each recorded fit is repeated with its recorded
    settings and seed, the replay stops at the model the estimator keeps, and a replay that
    does not reproduce the fitted parameters exactly is refused.

    Parameters
    ----------
    subject : Subject
        From :func:`~sktelescope.lens._subject.resolve`; a Pipeline's transformers are
        applied to ``X`` first.
    X, y : array-like
        The data given to ``fit``.
    observers : sequence of Observer
        The monitors; they see the run from its first step to the kept model's.
    sample_weight : array-like, optional
        The ``sample_weight`` given to ``fit``.
    fit_params : dict, optional
        Other arguments given to ``fit`` (``X_val``, ``y_val``).
    names : tuple of str
        The caller's names of ``X`` and ``y``, for messages.
    until : int, optional
        Stop the replay after this optimizer step (before the kept model's; nothing is then
        compared: the caller checks what it needs, e.g. a checkpoint at that step).
    """
    est, fit_params = subject.model, dict(fit_params or {})
    _check_fit_params(fit_params)
    Xt = subject.transform(X)
    if not subject.is_fitted:
        check_fit_data(est, Xt, y, sample_weight, names)
        twin = clone(est)
        return twin.fit(Xt, y, sample_weight=sample_weight, monitors=list(observers), **fit_params)
    run: TrainingRun = est.run_
    _check_same_data(subject, run, Xt, y, sample_weight, fit_params, names)
    twin = _replay_fits(est, run.fits, Xt, y, sample_weight, fit_params, observers, until)
    if until is None:
        _check_reproduced(run, twin.run_)
    return twin


def _check_fit_params(fit_params: dict) -> None:
    unknown = sorted(set(fit_params) - {"X_val", "y_val"})
    if unknown:
        raise TypeError(
            f"fit_params takes the fit arguments X_val and y_val, got {unknown}; pass "
            "sample_weight as its own argument."
        )


def _check_same_data(subject, run, X, y, sample_weight, fit_params, names) -> None:
    """Refuse data that is not the data of every recorded fit, saying what differs."""
    _, _, _, digest = run.fit_data(X, y, sample_weight, names)
    for k, record in enumerate(run.fits):
        differs = record.data.differences(digest)
        if differs:
            raise ValueError(_other_data_message(subject, record, k, differs, names))
        if record.validation == "given":
            _check_validation_data(run, record, fit_params)


def _other_data_message(subject, record: FitRecord, k: int, differs: dict, names) -> str:
    which = "its first fit" if k == 0 else f"its warm_start fit number {k + 1}"
    if "rows" in differs:
        what = f"{names[0]} has another number of rows ({which} had {record.data.n_rows})"
    else:
        label = {"X": names[0], "y": names[1], "weights": "sample_weight"}
        n = record.data.n_rows
        what = ", ".join(f"{k} of {n} rows of {label[p]}" for p, k in differs.items())
        what = f"{what} differ from {which}'s"
    return (
        f"This model was fitted on other data: {what}. A measurement of another run is "
        f"refused. {subject.hint()}, with the same y and sample_weight."
    )


def _check_validation_data(run, record: FitRecord, fit_params: dict) -> None:
    X_val, y_val = fit_params.get("X_val"), fit_params.get("y_val")
    if X_val is None or y_val is None:
        raise ValueError(
            "This model was fitted with X_val, y_val (early stopping on given validation "
            "data): pass them as fit_params={'X_val': X_val, 'y_val': y_val}."
        )
    _, _, _, digest = run.fit_data(X_val, y_val, None, ("X_val", "y_val"))
    if digest.key != record.validation_key:
        raise ValueError(
            "fit_params' X_val, y_val are not the validation data this model was fitted "
            "with; pass the X_val, y_val given to fit."
        )


def _replay_fits(est, records, X, y, sample_weight, fit_params, observers, until=None):
    """Repeat the recorded fits with their settings and seeds, monitors attached throughout,
    up to the kept model's step (or ``until``)."""
    end = records[-1].last_step if until is None else until
    reach = [k + 1 for k, r in enumerate(records) if r.last_step >= end]
    n_fits = reach[0] if reach else len(records)
    spanning = [_Spanning(o, end, n_fits) for o in observers]
    twin = clone(est)
    for k, record in enumerate(records[:n_fits]):
        params = {**record.params, "random_state": record.seed, "warm_start": k > 0}
        twin.set_params(**params)
        stop = _StopAt(min(record.last_step, end))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # ConvergenceWarning & co.
            twin.fit(X, y, sample_weight=sample_weight, monitors=[*spanning, stop], **fit_params)
    return twin


def _check_reproduced(run: TrainingRun, replayed: TrainingRun) -> None:
    ours, theirs = run.final_parameters.cpu(), replayed.final_parameters.cpu()
    if ours.shape == theirs.shape and torch.equal(ours, theirs):
        return
    gap = float((ours - theirs).abs().max()) if ours.shape == theirs.shape else float("nan")
    raise ValueError(
        "Replaying the fit did not reproduce this model's parameters (largest difference "
        f"{gap:.3g}), so a measurement of the replay would describe another run; it is "
        "refused. Training on this device is not deterministic (a GPU), or the model was "
        "changed after fit. Attach the monitor to a fit instead: "
        "est.fit(X, y, monitors=[monitor])."
    )


class _StopAt(Observer):
    """Ends a replayed fit right after optimizer step ``step`` (the kept model's)."""

    def __init__(self, step: int) -> None:
        self.step = int(step)

    def on_train_begin(self, trainer) -> None:
        if trainer.step >= self.step:
            trainer.request_stop("replayed")

    def on_step(self, step) -> None:
        if step.step >= self.step:
            step.trainer.request_stop("replayed")


class _PlannedTrainer:
    """A trainer as a monitor sees it at the start of a replay: its ``total_steps`` are the
    steps the whole replay will take (every fit of a continued run, up to the kept model)."""

    def __init__(self, trainer, total_steps: int) -> None:
        self._trainer, self.total_steps = trainer, int(total_steps)

    def __getattr__(self, name):
        return getattr(self._trainer, name)


class _Spanning(Observer):
    """An observer seen through several fits as through one run: begun by the first fit,
    ended by the last, told of every step in between."""

    def __init__(self, inner, total_steps: int, n_fits: int) -> None:
        self.inner, self.total_steps, self.n_fits = inner, total_steps, n_fits
        self.wants_previous_params = bool(getattr(inner, "wants_previous_params", False))
        self._ended = 0

    def on_train_begin(self, trainer) -> None:
        if self._ended == 0:
            self.inner.on_train_begin(_PlannedTrainer(trainer, self.total_steps))

    def on_step(self, step) -> None:
        self.inner.on_step(step)

    def on_epoch_end(self, epoch) -> None:
        self.inner.on_epoch_end(epoch)

    def on_train_end(self, trainer, result) -> None:
        self._ended += 1
        if self._ended == self.n_fits:
            self.inner.on_train_end(trainer, result)


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
        return trainer.input_transform(X, name=name)
    param = next(trainer.module.parameters())
    return torch.as_tensor(checked, dtype=param.dtype, device=param.device)
