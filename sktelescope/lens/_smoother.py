"""The network as a label-linear smoother, and its effective parameters (squared loss).

Under squared loss with one output, every step of the first-order (telescoping) dynamics
is affine in the training targets, so the trained network is a smoother
``f_t(x) = s_t(x)·y + c_t(x)`` (:ref:`math-smoother`). Here ``y`` are the targets
*as the network sees them* (standardised: ``(y − mean)/scale`` for regressors, ±1 for
binary classifiers with squared loss), ``s_t(x)`` is a row of ``n`` weights and ``c_t(x)``
collects everything that does not depend on ``y``.

The parameters are kept in the same form, ``θ_t = D^S_t y + D^C_t``, and each optimizer
step is replayed on both channels with the optimizer's own update (SGD with momentum and
Nesterov, coupled weight decay, Adam, AdamW's decoupled decay; Adam's second moment frozen
at its actual value). Then::

    s_t(x) = s_{t-1}(x) + ∇f_{t-1}(x)ᵀ ΔD^S_t
    c_t(x) = c_{t-1}(x) + ∇f_{t-1}(x)ᵀ ΔD^C_t + r_t(x)

where ``r_t(x) = Δf_t(x) − ∇f_{t-1}(x)ᵀΔθ_t`` is the step's second-order remainder; it goes
to ``c`` so that ``S y + c`` equals the network exactly and the residuals in the next
gradient are the network's own. Without it, ``s·y + c^lin`` is the telescoping model f̃.
For plain full-batch SGD this is the recursion ``S_t = S_{t-1} + γ K_t (I − S_{t-1})`` and,
for a linear model, the matrix polynomial ``S_T = I − (I − γK)^T`` (Eq 15).

Effective parameters (Curth et al. 2023): ``p^train = ‖S‖_F²`` and
``p^test = n/|I| Σ_{x∈I} ‖s(x)‖²``; both are invariant to the target scaling.

Cost per step: plain SGD runs the kernel recursion, ``O((n + n_eval)·b·(n + Σ_l width_l))``
flops with layer-structured kernels (``b`` the batch size) and no ``p×n`` state. Other
optimizers replay the channels: ``O((n + n_eval)·p·n)`` flops and ``8·p·n`` bytes per
y-channel buffer (``D^S``, a momentum/first-moment buffer, and two temporaries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sktelescope._checks import checked_sample_weight, format_bytes, n_rows, positive_int
from sktelescope._core.autodiff import TangentEngine, cache_floats
from sktelescope._core.kernels import per_example_gradients, tangent_kernel, tangent_kernel_nbytes
from sktelescope._core.layers import dropout_masks
from sktelescope._core.network import (
    flatten_parameters,
    forward_flat,
    n_inputs,
    n_outputs,
    n_parameters,
    unflatten_parameters,
    widest_layer,
)
from sktelescope._core.observers import Observer
from sktelescope._core.optim import optimizer_spec, shared_value
from sktelescope._staged import EffectiveParameters
from sktelescope.lens._calls import data_call
from sktelescope.lens._channels import ChannelOptimizer
from sktelescope.lens._progress import Progress
from sktelescope.lens._replay import as_network_inputs, replay
from sktelescope.lens._subject import resolve


class SmootherMonitor(Observer):
    """Training observer tracking the smoother ``S`` (training inputs) and ``s(x)`` (others).

    Parameters
    ----------
    X_train : array-like of shape (n, n_features), optional
        The rows the run trains on, in its order (raw units: the trainer's
        ``input_transform`` standardises them); ``on_train_begin`` refuses other inputs.
        Default: the run's own training rows, whatever early stopping held out (the
        smoother's columns are then ``est.run_.fits[-1].train_rows`` of the fit's ``X``).
    X_eval : array-like of shape (n_eval, n_features), optional
        Other inputs for ``s(x)`` and ``p^test``.
    sample_weight : array-like of shape (n,), optional
        The sample weights of ``X_train`` (normalised to mean one, as the estimator does);
        only with ``X_train`` (by default the run's own weights are used).
    every : int, default=1
        Record effective parameters every ``every`` steps (``S`` is updated every step).
    max_bytes : int, default=2**31
        Refuse in ``on_train_begin`` when the float64 state would need more.
    chunk_size : int, default=256
        Inputs per block of per-example gradients (``chunk_size·p·8`` bytes).
    method : {"auto", "channels"}, default="auto"
        "auto" runs plain SGD (no momentum, no weight decay) through the kernel recursion
        ``S_t = S_{t-1} − γ K_t diag(w/b) (S_{t-1}[B] − E_B)`` with layer-structured kernels
        and no ``p×n`` state, and every other optimizer through the channel replay;
        "channels" always replays the channels (and fills ``channels_``).

    Attributes
    ----------
    steps_, p_train_, p_test_ : ndarray of shape (n_records,)
    S_ : ndarray of shape (n, n)
        Final smoother on the training inputs (acts on standardised targets).
    s_eval_ : ndarray of shape (n_eval, n)
    c_, c_first_order_ : ndarray of shape (n + n_eval,)
        Constant parts, training inputs first, with and without second-order remainders.
    memory_bytes_ : int
        The float64 state budgeted in ``on_train_begin`` (see ``memory_estimate``).
    channels_ : ChannelOptimizer or None
        ``channels_.S`` (p, n) and ``channels_.C`` (p,): ``θ ≈ D^S y + D^C`` (``None`` on
        the kernel recursion).

    Examples
    --------
    >>> import numpy as np
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(32, 3)); y = X[:, 0]
    >>> mon = SmootherMonitor(X_eval=X[:5] + 0.1)
    >>> est = TelescopingMLPRegressor((8,), preset="paper", optimizer="adam", batch_size=8,
    ...                               max_iter=2, random_state=0)
    >>> _ = est.fit(X, y, monitors=[mon])  # early stopping holds out 4 of the 32 rows
    >>> mon.S_.shape, mon.s_eval_.shape, mon.channels_.S.shape
    ((28, 28), (5, 28), torch.Size([41, 28]))
    """

    wants_previous_params = True

    def __init__(
        self, X_train=None, X_eval=None, *, sample_weight=None, every: int = 1,
        max_bytes: int = 2**31, chunk_size: int = 256, method: str = "auto",
    ) -> None:  # fmt: skip
        if method not in ("auto", "channels"):
            raise ValueError(f"method must be 'auto' or 'channels', got {method!r}.")
        self.method = method
        self.X_train, self.X_eval, self.sample_weight = X_train, X_eval, sample_weight
        self.every = positive_int(every, "every")
        self.max_bytes = positive_int(max_bytes, "max_bytes")
        self.chunk_size = positive_int(chunk_size, "chunk_size")

    def uses_kernel(self, optimizer) -> bool:
        """Whether the run takes the kernel recursion (plain SGD, ``method="auto"``): no
        momentum, no weight decay and one learning rate for every parameter."""
        try:
            adaptive = optimizer_spec(optimizer).adaptive
        except ValueError:  # not in the table: the channel replay names it
            return False
        plain = not adaptive and all(
            g["momentum"] == 0 and g["weight_decay"] == 0 for g in optimizer.param_groups
        )
        return self.method == "auto" and plain

    def memory_estimate(
        self, module: torch.nn.Module, optimizer, n: int, n_eval: int, batch_size: int
    ) -> int:
        """Peak bytes of the monitor's float64 state and per-step temporaries.

        Both paths hold ``s`` (``(n + n_eval) x n``), the inputs and two forward-mode
        caches on them. The kernel recursion (plain SGD) adds one step's kernel
        ``K(Z, B)`` (see :func:`~sktelescope.lens.tangent_kernel_nbytes`) and the batch's
        residuals (``batch_size x n``); the channel replay adds its ``p x n`` arrays
        (``D^S``, optimizer buffers, the step's gradient and update, and the weight-decay
        or Nesterov temporaries) and the larger of the step's batch gradients and one
        chunk of per-example gradients.
        """
        n_all, n_params = n + n_eval, n_parameters(module)
        held, building = cache_floats(module)
        widest, first = widest_layer(module), n_inputs(module)
        floats = n_all * n + n_all * (first + 2 * held + building + 2 * widest + 6)
        if self.uses_kernel(optimizer):
            kernel = tangent_kernel_nbytes(module, n_all, batch_size, False, n_all, 8) // 8
            return 8 * (floats + kernel + batch_size * n)
        groups = optimizer.param_groups
        decay = any(g["weight_decay"] != 0 for g in groups)
        temporaries = 2 * decay + 2 * any(g.get("nesterov") for g in groups)
        arrays = 3 + ChannelOptimizer.n_buffers(optimizer) + temporaries
        per_step = max(batch_size * (n + 2 * n_params), 2 * self.chunk_size * n_params)
        return 8 * (floats + arrays * n_params * n + per_step)

    def on_train_begin(self, trainer) -> None:
        _check_trainer(trainer)
        Xtr, weights = self._training_inputs(trainer)
        Xev = Xtr[:0]
        if self.X_eval is not None:
            Xev = as_network_inputs(trainer, self.X_eval, "X_eval").double()
        n, theta0 = len(Xtr), flatten_parameters(trainer.module).double()
        batch = trainer.config.batch(n)
        need = self.memory_estimate(trainer.module, trainer.optimizer, n, len(Xev), batch)
        if need > self.max_bytes:
            what = (
                f"(n={n} training + {len(Xev)} other inputs, each a row of n float64 weights)"
                if self.uses_kernel(trainer.optimizer)
                else f"(p={len(theta0)} parameters x n={n} training points x 8 bytes per "
                "y-channel buffer)"
            )
            raise ValueError(
                f"The smoother would need {format_bytes(need)} of float64 state {what}, above "
                f"max_bytes={format_bytes(self.max_bytes)}. Use fewer training or evaluation "
                "points or a smaller network, or raise max_bytes."
            )
        self.memory_bytes_ = need
        self._module, self._Z, self._n = trainer.module, torch.cat([Xtr, Xev]), n
        self._weights = weights
        self._kernel = self.uses_kernel(trainer.optimizer)
        self.channels_ = None if self._kernel else ChannelOptimizer(theta0, n)
        self._engine = TangentEngine(trainer.module, self._Z)
        self._cache = self._engine.primal(unflatten_parameters(trainer.module, theta0))
        self._f = self._cache.output[:, 0]
        self._s = self._Z.new_zeros(len(self._Z), n)
        self._c, self._c_lin = self._f.clone(), self._f.clone()
        self._records: list[tuple[int, float, float]] = []
        self._record(0)

    def on_step(self, step) -> None:
        theta_prev = step.params_before.double()
        theta_new = flatten_parameters(step.module).double()
        # s is updated in place (no second (n + n_eval) x n array): nothing below reads it.
        masks = dropout_masks(step.module, like=theta_prev)
        lr = step.optimizer.param_groups[0]["lr"]
        if self._kernel:
            dc = self._kernel_step(theta_prev, step.batch, lr, masks)
        else:
            gradients = self._channel_gradients(theta_prev, step.batch, masks)
            d_S, d_C = self.channels_.step(step.optimizer, *gradients, step.module.parameters())
            del gradients  # the step's gradient is not needed while propagating
            dc = self._propagate(theta_prev, d_S, d_C)
        delta = unflatten_parameters(self._module, theta_new - theta_prev)
        lin = self._engine.tangent(self._cache, delta)[:, 0]
        self._cache = self._engine.primal(unflatten_parameters(self._module, theta_new))
        f_new = self._cache.output[:, 0]
        self._c_lin += dc
        self._c += dc + (f_new - self._f - lin)
        self._f = f_new
        if step.step % self.every == 0:
            self._record(step.step)

    def on_train_end(self, trainer, result) -> None:
        if self._records[-1][0] != result.n_steps:
            self._record(result.n_steps)
        steps, p_train, p_test = (np.array(v) for v in zip(*self._records))
        self.steps_, self.p_train_, self.p_test_ = steps.astype(np.int64), p_train, p_test
        n = self._n
        s, c, c_lin = self._s.cpu(), self._c.cpu(), self._c_lin.cpu()
        self.S_, self.s_eval_ = s[:n].numpy(), s[n:].numpy()
        self.c_, self.c_first_order_ = c.numpy(), c_lin.numpy()
        self._cache = self._engine = self._s = None

    def _training_inputs(self, trainer) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows the run trains on (network inputs, float64) and their weights (mean one):
        the trainer's own, or ``X_train`` checked to be exactly them."""
        X_fit, _, W_fit = trainer.train_data
        if self.X_train is None:
            if self.sample_weight is not None:
                raise ValueError("Pass sample_weight together with X_train, or neither.")
            return X_fit.double(), W_fit.double()
        Xtr = as_network_inputs(trainer, self.X_train, "X_train")
        _check_training_inputs(trainer, Xtr)
        Xtr = Xtr.double()
        return Xtr, _normalised_weights(self.sample_weight, len(Xtr), Xtr)

    # ------------------------------------------------------------------ steps
    def _channel_gradients(self, theta: torch.Tensor, batch: torch.Tensor, masks=None):
        """y- and constant channel of the batch gradient ``Σ_i (w_i/b)(f_i − y_i)∇f_i``
        (with dropout, of the network the step trained: see :meth:`_batch_constant`)."""
        idx = batch.to(self._s.device)
        jac = per_example_gradients(self._module, theta, self._Z[idx], masks=masks)
        jac *= (self._weights[idx] / len(idx))[:, None]
        grad_S = jac.T @ self._s[idx]
        grad_S[:, idx] -= jac.T
        return grad_S, jac.T @ self._batch_constant(theta, idx, masks)

    def _batch_constant(self, theta: torch.Tensor, idx: torch.Tensor, masks) -> torch.Tensor:
        """``c`` on the batch rows, plus, under dropout, the step's network's departure from
        the evaluation network there (``f_mask − f``): the residual the step's gradient saw
        is ``s·y + c + (f_mask − f)``, and the departure is kept in the constant channel,
        as the second-order remainder is, so that the channels stay the parameters."""
        constant = self._c[idx]
        if masks is not None:
            f_mask = forward_flat(self._module, theta, self._Z[idx], masks)[:, 0]
            constant = constant + (f_mask - self._f[idx])
        return constant

    def _propagate(self, theta: torch.Tensor, d_S: torch.Tensor, d_C: torch.Tensor):
        """Add ``∇f(Z)ᵀ ΔD^S`` to ``s`` in chunks of Z; return ``∇f(Z)ᵀ ΔD^C`` (N,)."""
        dc = self._s.new_empty(len(self._Z))
        for start in range(0, len(self._Z), self.chunk_size):
            rows = slice(start, start + self.chunk_size)
            jac = per_example_gradients(self._module, theta, self._Z[rows])
            self._s[rows].addmm_(jac, d_S)
            dc[rows] = jac @ d_C
        return dc

    def _kernel_step(self, theta: torch.Tensor, batch: torch.Tensor, lr: float, masks=None):
        """Plain SGD: add ``Δs(Z) = −γ K(Z, B) diag(w/b) (S[B] − E_B)`` to ``s`` (no p×n
        state); return the constant part's change (N,). Under dropout ``K(Z, B)`` is the
        step's kernel (the batch side through the step's masks)."""
        idx = batch.to(self._s.device)
        kernel = tangent_kernel(self._module, theta, self._Z, self._Z[idx], output=0,
                                dropout_masks=masks)  # fmt: skip
        kernel *= (-lr * self._weights[idx] / len(idx))[None, :]
        residual = self._s[idx]  # a copy (advanced indexing), taken before s changes
        residual[torch.arange(len(idx)), idx] -= 1.0
        self._s.addmm_(kernel, residual)
        return kernel @ self._batch_constant(theta, idx, masks)

    def _record(self, step: int) -> None:
        n, s = self._n, self._s
        p_train = float(torch.linalg.vector_norm(s[:n]) ** 2)  # no squared copy of s
        n_eval = len(s) - n
        p_test = float(torch.linalg.vector_norm(s[n:]) ** 2 * n / n_eval) if n_eval else np.nan
        self._records.append((step, p_train, p_test))


def _check_trainer(trainer) -> None:
    if not getattr(trainer.loss_fn, "is_squared_error", False):
        raise ValueError(
            "The smoother is defined for squared-error loss only; fit with "
            "loss='squared_error' (TelescopingMLPClassifier defaults to log-loss)."
        )
    outputs = n_outputs(trainer.module)
    if outputs != 1:
        raise ValueError(
            f"The smoother needs a network with one output, got {outputs} "
            "(multi-output regression or multiclass classification)."
        )
    for key in ("momentum", "dampening", "nesterov", "betas", "eps"):
        shared_value(trainer.optimizer, key)  # groups may differ in lr and decay only


def _check_training_inputs(trainer, X_train: torch.Tensor) -> None:
    """The run must train on exactly ``X_train`` (the same rows, in the same order)."""
    fitted = trainer.train_data[0]
    if fitted.shape != X_train.shape or not torch.equal(fitted, X_train.to(fitted)):
        raise ValueError(
            f"The smoother needs X_train to be the inputs the run trains on, every one of "
            f"them in order; the run trains on {len(fitted)} rows, X_train has "
            f"{len(X_train)}{' (other values)' if len(fitted) == len(X_train) else ''}. "
            "Leave X_train out: the monitor then takes the run's own training rows (also "
            "when early stopping holds some out)."
        )


def _normalised_weights(sample_weight, n: int, like: torch.Tensor) -> torch.Tensor:
    weights = checked_sample_weight(sample_weight, np.empty((n, 0)), "X_train")
    return torch.as_tensor(weights / weights.mean()).to(like)


@dataclass
class SmootherTrace(EffectiveParameters):
    """The final smoother of a replayed run, with its effective parameters over steps.

    Attributes
    ----------
    rows : ndarray of int of shape (n,)
        The rows of the ``X`` given to fit that the network trained on, in training order:
        the smoother's columns (and ``S``'s rows).
    S : ndarray of shape (n, n)
        Smoother weights on the training inputs; acts on ``y_network``.
    s_eval : ndarray of shape (n_eval, n)
        Smoother weights ``s(x)`` of the evaluation inputs.
    c_train, c_eval : ndarray of shape (n,) and (n_eval,)
        Constant parts (network units), including second-order remainders, so that
        ``S @ y_network + c_train`` is the network on the training inputs.
    c_train_first_order, c_eval_first_order : ndarray
        The same without the remainders: ``S @ y_network + c_train_first_order`` is the
        first-order telescoping model f̃.
    y_network : ndarray of shape (n,)
        The targets as the network saw them (standardised).
    t_mean, t_scale : float
        Output units are ``network units * t_scale + t_mean``.
    """

    S: np.ndarray | None = None
    s_eval: np.ndarray | None = None
    c_train: np.ndarray | None = None
    c_eval: np.ndarray | None = None
    c_train_first_order: np.ndarray | None = None
    c_eval_first_order: np.ndarray | None = None
    y_network: np.ndarray | None = None
    t_mean: float = 0.0
    t_scale: float = 1.0

    def predict_train(self, first_order: bool = False) -> np.ndarray:
        """``S y + c`` on the training inputs, in output units, shape (n,)."""
        c = self.c_train_first_order if first_order else self.c_train
        return (self.S @ self.y_network + c) * self.t_scale + self.t_mean

    def predict_eval(self, first_order: bool = False) -> np.ndarray:
        """``s(x) y + c(x)`` on the evaluation inputs, in output units, shape (n_eval,)."""
        c = self.c_eval_first_order if first_order else self.c_eval
        return (self.s_eval @ self.y_network + c) * self.t_scale + self.t_mean


def _replay_smoother(what, subject, X, y, X_eval, sample_weight, fit_params, every, max_bytes,
                     progress):  # fmt: skip
    monitor = SmootherMonitor(X_eval=subject.transform(X_eval), every=every, max_bytes=max_bytes)
    rows = n_rows(X) + (0 if X_eval is None else n_rows(X_eval))
    bar = Progress(what, rows, progress)
    twin = replay(subject, X, y, [monitor, bar], sample_weight=sample_weight,
                  fit_params=fit_params)  # fmt: skip
    return monitor, twin


def effective_parameters(
    est, X=None, y=None, X_eval=None, *, sample_weight=None, fit_params=None, every: int = 1,
    max_bytes: int = 2**31, progress: bool | None = None, **legacy,
) -> EffectiveParameters:  # fmt: skip
    """Replay the fit of ``est`` and return ``p^train`` and ``p^test`` over its steps.

    Parameters
    ----------
    est : TelescopingMLP* estimator, Pipeline, search, or TreeTelescope
        A network with ``loss="squared_error"`` and one output (fitted: its run is replayed
        and checked to reproduce it; unfitted: a clone is fitted), in a Pipeline or a fitted
        ``GridSearchCV``/``RandomizedSearchCV`` if you like, or a squared-error
        :class:`sktelescope.trees.TreeTelescope`, whose smoother is exact per boosting round.
    X, y : array-like
        The data given to ``fit`` (the raw data of a Pipeline). The smoother's columns are
        the rows the network trained on (``result.rows``: early stopping holds some out);
        a TreeTelescope uses the data it was built with.
    X_eval : array-like of shape (n_eval, n_features), optional
        Inputs for ``p^test`` (no labels needed).
    sample_weight : array-like, optional
        The ``sample_weight`` given to ``fit``.
    fit_params : dict, optional
        ``X_val``, ``y_val`` if they were given to ``fit``.
    every : int, default=1
        Record every ``every``-th step.
    max_bytes : int, default=2**31
        Refuse runs whose float64 smoother state would need more (about
        ``8·p·n·(3 or 4)`` bytes for ``p`` parameters and ``n`` training points).
    progress : bool or None, default=None
        A progress bar over the replay's steps, with its work (steps x rows x parameters)
        and an ETA; ``None`` shows it when the output is a terminal.

    Returns
    -------
    result : EffectiveParameters
        Up to the step of the model the estimator keeps (its best epoch under early
        stopping); ``result.rows`` are the rows of ``X`` the smoother's columns are.

    Examples
    --------
    >>> import numpy as np
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(40, 3)); y = X[:, 0]
    >>> est = TelescopingMLPRegressor((8,), optimizer="sgd", learning_rate=0.05,
    ...                               batch_size=10, max_iter=5, early_stopping=False,
    ...                               random_state=0).fit(X, y)
    >>> res = effective_parameters(est, X, y, X[:10] + 0.1)
    >>> int(res.steps[-1]), bool(res.p_train[-1] > 0), len(res.rows)
    (20, True, 40)
    """
    X, y = data_call("effective_parameters", X, y, legacy)
    subject = resolve(est, "effective_parameters")
    if not subject.is_network:  # a TreeTelescope: the ensemble is its own record
        return subject.model.effective_parameters(subject.transform(X_eval))
    monitor, twin = _replay_smoother(
        "effective_parameters", subject, X, y, X_eval, sample_weight, fit_params, every,
        max_bytes, progress,
    )  # fmt: skip
    rows = twin.run_.fits[-1].train_rows
    return EffectiveParameters(monitor.steps_, monitor.p_train_, monitor.p_test_, rows)


def smoother_trace(
    est, X=None, y=None, X_eval=None, *, sample_weight=None, fit_params=None, every: int = 1,
    max_bytes: int = 2**31, progress: bool | None = None, **legacy,
) -> SmootherTrace:  # fmt: skip
    """Replay the fit of ``est`` and return its final smoother ``S``, ``s(x)``, ``c``.

    Same requirements and parameters as :func:`effective_parameters` (networks only).

    Returns
    -------
    trace : SmootherTrace
        ``trace.predict_train()`` reproduces the network's predictions on the training rows
        ``X[trace.rows]`` (``predict`` for regressors, ``decision_function`` for
        classifiers), and ``trace.y_network`` are their targets as the network saw them.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=30, n_features=2, random_state=0)
    >>> sgd = TelescopingMLPRegressor((4,), optimizer="sgd", max_iter=3,
    ...                               random_state=0).fit(X, y)
    >>> tr = smoother_trace(sgd, X, y)
    >>> tr.S.shape, bool(abs(tr.predict_train() - sgd.predict(X[tr.rows])).max() < 1e-4)
    ((27, 27), True)
    """
    X, y = data_call("smoother_trace", X, y, legacy)
    subject = resolve(est, "smoother_trace", trees=False)
    monitor, twin = _replay_smoother(
        "smoother_trace", subject, X, y, X_eval, sample_weight, fit_params, every, max_bytes,
        progress,
    )  # fmt: skip
    run, n = twin.run_, len(monitor.S_)
    rows = run.fits[-1].train_rows
    t_mean = float(np.asarray(run.scaling.t_mean).reshape(-1)[0])
    t_scale = float(np.asarray(run.scaling.t_scale).reshape(-1)[0])
    y_rows = run.checked_targets(y, len(subject.transform(X)))[rows]
    return SmootherTrace(
        steps=monitor.steps_, p_train=monitor.p_train_, p_test=monitor.p_test_, rows=rows,
        S=monitor.S_, s_eval=monitor.s_eval_, c_train=monitor.c_[:n], c_eval=monitor.c_[n:],
        c_train_first_order=monitor.c_first_order_[:n],
        c_eval_first_order=monitor.c_first_order_[n:],
        y_network=run.network_targets(y_rows)[:, 0], t_mean=t_mean, t_scale=t_scale,
    )  # fmt: skip


__all__ = [
    "EffectiveParameters",
    "SmootherMonitor",
    "SmootherTrace",
    "effective_parameters",
    "smoother_trace",
]
