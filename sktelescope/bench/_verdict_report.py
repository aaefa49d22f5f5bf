"""The verdict section of ``summary.md``: per-dataset slopes and criteria, R and the gap per
share ``p``, the across-dataset tests and the verdict sentence (decided in
:mod:`sktelescope.bench._verdict`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sktelescope.bench._lens import NETWORK, PROPORTIONS, p_tag
from sktelescope.bench._markdown import markdown_cell, markdown_table
from sktelescope.bench._verdict import ALPHA, TREES_R_BOUND, Verdict

__all__ = ["verdict_markdown"]


def _slope_cell(row, name: str) -> str:
    mean, std = row[f"{name}_slope_mean"], row[f"{name}_slope_std"]
    if not np.isfinite(mean):
        return "–"
    spread = f" ± {std:.3g}" if np.isfinite(std) else ""
    return f"{mean:.3g}{spread} ({row[f'{name}_slope_positive']}/{row[f'{name}_slope_splits']})"


def _yes_no(value) -> str:
    return "n/a" if not isinstance(value, bool | np.bool_) else ("yes" if value else "no")


def _verdict_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The per-dataset verdict table of summary.md."""
    trees_max = table[[f"trees_ratio_{p_tag(p)}" for p in PROPORTIONS]].max(axis=1)
    return pd.DataFrame(
        {
            "dataset": table["dataset"],
            "loss": table["lens_loss"],
            "splits": table["lens_splits"].astype(str),
            "network R slope": [_slope_cell(r, "net_ratio") for _, r in table.iterrows()],
            "trees R slope": [_slope_cell(r, "trees_ratio") for _, r in table.iterrows()],
            "trees R max": trees_max.astype(float),
            "gap slope": [_slope_cell(r, "gap") for _, r in table.iterrows()],
            "loss diff slope": [_slope_cell(r, "loss_diff") for _, r in table.iterrows()],
            "gap flags": table["gap_flags"],
            "R rises": table["net_ratio_rises"].map(_yes_no),
            "trees bounded": table["trees_ratio_bounded"].map(_yes_no),
            "gap rises": table["gap_rises"].map(_yes_no),
            "holds": table["explanation_holds"].map(_yes_no),
        }
    )


def _per_p_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over splits of R (network, trees) and the relative gap, per proportion."""
    names = {"net_ratio": "network R", "trees_ratio": "trees R", "gap": "relative gap"}
    records = [
        {"dataset": r["dataset"], "measure": label}
        | {f"p={p:g}": float(r[f"{m}_{p_tag(p)}"]) for p in PROPORTIONS}
        for _, r in table.iterrows()
        for m, label in names.items()
    ]
    return pd.DataFrame(records)


def verdict_markdown(table: pd.DataFrame, verdict: Verdict) -> str:
    """The summary's verdict section: per-dataset slopes and criteria, the across-dataset
    tests, and one sentence."""
    trees = ", ".join(sorted(set(table["lens_trees_model"])))
    refit = np.nanmax(table["refit_max_abs_diff"]) if table["refit_max_abs_diff"].notna().any() \
        else np.nan  # fmt: skip
    lines = [
        "\n## Verdict: does the kernel-extremity ratio explain the gap? "
        "(arXiv 2411.00247, Case 2)\n",
        f"The lens looks at the best-validation {NETWORK} and {trees} of each split, refitted "
        f"with the fit jobs' seeds (largest |refit - results.csv| test-score difference: "
        f"{refit:.3g}). Test sets mix a share p of the 10% most irregular test inputs. Slopes "
        "are least-squares over p per split: mean ± std over splits (positive splits/splits). "
        "Gap: the relative MSE gap (loss mse) or relative log-loss gap (loss log_loss), "
        "(L_NN(p) - L_GBT(p)) / (L_NN(0) - L_GBT(0)), undefined where flagged; loss diff: "
        "L_NN(p) - L_GBT(p), whose slope decides 'gap rises'. Trees bounded: trees R slope <= 0 "
        f"or mean trees R(p) <= {TREES_R_BOUND:g} at every p.\n",
        markdown_table(_verdict_rows(table)),
        "\nMean over splits, per share p of irregular test inputs:\n",
        markdown_table(_per_p_rows(table)),
    ]
    notes = [f"- {markdown_cell(d)}: {markdown_cell(n)}"
             for d, n in zip(table["dataset"], table["lens_note"]) if n]  # fmt: skip
    if notes:
        lines += ["Notes:\n", *notes, ""]
    return "\n".join(lines + _across_lines(verdict))


def _across_lines(verdict: Verdict) -> list[str]:
    """The across-dataset tests, the rule's conditions, and the verdict sentence last."""
    yes = {True: "yes", False: "no"}
    return [
        f"Across datasets (alpha = {ALPHA:g}):\n",
        f"- network R rises: {verdict.net_rises.text()}",
        f"- gap rises: {verdict.gap_rises.text()}",
        f"- trees R bounded: {verdict.trees_bounded.text()}",
        f"- Spearman correlation of the network R slope with the gap slope: rho = "
        f"{verdict.rho:.3g} (p = {verdict.rho_pvalue:.3g}, {verdict.n_rho} datasets"
        + ("; needs at least 3)" if verdict.n_rho < 3 else ")"),
        f"- the rule: 'holds' needs all of: network R rises on significantly many datasets "
        f"({yes[verdict.net_rises.significant]}), the gap too "
        f"({yes[verdict.gap_rises.significant]}), trees R bounded on significantly many "
        f"({yes[verdict.trees_ok]}), a positive significant correlation "
        f"({yes[verdict.correlated]}); else 'holds on these datasets only' where the "
        "per-dataset criteria hold "
        f"({len(verdict.holding)} datasets); else 'does not hold'.",
        f"\n**Verdict:** {markdown_cell(verdict.sentence)}\n",
    ]
