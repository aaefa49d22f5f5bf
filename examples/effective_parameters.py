"""Effective parameters of an MLP across widths and over training (the paper's Fig 3).

One-hidden-layer ReLU networks of growing width are trained with SGD + momentum on
scikit-learn's 8x8 digits 3 vs 5 (squared loss on ±1 labels, 20% of the training labels
flipped, as the paper does for MNIST to see double descent). For each width,
``sktelescope.lens.smoother_trace`` replays the fit while tracking the network as a smoother
``f(x) = s(x)·y + c(x)`` and reports

- p^train = ‖S‖_F² on the training inputs and p^test = n/|I| Σ ‖s(x)‖² on held-out inputs
  (no labels needed), over training steps;
- the training and test mean squared error of the network (``S y + c`` is the network).

The paper finds p^train rising with width while p^test falls past the interpolation
threshold. It prints one row per width and draws (examples/output/effective_parameters.png,
when matplotlib is installed) p and MSE against width, and p over steps for each width. Run::

    python examples/effective_parameters.py          # 8 widths, 300 epochs
    python examples/effective_parameters.py --fast   # 3 widths, 15 epochs, for CI
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sktelescope.lens.smoother import smoother_trace

from sktelescope import TelescopingMLPClassifier


def noisy_digits(n_train: int, noise: float, seed: int = 0):
    """Digits 3 vs 5: ``n_train`` training images with a fraction of flipped labels."""
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, [3, 5])
    X_tr, X_te, y_tr, y_te = train_test_split(
        X[keep], y[keep], train_size=n_train, random_state=seed, stratify=y[keep]
    )
    flip = np.random.default_rng(seed).random(n_train) < noise
    y_tr = np.where(flip, 8 - y_tr, y_tr)  # 3 <-> 5
    return X_tr, X_te, y_tr, y_te


def run_width(width: int, data, epochs: int, every: int) -> dict:
    """Replay one fit as a smoother; return p over steps and the final errors."""
    X_tr, X_te, y_tr, y_te = data
    est = TelescopingMLPClassifier((width,), loss="squared_error", optimizer="sgd",
                                   momentum=0.9, learning_rate=0.01, batch_size=32,
                                   max_iter=epochs, n_iter_no_change=None,
                                   early_stopping=False, random_state=0)  # fmt: skip
    tr = smoother_trace(est, X_tr, y_tr, X_te, every=every)
    target_te = np.where(y_te == 5, 1.0, -1.0)
    return {
        "width": width,
        "steps": tr.steps,
        "p_train_curve": tr.p_train,
        "p_test_curve": tr.p_test,
        "p_train": tr.p_train[-1],
        "p_test": tr.p_test[-1],
        "mse_train": np.mean((tr.predict_train() - tr.y_network) ** 2),
        "mse_test": np.mean((tr.predict_eval() - target_te) ** 2),
    }


def plot(rows: list[dict], path: Path) -> None:
    """p and MSE against width; p over steps per width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [r["width"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for key in ("p_train", "p_test"):
        axes[0].plot(widths, [r[key] for r in rows], "o-", label=key)
    for key in ("mse_train", "mse_test"):
        axes[1].plot(widths, [r[key] for r in rows], "o-", label=key)
    for r in rows:
        line = axes[2].plot(r["steps"], r["p_train_curve"], "-", label=f"width {r['width']}")
        axes[2].plot(r["steps"], r["p_test_curve"], "--", color=line[0].get_color())
    axes[0].set(xscale="log", xlabel="hidden width", ylabel="effective parameters")
    axes[1].set(xscale="log", xlabel="hidden width", ylabel="MSE (±1 labels)")
    axes[2].set(xlabel="step", ylabel="p (solid: train, dashed: test)")
    for ax in axes[:2]:
        ax.minorticks_off()
        ax.set_xticks(widths, [str(w) for w in widths])
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="3 widths, 15 epochs, for CI")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.fast:
        widths, epochs, every = (2, 8, 32), 15, 5
    else:
        widths, epochs, every = (1, 2, 5, 10, 20, 50, 100, 200), 300, 20
    data = noisy_digits(n_train=120, noise=0.2)
    rows = [run_width(w, data, epochs, every) for w in widths]
    print("| width | steps | p_train | p_test | mse_train | mse_test |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['width']} | {r['steps'][-1]} | {r['p_train']:.2f} | {r['p_test']:.2f} | "
              f"{r['mse_train']:.3f} | {r['mse_test']:.3f} |")  # fmt: skip
    if importlib.util.find_spec("matplotlib"):
        plot(rows, Path(__file__).parent / "output" / "effective_parameters.png")
    return rows


if __name__ == "__main__":
    main()
