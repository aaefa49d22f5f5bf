"""Kernel extremity: how far test kernel weights exceed anything seen in training.

With ``k_t(x)`` the row of update ``t``'s kernel against the training inputs (see the
docs' :ref:`math-extremity`),

    R = [(1/T) Σ_t max_{x ∈ X_test} ||k_t(x)||₂] / [(1/T) Σ_t max_{x ∈ X_train} ||k_t(x)||₂].

``R > 1`` means some test input receives larger kernel weights than any training input
did. The same functions serve networks and boosted trees
(:class:`~sktelescope.trees.TreeTelescope`): anything whose ``stages_`` follow the stage
protocol (``kernel_row_norms(X, Z)``).

Two network kernels
-------------------
``method="stage"`` (the fast default): one kernel per stage, the plain tangent kernel at
the stage's start against every training input, ``k(x) = [∇f(x)·∇f(x_1), ...]``. It needs
only the fitted model, and costs one kernel block per stage.

``method="step"`` (the paper's definition): the kernel of every optimizer step,
``k_t(x) = γ_t/|B_t| [w_i ∇f_{t-1}(x)·∇f_{t-1}(x_i)]_{i ∈ B_t}`` (zero outside the step's
mini-batch ``B_t``, with the step's learning rate ``γ_t`` and sample weights), averaged over
all steps of the run. It needs a replay of the fit with a
:class:`KernelExtremityMonitor` (or the monitor attached to your own fit). Under a
constant learning rate and full-batch training the two agree when every step is a
stage; with mini-batches they differ by the masking (close, not equal); under a
learning-rate schedule the per-step ratio weights each step by ``γ_t``.

The benchmark uses ``method="stage"``: it is measured on the very models the table
compares, without refitting them, at a cost that fits a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state

from sktelescope._checks import n_rows
from sktelescope._core.kernels import tangent_kernel
from sktelescope._core.layers import dropout_masks
from sktelescope._core.observers import Observer
from sktelescope._core.optim import applied_preconditioner
from sktelescope._staged import StageLike
from sktelescope.lens._calls import legacy_call, looks_like_features
from sktelescope.lens._progress import Progress
from sktelescope.lens._replay import as_network_inputs, replay
from sktelescope.lens._subject import resolve

__all__ = [
    "DEFAULT_MAX_TRAIN_SAMPLES",
    "KernelExtremity",
    "KernelExtremityMonitor",
    "kernel_extremity_ratio",
    "kernel_row_norms",
    "max_row_norms",
]

#: Training rows used by default as kernel columns and for the denominator's maximum.
DEFAULT_MAX_TRAIN_SAMPLES = 2_000


def kernel_row_norms(stage, X, X_train=None, **kwargs) -> np.ndarray:
    """``||k(x)||₂``: norm of each input's kernel row against the training inputs.

    Parameters
    ----------
    stage : a stage of a fitted model
        A network stage (``est.stages_[k]``) or a tree stage (``TreeTelescope.stages_[k]``):
        anything with ``kernel_row_norms(X, Z)``.
    X : array-like of shape (n_samples, n_features)
    X_train : array-like of shape (n_train, n_features), optional
        The kernel's columns; required for network stages, optional for tree stages (which
        default to the points their trees were fitted on).
    **kwargs
        Passed to the stage (network stages: ``preconditioned``, ``chunk_size``,
        ``max_memory_bytes``).

    Returns
    -------
    norms : ndarray of shape (n_samples,)
        Network stages: in squared standardised-output units; trees: weights per unit
        pseudo-residual. Only ratios within one model family are meaningful.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=2,
    ...                               random_state=0).fit(X, y)
    >>> kernel_row_norms(est.stages_[0], X[:4], X).shape
    (4,)
    """
    if not isinstance(stage, StageLike):
        raise TypeError(
            f"{type(stage).__name__} is not a stage: expected a network or tree stage with "
            "steps, predict, kernel and kernel_row_norms (a fitted model's stages_[k])."
        )
    return np.asarray(stage.kernel_row_norms(X, X_train, **kwargs), dtype=np.float64)


def max_row_norms(model, X, y=None, X_eval=None, **kwargs) -> np.ndarray:
    """Largest kernel-row norm over ``X_eval`` at each stage of ``model``, against ``X``.

    Parameters
    ----------
    model : fitted TelescopingMLP* estimator (or a Pipeline / search over one) or TreeTelescope
    X : array-like of shape (n_train, n_features)
        The kernel's columns: rows of the data the model was fitted on (others are refused),
        raw data for a Pipeline.
    y : array-like, optional
        Their targets (checked for length only: the norms do not depend on them).
    X_eval : array-like of shape (n_samples, n_features), optional
        Inputs whose largest norm is taken; default ``X``.
    **kwargs
        Passed to :func:`kernel_row_norms`.

    Returns
    -------
    maxima : ndarray of shape (n_stages,)

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor((8,), max_iter=2, random_state=0).fit(X, y)
    >>> max_row_norms(est, X, y, X[:5]).shape == (est.n_stages_,)
    True
    """
    subject = resolve(model, "max_row_norms")
    if X_eval is None and looks_like_features(y, subject):
        legacy_call("max_row_norms", "(model, X, y, X_eval)", "(model, X_eval, X_train)")
        X, y, X_eval = y, None, X
    X_train = subject.training_inputs(X, y)
    X_eval = X_train if X_eval is None else subject.eval_inputs(X_eval)
    return _max_norms(subject.model, X_eval, X_train, kwargs)


def _max_norms(model, X_eval, X_train, kwargs) -> np.ndarray:
    return np.array([kernel_row_norms(s, X_eval, X_train, **kwargs).max() for s in _stages(model)])


def _stages(model) -> list:
    stages = getattr(model, "stages_", None)
    if stages is None:
        if hasattr(model, "fit"):
            raise NotFittedError(
                f"This {type(model).__name__} instance has no stages_: fit it first, or wrap "
                "a fitted booster in sktelescope.trees.TreeTelescope."
            )
        raise TypeError(f"Expected a model with stages_, got {type(model).__name__}.")
    if len(stages) == 0:
        raise ValueError("The model has no stages; train it for at least one step.")
    return list(stages)


@dataclass
class KernelExtremity:
    """Result of :func:`kernel_extremity_ratio`.

    Attributes
    ----------
    ratio : float
        ``R = mean(test_max) / mean(train_max)`` (weighted by ``weights`` per step).
    test_max, train_max : ndarray of shape (n_records,)
        Largest kernel-row norm over the test and the training inputs at each stage (or
        step).
    n_train_used : int
        Training rows used as kernel columns and for the denominator (a random subset
        when the training set is larger than ``max_train_samples``).
    method : {"stage", "step"}
    weights : ndarray of shape (n_records,)
        Weight of each record in the means (ones for stages).
    """

    ratio: float
    test_max: np.ndarray
    train_max: np.ndarray
    n_train_used: int = 0
    method: str = "stage"
    weights: np.ndarray = field(default_factory=lambda: np.ones(0))


def _subsample_rows(X_train, max_train_samples, random_state):
    X_train = np.asarray(X_train) if not hasattr(X_train, "iloc") else X_train
    n = n_rows(X_train)
    if max_train_samples is None or max_train_samples >= n:
        return X_train
    if int(max_train_samples) < 1:
        raise ValueError(f"max_train_samples must be a positive integer, got {max_train_samples}.")
    rows = np.sort(check_random_state(random_state).choice(n, int(max_train_samples), False))
    return X_train.iloc[rows] if hasattr(X_train, "iloc") else X_train[rows]


def kernel_extremity_ratio(
    model,
    X=None,
    y=None,
    X_test=None,
    *,
    method: str = "stage",
    max_train_samples: int | None = DEFAULT_MAX_TRAIN_SAMPLES,
    random_state=0,
    sample_weight=None,
    fit_params: dict | None = None,
    progress: bool | None = None,
    **kwargs,
) -> KernelExtremity:
    """Kernel-extremity ratio ``R`` of ``model`` on ``X_test``.

    Parameters
    ----------
    model : fitted TelescopingMLP* estimator (or a Pipeline / search over one) or TreeTelescope
    X : array-like of shape (n_train, n_features)
        The data given to ``fit`` (raw data for a Pipeline), or rows of it (other points are
        refused). The kernel's columns and the denominator's points are the rows of ``X``
        the model trained on: a network's early-stopping hold-out is left out.
    y : array-like, optional
        The targets given to ``fit``: needed for ``method="step"`` (a replay), otherwise
        only checked for length.
    X_test : array-like of shape (n_test, n_features)
    method : {"stage", "step"}, default="stage"
        One kernel per stage (fast, from the fitted model), or the batch-masked kernel of
        every optimizer step (the paper's; networks only; replays the fit, which needs the
        whole ``X`` and ``y`` given to fit). See the module docstring.
    max_train_samples : int or None, default=2000
        Use a random subset of this many training inputs (kernel columns and denominator);
        ``None`` uses all of them, at a cost of ``O((n_test + n_train) * n_train)`` kernel
        entries per stage. The number used is in the result.
    random_state : int, RandomState instance or None, default=0
        Draws the subset.
    sample_weight, fit_params
        What was given to ``fit`` (``method="step"`` only).
    progress : bool or None, default=None
        ``method="step"``: a progress bar over the replay's steps, with its work (steps x
        rows x parameters) and an ETA; ``None`` shows it when the output is a terminal.
    **kwargs
        ``preconditioned``, ``chunk_size``, ``max_memory_bytes`` of network stages
        (``method="step"``: ``preconditioned`` only).

    Returns
    -------
    result : KernelExtremity

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=80, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=3,
    ...                               random_state=0).fit(X[:60], y[:60])
    >>> res = kernel_extremity_ratio(est, X[:60], y[:60], X[60:])
    >>> res.train_max.shape == (est.n_stages_,), res.n_train_used, res.ratio > 0
    (True, 54, True)
    """
    subject = resolve(model, "kernel_extremity_ratio")
    X, y, X_test = _ratio_call(subject, X, y, X_test, kwargs)
    if method not in ("stage", "step"):
        raise ValueError(f"method must be 'stage' or 'step', got {method!r}.")
    X_test = subject.eval_inputs(X_test, "X_test")
    if method == "step" and subject.is_network:
        return _per_step_ratio(subject, X, y, X_test, max_train_samples, random_state,
                               sample_weight, fit_params, progress, kwargs)  # fmt: skip
    X_train = _trained_rows(subject, subject.training_inputs(X, y))
    X_sub = _subsample_rows(X_train, max_train_samples, random_state)
    test_max = _max_norms(subject.model, X_test, X_sub, kwargs)
    train_max = _max_norms(subject.model, X_sub, X_sub, kwargs)
    ratio = float(test_max.mean() / train_max.mean())
    return KernelExtremity(ratio, test_max, train_max, n_rows(X_sub), "stage",
                           np.ones(len(test_max)))  # fmt: skip


def _ratio_call(subject, X, y, X_test, kwargs):
    """``(X, y, X_test)`` of a call in the current form or in the previous release's
    ``kernel_extremity_ratio(model, X_train, X_test, y_train=...)``."""
    old_names = {k: kwargs.pop(k) for k in ("X_train", "y_train") if k in kwargs}
    old_positional = X_test is None and np.ndim(y) == 2  # X_test is required: y was X_test
    if old_names or old_positional:
        legacy_call("kernel_extremity_ratio", "(model, X, y, X_test, ...)",
                    "(model, X_train, X_test, y_train=...)")  # fmt: skip
        if old_positional:
            X_test, y = y, None
        X = old_names.get("X_train", X)
        y = old_names.get("y_train", y)
    if X is None or X_test is None:
        raise TypeError(
            "kernel_extremity_ratio needs the training data and the test inputs: "
            "kernel_extremity_ratio(model, X, y, X_test)."
        )
    return X, y, X_test


def _trained_rows(subject, X):
    """The rows of (transformed, fit-checked) ``X`` the model trained on."""
    run = getattr(subject.model, "run_", None)
    if run is None:
        return X
    mask = run.trained_on(run.validate_features(X))
    if not mask.any():
        raise ValueError(
            "None of the rows of X were trained on: they are all in the early-stopping "
            "hold-out. Pass the X given to fit."
        )
    return X[mask] if not hasattr(X, "iloc") else X.iloc[np.flatnonzero(mask)]


def _per_step_ratio(subject, X, y, X_test, max_train_samples, random_state, sample_weight,
                    fit_params, progress, kwargs):  # fmt: skip
    if y is None:
        raise ValueError("method='step' replays the fit and needs y, the targets given to fit.")
    unknown = set(kwargs) - {"preconditioned"}
    if unknown:
        raise TypeError(f"method='step' takes only preconditioned=, got {sorted(unknown)}.")
    monitor = KernelExtremityMonitor(
        X_test, max_train_samples=max_train_samples, random_state=random_state, **kwargs
    )
    columns = n_rows(X) if max_train_samples is None else min(n_rows(X), max_train_samples)
    bar = Progress("kernel_extremity_ratio", n_rows(X_test) + columns, progress)
    replay(subject, X, y, [monitor, bar], sample_weight=sample_weight, fit_params=fit_params)
    return monitor.result()


class KernelExtremityMonitor(Observer):
    """Training observer: the paper's per-step kernel-extremity ratio, on the real run.

    At every optimizer step ``t`` it takes the batch-masked kernel rows
    ``k_t(x) = γ_t/|B_t| [w_i ∇f_{t-1}(x)·∇f_{t-1}(x_i)]_{i ∈ B_t}`` of the test inputs and of
    (a subset of) the training inputs, and keeps their largest norms; :meth:`result` gives
    ``R``. For each ``group`` of test-row indices the maximum is taken over that group.

    Parameters
    ----------
    X_test : array-like of shape (n_test, n_features)
        Raw test inputs.
    groups : sequence of index arrays, optional
        Subsets of the test rows, each with its own ratio (e.g. mixed test sets sharing
        one pool); default one group of every row.
    max_train_samples : int or None, default=2000
        Training rows whose norms form the denominator (a random subset).
    random_state : int, default=0
    preconditioned : bool, default=False
        Insert the diagonal preconditioner the step applied (Adam/AdamW).

    Attributes
    ----------
    steps_ : ndarray of shape (n_steps,)
    test_max_ : ndarray of shape (n_steps, n_groups)
    train_max_ : ndarray of shape (n_steps,)
    learning_rates_ : ndarray of shape (n_steps,)

    Examples
    --------
    >>> import numpy as np
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(40, 3)); y = X[:, 0]
    >>> mon = KernelExtremityMonitor(X[:5] * 3)
    >>> _ = TelescopingMLPRegressor((8,), max_iter=2, batch_size=10,
    ...                             random_state=0).fit(X, y, monitors=[mon])
    >>> mon.test_max_.shape, round(mon.result().ratio, 1) > 0
    ((8, 1), True)
    """

    wants_previous_params = True

    def __init__(
        self, X_test, groups=None, *, max_train_samples: int | None = DEFAULT_MAX_TRAIN_SAMPLES,
        random_state=0, preconditioned: bool = False,
    ) -> None:  # fmt: skip
        self.X_test, self.groups = X_test, groups
        self.max_train_samples, self.random_state = max_train_samples, random_state
        self.preconditioned = bool(preconditioned)

    def on_train_begin(self, trainer) -> None:
        X_test = as_network_inputs(trainer, self.X_test, "X_test")
        n_test = len(X_test)
        self._groups = (
            [np.arange(n_test)] if self.groups is None else _check_groups(self.groups, n_test)
        )
        X_fit, _, W = trainer.train_data
        rows = _subsample_rows(np.arange(len(X_fit)), self.max_train_samples, self.random_state)
        self._rows = torch.as_tensor(rows, device=X_fit.device)
        self._X = torch.cat([X_test, X_fit[self._rows]])
        self._n_test, self._module, self._weights = n_test, trainer.module, W
        self._records: list[tuple] = []

    def on_step(self, step) -> None:
        idx = step.batch.to(self._weights.device)
        X_batch = step.trainer.train_data[0][idx]
        pre = None
        if self.preconditioned:
            pre = applied_preconditioner(step.optimizer, step.module.parameters())
        if self.preconditioned and pre is None:
            raise ValueError("preconditioned=True needs an Adam or AdamW run.")
        masks = dropout_masks(step.module, like=step.params_before)  # the step's network
        with torch.no_grad():
            K = tangent_kernel(self._module, step.params_before, self._X, X_batch, None, pre,
                               dropout_masks=masks)  # fmt: skip
        K = K.reshape(-1, len(self._X), len(idx))  # (n_outputs, n_rows, batch)
        scale = self._weights[idx] / len(idx) * step.learning_rate
        norms = (K * scale).pow(2).sum(dim=(0, 2)).sqrt()
        test, train = norms[: self._n_test], norms[self._n_test :]
        test_max = [float(test[torch.as_tensor(g)].max()) for g in self._groups]
        self._records.append((step.step, test_max, float(train.max()), step.learning_rate))

    def on_train_end(self, trainer, result) -> None:
        steps, test_max, train_max, lrs = zip(*self._records) if self._records else ([],) * 4
        self.steps_ = np.asarray(steps, dtype=np.int64)
        self.test_max_ = np.asarray(test_max, dtype=np.float64).reshape(len(steps), -1)
        self.train_max_ = np.asarray(train_max, dtype=np.float64)
        self.learning_rates_ = np.asarray(lrs, dtype=np.float64)
        self._X = self._module = self._weights = None

    def result(self, group: int = 0) -> KernelExtremity:
        """``R`` of test group ``group`` over every recorded step."""
        if not len(self.steps_):
            raise ValueError("The run took no optimizer step: there is no kernel to measure.")
        test = self.test_max_[:, group]
        ratio = float(test.mean() / self.train_max_.mean())
        return KernelExtremity(ratio, test, self.train_max_, len(self._rows), "step",
                               np.ones(len(test)))  # fmt: skip


def _check_groups(groups, n_test: int) -> list[np.ndarray]:
    out = []
    for g in groups:
        g = np.asarray(g, dtype=np.int64).reshape(-1)
        if g.size == 0 or g.min() < 0 or g.max() >= n_test:
            raise ValueError(f"groups must be non-empty index arrays into the {n_test} test rows.")
        out.append(g)
    return out
