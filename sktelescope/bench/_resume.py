"""Resuming a run: a stored row counts as a finished job only when it is that job's row.

Every row of a results CSV is read (:meth:`~sktelescope.bench._store.ResultStore.stored_rows`
skips none) and, when its key is one of the run's jobs, compared with that job:

- its identity cells, what the job's row holds before the fit (dataset, split, model, config,
  task, family, seed, sizes and params; a lens row's key, task, seed and sizes), are the job's;
- an ``ok`` fit row holds, for each score of its task, a finite number in that score's range
  (ROC AUC may be blank: it is undefined on a split with one class), blanks for the other task's
  scores, non-negative timings and no error message; an ``error`` row its message and no score;
  an ``ok`` lens row numbers or blanks in its numeric columns;
- after a job's ``ok`` row no other row of that job follows (``ok`` rows are never refitted).

A bad row stops the run with :class:`~sktelescope.bench._store.ResultsRowError` (one line: the
file, the line, the problem, what to do), unless the user asks to refit the bad rows: they then
move to ``<csv>.refused``, with a warning, and their jobs run again. What the cells cannot tell
is not caught: a score changed to another possible value, or a row relabelled as another model's
whose parameters and seed are the same.

``run.json`` is compared with the rows as well (:func:`check_settings_file`): a seed that made
none of the fit rows beside it was edited, or belongs to other results, and is refused.

Examples
--------
>>> import tempfile
>>> from sktelescope.bench._store import ResultStore
>>> finished_keys(ResultStore(tempfile.mkdtemp()), jobs=[])
set()
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence

from sktelescope.bench._jobs import Job, _row_start, fit_seed
from sktelescope.bench._lens import LENS_COLUMNS, LensJob, lens_row_start
from sktelescope.bench._protocol import ALL_METRICS, METRICS
from sktelescope.bench._report import TEXT_LENS_COLUMNS
from sktelescope.bench._store import (
    CONFIG_NAME,
    KEY,
    TIMING,
    ResultsRowError,
    ResultStore,
    StoredRow,
    cell_text,
    error_text,
)

__all__ = [
    "check_settings_file",
    "finished_keys",
    "job_identity",
    "lost_job_result",
    "row_problem",
]

#: The range of each score (a finite number within it), and how to say it.
SCORE_RANGES = {
    "r2": (-math.inf, 1.0, "a finite number at most 1"),
    "rmse": (0.0, math.inf, "a finite number of at least 0"),
    "accuracy": (0.0, 1.0, "a number from 0 to 1"),
    "log_loss": (0.0, math.inf, "a finite number of at least 0"),
    "roc_auc": (0.0, 1.0, "a number from 0 to 1"),
}
#: Scores an ``ok`` row may leave blank (ROC AUC: undefined when the split has one class).
MAY_BE_BLANK = ("roc_auc",)
SCORES = tuple(f"{part}_{m}" for part in ("val", "test") for m in ALL_METRICS)
LENS_NUMBERS = tuple(c for c in LENS_COLUMNS if c not in TEXT_LENS_COLUMNS)


def job_identity(job: Job | LensJob) -> dict[str, str]:
    """The cells of ``job``'s row known before it runs, as its CSV holds them.

    Examples
    --------
    >>> from sktelescope.bench._protocol import Protocol
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> from sktelescope.bench._jobs import make_jobs
    >>> (job,) = make_jobs([load_sklearn_dataset("diabetes")], ["hgb"], 1, Protocol(n_splits=1))
    >>> job_identity(job)["seed"], job_identity(job)["params"]
    ('45530766', '{}')
    """
    start = lens_row_start(job) if isinstance(job, LensJob) else _row_start(job)
    return {column: cell_text(value) for column, value in start.items() if column != "status"}


def _describe(key: tuple) -> str:
    return f"job ({', '.join(map(str, key))})"


def _identity_problem(cells: dict, job: Job | LensJob) -> str | None:
    for column, want in job_identity(job).items():
        have = cells[column]
        if column == "params" and _same_json(have, want) or have == want:
            continue
        return (
            f"the row of {_describe(job.key)} has {column} {have!r}, the job's is {want!r} (a "
            "row of another run, or a hand edit)"
        )
    return None


def _same_json(have: str, want: str) -> bool:
    try:
        return json.loads(have) == json.loads(want)
    except ValueError:
        return False


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _finite_in(text: str, low: float, high: float) -> bool:
    value = _number(text)
    return value is not None and math.isfinite(value) and low <= value <= high


def _status_problem(cells: dict) -> str | None:
    if cells["status"] == "error":
        return None if cells["error"] else "an error row without its error message"
    if cells["error"]:
        return f"an ok row with an error message ({cells['error'][:60]!r})"
    return None


def _fit_cells_problem(cells: dict, task: str) -> str | None:
    if cells["status"] == "error":
        filled = next((column for column in SCORES if cells[column]), None)
        return filled and f"an error row with a score ({filled} is {cells[filled]!r})"
    metrics = METRICS["regression" if task == "regression" else "classification"]
    for column in SCORES:
        metric, text = column.split("_", 1)[1], cells[column]
        if metric not in metrics:
            if text:
                return f"{column} is {text!r}, but a {task} row has no {metric}"
            continue
        low, high, expected = SCORE_RANGES[metric]
        if not (text == "" and metric in MAY_BE_BLANK or _finite_in(text, low, high)):
            return f"{column} is {text!r}, not a valid {metric} ({expected})"
    for column in TIMING:
        if not _finite_in(cells[column], 0.0, math.inf):
            return f"{column} is {cells[column]!r}, not a number of seconds"
    return None


def _lens_cells_problem(cells: dict) -> str | None:
    if cells["status"] == "error":
        return None
    for column in LENS_NUMBERS:
        text = cells[column]
        if text and _number(text) is None:
            return f"{column} is {text!r}, not a number"
    return None


def row_problem(row: StoredRow, job: Job | LensJob | None) -> str | None:
    """What is wrong with ``row`` as ``job``'s row (``None``: nothing; ``job=None``: a row of
    no job of this run, only checked on its own).

    Examples
    --------
    >>> row = StoredRow(2, {"status": "oops"}, "", ("d", 0, "hgb", 0), "status is 'oops'")
    >>> row_problem(row, None)
    "status is 'oops'"
    """
    if row.problem or job is None:
        return row.problem
    cells = row.cells
    problem = _identity_problem(cells, job) or _status_problem(cells)
    if problem:
        return problem
    if isinstance(job, LensJob):
        return _lens_cells_problem(cells)
    return _fit_cells_problem(cells, job.data.task)


def _bad_rows(rows: list[StoredRow], jobs: dict) -> dict[int, str]:
    """``line -> problem`` of the bad rows, a row after its job's ``ok`` row included."""
    problems, ok_line = {}, {}
    for row in rows:
        problem = row_problem(row, jobs.get(row.key))
        if problem is None and row.key in ok_line:
            problem = (
                f"a second row of {_describe(row.key)}, after its ok row on line "
                f"{ok_line[row.key]} (ok rows are never refitted)"
            )
        if problem:
            problems[row.line] = problem
        elif row.cells["status"] == "ok":
            ok_line[row.key] = row.line
    return problems


def finished_keys(
    store: ResultStore,
    jobs: Sequence[Job | LensJob],
    retry_errors: bool = False,
    refit_bad_rows: bool = False,
) -> set[tuple]:
    """The keys of the jobs whose row ``store`` holds (with ``retry_errors``: an ``ok`` row),
    every row checked first (:func:`row_problem`). The CSV is repaired first.

    Raises
    ------
    ResultsRowError
        When a row is bad and ``refit_bad_rows`` is false; the CSV is left as it is. With
        ``refit_bad_rows`` the bad rows move to ``<csv>.refused`` with a warning, and their
        jobs are not finished.
    """
    store.repair()
    rows = store.stored_rows()
    problems = _bad_rows(rows, {job.key: job for job in jobs})
    if problems:
        if not refit_bad_rows:
            raise ResultsRowError(store.csv_path, problems)
        aside = store.set_aside(problems)
        (line, problem), n = next(iter(sorted(problems.items()))), len(problems)
        warnings.warn(
            f"Moved {n} bad row{'s' * (n > 1)} of {store.csv_path.name} to {aside.name} "
            f"(line {line}: {problem}); {'their jobs run' if n > 1 else 'its job runs'} again.",
            stacklevel=3,
        )
        rows = [row for row in rows if row.line not in problems]
    latest = {row.key: row.cells["status"] for row in rows}
    return {key for key, status in latest.items() if not retry_errors or status == "ok"}


def check_settings_file(store: ResultStore) -> None:
    """Refuse the folder's ``run.json`` when its seed made none of the fit rows beside it.

    Raises
    ------
    ValueError
        When ``run.json`` was edited (or belongs to other results): the message names the
        file, a row and the seeds.

    Examples
    --------
    >>> import tempfile
    >>> check_settings_file(ResultStore(tempfile.mkdtemp()))
    """
    if store.key != KEY or not store.config_path.exists():
        return
    protocol = store.read_settings().get("protocol")
    seed = protocol.get("seed") if isinstance(protocol, dict) else None
    rows = [row for row in store.stored_rows() if row.problem is None]
    if seed is None or not rows:
        return
    expected = [cell_text(fit_seed(seed, *row.key[:2], row.key[3])) for row in rows]
    if any(row.cells["seed"] == want for row, want in zip(rows, expected)):
        return
    raise ValueError(
        f"{store.config_path} says seed {seed!r}, but none of the {len(rows)} rows of "
        f"{store.csv_path.name} was made with it (line {rows[0].line} has seed "
        f"{rows[0].cells['seed']!r}, seed {seed!r} gives {expected[0]!r}): {CONFIG_NAME} was "
        "edited, or belongs to other results. Restore it, or pass another --out folder."
    )


def lost_job_result(job: Job | LensJob, exc: BaseException) -> tuple[str, dict]:
    """The result of a job whose worker died on every try: an error row that says so, as
    :func:`~sktelescope.bench._jobs.execute_job` returns one (``(kind, row)``).

    Examples
    --------
    >>> from sktelescope.bench._protocol import Protocol
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> from sktelescope.bench._jobs import make_jobs
    >>> (job,) = make_jobs([load_sklearn_dataset("diabetes")], ["hgb"], 1, Protocol(n_splits=1))
    >>> kind, row = lost_job_result(job, RuntimeError("worker died"))
    >>> kind, row["status"], row["error"][:10]
    ('fit', 'error', 'WorkerLost')
    """
    kind = "lens" if isinstance(job, LensJob) else "fit"
    start = lens_row_start(job) if isinstance(job, LensJob) else _row_start(job)
    error = (
        "WorkerLost: the worker process running this job died on every try (killed, or out "
        f"of memory); {error_text(exc)}"
    )
    return kind, {**start, "status": "error", "error": error}
