"""The benchmark's matplotlib figures (matplotlib is imported by the caller's check)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from sktelescope.bench._lens import PROPORTIONS, p_tag

__all__ = ["plot_budget", "plot_lens_effects", "plot_lens_verdict", "plot_normalised"]


def plot_normalised(best: pd.DataFrame, models: Sequence[str], normalise: Callable):
    """Dot plot: per dataset, each model's mean test score, min-max normalised across models."""
    import matplotlib.pyplot as plt

    means = best.groupby(["dataset", "model"], as_index=False)["test_score"].mean()
    means["normalised"] = normalise(means)
    datasets = sorted(means["dataset"].unique())
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(datasets) + 1.5))
    for i, model in enumerate(m for m in models if m in set(means["model"])):
        sub = means[means["model"] == model].set_index("dataset").reindex(datasets)
        offset = (i - len(models) / 2) * 0.06
        ax.scatter(sub["normalised"], [y + offset for y in range(len(datasets))], label=model, s=30)
    ax.set_yticks(range(len(datasets)), datasets)
    ax.set_xlabel("normalised test score (1 = best model on the dataset, 0 = worst)")
    ax.set_xlim(-0.05, 1.05)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title("Best-validation configuration, mean over splits")
    return fig


def plot_budget(curves: pd.DataFrame, models: Sequence[str], normalise: Callable):
    """Normalised validation and test score versus the number of configurations tried: the
    validation score of the chosen configuration can only rise, its test score can fall."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, column, label in ((axes[0], "val_score", "validation"),
                              (axes[1], "test_score", "test")):  # fmt: skip
        mean = curves.groupby(["dataset", "model", "k"], as_index=False)[column].mean()
        mean["normalised"] = normalise(mean, column=column)
        for model in (m for m in models if m in set(mean["model"])):
            sub = mean[mean["model"] == model].groupby("k")["normalised"].mean()
            ax.plot(sub.index, sub.values, marker="o", label=model)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("configurations tried (k; k = 1 is the default)")
        ax.set_ylabel(f"normalised {label} score, mean over datasets")
        ax.set_title(f"{label} score of the best-validation configuration", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "Score versus tuning budget. After k draws the chosen configuration is the best on "
        "validation:\nits validation score can only rise with k; its test score can fall "
        "(a configuration that validates better can test worse).",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    return fig


_EFFECT_LABELS = {
    "gap": "scale-free gap slope\n(L_NN - L_GBT)/L_GBT(0) per unit p",
    "contrast": "R slope contrast\n(network R slope - trees R slope)",
    "correlation": "R-gap correlation over p\n(Fisher z, matched splits)",
}


def plot_lens_effects(verdict):
    """Forest plot: per dataset and pooled, each effect with its 95% interval (the verdict's
    numbers; hollow: not in the across-dataset test; no bar: one split)."""
    import matplotlib.pyplot as plt

    table = verdict.table.sort_values("dataset").reset_index(drop=True)
    pooled = verdict.pooled.set_index("effect")
    n = len(table)
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.35 * n + 2.2), sharey=True)
    y = np.arange(n)[::-1] + 1.0
    for ax, (effect, label) in zip(axes, _EFFECT_LABELS.items()):
        est = table[f"{effect}_estimate"].to_numpy(dtype=float)
        low, high = table[f"{effect}_low"], table[f"{effect}_high"]
        err = np.vstack([est - low, high - est])
        tested = table["tested"].to_numpy(dtype=bool)
        for mask, face in ((tested, "C0"), (~tested, "none")):
            ax.errorbar(est[mask], y[mask], xerr=np.nan_to_num(err[:, mask]), fmt="o",
                        mfc=face, color="C0", capsize=2, ms=5)  # fmt: skip
        if effect in pooled.index and np.isfinite(pooled.loc[effect, "estimate"]):
            p = pooled.loc[effect]
            ax.errorbar([p["estimate"]], [0.0], xerr=[[p["estimate"] - p["low"]],
                        [p["high"] - p["estimate"]]], fmt="D", color="C3", capsize=3)  # fmt: skip
        ax.axvline(0.0, color="grey", lw=0.8)
        ends = np.abs(np.concatenate([est, low, high]))
        if np.nanmax(ends, initial=0.0) > 20:  # a near-zero trees loss: keep the rest readable
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel(label, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    names = [d + (" †" if f < 2 else "") for d, f in zip(table["dataset"], table["gap_n_folds"])]
    axes[0].set_yticks(list(y) + [0.0], names + [f"pooled ({verdict.n_tested} tested)"],
                       fontsize=8)  # fmt: skip
    fig.suptitle(f"The lens's effects, 95% intervals (verdict: {verdict.outcome}). Hollow: not "
                 "in the test; †: one split, no interval", fontsize=9)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    return fig


def plot_lens_verdict(table: pd.DataFrame, rows: pd.DataFrame):
    """Small multiples, one column per dataset: R(p) of the network and the trees (top) and
    the scale-free gap ``(L_NN(p) - L_GBT(p)) / L_GBT(0)`` (bottom), mean ± std over splits
    (the paper's Fig. 5, with the gap the verdict tests)."""
    import matplotlib.pyplot as plt

    table = table.sort_values("dataset").reset_index(drop=True)
    n = len(table)
    cols = min(n, 4)
    blocks = -(-n // cols)
    fig, axes = plt.subplots(2 * blocks, cols, figsize=(3.2 * cols, 4.6 * blocks),
                             squeeze=False, sharex=True)  # fmt: skip
    for i, row in table.iterrows():
        block, col = divmod(i, cols)
        top, bottom = axes[2 * block, col], axes[2 * block + 1, col]
        split_rows = rows[rows["dataset"] == row["dataset"]]
        series = ((top, "net_ratio", "network R"), (top, "trees_ratio", "trees R"),
                  (bottom, "gap", "scale-free gap"))  # fmt: skip
        for ax, measure, label in series:
            values = split_rows[[f"{measure}_{p_tag(p)}" for p in PROPORTIONS]].to_numpy(float)
            values = values[np.isfinite(values).all(axis=1)]  # trees R: not on every split
            if not len(values):
                continue
            std = values.std(axis=0, ddof=1) if len(values) > 1 else None
            ax.errorbar(PROPORTIONS, values.mean(axis=0), yerr=std, marker="o", ms=3,
                        capsize=2, label=label)  # fmt: skip
        single = " † one split" if len(split_rows) < 2 else f" ({len(split_rows)} splits)"
        top.set_title(f"{row['dataset']}{single}\n{row['outcome']}", fontsize=8)
        top.axhline(1.0, color="grey", lw=0.8, ls="--")
        bottom.axhline(0.0, color="grey", lw=0.8, ls="--")
        bottom.set_xlabel("share p of irregular test inputs")
        if col == 0:
            top.set_ylabel("kernel-extremity ratio R(p)", fontsize=8)
            bottom.set_ylabel("(L_NN(p) - L_GBT(p)) / L_GBT(0)", fontsize=8)
        top.legend(fontsize=7)
    for j in range(n, blocks * cols):
        block, col = divmod(j, cols)
        axes[2 * block, col].set_visible(False)
        axes[2 * block + 1, col].set_visible(False)
    fig.suptitle("The lens on the best-validation models: mean ± std over splits")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # room for the suptitle
    return fig
