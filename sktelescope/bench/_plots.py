"""The benchmark's matplotlib figures (matplotlib is imported by the caller's check)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

__all__ = ["plot_budget", "plot_lens", "plot_normalised"]


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
    """One point per dataset: the network-minus-trees score gap against the lens measures.

    Left: mean irregularity of the test inputs; right: the network's kernel-extremity ratio R
    on the most irregular 10% of them. The gap is the tuned one (``network_minus_trees``) where
    both families ran, else the default configurations' (``default_gap``).
    """
    import matplotlib.pyplot as plt

    gap, label = table.get("network_minus_trees"), "network minus best trees (tuned)"
    if gap is None or gap.isna().all():
        gap, label = table["default_gap"], "network minus trees (default configurations)"
    gap = gap.fillna(table["default_gap"])
    panels = (
        ("irregularity_mean", "mean irregularity of the test inputs"),
        ("net_ratio_irregular", "network's R on the most irregular 10% of test inputs"),
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (col, xlabel) in zip(axes, panels):
        ax.scatter(table[col], gap, s=30)
        for name, x, y in zip(table["dataset"], table[col], gap):
            ax.annotate(name.split("/")[-1], (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[1].axvline(1.0, color="grey", lw=0.8, ls="--")
    axes[0].set_ylabel(f"{label}\n(R² or accuracy; < 0: the trees win)")
    fig.suptitle("The lens across datasets (one point per dataset, mean over splits)")
    return fig
