"""Turn the results CSV into the summary table and the plots.

Selection: for each dataset x split x model, the configuration with the best validation score
(R² for regression, accuracy for classification) is chosen and its test score reported. The
"score versus tuning budget" curve is, after k configurations, the test score of the best
validation configuration among the first k.

Failed fits (``status="error"``) are reported, not dropped: a "Failures" section lists them per
model x dataset with the first error, and the table keeps every model's column, marking the
failed ones. Text from the data (dataset names, error messages) is escaped for markdown, and
for spreadsheets in the CSVs written here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sktelescope.bench._lens import LENS_COLUMNS, LENS_KEY, NETWORK
from sktelescope.bench._markdown import markdown_cell, markdown_table
from sktelescope.bench._plots import (
    plot_budget,
    plot_lens_effects,
    plot_lens_verdict,
    plot_normalised,
)
from sktelescope.bench._protocol import PRIMARY
from sktelescope.bench._scope import RunScope
from sktelescope.bench._store import LENS_CSV_NAME, ResultsFolderError, ResultStore, escape_cell
from sktelescope.bench._tuning import tuning_markdown
from sktelescope.bench._verdict import SuiteVerdict, decide
from sktelescope.bench._verdict_report import comparison_markdown, verdict_markdown

__all__ = [
    "budget_curves",
    "dataset_table",
    "failure_counts",
    "family_gaps",
    "best_configs",
    "lens_extras",
    "lens_rows",
    "load_results",
    "load_verdict",
    "select_best",
    "summary_table",
    "write_report",
]


def _run_rows(
    store: ResultStore | None, scope: RunScope | None = None, keys: set | None = None
) -> pd.DataFrame:
    """Every row of the CSV (the last one per key) restricted to a run's datasets, models,
    budget and splits (and store ``keys``); fit rows and lens rows alike (lens rows have no
    model or config, and are restricted by datasets and splits only)."""
    records = store.read_rows() if store is not None else []
    if keys is not None:
        records = [r for r in records if store.key_of(r) in keys]
    df = pd.DataFrame(records)
    if df.empty:
        return df
    keep = pd.Series(True, index=df.index)
    df["split"] = df["split"].astype(int)
    if "config" in df:
        df["config"] = df["config"].astype(int)
        if scope is not None:
            keep &= df["model"].isin(list(scope.models)) & (df["config"] < scope.budget)
    if scope is not None:
        keep &= df["dataset"].isin(list(scope.datasets)) & (df["split"] < scope.n_splits)
    return df[keep].copy()


def load_results(store: ResultStore, scope: RunScope | None = None) -> pd.DataFrame:
    """The successful rows of the CSV, restricted to a run's scope (all rows without one).

    Adds ``metric``, ``val_score`` and ``test_score`` (the task's primary metric).
    """
    df = _run_rows(store, scope)
    if df.empty:
        return df
    for col in df.columns:
        if col.startswith(("val_", "test_")) or col.endswith("_seconds"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df = df[df["status"] == "ok"].copy()
    df["metric"] = df["task"].map(PRIMARY)
    df["val_score"] = [r[f"val_{m}"] for m, (_, r) in zip(df["metric"], df.iterrows())]
    df["test_score"] = [r[f"test_{m}"] for m, (_, r) in zip(df["metric"], df.iterrows())]
    return df


#: The columns of :func:`failure_counts`.
FAILURE_COLUMNS = ["job", "model", "dataset", "metric", "failed", "first_error"]


def failure_counts(
    store: ResultStore,
    scope: RunScope | None = None,
    lens_store: ResultStore | None = None,
    lens_keys: set | None = None,
) -> pd.DataFrame:
    """The failed jobs of a run, per job kind x model x dataset (lens jobs: those of
    ``lens_keys`` when given, the run's lens jobs).

    Returns
    -------
    pandas.DataFrame
        Columns ``job`` (``"fit"`` or ``"lens"``), ``model`` (``"lens"`` for lens jobs),
        ``dataset``, ``metric``, ``failed`` (how many jobs) and ``first_error`` (the first
        one's message, without its traceback). Empty when nothing failed.

    Examples
    --------
    >>> import tempfile
    >>> failure_counts(ResultStore(tempfile.mkdtemp())).empty
    True
    """
    frames = []
    for job, rows in (
        ("fit", _run_rows(store, scope)),
        ("lens", _run_rows(lens_store, scope, lens_keys)),
    ):
        if rows.empty or not (rows["status"] == "error").any():
            continue
        errors = rows[rows["status"] == "error"].assign(job=job)
        if job == "lens":
            errors["model"] = "lens"
        errors["metric"] = errors["task"].map(PRIMARY)
        first = errors["error"].str.split(" | ", n=1, regex=False).str[0]
        errors["first_error"] = [e if len(e) <= 200 else e[:199] + "…" for e in first]
        grouped = errors.groupby(["job", "model", "dataset"], sort=True)
        frames.append(grouped.agg(metric=("metric", "first"), failed=("status", "size"),
                                  first_error=("first_error", "first")).reset_index())  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[FAILURE_COLUMNS]


def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell escaped for spreadsheets (:func:`escape_cell`)."""
    safe = frame.copy()
    for col in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[col]):
            safe[col] = [escape_cell(v) if isinstance(v, str) else v for v in safe[col]]
    return safe


def select_best(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset x split x model, the row of the configuration with the best validation score.

    Ties go to the lower configuration index (the default first).
    """
    if df.empty:
        return df
    ordered = df.sort_values(["val_score", "config"], ascending=[False, True], na_position="last")
    return ordered.groupby(["dataset", "split", "model"], sort=True).head(1).reset_index(drop=True)


def summary_table(
    best: pd.DataFrame, models: Sequence[str], failures: pd.DataFrame | None = None
) -> str:
    """Markdown table: per dataset, mean ± std over splits of each model's test score.

    The best mean of each row is in bold; with a single split there is no ± part. Every model
    of ``models`` has a column: ``–`` where it has no result, ``✗ N failed`` where its fits
    failed (``failures``, from :func:`failure_counts`).

    Examples
    --------
    >>> import pandas as pd
    >>> best = pd.DataFrame({"dataset": ["d"], "split": [0], "metric": ["r2"], "model": ["a"],
    ...                      "test_score": [0.5]})
    >>> print(summary_table(best, ["a", "b"]))
    | dataset | metric | a | b |
    |---|---|---|---|
    | d | r2 | **0.5000** | – |
    <BLANKLINE>
    """
    failed = _failed_fits(failures)
    if best.empty and not failed:
        return "_No finished results yet._\n"
    metric = {dataset: row["metric"] for (_, dataset), row in failed.items()}
    if not best.empty:
        metric.update(best.groupby("dataset")["metric"].first().to_dict())
        agg = best.groupby(["dataset", "model"])["test_score"].agg(["mean", "std", "count"])
    lines = [
        "| dataset | metric | " + " | ".join(models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for dataset in sorted(metric):
        cells = {} if best.empty else {
            m: agg.loc[(dataset, m)] for m in models if (dataset, m) in agg.index
        }  # fmt: skip
        top = max((c["mean"] for c in cells.values()), default=np.nan)
        row = [
            _score_cell(cells.get(m), top, failed.get((m, dataset), {}).get("failed", 0))
            for m in models
        ]
        lines.append(f"| {markdown_cell(dataset)} | {metric[dataset]} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _failed_fits(failures: pd.DataFrame | None) -> dict:
    """``(model, dataset) -> failure row`` of the failed fits (not the lens jobs)."""
    if failures is None or failures.empty:
        return {}
    fits = failures[failures["job"] == "fit"]
    return {(r["model"], r["dataset"]): r for r in fits.to_dict("records")}


def _score_cell(cell, top: float, n_failed: int) -> str:
    if cell is None:
        return f"✗ {n_failed} failed" if n_failed else "–"
    text = f"{cell['mean']:.4f}"
    if cell["count"] > 1:
        text += f" ± {cell['std']:.4f}"
    if np.isclose(cell["mean"], top):
        text = f"**{text}**"
    return text + (f" (✗ {n_failed} failed)" if n_failed else "")


def _failures_markdown(failures: pd.DataFrame) -> str:
    if failures.empty:
        return ""
    n_fits = int(failures.loc[failures["job"] == "fit", "failed"].sum())
    n_lens = int(failures.loc[failures["job"] == "lens", "failed"].sum())
    table = failures[["job", "model", "dataset", "failed", "first_error"]].rename(
        columns={"failed": "failed jobs", "first_error": "first error"}
    )
    failed = f"{n_fits} fits" + (f" and {n_lens} lens jobs" if n_lens else "")
    return (
        f"\n## Failures\n\n{failed} failed (`status=error` in results.csv / lens.csv); "
        "rerun the same command with `--retry-errors` to refit them.\n\n" + markdown_table(table)
    )


#: The network the lens looks at (the project's own); other networks are peers.
LENS_NETWORK = NETWORK


def family_gaps(best: pd.DataFrame, network: str = LENS_NETWORK) -> pd.DataFrame:
    """Per dataset: the network (``network``, else the best one) and the best trees model,
    both chosen by mean validation score, and their network-minus-trees test score gap
    (negative: the trees win).

    This is the gap the paper's lens explains; :func:`dataset_table` joins the lens columns.
    """
    if best.empty or "family" not in best:
        return pd.DataFrame()
    means = best.groupby(["dataset", "family", "model"], as_index=False).agg(
        metric=("metric", "first"), val_score=("val_score", "mean"),
        test_score=("test_score", "mean"),
    )  # fmt: skip
    rows = []
    for dataset, group in means.groupby("dataset"):
        top = group.sort_values("val_score").groupby("family").tail(1).set_index("family")
        if not {"network", "trees"} <= set(top.index):
            continue
        trees, ours = top.loc["trees"], group[group["model"] == network]
        net = ours.iloc[0] if len(ours) else top.loc["network"]
        rows.append(
            {
                "dataset": dataset,
                "metric": net["metric"],
                "network": net["model"],
                "network_score": net["test_score"],
                "best_trees": trees["model"],
                "trees_score": trees["test_score"],
                "network_minus_trees": net["test_score"] - trees["test_score"],
            }
        )
    return pd.DataFrame(rows)


def best_configs(store: ResultStore, scope: RunScope | None = None) -> dict:
    """``(dataset, split, model) -> (config, test_score)`` of the best-validation fits: the
    configurations the score table reports, which the lens jobs look at.

    Examples
    --------
    >>> import tempfile
    >>> best_configs(ResultStore(tempfile.mkdtemp()))
    {}
    """
    best = select_best(load_results(store, scope))
    return {
        (r["dataset"], int(r["split"]), r["model"]): (int(r["config"]), float(r["test_score"]))
        for r in best.to_dict("records")
    }


def lens_rows(
    lens_store: ResultStore | None, scope: RunScope | None = None, keys: set | None = None
) -> pd.DataFrame:
    """The successful lens rows of a run (``keys``: the run's lens jobs; rows of other keys
    looked at configurations that are no longer the best, and are left out), numbers parsed.
    """
    rows = _run_rows(lens_store, scope, keys)
    if rows.empty:
        return rows
    rows = rows[rows["status"] == "ok"].copy()
    for col in LENS_COLUMNS:
        if col not in TEXT_LENS_COLUMNS and col in rows:
            rows[col] = pd.to_numeric(rows[col], errors="coerce")
    return rows


#: The text columns of lens.csv (the others are numbers).
TEXT_LENS_COLUMNS = ("dataset", "trees_model", "lens_settings", "task", "status", "network",
                     "loss", "kernel", "gap_slope_boot", "net_ratio_slope_per_seed", "note",
                     "error")  # fmt: skip


def lens_extras(rows: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the lens' models, loss and kernel, the mean irregularity, the largest
    refit difference and the notes (beside :func:`~sktelescope.bench._verdict.decide`'s
    table)."""
    if rows.empty:
        return pd.DataFrame()
    grouped = rows.groupby("dataset", sort=True)
    extra = pd.DataFrame(
        {
            "lens_network": grouped["network"].first(),
            "lens_trees_model": grouped["trees_model"].first(),
            "lens_loss": grouped["loss"].first(),
            "lens_kernel": grouped["kernel"].first(),
            "irregularity_mean": grouped["irregularity_mean"].mean(),
            "irregular_share": grouped["irregular_share"].mean(),
            "refit_max_abs_diff": grouped[["net_refit_diff", "trees_refit_diff"]].apply(
                lambda g: np.nanmax(np.abs(g.to_numpy())) if g.notna().any().any() else np.nan
            ),
            "lens_note": grouped["note"].agg(lambda s: "; ".join(sorted({n for n in s if n}))),
        }
    )
    return extra.reset_index()


def load_verdict(
    out: str | os.PathLike, lens_settings: str | None = None
) -> tuple[pd.DataFrame, SuiteVerdict]:
    """The lens rows of a finished results folder and their verdict.

    The rows kept are those of the best-validation configurations that ``best.csv`` names
    (rows of configurations that were best at a smaller budget are left out), of one lens
    setting (``lens_settings``: needed when the folder holds several).

    Returns
    -------
    rows : DataFrame
        The lens rows (:data:`~sktelescope.bench._lens.LENS_COLUMNS`).
    verdict : SuiteVerdict

    Examples
    --------
    >>> rows, verdict = load_verdict("benchmarks/output/paper")  # doctest: +SKIP
    >>> verdict.outcome  # doctest: +SKIP
    'inconclusive'
    """
    rows = lens_rows(ResultStore(out, LENS_CSV_NAME, LENS_COLUMNS, LENS_KEY))
    best_path = Path(out) / "best.csv"
    if rows.empty or not best_path.exists():
        raise ValueError(f"{str(out)!r} holds no finished lens step (lens.csv and best.csv); "
                         "run the benchmark with its lens step first.")  # fmt: skip
    settings = sorted(set(rows["lens_settings"]))
    if lens_settings is None and len(settings) > 1:
        raise ValueError(f"{str(out)!r} holds lens rows of several settings {settings}; pass "
                         "lens_settings= to choose one.")  # fmt: skip
    rows = rows[rows["lens_settings"] == (lens_settings or settings[0])]
    best = pd.read_csv(best_path)
    chosen = {(d, int(s), m): int(c) for d, s, m, c in
              best[["dataset", "split", "model", "config"]].itertuples(index=False)}  # fmt: skip
    keep = [chosen.get((r.dataset, r.split, r.network)) == r.net_config
            and chosen.get((r.dataset, r.split, r.trees_model)) == r.trees_config
            for r in rows.itertuples()]  # fmt: skip
    rows = rows[np.asarray(keep, dtype=bool)]
    return rows, decide(rows)


def dataset_table(gaps: pd.DataFrame, verdict: pd.DataFrame) -> pd.DataFrame:
    """The per-dataset table of ``datasets.csv``: the score gap joined with the verdict."""
    if verdict.empty:
        return gaps
    if gaps.empty:
        return verdict
    return gaps.merge(verdict, on="dataset", how="outer")


def budget_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Validation and test score after ``k`` configurations, per dataset x split x model x k.

    After ``k`` configurations the chosen one is the best-validation configuration among
    configurations ``0..k-1``: its validation score (``val_score``, which can only rise with
    ``k``) and its test score (``test_score``, which can fall: a configuration that validates
    better can test worse) are reported.
    """
    rows = []
    for (dataset, split, model), group in df.groupby(["dataset", "split", "model"]):
        group = group.sort_values("config")
        best_val, best_test = -np.inf, np.nan
        for k, (val, test) in enumerate(zip(group["val_score"], group["test_score"]), start=1):
            if val > best_val:
                best_val, best_test = val, test
            rows.append(
                {
                    "dataset": dataset,
                    "split": split,
                    "model": model,
                    "k": k,
                    "val_score": best_val,
                    "test_score": best_test,
                }
            )
    return pd.DataFrame(rows)


def _normalise(frame: pd.DataFrame, by: str = "dataset", column: str = "test_score"):
    """Min-max normalise ``column`` within each dataset (1 = best model, 0 = worst)."""
    grouped = frame.groupby(by)[column]
    low, high = grouped.transform("min"), grouped.transform("max")
    span = (high - low).replace(0, np.nan)
    return ((frame[column] - low) / span).fillna(1.0)


def write_report(
    store: ResultStore,
    scope: RunScope,
    lens_store: ResultStore | None = None,
    lens_keys: set | None = None,
) -> str:
    """Write ``summary.md``, ``best.csv``, ``datasets.csv`` and the PNG plots; return the
    summary (what was run, the score table, the gaps, the tuning, the verdict of the lens and
    the failures).

    ``lens_keys`` are the run's lens jobs (default: every lens row); rows of other keys looked
    at configurations that are no longer the best, and are left out.

    Examples
    --------
    >>> write_report(store, scope)  # doctest: +SKIP
    """
    df = load_results(store, scope)
    best = select_best(df)
    failures = failure_counts(store, scope, lens_store, lens_keys)
    network = scope.lens.network if scope.lens is not None else LENS_NETWORK
    header = (
        f"# sktelescope bench summary\n\n{scope.describe()}\n\n"
        + "".join(f"- {markdown_cell(note)}\n" for note in scope.notes)
        + "\nTest score of the best-validation configuration: mean ± std over splits; best "
        "per dataset in bold. Regression: R²; classification: accuracy.\n\n"
    )
    table = summary_table(best, scope.models, failures)
    gaps = family_gaps(best, network)
    if not gaps.empty:
        table += (
            f"\nNetwork ({network} when run) minus the best trees model (chosen by "
            "validation score), test score (negative: the trees win):\n\n" + markdown_table(gaps)
        )
    table += tuning_markdown(best, scope)
    every_lens = lens_rows(lens_store, scope, lens_keys)
    rows = _of_lens(every_lens, scope.lens)
    verdict = decide(rows) if not rows.empty else None
    if verdict is not None:
        table += verdict_markdown(verdict, rows, scope, lens_extras(rows))
    if verdict is not None and scope.compared:
        table += _comparison(every_lens, scope, best, verdict)
    lens = pd.DataFrame()
    if verdict is not None:
        lens = verdict.table.merge(lens_extras(rows), on="dataset", how="left")
    per_dataset = dataset_table(gaps, lens)
    table += _failures_markdown(failures)
    try:
        _write_outputs(store, header + table, best, per_dataset)
        _plots(store, best, budget_curves(df) if not df.empty else df, scope.models, verdict,
               rows)  # fmt: skip
    except OSError as exc:
        raise ResultsFolderError(
            f"Cannot write the report into {str(store.out)!r} ({exc.strerror or exc}). The "
            "results are kept in results.csv: fix the folder (free space, permissions) and "
            "rerun the same command to write the report."
        ) from None
    return table


def _of_lens(rows: pd.DataFrame, settings) -> pd.DataFrame:
    """The lens rows of one lens setting (all of them when the run has no lens)."""
    if rows.empty or settings is None:
        return rows
    return rows[rows["lens_settings"] == settings.key]


def _comparison(rows: pd.DataFrame, scope: RunScope, best: pd.DataFrame, verdict) -> str:
    """The compared networks' verdicts beside the run's (``scope.compared``)."""
    verdicts = {scope.lens.network: verdict}
    for settings in scope.compared:
        own = _of_lens(rows, settings)
        verdicts[settings.network] = decide(own)
    scores = {}
    if not best.empty:
        means = best.groupby(["model", "dataset"])["test_score"].mean()
        scores = {n: means.loc[n].to_dict() for n in verdicts if n in means.index}
    return comparison_markdown(verdicts, scores)


def _write_outputs(
    store: ResultStore, summary: str, best: pd.DataFrame, per_dataset: pd.DataFrame
) -> None:
    if not per_dataset.empty:
        _csv_safe(per_dataset).to_csv(store.out / "datasets.csv", index=False)
    (store.out / "summary.md").write_text(summary)
    if not best.empty:
        _csv_safe(best.drop(columns=["params"])).to_csv(store.out / "best.csv", index=False)


def _plots(
    store: ResultStore,
    best: pd.DataFrame,
    curves: pd.DataFrame,
    models: Sequence[str],
    verdict: SuiteVerdict | None,
    rows: pd.DataFrame,
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn(
            "matplotlib is not installed: skipping the benchmark plots (`pip install matplotlib`).",
            stacklevel=2,
        )
        return
    figures = []
    if not best.empty:
        figures += [
            ("normalised_scores.png", lambda: plot_normalised(best, models, _normalise)),
            ("score_vs_budget.png", lambda: plot_budget(curves, models, _normalise)),
        ]
    if verdict is not None and not verdict.table.empty:
        figures += [
            ("lens_verdict.png", lambda: plot_lens_verdict(verdict.table, rows)),
            ("lens_effects.png", lambda: plot_lens_effects(verdict)),
        ]
    for name, make in figures:
        fig = make()
        try:
            fig.savefig(store.out / name, dpi=120, bbox_inches="tight")
        except OSError:
            (store.out / name).unlink(missing_ok=True)  # never leave a truncated PNG
            raise
        finally:
            plt.close(fig)
