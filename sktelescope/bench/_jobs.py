"""The benchmark's jobs: what one fit is, how it runs, and the list of them.

One fit job is ``(dataset, split, model, config)``: a pure function of its inputs that fits one
pipeline and returns one result row. One lens job per ``(dataset, split)`` looks at that
split's best-validation network and trees (:mod:`sktelescope.bench._lens`), so lens jobs are
made after the fits; their rows go to ``lens.csv``. Seeds depend only on a job's key,
so every backend gives the same rows (apart from the timing columns).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sktelescope.bench._backends import job_environment
from sktelescope.bench._lens import NETWORK, LensJob, run_lens_job
from sktelescope.bench._models import build_model, derive_seed, get_config, get_model
from sktelescope.bench._protocol import ALL_METRICS, Protocol, SplitData, score_model, split_data
from sktelescope.bench._store import error_text
from sktelescope.datasets import Dataset

__all__ = [
    "Job",
    "SplitData",
    "execute_job",
    "fit_seed",
    "make_jobs",
    "make_lens_jobs",
    "run_job",
]


@dataclass
class Job:
    """One fit: ``(dataset, split, model, config)`` with its data, parameters and seed.

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> (job,) = make_jobs([load_sklearn_dataset("diabetes")], ["hgb"], 1, Protocol(n_splits=1))
    >>> job.key
    ('sklearn:diabetes', 0, 'hgb', 0)
    """

    dataset: str
    split: int
    model: str
    config: int
    params: dict
    seed: int
    data: SplitData
    n_threads: int = 1

    @property
    def key(self) -> tuple:
        """The resume key."""
        return (self.dataset, self.split, self.model, self.config)


def _row_start(job: Job) -> dict:
    """The columns of a row known before the fit."""
    d = job.data
    return {
        "dataset": job.dataset,
        "split": job.split,
        "model": job.model,
        "config": job.config,
        "task": d.task,
        "family": get_model(job.model).family,
        "seed": job.seed,
        "n_train": len(d.y_train),
        "n_val": len(d.y_val),
        "n_test": len(d.y_test),
        "params": json.dumps(job.params, sort_keys=True),
        "status": "ok",
    }


def run_job(job: Job) -> dict:
    """Fit one configuration on one split and score it on validation and test.

    Never raises for a failing fit: the row then has ``status="error"`` and the message.
    Raises :class:`KeyboardInterrupt` when the fit was interrupted (Ctrl-C), also when the
    estimator caught it and kept the steps it finished: a half-trained fit is no result.

    Returns
    -------
    dict
        One result row (see :data:`sktelescope.bench._store.COLUMNS`).

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> (job,) = make_jobs([load_sklearn_dataset("diabetes")], ["hgb"], 1, Protocol(n_splits=1),
    ...                    quick=True)
    >>> row = run_job(job)
    >>> row["status"], row["test_r2"] > 0
    ('ok', True)
    """
    d = job.data
    row = _row_start(job)
    try:
        with job_environment(job.n_threads):
            est = build_model(
                job.model, d.task, job.params, d.categorical_columns, job.seed, job.n_threads
            )
            start = time.perf_counter()
            est.fit(d.X_train, d.y_train)
            row["fit_seconds"] = time.perf_counter() - start
            val = score_model(est, d.X_val, d.y_val, d.task, d.n_classes)
            test = score_model(est, d.X_test, d.y_test, d.task, d.n_classes)
    except Exception as exc:  # noqa: BLE001 - a failing fit is a result, not a crash
        row.update(status="error", error=error_text(exc))
        return row
    for metric in ALL_METRICS:
        row[f"val_{metric}"] = val.get(metric)
        row[f"test_{metric}"] = test.get(metric)
    row["predict_seconds"] = test["predict_seconds"]
    return row


def fit_seed(base_seed: int, dataset: str, split: int, config: int) -> int:
    """The seed of the fit jobs ``(dataset, split, *, config)`` of a run with ``base_seed``
    (every model's configuration ``config`` gets the same).

    Examples
    --------
    >>> fit_seed(0, "sklearn:diabetes", 0, 0)
    45530766
    """
    return derive_seed(base_seed, dataset, split, config)


def make_jobs(
    datasets: Sequence[Dataset],
    models: Sequence[str],
    budget: int,
    protocol: Protocol,
    quick: bool = False,
    n_threads: int = 1,
) -> list[Job]:
    """All jobs, configuration-major: every model's default runs before any tuned one.

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> jobs = make_jobs([load_sklearn_dataset("diabetes")], ["hgb"], 2, Protocol(n_splits=2))
    >>> [job.key[1:] for job in jobs]
    [(0, 'hgb', 0), (1, 'hgb', 0), (0, 'hgb', 1), (1, 'hgb', 1)]
    """
    splits = {
        (ds.name, s): split_data(ds, s, protocol)
        for ds in datasets
        for s in range(protocol.n_splits)
    }
    configs = {
        (m, c): get_config(m, c, protocol.seed, quick) for m in models for c in range(budget)
    }
    return [
        Job(
            ds.name,
            s,
            m,
            c,
            configs[m, c],
            fit_seed(protocol.seed, ds.name, s, c),
            splits[ds.name, s],
            n_threads,
        )
        for c in range(budget)
        for ds in datasets
        for s in range(protocol.n_splits)
        for m in models
    ]


def make_lens_jobs(
    jobs: Sequence[Job],
    best: dict,
    trees_model: str,
    seed: int,
    quick: bool = False,
) -> list[LensJob]:
    """One lens job per ``(dataset, split)`` of ``jobs``: the best-validation configurations
    of the network and of ``trees_model`` on that split, sharing the fit jobs' data.

    Parameters
    ----------
    jobs : list of Job
        The run's fit jobs (their datasets, splits, data and thread count).
    best : dict
        ``(dataset, split, model) -> (config, test_score)`` of the best-validation fits
        (:func:`sktelescope.bench._report.best_configs`); a missing entry (no successful fit)
        gives configuration ``-1``, and the lens job an error row that says so.
    trees_model : str
    seed : int
        The protocol's base seed (the fit jobs' seeds derive from it).
    quick : bool, default=False

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> jobs = make_jobs([load_sklearn_dataset("diabetes")], ["hgb"], 2, Protocol(n_splits=2))
    >>> best = {("sklearn:diabetes", 0, "telescoping_mlp"): (1, 0.4),
    ...         ("sklearn:diabetes", 0, "hgb"): (0, 0.5)}
    >>> [lens.key for lens in make_lens_jobs(jobs, best, "hgb", seed=0)]
    [('sklearn:diabetes', 0, 'hgb', 1, 0), ('sklearn:diabetes', 1, 'hgb', -1, -1)]
    """
    first = {}
    for job in jobs:
        first.setdefault((job.dataset, job.split), job)
    lens_jobs = []
    for (ds, s), job in first.items():
        chosen = {m: best.get((ds, s, m), (-1, float("nan"))) for m in (NETWORK, trees_model)}
        lens_jobs.append(
            LensJob(
                ds,
                s,
                seed,
                job.data,
                trees_model,
                int(chosen[NETWORK][0]),
                int(chosen[trees_model][0]),
                {m: c[1] for m, c in chosen.items()},
                quick,
                job.n_threads,
            )  # fmt: skip
        )
    return lens_jobs


def execute_job(job: Job | LensJob) -> tuple[str, dict]:
    """Run a job of either kind; returns ``(kind, row)`` with kind ``"fit"`` or ``"lens"``.

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> (job,) = make_jobs([load_sklearn_dataset("diabetes")], ["hgb"], 1, Protocol(n_splits=1),
    ...                    quick=True)
    >>> execute_job(job)[0]
    'fit'
    """
    if isinstance(job, LensJob):
        return "lens", run_lens_job(job)
    return "fit", run_job(job)
