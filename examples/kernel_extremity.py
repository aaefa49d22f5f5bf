"""Why does the network lose to boosted trees on irregular inputs? (the paper's Fig 5)
=====================================================================================

Trains a ``TelescopingMLPRegressor`` and a scikit-learn ``GradientBoostingRegressor`` on
the houses dataset (Grinsztajn et al. benchmark), builds test sets with a growing share
``p`` of irregular inputs (the 10% of test points farthest from the training centroid in
PCA space, :ref:`math-irregularity`) and reports, for each ``p``:

- the relative MSE gap ``(MSE_NN(p) - MSE_GBT(p)) / (MSE_NN(0) - MSE_GBT(0))``
  (:ref:`math-relative-gap`);
- the kernel-extremity ratio ``R(p)`` of each model: mean over stages of the largest test
  kernel-row norm over the same for the training inputs (:ref:`math-extremity`).
  ``R > 1`` means test inputs get larger kernel weights than any training input did.

The paper's finding: the gap grows with ``p`` and the network's ``R`` grows with it, while
the trees' ``R`` stays bounded (their kernel rows have norm at most 1).

Run::

    python examples/kernel_extremity.py --fast   # seconds, for CI
    python examples/kernel_extremity.py          # full run, writes examples/output/*.png

Without ``../shared/data/tabular/reg_num__houses.csv.gz`` it falls back to scikit-learn's
bundled diabetes data (442 rows), which is small but shows the same mechanics. The fast
mode prints the table and draws no figure.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from sktelescope import TelescopingMLPRegressor
from sktelescope.lens import irregular_test_sets, irregularity_score, max_row_norms

HERE = Path(__file__).resolve().parent
HOUSES = HERE.parent.parent / "shared" / "data" / "tabular" / "reg_num__houses.csv.gz"
PROPORTIONS = [0.0, 0.25, 0.5, 0.75, 1.0]


def load_data(fast: bool):
    """Houses (target = last column) if present, else scikit-learn's diabetes data."""
    if HOUSES.exists():
        frame = pd.read_csv(HOUSES)
        X, y = frame.iloc[:, :-1].to_numpy(float), frame.iloc[:, -1].to_numpy(float)
        name = "houses"
    else:
        print(f"{HOUSES} not found: falling back to scikit-learn's diabetes data.")
        X, y = load_diabetes(return_X_y=True)
        name = "diabetes"
    n_keep = min(len(X), 2000 if fast else len(X))
    rows = np.random.default_rng(0).permutation(len(X))[:n_keep]
    return name, X[rows], y[rows]


def fit_models(X_train, y_train, fast: bool):
    """The paper's NN (3 layers of 64, batch 128) and a GBT with mid-range settings."""
    nn = TelescopingMLPRegressor(
        hidden_layer_sizes=(64, 64), learning_rate=1e-3, batch_size=128,
        max_iter=15 if fast else 200, max_stages=10 if fast else 40,
        early_stopping=not fast, random_state=0,
    ).fit(X_train, y_train)  # fmt: skip
    gbt = GradientBoostingRegressor(
        n_estimators=30 if fast else 300, learning_rate=0.1, max_depth=4, random_state=0
    ).fit(X_train, y_train)
    return nn, gbt


def tree_view(gbt, X_train, y_train):
    """The GBT as stages through sktelescope.trees.TreeTelescope, if available."""
    try:
        from sktelescope.trees import TreeTelescope
    except ImportError:
        print("sktelescope.trees is not available: the GBT ratio is skipped.")
        return None
    return TreeTelescope(gbt, X_train, y_train)


def measure(nn, gbt, trees, X_train, y_train, sets, n_ref: int):
    """MSEs and kernel-extremity ratios for each test set."""
    ref = np.random.default_rng(1).choice(len(X_train), min(n_ref, len(X_train)), replace=False)
    X_ref = X_train[np.sort(ref)]  # kernel columns and denominator points for the NN
    nn_train = max_row_norms(nn, X_ref, X_ref).mean()
    tree_train = None if trees is None else max_row_norms(trees, X_train).mean()
    rows = []
    for s in sets:
        row = {"p": s.proportion,
               "mse_nn": mean_squared_error(s.y, nn.predict(s.X)),
               "mse_gbt": mean_squared_error(s.y, gbt.predict(s.X)),
               "R_nn": max_row_norms(nn, s.X, X_ref).mean() / nn_train}  # fmt: skip
        if trees is not None:
            row["R_gbt"] = max_row_norms(trees, s.X).mean() / tree_train
        rows.append(row)
    table = pd.DataFrame(rows)
    base = table.mse_nn.iloc[0] - table.mse_gbt.iloc[0]
    table["relative_gap"] = (table.mse_nn - table.mse_gbt) / base
    return table


def plot(table: pd.DataFrame, name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(table.p, table.relative_gap, "o-", color="k")
    ax1.set(xlabel="proportion of irregular test inputs p", ylabel="relative MSE gap NN - GBT",
            title=name)  # fmt: skip
    ax2.plot(table.p, table.R_nn, "o-", label="neural network")
    if "R_gbt" in table:
        ax2.plot(table.p, table.R_gbt, "s-", label="gradient boosting")
    ax2.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax2.set(xlabel="proportion of irregular test inputs p", ylabel="kernel-extremity ratio R")
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    print(f"figure written to {path}")


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description="Kernel extremity vs irregular inputs (Fig 5).")
    parser.add_argument("--fast", action="store_true", help="small run for CI, no figure")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    name, X, y = load_data(args.fast)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    nn, gbt = fit_models(X_train, y_train, args.fast)
    scores = irregularity_score(X_train, X_test, n_components=2)
    size = min(4000, int(0.1 * len(X_test)))  # the paper: 4000; at most the irregular pool
    sets = irregular_test_sets(X_test, y_test, scores, PROPORTIONS, size, random_state=0)
    trees = tree_view(gbt, X_train, y_train)
    table = measure(nn, gbt, trees, X_train, y_train, sets, n_ref=500 if args.fast else 3000)
    print(f"{name}: {len(X_train)} training rows, test sets of {size}, "
          f"{nn.n_stages_} NN stages, {gbt.n_estimators_} trees")  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if not args.fast:
        try:
            plot(table, name, HERE / "output" / "kernel_extremity.png")
        except ImportError:
            print("matplotlib is not installed: no figure.")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return table


if __name__ == "__main__":
    main()
