"""The lens step of the benchmark: why the network loses to the trees, dataset by dataset.

Per dataset x split, one lens job fits the default configuration of the project's network
(``telescoping_mlp``) and of a trees model (``xgboost`` when installed, else ``hgb``) on the
split's training rows, with the same seeds as the benchmark's configuration-0 fits, and records
(PAPER.md §2d, §2f, §3 Case 2):

- ``irregularity_mean``: mean irregularity score of the test inputs relative to the training
  inputs (distance to the training centroid in 2-component PCA space of the standardised inputs
  the trees saw: one-hot categoricals, raw numeric columns);
- ``irregular_share``: share of test inputs more irregular than the training inputs' 90%
  quantile (0.1 when test and train are alike);
- ``net_ratio`` / ``trees_ratio``: kernel-extremity ratio R of the network / the trees on the
  test inputs, and ``*_irregular`` on the most irregular 10% of them (the irregular pool);
- ``net_default_score`` / ``trees_default_score`` (and ``*_irregular``): their primary test
  score (R², accuracy) on the whole test split and on the irregular pool.

Kernels run on at most ``lens_max_train`` training rows (a random subset: the kernel's columns
and the denominator's maximum) and ``lens_max_test`` test rows; both caps are in every row.
TreeTelescope handles binary classifiers and regressors only: on multiclass data the trees'
ratios are NaN and ``note`` says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from sktelescope.bench._backends import job_environment
from sktelescope.bench._models import build_model, derive_seed, get_config, get_model
from sktelescope.bench._protocol import PRIMARY, SplitData, score_model
from sktelescope.bench._store import error_text

__all__ = ["LENS_COLUMNS", "LENS_KEY", "LensJob", "lens_trees_model", "run_lens_job"]

LENS_KEY = ("dataset", "split")
#: Caps on the rows whose kernels are computed (train: kernel columns and denominator).
LENS_MAX_TRAIN, LENS_MAX_TEST = 2_000, 1_000
#: The irregular pool: this share of the test inputs with the highest irregularity.
IRREGULAR_FRACTION = 0.1
NETWORK = "telescoping_mlp"
MEASURES = (
    "irregularity_mean",
    "irregular_share",
    "net_ratio",
    "net_ratio_irregular",
    "trees_ratio",
    "trees_ratio_irregular",
    "net_default_score",
    "net_default_score_irregular",
    "trees_default_score",
    "trees_default_score_irregular",
)
LENS_COLUMNS = (
    LENS_KEY
    + ("task", "status", "seed", "network", "trees_model", "n_train", "n_test")
    + ("lens_max_train", "lens_max_test", "n_irregular")
    + MEASURES
    + ("lens_seconds", "note", "error")
)


@dataclass
class LensJob:
    """One lens measurement: ``(dataset, split)`` with the split's data and seed."""

    dataset: str
    split: int
    seed: int
    data: SplitData
    quick: bool = False
    n_threads: int | None = 1
    max_train: int = LENS_MAX_TRAIN
    max_test: int = LENS_MAX_TEST

    @property
    def key(self) -> tuple:
        """The resume key."""
        return (self.dataset, self.split)


def lens_trees_model() -> str:
    """The trees model the lens looks at: ``xgboost`` when installed, else ``hgb``.

    Examples
    --------
    >>> lens_trees_model() in ("xgboost", "hgb")
    True
    """
    return "xgboost" if get_model("xgboost").is_available() else "hgb"


def run_lens_job(job: LensJob) -> dict:
    """Fit the default network and trees on one split and measure the lens.

    Never raises for a failure: it gives ``status="error"`` and the message. Raises
    :class:`KeyboardInterrupt` when a fit was interrupted (Ctrl-C).

    Returns
    -------
    dict
        One row of ``lens.csv`` (see :data:`LENS_COLUMNS`).
    """
    d = job.data
    row = {
        "dataset": job.dataset,
        "split": job.split,
        "task": d.task,
        "status": "ok",
        "seed": job.seed,
        "network": NETWORK,
        "trees_model": lens_trees_model(),
        "n_train": len(d.y_train),
        "n_test": len(d.y_test),
        "lens_max_train": job.max_train,
        "lens_max_test": job.max_test,
    }
    start = time.perf_counter()
    try:
        with job_environment(job.n_threads):
            row.update(_measure(job, row["trees_model"]))
    except Exception as exc:  # noqa: BLE001 - a failing lens is a result, not a crash
        row.update(status="error", error=error_text(exc))
    row["lens_seconds"] = time.perf_counter() - start
    return row


def _fit(model: str, job: LensJob):
    d = job.data
    params = get_config(model, 0, quick=job.quick)
    threads = job.n_threads or 1
    est = build_model(model, d.task, params, d.categorical_columns, job.seed, threads)
    return est.fit(d.X_train, d.y_train)


def _features(pipeline, X) -> np.ndarray:
    """The numeric inputs the pipeline's last step sees."""
    return np.asarray(pipeline[:-1].transform(X), dtype=np.float64)


def _measure(job: LensJob, trees_name: str) -> dict:
    from sktelescope.lens import irregularity_score

    d = job.data
    rng = np.random.default_rng(derive_seed(job.seed, "lens"))
    net, trees = _fit(NETWORK, job), _fit(trees_name, job)
    Xt_train, Xt_test = _features(trees, d.X_train), _features(trees, d.X_test)
    score_train = irregularity_score(Xt_train, Xt_train)
    score_test = irregularity_score(Xt_train, Xt_test)
    n_irregular = max(int(round(IRREGULAR_FRACTION * len(score_test))), 1)
    irregular = np.argsort(-score_test, kind="stable")[: min(n_irregular, job.max_test)]
    rows = {
        "train": _subset(rng, len(d.y_train), job.max_train),
        "test": _subset(rng, len(d.y_test), job.max_test),
        "irregular": np.sort(irregular),
    }
    out = {
        "n_irregular": len(irregular),
        "irregularity_mean": float(score_test.mean()),
        "irregular_share": float(np.mean(score_test > np.quantile(score_train, 0.9))),
    }
    out.update(_scores("net", net, d, rows["irregular"]))
    out.update(_scores("trees", trees, d, rows["irregular"]))
    Xn_train, Xn_test = _features(net, d.X_train), _features(net, d.X_test)
    out.update(_ratios("net", net[-1], Xn_train[rows["train"]], Xn_test, rows))
    note = _trees_ratios(out, trees, d, Xt_train, Xt_test, rows)
    if note:
        out["note"] = note
    return out


def _subset(rng: np.random.Generator, n: int, cap: int) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(rng.choice(n, cap, replace=False))


def _scores(prefix: str, est, d: SplitData, irregular: np.ndarray) -> dict:
    metric = PRIMARY[d.task]
    full = score_model(est, d.X_test, d.y_test, d.task, d.n_classes)[metric]
    X_irr, y_irr = d.X_test.iloc[irregular], d.y_test[irregular]
    irr = score_model(est, X_irr, y_irr, d.task, d.n_classes)[metric]
    return {f"{prefix}_default_score": full, f"{prefix}_default_score_irregular": irr}


def _ratios(prefix: str, model, X_train: np.ndarray, X_test: np.ndarray, rows: dict) -> dict:
    """R on the test subset and on the irregular pool, as
    :func:`~sktelescope.lens.extremity.kernel_extremity_ratio` computes it, with the
    denominator (training rows ``X_train``, also the network kernel's columns) computed once."""
    from sktelescope.lens import max_row_norms

    train_max = max_row_norms(model, X_train, X_train).mean()
    test_max = max_row_norms(model, X_test[rows["test"]], X_train).mean()
    irr_max = max_row_norms(model, X_test[rows["irregular"]], X_train).mean()
    return {
        f"{prefix}_ratio": float(test_max / train_max),
        f"{prefix}_ratio_irregular": float(irr_max / train_max),
    }


def _trees_ratios(out: dict, trees, d: SplitData, Xt_train, Xt_test, rows) -> str:
    """Fill the trees' ratios; return a note (empty when they were measured)."""
    if d.task == "multiclass":
        return f"trees R skipped: TreeTelescope is binary-only ({d.n_classes} classes)"
    from sktelescope.trees import TreeTelescope

    try:
        telescope = TreeTelescope(trees[-1], Xt_train, d.y_train)
        out.update(_ratios("trees", telescope, Xt_train[rows["train"]], Xt_test, rows))
    except (ValueError, TypeError, NotImplementedError) as exc:
        return f"trees R skipped: {type(exc).__name__}: {exc}"[:300]
    return ""
