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

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sktelescope.bench._lens import MEASURES
from sktelescope.bench._protocol import PRIMARY
from sktelescope.bench._store import ResultsFolderError, ResultStore, escape_cell

__all__ = [
    "budget_curves",
    "dataset_table",
    "failure_counts",
    "family_gaps",
    "lens_means",
    "load_results",
    "markdown_cell",
    "select_best",
    "summary_table",
    "write_report",
]


def _run_rows(
    store: ResultStore | None,
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    budget: int | None = None,
    n_splits: int | None = None,
) -> pd.DataFrame:
    """Every row of the CSV (the last one per key) restricted to a run's datasets, models,
    budget and splits; fit rows and lens rows alike (lens rows have no model or config)."""
    df = pd.DataFrame(store.read_rows()) if store is not None else pd.DataFrame()
    if df.empty:
        return df
    keep = pd.Series(True, index=df.index)
    df["split"] = df["split"].astype(int)
    if "config" in df:
        df["config"] = df["config"].astype(int)
        if models is not None:
            keep &= df["model"].isin(list(models))
        if budget is not None:
            keep &= df["config"] < budget
    if datasets is not None:
        keep &= df["dataset"].isin(list(datasets))
    if n_splits is not None:
        keep &= df["split"] < n_splits
    return df[keep].copy()


def load_results(
    store: ResultStore,
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    budget: int | None = None,
    n_splits: int | None = None,
) -> pd.DataFrame:
    """The successful rows of the CSV, restricted to a run's datasets, models, budget, splits.

    Adds ``metric``, ``val_score`` and ``test_score`` (the task's primary metric).
    """
    df = _run_rows(store, datasets, models, budget, n_splits)
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
    datasets: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    budget: int | None = None,
    n_splits: int | None = None,
    lens_store: ResultStore | None = None,
) -> pd.DataFrame:
    """The failed jobs of a run, per job kind x model x dataset.

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
        ("fit", _run_rows(store, datasets, models, budget, n_splits)),
        ("lens", _run_rows(lens_store, datasets, None, None, n_splits)),
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


def markdown_cell(text: object) -> str:
    r"""``text`` as one markdown table cell: ``|`` escaped, line breaks as spaces.

    Examples
    --------
    >>> markdown_cell("a|b\nc")
    'a\\|b c'
    """
    return " ".join(str(text).splitlines()).replace("|", "\\|")


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
        "rerun the same command with `--retry-errors` to refit them.\n\n" + _markdown(table)
    )


#: The network the lens looks at (the project's own); other networks are peers.
LENS_NETWORK = "telescoping_mlp"


def family_gaps(best: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the network (this project's, else the best one) and the best trees model
    (by mean test score), and the network-minus-trees score gap (negative: the trees win).

    This is the gap the paper's lens explains; :func:`dataset_table` joins the lens columns.
    """
    if best.empty or "family" not in best:
        return pd.DataFrame()
    means = best.groupby(["dataset", "family", "model"], as_index=False).agg(
        metric=("metric", "first"), test_score=("test_score", "mean")
    )
    rows = []
    for dataset, group in means.groupby("dataset"):
        top = group.sort_values("test_score").groupby("family").tail(1).set_index("family")
        if not {"network", "trees"} <= set(top.index):
            continue
        trees, ours = top.loc["trees"], group[group["model"] == LENS_NETWORK]
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


def lens_means(
    lens_store: ResultStore | None,
    datasets: Sequence[str] | None = None,
    n_splits: int | None = None,
) -> pd.DataFrame:
    """Per dataset, the mean over splits of the lens measures (``lens.csv``, successful rows).

    Adds ``default_gap`` and ``default_gap_irregular`` (default network minus default trees,
    on the whole test split and on its irregular pool), ``lens_splits`` and ``lens_note``.
    """
    rows = pd.DataFrame(lens_store.read_rows()) if lens_store is not None else pd.DataFrame()
    if rows.empty:
        return rows
    rows["split"] = rows["split"].astype(int)
    keep = rows["status"] == "ok"
    if datasets is not None:
        keep &= rows["dataset"].isin(list(datasets))
    if n_splits is not None:
        keep &= rows["split"] < n_splits
    rows = rows[keep].copy()
    if rows.empty:
        return rows
    for col in MEASURES:
        rows[col] = pd.to_numeric(rows[col], errors="coerce")
    grouped = rows.groupby("dataset", sort=True)
    means = grouped[list(MEASURES)].mean()
    means["default_gap"] = means["net_default_score"] - means["trees_default_score"]
    means["default_gap_irregular"] = (
        means["net_default_score_irregular"] - means["trees_default_score_irregular"]
    )
    means["lens_trees_model"] = grouped["trees_model"].first()
    means["lens_splits"] = grouped.size()
    means["lens_note"] = grouped["note"].agg(lambda s: "; ".join(sorted({n for n in s if n})))
    return means.reset_index()


def dataset_table(gaps: pd.DataFrame, lens: pd.DataFrame) -> pd.DataFrame:
    """The per-dataset table of ``datasets.csv``: the score gap joined with the lens means."""
    if lens.empty:
        return gaps
    if gaps.empty:
        return lens
    return gaps.merge(lens, on="dataset", how="outer")


#: The lens columns shown in summary.md (all of them are in datasets.csv).
LENS_SUMMARY = (*MEASURES[:6], "default_gap", "default_gap_irregular")


def _lens_markdown(table: pd.DataFrame) -> str:
    cols = ["dataset"] + [c for c in ("network_minus_trees",) if c in table] + list(LENS_SUMMARY)
    text = (
        "\nThe lens (PAPER.md §2d, §2f), default configurations, mean over splits: irregularity "
        "of the test inputs (mean; share above the training 90% quantile), kernel-extremity "
        "ratio R of the network and the trees on the test inputs and on their most irregular "
        "10%, and the default network-minus-trees gap there:\n\n"
        + _markdown(table[[c for c in cols if c in table]])
    )
    notes = [
        f"- {markdown_cell(d)}: {markdown_cell(n)}"
        for d, n in zip(table["dataset"], table["lens_note"])
        if n
    ]
    return text + ("\n" + "\n".join(notes) + "\n" if notes else "")


def _markdown(frame: pd.DataFrame) -> str:
    """A plain markdown table (floats with 4 decimals, NaN as –), without optional dependencies."""
    cells = [
        [
            ("–" if np.isnan(v) else f"{v:.4f}") if isinstance(v, float) else markdown_cell(v)
            for v in row
        ]
        for row in frame.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def budget_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Test score after ``k`` configurations, per dataset x split x model x k.

    After ``k`` configurations the chosen one is the best-validation configuration among
    configurations ``0..k-1``; its test score is reported.
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
                    "test_score": best_test,
                }
            )
    return pd.DataFrame(rows)


def _normalise(frame: pd.DataFrame, by: str = "dataset") -> pd.Series:
    """Min-max normalise ``test_score`` within each dataset (1 = best model, 0 = worst)."""
    grouped = frame.groupby(by)["test_score"]
    low, high = grouped.transform("min"), grouped.transform("max")
    span = (high - low).replace(0, np.nan)
    return ((frame["test_score"] - low) / span).fillna(1.0)


def write_report(
    store: ResultStore,
    datasets: Sequence[str],
    models: Sequence[str],
    budget: int,
    n_splits: int,
    lens_store: ResultStore | None = None,
) -> str:
    """Write ``summary.md``, ``best.csv``, ``datasets.csv`` and the PNG plots; return the
    summary (the score table, then the gaps, the lens and the failures).

    Examples
    --------
    >>> write_report(store, ["sklearn:diabetes"], ["hgb"], 2, 1)  # doctest: +SKIP
    """
    df = load_results(store, datasets, models, budget, n_splits)
    best = select_best(df)
    failures = failure_counts(store, datasets, models, budget, n_splits, lens_store)
    table = summary_table(best, models, failures)
    header = (
        f"# sktelescope bench summary\n\nTest score of the best-validation configuration "
        f"({budget} configurations per model, {n_splits} splits): mean ± std over splits; "
        "best per dataset in bold. Regression: R²; classification: accuracy.\n\n"
    )
    gaps = family_gaps(best)
    if not gaps.empty:
        table += (
            "\nNetwork (telescoping_mlp when run) minus best trees, test score "
            "(negative: the trees win):\n\n" + _markdown(gaps)
        )
    per_dataset = dataset_table(gaps, lens_means(lens_store, datasets, n_splits))
    if "irregularity_mean" in per_dataset:
        table += _lens_markdown(per_dataset)
    table += _failures_markdown(failures)
    try:
        _write_outputs(store, header + table, best, per_dataset)
    except OSError as exc:
        raise ResultsFolderError(
            f"Cannot write the report into {str(store.out)!r} ({exc.strerror or exc}). The "
            "results are kept in results.csv: fix the folder (free space, permissions) and "
            "rerun the same command to write the report."
        ) from None
    _plots(store, best, budget_curves(df) if not df.empty else df, models, per_dataset)
    return table


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
    per_dataset: pd.DataFrame,
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
    from sktelescope.bench._plots import plot_budget, plot_lens, plot_normalised

    figures = []
    if not best.empty:
        figures += [
            ("normalised_scores.png", lambda: plot_normalised(best, models, _normalise)),
            ("score_vs_budget.png", lambda: plot_budget(curves, models, _normalise)),
        ]
    if "irregularity_mean" in per_dataset:
        figures.append(("lens_scatter.png", lambda: plot_lens(per_dataset)))
    for name, make in figures:
        fig = make()
        fig.savefig(store.out / name, dpi=120, bbox_inches="tight")
        plt.close(fig)
