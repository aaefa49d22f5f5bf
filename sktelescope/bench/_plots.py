"""The benchmark's matplotlib figures (matplotlib is imported by the caller's check)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

__all__ = ["plot_budget", "plot_normalised"]


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
