"""The shared scikit-learn layer of the two estimators: parameters, fit, and evaluation.

Subclasses add what differs between regression and classification: how targets are
checked and turned into indices, and which loss object trains the network
(:mod:`sktelescope._core.losses`). The loop is :mod:`sktelescope._core.training`, the
run's checkpoints :mod:`sktelescope._core.checkpoints`, the fitted run
:mod:`sktelescope._mlp._run`.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names,
    check_is_fitted,
    validate_data,
)

import sktelescope._mlp._validation as checks
from sktelescope._core.checkpoints import CheckpointStore
from sktelescope._core.network import build_mlp, count_mlp_parameters
from sktelescope._core.observers import EarlyStopping, StageRecorder
from sktelescope._core.optim import (
    OPTIMIZERS,
    SCHEDULES,
    load_optimizer_state,
    save_optimizer_state,
)
from sktelescope._core.training import DivergenceError, TrainConfig, Trainer, TrainResult
from sktelescope._mlp._run import Scaling, TrainingRun
from sktelescope._mlp._scaling import INPUT_SCALINGS, fit_input_scaling
from sktelescope._mlp._stages import Stage
from sktelescope._mlp._threads import resolve_threads, torch_threads
from sktelescope._staged import row_fingerprints
from sktelescope._version import __version__
from sktelescope.exceptions import FitInterruptedWarning

__all__ = ["BaseTelescopingMLP"]
_DOC_VERSION = "latest" if "dev" in __version__ else __version__


class BaseTelescopingMLP(BaseEstimator):
    """Shared fit and staged machinery of :class:`TelescopingMLPRegressor` and
    :class:`TelescopingMLPClassifier`; see their docstrings for the parameters."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions({"relu", "gelu", "tanh", "identity"})],
        "loss": [StrOptions({"auto", "squared_error", "log_loss"})],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "weight_decay_biases": ["boolean"],
        "lr_schedule": [StrOptions(set(SCHEDULES))],
        "warmup_steps": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        "input_scaling": [StrOptions(set(INPUT_SCALINGS))],
        "max_stages": [Interval(Integral, 1, None, closed="left")],
        "stage_every": [Interval(Integral, 1, None, closed="left"), None],
        "warm_start": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
    }

    #: Training rows from which ``early_stopping="auto"`` holds out a validation split.
    _auto_early_stopping_min_samples = 1_000

    _doc_link_module = "sktelescope"
    _doc_link_template = (
        f"https://sktelescope.readthedocs.io/en/{_DOC_VERSION}/api/generated/"
        "sktelescope.{estimator_name}.html"
    )

    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        *,
        loss="auto",
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=False,
        beta_1=0.9,
        beta_2=0.999,
        weight_decay=0.0,
        weight_decay_biases=True,
        lr_schedule="constant",
        warmup_steps=0,
        batch_size=256,
        max_iter=200,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        init_scale=1.0,
        input_scaling="standard",
        max_stages=50,
        stage_every=None,
        warm_start=False,
        n_jobs=None,
        random_state=None,
        device="cpu",
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.weight_decay = weight_decay
        self.weight_decay_biases = weight_decay_biases
        self.lr_schedule = lr_schedule
        self.warmup_steps = warmup_steps
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.init_scale = init_scale
        self.input_scaling = input_scaling
        self.max_stages = max_stages
        self.stage_every = stage_every
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ---------------------------------------------------------------- subclass hooks
    def _validate_y_kwargs(self) -> dict:
        return {}

    def _set_target_info(self, y) -> None:
        """Learn what the targets are (classes, number of outputs) from training ``y``."""

    def _target_indices(self, y, name: str = "y") -> np.ndarray:
        """Targets as the loss object's ``encode`` takes them (class indices, values)."""
        raise NotImplementedError

    def _make_loss(self):
        raise NotImplementedError

    def _stratify(self, indices) -> np.ndarray | None:
        return None

    def _target_scaling(self, targets: np.ndarray):
        """``(mean, scale)`` of the encoded targets for training; identity by default."""
        return 0.0, 1.0

    # ---------------------------------------------------------------- validation
    def _validate_features(self, X, name: str = "X") -> np.ndarray:
        """Validate ``X`` for a fitted model like ``predict`` does; errors name ``name``."""
        _check_feature_names(self, X, reset=False)
        X = checks.check_features(X, name)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{name} has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (the features it was fitted on)."
            )
        return X

    def _validate_features_and_targets(self, X, y, names: tuple[str, str] = ("X", "y")):
        """``X`` and ``y`` of a fitted model, checked like ``fit`` checks them; errors name
        ``names``."""
        X = self._validate_features(X, name=names[0])
        return X, self._checked_targets(y, len(X), names)

    def _checked_targets(self, y, n_rows: int, names: tuple[str, str]) -> np.ndarray:
        numeric = self._validate_y_kwargs().get("y_numeric", False)
        y = checks.check_targets(y, n_rows, names, numeric)
        return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 and not numeric else y

    def _checked_weights(self, sample_weight, X) -> np.ndarray:
        return checks.checked_sample_weight(sample_weight, X)

    # ---------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, X_val=None, y_val=None, monitors=None):
        """Train the network; the run is kept as ``stages_`` and ``run_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights, normalised to mean one.
        X_val, y_val : array-like, optional
            Validation data for early stopping (switches early stopping on).
        monitors : list of Observer, optional
            Observers attached to this fit (e.g. the lens's ``TelescopingMonitor``): they
            see every optimizer step (see :class:`sktelescope.lens.Observer`).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        continuing = bool(self.warm_start) and hasattr(self, "run_")
        X, y = validate_data(
            self, X, y, dtype=np.float64, reset=not continuing, **self._validate_y_kwargs()
        )
        weights = self._checked_weights(sample_weight, X)
        if not continuing:
            self._set_target_info(y)
        indices = self._target_indices(y)
        rng = check_random_state(self.random_state)
        train, val = self._split_validation(X, indices, weights, X_val, y_val, rng)
        monitors = self._check_monitors(monitors)
        if continuing:
            self._continue(train, val, X, monitors)
        else:
            self._start(train, val, X, rng, monitors)
        return self

    def _check_monitors(self, monitors) -> list:
        monitors = [] if monitors is None else list(monitors)
        for m in monitors:
            if not all(hasattr(m, hook) for hook in ("on_train_begin", "on_step", "on_train_end")):
                raise TypeError(
                    f"monitors must be training observers (subclasses of "
                    f"sktelescope.lens.Observer), got {type(m).__name__}."
                )
        return monitors

    def _use_early_stopping(self, n_samples: int) -> bool:
        if self.early_stopping == "auto":
            return n_samples >= self._auto_early_stopping_min_samples
        return bool(self.early_stopping)

    def _split_validation(self, X, indices, weights, X_val, y_val, rng):
        if (X_val is None) != (y_val is None):
            raise ValueError("Pass both X_val and y_val, or neither.")
        if X_val is not None:
            X_val, y_val = self._validate_features_and_targets(X_val, y_val, ("X_val", "y_val"))
            val = (X_val, self._target_indices(y_val, name="y_val"), np.ones(len(X_val)))
            return (X, indices, weights), val
        if not self._use_early_stopping(len(X)):
            return (X, indices, weights), None
        if len(X) < 2:
            raise ValueError(
                f"early_stopping needs at least 2 samples to hold out a validation split; got "
                f"{len(X)}. Set early_stopping=False."
            )
        split = train_test_split(
            X, indices, weights, test_size=self.validation_fraction,
            random_state=rng.randint(np.iinfo(np.int32).max), stratify=self._stratify(indices),
        )  # fmt: skip
        return (split[0], split[2], split[4]), (split[1], split[3], split[5])

    # ---------------------------------------------------------------- a new run
    def _start(self, train, val, X_all, rng, monitors) -> None:
        X, indices, weights = train
        loss = self._make_loss()
        targets = loss.encode(indices)
        t_mean, t_scale = self._target_scaling(targets)
        sizes = checks.check_hidden_layer_sizes(self.hidden_layer_sizes)
        n_params = count_mlp_parameters(X.shape[1], sizes, loss.n_outputs)
        adaptive = OPTIMIZERS[self.optimizer].adaptive
        checks.check_network_memory(n_params, 2 * self.max_stages + 2, adaptive)
        device = checks.resolve_device(self.device)
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        module = build_mlp(X.shape[1], sizes, loss.n_outputs, self.activation,
                           self.init_scale, generator).to(device)  # fmt: skip
        scaling = Scaling(fit_input_scaling(X, self.input_scaling), t_mean, t_scale)
        run = TrainingRun(self, module, CheckpointStore(), loss, self._train_config(),
                          scaling, row_fingerprints(X_all))  # fmt: skip
        run.early_stopping = val is not None
        self._train(run, train, val, generator, None, monitors)

    def _continue(self, train, val, X_all, monitors) -> None:
        run = self.run_
        run.config = self._train_config()
        run._fingerprints = np.union1d(run._fingerprints, row_fingerprints(X_all))
        generator = torch.Generator()
        generator.set_state(run.generator_state)
        optimizer_state = run.optimizer_state
        run.early_stopping = val is not None
        self._train(run, train, val, generator, optimizer_state, monitors)

    def _train(self, run, train, val, generator, optimizer_state, monitors) -> None:
        to_tensors = _TensorMaker(run)
        train_tensors = to_tensors(*train)
        val_tensors = None if val is None else to_tensors(*val)
        n_train = len(train_tensors[0])
        stopping = EarlyStopping(self.n_iter_no_change, self.tol, val_tensors)
        recorder = self._stage_recorder(run, n_train, stopping)
        trainer = Trainer(
            run.module, run.loss, run.config, generator, [stopping, recorder, *monitors],
            input_transform=functools.partial(run.inputs, dtype=torch.float32),
            step=run.checkpoints.steps[-1] if run.checkpoints.steps else 0,
        )  # fmt: skip
        if optimizer_state is not None:
            load_optimizer_state(trainer.optimizer, optimizer_state, run.module.parameters())
        work = run.config.batch(n_train) * run.final_parameters.numel()
        with torch_threads(resolve_threads(self.n_jobs, work)):
            result = self._run_trainer(trainer, train_tensors)
        self._keep_run(run, trainer, result, stopping, recorder)

    def _stage_recorder(self, run, n_train: int, stopping) -> StageRecorder:
        if self.stage_every is None:
            return StageRecorder(run.checkpoints, self.max_stages, run.stage_interval,
                                 thinning=True, early_stopping=stopping)  # fmt: skip
        planned = run.n_steps + self.max_iter * run.config.steps_per_epoch(n_train)
        n_stages = math.ceil(planned / self.stage_every)
        if n_stages > self.max_stages:
            raise ValueError(
                f"stage_every={self.stage_every} over up to {planned} optimizer steps would "
                f"keep {n_stages} stages, more than max_stages={self.max_stages}. Raise "
                "max_stages (each stage holds one parameter vector, two with Adam) or "
                "stage_every, or leave stage_every=None (stages then adapt to the run)."
            )
        return StageRecorder(run.checkpoints, self.max_stages, self.stage_every,
                             thinning=False, early_stopping=stopping)  # fmt: skip

    def _run_trainer(self, trainer: Trainer, train_tensors) -> TrainResult:
        try:
            result = trainer.fit(*train_tensors)
        except DivergenceError as exc:
            raise ValueError(
                f"Training diverged ({exc}) with learning_rate={self.learning_rate}. "
                "Lower learning_rate (or init_scale), or use a warm-up (warmup_steps)."
            ) from None
        if result.interrupted:
            warnings.warn(
                f"Training interrupted after {result.n_steps} optimizer steps; the model "
                "keeps what it reached so far (under early stopping, its best epoch).",
                FitInterruptedWarning,
                stacklevel=checks.user_stacklevel(),
            )
        elif result.stop_reason == "max_epochs" and self.n_iter_no_change is not None:
            warnings.warn(
                f"Maximum iterations ({self.max_iter}) reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=checks.user_stacklevel(),
            )
        return result

    def _keep_run(self, run, trainer, result, stopping, recorder) -> None:
        if stopping.best_params is not None:
            torch.nn.utils.vector_to_parameters(
                stopping.best_params.to(run.device), run.module.parameters()
            )
        run.module.eval()
        run.final_parameters = run.checkpoints.flats[-1].to(run.device)
        run.n_steps = trainer.step
        run.stage_interval = recorder.every
        run.optimizer_state = _to_cpu(
            save_optimizer_state(trainer.optimizer, run.module.parameters())
        )
        run.generator_state = trainer.generator.get_state()
        self.run_ = run
        self.module_ = run.module
        self.stages_ = [Stage(run, k) for k in range(run.checkpoints.n_stages)]
        self.n_stages_ = run.checkpoints.n_stages
        self.n_steps_ = trainer.step
        self.best_step_ = run.checkpoints.steps[-1]
        previous = self.loss_curve_ if self.warm_start and hasattr(self, "loss_curve_") else []
        self.loss_curve_ = list(previous) + list(result.loss_curve)
        self.n_iter_ = len(self.loss_curve_)
        if stopping.restores_best:
            self.validation_score_ = np.asarray(stopping.scores)
        elif hasattr(self, "validation_score_"):
            del self.validation_score_

    def _train_config(self) -> TrainConfig:
        return TrainConfig.from_params(self.get_params(deep=False))

    # ---------------------------------------------------------------- evaluation
    def _raw_output(self, X) -> np.ndarray:
        check_is_fitted(self, "run_")
        return self.run_.predict_raw(X)

    def _staged_raw_output(self, X):
        check_is_fitted(self, "run_")
        yield from self.run_.staged_raw(X)

    def telescope(self, X) -> np.ndarray:
        """Initial function and each stage's contribution on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        parts : ndarray of shape (n_samples, 1 + n_stages[, n_outputs])
            Column 0 is the initial network ``f_0(X)``, column ``k`` the exact contribution
            of stage ``k - 1``; each row sums to the model's output (``predict`` for
            regressors, ``decision_function`` for classifiers) within float32 round-off.

        Examples
        --------
        >>> from sklearn.datasets import make_regression
        >>> from sktelescope import TelescopingMLPRegressor
        >>> X, y = make_regression(n_samples=40, n_features=3, random_state=0)
        >>> est = TelescopingMLPRegressor((8,), max_iter=2, random_state=0).fit(X, y)
        >>> est.telescope(X[:2]).shape == (2, 1 + est.n_stages_)
        True
        """
        check_is_fitted(self, "run_")
        return self.run_.telescope(X)

    def __getstate__(self):
        state = super().__getstate__()
        run = state.get("run_")
        if run is not None and run.device.type != "cpu":
            run = run.cpu()
            state["run_"], state["module_"] = run, run.module
            state["stages_"] = [Stage(run, k) for k in range(run.checkpoints.n_stages)]
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


class _TensorMaker:
    """``(X, target indices, weights)`` arrays -> float32 training tensors of a run."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run

    def __call__(self, X, indices, weights):
        run = self.run
        targets = run.scale_targets(run.loss.encode(indices))
        t = torch.as_tensor(targets, dtype=run.loss.target_dtype, device=run.device)
        w = torch.as_tensor(weights / weights.mean(), dtype=torch.float32, device=run.device)
        scaled = run.scaling.inputs.transform(X)
        return torch.as_tensor(scaled, dtype=torch.float32, device=run.device), t, w


def _to_cpu(state: dict) -> dict:
    """A deep copy of an optimizer ``state_dict`` with every tensor on the CPU."""
    return copy.deepcopy({k: _tensors_to_cpu(v) for k, v in state.items()})


def _tensors_to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _tensors_to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_tensors_to_cpu(v) for v in value)
    return value
