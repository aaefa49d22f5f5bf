"""Gradient-boosted trees as kernel smoothers, on scikit-learn's diabetes data
===============================================================================

For every available library, fit a small squared-error booster, open it with
:class:`sktelescope.trees.TreeTelescope` and print

* how far the telescope (initial prediction + one column per round) is from the library's own
  prediction, and from its own staged predictions;
* how far ``stage.weights(X) @ stage.pseudo_residuals`` is from each round's contribution;
* how far the smoother ``s(x) @ y_train + c(x)`` is from the prediction;
* the effective parameters ``p_train`` and ``p_test`` of the ensemble, and the leaf-kernel
  row norms used by the kernel-extremity ratio.

The figure (``examples/output/trees_as_smoothers.png``, when matplotlib is installed) shows
each booster's effective parameters round by round: ``p_train`` (dashed) and ``p_test``
(solid). The mathematics is in :ref:`math-gbt-smoother`. Run
``python examples/trees_as_smoothers.py`` (add ``--fast`` for fewer, smaller models).
"""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np
from _figures import DEFAULT_OUT, pyplot, shown
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split

from sktelescope.trees import TreeTelescope


def make_models(n_rounds: int) -> dict:
    """Squared-error boosters of every available library, with comparable settings."""
    models = {
        "sklearn GradientBoosting": GradientBoostingRegressor(
            n_estimators=n_rounds, max_depth=3, learning_rate=0.1, random_state=0
        ),
        "sklearn HistGradientBoosting": HistGradientBoostingRegressor(
            max_iter=n_rounds, max_depth=3, learning_rate=0.1, early_stopping=False
        ),
    }
    if importlib.util.find_spec("xgboost"):
        import xgboost as xgb

        models["XGBoost"] = xgb.XGBRegressor(
            n_estimators=n_rounds, max_depth=3, learning_rate=0.1, n_jobs=1
        )
    if importlib.util.find_spec("lightgbm"):
        import lightgbm as lgb

        models["LightGBM"] = lgb.LGBMRegressor(
            n_estimators=n_rounds, num_leaves=8, learning_rate=0.1, verbose=-1, n_jobs=1
        )
    return models


def report(name: str, tel: TreeTelescope, X_train, y_train, X_test):
    """Print reconstruction errors, effective parameters and kernel norms of one booster;
    returns its effective parameters after each round."""
    errors = tel.reconstruction_errors(X_test)
    _, s_test, _, c_test = tel.smoother(X_test)
    smoother_gap = np.abs(s_test @ y_train + c_test - tel.telescope(X_test).sum(axis=1)).max()
    p = tel.effective_parameters(X_test)
    norms_train = np.mean([s.kernel_row_norms(X_train).max() for s in tel.stages_])
    norms_test = np.mean([s.kernel_row_norms(X_test).max() for s in tel.stages_])
    print(f"{name} ({tel.n_stages_} rounds)")
    print(f"  max |telescope - library prediction|       {errors['telescope']:.2e}")
    print(f"  max |staged - library staged|               {errors['staged'].max():.2e}")
    print(f"  max |weights @ residuals - stage.predict|   {errors['weights'].max():.2e}")
    print(f"  max |s(x) y + c(x) - prediction|            {smoother_gap:.2e}")
    print(f"  effective parameters p_train={p.p_train[-1]:.2f}  p_test={p.p_test[-1]:.2f}")
    print(f"  kernel-extremity ratio (test/train)         {norms_test / norms_train:.3f}")
    if tel.approximations_:
        print("  approximate because: " + "; ".join(tel.approximations_))
    return p


def plot(curves: dict) -> None:
    """``p_train`` and ``p_test`` after each round, one colour per booster."""
    fig, ax = pyplot().subplots(figsize=(6.5, 4))
    for i, (name, p) in enumerate(curves.items()):
        ax.plot(p.steps, p.p_test, color=f"C{i}", label=name)
        ax.plot(p.steps, p.p_train, color=f"C{i}", ls="--")
    ax.set(xlabel="boosting rounds", ylabel="effective parameters",
           title="Boosters as smoothers: p_test (solid) and p_train (dashed)")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    DEFAULT_OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(DEFAULT_OUT / "trees_as_smoothers.png", dpi=120)
    print(f"wrote {shown(DEFAULT_OUT / 'trees_as_smoothers.png')}")


def main(argv: list[str] | None = None) -> None:
    """Fit, open and report every available booster."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fewer rounds, for a quick check")
    args = parser.parse_args(argv)
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0)
    curves = {}
    for name, model in make_models(10 if args.fast else 100).items():
        model.fit(X_train, y_train)
        tel = TreeTelescope(model, X_train, y_train)
        curves[name] = report(name, tel, X_train, y_train, X_test)
    if importlib.util.find_spec("matplotlib"):
        plot(curves)


if __name__ == "__main__":
    main()
