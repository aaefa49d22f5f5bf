"""Cost of ``TreeTelescope.reconstruction_errors`` per library, against XGBoost's.

Fits XGBoost, LightGBM, HistGradientBoosting and GradientBoosting regressors of the same size
(``--rounds`` rounds of at most 32 leaves, no early stopping) on scikit-learn's diabetes data
(442 rows x 10), builds each one's :class:`~sktelescope.trees.TreeTelescope` and times
``reconstruction_errors()`` on the training rows: the library's own staged predictions, the
telescope's and every round's smoother weights. The libraries are timed round-robin, so a slow
spell of a shared machine falls on all of them alike; prints the median seconds of each and
its ratio to XGBoost's. ``hgb (before)`` is the same HistGradientBoosting telescope with its
library staged predictions computed as before issue 20 (see below), timed in the same
round-robin. Run::

    python benchmarks/trees_cost.py                  # 200 rounds, the libraries' own threads
    python benchmarks/trees_cost.py --threads 1      # one thread for every library
    python benchmarks/trees_cost.py --fast           # 30 rounds, for a smoke run

Until issue 20, HistGradientBoosting's and GradientBoosting's staged predictions restarted at
round 0 for every round (``n_rounds**2 / 2`` tree evaluations, 20,100 at 200 rounds, each
HistGradientBoosting round in an OpenMP region of one thread per core); they now come from
one pass of scikit-learn's ``staged_predict``, on one OpenMP thread.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from itertools import islice

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from sktelescope.trees import TreeTelescope


def models(rounds: int, threads: int | None) -> dict:
    """Same-sized regressors: ``rounds`` rounds of at most 32 leaves, learning rate 0.1."""
    from lightgbm import LGBMRegressor
    from xgboost import XGBRegressor

    n_jobs = -1 if threads is None else threads
    return {
        "xgboost": XGBRegressor(n_estimators=rounds, max_depth=5, n_jobs=n_jobs),
        "lightgbm": LGBMRegressor(
            n_estimators=rounds, num_leaves=32, min_child_samples=5, n_jobs=n_jobs, verbose=-1
        ),
        "hgb": HistGradientBoostingRegressor(
            max_iter=rounds, max_leaf_nodes=32, early_stopping=False, random_state=0
        ),
        "sklearn_gbt": GradientBoostingRegressor(n_estimators=rounds, max_depth=5, random_state=0),
    }


def before_issue_20(tel: TreeTelescope) -> TreeTelescope:
    """A copy of an HGB telescope whose library staged predictions restart at round 0 for
    every round, with the library's own threads, as ``trees/_sklearn.py`` did before."""
    model, n = tel.model, tel.n_stages_

    def staged(X):
        for k in range(1, n + 1):
            yield np.asarray(next(islice(model.staged_predict(X), k - 1, None)), dtype=float)

    old = copy.copy(tel)
    old._spec = copy.copy(tel._spec)
    old._spec.staged_raw_predict = staged
    return old


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=200, help="boosting rounds per model")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds of the round-robin")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every library (default: theirs)"
    )
    parser.add_argument("--fast", action="store_true", help="30 rounds, one repeat")
    args = parser.parse_args(argv)
    rounds, repeats = (30, 1) if args.fast else (args.rounds, args.repeats)
    X, y = load_diabetes(return_X_y=True)
    limit = threadpool_limits(args.threads) if args.threads else contextlib.nullcontext()
    with limit:
        telescopes = {
            name: TreeTelescope(model.fit(X, y), X, y)
            for name, model in models(rounds, args.threads).items()
        }
        telescopes["hgb (before)"] = before_issue_20(telescopes["hgb"])
        for tel in telescopes.values():
            tel.reconstruction_errors()  # warm-up
        times = {name: [] for name in telescopes}
        for _ in range(repeats):
            for name, tel in telescopes.items():
                times[name].append(seconds(tel.reconstruction_errors))
    median = {name: statistics.median(t) for name, t in times.items()}
    threads = "the libraries' own threads" if args.threads is None else f"{args.threads} thread(s)"
    print(f"reconstruction_errors on diabetes (442 x 10), {rounds} rounds of <= 32 leaves, "
          f"{threads}, median of {repeats} round-robin repeats")  # fmt: skip
    for name, value in median.items():
        ratio = value / median["xgboost"]
        print(f"  {name:<13} {value:8.3f} s   {ratio:6.2f}x xgboost")
    return median


if __name__ == "__main__":
    main()
