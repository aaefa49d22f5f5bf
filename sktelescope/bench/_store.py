"""The results folder: one long CSV written row by row, and the run settings beside it.

Rows are appended and flushed as each fit finishes, so an interrupted run loses at most the fits
in flight. A rerun reads the finished keys ``(dataset, split, model, config)`` and skips them.
The settings that change what a row means (seed, split protocol, profile, data sources) are kept
in ``run.json``; a rerun with different settings is refused rather than mixed into the same CSV.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from sktelescope.bench._protocol import ALL_METRICS

__all__ = ["COLUMNS", "KEY", "ResultStore"]

KEY = ("dataset", "split", "model", "config")
TIMING = ("fit_seconds", "predict_seconds")
COLUMNS = (
    KEY
    + ("task", "family", "status", "seed", "n_train", "n_val", "n_test")
    + tuple(f"val_{m}" for m in ALL_METRICS)
    + tuple(f"test_{m}" for m in ALL_METRICS)
    + TIMING
    + ("params", "error")
)
CSV_NAME, CONFIG_NAME = "results.csv", "run.json"


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


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
        :data:`COLUMNS` and :data:`KEY`). Key columns ``split`` and ``config`` are integers.

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
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
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
            When the folder holds results made with other settings.
        """
        merged = dict(settings)
        if self.config_path.exists():
            old = json.loads(self.config_path.read_text())
            diffs = [
                f"{k}: {old.get(k)!r} there, {v!r} now"
                for k, v in settings.items()
                if k != "datasets" and old.get(k) != v
            ]
            old_data = old.get("datasets", {})
            diffs += [
                f"dataset {n!r}: {old_data[n]!r} there, {s!r} now"
                for n, s in settings.get("datasets", {}).items()
                if n in old_data and old_data[n] != s
            ]
            if diffs:
                raise ValueError(
                    f"The results folder {str(self.out)!r} holds results made with other "
                    f"settings ({'; '.join(diffs)}). Rows made with different settings cannot "
                    "share one CSV: rerun with the same settings to resume, or pass another "
                    "--out folder."
                )
            merged["datasets"] = {**old_data, **settings.get("datasets", {})}
        self.config_path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")

    # ------------------------------------------------------------------ rows

    def _repair_tail(self) -> None:
        """Cut a partial last line left by a killed run."""
        if not self.csv_path.exists() or self.csv_path.stat().st_size == 0:
            return
        data = self.csv_path.read_bytes()
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.csv_path, "r+b") as fh:
                fh.truncate(cut)

    def read_rows(self) -> list[dict]:
        """All complete rows of the CSV as dicts of strings (malformed lines are skipped)."""
        if not self.csv_path.exists():
            return []
        with open(self.csv_path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return []
            if tuple(header) != self.columns:
                raise ValueError(
                    f"{self.csv_path} has columns that this version of sktelescope does not "
                    "write. Pass another --out folder."
                )
            return [dict(zip(header, row)) for row in reader if len(row) == len(header)]

    def finished_keys(self) -> set[tuple]:
        """The keys (default ``(dataset, split, model, config)``) already in the CSV."""
        ints = {"split", "config"}
        return {tuple(int(r[k]) if k in ints else r[k] for k in self.key) for r in self.read_rows()}

    def open(self) -> ResultStore:
        """Open the CSV for appending (writing the header when new)."""
        self._repair_tail()
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._fh = open(self.csv_path, "a", newline="")
        self._writer = csv.writer(self._fh)
        if new:
            self._writer.writerow(self.columns)
            self._fh.flush()
        return self

    def write(self, row: dict) -> None:
        """Append one row and flush it to disk."""
        self._writer.writerow([_format(row.get(c)) for c in self.columns])
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the CSV."""
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()
            self._fh = None

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
