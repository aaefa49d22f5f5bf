"""The results folder: one long CSV written row by row, and the run settings beside it.

Rows are appended and flushed as each fit finishes, so an interrupted run loses at most the fits
in flight. A rerun first repairs the CSV (a last line without its newline is a row cut short:
it is moved to ``results.csv.partial`` and its job runs again), then reads the finished keys
``(dataset, split, model, config)`` and skips them. When a key has several rows (an error row
refitted with ``--retry-errors``), the last one counts.

Nothing in the CSV is skipped without a word: a line with the wrong number of cells, an integer
key that is not written as one (``0.0`` after a spreadsheet re-save) or a status other than
``ok``/``error`` is a bad row (:class:`ResultsRowError` names the first one), and so is a row that
is not its job's (:mod:`sktelescope.bench._resume` compares them). Bad rows move to
``results.csv.refused`` only when the user asks to refit them (:meth:`ResultStore.set_aside`).

The settings that change what a row means (seed, split protocol, profile, data sources) are kept
in ``run.json``; a rerun with different settings is refused rather than mixed into the same CSV,
and so is a folder holding results but no ``run.json`` (their settings are unknown).

Text cells are safe to open in a spreadsheet: a cell starting with ``=``, ``+``, ``-``, ``@``
(a formula there), a tab or ``'`` is written with a leading ``'``, which reading removes again.
No absolute local path is written: error messages keep only the file names of paths.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import traceback
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sktelescope.bench._protocol import ALL_METRICS

__all__ = [
    "COLUMNS",
    "KEY",
    "REFIT_BAD_ROWS",
    "ResultStore",
    "ResultsFolderError",
    "ResultsRowError",
    "StoredRow",
    "cell_text",
    "error_text",
    "escape_cell",
    "prepare_folder",
]

KEY = ("dataset", "split", "model", "config")
#: Key columns that hold integers (the lens rows' configurations too).
INTEGER_KEYS = ("split", "config", "net_config", "trees_config")
TIMING = ("fit_seconds", "predict_seconds")
COLUMNS = (
    KEY
    + ("task", "family", "status", "seed", "n_train", "n_val", "n_test")
    + tuple(f"val_{m}" for m in ALL_METRICS)
    + tuple(f"test_{m}" for m in ALL_METRICS)
    + TIMING
    + ("params", "error")
)
CSV_NAME, LENS_CSV_NAME, CONFIG_NAME = "results.csv", "lens.csv", "run.json"
#: The command-line flag that refits the jobs of bad rows (``refit_bad_rows=True``).
REFIT_BAD_ROWS = "--refit-bad-rows"
#: The statuses a row can have.
STATUSES = ("ok", "error")
#: First characters that make a spreadsheet read a cell as a formula (and ``'``, the escape).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
#: An absolute path (POSIX or Windows) not preceded by a word character, ``:`` or ``/``
#: (so neither ``a/b`` nor URLs); group 1 is its last component.
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~:/\\])(?:[A-Za-z]:)?[\\/](?:[^\s\"'<>|:\\/]+[\\/])*([^\s\"'<>|:\\/]+)"
)


class ResultsFolderError(OSError):
    """The results folder cannot be created, read or written; the message says how to fix it.

    Examples
    --------
    >>> str(ResultsFolderError("Cannot write to 'out'."))
    "Cannot write to 'out'."
    """


class ResultsRowError(ValueError):
    """Rows of a results CSV that are not its jobs' results; the message (one line) names the
    file, the first bad row's line and its problem, and what to do.

    Attributes
    ----------
    path : pathlib.Path
        The CSV.
    problems : dict
        ``line -> problem`` of every bad row (line 1 is the header).

    Examples
    --------
    >>> from pathlib import Path
    >>> print(ResultsRowError(Path("out/results.csv"), {3: "status is 'oops'"}))
    ... # doctest: +NORMALIZE_WHITESPACE
    out/results.csv line 3: status is 'oops'. A bad row is no result of this run: rerun with
    --refit-bad-rows to move it to results.csv.refused and refit its job, or pass another --out
    folder.
    """

    def __init__(self, path: Path, problems: dict[int, str]):
        self.path, self.problems = Path(path), dict(sorted(problems.items()))
        super().__init__(self._message())

    def _message(self) -> str:
        (line, problem), *more = self.problems.items()
        others = ""
        if more:
            shown = ", ".join(str(n) for n, _ in more[:5]) + (", …" if len(more) > 5 else "")
            others = f" (and {len(more)} more bad row{'s' * (len(more) > 1)}: line {shown})"
        one = not more
        return (
            f"{self.path} line {line}: {problem}{others}. A bad row is no result of this run: "
            f"rerun with {REFIT_BAD_ROWS} to move {'it' if one else 'them'} to "
            f"{self.path.name}.refused and refit {'its job' if one else 'their jobs'}, or pass "
            "another --out folder."
        )


def escape_cell(text: str) -> str:
    """A text cell that spreadsheets show as text: line breaks become spaces and a leading
    formula character (``= + - @``, tab, ``'``) gets a ``'`` before it.

    Examples
    --------
    >>> escape_cell("=HYPERLINK()"), escape_cell("clf/a|b")
    ("'=HYPERLINK()", 'clf/a|b')
    """
    text = re.sub(r"[\r\n]+", " ", text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _unescape_cell(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def cell_text(value) -> str:
    """A value as its CSV cell reads back: ``""`` for ``None`` and NaN, floats by ``repr``.

    Examples
    --------
    >>> cell_text(3), cell_text(float("nan")), cell_text("=x"), cell_text(0.1)
    ('3', '', '=x', '0.1')
    """
    return _unescape_cell(_format(value))


def scrub_paths(text: str) -> str:
    """Replace every absolute path in ``text`` by its last component.

    Examples
    --------
    >>> scrub_paths('File "/home/me/site-packages/sklearn/base.py", line 3; ratio 1/2')
    'File "base.py", line 3; ratio 1/2'
    """
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), text)


def error_text(exc: BaseException) -> str:
    """The ``error`` cell of a failed job, on one line and without absolute local paths: the
    exception, then where it was raised (the last frames of its traceback, by file name).

    Examples
    --------
    >>> error_text(ValueError("bad /tmp/data/x.csv"))
    'ValueError: bad x.csv'
    """
    message = scrub_paths(" ".join(f"{type(exc).__name__}: {exc}".split()))[:500]
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames)
    return f"{message} | at {where}" if where else message


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        return escape_cell(value)
    return str(value)


def prepare_folder(out: str | os.PathLike) -> Path:
    """Create the results folder ``out`` when missing; a clear error when it cannot be one.

    Raises
    ------
    ResultsFolderError
        When ``out`` is a file or cannot be created.

    Examples
    --------
    >>> import tempfile
    >>> prepare_folder(tempfile.mkdtemp()).is_dir()
    True
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ResultsFolderError(
            f"The results folder --out {str(path)!r} is a file, not a folder. Pass a folder "
            "path (it is created when missing)."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsFolderError(
            f"Cannot create the results folder --out {str(path)!r} "
            f"({exc.strerror or exc}). Pass a folder you can write to."
        ) from None
    return path


def _write_failed(path: Path, exc: OSError) -> ResultsFolderError:
    return ResultsFolderError(
        f"Cannot write to {str(path)!r} ({exc.strerror or exc}). The rows written before are "
        "kept: free some disk space or fix the folder's permissions, then rerun the same "
        "command to resume."
    )


@dataclass(frozen=True)
class StoredRow:
    """One row of a results CSV as :meth:`ResultStore.stored_rows` reads it.

    Attributes
    ----------
    line : int
        Its first line in the file (line 1 is the header).
    cells : dict
        Column -> text (unescaped); empty when the row has the wrong number of cells.
    raw : str
        Its text in the file, line break included.
    key : tuple or None
        Its key (:meth:`ResultStore.key_of`); ``None`` when a key cell is damaged.
    problem : str or None
        What is wrong with it on its own (cell count, key, status); ``None`` when nothing is.
    """

    line: int
    cells: dict
    raw: str
    key: tuple | None
    problem: str | None


def _is_integer(text: str) -> bool:
    """Whether ``text`` is an integer as this module writes one (``"3"``, not ``"3.0"``)."""
    return re.fullmatch(r"-?(0|[1-9][0-9]*)", text) is not None


def _integer(text: str) -> int:
    if not _is_integer(text):
        raise ValueError(f"{text!r} is not an integer")
    return int(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class ResultStore:
    """Append-only CSV of benchmark rows plus the ``run.json`` settings file.

    Parameters
    ----------
    out : path-like
        The results folder (created when missing).
    csv_name : str, default="results.csv"
        The CSV's file name (``lens.csv`` for the lens rows).
    columns, key : tuple of str
        The CSV's columns, and those that identify a finished row (default: the fit rows'
        :data:`COLUMNS` and :data:`KEY`). Key columns in :data:`INTEGER_KEYS` are integers.

    Examples
    --------
    >>> import tempfile
    >>> store = ResultStore(tempfile.mkdtemp())
    >>> store.check_settings({"seed": 0, "datasets": {}})
    >>> store.finished_keys()
    set()
    """

    def __init__(
        self,
        out: str | os.PathLike,
        csv_name: str = CSV_NAME,
        columns: tuple[str, ...] = COLUMNS,
        key: tuple[str, ...] = KEY,
    ):
        self.out = prepare_folder(out)
        self.csv_path = self.out / csv_name
        self.columns, self.key = tuple(columns), tuple(key)
        self.config_path = self.out / CONFIG_NAME

    # ------------------------------------------------------------------ settings

    def check_settings(self, settings: dict) -> None:
        """Write ``run.json``, or check it against ``settings`` when it exists.

        Everything but ``datasets`` (name -> source) must match; dataset sources must agree for
        names already present, new names are added.

        Raises
        ------
        ValueError
            When the folder holds results made with other settings, or results without the
            ``run.json`` that says how they were made.
        """
        merged = dict(settings)
        if self.config_path.exists():
            old = self.read_settings()
            diffs = _settings_diffs(old, settings)
            if diffs:
                raise ValueError(
                    f"The results folder {str(self.out)!r} holds results made with other "
                    f"settings ({'; '.join(diffs)}). Rows made with different settings cannot "
                    "share one CSV: rerun with the same settings to resume, or pass another "
                    "--out folder."
                )
            merged["datasets"] = {**old.get("datasets", {}), **settings.get("datasets", {})}
            if merged == old:
                return
        else:
            self._refuse_results_without_settings()
        try:
            _replace_text(self.config_path, json.dumps(merged, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise _write_failed(self.config_path, exc) from None

    def read_settings(self) -> dict:
        """The settings in ``run.json`` (which must exist and hold a JSON object)."""
        try:
            old = json.loads(self.config_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{str(self.config_path)!r} cannot be read ({exc}); it says how the results "
                "beside it were made. Restore it, or pass another --out folder to start fresh."
            ) from None
        if not isinstance(old, dict):
            raise ValueError(
                f"{str(self.config_path)!r} is not a settings object. Restore it, or pass "
                "another --out folder to start fresh."
            )
        return old

    def _refuse_results_without_settings(self) -> None:
        held = [
            name
            for name in (CSV_NAME, LENS_CSV_NAME)
            if (self.out / name).is_file() and (self.out / name).stat().st_size > 0
        ]
        if held:
            raise ValueError(
                f"The results folder {str(self.out)!r} holds {' and '.join(held)} but no "
                f"{CONFIG_NAME}, so the settings those rows were made with are unknown and new "
                "rows cannot be added to them. Pass another --out folder to start fresh, or "
                f"restore {CONFIG_NAME} (or move {' and '.join(held)} away) to use this one."
            )

    # ------------------------------------------------------------------ rows

    def repair(self) -> None:
        """Move a last line without its newline (a row cut short, or a hand edit) from the CSV
        to ``<csv>.partial``, with a warning: its job is not finished and runs again."""
        if not self.csv_path.exists() or self.csv_path.stat().st_size == 0:
            return
        data = self.csv_path.read_bytes()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        aside = self.csv_path.with_name(self.csv_path.name + ".partial")
        try:
            with open(aside, "ab") as fh:
                fh.write(data[cut:] + b"\n")
            with open(self.csv_path, "r+b") as fh:
                fh.truncate(cut)
        except OSError as exc:
            raise _write_failed(self.csv_path, exc) from None
        warnings.warn(
            f"{self.csv_path.name} ended in a line without its newline (a row cut short, or a "
            f"hand edit): moved it to {aside.name}; its job runs again.",
            stacklevel=2,
        )

    def key_of(self, row: dict) -> tuple:
        """The key of a row (its :attr:`key` columns; integer ones parsed).

        Raises
        ------
        ValueError
            When an integer key cell is not an integer written as one (``"0.0"``, ``"x"``).
        """
        return tuple(_integer(row[k]) if k in INTEGER_KEYS else row[k] for k in self.key)

    def stored_rows(self) -> list[StoredRow]:
        """Every row of the CSV's complete lines (a last line without its newline is left out;
        :meth:`repair` moves it aside), in file order, each with its line and its problem.

        Raises
        ------
        ValueError
            When the header is not this version's columns.
        """
        lines = self._complete_lines()
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None:
            return []
        if tuple(header) != self.columns:
            raise ValueError(
                f"{self.csv_path} has columns that this version of sktelescope does not "
                "write (line 1, its header, was changed or belongs to another file). Restore "
                "it, or pass another --out folder."
            )
        rows, first = [], reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return rows
            except csv.Error as exc:
                cells = exc
            raw, line, first = "".join(lines[first : reader.line_num]), first + 1, reader.line_num
            if isinstance(cells, csv.Error):
                rows.append(StoredRow(line, {}, raw, None, f"it cannot be read as CSV ({cells})"))
            elif cells:  # a blank line holds no row
                rows.append(self._stored_row(line, cells, raw))

    def _complete_lines(self) -> list[str]:
        if not self.csv_path.exists():
            return []
        with open(self.csv_path, newline="") as fh:
            text = fh.read()
        return [line + "\n" for line in text.split("\n")[:-1]]  # only "\n" ends a line

    def _stored_row(self, line: int, cells: list[str], raw: str) -> StoredRow:
        if len(cells) != len(self.columns):
            problem = f"it has {len(cells)} cells, the header {len(self.columns)}"
            return StoredRow(line, {}, raw, None, problem)
        row = dict(zip(self.columns, map(_unescape_cell, cells)))
        bad_key = next((k for k in self.key if k in INTEGER_KEYS and not _is_integer(row[k])), None)
        if bad_key is not None:
            retyped = " (re-typed as a decimal, e.g. by a spreadsheet)" * _is_number(row[bad_key])
            problem = f"{bad_key} is {row[bad_key]!r}, not an integer{retyped}"
            return StoredRow(line, row, raw, None, problem)
        key = self.key_of(row)
        if row["status"] not in STATUSES:
            return StoredRow(line, row, raw, key, f"status is {row['status']!r}, not ok or error")
        return StoredRow(line, row, raw, key, None)

    def read_rows(self) -> list[dict]:
        """The CSV's rows as dicts of strings, the last row per key (complete lines only).

        Raises
        ------
        ResultsRowError
            When a row is damaged (see :meth:`stored_rows`): no row is skipped silently.
        """
        rows = self.stored_rows()
        bad = {row.line: row.problem for row in rows if row.problem}
        if bad:
            raise ResultsRowError(self.csv_path, bad)
        return list({row.key: row.cells for row in rows}.values())

    def finished_keys(self, retry_errors: bool = False) -> set[tuple]:
        """The keys (default ``(dataset, split, model, config)``) already in the CSV; with
        ``retry_errors``, only those whose last row succeeded. The rows are not compared with
        any job here (:func:`sktelescope.bench._resume.finished_keys` does)."""
        return {
            self.key_of(row)
            for row in self.read_rows()
            if not retry_errors or row["status"] == "ok"
        }

    def set_aside(self, lines: Iterable[int]) -> Path:
        """Move the rows on ``lines`` to ``<csv>.refused`` (a CSV with the same header), so that
        their jobs run again; the CSV is rewritten without them. Returns the ``.refused`` path.
        """
        lines = set(lines)
        header = self._complete_lines()[0]  # the column names: always one line
        rows = self.stored_rows()
        aside = self.csv_path.with_name(self.csv_path.name + ".refused")
        moved = "".join(row.raw for row in rows if row.line in lines)
        kept = "".join(row.raw for row in rows if row.line not in lines)
        try:
            new = not aside.exists() or aside.stat().st_size == 0
            with open(aside, "a", newline="") as fh:
                fh.write((header if new else "") + moved)
            _replace_text(self.csv_path, header + kept)
        except OSError as exc:
            raise _write_failed(self.csv_path, exc) from None
        return aside

    def open(self) -> ResultStore:
        """Open the CSV for appending (writing the header when new)."""
        self.repair()
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        try:
            self._fh = open(self.csv_path, "a", newline="")
            self._writer = csv.writer(self._fh)
            if new:
                self._writer.writerow(self.columns)
                self._fh.flush()
        except OSError as exc:
            raise _write_failed(self.csv_path, exc) from None
        return self

    def write(self, row: dict) -> None:
        """Append one row and flush it to disk."""
        try:
            self._writer.writerow([_format(row.get(c)) for c in self.columns])
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise _write_failed(self.csv_path, exc) from None

    def close(self) -> None:
        """Close the CSV."""
        fh = getattr(self, "_fh", None)
        if fh is not None:
            self._fh = None
            try:
                fh.close()
            except OSError:  # the flush failed: the row was already reported as not written
                pass

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def _settings_diffs(old: dict, settings: dict) -> list[str]:
    diffs = [
        f"{k}: {old.get(k)!r} there, {v!r} now"
        for k, v in settings.items()
        if k != "datasets" and old.get(k) != v
    ]
    old_data = old.get("datasets", {})
    return diffs + [
        f"dataset {n!r}: {old_data[n]!r} there, {s!r} now"
        for n, s in settings.get("datasets", {}).items()
        if n in old_data and old_data[n] != s
    ]


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file renamed over it)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, newline="")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
