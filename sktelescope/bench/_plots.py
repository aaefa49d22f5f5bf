"""The benchmark's matplotlib figures (matplotlib is imported by the caller's check)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from sktelescope.bench._lens import PROPORTIONS, p_tag

__all__ = ["plot_budget", "plot_lens", "plot_lens_verdict", "plot_normalised"]


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
    """Normalised test score versus the number of random-search configurations tried."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    mean = curves.groupby(["dataset", "model", "k"], as_index=False)["test_score"].mean()
    mean["normalised"] = normalise(mean)
    fig, ax = plt.subplots(figsize=(6, 4))
    for model in (m for m in models if m in set(mean["model"])):
        sub = mean[mean["model"] == model].groupby("k")["normalised"].mean()
        ax.plot(sub.index, sub.values, marker="o", label=model)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("configurations tried (k; k = 1 is the default)")
    ax.set_ylabel("normalised test score, mean over datasets")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Score versus tuning budget")
    return fig


def plot_lens(table: pd.DataFrame):
    """One point per dataset: the relative gap's slope over ``p`` against the network's R
    slope (means over splits): the across-dataset correlation of the verdict."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    x, y = table["net_ratio_slope_mean"], table["gap_slope_mean"]
    ax.scatter(x, y, s=30)
    for name, xi, yi in zip(table["dataset"], x, y):
        ax.annotate(name.split("/")[-1], (xi, yi), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("slope over p of the network's R (kernel-extremity ratio)")
    ax.set_ylabel("slope over p of the relative loss gap")
    ax.grid(alpha=0.3)
    ax.set_title("The lens across datasets (mean over splits)")
    return fig


def plot_lens_verdict(table: pd.DataFrame):
    """Small multiples, one column per dataset: R(p) of the network and the trees (top) and
    the relative loss gap(p) (bottom; the raw loss difference where the gap is undefined on
    every split), mean ± std over splits (the paper's Fig. 5)."""
    import matplotlib.pyplot as plt

    n = len(table)
    cols = min(n, 4)
    blocks = -(-n // cols)
    fig, axes = plt.subplots(2 * blocks, cols, figsize=(3.2 * cols, 4.6 * blocks),
                             squeeze=False, sharex=True)  # fmt: skip
    for i, (_, row) in enumerate(table.iterrows()):
        block, col = divmod(i, cols)
        top, bottom = axes[2 * block, col], axes[2 * block + 1, col]
        # Where the network is not worse at p = 0 the relative gap is undefined on every
        # split: the raw loss difference is drawn instead, and the axis says so.
        gap = "gap" if np.isfinite(row[f"gap_{p_tag(0.0)}"]) else "loss_diff"
        series = ((top, "net_ratio", "network R"), (top, "trees_ratio", "trees R"),
                  (bottom, gap, gap))  # fmt: skip
        for ax, measure, label in series:
            mean = [row[f"{measure}_{p_tag(p)}"] for p in PROPORTIONS]
            std = [row[f"{measure}_{p_tag(p)}_std"] for p in PROPORTIONS]
            ax.errorbar(PROPORTIONS, mean, yerr=std, marker="o", ms=3, capsize=2, label=label)
        top.set_title(str(row["dataset"]), fontsize=8)  # in full: house_16H is in two groups
        top.axhline(1.0, color="grey", lw=0.8, ls="--")
        bottom.axhline(1.0 if gap == "gap" else 0.0, color="grey", lw=0.8, ls="--")
        bottom.set_xlabel("share p of irregular test inputs")
        if col == 0:
            top.set_ylabel("kernel-extremity ratio R(p)")
        loss = row["lens_loss"]
        ylabel = f"relative {loss} gap(p)" if gap == "gap" else f"{loss} NN - GBT (gap undefined)"
        bottom.set_ylabel(ylabel, fontsize=8)
        top.legend(fontsize=7)
    for j in range(n, blocks * cols):
        block, col = divmod(j, cols)
        axes[2 * block, col].set_visible(False)
        axes[2 * block + 1, col].set_visible(False)
    fig.suptitle("The lens on the best-validation models: mean ± std over splits")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # room for the suptitle
    return fig
