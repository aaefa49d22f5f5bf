"""Which input scaling serves the benchmark's networks best? A core-suite comparison.

Every network of the benchmark (this project's ``telescoping_mlp``, scikit-learn's
``sklearn_mlp``, ``skorch_mlp``) in its default configuration, behind each numeric scaler the
bench offers (categoricals one-hot in every case):

- ``standard``: ``StandardScaler``, i.e. the estimator's own standardisation alone (ours
  standardises internally, so for it this is the same as no scaler);
- ``quantile``: ``QuantileTransformer(output_distribution="normal")``;
- ``robust``: RealMLP's robust scaling with smooth clipping (median / IQR, then
  ``x / sqrt(1 + (x/3)**2)``).

Splits are the benchmark's own (:func:`sktelescope.bench._protocol.split_data`: train capped
at 10,000 rows, test at 10,000); the score is R² or accuracy on the test split. Results are
cached row by row in ``--out`` so a rerun resumes. Prints, per network, the mean test score per
dataset and scaler, the mean rank of each scaler, and its wins.

    python benchmarks/preprocessing.py --data-dir ../shared/data/tabular --splits 3
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sktelescope.bench import (
    NETWORK_SCALERS,
    PRIMARY,
    Protocol,
    build_model,
    derive_seed,
    score_model,
    split_data,
)
from sktelescope.datasets import resolve_datasets

NETWORKS = ("telescoping_mlp", "sklearn_mlp", "skorch_mlp")
COLUMNS = ("dataset", "split", "network", "scaling", "metric", "test_score", "fit_seconds")


def _done(path: Path) -> set[tuple]:
    if not path.exists():
        return set()
    rows = pd.read_csv(path)
    return {(r.dataset, int(r.split), r.network, r.scaling) for r in rows.itertuples()}


def _one(dataset, split, network, scaling, data) -> dict:
    seed = derive_seed(0, dataset.name, split, 0)
    est = build_model(network, data.task, {"scaling": scaling}, data.categorical_columns, seed, 1)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    metric = PRIMARY[data.task]
    score = score_model(est, data.X_test, data.y_test, data.task, data.n_classes)[metric]
    return dict(dataset=dataset.name, split=split, network=network, scaling=scaling,
                metric=metric, test_score=score, fit_seconds=seconds)  # fmt: skip


def run(data_dir: str, tier: str, n_splits: int, out: Path, networks) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "preprocessing.csv"
    done = _done(path)
    protocol = Protocol(n_splits=n_splits)
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        if new:
            writer.writeheader()
        for ref in resolve_datasets(None, data_dir=data_dir, tier=tier):
            dataset = ref.load()
            for split in range(n_splits):
                data = split_data(dataset, split, protocol)
                for network in networks:
                    for scaling in NETWORK_SCALERS:
                        if (dataset.name, split, network, scaling) in done:
                            continue
                        row = _one(dataset, split, network, scaling, data)
                        writer.writerow(row)
                        fh.flush()
                        print(
                            f"{row['dataset']:<32} {split} {network:<16} {scaling:<9} "
                            f"{row['test_score']:.4f} {row['fit_seconds']:6.1f}s",
                            flush=True,
                        )
    return pd.read_csv(path)


def report(results: pd.DataFrame) -> str:
    """Markdown: per network, mean test score per dataset and scaler, then ranks and wins."""
    lines = []
    for network, rows in results.groupby("network", sort=False):
        agg = rows.groupby(["dataset", "scaling"])["test_score"].agg(["mean", "std"])
        means, stds = agg["mean"].unstack(), agg["std"].unstack()
        means = means[[s for s in NETWORK_SCALERS if s in means]]
        lines += [f"\n### {network}\n", "| dataset | " + " | ".join(means.columns) + " |",
                  "|---|" + "---|" * len(means.columns)]  # fmt: skip
        for dataset, row in means.iterrows():
            best = row.max()
            cells = [
                (f"**{v:.4f}**" if np.isclose(v, best) else f"{v:.4f}")
                + f" ± {stds.loc[dataset, s]:.4f}"
                for s, v in row.items()
            ]
            lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
        ranks = means.rank(axis=1, ascending=False).mean()
        wins = means.eq(means.max(axis=1), axis=0).sum()
        delta = means.sub(means["standard"], axis=0).mean() if "standard" in means else None
        lines.append(
            "\nmean rank (1 = best): " + ", ".join(f"{s} {r:.2f}" for s, r in ranks.items())
        )
        lines.append("datasets won: " + ", ".join(f"{s} {int(w)}" for s, w in wins.items()))
        if delta is not None:
            lines.append("mean score minus standard: "
                         + ", ".join(f"{s} {d:+.4f}" for s, d in delta.items()))  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/tabular")
    parser.add_argument("--tier", default="core")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--out", default="benchmarks/output/preprocessing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = run(args.data_dir, args.tier, args.splits, Path(args.out), args.networks.split(","))
    text = report(results)
    (Path(args.out) / "preprocessing.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
