"""The verdict section of ``summary.md``: effect sizes with their intervals first, then the
across-dataset tests, the outcome (decided in :mod:`sktelescope.bench._verdict`), R and the
gap per share ``p``, and what the run does not show."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sktelescope.bench._lens import PROPORTIONS, p_tag
from sktelescope.bench._markdown import markdown_cell, markdown_table
from sktelescope.bench._scope import RunScope
from sktelescope.bench._verdict import ALPHA, PAPER_EFFECT, TREES_IDENTITY, SuiteVerdict

__all__ = ["comparison_markdown", "verdict_markdown"]

#: Marks a value from a single split (no spread, no interval).
SINGLE = "†"


def _interval(row, effect: str) -> str:
    est = row[f"{effect}_estimate"]
    if not np.isfinite(est):
        return "–"
    if row[f"{effect}_n_folds"] < 2:
        return f"{est:.3g} {SINGLE}"
    return f"{est:.3g} [{row[f'{effect}_low']:.3g}, {row[f'{effect}_high']:.3g}]"


def _plain(value: float, n_folds: int) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:.3g}" + (f" {SINGLE}" if n_folds < 2 else "")


def _effects_table(table: pd.DataFrame) -> pd.DataFrame:
    table = table.sort_values("dataset")
    return pd.DataFrame(
        {
            "dataset": table["dataset"],
            "splits": table["gap_n_folds"].astype(int).astype(str),
            "set size": table["set_size"].astype(int).astype(str),
            "gap(0)": [_plain(v, f) for v, f in zip(table["gap_p000"], table["gap_n_folds"])],
            "gap slope [95% CI]": [_interval(r, "gap") for _, r in table.iterrows()],
            "network R slope": [_plain(v, f) for v, f in
                                zip(table["net_ratio_slope"], table["gap_n_folds"])],
            "trees R slope": [_plain(v, f) for v, f in
                              zip(table["trees_ratio_slope"], table["gap_n_folds"])],
            "R contrast [95% CI]": [_interval(r, "contrast") for _, r in table.iterrows()],
            "R-gap correlation z [95% CI]": [_interval(r, "correlation")
                                             for _, r in table.iterrows()],
            "outcome": [o if t else f"not tested: {why}" for o, t, why in
                        zip(table["outcome"], table["tested"], table["reason"])],
        }
    )  # fmt: skip


def _pooled_table(verdict: SuiteVerdict) -> pd.DataFrame:
    p = verdict.pooled
    return pd.DataFrame(
        {
            "effect": p["effect"],
            "pooled [95% CI]": [f"{e:.3g} [{lo:.3g}, {hi:.3g}]" if np.isfinite(e) else "–"
                                for e, lo, hi in zip(p["estimate"], p["low"], p["high"])],
            "tau²": p["tau2"].astype(float),
            "p (effect > 0)": p["p_up"].astype(float),
            "p (effect < 0)": p["p_down"].astype(float),
            "Wilcoxon p (> 0)": p["wilcoxon_p"].astype(float),
            "datasets": p["k"].astype(str),
            "power at the paper's size": p["power"].astype(float),
        }
    )  # fmt: skip


def _per_p_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over splits of R (network, trees) and the scale-free gap, per proportion."""
    names = {"net_ratio": "network R", "trees_ratio": "trees R", "gap": "scale-free gap"}
    records = []
    for dataset, group in rows.groupby("dataset", sort=True):
        mark = f" {SINGLE}" if len(group) < 2 else ""
        for m, label in names.items():
            means = {f"p={p:g}": float(group[f"{m}_{p_tag(p)}"].mean()) for p in PROPORTIONS}
            records.append({"dataset": dataset + mark, "measure": label} | means)
    return pd.DataFrame(records)


def _setup_lines(verdict: SuiteVerdict, rows: pd.DataFrame, scope: RunScope, extras) -> list:
    lens = scope.lens
    refit = extras["refit_max_abs_diff"]
    refit = float(np.nanmax(refit)) if refit.notna().any() else np.nan
    sizes = sorted({int(s) for s in rows["set_size"]})
    return [
        "\n## Verdict: does the kernel-extremity ratio explain the gap? "
        "(arXiv 2411.00247, Case 2)\n",
        f"The lens refits the best-validation {lens.network} and {lens.trees} of each split "
        f"(largest |refit - results.csv| test-score difference: {refit:.3g}) and measures "
        f"them on test sets mixing a share p ∈ {{{', '.join(f'{p:g}' for p in PROPORTIONS)}}} "
        f"of irregular test inputs: {lens.describe()}. Set sizes in this run: "
        f"{', '.join(map(str, sizes))} points (the tests need {lens.set_size}).\n",
        "Three effects per split, their mean over splits per dataset: the **gap slope**, "
        "slope over p of (L_NN(p) - L_GBT(p)) / L_GBT(0) (loss: "
        f"{', '.join(sorted(set(rows['loss'])))}); the **R contrast**, the network's R slope "
        "minus the trees'; the **R-gap correlation**, the Fisher z of the correlation over p "
        "of the network's R(p) with gap(p) on the same split. Intervals: estimate ± t(splits "
        "- 1) x a bootstrap error (splits with replacement and, for the gap, the test points "
        f"of each split). {SINGLE}: a single split, no interval. A dataset is tested when "
        "its sets have the run's size, it has 2 or more splits, the trees win at p = 0 "
        "(gap(0) > 0, the paper's claim is about such data) and it is the first of its data "
        "source; its outcome (Holm's correction over the tested datasets): *supports* when "
        "all three effects are significantly positive, *contradicts* when one is "
        f"significantly negative, else *inconclusive* (alpha = {ALPHA:g}).\n",
        "### Effect sizes per dataset\n",
        markdown_table(_effects_table(verdict.table)),
    ]


def _across_lines(verdict: SuiteVerdict) -> list[str]:
    k = verdict.n_tested
    n_support = int((verdict.table["outcome"] == "supports").sum())
    n_contra = int((verdict.table["outcome"] == "contradicts").sum())
    rate = (f"{n_support} of {k} tested datasets support it ({verdict.rate:.0%}, 95% Wilson "
            f"interval {verdict.rate_low:.0%} to {verdict.rate_high:.0%}), {n_contra} "
            "contradict it." if k else "No dataset is tested.")  # fmt: skip
    return [
        f"\n### Across datasets ({k} tested)\n",
        "The primary test: a random-effects meta-analysis of each effect over the tested "
        "datasets (DerSimonian-Laird, Hartung-Knapp-Sidik-Jonkman interval with t(k - 1)); "
        "the suite *supports* the explanation when all three pooled effects are significantly "
        "positive, *contradicts* it when one is significantly negative (Bonferroni over the "
        "three). Beside it, the one-sided Wilcoxon signed-rank test of the per-dataset "
        "estimates. Power: of the one-sided pooled test against an effect of the paper's size "
        f"(gap slope {PAPER_EFFECT['gap']:g}, R contrast {PAPER_EFFECT['contrast']:g}, "
        f"correlation z {PAPER_EFFECT['correlation']:g}; read off its Fig 5, which reports no "
        "numbers), with this run's errors and between-dataset variance.\n",
        markdown_table(_pooled_table(verdict)) if k else "",
        f"\n{rate}\n",
        *[f"- {markdown_cell(r)}" for r in verdict.reasons],
        f"\n**Verdict ({verdict.outcome}).** {markdown_cell(verdict.sentence)}\n",
        f"{TREES_IDENTITY}\n",
    ]


def _differences(scope: RunScope) -> list[str]:
    """How the run's setup differs from the paper's Case 2."""
    lens, proto = scope.lens, scope.protocol
    out = []
    if scope.name != "paper":
        out += [f"this is not the paper protocol: {lens.network} against {lens.trees}, "
                f"{scope.budget} configurations per model, classification (log-loss) beside "
                "regression, any dataset size"]  # fmt: skip
    out += [
        f"training rows capped at {proto.max_train} and validation at {proto.max_val}",
        f"mixed test sets of {lens.set_size} points, the irregular pool the larger of 10% of "
        "the test split and the set size (the paper's test sets have 4,000 points, but a "
        "4,000-point fold's most irregular tenth holds 400: sets of 4,000 at p = 1 would "
        "need 40,000 test points per fold)",
        f"R over every {lens.step_stride}th step and a {lens.max_train}-row training subset"
        if lens.kernel == "step" else "R from the stage kernel (no batch mask, step size or "
        "preconditioner), not the paper's per-step kernel",
        "search spaces conditioned on sane draws (boosters: learning rate x trees >= 2; "
        "networks: learning rates from 1e-4, the paper's from 1e-5)",
        "the network trains with Adam and early stopping (the paper names neither)",
    ]  # fmt: skip
    if scope.name == "paper":
        out.append("superconduct (Fig 14) is not available offline")
    return out


def _limits_lines(verdict: SuiteVerdict, scope: RunScope) -> list[str]:
    powers = ", ".join(f"{r.effect} {r.power:.2f}" for r in verdict.pooled.itertuples())
    differences = _differences(scope)
    return [
        "\n### What this does not show\n",
        "- Causes: the effects are associations over p within datasets; a rising R beside a "
        "rising gap does not show that the kernel's extremity makes the network lose.",
        f"- The paper's exact setup: {'; '.join(differences)}.",
        f"- Much, when it is small: {verdict.n_tested} datasets tested; power against the "
        f"paper's effect size: {powers or 'none'}. An *inconclusive* outcome at low power says "
        "little either way; the per-dataset intervals are the result.",
        "- The trees win at p = 0 is decided on the same test splits as the slopes (as the "
        "paper selects its datasets); the slopes share the p = 0 set's noise, which biases "
        "them, if at all, downwards.",
    ]


def verdict_markdown(
    verdict: SuiteVerdict, rows: pd.DataFrame, scope: RunScope, extras: pd.DataFrame
) -> str:
    """The summary's verdict section: effect sizes with intervals, the across-dataset tests,
    the outcome, R and the gap per share p, what it does not show, and the lens notes."""
    lines = _setup_lines(verdict, rows, scope, extras) + _across_lines(verdict)
    lines += ["\n### R and the gap per share p (mean over splits)\n",
              markdown_table(_per_p_rows(rows))]  # fmt: skip
    lines += _limits_lines(verdict, scope)
    notes = [f"- {markdown_cell(d)}: {markdown_cell(n)}"
             for d, n in zip(extras["dataset"], extras["lens_note"]) if n]  # fmt: skip
    if notes:
        lines += ["\nNotes:\n", *notes]
    return "\n".join(lines) + "\n"


def comparison_markdown(verdicts: dict, scores: dict) -> str:
    """The networks of one lens side by side: per dataset, each network's test score, gap
    slope and R contrast with their intervals and its outcome; then each one's pooled
    effects and suite outcome. ``verdicts`` maps a network to its :class:`SuiteVerdict`
    (the first is the run's verdict), ``scores`` a network to its mean test score per
    dataset."""
    networks = list(verdicts)
    tables = {n: v.table.set_index("dataset") for n, v in verdicts.items()}
    datasets = sorted(set().union(*(t.index for t in tables.values())))
    rows = []
    for dataset in datasets:
        row = {"dataset": dataset}
        for n in networks:
            r = tables[n].loc[dataset] if dataset in tables[n].index else None
            score = scores.get(n, {}).get(dataset, np.nan)
            row[f"{n} test score"] = "–" if not np.isfinite(score) else f"{score:.4f}"
            row[f"{n} gap slope"] = "–" if r is None else _interval(r, "gap")
            row[f"{n} R contrast"] = "–" if r is None else _interval(r, "contrast")
            row[f"{n} outcome"] = "–" if r is None else (r["outcome"] if r["tested"]
                                                         else "not tested")  # fmt: skip
        rows.append(row)
    pooled = []
    for n, v in verdicts.items():
        effects = v.pooled.set_index("effect") if not v.pooled.empty else pd.DataFrame()
        cells = {"network": n, "tested": str(v.n_tested), "outcome": v.outcome}
        for effect in ("gap", "contrast", "correlation"):
            e = effects.loc[effect] if effect in effects.index else None
            if e is not None and np.isfinite(e["estimate"]):
                cells[effect] = f"{e['estimate']:.3g} [{e['low']:.3g}, {e['high']:.3g}]"
            else:
                cells[effect] = "–"
        pooled.append(cells)
    lines = [
        "\n## The same lens on other networks\n",
        f"Each network's best-validation configuration per split, refitted and measured as "
        f"{networks[0]}'s above (same trees, kernel and test sets); its own verdict (a dataset "
        "is tested when the trees beat that network at p = 0). A lower gap slope and R "
        "contrast mean the network's loss and kernel extremity grow less on irregular inputs. "
        f"{SINGLE}: a single split.\n",
        markdown_table(pd.DataFrame(rows)),
        "\nPooled over each network's tested datasets (random effects, 95% CI):\n",
        markdown_table(pd.DataFrame(pooled)),
    ]
    return "\n".join(lines) + "\n"
