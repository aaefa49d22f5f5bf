"""Turn the results CSV into the summary table and the plots.

Selection: for each dataset x split x model, the configuration with the best validation score
(R² for regression, accuracy for classification) is chosen and its test score reported. The
"score versus tuning budget" curve is, after k configurations, the test score of the best
validation configuration among the first k.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sktelescope.bench._lens import MEASURES
from sktelescope.bench._protocol import PRIMARY
from sktelescope.bench._store import ResultStore

__all__ = [
    "budget_curves",
    "dataset_table",
    "family_gaps",
    "lens_means",
    "load_results",
    "select_best",
    "summary_table",
    "write_report",
]


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
    df = pd.DataFrame(store.read_rows())
    if df.empty:
        return df
    for col in df.columns:
        if col.startswith(("val_", "test_")) or col.endswith("_seconds"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df["split"], df["config"] = df["split"].astype(int), df["config"].astype(int)
    keep = df["status"] == "ok"
    if datasets is not None:
        keep &= df["dataset"].isin(list(datasets))
    if models is not None:
        keep &= df["model"].isin(list(models))
    if budget is not None:
        keep &= df["config"] < budget
    if n_splits is not None:
        keep &= df["split"] < n_splits
    df = df[keep].copy()
    df["metric"] = df["task"].map(PRIMARY)
    df["val_score"] = [r[f"val_{m}"] for m, (_, r) in zip(df["metric"], df.iterrows())]
    df["test_score"] = [r[f"test_{m}"] for m, (_, r) in zip(df["metric"], df.iterrows())]
    return df


def select_best(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset x split x model, the row of the configuration with the best validation score.

    Ties go to the lower configuration index (the default first).
    """
    if df.empty:
        return df
    ordered = df.sort_values(["val_score", "config"], ascending=[False, True], na_position="last")
    return ordered.groupby(["dataset", "split", "model"], sort=True).head(1).reset_index(drop=True)


def summary_table(best: pd.DataFrame, models: Sequence[str]) -> str:
    """Markdown table: per dataset, mean ± std over splits of each model's test score.

    The best mean of each row is in bold; with a single split there is no ± part.
    """
    if best.empty:
        return "_No finished results yet._\n"
    agg = best.groupby(["dataset", "model"])["test_score"].agg(["mean", "std", "count"])
    models = [m for m in models if m in set(best["model"])]
    metric = best.groupby("dataset")["metric"].first()
    lines = [
        "| dataset | metric | " + " | ".join(models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    for dataset in metric.index:
        cells = {m: agg.loc[(dataset, m)] for m in models if (dataset, m) in agg.index}
        top = max((c["mean"] for c in cells.values()), default=np.nan)
        row = []
        for m in models:
            if m not in cells:
                row.append("–")
                continue
            c = cells[m]
            text = f"{c['mean']:.4f}"
            if c["count"] > 1:
                text += f" ± {c['std']:.4f}"
            row.append(f"**{text}**" if np.isclose(c["mean"], top) else text)
        lines.append(f"| {dataset} | {metric[dataset]} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


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
    notes = [f"- {d}: {n}" for d, n in zip(table["dataset"], table["lens_note"]) if n]
    return text + ("\n" + "\n".join(notes) + "\n" if notes else "")


def _markdown(frame: pd.DataFrame) -> str:
    """A plain markdown table (floats with 4 decimals, NaN as –), without optional dependencies."""
    cells = [
        [("–" if np.isnan(v) else f"{v:.4f}") if isinstance(v, float) else str(v) for v in row]
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
    """Write ``summary.md``, ``best.csv``, ``datasets.csv`` and the PNG plots; return the table.

    Examples
    --------
    >>> write_report(store, ["sklearn:diabetes"], ["hgb"], 2, 1)  # doctest: +SKIP
    """
    df = load_results(store, datasets, models, budget, n_splits)
    best = select_best(df)
    table = summary_table(best, models)
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
    if not per_dataset.empty:
        per_dataset.to_csv(store.out / "datasets.csv", index=False)
    (store.out / "summary.md").write_text(header + table)
    if not best.empty:
        best.drop(columns=["params"]).to_csv(store.out / "best.csv", index=False)
    _plots(store, best, budget_curves(df) if not df.empty else df, models, per_dataset)
    return table


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
