"""The job list, the backends (loky, Dask, Ray) and the streaming run loop.

One fit job is ``(dataset, split, model, config)``: a pure function of its inputs that fits one
pipeline and returns one result row. One lens job is ``(dataset, split)``
(:mod:`sktelescope.bench._lens`); its rows go to ``lens.csv``. The parent process writes each row
to its CSV as it arrives, in whatever order the backend finishes them; seeds depend only on the
job's key, so every backend gives the same rows (apart from the timing columns).

loky and Dask run through joblib (``return_as="generator_unordered"``). Ray's joblib backend
(``ray.util.joblib``) returns nothing before every job has finished (it supports no generator
``return_as``), so under Ray the jobs are Ray tasks collected with ``ray.wait`` as they finish.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sktelescope.bench._lens import LENS_COLUMNS, LENS_KEY, NETWORK, LensJob, run_lens_job
from sktelescope.bench._models import available_models, build_model, derive_seed, get_config
from sktelescope.bench._models import get_model as _get_model
from sktelescope.bench._protocol import ALL_METRICS, Protocol, make_split, score_model
from sktelescope.bench._store import ResultStore
from sktelescope.datasets import Dataset, resolve_datasets

__all__ = [
    "BACKENDS",
    "BenchResult",
    "Job",
    "backend_context",
    "make_jobs",
    "make_lens_jobs",
    "resolve_models",
    "run_benchmark",
    "run_job",
]

BACKENDS = ("loky", "dask", "ray")
LENS_CSV = "lens.csv"


@dataclass
class SplitData:
    """The arrays of one (dataset, split): shared by that split's jobs."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    task: str
    n_classes: int
    categorical_columns: list[str]


@dataclass
class Job:
    """One fit: ``(dataset, split, model, config)`` with its data, parameters and seed."""

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


@dataclass
class BenchResult:
    """What :func:`run_benchmark` did: paths, counts and the summary table."""

    out: Path
    csv_path: Path
    n_jobs_total: int
    n_run: int
    n_skipped: int
    summary: str = ""
    lens_path: Path | None = None
    n_lens_total: int = 0
    n_lens_run: int = 0


# --------------------------------------------------------------------------- one job


@contextlib.contextmanager
def _thread_limit(n_threads: int | None):
    if n_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch_threads = None
    with contextlib.suppress(ImportError):
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)


def run_job(job: Job) -> dict:
    """Fit one configuration on one split and score it on validation and test.

    Never raises for a failing fit: the row then has ``status="error"`` and the message.

    Returns
    -------
    dict
        One result row (see :data:`sktelescope.bench._store.COLUMNS`).
    """
    d = job.data
    row = {
        "dataset": job.dataset,
        "split": job.split,
        "model": job.model,
        "config": job.config,
        "task": d.task,
        "family": _get_model(job.model).family,
        "seed": job.seed,
        "n_train": len(d.y_train),
        "n_val": len(d.y_val),
        "n_test": len(d.y_test),
        "params": json.dumps(job.params, sort_keys=True),
        "status": "ok",
    }
    try:
        with _thread_limit(job.n_threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = build_model(
                job.model,
                d.task,
                job.params,
                d.categorical_columns,
                job.seed,
                job.n_threads or os.cpu_count() or 1,
            )
            start = time.perf_counter()
            est.fit(d.X_train, d.y_train)
            row["fit_seconds"] = time.perf_counter() - start
            val = score_model(est, d.X_val, d.y_val, d.task, d.n_classes)
            test = score_model(est, d.X_test, d.y_test, d.task, d.n_classes)
    except Exception as exc:  # noqa: BLE001 - a failing fit is a result, not a crash
        row.update(status="error", error=f"{type(exc).__name__}: {exc}"[:500])
        row["error"] += " | " + traceback.format_exc(limit=2).replace("\n", " ")[-300:]
        return row
    for metric in ALL_METRICS:
        row[f"val_{metric}"] = val.get(metric)
        row[f"test_{metric}"] = test.get(metric)
    row["predict_seconds"] = test["predict_seconds"]
    return row


# --------------------------------------------------------------------------- job list


def _split_data(ds: Dataset, split: int, protocol: Protocol) -> SplitData:
    train, val, test = make_split(ds.n_rows, ds.name, split, protocol)
    n_classes = 0 if ds.task == "regression" else int(ds.y.max()) + 1
    take = ds.X.iloc
    return SplitData(
        take[train].reset_index(drop=True),
        ds.y[train],
        take[val].reset_index(drop=True),
        ds.y[val],
        take[test].reset_index(drop=True),
        ds.y[test],
        ds.task,
        n_classes,
        list(ds.categorical_columns),
    )


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
        (ds.name, s): _split_data(ds, s, protocol)
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
            derive_seed(protocol.seed, ds.name, s, c),
            splits[ds.name, s],
            n_threads,
        )
        for c in range(budget)
        for ds in datasets
        for s in range(protocol.n_splits)
        for m in models
    ]


def make_lens_jobs(jobs: Sequence[Job], seed: int, quick: bool = False) -> list[LensJob]:
    """One lens job per ``(dataset, split)`` of ``jobs``, sharing their data.

    The lens fits use the seed of the benchmark's configuration-0 fits of that split.

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> jobs = make_jobs([load_sklearn_dataset("diabetes")], ["hgb"], 2, Protocol(n_splits=2))
    >>> [lens.key for lens in make_lens_jobs(jobs, seed=0)]
    [('sklearn:diabetes', 0), ('sklearn:diabetes', 1)]
    """
    first = {}
    for job in jobs:
        first.setdefault((job.dataset, job.split), job)
    return [
        LensJob(ds, s, derive_seed(seed, ds, s, 0), job.data, quick, job.n_threads)
        for (ds, s), job in first.items()
    ]


def _order(fits: list[Job], lenses: list[LensJob]) -> list[Job | LensJob]:
    """Every default fit first, then the lens jobs, then the tuned fits."""
    defaults = [job for job in fits if job.config == 0]
    return defaults + lenses + [job for job in fits if job.config != 0]


def _execute(job: Job | LensJob) -> tuple[str, dict]:
    """Run a job of either kind; returns ``(kind, row)``."""
    if isinstance(job, LensJob):
        return "lens", run_lens_job(job)
    return "fit", run_job(job)


# --------------------------------------------------------------------------- backends


@contextlib.contextmanager
def backend_context(backend: str, n_jobs: int, address: str | None = None) -> Iterator[int]:
    """Activate a joblib backend; yields the ``n_jobs`` to give ``Parallel``.

    ``loky`` runs on this machine; ``dask`` connects to the scheduler at ``address`` (or starts
    a local cluster with ``n_jobs`` single-threaded workers); ``ray`` connects to ``address``
    (or starts Ray locally).
    """
    from joblib import parallel_config

    if backend == "loky":
        with parallel_config("loky", n_jobs=n_jobs):
            yield n_jobs
    elif backend == "dask":
        with _dask_client(n_jobs, address), parallel_config("dask", n_jobs=-1):
            yield -1
    elif backend == "ray":
        with _ray_session(address, n_jobs), parallel_config("ray", n_jobs=n_jobs):
            yield n_jobs
    else:
        raise ValueError(f"Unknown backend {backend!r}; expected one of {list(BACKENDS)}.")


@contextlib.contextmanager
def _dask_client(n_jobs: int, address: str | None):
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError(
            "--backend dask needs dask.distributed: `pip install 'dask[distributed]'`."
        ) from exc
    if address:
        with Client(address) as client:
            yield client
        return
    n_workers = n_jobs if n_jobs > 0 else os.cpu_count()
    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextlib.contextmanager
def _ray_session(address: str | None, n_jobs: int = -1):
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError as exc:
        raise ImportError("--backend ray needs Ray: `pip install 'ray[default]'`.") from exc
    register_ray()  # joblib code inside jobs may use parallel_config("ray") too
    started = not ray.is_initialized()
    if started:
        local = {} if address else {"num_cpus": n_jobs if n_jobs > 0 else os.cpu_count()}
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            **local,
        )
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _ray_rows(todo: list, n_jobs: int) -> Iterator[tuple[str, dict]]:
    """Run jobs as Ray tasks (one CPU each), yielding results as they finish.

    At most ``n_jobs`` tasks are in flight (all of them when ``n_jobs < 1``: Ray schedules
    them on the cluster's CPUs).
    """
    import ray

    remote = ray.remote(num_cpus=1, max_retries=0)(_execute)
    limit = n_jobs if n_jobs > 0 else len(todo)
    queue, pending = list(reversed(todo)), []
    while queue or pending:
        while queue and len(pending) < limit:
            pending.append(remote.remote(queue.pop()))
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


# --------------------------------------------------------------------------- the run


def resolve_models(models: Sequence[str] | None) -> list[str]:
    """Check model names (default: every installed model).

    Examples
    --------
    >>> resolve_models(["hgb"])
    ['hgb']
    """
    if not models:
        return available_models()
    for name in models:
        spec = _get_model(name)
        if not spec.is_available():
            raise ImportError(
                f"Model {name!r} needs {list(spec.requires)}, which cannot be imported here. "
                "Install it or leave it out of --models."
            )
    return list(dict.fromkeys(models))


def _stream(
    todo: list[Job | LensJob],
    stores: dict[str, ResultStore],
    backend: str,
    n_jobs: int,
    address: str | None,
    progress: bool,
) -> dict[str, int]:
    """Run ``todo`` on the backend, writing each row to its kind's store as it arrives."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    done = dict.fromkeys(stores, 0)
    with contextlib.ExitStack() as stack:
        for store in stores.values():
            stack.enter_context(store)
        parallel_jobs = stack.enter_context(backend_context(backend, n_jobs, address))
        if backend == "ray":
            rows = _ray_rows(todo, n_jobs)
        else:
            rows = Parallel(n_jobs=parallel_jobs, return_as="generator_unordered")(
                delayed(_execute)(job) for job in todo
            )
        bar = tqdm(rows, total=len(todo), desc="sktelescope bench", unit="job",
                   disable=not progress, smoothing=0.1)  # fmt: skip
        for kind, row in bar:
            stores[kind].write(row)
            done[kind] += 1
    return done


def _settings(protocol: Protocol, quick: bool, refs) -> dict:
    """What a row's meaning depends on. Repeated random splits do not depend on their count
    (split k is the same with 3 or 10 splits), so ``n_splits`` only matters for K-fold."""
    proto = protocol.to_dict()
    if not protocol.kfold:
        proto.pop("n_splits")
    return {
        "format": 1,
        "protocol": proto,
        "quick": bool(quick),
        "datasets": {r.name: r.source for r in refs},
    }


def run_benchmark(
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    tier: str = "core",
    budget: int = 5,
    n_splits: int = 3,
    kfold: bool = False,
    out: str | os.PathLike = "sktelescope-results",
    n_jobs: int = 1,
    backend: str = "loky",
    address: str | None = None,
    seed: int = 0,
    quick: bool = False,
    max_train: int = 10_000,
    progress: bool = True,
    report: bool = True,
    lens: bool = True,
) -> BenchResult:
    """Run the tabular benchmark: every model, ``budget`` configurations, every split.

    Rows stream to ``out/results.csv`` as fits finish; finished rows are never refit, so a
    killed run resumes where it stopped. Then ``out/summary.md`` and PNG plots are written.

    Parameters
    ----------
    datasets : list of str, default=None
        Names for :func:`sktelescope.datasets.resolve_datasets` (default: the folder's ``tier``,
        or the embedded scikit-learn sets without ``data_dir``).
    models : list of str, default=None
        Model names (default: every installed model).
    budget : int, default=5
        Random-search configurations per model; configuration 0 is the default.
    n_splits, kfold, seed, max_train
        The :class:`~sktelescope.bench._protocol.Protocol`.
    out : path-like
        Results folder.
    n_jobs, backend, address
        Parallelism: joblib ``n_jobs``; ``"loky"``, ``"dask"`` (scheduler ``address``) or
        ``"ray"`` (cluster ``address``).
    quick : bool, default=False
        Cap epochs and trees (smoke tests); recorded in the run settings.
    lens : bool, default=True
        Also run one lens job per dataset x split (:mod:`sktelescope.bench._lens`: test-input
        irregularity, network and trees kernel-extremity ratios), streamed to
        ``out/lens.csv`` and joined into ``out/datasets.csv``. Needs ``telescoping_mlp``
        (torch); skipped with a warning when it is not importable.

    Returns
    -------
    BenchResult

    Examples
    --------
    >>> import tempfile
    >>> res = run_benchmark(["sklearn:diabetes"], ["hgb"], budget=1, n_splits=1,
    ...                     out=tempfile.mkdtemp(), quick=True, progress=False,
    ...                     report=False)  # doctest: +SKIP
    >>> res.n_run  # doctest: +SKIP
    1
    """
    if budget < 1 or n_splits < 1:
        raise ValueError(f"--budget and --splits must be at least 1; got {budget}, {n_splits}.")
    if kfold and n_splits < 2:
        raise ValueError("K-fold needs --splits of at least 2.")
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; expected one of {list(BACKENDS)}.")
    models = resolve_models(models)
    refs = resolve_datasets(datasets, data_dir=data_dir, tier=tier)
    protocol = Protocol(n_splits=n_splits, kfold=kfold, max_train=max_train, seed=seed)
    store = ResultStore(out)
    store.check_settings(_settings(protocol, quick, refs))
    loaded = [ref.load() for ref in refs]
    n_threads = None if (backend == "loky" and n_jobs == 1) else 1
    jobs = make_jobs(loaded, models, budget, protocol, quick, n_threads)
    finished = store.finished_keys()
    todo = [job for job in jobs if job.key not in finished]
    stores = {"fit": store}
    lens_jobs = _lens_jobs(lens, jobs, protocol.seed, quick)
    if lens_jobs:
        stores["lens"] = ResultStore(out, LENS_CSV, LENS_COLUMNS, LENS_KEY)
        lens_done = stores["lens"].finished_keys()
    lens_todo = [job for job in lens_jobs if job.key not in lens_done] if lens_jobs else []
    work = _order(todo, lens_todo)
    ran = _stream(work, stores, backend, n_jobs, address, progress) if work else {}
    result = BenchResult(store.out, store.csv_path, len(jobs), ran.get("fit", 0),
                         len(jobs) - len(todo))  # fmt: skip
    if "lens" in stores:
        result.lens_path = stores["lens"].csv_path
        result.n_lens_total, result.n_lens_run = len(lens_jobs), ran.get("lens", 0)
    if report:
        from sktelescope.bench._report import write_report

        names = [r.name for r in refs]
        result.summary = write_report(
            store, names, models, budget, n_splits, lens_store=stores.get("lens")
        )
    return result


def _lens_jobs(lens: bool, jobs: list[Job], seed: int, quick: bool) -> list[LensJob]:
    if not lens:
        return []
    if not _get_model(NETWORK).is_available():
        warnings.warn(
            f"The lens step needs {NETWORK} (torch), which cannot be imported here: skipped.",
            stacklevel=3,
        )
        return []
    return make_lens_jobs(jobs, seed, quick)
