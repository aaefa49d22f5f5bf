"""Quick start: an MLP beside XGBoost in scikit-learn pipelines, then its run as stages
======================================================================================

A ``TelescopingMLPRegressor`` in a pipeline is cross-validated beside XGBoost (when
installed) on scikit-learn's bundled diabetes data, with no download. Then one fit is
opened up like a boosted ensemble:

- ``telescope(X)``: the initial network ``f_0`` and one contribution per stage, whose sum
  is ``predict(X)``;
- ``staged_predict(X)``: the prediction after each stage, here the training error as the
  stages add up;
- ``stages_[k].kernel(X, Z)``: the tangent kernel at the start of a stage.

The figure (``examples/output/quickstart.png``, when matplotlib is installed) shows the
training error of the sum of the first k stages, as a boosted ensemble's error falls with
its rounds. Run: ``python examples/quickstart.py [--fast]`` (``--fast``: 20 epochs instead
of 200).
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings

import numpy as np
from _figures import DEFAULT_OUT, pyplot, shown
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer

from sktelescope import TelescopingMLPRegressor


def compare(X, y, max_iter: int) -> None:
    models = {
        "TelescopingMLP": make_pipeline(
            QuantileTransformer(n_quantiles=200, output_distribution="normal"),
            TelescopingMLPRegressor(
                hidden_layer_sizes=(64, 64), max_iter=max_iter, learning_rate=3e-3, random_state=0
            ),
        )  # fmt: skip
    }
    try:
        from xgboost import XGBRegressor

        models["XGBRegressor"] = XGBRegressor(n_estimators=200, learning_rate=0.05, max_depth=3)
    except ImportError:
        print("xgboost is not installed: comparing the MLP alone")
    for name, model in models.items():
        scores = cross_validate(model, X, y, cv=5, scoring="r2")["test_score"]
        print(f"{name:16s} R^2 = {scores.mean():.3f} ± {scores.std():.3f} (5-fold)")


def inspect_stages(X, y, max_iter: int) -> list[float]:
    est = TelescopingMLPRegressor(hidden_layer_sizes=(64, 64), max_iter=max_iter,
                                  learning_rate=3e-3, max_stages=20, random_state=0)  # fmt: skip
    est.fit(X, y)
    parts = est.telescope(X[:3])
    print(f"{est.n_stages_} stages over {est.n_steps_} optimizer steps")
    print("f_0 + stage contributions, first sample:", np.round(parts[0, :5], 2), "...")
    sums, preds = np.round(parts.sum(axis=1), 3), np.round(est.predict(X[:3]), 3)
    print("row sums vs predict:", sums, preds)
    mse = [np.mean((p - y) ** 2) for p in est.staged_predict(X)]
    print("training MSE after stages 1, 5, 10, last:",
          [round(float(mse[i]), 1) for i in (0, 4, 9, -1)])  # fmt: skip
    stage = est.stages_[-1]
    kernel = np.round(stage.kernel(X[:3], X[:4]), 2)
    print(f"last stage covers steps {stage.steps.start}-{stage.steps.stop - 1}; "
          f"its tangent kernel on 3x4 inputs:\n{kernel}")  # fmt: skip
    return [float(m) for m in mse]


def plot(mse: list[float]) -> None:
    """Training MSE after each stage, saved to ``examples/output/quickstart.png``."""
    fig, ax = pyplot().subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(mse) + 1), mse, marker="o", ms=3)
    ax.set(xlabel="stages summed (k)", ylabel="training MSE", yscale="log",
           title="diabetes: training error as the stages add up")  # fmt: skip
    fig.tight_layout()
    DEFAULT_OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(DEFAULT_OUT / "quickstart.png", dpi=120)
    print(f"wrote {shown(DEFAULT_OUT / 'quickstart.png')}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="few epochs, for CI")
    args = parser.parse_args(argv)
    max_iter = 20 if args.fast else 200
    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        compare(X, y, max_iter)
        mse = inspect_stages(X, y, max_iter)
    if importlib.util.find_spec("matplotlib"):
        plot(mse)


if __name__ == "__main__":
    main()
