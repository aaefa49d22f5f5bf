"""Per-step telescoping on chosen inputs: exact, first-order, trapezoid and lazy models.

A network trained for T steps is ``f_T = f_0 + Σ_t Δf_t`` (exact telescoping, Eq 4 of
arXiv 2411.00247). This module records, at every optimizer step and for a fixed set of
inputs, the exact network and three approximations of it:

* first order (the paper's telescoping model, Eq 5):
  ``f̃_t = f_0 + Σ_{k≤t} ∇f_{k-1}·Δθ_k``;
* trapezoid: ``f_0 + Σ_{k≤t} ½(∇f_{k-1} + ∇f_k)·Δθ_k``, one more JVP per step and an
  error of third instead of second order in ``Δθ``;
* lazy (linearised at initialisation): ``f_0 + ∇f_0·(θ_t − θ_0)``.

Increments are forward-mode derivatives (one tangent pass each, re-using the forward
pass that gives the exact ``f_t``); no Jacobian is ever formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sktelescope._checks import format_bytes, n_rows, positive_int
from sktelescope._core.autodiff import TangentEngine, cache_floats
from sktelescope._core.losses import Loss
from sktelescope._core.network import n_inputs, n_outputs, n_parameters, widest_layer
from sktelescope._core.observers import Observer
from sktelescope.lens._progress import Progress
from sktelescope.lens._replay import as_network_inputs, replay
from sktelescope.lens._subject import resolve

MODELS = ("first_order", "trapezoid", "lazy")


class TelescopingMonitor(Observer):
    """Training observer recording the exact network and its telescoping models on ``X_eval``.

    Attach it to a fit with ``est.fit(X, y, monitors=[monitor])``, or use
    :func:`telescoping_trace`, which does that on a clone of a fitted model. Values are in
    the network's raw output units: standardised targets for regressors
    (``y_std = (y − mean)/scale``), decision-function units for classifiers.

    Parameters
    ----------
    X_eval : array-like of shape (n_eval, n_features)
        Inputs to monitor, in raw feature units (the trainer's ``input_transform``
        standardises them); a tensor already in network space when training a bare
        ``Trainer`` without ``input_transform``.
    linear, trapezoid, lazy : bool, default=True
        Which approximate models to track. Each costs a tangent pass per step (about two
        forward passes on ``X_eval``); the exact network costs one forward pass.
    every : int, default=1
        Record every ``every``-th step (the models are still updated at every step).
    max_bytes : int, default=2**30
        Refuse (``ValueError`` in ``on_train_begin``) if the records and caches could need
        more bytes than this for the planned number of steps.

    Attributes
    ----------
    steps_ : ndarray of shape (n_records,)
        Optimizer steps recorded; 0 is the initial network, the last step is always kept.
    exact_ : ndarray of shape (n_records, n_eval, n_outputs), float32
        The network ``f_t(X_eval)``.
    deviations_ : dict of str -> ndarray of shape (n_records, n_eval, n_outputs), float32
        ``model_t − f_t`` for each tracked model (kept as differences so that small
        approximation errors keep their precision; models are summed in float64).
    memory_bytes_ : int
        The bytes budgeted in ``on_train_begin`` (records for all planned steps + caches).

    Examples
    --------
    >>> import numpy as np
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(64, 3)); y = X.sum(1)
    >>> mon = TelescopingMonitor(X[:10])
    >>> est = TelescopingMLPRegressor((8,), max_iter=2, batch_size=16, random_state=0)
    >>> _ = est.fit(X, y, monitors=[mon])
    >>> mon.exact_.shape, sorted(mon.deviations_)
    ((9, 10, 1), ['first_order', 'lazy', 'trapezoid'])
    """

    def __init__(
        self,
        X_eval,
        *,
        linear: bool = True,
        trapezoid: bool = True,
        lazy: bool = True,
        every: int = 1,
        max_bytes: int = 2**30,
    ) -> None:
        self.X_eval = X_eval
        self.linear, self.trapezoid, self.lazy = bool(linear), bool(trapezoid), bool(lazy)
        self.every = positive_int(every, "every")
        self.max_bytes = positive_int(max_bytes, "max_bytes")

    @property
    def models(self) -> tuple[str, ...]:
        """Names of the approximate models tracked."""
        flags = (self.linear, self.trapezoid, self.lazy)
        return tuple(name for name, on in zip(MODELS, flags) if on)

    def memory_estimate(self, module: torch.nn.Module, n_eval: int, n_steps: int) -> int:
        """Peak bytes the monitor holds over ``n_steps`` planned steps on ``n_eval`` inputs.

        Every copy is counted, in float32 (4 bytes): the records,
        ``(n_steps // every + 2) * n_eval * n_outputs`` each for the network and every
        tracked model; the inputs; the forward-mode caches (``cache_floats`` per input for
        each parameter point alive at once: the previous and the current one, plus the
        initial one for the lazy model) with one cache's construction and two tangent
        buffers; and up to five parameter-sized vectors (snapshot, cached points,
        differences).
        """
        n_out, n_params = n_outputs(module), n_parameters(module)
        held, building = cache_floats(module)
        widest = widest_layer(module)
        stepping = self.linear or self.trapezoid
        points = (2 if stepping else 1) + int(self.lazy and stepping)
        vectors = 1 + 2 * int(stepping) + 2 * int(self.lazy)
        per_input = (
            (n_steps // self.every + 2) * n_out * (1 + len(self.models))  # records
            + n_inputs(module)  # the inputs
            + points * held
            + building
            + 2 * widest  # caches, one being built, tangents
            + 8 * n_out  # f_0, running sums and increments, in float64
        )
        return 4 * (n_eval * per_input + vectors * n_params)

    # -------------------------------------------------------------- observer API
    def on_train_begin(self, trainer) -> None:
        X = as_network_inputs(trainer, self.X_eval, "X_eval")
        need = self.memory_estimate(trainer.module, len(X), trainer.total_steps)
        if need > self.max_bytes:
            raise ValueError(
                f"Tracing the telescoping models would need up to {format_bytes(need)} for "
                f"{trainer.total_steps} planned steps on {len(X)} inputs, above "
                f"max_bytes={format_bytes(self.max_bytes)}. Monitor fewer inputs, record "
                f"less often (every={max(2, 2 * self.every)}), track fewer models, or "
                "raise max_bytes."
            )
        self.memory_bytes_ = need
        self._engine = TangentEngine(trainer.module, X)
        params = _snapshot(trainer.module)
        self._cache = self._engine.primal(params)
        f0 = self._cache.output
        self._f0 = f0.double()
        self._cache0 = self._cache if self.lazy else None
        self._sums = {name: self._f0.clone() for name in ("first_order", "trapezoid")}
        self._allocate(trainer.total_steps // self.every + 2, tuple(f0.shape))
        self._record(0, f0, {name: self._f0 for name in self.models})

    def on_step(self, step) -> None:
        params = _snapshot(step.module)
        models = {}
        if self.linear or self.trapezoid:
            delta = {k: params[k] - self._cache.params[k] for k in params}
            first = self._engine.tangent(self._cache, delta).double()
            self._cache = self._engine.primal(params)
            f_t = self._cache.output
            if self.linear:
                models["first_order"] = self._sums["first_order"].add_(first)
            if self.trapezoid:
                second = self._engine.tangent(self._cache, delta).double()
                models["trapezoid"] = self._sums["trapezoid"].add_(0.5 * (first + second))
        else:
            with torch.no_grad():
                f_t = step.module(self._engine.X)
        if self.lazy:
            drift = {k: params[k] - self._cache0.params[k] for k in params}
            models["lazy"] = self._f0 + self._engine.tangent(self._cache0, drift).double()
        self._last = (step.step, f_t, models)
        if step.step % self.every == 0:
            self._record(step.step, f_t, models)

    def on_train_end(self, trainer, result) -> None:
        last = getattr(self, "_last", None)
        if last is not None and last[0] != self.steps_[self._n - 1]:
            self._record(*last)
        # Views, not copies: a copy of the records would double them at the very end.
        self.steps_, self.exact_ = self.steps_[: self._n], self.exact_[: self._n]
        self.deviations_ = {k: v[: self._n] for k, v in self.deviations_.items()}
        self._cache = self._cache0 = self._last = self._engine = self._sums = None

    # ------------------------------------------------------------------ helpers
    def _allocate(self, n_records: int, shape: tuple[int, ...]) -> None:
        self._n = 0
        self.steps_ = np.zeros(n_records, dtype=np.int64)
        self.exact_ = np.empty((n_records, *shape), dtype=np.float32)
        self.deviations_ = {m: np.empty((n_records, *shape), dtype=np.float32) for m in self.models}

    def _record(self, step: int, f_t: torch.Tensor, models: dict) -> None:
        i = self._n
        self.steps_[i] = step
        self.exact_[i] = f_t.detach().cpu().numpy()
        exact64 = f_t.double()
        for name, value in models.items():
            self.deviations_[name][i] = (value - exact64).cpu().numpy()
        self._n += 1


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


@dataclass
class TelescopingTrace:
    """Exact network and telescoping models on fixed inputs over a training run.

    Values are in the estimator's output units: ``predict`` units for regressors
    (un-standardised targets), ``decision_function`` units for classifiers. Arrays have
    shape ``(n_records, n_eval)``, or ``(n_records, n_eval, n_outputs)`` for several outputs.

    Attributes
    ----------
    steps : ndarray of shape (n_records,)
        Optimizer step of each record (0 = initial network).
    exact : ndarray
        The network ``f_t(X_eval)``.
    first_order, trapezoid, lazy : ndarray or None
        The approximate models (``None`` when not tracked).
    classes : ndarray or None
        The classifier's classes (``None`` for regressors).
    loss : Loss or None
        The run's loss object (maps decision values to class indices).
    memory_bytes : int or None
        The peak memory budgeted for the trace before the replay (checked against
        ``max_bytes``).
    """

    steps: np.ndarray
    exact: np.ndarray
    first_order: np.ndarray | None
    trapezoid: np.ndarray | None
    lazy: np.ndarray | None
    classes: np.ndarray | None = None
    loss: Loss | None = None
    memory_bytes: int | None = None

    def models(self) -> dict[str, np.ndarray]:
        """The tracked approximate models by name."""
        named = {m: getattr(self, m) for m in MODELS}
        return {k: v for k, v in named.items() if v is not None}

    def approximation_error(self, model: str = "first_order") -> np.ndarray:
        """Mean absolute error ``mean_x |f_t(x) − model_t(x)|`` per record (Fig 2/7).

        Returns
        -------
        error : ndarray of shape (n_records,), in output units
        """
        if model not in self.models():
            raise ValueError(f"model must be one of {sorted(self.models())}, got {model!r}.")
        diff = np.abs(self.exact - self.models()[model])
        return diff.reshape(len(self.steps), -1).mean(axis=1)

    def final_errors(self) -> dict[str, float]:
        """Approximation error of each model at the last recorded step."""
        return {m: float(self.approximation_error(m)[-1]) for m in self.models()}

    def accuracy(self, y) -> dict[str, np.ndarray]:
        """Accuracy over steps of the network and of each model against labels ``y`` (Fig 8).

        Returns
        -------
        accuracy : dict of str -> ndarray of shape (n_records,)
            Keys ``"network"`` and the tracked model names.
        """
        if self.classes is None:
            raise ValueError("accuracy needs a classifier's trace; use mean_squared_error.")
        y = np.asarray(y)
        out = {"network": self.exact, **self.models()}
        return {k: (self._labels(v) == y[None, :]).mean(axis=1) for k, v in out.items()}

    def mean_squared_error(self, y) -> dict[str, np.ndarray]:
        """Mean squared error over steps of the network and each model against ``y``."""
        y = np.asarray(y, dtype=np.float64)
        out = {"network": self.exact, **self.models()}
        return {
            k: ((v - y[None]) ** 2).reshape(len(self.steps), -1).mean(axis=1)
            for k, v in out.items()
        }

    def _labels(self, scores: np.ndarray) -> np.ndarray:
        return np.stack([self.classes[self.loss.class_index(record)] for record in scores])


def telescoping_trace(
    est, X, y, X_eval, *, sample_weight=None, fit_params=None, linear: bool = True,
    trapezoid: bool = True, lazy: bool = True, every: int = 1, max_bytes: int = 2**30,
    progress: bool | None = None,
) -> TelescopingTrace:  # fmt: skip
    """Replay the fit of ``est`` on ``(X, y)`` and trace its telescoping models on ``X_eval``.

    A fitted ``est`` is replayed (from the seed and settings its fit recorded, whatever its
    ``random_state``; data other than the fit's, or a replay that does not reproduce the
    fitted parameters, is refused) with a :class:`TelescopingMonitor` attached; an unfitted
    ``est`` is fitted (a clone). The trace ends at the function the model predicts: its
    best epoch under early stopping, so ``trace.exact[-1]`` is ``predict(X_eval)`` to
    float32 round-off.

    Parameters
    ----------
    est : TelescopingMLP* estimator, Pipeline ending in one, or a fitted search over one
    X, y : array-like
        The data given to ``fit`` (the raw data of a Pipeline).
    X_eval : array-like of shape (n_eval, n_features)
        Inputs on which to trace the models (the paper uses 1,000 test points).
    sample_weight : array-like of shape (n_samples,), optional
        The ``sample_weight`` given to ``fit``.
    fit_params : dict, optional
        ``X_val``, ``y_val`` if they were given to ``fit``.
    linear, trapezoid, lazy, every, max_bytes
        As for :class:`TelescopingMonitor`.
    progress : bool or None, default=None
        A progress bar over the replay's steps, with its work (steps x rows x parameters)
        and an ETA; ``None`` shows it when the output is a terminal.

    Returns
    -------
    trace : TelescopingTrace

    Examples
    --------
    >>> import numpy as np
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(64, 3)); y = X.sum(1)
    >>> est = TelescopingMLPRegressor((8,), max_iter=3, batch_size=16).fit(X, y)
    >>> trace = telescoping_trace(est, X, y, X[:10])
    >>> bool(np.allclose(trace.exact[-1], est.predict(X[:10]), atol=1e-4))
    True
    """
    subject = resolve(est, "telescoping_trace", trees=False)
    monitor = _TraceMonitor(
        subject.transform(X_eval), linear=linear, trapezoid=trapezoid, lazy=lazy, every=every,
        max_bytes=max_bytes,
    )  # fmt: skip
    bar = Progress("telescoping_trace", n_rows(X_eval), progress)
    twin = replay(subject, X, y, [monitor, bar], sample_weight=sample_weight, fit_params=fit_params)
    run = twin.run_
    return TelescopingTrace(
        steps=monitor.steps_, **_records_in_output_units(monitor, run),
        classes=run.classes, loss=run.loss, memory_bytes=monitor.memory_bytes_,
    )  # fmt: skip


class _TraceMonitor(TelescopingMonitor):
    """The monitor of :func:`telescoping_trace`, whose budget also covers turning the
    float32 records into the float64 trace (:func:`_records_in_output_units`)."""

    def memory_estimate(self, module: torch.nn.Module, n_eval: int, n_steps: int) -> int:
        record = (n_steps // self.every + 2) * n_eval * n_outputs(module) * 4
        converting = (3 + 2 * len(self.models)) * record + record // 4
        return max(super().memory_estimate(module, n_eval, n_steps), converting)


def _records_in_output_units(monitor: TelescopingMonitor, run) -> dict[str, np.ndarray | None]:
    """``exact`` and each model in float64 output units, releasing the float32 records as
    they are converted: at most ``(3 + 2 * n_models)`` float32 records' worth of memory."""
    exact = monitor.exact_.astype(np.float64)
    monitor.exact_ = None
    values = dict.fromkeys(MODELS)
    for name in monitor.models:
        model = monitor.deviations_.pop(name).astype(np.float64)
        model += exact
        values[name] = run.outputs(model, overwrite=True)
    values["exact"] = run.outputs(exact, overwrite=True)
    return values


__all__ = ["TelescopingMonitor", "TelescopingTrace", "telescoping_trace"]
