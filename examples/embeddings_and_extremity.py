"""What numerical embeddings change in the kernel-extremity ratio and the gap to the trees
=========================================================================================

The paper explains part of the network's loss to boosted trees with its tangent kernel: on
irregular test inputs (far from the training data) the network's kernel rows grow beyond any
training row's, its kernel-extremity ratio ``R`` rises above 1, and its loss relative to the
trees' grows, while a tree's kernel stays bounded by construction (:ref:`math-extremity`).
RealMLP's periodic embeddings of each numeric feature (``numerical_embedding="pbld"``) and a
learnable per-feature scale (``feature_scaling=True``) are what closes most of the gap in its
ablation. Both are layers of the network, so the lens sees through them: this example fits the
plain network (the paper's setting, ``preset="paper"``) and the embedded one on two datasets of
the core suite where the plain network loses to the trees in the committed suite run
(``benchmarks/output/suite/``: ``Bike_Sharing_Demand`` R² 0.76 against 0.91, ``houses`` 0.76
against 0.79), and draws, for test sets with a growing share ``p`` of irregular inputs,

- ``R(p)`` of each network (the per-stage tangent kernel, over 2,000 training rows);
- the scale-free gap ``(L_NN(p) - L_GBT(p)) / L_GBT(0)`` of each network against
  scikit-learn's ``HistGradientBoostingRegressor`` with its defaults (the best-validation
  trees on both datasets in that suite run), on the same sets.

What it shows is what it measures: the printed slopes (least squares over ``p``) and scores
are from this run, one split and one seed per model; the verdict's intervals over folds are
the benchmark's job (``sktelescope bench``). Without the shared data folder it runs on
scikit-learn's diabetes data, which shows the mechanics only.

Run::

    python examples/embeddings_and_extremity.py --fast   # 600 training rows (CI)
    python examples/embeddings_and_extremity.py          # 3,000 training rows (minutes)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from _figures import parse_args, pyplot, rounded, shown, start, write_outputs
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split

from sktelescope import TelescopingMLPRegressor
from sktelescope.bench import network_preprocessor
from sktelescope.datasets import load_folder_dataset, load_sklearn_dataset
from sktelescope.lens import irregular_test_sets, irregularity_score, kernel_extremity_ratio

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "tabular"
DATA_DIR = Path(os.environ.get("SKTELESCOPE_DATA_DIR", SHARED))
DATASETS = ("reg_cat/Bike_Sharing_Demand", "reg_num/houses")
PROPORTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: The two networks: the plain one (one parameter away from the embedded one).
NETWORKS = {
    "plain": {"preset": "paper"},
    "embedded": {"preset": "paper", "numerical_embedding": "pbld", "feature_scaling": True},
}


def load(name: str, n_train: int, n_test: int):
    """One split of ``name``, preprocessed as the benchmark's networks see it."""
    ds = load_folder_dataset(DATA_DIR, name) if "/" in name else load_sklearn_dataset(name)
    X_train, X_test, y_train, y_test = train_test_split(ds.X, ds.y, test_size=0.2,
                                                        random_state=0)  # fmt: skip
    prep = network_preprocessor(ds.categorical_columns).fit(X_train[:n_train])
    as_array = lambda X: np.asarray(prep.transform(X), dtype=float)  # noqa: E731
    return (as_array(X_train[:n_train]), np.asarray(y_train[:n_train], float),
            as_array(X_test[:n_test]), np.asarray(y_test[:n_test], float))  # fmt: skip


def fit_models(X, y, fast: bool) -> dict:
    """The two networks and the trees, fitted on the same rows."""
    epochs = {"max_iter": 40} if fast else {}
    models = {name: TelescopingMLPRegressor(random_state=0, n_jobs=1, **params, **epochs)
              for name, params in NETWORKS.items()}  # fmt: skip
    models["trees"] = HistGradientBoostingRegressor(max_iter=50 if fast else 100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: model.fit(X, y) for name, model in models.items()}


def measure(models: dict, data) -> dict:
    """R(p) of each network and its gap to the trees on test sets of growing irregularity."""
    X_train, y_train, X_test, y_test = data
    scores = irregularity_score(X_train, X_test)
    sets = irregular_test_sets(X_test, y_test, scores, PROPORTIONS, random_state=0)
    mse = {name: np.array([np.mean((m.predict(s.X) - s.y) ** 2) for s in sets])
           for name, m in models.items()}  # fmt: skip
    out = {"set_size": len(sets[0].y), "n_train": len(y_train)}
    for name in NETWORKS:
        ratios = [kernel_extremity_ratio(models[name], X_train, y_train, s.X).ratio for s in sets]
        gap = (mse[name] - mse["trees"]) / mse["trees"][0]
        out[name] = {
            "test_r2": models[name].score(X_test, y_test),
            "R": np.array(ratios),
            "gap": gap,
            "R_slope": slope(ratios),
            "gap_slope": slope(gap),
        }
    out["trees_test_r2"] = models["trees"].score(X_test, y_test)
    return out


def slope(values) -> float:
    """Least-squares slope of ``values`` over the shares ``p``."""
    return float(np.polyfit(PROPORTIONS, np.asarray(values, float), 1)[0])


def draw(results: dict):
    plt = pyplot()
    fig, axes = plt.subplots(2, len(results), figsize=(4.2 * len(results), 6.4), squeeze=False)
    for col, (name, res) in enumerate(results.items()):
        top, bottom = axes[0, col], axes[1, col]
        for network, colour in (("plain", "C0"), ("embedded", "C3")):
            r2 = res[network]["test_r2"]
            top.plot(PROPORTIONS, res[network]["R"], "o-", color=colour,
                     label=f"{network} (test R² {r2:.3f})")  # fmt: skip
            bottom.plot(PROPORTIONS, res[network]["gap"], "o-", color=colour, label=network)
        top.axhline(1.0, color="grey", lw=0.8, ls="--")
        bottom.axhline(0.0, color="grey", lw=0.8, ls="--")
        top.set_title(f"{name}\ntrees' test R² {res['trees_test_r2']:.3f}", fontsize=9)
        bottom.set_xlabel("share p of irregular test inputs")
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    axes[0, 0].set_ylabel("kernel-extremity ratio R(p)")
    axes[1, 0].set_ylabel("(L_NN(p) - L_GBT(p)) / L_GBT(0)")
    fig.suptitle("Plain and embedded network through the same lens (one split, one seed)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def summarise(results: dict, data: str) -> dict:
    datasets = {}
    for name, res in results.items():
        entry = {"n_train": res["n_train"], "set_size": res["set_size"],
                 "trees_test_r2": round(res["trees_test_r2"], 4)}  # fmt: skip
        for network in NETWORKS:
            r = res[network]
            entry[network] = {
                "test_r2": round(r["test_r2"], 4),
                "R(p)": rounded(r["R"]),
                "gap(p)": rounded(r["gap"]),
                "R slope": round(r["R_slope"], 4),
                "gap slope": round(r["gap_slope"], 4),
            }
        datasets[name] = entry
    lower_gap = sum(r["embedded"]["gap"].mean() < r["plain"]["gap"].mean()
                    for r in results.values())  # fmt: skip
    flatter_r = sum(r["embedded"]["R_slope"] < r["plain"]["R_slope"] for r in results.values())
    return {
        "data": data,
        "datasets": datasets,
        "embedded gap below plain's (mean over p)": f"{lower_gap} of {len(results)}",
        "embedded R slope below plain's": f"{flatter_r} of {len(results)}",
    }


def main(argv=None) -> None:
    args = parse_args(__doc__, argv)
    started = start()
    have_data = (DATA_DIR / "MANIFEST.json").exists()
    if not have_data:
        print(f"No data folder at {shown(DATA_DIR)}: running on scikit-learn's diabetes data "
              "instead (mechanics only).")  # fmt: skip
    names = DATASETS if have_data else ("diabetes",)
    n_train = 600 if args.fast else 3000
    results = {}
    for name in names:
        data = load(name, n_train, 2000 if args.fast else 10_000)
        results[name] = measure(fit_models(data[0], data[1], args.fast), data)
    summary = summarise(results, "shared folder" if have_data else "diabetes (fallback)")
    summary["mode"] = "fast" if args.fast else "full"
    write_outputs(draw(results), summary, args.out, "embeddings_and_extremity", started)


if __name__ == "__main__":
    main()
