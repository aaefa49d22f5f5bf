"""The lens step of the benchmark: why the network loses to the trees, dataset by dataset.

One lens job per dataset x split looks at the very models the score table compares: the
best-validation configuration of the lens's network (a TelescopingMLP model: ``paper_mlp``
under the paper protocol, else ``telescoping_mlp``) and of its trees model (``sklearn_gbt``
by default, as in the paper), chosen by validation score. It refits both with the fit jobs'
seeds and thread count, checks that the refit reproduces the test score in ``results.csv``
(``*_refit_diff``), refits the network with further seeds
(:attr:`~sktelescope.bench._scope.LensSettings.network_seeds`), and runs the paper's Case 2
protocol (:ref:`math-extremity`, :ref:`math-irregularity`):

1. irregularity of each test input relative to the training inputs
   (:func:`~sktelescope.lens.irregularity_score`: distance to the training centroid in the
   2-component PCA space of the standardised features the trees see);
2. mixed test sets of one size ``S`` on every dataset (``set_size``, 500 by default): the
   irregular pool is the 10% most irregular test inputs, or the ``S`` most irregular where
   10% of the split is fewer (a 4,000-point fold: 12.5%); for each proportion ``p`` in
   :data:`PROPORTIONS` a set mixes ``p * S`` of them with regular ones
   (:func:`~sktelescope.lens.irregular_test_sets`: nested sets). A split too small to hold
   ``S`` regular and ``S`` irregular points gets sets of its 10% pool instead, and says so
   (``set_size`` below ``set_size_target``): the verdict describes it but does not test it;
3. per ``p``: the kernel-extremity ratio ``R(p)`` of the network and of the trees, the
   network's loss (mean over seeds) and the trees' loss on that set (``loss``: MSE for
   regression, log-loss for classification), and the scale-free gap
   ``gap(p) = (L_NN(p) - L_GBT(p)) / L_GBT(0)``; its least-squares slope over ``p``
   (``gap_slope``) and :data:`BOOTSTRAP_REPLICATES` Poisson-bootstrap replicates of that
   slope over the split's test points (``gap_slope_boot``).

The network's ``R`` (``kernel="step"``, the paper's definition): a
:class:`~sktelescope.lens.KernelExtremityMonitor` attached to the refit itself (through the
pipeline's ``model__monitors`` fit parameter) sees every ``step_stride``-th optimizer step of
the very run whose predictions are scored: the batch-masked kernel rows scaled by the step's
learning rate and, for Adam/AdamW, the preconditioner the step applied; the denominator's
maximum runs over a random subset of the rows the network trained on (not its
early-stopping hold-out); the means over steps stop at the step whose parameters the model
keeps (``best_step_``). ``kernel="stage"`` is the cheaper plain tangent kernel at each
recorded stage. The trees' ``R`` uses each tree's leaf co-membership kernel (every tree is a
full-batch step with one learning rate, which cancels in the ratio).

The configurations and the lens settings are part of the row's key (:data:`LENS_KEY`): when
a larger budget changes a best configuration, or the settings change, the old row no longer
answers the question, and the job runs again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from sktelescope.bench._backends import job_environment
from sktelescope.bench._models import build_model, derive_seed, get_config
from sktelescope.bench._protocol import PRIMARY, SplitData, _full_proba, score_model
from sktelescope.bench._scope import NETWORK, LensSettings
from sktelescope.bench._store import error_text
from sktelescope.lens import (
    KernelExtremityMonitor,
    Observer,
    irregular_test_sets,
    irregularity_score,
    kernel_row_norms,
)
from sktelescope.trees import TreeTelescope

__all__ = [
    "BOOTSTRAP_REPLICATES",
    "LENS_COLUMNS",
    "LENS_KEY",
    "MEASURES",
    "NETWORK",
    "PROPORTIONS",
    "EveryKthStep",
    "LensJob",
    "extremity_ratios",
    "lens_row_start",
    "p_tag",
    "run_lens_job",
    "slope",
]

LENS_KEY = ("dataset", "split", "trees_model", "net_config", "trees_config", "lens_settings")
#: The irregular pool: at least this share of the test inputs with the highest irregularity.
IRREGULAR_FRACTION = 0.1
#: Shares of irregular points in the mixed test sets.
PROPORTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Poisson-bootstrap replicates of each split's gap slope over its test points.
BOOTSTRAP_REPLICATES = 200
#: Measured per proportion.
PER_P = ("net_ratio", "trees_ratio", "net_loss", "trees_loss", "gap")


def p_tag(p: float) -> str:
    """The column suffix of proportion ``p``.

    Examples
    --------
    >>> p_tag(0.25), p_tag(1.0)
    ('p025', 'p100')
    """
    return f"p{int(round(100 * p)):03d}"


def slope(values) -> np.ndarray:
    """Least-squares slope over :data:`PROPORTIONS` of each row (last axis).

    Parameters
    ----------
    values : array-like of shape (..., n_proportions)

    Returns
    -------
    slopes : ndarray of shape (...)
        NaN for a row with a NaN.

    Examples
    --------
    >>> slope([[0.0, 0.25, 0.5, 0.75, 1.0], [1.0, 1.0, 1.0, 1.0, np.nan]])
    array([ 1., nan])
    """
    y = np.asarray(values, dtype=np.float64)
    p = np.asarray(PROPORTIONS) - np.mean(PROPORTIONS)
    return (y - y.mean(axis=-1, keepdims=True)) @ p / (p @ p)


MEASURES = tuple(f"{m}_{p_tag(p)}" for m in PER_P for p in PROPORTIONS)
LENS_COLUMNS = (
    LENS_KEY
    + ("task", "status", "seed", "network", "loss", "kernel", "network_seeds")
    + ("n_train", "n_test", "set_size", "set_size_target", "irregular_pool")
    + ("irregularity_mean", "irregular_share", "kernel_steps")
    + ("net_test_score", "trees_test_score", "net_refit_diff", "trees_refit_diff")
    + MEASURES
    + ("gap_slope", "gap_slope_boot", "net_ratio_slope_per_seed")
    + ("lens_seconds", "note", "error")
)


@dataclass
class LensJob:
    """One lens measurement of ``(dataset, split)``: the split's data, the lens settings, the
    configurations to refit and the test scores ``results.csv`` holds for them.

    A configuration of ``-1`` means the model has no successful fit on this split: the job
    then gives an error row that says so.

    Examples
    --------
    >>> job = LensJob("d", 0, 0, None, LensSettings(), net_config=3, trees_config=0)
    >>> job.key
    ('d', 0, 'sklearn_gbt', 3, 0, 'telescoping_mlp|step|500|1|10|2000')
    """

    dataset: str
    split: int
    base_seed: int
    data: SplitData
    settings: LensSettings
    net_config: int
    trees_config: int
    table_scores: dict = field(default_factory=dict)
    quick: bool = False
    n_threads: int = 1

    @property
    def key(self) -> tuple:
        """The resume key (:data:`LENS_KEY`)."""
        s = self.settings
        return (self.dataset, self.split, s.trees, self.net_config, self.trees_config, s.key)

    @property
    def seed(self) -> int:
        """The seed of the mixed test sets, the kernels' training subset and the bootstrap."""
        return derive_seed(self.base_seed, self.dataset, self.split, "lens")


def run_lens_job(job: LensJob) -> dict:
    """Refit the split's best network and trees and measure the lens on mixed test sets.

    Never raises for a failure: it gives ``status="error"`` and the message. Raises
    :class:`KeyboardInterrupt` when a fit was interrupted (Ctrl-C).

    Returns
    -------
    dict
        One row of ``lens.csv`` (see :data:`LENS_COLUMNS`).

    Examples
    --------
    >>> from sktelescope.bench._protocol import Protocol, split_data
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> data = split_data(load_sklearn_dataset("diabetes"), 0, Protocol(n_splits=1))
    >>> row = run_lens_job(LensJob("sklearn:diabetes", 0, 0, data, LensSettings(), 0, 0,
    ...                            quick=True))  # doctest: +SKIP
    >>> row["status"], row["gap_p000"]  # doctest: +SKIP
    ('ok', 0.2...)
    """
    row = lens_row_start(job)
    start = time.perf_counter()
    try:
        _check_configs(job)
        with job_environment(job.n_threads):
            row.update(_measure(job))
    except Exception as exc:  # noqa: BLE001 - a failing lens is a result, not a crash
        row.update(status="error", error=error_text(exc))
    row["lens_seconds"] = time.perf_counter() - start
    return row


def lens_row_start(job: LensJob) -> dict:
    """The cells of a lens job's row known before it runs (its key, task, seed, settings,
    sizes): what a resumed run checks a row of ``lens.csv`` against.

    Examples
    --------
    >>> from sktelescope.bench._protocol import Protocol, split_data
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> data = split_data(load_sklearn_dataset("diabetes"), 0, Protocol(n_splits=1))
    >>> lens_row_start(LensJob("sklearn:diabetes", 0, 0, data, LensSettings(), 1, 0))["n_test"]
    88
    """
    d, s = job.data, job.settings
    row = dict(zip(LENS_KEY, job.key))
    row.update(task=d.task, status="ok", seed=job.seed, network=s.network,
               loss="mse" if d.task == "regression" else "log_loss", kernel=s.kernel,
               network_seeds=s.network_seeds, n_train=len(d.y_train), n_test=len(d.y_test),
               set_size_target=s.set_size)  # fmt: skip
    return row


def _check_configs(job: LensJob) -> None:
    for model, config in ((job.settings.network, job.net_config),
                          (job.settings.trees, job.trees_config)):  # fmt: skip
        if config < 0:
            raise ValueError(
                f"{model} has no successful fit on this split (see results.csv), so there is "
                "no best configuration to look at; rerun with --retry-errors to refit it."
            )


def _pipeline(model: str, config: int, job: LensJob, seed_index: int = 0):
    """The unfitted pipeline of fit job ``(dataset, split, model, config)``; ``seed_index``
    > 0 gives the same configuration with another seed."""
    d = job.data
    params = get_config(model, config, job.base_seed, job.quick, dataset=job.dataset,
                        split=job.split)  # fmt: skip
    seed = derive_seed(job.base_seed, job.dataset, job.split, config)
    if seed_index:
        seed = derive_seed(seed, "lens-seed", seed_index)
    return build_model(model, d.task, params, d.categorical_columns, seed, job.n_threads)


def _features(pipeline, X) -> np.ndarray:
    """The numeric inputs the pipeline's last step sees."""
    return np.asarray(pipeline[:-1].transform(X), dtype=np.float64)


def _measure(job: LensJob) -> dict:
    d, s = job.data, job.settings
    trees = _pipeline(s.trees, job.trees_config, job).fit(d.X_train, d.y_train)
    sets = _mixed_sets(job, trees)
    nets = [_network_run(job, i, sets) for i in range(s.network_seeds)]
    out, notes = _refit_check(job, nets[0].pipeline, trees)
    out.update(sets.summary, kernel_steps=nets[0].kernel_steps)
    trees_ratio, note = _trees_ratios(job, trees, sets)
    notes.append(note)
    out.update(_per_p_measures(job, nets, trees, trees_ratio, sets))
    out["note"] = "; ".join(dict.fromkeys(n for n in notes if n))
    return out


def _refit_check(job: LensJob, net, trees) -> tuple[dict, list[str]]:
    """Test scores of the refits and their differences from ``results.csv``."""
    d, metric = job.data, PRIMARY[job.data.task]
    out, notes = {}, []
    models = (("net", job.settings.network, net), ("trees", job.settings.trees, trees))
    for prefix, model, est in models:
        score = score_model(est, d.X_test, d.y_test, d.task, d.n_classes)[metric]
        diff = score - job.table_scores.get(model, math.nan)
        out[f"{prefix}_test_score"], out[f"{prefix}_refit_diff"] = score, diff
        if abs(diff) > 1e-9:  # NaN (no table score to compare with) is no difference
            notes.append(f"{model} refit test {metric} differs from results.csv by {diff:.3g}")
    return out, notes


@dataclass
class _MixedSets:
    """The mixed test sets of one split, as rows of the test split."""

    rows: np.ndarray  # the union of every set's rows, sorted
    groups: list  # per proportion: positions of its rows in ``rows``
    train_rows: np.ndarray  # the training subset: kernel columns and denominator (stage, trees)
    summary: dict


def set_size(n_test: int, target: int) -> tuple[int, int]:
    """The size of a split's mixed test sets and of its irregular pool.

    ``target`` when the split can hold ``target`` irregular and ``target`` regular points
    (the pool is then the larger of 10% of the split and ``target``), else the 10% pool.

    Examples
    --------
    >>> set_size(4000, 500), set_size(10000, 500), set_size(600, 500)
    ((500, 500), (500, 1000), (60, 60))
    """
    tenth = max(int(round(IRREGULAR_FRACTION * n_test)), 1)
    pool = max(tenth, target)
    if n_test - pool >= target:
        return target, pool
    return tenth, tenth


def _mixed_sets(job: LensJob, trees) -> _MixedSets:
    d = job.data
    Xt_train, Xt_test = _features(trees, d.X_train), _features(trees, d.X_test)
    score_train = irregularity_score(Xt_train, Xt_train)
    scores = irregularity_score(Xt_train, Xt_test)
    size, pool = set_size(len(scores), job.settings.set_size)
    sets = irregular_test_sets(np.arange(len(scores)), d.y_test, scores, PROPORTIONS, size,
                               job.seed, pool / len(scores))  # fmt: skip
    rows = np.unique(np.concatenate([s.indices for s in sets]))
    n_train = len(d.y_train)
    train_rows = np.arange(n_train)
    if n_train > job.settings.max_train:
        rng = check_random_state(job.seed)
        train_rows = np.sort(rng.choice(n_train, job.settings.max_train, replace=False))
    summary = {
        "set_size": size,
        "irregular_pool": pool,
        "irregularity_mean": float(scores.mean()),
        "irregular_share": float(np.mean(scores > np.quantile(score_train, 0.9))),
    }
    groups = [np.searchsorted(rows, s.indices) for s in sets]
    return _MixedSets(rows, groups, train_rows, summary)


class EveryKthStep(Observer):
    """Forward every ``k``-th optimizer step (the 1st, the ``k+1``-th, ...) to ``monitor``;
    the other hooks always.

    Examples
    --------
    >>> import numpy as np
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> mon = KernelExtremityMonitor(X[:5])
    >>> _ = TelescopingMLPRegressor((8,), max_iter=3, batch_size=10, random_state=0,
    ...                             early_stopping=False).fit(X, X[:, 0],
    ...                                                       monitors=[EveryKthStep(mon, 5)])
    >>> mon.steps_.tolist()
    [1, 6, 11]
    """

    wants_previous_params = True

    def __init__(self, monitor, k: int) -> None:
        self.monitor, self.k = monitor, int(k)

    def on_train_begin(self, trainer) -> None:
        self._seen = 0
        self.monitor.on_train_begin(trainer)

    def on_step(self, step) -> None:
        if self._seen % self.k == 0:
            self.monitor.on_step(step)
        self._seen += 1

    def on_epoch_end(self, epoch) -> None:
        self.monitor.on_epoch_end(epoch)

    def on_train_end(self, trainer, result) -> None:
        self.monitor.on_train_end(trainer, result)


@dataclass
class _NetworkRun:
    pipeline: object
    ratios: np.ndarray  # R per mixed set
    kernel_steps: int  # steps (or stages) in R's means


def _network_run(job: LensJob, seed_index: int, sets: _MixedSets) -> _NetworkRun:
    """Refit the best network (seed ``seed_index``) and measure its R on every mixed set."""
    d, s = job.data, job.settings
    pipe = _pipeline(s.network, job.net_config, job, seed_index)
    X_rows = d.X_test.iloc[sets.rows]
    if s.kernel == "stage":
        pipe.fit(d.X_train, d.y_train)
        Xn_train, Xn_rows = _features(pipe, d.X_train), _features(pipe, X_rows)
        ratios = extremity_ratios(pipe[-1], Xn_train[sets.train_rows], Xn_rows, sets.groups)
        return _NetworkRun(pipe, ratios, pipe[-1].n_stages_)
    Xn_rows = np.asarray(clone(pipe[:-1]).fit(d.X_train, d.y_train).transform(X_rows))
    preconditioned = pipe[-1].get_params()["optimizer"] in ("adam", "adamw")
    monitor = KernelExtremityMonitor(
        Xn_rows,
        sets.groups,
        max_train_samples=s.max_train,
        random_state=job.seed,
        preconditioned=preconditioned,
    )
    pipe.fit(d.X_train, d.y_train, model__monitors=[EveryKthStep(monitor, s.step_stride)])
    if not np.allclose(_features(pipe, X_rows), Xn_rows):
        raise RuntimeError("The pipeline's preprocessing is not deterministic: the monitor's "
                           "inputs differ from the fitted pipeline's.")  # fmt: skip
    keep = monitor.steps_ <= pipe[-1].best_step_
    keep[0] = True  # the first step, at least
    ratios = monitor.test_max_[keep].mean(axis=0) / monitor.train_max_[keep].mean()
    return _NetworkRun(pipe, ratios, int(keep.sum()))


def extremity_ratios(model, X_train: np.ndarray, X_rows: np.ndarray, groups) -> np.ndarray:
    """The kernel-extremity ratio ``R`` of each group of rows of ``X_rows``, from stage kernels.

    The same number as ``kernel_extremity_ratio(model, X_train, X_test=X_rows[group],
    max_train_samples=None)`` for each group, with every stage's kernel computed once for the
    union of the groups (and the denominator once). A network's kernel columns and
    denominator are the rows of ``X_train`` it trained on.

    Parameters
    ----------
    model : fitted TelescopingMLP* estimator or TreeTelescope
    X_train : ndarray of shape (n_train, n_features)
        The kernel's columns and the denominator's rows (training inputs).
    X_rows : ndarray of shape (n_rows, n_features)
    groups : list of index arrays into ``X_rows``

    Returns
    -------
    ratios : ndarray of shape (len(groups),)

    Examples
    --------
    >>> import numpy as np
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(60, 3))
    >>> est = TelescopingMLPRegressor((8,), max_iter=2, random_state=0).fit(X, X[:, 0])
    >>> extremity_ratios(est, X, 3 * X[:10], [np.arange(5), np.arange(10)]).shape
    (2,)
    """
    run = getattr(model, "run_", None)
    if run is not None:  # the rows the network trained on: not its early-stopping hold-out
        X_train = X_train[run.trained_on(run.validate_features(X_train))]
    test_max = np.empty((len(model.stages_), len(groups)))
    train_max = np.empty(len(model.stages_))
    for k, stage in enumerate(model.stages_):
        norms = kernel_row_norms(stage, X_rows, X_train)
        test_max[k] = [norms[g].max() for g in groups]
        train_max[k] = kernel_row_norms(stage, X_train, X_train).max()
    return test_max.mean(axis=0) / train_max.mean()


def _trees_ratios(job: LensJob, trees, sets: _MixedSets) -> tuple[np.ndarray, str]:
    """The trees' ``R(p)``, or NaN and a note saying why they were not measured."""
    d, nan = job.data, np.full(len(PROPORTIONS), np.nan)
    if d.task == "multiclass":
        return nan, f"trees R not measured: TreeTelescope is binary-only ({d.n_classes} classes)"
    Xt_train = _features(trees, d.X_train)
    X_rows = _features(trees, d.X_test.iloc[sets.rows])
    try:
        telescope = TreeTelescope(trees[-1], Xt_train, d.y_train)
        ratios = extremity_ratios(telescope, Xt_train[sets.train_rows], X_rows, sets.groups)
    except (ValueError, TypeError, NotImplementedError) as exc:
        return nan, f"trees R not measured: {type(exc).__name__}: {exc}"[:300]
    return ratios, ""


def _point_losses(est, X_rows, y_rows: np.ndarray, d: SplitData) -> np.ndarray:
    """Per-row squared error (regression) or log-loss (classification) of ``est``."""
    if d.task == "regression":
        pred = np.asarray(est.predict(X_rows), dtype=np.float64).ravel()
        return (y_rows - pred) ** 2
    proba = np.clip(_full_proba(est, X_rows, d.n_classes), 1e-15, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    return -np.log(proba[np.arange(len(y_rows)), y_rows.astype(int)])


def _per_p_measures(job, nets, trees, trees_ratio, sets: _MixedSets) -> dict:
    """Every per-proportion measure, the gap slope and its bootstrap replicates."""
    d = job.data
    X_rows, y_rows = d.X_test.iloc[sets.rows], d.y_test[sets.rows]
    net_points = np.mean([_point_losses(n.pipeline, X_rows, y_rows, d) for n in nets], axis=0)
    trees_points = _point_losses(trees, X_rows, y_rows, d)
    out = {
        "net_ratio": np.mean([n.ratios for n in nets], axis=0),
        "trees_ratio": trees_ratio,
        "net_loss": np.array([net_points[g].mean() for g in sets.groups]),
        "trees_loss": np.array([trees_points[g].mean() for g in sets.groups]),
    }
    out["gap"] = (out["net_loss"] - out["trees_loss"]) / out["trees_loss"][0]
    row = {f"{m}_{p_tag(p)}": float(out[m][i]) for m in PER_P for i, p in enumerate(PROPORTIONS)}
    boot = bootstrap_gap_slopes(net_points - trees_points, trees_points, sets.groups, job.seed)
    row["gap_slope"] = float(slope(out["gap"]))
    row["gap_slope_boot"] = json.dumps([float(f"{b:.5g}") for b in boot])
    row["net_ratio_slope_per_seed"] = json.dumps(
        [float(f"{b:.5g}") for b in slope(np.array([n.ratios for n in nets]))]
    )
    return row


def bootstrap_gap_slopes(
    diff: np.ndarray, trees: np.ndarray, groups, seed: int, n: int = BOOTSTRAP_REPLICATES
) -> np.ndarray:
    """Poisson-bootstrap replicates of a split's gap slope over its test points.

    Each replicate weighs every row by an independent Poisson(1) count and recomputes the
    weighted mean loss difference of each set, divided by the trees' weighted mean loss on
    the ``p = 0`` set, and its slope over ``p``.

    Parameters
    ----------
    diff, trees : ndarray of shape (n_rows,)
        Per-row loss difference (network minus trees) and the trees' loss.
    groups : list of index arrays
        The rows of each mixed set, in :data:`PROPORTIONS` order.
    seed : int
    n : int
        Replicates.

    Returns
    -------
    replicates : ndarray of shape (n,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> groups = [np.arange(i * 20, i * 20 + 100) for i in range(5)]
    >>> boot = bootstrap_gap_slopes(rng.normal(size=180), np.ones(180), groups, 0)
    >>> boot.shape, bool(abs(boot.mean()) < 0.2)
    ((200,), True)
    """
    weights = np.random.default_rng(seed).poisson(1.0, size=(n, len(diff))).astype(np.float64)
    sums = np.stack([weights[:, g] @ diff[g] for g in groups], axis=1)
    counts = np.stack([weights[:, g].sum(axis=1) for g in groups], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = (weights[:, groups[0]] @ trees[groups[0]]) / counts[:, 0]
        return slope(sums / counts / base[:, None])
