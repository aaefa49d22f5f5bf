"""The run: check the arguments, load the data, lock the results folder, stream the rows.

The parent process writes each row to its CSV as it arrives, in whatever order the backend
finishes the jobs (:mod:`sktelescope.bench._backends`). Ctrl-C stops the run with
:class:`BenchmarkInterrupted`: the rows written so far are kept, no interrupted fit is written,
and a rerun resumes. Failed fits are rows too (``status="error"``): they are counted in the
result and in ``summary.md``, and refitted only with ``retry_errors``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sktelescope.bench._backends import BACKENDS, parallel_results, threads_per_job
from sktelescope.bench._jobs import Job, execute_job, make_jobs, make_lens_jobs
from sktelescope.bench._lens import LENS_COLUMNS, LENS_KEY, LensJob
from sktelescope.bench._lock import ResultsLock
from sktelescope.bench._protocol import Protocol
from sktelescope.bench._report import best_configs, failure_counts, write_report
from sktelescope.bench._resume import check_settings_file, finished_keys, lost_job_result
from sktelescope.bench._scope import resolve_lens_trees, resolve_models, resolve_scope
from sktelescope.bench._store import LENS_CSV_NAME, ResultStore
from sktelescope.datasets import DatasetRef

__all__ = [
    "BenchResult",
    "BenchmarkInterrupted",
    "resolve_lens_trees",
    "resolve_models",
    "run_benchmark",
]


class BenchmarkInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`run_benchmark`; the rows written so far are kept.

    Attributes
    ----------
    out : pathlib.Path
        The results folder.
    n_written : int
        Rows (fits and lens jobs) this run wrote before it stopped.

    Examples
    --------
    >>> from pathlib import Path
    >>> print(BenchmarkInterrupted(Path("out"), 3))
    Interrupted: this run wrote 3 rows to out, kept there; rerun the same command to resume.
    """

    def __init__(self, out: Path, n_written: int):
        super().__init__(out, n_written)
        self.out, self.n_written = out, n_written

    def __str__(self) -> str:
        return (
            f"Interrupted: this run wrote {self.n_written} row"
            f"{'' if self.n_written == 1 else 's'} to {self.out}, kept there; rerun the same "
            "command to resume."
        )


@dataclass
class BenchResult:
    """What :func:`run_benchmark` did: paths, counts, failures and the summary table.

    ``n_failed`` and ``n_lens_failed`` count the run's jobs whose row is an error (this run's
    or an earlier one's not retried); ``failures`` has one row per job kind x model x dataset
    with failures: ``job``, ``model``, ``dataset``, ``failed`` and ``first_error``.
    """

    out: Path
    csv_path: Path
    n_jobs_total: int
    n_run: int
    n_skipped: int
    summary: str = ""
    lens_path: Path | None = None
    n_lens_total: int = 0
    n_lens_run: int = 0
    n_failed: int = 0
    n_lens_failed: int = 0
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)


def _check_count(name: str, option: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"{name} ({option}) must be an integer of at least {minimum}; got {value!r}."
        )


def _check_arguments(budget, n_splits, kfold, max_train, n_jobs, backend) -> None:
    _check_count("budget", "--budget", budget, 1)
    _check_count("n_splits", "--splits", n_splits, 1)
    _check_count("max_train", "--max-train", max_train, 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs (--n-jobs) must be a non-zero integer (-1: all cores); got "
                         f"{n_jobs!r}.")  # fmt: skip
    if kfold and n_splits < 2:
        raise ValueError(f"K-fold needs n_splits (--splits) of at least 2; got {n_splits}.")
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; expected one of {list(BACKENDS)}.")


def _settings(protocol: Protocol, quick: bool, refs: Sequence[DatasetRef]) -> dict:
    """What a row's meaning depends on. Repeated random splits do not depend on their count
    (split k is the same with 3 or 10 splits), so ``n_splits`` only matters for K-fold."""
    proto = protocol.to_dict()
    if not protocol.kfold:
        proto.pop("n_splits")
    return {
        # 3: configurations drawn per dataset and split, sane search spaces, protocol names
        "format": 3,
        "protocol": proto,
        "quick": bool(quick),
        "datasets": {r.name: r.source for r in refs},
    }


def _todo(store: ResultStore, jobs: Sequence, retry_errors: bool, refit_bad_rows: bool) -> list:
    """The jobs not finished in ``store``: every row checked against its job first."""
    finished = finished_keys(store, jobs, retry_errors, refit_bad_rows)
    return [job for job in jobs if job.key not in finished]


def _stream(
    todo: list[Job | LensJob],
    stores: dict[str, ResultStore],
    backend: str,
    n_jobs: int,
    address: str | None,
    progress: bool,
    written_before: int = 0,
    done_before: int = 0,
) -> dict[str, int]:
    """Run ``todo`` on the backend, writing each row to its kind's store as it arrives.

    The progress bar counts from ``done_before``, the jobs of this kind already in the store
    (a resumed run starts at ``142/364``, not ``0/222``)."""
    from tqdm.auto import tqdm

    done = dict.fromkeys(stores, 0)
    if not todo:
        return done
    try:
        with contextlib.ExitStack() as stack:
            for store in stores.values():
                stack.enter_context(store)
            rows = stack.enter_context(
                parallel_results(execute_job, todo, backend, n_jobs, address, lost_job_result)
            )
            kind = "lens" if isinstance(todo[0], LensJob) else "fit"
            bar = tqdm(rows, total=done_before + len(todo), initial=done_before, unit="job",
                       desc=f"sktelescope bench ({kind})", disable=not progress,
                       smoothing=0.1)  # fmt: skip
            for kind, row in bar:
                stores[kind].write(row)
                done[kind] += 1
    except KeyboardInterrupt:
        n_written = written_before + sum(done.values())
        raise BenchmarkInterrupted(next(iter(stores.values())).out, n_written) from None
    return done


def run_benchmark(
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    tier: str = "core",
    budget: int | None = None,
    n_splits: int | None = None,
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
    lens_trees: str | None = None,
    retry_errors: bool = False,
    refit_bad_rows: bool = False,
    protocol: str = "suite",
    lens_kernel: str | None = None,
    lens_networks: Sequence[str] | None = None,
) -> BenchResult:
    """Run the tabular benchmark: every model, ``budget`` configurations, every split.

    Rows stream to ``out/results.csv`` as fits finish; finished rows are never refit, so a
    killed run resumes where it stopped. Then ``out/summary.md`` and PNG plots are written.
    One run at a time writes a results folder (``out/.lock``).

    Parameters
    ----------
    datasets : list of str, default=None
        Names for :func:`sktelescope.datasets.resolve_datasets` (default: the folder's ``tier``,
        or the embedded scikit-learn sets without ``data_dir``).
    models : list of str, default=None
        Model names (default: every installed model but ``realmlp``, which is slow:
        :func:`~sktelescope.bench._models.default_models`).
    budget : int, default=None
        Random-search configurations per model; configuration 0 is the default (``None``: 5,
        or 25 under the paper protocol).
    n_splits, kfold, seed, max_train
        The :class:`~sktelescope.bench._protocol.Protocol` (``n_splits=None``: 3, or 5
        disjoint folds under the paper protocol).
    out : path-like
        Results folder.
    n_jobs, backend, address
        Parallelism: joblib ``n_jobs`` (-1: every core this process may use; the command
        line's default); ``"loky"``, ``"dask"`` (scheduler ``address``) or ``"ray"`` (cluster
        ``address``). Each job gets its share of the cores, ``cores // n_jobs`` threads for
        every library (:func:`~sktelescope.bench._backends.threads_per_job`).
    quick : bool, default=False
        Cap epochs and trees (smoke tests); recorded in the run settings.
    lens : bool, default=True
        After the fits, run one lens job per dataset x split (:mod:`sktelescope.bench._lens`:
        the best-validation network and trees refitted, their kernel-extremity ratios and
        loss gap on test sets with a growing share of irregular inputs), streamed to
        ``out/lens.csv``; the verdict (:mod:`sktelescope.bench._verdict`) goes to
        ``summary.md``, ``datasets.csv`` and ``lens_verdict.png``. Needs ``telescoping_mlp``
        and a trees model among ``models``; skipped with a warning otherwise.
    lens_trees : str, default=None
        The trees model of the lens (see :func:`resolve_lens_trees`): ``sklearn_gbt``, the
        paper's, when it is run, else the first trees model of ``models``.
    retry_errors : bool, default=False
        Refit the jobs whose row is an error; the new row replaces the old one.
    refit_bad_rows : bool, default=False
        Every row of ``results.csv`` and ``lens.csv`` is compared with the job it claims to be
        (:mod:`sktelescope.bench._resume`); a bad row (another run's, a damaged score, a
        re-typed key) stops the run with a :class:`ValueError` that names it. With
        ``refit_bad_rows`` the bad rows move to ``results.csv.refused`` (``lens.csv.refused``)
        instead and their jobs run again.
    protocol : {"suite", "paper"}, default="suite"
        ``"paper"`` runs the paper's Case 2 setup (:mod:`sktelescope.bench._scope`): its
        datasets present in ``data_dir`` (regression, MSE), ``paper_mlp`` against
        ``sklearn_gbt``, 25 configurations, 5 disjoint test folds of at most 4,000 points,
        2 network seeds; every argument left at ``None`` takes the protocol's value.
    lens_kernel : {"step", "stage"}, default=None
        How the lens computes R: the paper's per-step kernel (``None``: the default) or the
        cheaper stage kernel.
    lens_networks : list of str, default=None
        The telescoping networks the lens measures, each among ``models``: the verdict is
        the first one's, and ``summary.md`` shows the others' effects beside it, measured
        the same way (``["plain_mlp", "embedded_mlp"]``: the plain network and the one
        with RealMLP's embeddings). ``None``: ``telescoping_mlp`` (``paper_mlp`` under
        the paper protocol).

    Returns
    -------
    BenchResult

    Raises
    ------
    BenchmarkInterrupted
        On Ctrl-C (a :class:`KeyboardInterrupt`): the rows written so far are kept.
    ValueError
        For bad arguments, a results folder of other settings, or a bad row (see
        ``refit_bad_rows``).

    Examples
    --------
    >>> import tempfile
    >>> res = run_benchmark(["sklearn:diabetes"], ["hgb"], budget=1, n_splits=1,
    ...                     out=tempfile.mkdtemp(), quick=True, progress=False,
    ...                     report=False)  # doctest: +SKIP
    >>> res.n_run, res.n_failed  # doctest: +SKIP
    (1, 0)
    """
    with _notes_after_checks():
        scope, refs = resolve_scope(
            protocol, datasets=datasets, models=models, data_dir=data_dir, tier=tier,
            budget=budget, n_splits=n_splits, kfold=kfold, max_train=max_train, seed=seed,
            lens=lens, lens_trees=lens_trees, lens_kernel=lens_kernel,
            lens_networks=lens_networks,
        )  # fmt: skip
        _check_arguments(scope.budget, scope.n_splits, scope.protocol.kfold, max_train, n_jobs,
                         backend)  # fmt: skip
        for note in scope.notes:
            warnings.warn(note, stacklevel=2)
    loaded = [ref.load() for ref in refs]
    protocol = scope.protocol
    jobs = make_jobs(loaded, scope.models, scope.budget, protocol, quick,
                     threads_per_job(backend, n_jobs, address))  # fmt: skip
    store = ResultStore(out)
    with ResultsLock(store.out):
        check_settings_file(store)
        store.check_settings(_settings(protocol, quick, refs))
        todo = _todo(store, jobs, retry_errors, refit_bad_rows)
        ran = _stream(todo, {"fit": store}, backend, n_jobs, address, progress,
                      done_before=len(jobs) - len(todo))  # fmt: skip
        result = BenchResult(store.out, store.csv_path, len(jobs), ran["fit"],
                             len(jobs) - len(todo))  # fmt: skip
        lens_store, lens_keys = None, None
        if scope.lens is not None:
            best = best_configs(store, scope)
            lens_jobs = [
                job
                for settings in scope.lenses
                for job in make_lens_jobs(jobs, best, settings, protocol.seed, quick)
            ]
            lens_store = ResultStore(out, LENS_CSV_NAME, LENS_COLUMNS, LENS_KEY)
            lens_todo = _todo(lens_store, lens_jobs, retry_errors, refit_bad_rows)
            lens_ran = _stream(lens_todo, {"lens": lens_store}, backend, n_jobs, address,
                               progress, ran["fit"], len(lens_jobs) - len(lens_todo))  # fmt: skip
            lens_keys = {job.key for job in lens_jobs}
            result.lens_path = lens_store.csv_path
            result.n_lens_total, result.n_lens_run = len(lens_jobs), lens_ran["lens"]
        _count_failures(result, failure_counts(store, scope, lens_store, lens_keys))
        if report:
            result.summary = write_report(store, scope, lens_store, lens_keys)
    return result


@contextlib.contextmanager
def _notes_after_checks():
    """Hold back the warnings (notes) of the block until it has finished without an error,
    so that a note such as "lens step skipped" never comes before an error that stops the
    run ("Unknown dataset"); an error drops them."""
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        yield
    for note in notes:
        warnings.warn_explicit(note.message, note.category, note.filename, note.lineno)


def _count_failures(result: BenchResult, failures: pd.DataFrame) -> None:
    result.failures = failures
    if failures.empty:
        return
    per_job = failures.groupby("job")["failed"].sum()
    result.n_failed = int(per_job.get("fit", 0))
    result.n_lens_failed = int(per_job.get("lens", 0))
