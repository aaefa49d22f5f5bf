"""How good is the telescoping model? The paper's Fig 2/7/8 on scikit-learn's digits 3 vs 5
==========================================================================================

An MLP (two hidden ReLU layers of width 200, squared loss on ±1 labels, batch 64) is trained
on half of the 8x8 digits 3 and 5 (about 180 images) with several optimizers. At every step
:func:`sktelescope.lens.telescoping_trace` follows, on the other half:

- the network ``f_t``;
- the telescoping model ``f̃_t = f_0 + Σ ∇f_{k-1}·Δθ_k`` (first order, the paper's);
- the trapezoid model, with ``½(∇f_{k-1} + ∇f_k)·Δθ_k`` per step;
- the lazy model ``f_0 + ∇f_0·(θ_t − θ_0)``.

It prints the final mean absolute gap ``|f − model|`` and test accuracies, and draws
(``examples/output/approximation_quality.png``, when matplotlib is installed) the error
curves over steps (Fig 2/7) and the test accuracy of each model against the network's
(Fig 8). See :ref:`math-telescoping` for the models.

The paper uses MNIST downsampled to 8x8 with 1,000 training images, batch 200 and 5,000
steps; scikit-learn's digits are a smaller, bundled stand-in. Run::

    python examples/approximation_quality.py          # 3 seeds, 1,500 steps per run
    python examples/approximation_quality.py --fast   # 1 seed, 90 steps, for CI
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from pathlib import Path

import numpy as np
from _figures import shown
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sktelescope import TelescopingMLPClassifier
from sktelescope.lens import telescoping_trace

SETTINGS = {
    "SGD lr=0.01": dict(optimizer="sgd", momentum=0.0, learning_rate=0.01),
    "SGD lr=0.05": dict(optimizer="sgd", momentum=0.0, learning_rate=0.05),
    "SGD+momentum 0.9 lr=0.01": dict(optimizer="sgd", momentum=0.9, learning_rate=0.01),
    "SGD+weight decay 0.1 lr=0.01": dict(
        optimizer="sgd", momentum=0.0, weight_decay=0.1, learning_rate=0.01
    ),
    "AdamW(0.1) lr=1e-4": dict(optimizer="adamw", weight_decay=0.1, learning_rate=1e-4),
    "AdamW(0.1) lr=1e-3": dict(optimizer="adamw", weight_decay=0.1, learning_rate=1e-3),
}


def digits_3_vs_5(seed: int):
    """Half of the 8x8 digits 3 and 5 for training, half for evaluation."""
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, [3, 5])
    return train_test_split(X[keep], y[keep], test_size=0.5, random_state=seed, stratify=y[keep])


def run(setting: dict, seed: int, epochs: int, every: int):
    """Trace one training run; returns the steps, error curves and accuracy curves."""
    X_tr, X_te, y_tr, y_te = digits_3_vs_5(seed)
    est = TelescopingMLPClassifier((200, 200), preset="paper", loss="squared_error", batch_size=64,
                                   max_iter=epochs, n_iter_no_change=None,
                                   early_stopping=False, random_state=seed,
                                   **setting)  # fmt: skip
    trace = telescoping_trace(est, X_tr, y_tr, X_te, every=every)
    errors = {m: trace.approximation_error(m) for m in trace.models()}
    return trace.steps, errors, trace.accuracy(y_te)


def summarise(results: dict) -> None:
    """Print final errors (mean over seeds) and accuracies, one row per setting."""
    print("| setting | steps | first-order | trapezoid | lazy | acc net | acc f̃ | acc lazy |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        steps = runs[0][0][-1]
        err = {m: np.mean([r[1][m][-1] for r in runs]) for m in runs[0][1]}
        acc = {m: np.mean([r[2][m][-1] for r in runs]) for m in runs[0][2]}
        print(f"| {name} | {steps} | {err['first_order']:.2e} | {err['trapezoid']:.2e} | "
              f"{err['lazy']:.2e} | {acc['network']:.3f} | {acc['first_order']:.3f} | "
              f"{acc['lazy']:.3f} |")  # fmt: skip


def plot(results: dict, path: Path) -> None:
    """Error curves (Fig 2/7) and accuracy curves (Fig 8), mean ± s.e. over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(3.2 * len(results), 6), squeeze=False)
    for col, (name, runs) in enumerate(results.items()):
        steps = runs[0][0]
        for model, style in (("first_order", "-"), ("trapezoid", "--"), ("lazy", ":")):
            _band(axes[0, col], steps, [r[1][model] for r in runs], style, model)
        for model, style in (("network", "-"), ("first_order", "--"), ("lazy", ":")):
            _band(axes[1, col], steps, [r[2][model] for r in runs], style, model)
        axes[0, col].set(title=name, yscale="log", xlabel="step")
        axes[1, col].set(xlabel="step", ylim=(0.4, 1.01))
    axes[0, 0].set_ylabel("mean |f - model| (test)")
    axes[1, 0].set_ylabel("test accuracy")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {shown(path)}")


def _band(ax, steps, curves, style, label) -> None:
    curves = np.asarray(curves)
    mean = curves.mean(0)
    se = curves.std(0) / np.sqrt(len(curves))
    ax.plot(steps, mean, style, label=label)
    ax.fill_between(steps, mean - se, mean + se, alpha=0.2)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="1 seed, 30 epochs, for CI")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    seeds, epochs, every = ([0], 30, 1) if args.fast else ([0, 1, 2], 500, 10)
    results = {
        name: [run(setting, seed, epochs, every) for seed in seeds]
        for name, setting in SETTINGS.items()
    }
    summarise(results)
    if importlib.util.find_spec("matplotlib"):
        plot(results, Path(__file__).parent / "output" / "approximation_quality.png")
    return results


if __name__ == "__main__":
    main()
