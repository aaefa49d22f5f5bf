"""The shared scikit-learn layer of the two estimators: parameters, fit, and evaluation.

Subclasses add what differs between regression and classification: how targets are
checked and turned into indices, and which loss object trains the network
(:mod:`sktelescope._core.losses`). The loop is :mod:`sktelescope._core.training`, the
run's checkpoints :mod:`sktelescope._core.checkpoints`, the fitted run
:mod:`sktelescope._mlp._run`.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

import sktelescope._mlp._validation as checks
from sktelescope._checks import (
    check_fitted_features,
    check_targets,
    checked_sample_weight,
    positive_int,
    user_stacklevel,
)
from sktelescope._core.network import ACTIVATIONS, build_mlp, count_mlp_parameters
from sktelescope._core.observers import EarlyStopping, StageRecorder
from sktelescope._core.optim import OPTIMIZERS, SCHEDULES
from sktelescope._core.training import DivergenceError, TrainConfig, Trainer, TrainResult
from sktelescope._mlp._fits import DataDigest, FitRecord
from sktelescope._mlp._network_options import (
    NETWORK_OPTION_CONSTRAINTS,
    embedding_inputs,
    network_architecture,
)
from sktelescope._mlp._presets import (
    AUTO,
    AUTO_OPTION,
    PRESET_PARAMETERS,
    PRESETS,
    early_stopping_min_samples,
    resolve_params,
)
from sktelescope._mlp._run import FeatureSpec, Scaling, TrainingRun
from sktelescope._mlp._scaling import INPUT_SCALINGS, fit_input_scaling
from sktelescope._mlp._stages import Stage
from sktelescope._mlp._threads import resolve_threads, torch_threads
from sktelescope._version import __version__
from sktelescope.exceptions import FitInterruptedWarning

__all__ = ["BaseTelescopingMLP"]
_DOC_VERSION = "latest" if "dev" in __version__ else __version__


class BaseTelescopingMLP(BaseEstimator):
    """Shared fit and staged machinery of :class:`TelescopingMLPRegressor` and
    :class:`TelescopingMLPClassifier`; see their docstrings for the parameters."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", AUTO_OPTION],
        "activation": [StrOptions({*ACTIVATIONS, AUTO})],
        "preset": [StrOptions(set(PRESETS))],
        "loss": [StrOptions({"auto", "squared_error", "log_loss"})],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left"), AUTO_OPTION],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "weight_decay_biases": ["boolean"],
        "lr_schedule": [StrOptions({*SCHEDULES, AUTO})],
        "warmup_steps": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left"), AUTO_OPTION],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None, AUTO_OPTION],
        "tol": [Interval(Real, 0, None, closed="left")],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        "input_scaling": [StrOptions(set(INPUT_SCALINGS))],
        "max_stages": [Interval(Integral, 1, None, closed="left")],
        "stage_every": [Interval(Integral, 1, None, closed="left"), None],
        "warm_start": ["boolean"],
        "n_jobs": [
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
        **NETWORK_OPTION_CONSTRAINTS,
    }

    #: The task whose column of :data:`~sktelescope._mlp._presets.PRESETS` the ``"auto"``
    #: settings read.
    _task = "regression"

    _doc_link_module = "sktelescope"
    _doc_link_template = (
        f"https://sktelescope.readthedocs.io/en/{_DOC_VERSION}/api/generated/"
        "sktelescope.{estimator_name}.html"
    )

    def __init__(
        self,
        hidden_layer_sizes="auto",
        activation="auto",
        *,
        preset="tabular",
        loss="auto",
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=False,
        beta_1=0.9,
        beta_2="auto",
        weight_decay=0.0,
        weight_decay_biases=True,
        lr_schedule="auto",
        warmup_steps=0,
        batch_size=256,
        max_iter="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change="auto",
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
        numerical_embedding="auto",
        embedding_dim=None,
        embedding_frequencies=16,
        embedding_sigma=0.1,
        embedding_bins=48,
        embedding_lr_factor=0.1,
        feature_scaling="auto",
        feature_scaling_lr_factor=6.0,
        dropout="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.preset = preset
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
        self.numerical_embedding = numerical_embedding
        self.embedding_dim = embedding_dim
        self.embedding_frequencies = embedding_frequencies
        self.embedding_sigma = embedding_sigma
        self.embedding_bins = embedding_bins
        self.embedding_lr_factor = embedding_lr_factor
        self.feature_scaling = feature_scaling
        self.feature_scaling_lr_factor = feature_scaling_lr_factor
        self.dropout = dropout

    # ---------------------------------------------------------------- subclass hooks
    def _validate_y_kwargs(self) -> dict:
        return {}

    def _target_spec(self, y):
        """What the training targets ``y`` are (a ``ValueTargets`` or ``ClassTargets``)."""
        raise NotImplementedError

    def _make_loss(self, targets, params: dict):
        """The loss object for ``targets`` under the resolved ``params``."""
        raise NotImplementedError

    def _stratify(self, indices, targets) -> np.ndarray | None:
        return None

    def _target_scaling(self, encoded: np.ndarray):
        """``(mean, scale)`` of the encoded targets for training; identity by default."""
        return 0.0, 1.0

    def _fitted_target_attributes(self, targets) -> dict:
        """Fitted attributes that describe the targets (``n_outputs_``, ``classes_``)."""
        return {}

    # ---------------------------------------------------------------- validation
    def _validate_features(self, X, name: str = "X") -> np.ndarray:
        """Validate ``X`` for a fitted model like ``predict`` does; errors name ``name``."""
        names = getattr(self, "feature_names_in_", None)
        owner = type(self).__name__
        return check_fitted_features(X, self.n_features_in_, names, owner, name)

    # ---------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, X_val=None, y_val=None, monitors=None):
        """Train the network; the run is kept as ``stages_`` and ``run_``.

        A fit is all or nothing: if it raises (bad input, divergence, an observer's error),
        the estimator is left exactly as it was before the call. Ctrl-C is the exception: it
        keeps the model reached so far, with a ``FitInterruptedWarning``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights, normalised to mean one.
        X_val, y_val : array-like, optional
            Validation data for early stopping (switches early stopping on).
        monitors : Observer or list of Observer, optional
            Observers attached to this fit (e.g. the lens's ``TelescopingMonitor``): they
            see every optimizer step (see :class:`sktelescope.lens.Observer`).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        monitors = checks.check_monitors(monitors)
        before = dict(self.__dict__)
        try:
            self._fit(X, y, sample_weight, X_val, y_val, monitors)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        return self

    def get_resolved_params(self, n_samples: int | None = None) -> dict:
        """The settings a fit uses: ``get_params(deep=False)`` with every ``"auto"`` setting
        that ``preset`` fills replaced by its value.

        Parameters
        ----------
        n_samples : int, optional
            Training rows: ``early_stopping="auto"`` is then resolved too (to the bool
            ``fit`` uses when no ``X_val`` is given).

        Returns
        -------
        params : dict

        Examples
        --------
        >>> from sktelescope import TelescopingMLPRegressor
        >>> params = TelescopingMLPRegressor().get_resolved_params(n_samples=500)
        >>> params["numerical_embedding"], params["max_iter"], params["early_stopping"]
        ('pbld', 64, True)
        >>> TelescopingMLPRegressor(preset="paper").get_resolved_params()["max_iter"]
        200
        """
        self._validate_params()
        params = self._resolved_params()
        if n_samples is not None:
            rows = positive_int(n_samples, "n_samples")
            params["early_stopping"] = self._use_early_stopping(rows, params)
        return params

    def _resolved_params(self) -> dict:
        """``get_params(deep=False)`` with every ``"auto"`` setting the preset's value."""
        return resolve_params(self.get_params(deep=False), self._task)

    def _fit(self, X, y, sample_weight, X_val, y_val, monitors) -> None:
        params = self._resolved_params()
        continuing = bool(self.warm_start) and hasattr(self, "run_")
        if continuing:
            self._check_continuation(params)
        X, y = validate_data(
            self, X, y, dtype=np.float64, reset=not continuing, **self._validate_y_kwargs()
        )
        weights = checked_sample_weight(sample_weight, X)
        targets = self.run_.targets if continuing else self._target_spec(y)
        indices = targets.indices(y)
        seed = self.run_.seed if continuing else _integer_seed(self.random_state)
        rng = np.random.RandomState(seed)
        split = self._split_validation(X, indices, weights, X_val, y_val, rng, targets, params)
        rows = split.train_rows
        train = (X[rows], indices[rows], weights[rows])
        if continuing:
            run = self.run_.resume(TrainConfig.from_params(params))
        else:
            run = self._new_run(train, targets, seed, rng, params)
        digest = DataDigest.of(X, y, weights)
        run.remember_rows(digest, rows)
        first_step = run.checkpoints.steps[-1] if run.checkpoints.steps else 0
        trainer, result, stopping, recorder = self._train(
            run, train, split.validation, monitors, params
        )
        record = FitRecord(
            seed, self.get_params(deep=False), digest, rows, split.kind, split.key,
            first_step=first_step, last_step=recorder.store.steps[-1],
        )  # fmt: skip
        run.finish(trainer, stopping, record, recorder.every)
        self._keep(run, result, stopping, continuing)
        self.resolved_params_ = {name: params[name] for name in PRESET_PARAMETERS if name in params}

    def _check_continuation(self, now: dict) -> None:
        """Refuse a ``warm_start`` fit whose changed settings (``now``, resolved) the fitted
        network cannot honour."""
        fitted = resolve_params(self.run_.fits[-1].params, self._task)
        for name in _ARCHITECTURE:
            old, new = fitted.get(name), now.get(name)
            if name == "hidden_layer_sizes":
                old, new = tuple(np.ravel(old).tolist()), tuple(np.ravel(new).tolist())
            if old != new:
                raw = getattr(self, name)
                by_preset = name in PRESET_PARAMETERS and isinstance(raw, str) and raw == AUTO
                source = f' (from preset="{self.preset}")' if by_preset else ""
                raise ValueError(
                    f"warm_start=True continues the fitted network, but {name} changed from "
                    f"{old!r} to {new!r}{source} since it was fitted, which the fitted network "
                    f"cannot honour. Set warm_start=False to train a new network with "
                    f"{name}={new!r}, or set {name} back to {old!r} to continue."
                )

    def _use_early_stopping(self, n_samples: int, params: dict) -> bool:
        if self.early_stopping == "auto":
            return n_samples >= early_stopping_min_samples(params, self._task)
        return bool(self.early_stopping)

    def _split_validation(self, X, indices, weights, X_val, y_val, rng, targets, params) -> _Split:
        """The training rows of ``X`` and the validation data (a split of ``X``, ``X_val``, or
        none), drawn from ``rng``."""
        if (X_val is None) != (y_val is None):
            raise ValueError("Pass both X_val and y_val, or neither.")
        every_row = np.arange(len(X))
        if X_val is not None:
            X_val = self._validate_features(X_val, "X_val")
            y_val = check_targets(y_val, len(X_val), ("X_val", "y_val"), targets.numeric)
            val = (X_val, targets.indices(y_val, name="y_val"), np.ones(len(X_val)))
            key = DataDigest.of(X_val, y_val, val[2]).key
            return _Split(every_row, val, "given", key)
        if not self._use_early_stopping(len(X), params):
            return _Split(every_row, None, "none")
        if len(X) < 2:
            raise ValueError(
                f"early_stopping needs at least 2 samples to hold out a validation split; got "
                f"{len(X)}. Set early_stopping=False."
            )
        train, held_out = train_test_split(
            every_row, test_size=self.validation_fraction,
            random_state=rng.randint(np.iinfo(np.int32).max),
            stratify=self._stratify(indices, targets),
        )  # fmt: skip
        if not np.any(weights[train] > 0):
            raise ValueError(
                "Every sample with a positive sample_weight fell into the early-stopping "
                f"validation split ({len(held_out)} of {len(X)} rows): the network would "
                "have nothing to train on. Give more samples a positive weight, or set "
                "early_stopping=False (or pass X_val, y_val)."
            )
        val = (X[held_out], indices[held_out], weights[held_out])
        return _Split(train, val, "split")

    # ---------------------------------------------------------------- a new run
    def _new_run(self, train, targets, seed: int, rng, params: dict) -> TrainingRun:
        X = train[0]
        loss = self._make_loss(targets, params)
        t_mean, t_scale = self._target_scaling(loss.encode(train[1]))
        sizes = checks.check_hidden_layer_sizes(params["hidden_layer_sizes"])
        architecture = network_architecture(params)
        n_params = count_mlp_parameters(X.shape[1], sizes, loss.n_outputs, architecture)
        adaptive = OPTIMIZERS[self.optimizer].adaptive
        checks.check_network_memory(n_params, 2 * self.max_stages + 2, adaptive)
        device = checks.resolve_device(self.device)
        generator_seed = int(rng.randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(generator_seed)
        input_scaling = fit_input_scaling(X, self.input_scaling)
        module = build_mlp(X.shape[1], sizes, loss.n_outputs, params["activation"], self.init_scale,
                           generator, architecture=architecture,
                           inputs=embedding_inputs(architecture, X, input_scaling),
                           ).to(device)  # fmt: skip
        features = FeatureSpec(X.shape[1], getattr(self, "feature_names_in_", None),
                               type(self).__name__)  # fmt: skip
        scaling = Scaling(input_scaling, t_mean, t_scale)
        config = TrainConfig.from_params(params)
        run = TrainingRun(module, loss, config, scaling, features, targets, seed)
        run.generator_state = generator.get_state()
        return run

    def _train(self, run, train, val, monitors, params: dict):
        to_tensors = _TensorMaker(run)
        train_tensors = to_tensors(*train)
        val_tensors = None if val is None else to_tensors(*val)
        n_train = len(train_tensors[0])
        stopping = EarlyStopping(params["n_iter_no_change"], self.tol, val_tensors)
        recorder = self._stage_recorder(run, n_train, stopping)
        generator = torch.Generator()
        generator.set_state(run.generator_state)
        trainer = Trainer(
            run.module, run.loss, run.config, generator, [stopping, *monitors, recorder],
            input_transform=functools.partial(run.inputs, dtype=torch.float32),
            step=run.checkpoints.steps[-1] if run.checkpoints.steps else 0,
        )  # fmt: skip
        if run.optimizer_state is not None:
            trainer.resume_optimizer(run.optimizer_state)
        work = run.config.batch(n_train) * run.final_parameters.numel()
        with torch_threads(resolve_threads(self.n_jobs, work)):
            result = self._run_trainer(trainer, train_tensors, params)
        return trainer, result, stopping, recorder

    def _stage_recorder(self, run, n_train: int, stopping) -> StageRecorder:
        if self.stage_every is None:
            return StageRecorder(run.checkpoints, self.max_stages, run.stage_interval,
                                 thinning=True, early_stopping=stopping)  # fmt: skip
        done = run.checkpoints.steps[-1] if run.checkpoints.steps else 0
        planned = done + run.config.max_iter * run.config.steps_per_epoch(n_train)
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

    def _run_trainer(self, trainer: Trainer, train_tensors, params: dict) -> TrainResult:
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
                stacklevel=user_stacklevel(),
            )
        elif result.stop_reason == "max_epochs" and params["n_iter_no_change"] is not None:
            warnings.warn(
                f"Maximum iterations ({params['max_iter']}) reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        return result

    def _keep(self, run, result, stopping, continuing: bool) -> None:
        """Set the fitted attributes from a finished run (the last thing ``fit`` does)."""
        for name, value in self._fitted_target_attributes(run.targets).items():
            setattr(self, name, value)
        previous = list(self.loss_curve_) if continuing else []
        scores = getattr(self, "validation_score_", None) if continuing else None
        self.run_ = run
        self.module_ = run.module
        self.stages_ = [Stage(run, k) for k in range(run.checkpoints.n_stages)]
        self.n_stages_ = run.checkpoints.n_stages
        self.n_steps_ = run.n_steps
        self.best_step_ = run.checkpoints.steps[-1]
        self.loss_curve_ = previous + list(result.loss_curve)
        self.n_iter_ = len(self.loss_curve_)
        self._keep_validation_scores(scores, len(previous), stopping, len(result.loss_curve))

    def _keep_validation_scores(self, earlier, n_earlier: int, stopping, n_epochs: int) -> None:
        """``validation_score_`` over every epoch of ``loss_curve_`` (NaN where a fit had no
        validation data); absent when no fit had any."""
        earlier = np.full(n_earlier, np.nan) if earlier is None else np.asarray(earlier)
        now = np.asarray(stopping.scores) if stopping.restores_best else np.full(n_epochs, np.nan)
        scores = np.concatenate([earlier, now])
        if np.all(np.isnan(scores)):
            self.__dict__.pop("validation_score_", None)
        else:
            self.validation_score_ = scores

    # ---------------------------------------------------------------- evaluation
    def _fitted_run(self) -> TrainingRun:
        """The fitted run, read once (a ``warm_start`` fit in another thread swaps it whole)."""
        check_is_fitted(self, "run_")
        return self.run_

    def _raw_output(self, X) -> np.ndarray:
        return self._fitted_run().predict_raw(X)

    def _staged_raw_output(self, X):
        yield from self._fitted_run().staged_raw(X)

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
        return self._fitted_run().telescope(X)

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


@dataclass(frozen=True)
class _Split:
    """The rows of ``X`` a fit trains on and its validation data (``kind``: "none", "split"
    of ``X``, or "given" as ``X_val``, whose digest is ``key``)."""

    train_rows: np.ndarray
    validation: tuple | None
    kind: str
    key: str | None = None


#: Settings a ``warm_start`` continuation cannot change: they define the fitted network.
_ARCHITECTURE = (
    "hidden_layer_sizes", "activation", "loss", "optimizer", "init_scale", "device",
    "input_scaling", "label_smoothing", *NETWORK_OPTION_CONSTRAINTS,
)  # fmt: skip


def _integer_seed(random_state) -> int:
    """The integer every random draw of a new run comes from: ``random_state`` itself when it
    is an integer (so integer seeds give the runs they always gave), else one draw from it
    (like ``HistGradientBoosting*``'s ``_random_seed``), recorded so the run replays."""
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
