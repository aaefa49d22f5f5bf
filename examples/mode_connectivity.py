"""When do two children of one network become linearly mode-connected? (PAPER.md Fig 6)

Trains a parent ``TelescopingMLPClassifier`` (SGD with momentum) on digits 3-vs-5 (8x8
images, scikit-learn's bundled digits). For each spawn step ``t'`` it replays the parent's
run to ``t'``, trains two children that differ only in their data order, and measures on
held-out data:

- the loss barrier along the straight line between the children's weights;
- the accuracy gap: mean accuracy of the children minus that of their weight average.

It also measures each layer's gradient change between consecutive epochs of the parent's
run (mean squared change of the per-example gradients, PAPER.md §2h). The paper's finding
(on ResNet-20 / CIFAR-10): the barrier vanishes once the gradients stop changing, most
clearly in the output layer.

Run::

    python examples/mode_connectivity.py --fast   # seconds, for CI
    python examples/mode_connectivity.py          # full run, writes examples/output/*.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sktelescope.lens.connectivity import (
    evaluate_parameters,
    interpolate,
    spawn_children,
    weight_average,
)
from sktelescope.lens.gradients import gradient_change

from sktelescope import TelescopingMLPClassifier

HERE = Path(__file__).resolve().parent


def load_three_vs_five():
    digits = load_digits()
    keep = np.isin(digits.target, [3, 5])
    X, y = digits.data[keep], digits.target[keep]
    return train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)


def fit_parent(X, y, fast: bool) -> TelescopingMLPClassifier:
    """SGD + momentum 0.9, one stage per epoch so that gradient change compares epochs."""
    batch, epochs = 16, 8 if fast else 60
    steps_per_epoch = int(np.ceil(len(X) / batch))
    return TelescopingMLPClassifier(
        hidden_layer_sizes=(32,) if fast else (64, 64, 64), optimizer="sgd", learning_rate=0.05,
        momentum=0.9, batch_size=batch, max_iter=epochs, n_iter_no_change=None,
        early_stopping=False, stage_every=steps_per_epoch, max_stages=epochs, random_state=0,
    ).fit(X, y)  # fmt: skip


def barriers(parent, X, y, X_val, y_val, spawn_steps) -> pd.DataFrame:
    rows = []
    for t in spawn_steps:
        kids = spawn_children(parent, X, y, spawn_step=t, n_children=2, seeds=[1, 2])
        line = interpolate(parent, kids.children[0], kids.children[1], X_val, y_val)
        accs = [evaluate_parameters(parent, c, X_val, y_val)[1] for c in kids.children]
        avg_acc = evaluate_parameters(parent, weight_average(kids.children), X_val, y_val)[1]
        rows.append({"spawn_step": t, "loss_barrier": line.barrier,
                     "accuracy_gap": float(np.mean(accs)) - avg_acc,
                     "max_accuracy_drop": line.max_accuracy_drop,
                     "children_accuracy": float(np.mean(accs))})  # fmt: skip
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame, change, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    x = table.spawn_step + 1
    ax1.plot(x, table.accuracy_gap, "o-", label="accuracy gap")
    ax1.plot(x, table.loss_barrier, "s-", label="loss barrier")
    ax1.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax1.set(xscale="log", xlabel="spawn step t' + 1", title="digits 3 vs 5, two children")
    ax1.legend()
    for k, name in enumerate(change.layers):
        ax2.plot(change.steps_from + 1, change.values[:, k], label=name)
    ax2.set(xscale="log", yscale="log", xlabel="step t' + 1",
            ylabel="gradient change over one epoch")  # fmt: skip
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    print(f"figure written to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Linear mode connectivity vs spawn step (Fig 6).")
    parser.add_argument("--fast", action="store_true", help="small run for CI, no figure")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    X, X_val, y, y_val = load_three_vs_five()
    parent = fit_parent(X, y, args.fast)
    candidates = [0, 4, 25, 50, 100, 224, 500, 1000, 2000] if not args.fast else [0, 10, 40]
    spawn_steps = [t for t in candidates if t < parent.n_steps_]
    table = barriers(parent, X, y, X_val, y_val, spawn_steps)
    change = gradient_change(parent, X_val[:256], lag=1)
    print(f"parent: {parent.n_steps_} steps, validation accuracy {parent.score(X_val, y_val):.3f}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    layers = pd.DataFrame(change.values, columns=change.layers, index=change.steps_from)
    print("gradient change over one epoch, by layer (rows: start step):")
    print(layers.iloc[:: max(len(layers) // 12, 1)].to_string(float_format=lambda v: f"{v:.2e}"))
    if not args.fast:
        try:
            plot(table, change, HERE / "output" / "mode_connectivity.png")
        except ImportError:
            print("matplotlib is not installed: no figure.")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return table, change


if __name__ == "__main__":
    main()
