"""The lens step of the benchmark: why the network loses to the trees, dataset by dataset.

One lens job per dataset x split looks at the very models the score table compares: the
best-validation configuration of the project's network (``telescoping_mlp``: the lens needs
its stages) and of the run's lens trees model (``sklearn_gbt`` by default, as in the paper).
It refits both with the fit jobs' seeds (``derive_seed(seed, dataset, split, config)``) and
thread count, checks that the refit reproduces the test score in ``results.csv``
(``*_refit_diff``), and runs the paper's Case 2 protocol (:ref:`math-extremity`,
:ref:`math-relative-gap`, :ref:`math-irregularity`):

1. irregularity of each test input relative to the training inputs
   (:func:`~sktelescope.lens.irregularity_score`: distance to the training centroid in the
   2-component PCA space of the standardised features the trees see);
2. the 10% most irregular test inputs form the irregular pool; for each proportion ``p`` in
   :data:`PROPORTIONS` a test set of one size mixes ``p * size`` of them with regular ones
   (:func:`~sktelescope.lens.irregular_test_sets`: nested sets, ``size`` = the pool's size,
   at most ``lens_max_test``);
3. per ``p``: the kernel-extremity ratio ``R(p)`` of the network and of the trees (per-stage
   kernels against a random subset of ``lens_max_train`` training rows, as
   :func:`~sktelescope.lens.kernel_extremity_ratio` computes it), the network's and the trees'
   loss on that set (``loss``: MSE for regression, log-loss for classification), their
   difference ``loss_diff = net_loss - trees_loss`` and the paper's relative gap (§2e)
   ``gap(p) = loss_diff(p) / loss_diff(0)`` (1 at ``p = 0``).

When the denominator ``loss_diff(0)`` is not clearly positive (the network is as good as the
trees on regular inputs, or within :data:`GAP_TINY` of the trees' loss), the ratio means
nothing: ``gap_*`` is NaN and ``gap_flag`` says why; ``loss_diff_*`` is still there.

The same measures of the default configurations (configuration 0 of both) are in the
``default_*`` columns (copied when the best configurations are the defaults). TreeTelescope
handles binary classifiers and regressors only: on multiclass data the trees' ratios are NaN
and ``note`` says why; everything else is measured.

The configurations are part of the row's key (:data:`LENS_KEY`): when a larger budget changes
the best configuration, the old row no longer answers the question, and the job runs again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics
from sklearn.utils import check_random_state

from sktelescope.bench._backends import job_environment
from sktelescope.bench._models import build_model, derive_seed, get_config
from sktelescope.bench._protocol import PRIMARY, SplitData, _full_proba, score_model
from sktelescope.bench._store import error_text
from sktelescope.lens import irregular_test_sets, irregularity_score, kernel_row_norms
from sktelescope.trees import TreeTelescope

__all__ = [
    "LENS_COLUMNS",
    "LENS_KEY",
    "MEASURES",
    "PROPORTIONS",
    "LensJob",
    "extremity_ratios",
    "lens_row_start",
    "pair_columns",
    "p_tag",
    "relative_gap",
    "run_lens_job",
]

LENS_KEY = ("dataset", "split", "trees_model", "net_config", "trees_config")
#: Caps on the rows whose kernels are computed (train: kernel columns and denominator).
LENS_MAX_TRAIN, LENS_MAX_TEST = 2_000, 1_000
#: The irregular pool: this share of the test inputs with the highest irregularity.
IRREGULAR_FRACTION = 0.1
#: Shares of irregular points in the mixed test sets.
PROPORTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: ``loss_diff(0)`` must exceed this share of the trees' loss at ``p = 0`` for a gap ratio.
GAP_TINY = 0.01
NETWORK = "telescoping_mlp"
#: Measured per proportion, for each pair of models.
PER_P = ("net_ratio", "trees_ratio", "net_loss", "trees_loss", "loss_diff", "gap")


def p_tag(p: float) -> str:
    """The column suffix of proportion ``p``.

    Examples
    --------
    >>> p_tag(0.25), p_tag(1.0)
    ('p025', 'p100')
    """
    return f"p{int(round(100 * p)):03d}"


def pair_columns(prefix: str = "") -> tuple[str, ...]:
    """The columns of one pair of models: every :data:`PER_P` measure per proportion, then
    the gap flag.

    Examples
    --------
    >>> pair_columns("default_")[:2], pair_columns()[-1]
    (('default_net_ratio_p000', 'default_net_ratio_p025'), 'gap_flag')
    """
    per_p = tuple(f"{prefix}{m}_{p_tag(p)}" for m in PER_P for p in PROPORTIONS)
    return per_p + (f"{prefix}gap_flag",)


MEASURES = pair_columns()
DEFAULT_MEASURES = pair_columns("default_")
LENS_COLUMNS = (
    LENS_KEY
    + ("task", "status", "seed", "network", "loss", "n_train", "n_test")
    + ("lens_max_train", "lens_max_test", "n_irregular", "set_size")
    + ("irregularity_mean", "irregular_share")
    + ("net_test_score", "trees_test_score", "net_refit_diff", "trees_refit_diff")
    + MEASURES
    + DEFAULT_MEASURES
    + ("lens_seconds", "note", "error")
)


@dataclass
class LensJob:
    """One lens measurement of ``(dataset, split)``: the split's data, the configurations to
    refit and the test scores ``results.csv`` holds for them.

    A configuration of ``-1`` means the model has no successful fit on this split: the job
    then gives an error row that says so.

    Examples
    --------
    >>> job = LensJob("d", 0, 0, None, "sklearn_gbt", net_config=3, trees_config=0)
    >>> job.key
    ('d', 0, 'sklearn_gbt', 3, 0)
    """

    dataset: str
    split: int
    base_seed: int
    data: SplitData
    trees_model: str
    net_config: int
    trees_config: int
    table_scores: dict = field(default_factory=dict)
    quick: bool = False
    n_threads: int = 1
    max_train: int = LENS_MAX_TRAIN
    max_test: int = LENS_MAX_TEST

    @property
    def key(self) -> tuple:
        """The resume key (:data:`LENS_KEY`)."""
        return (self.dataset, self.split, self.trees_model, self.net_config, self.trees_config)

    @property
    def seed(self) -> int:
        """The seed of the mixed test sets and of the kernels' training subset."""
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
    >>> row = run_lens_job(LensJob("sklearn:diabetes", 0, 0, data, "sklearn_gbt", 0, 0,
    ...                            quick=True))  # doctest: +SKIP
    >>> row["status"], row["gap_p000"]  # doctest: +SKIP
    ('ok', 1.0)
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
    """The cells of a lens job's row known before it runs (its key, task, seed, sizes).

    Examples
    --------
    >>> from sktelescope.bench._protocol import Protocol, split_data
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> data = split_data(load_sklearn_dataset("diabetes"), 0, Protocol(n_splits=1))
    >>> lens_row_start(LensJob("sklearn:diabetes", 0, 0, data, "hgb", 1, 0))["n_test"]
    88
    """
    d = job.data
    row = dict(zip(LENS_KEY, job.key))
    row.update(task=d.task, status="ok", seed=job.seed, network=NETWORK,
               loss="mse" if d.task == "regression" else "log_loss",
               n_train=len(d.y_train), n_test=len(d.y_test),
               lens_max_train=job.max_train, lens_max_test=job.max_test)  # fmt: skip
    return row


def _check_configs(job: LensJob) -> None:
    for model, config in ((NETWORK, job.net_config), (job.trees_model, job.trees_config)):
        if config < 0:
            raise ValueError(
                f"{model} has no successful fit on this split (see results.csv), so there is "
                "no best configuration to look at; rerun with --retry-errors to refit it."
            )


def _refit(model: str, config: int, job: LensJob):
    """The pipeline of fit job ``(dataset, split, model, config)``, refitted as it ran."""
    d = job.data
    params = get_config(model, config, job.base_seed, job.quick)
    seed = derive_seed(job.base_seed, job.dataset, job.split, config)
    est = build_model(model, d.task, params, d.categorical_columns, seed, job.n_threads)
    return est.fit(d.X_train, d.y_train)


def _features(pipeline, X) -> np.ndarray:
    """The numeric inputs the pipeline's last step sees."""
    return np.asarray(pipeline[:-1].transform(X), dtype=np.float64)


def _measure(job: LensJob) -> dict:
    net = _refit(NETWORK, job.net_config, job)
    trees = _refit(job.trees_model, job.trees_config, job)
    out, notes = _refit_check(job, net, trees)
    sets = _mixed_sets(job, trees)
    out.update(sets.summary)
    tuned, note = _pair_measures(job, net, trees, sets)
    out.update(tuned)
    notes.append(note)
    if job.net_config == job.trees_config == 0:
        out.update({f"default_{k}": v for k, v in tuned.items()})
    else:
        net0 = net if job.net_config == 0 else _refit(NETWORK, 0, job)
        trees0 = trees if job.trees_config == 0 else _refit(job.trees_model, 0, job)
        default, _ = _pair_measures(job, net0, trees0, sets)
        out.update({f"default_{k}": v for k, v in default.items()})
    out["note"] = "; ".join(dict.fromkeys(n for n in notes if n))
    return out


def _refit_check(job: LensJob, net, trees) -> tuple[dict, list[str]]:
    """Test scores of the refits and their differences from ``results.csv``."""
    d, metric = job.data, PRIMARY[job.data.task]
    out, notes = {}, []
    for prefix, model, est in (("net", NETWORK, net), ("trees", job.trees_model, trees)):
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
    train_rows: np.ndarray  # the training subset: kernel columns and denominator
    summary: dict


def _mixed_sets(job: LensJob, trees) -> _MixedSets:
    d = job.data
    Xt_train, Xt_test = _features(trees, d.X_train), _features(trees, d.X_test)
    score_train = irregularity_score(Xt_train, Xt_train)
    scores = irregularity_score(Xt_train, Xt_test)
    n_irregular = max(int(round(IRREGULAR_FRACTION * len(scores))), 1)
    size = min(n_irregular, job.max_test)
    sets = irregular_test_sets(np.arange(len(scores)), d.y_test, scores, PROPORTIONS, size,
                               job.seed, IRREGULAR_FRACTION)  # fmt: skip
    rows = np.unique(np.concatenate([s.indices for s in sets]))
    n_train = len(d.y_train)
    train_rows = np.arange(n_train)
    if n_train > job.max_train:  # as kernel_extremity_ratio(max_train_samples=...) draws it
        rng = check_random_state(job.seed)
        train_rows = np.sort(rng.choice(n_train, job.max_train, replace=False))
    summary = {
        "n_irregular": n_irregular,
        "set_size": size,
        "irregularity_mean": float(scores.mean()),
        "irregular_share": float(np.mean(scores > np.quantile(score_train, 0.9))),
    }
    groups = [np.searchsorted(rows, s.indices) for s in sets]
    return _MixedSets(rows, groups, train_rows, summary)


def _pair_measures(job: LensJob, net, trees, sets: _MixedSets) -> tuple[dict, str]:
    """Every per-proportion measure of one network-trees pair, and a note."""
    d = job.data
    X_rows, y_rows = d.X_test.iloc[sets.rows], d.y_test[sets.rows]
    out = {}
    Xn_train, Xn_rows = _features(net, d.X_train), _features(net, X_rows)
    out["net_ratio"] = extremity_ratios(net[-1], Xn_train[sets.train_rows], Xn_rows, sets.groups)
    out["trees_ratio"], note = _trees_ratios(job, trees, sets, X_rows)
    out["net_loss"] = _losses(net, X_rows, y_rows, sets.groups, d)
    out["trees_loss"] = _losses(trees, X_rows, y_rows, sets.groups, d)
    out["loss_diff"] = out["net_loss"] - out["trees_loss"]
    out["gap"], flag = relative_gap(out["net_loss"], out["trees_loss"])
    row = {f"{m}_{p_tag(p)}": float(out[m][i]) for m in PER_P for i, p in enumerate(PROPORTIONS)}
    row["gap_flag"] = flag
    return row, note


def extremity_ratios(model, X_train: np.ndarray, X_rows: np.ndarray, groups) -> np.ndarray:
    """The kernel-extremity ratio ``R`` of each group of rows of ``X_rows``.

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


def _trees_ratios(job: LensJob, trees, sets: _MixedSets, X_rows) -> tuple[np.ndarray, str]:
    """The trees' ``R(p)``, or NaN and a note saying why they were not measured."""
    d, nan = job.data, np.full(len(PROPORTIONS), np.nan)
    if d.task == "multiclass":
        return nan, f"trees R not measured: TreeTelescope is binary-only ({d.n_classes} classes)"
    Xt_train = _features(trees, d.X_train)
    try:
        telescope = TreeTelescope(trees[-1], Xt_train, d.y_train)
        ratios = extremity_ratios(telescope, Xt_train[sets.train_rows],
                                  _features(trees, X_rows), sets.groups)  # fmt: skip
    except (ValueError, TypeError, NotImplementedError) as exc:
        return nan, f"trees R not measured: {type(exc).__name__}: {exc}"[:300]
    return ratios, ""


def _losses(est, X_rows, y_rows: np.ndarray, groups, d: SplitData) -> np.ndarray:
    """MSE (regression) or log-loss (classification) of ``est`` on each group of rows."""
    if d.task == "regression":
        pred = np.asarray(est.predict(X_rows), dtype=np.float64).ravel()
        return np.array([np.mean((y_rows[g] - pred[g]) ** 2) for g in groups])
    proba = np.clip(_full_proba(est, X_rows, d.n_classes), 1e-15, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    labels = list(range(d.n_classes))
    return np.array([metrics.log_loss(y_rows[g], proba[g], labels=labels) for g in groups])


def relative_gap(net_loss, trees_loss, tiny: float = GAP_TINY) -> tuple[np.ndarray, str]:
    """The paper's relative gap ``(L_NN(p) - L_GBT(p)) / (L_NN(0) - L_GBT(0))`` (§2e), and a
    flag when its denominator is not clearly positive.

    Parameters
    ----------
    net_loss, trees_loss : array-like of shape (n_proportions,)
        Losses per proportion; the first entry is ``p = 0``.
    tiny : float, default=0.01
        The denominator must exceed ``tiny * trees_loss[0]``.

    Returns
    -------
    gap : ndarray of shape (n_proportions,)
        NaN everywhere when flagged.
    flag : str
        ``""``; ``"network_not_worse"`` (denominator <= 0: the network is at least as good as
        the trees on regular inputs); ``"denominator_tiny"`` (the network is worse by less
        than ``tiny`` of the trees' loss: the ratio would magnify noise).

    Examples
    --------
    >>> relative_gap([2.0, 3.0], [1.0, 1.0])
    (array([1., 2.]), '')
    >>> relative_gap([1.0, 3.0], [1.0, 1.0])[1]
    'network_not_worse'
    """
    diff = np.asarray(net_loss, dtype=np.float64) - np.asarray(trees_loss, dtype=np.float64)
    denominator = diff[0]
    if not denominator > 0:
        return np.full(diff.shape, np.nan), "network_not_worse"
    if denominator <= tiny * float(trees_loss[0]):
        return np.full(diff.shape, np.nan), "denominator_tiny"
    return diff / denominator, ""
