"""Linear mode connectivity: loss along the line between two networks, spawning and averaging.

See :ref:`math-lmc`. Two parameter vectors ``θ_a`` and ``θ_b`` of the same fitted
architecture are linearly mode-connected when the loss of the interpolated weights never
exceeds the interpolated losses:

    barrier = max_α L(α θ_a + (1 − α) θ_b) − [α L(θ_a) + (1 − α) L(θ_b)] ≤ 0.

``spawn_children`` reproduces the paper's protocol: replay the parent's run to a spawn step
(bit-identical on CPU from the same integer ``random_state``), then continue training
children that differ only in their data order; ``interpolate`` and ``weight_average`` then
measure the barrier and the accuracy of the averaged weights.

Losses are the estimator's own training objective in the network's units (half squared
error of standardised targets for regressors; log-loss or half squared error of the ±1 /
one-hot targets for classifiers), weighted like training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from sktelescope._checks import format_bytes, n_rows, positive_int
from sktelescope._core.network import flatten_parameters, forward_stacked, widest_layer
from sktelescope._core.observers import Observer
from sktelescope._core.training import Trainer
from sktelescope.lens._calls import legacy_call
from sktelescope.lens._progress import Progress
from sktelescope.lens._replay import replay
from sktelescope.lens._subject import Subject, resolve

__all__ = [
    "InterpolationResult",
    "SpawnResult",
    "evaluate_parameters",
    "interpolate",
    "spawn_children",
    "weight_average",
]


# ----------------------------------------------------------------- evaluation
def _fitted(model, what: str) -> Subject:
    subject = resolve(model, what, trees=False)
    check_is_fitted(subject.model, "run_")
    return subject


def _losses_and_accuracies(subject, flats: torch.Tensor, X, y, sample_weight=None):
    """Training-objective loss (and classifier accuracy) of each row of ``flats``."""
    run = subject.model.run_
    Xt, T, W = run.training_tensors(subject.transform(X), y, sample_weight, dtype=torch.float64)
    outs = forward_stacked(run.module, flats.to(Xt), Xt)
    losses = np.array([float(run.loss(out, T, W)) for out in outs])
    if run.classes is None:
        return losses, None
    labels = np.asarray(y)
    acc = [np.mean(run.classes[run.loss.class_index(run.outputs(out))] == labels) for out in outs]
    return losses, np.array(acc)


def evaluate_parameters(est, X, y, theta: torch.Tensor, sample_weight=None):
    """Loss and accuracy of ``est``'s network at the flat parameters ``theta``.

    Parameters
    ----------
    est : fitted TelescopingMLP* estimator, Pipeline ending in one, or a search over one
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Data on which the loss is measured (raw data for a Pipeline).
    theta : torch.Tensor of shape (n_params,)
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    loss : float
        Training objective in network units (see the module docstring).
    accuracy : float or None
        Share of correct labels (classifiers); ``None`` for regressors.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sktelescope import TelescopingMLPClassifier
    >>> from sktelescope._core.network import flatten_parameters
    >>> X, y = make_classification(n_samples=60, random_state=0)
    >>> clf = TelescopingMLPClassifier(hidden_layer_sizes=(8,), max_iter=5,
    ...                                random_state=0).fit(X, y)
    >>> loss, acc = evaluate_parameters(clf, X, y, flatten_parameters(clf.module_))
    >>> bool(acc == clf.score(X, y))
    True
    """
    subject = _fitted(est, "evaluate_parameters")
    if _is_parameter_vector(X, subject):
        legacy_call("evaluate_parameters", "(est, X, y, theta)", "(est, theta, X, y)")
        X, y, theta = y, theta, X
    theta = _check_theta(subject, theta, "theta")
    losses, acc = _losses_and_accuracies(subject, theta[None], X, y, sample_weight)
    return float(losses[0]), None if acc is None else float(acc[0])


def _is_parameter_vector(value, subject) -> bool:
    """Whether a data argument is a flat parameter vector (an old-form call)."""
    n_params = subject.model.run_.final_parameters.numel()
    return isinstance(value, torch.Tensor) and value.dim() == 1 and value.numel() == n_params


# -------------------------------------------------------------- interpolation
@dataclass
class InterpolationResult:
    """Losses and accuracies along ``θ(α) = α θ_a + (1 − α) θ_b``.

    Attributes
    ----------
    alphas : ndarray of shape (n_points,)
        Equally spaced in [0, 1]; ``α = 1`` is ``θ_a``, ``α = 0`` is ``θ_b``.
    losses : ndarray of shape (n_points,)
        ``ℓ^lmc_α``: loss of the interpolated weights.
    losses_avg : ndarray of shape (n_points,)
        ``ℓ^avg_α = α L(θ_a) + (1 − α) L(θ_b)``.
    barrier : float
        ``max(losses - losses_avg)``; ``≤ 0`` means linear mode connectivity.
    accuracies, accuracies_avg : ndarray of shape (n_points,) or None
        The same for accuracy (classifiers only).
    max_accuracy_drop : float or None
        ``max(accuracies_avg - accuracies)``, the main text's accuracy gap.
    """

    alphas: np.ndarray
    losses: np.ndarray
    losses_avg: np.ndarray
    barrier: float
    accuracies: np.ndarray | None = None
    accuracies_avg: np.ndarray | None = None
    max_accuracy_drop: float | None = None


def interpolate(
    est, X, y, theta_a: torch.Tensor, theta_b: torch.Tensor, n_points: int = 30,
    sample_weight=None, *, max_bytes: int = 2**30,
) -> InterpolationResult:  # fmt: skip
    """Loss (and accuracy) of the weights on the segment between ``theta_a`` and ``theta_b``.

    Parameters
    ----------
    est : fitted TelescopingMLP* estimator, Pipeline ending in one, or a search over one
        Supplies the architecture, the input/target scaling and the loss.
    X, y : array-like
        Data on which the loss is measured (the paper uses the validation set; raw data
        for a Pipeline).
    theta_a, theta_b : torch.Tensor of shape (n_params,)
        Flat parameter vectors, e.g. from :func:`spawn_children`.
    n_points : int, default=30
        Grid size in α, endpoints included.
    sample_weight : array-like of shape (n_samples,), optional
    max_bytes : int, default=2**30
        Refuse (before any work) a grid whose parameters and outputs would need more.

    Returns
    -------
    result : InterpolationResult

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=5,
    ...                               random_state=0).fit(X, y)
    >>> theta = est.stages_[-1].end_parameters
    >>> interpolate(est, X, y, theta, theta, n_points=5).barrier
    0.0
    """
    subject = _fitted(est, "interpolate")
    if _is_parameter_vector(X, subject):
        legacy_call("interpolate", "(est, X, y, theta_a, theta_b, ...)",
                    "(est, theta_a, theta_b, X, y, ...)")  # fmt: skip
        X, y, theta_a, theta_b = theta_a, theta_b, X, y
    if not isinstance(n_points, Integral) or isinstance(n_points, bool) or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}.")
    theta_a = _check_theta(subject, theta_a, "theta_a")
    theta_b = _check_theta(subject, theta_b, "theta_b")
    _check_grid_memory(subject, n_points, n_rows(X), positive_int(max_bytes, "max_bytes"))
    alphas = np.linspace(0.0, 1.0, n_points)
    a = torch.as_tensor(alphas, dtype=torch.float64)[:, None]
    flats = theta_b + a * (theta_a - theta_b)  # exactly theta_b everywhere when a == b
    losses, acc = _losses_and_accuracies(subject, flats, X, y, sample_weight)
    losses_avg = losses[0] + alphas * (losses[-1] - losses[0])
    result = InterpolationResult(alphas, losses, losses_avg, float(np.max(losses - losses_avg)))
    if acc is not None:
        result.accuracies = acc
        result.accuracies_avg = acc[0] + alphas * (acc[-1] - acc[0])
        result.max_accuracy_drop = float(np.max(result.accuracies_avg - acc))
    return result


def _check_grid_memory(subject, n_points: int, n_rows: int, max_bytes: int) -> None:
    """Refuse an interpolation grid whose float64 parameters and outputs exceed ``max_bytes``."""
    run = subject.model.run_
    n_params = run.final_parameters.numel()
    widest = widest_layer(run.module)
    need = 8 * n_points * (n_params + 2 * n_rows * widest)
    if need > max_bytes:
        raise ValueError(
            f"interpolate over n_points={n_points:,} would need about {format_bytes(need)} "
            f"(a float64 copy of the {n_params:,} parameters and the activations of "
            f"{n_rows:,} rows per point), above max_bytes={format_bytes(max_bytes)}. Use fewer "
            "points (the paper uses 30), or raise max_bytes."
        )


def _check_theta(subject, theta, name: str) -> torch.Tensor:
    n_params = subject.model.run_.final_parameters.numel()
    try:
        theta = torch.as_tensor(theta).detach().to("cpu", torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be a flat parameter vector (a tensor), got {exc}.") from None
    if theta.numel() != n_params:
        raise ValueError(
            f"{name} has {theta.numel()} values but the network has {n_params} parameters; "
            "pass flat vectors of this estimator's architecture."
        )
    if not torch.isfinite(theta).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return theta


def weight_average(thetas: Sequence[torch.Tensor], weights=None) -> torch.Tensor:
    """(Weighted) average of flat parameter vectors, e.g. of spawned children.

    Parameters
    ----------
    thetas : sequence of torch.Tensor of shape (n_params,), or a (K, n_params) tensor
    weights : array-like of shape (K,), optional
        Non-negative; normalised to sum to one. Default: uniform.

    Returns
    -------
    theta : torch.Tensor of shape (n_params,)

    Examples
    --------
    >>> import torch
    >>> weight_average([torch.zeros(2), torch.ones(2)], weights=[1, 3])
    tensor([0.7500, 0.7500])
    """
    stacked = _stack_thetas(thetas)
    if weights is None:
        return stacked.mean(dim=0)
    w = torch.as_tensor(_float_array(weights, "weights")).to(stacked)
    valid = w.shape == (len(stacked),) and bool(torch.isfinite(w).all())
    if not valid or torch.any(w < 0) or w.sum() <= 0:
        raise ValueError(
            f"weights must be {len(stacked)} finite non-negative numbers with a positive "
            f"sum (one per parameter vector), got {weights!r}."
        )
    return (w[:, None] * stacked).sum(dim=0) / w.sum()


def _float_array(values, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numbers, got {values!r} ({exc}).") from None


def _flat_tensor(theta) -> torch.Tensor:
    """One parameter vector as a 1-D floating tensor (its own float dtype kept)."""
    if not isinstance(theta, torch.Tensor):
        theta = torch.as_tensor(_float_array(theta, "thetas"))
    if theta.is_complex() or theta.dtype == torch.bool:
        raise TypeError(f"thetas must hold real numbers, got a {theta.dtype} tensor.")
    return (theta if theta.is_floating_point() else theta.double()).detach().reshape(-1)


def _stack_thetas(thetas) -> torch.Tensor:
    """``thetas`` as a finite floating ``(K, n_params)`` tensor, or a ValueError."""
    if isinstance(thetas, torch.Tensor | np.ndarray) and np.ndim(thetas) != 2:
        raise ValueError(
            "thetas must be a sequence of flat parameter vectors or a (K, n_params) array, "
            f"got an array of shape {tuple(thetas.shape)}."
        )
    flats = [_flat_tensor(t) for t in thetas]
    sizes = sorted({len(t) for t in flats})
    if not flats or len(sizes) != 1 or sizes[0] == 0:
        raise ValueError(
            "thetas must be at least one flat parameter vector, all of one network's size; "
            f"got {len(flats)} vectors of sizes {sizes}."
        )
    dtype = flats[0].dtype
    for t in flats[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    stacked = torch.stack([t.to(flats[0].device, dtype) for t in flats])
    if not torch.isfinite(stacked).all():
        raise ValueError("thetas contain NaN or infinite values.")
    return stacked


# ------------------------------------------------------------------- spawning
class _SpawnAt(Observer):
    """Replay observer that keeps the trainer at the spawn point: after optimizer step
    ``step`` (the replay stops there), a copy of the parent's trainer (parameters, optimizer
    state, dropout generators, step count, schedule, training tensors); children branch
    from it.

    A copy, taken at the step itself: when the replayed fit ends, early stopping restores
    its best epoch into the trainer's own module, which is not the spawn point whenever that
    epoch ended before the spawn step.
    """

    def __init__(self, step: int) -> None:
        self.step = step
        self.trainer = None

    def on_train_begin(self, trainer) -> None:
        if self.step == 0:
            self.trainer = _snapshot(trainer)

    def on_step(self, step) -> None:
        if step.step == self.step:
            self.trainer = _snapshot(step.trainer)


def _snapshot(trainer: Trainer) -> Trainer:
    """A frozen copy of ``trainer`` as it is now (its batch generator's state included)."""
    generator = torch.Generator(device=trainer.generator.device)
    generator.set_state(trainer.generator.get_state())
    copy = trainer.branch(generator)
    copy.train_data = trainer.train_data
    return copy


def _replay_to(subject, X, y, step: int, sample_weight, fit_params, progress=None) -> Trainer:
    """Re-run the parent's fit up to ``step`` optimizer steps; the trainer there."""
    est = subject.model
    if len(est.run_.fits) > 1:
        raise ValueError(
            "spawn_children needs a model trained in one fit; this one was continued with "
            "warm_start, and its children could not follow the later fits' settings. Refit "
            "it in one fit (more max_iter) and spawn from that."
        )
    last = est.best_step_
    if not isinstance(step, Integral) or isinstance(step, bool) or not 0 <= step < last:
        raise ValueError(
            f"spawn_step must be an integer in [0, {last}) (the steps of the kept model, "
            f"best_step_={last}), got {step!r}."
        )
    spawn = _SpawnAt(int(step))
    bar = Progress("spawn_children: replay to the spawn step", n_rows(X), progress)
    replay(subject, X, y, [spawn, bar], sample_weight=sample_weight, fit_params=fit_params,
           until=int(step))  # fmt: skip
    return spawn.trainer


def _is_seed(seed) -> bool:
    return isinstance(seed, Integral) and not isinstance(seed, bool) and 0 <= seed < 2**63


def _train_child(point: Trainer, n_steps: int, generator: torch.Generator) -> torch.Tensor:
    """Continue the parent's trainer from the spawn point to ``n_steps`` steps, drawing
    batches from ``generator`` (a fresh permutation per pass, the same schedule)."""
    child = point.branch(generator)
    child.run_until(*point.train_data, n_steps)
    return flatten_parameters(child.module)


def _check_spawn_point(est, point: Trainer) -> None:
    """Where the parent kept a checkpoint at the spawn step, the replay must have reached it."""
    checkpoints = est.run_.checkpoints
    if point.step in checkpoints.steps:
        stored = checkpoints.flats[checkpoints.steps.index(point.step)]
        if not torch.equal(stored, flatten_parameters(point.module).to(stored)):
            raise ValueError(
                f"The replayed run differs from the parent's at step {point.step}: training "
                "on this device is not deterministic (a GPU), so children of a replay would "
                "not be children of this model."
            )


def _check_children_memory(est, n_children: int, max_bytes: int) -> None:
    n_params = est.run_.final_parameters.numel()
    need = 4 * n_params * (n_children + 6)  # the children, one child's model and optimizer
    if need > max_bytes:
        raise ValueError(
            f"{n_children:,} children of a {n_params:,}-parameter network would need about "
            f"{format_bytes(need)}, above max_bytes={format_bytes(max_bytes)}. Spawn fewer "
            "children (the paper uses 2), or raise max_bytes."
        )


@dataclass
class SpawnResult:
    """Result of :func:`spawn_children`.

    Attributes
    ----------
    spawn_step : int
        Optimizer step of the parent's run the children start from.
    n_steps : int
        Optimizer steps each child has taken in all (the parent's ``best_step_``).
    spawn_parameters : torch.Tensor of shape (n_params,)
        The parent's parameters after ``spawn_step`` steps.
    children : torch.Tensor of shape (n_children, n_params)
        Final parameters of each child.
    seeds : list of int
        Batch-order seed of each child.
    """

    spawn_step: int
    n_steps: int
    spawn_parameters: torch.Tensor
    children: torch.Tensor
    seeds: list[int]


def spawn_children(
    est, X, y, spawn_step: int, n_children: int = 2, seeds=None, sample_weight=None, *,
    fit_params: dict | None = None, max_bytes: int = 2**30, progress: bool | None = None,
) -> SpawnResult:  # fmt: skip
    """Train children from step ``spawn_step`` of ``est``'s run that differ only in data order.

    The parent's run is replayed from the seed and settings its fit recorded up to
    ``spawn_step`` (bit-identical on CPU: same initialisation, batches, validation split and
    optimizer state; data other than the fit's is refused). Each child then continues, with
    the parent's optimizer state, learning-rate schedule and settings, on the rows the
    parent trained on, up to the step of the parent's kept model (``best_step_``: its best
    epoch under early stopping), drawing its batch order from its own seed. Memory: one
    parameter vector per child, and one child's model and optimizer state at a time.

    Parameters
    ----------
    est : fitted TelescopingMLP* estimator, Pipeline ending in one, or a search over one
        Trained in one fit (not continued with ``warm_start``).
    X, y, sample_weight
        The data given to the parent's ``fit`` (raw data for a Pipeline).
    spawn_step : int
        Optimizer steps of the parent's run before spawning (0 = at initialisation).
    n_children : int, default=2
    seeds : sequence of int, optional
        One batch-order seed per child; default ``0, 1, ...``.
    fit_params : dict, optional
        ``X_val``, ``y_val`` if they were given to ``fit``.
    max_bytes : int, default=2**30
        Refuse (before any work) children whose parameters would need more.
    progress : bool or None, default=None
        Progress bars over the replay to the spawn step and over the children (each trains
        ``best_step_ - spawn_step`` steps); ``None`` shows them when the output is a terminal.

    Returns
    -------
    result : SpawnResult

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=4, batch_size=20,
    ...                               n_iter_no_change=None, early_stopping=False,
    ...                               random_state=0).fit(X, y)
    >>> res = spawn_children(est, X, y, spawn_step=5)
    >>> res.children.shape[0], res.n_steps
    (2, 12)
    """
    subject = _fitted(est, "spawn_children")
    if not isinstance(n_children, Integral) or isinstance(n_children, bool) or n_children < 1:
        raise ValueError(f"n_children must be a positive integer, got {n_children!r}.")
    _check_children_memory(subject.model, n_children, positive_int(max_bytes, "max_bytes"))
    seeds = list(range(n_children)) if seeds is None else list(seeds)
    if len(seeds) != n_children or not all(_is_seed(s) for s in seeds):
        raise ValueError(
            f"seeds must be {n_children} non-negative integers (one per child), got {seeds!r}."
        )
    parent = subject.model
    point = _replay_to(subject, X, y, spawn_step, sample_weight, fit_params, progress)
    _check_spawn_point(parent, point)
    last = parent.best_step_
    disable = None if progress is None else not progress
    children = [
        _train_child(point, last, torch.Generator().manual_seed(int(seed)))
        for seed in tqdm(seeds, desc="spawn_children: children", disable=disable, leave=False)
    ]
    spawn_parameters = flatten_parameters(point.module)
    return SpawnResult(point.step, last, spawn_parameters, torch.stack(children), seeds)
