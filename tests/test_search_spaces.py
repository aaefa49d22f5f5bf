"""Every search space draws sane models: no draw is an underfit (or a divergence) by
construction. The rules are checked on many draws; then draws of every space are fitted on a
small, learnable problem (friedman1, 1,000 rows) and each must fit its training data.

Before the spaces were conditioned, 3 of the first 3 sklearn_gbt draws had a learning rate at
most 0.004 with at most 21 trees, and the raw Grinsztajn space gives such draws most of the
time (the first test says how often)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_friedman1
from threadpoolctl import threadpool_limits

from sktelescope.bench import MODELS, available_models, build_model, get_config
from sktelescope.bench._models import (
    MIN_NETWORK_LR,
    MIN_SHRINKAGE_SUM,
    _grinsztajn_gbt,
)

BOOSTERS = {"sklearn_gbt": ("learning_rate", "n_estimators"), "hgb": ("learning_rate", "max_iter"),
            "xgboost": ("learning_rate", "n_estimators"),
            "lightgbm": ("learning_rate", "n_estimators")}  # fmt: skip
NETWORK_LR = {"telescoping_mlp": "learning_rate", "paper_mlp": "learning_rate",
              "sklearn_mlp": "learning_rate_init", "skorch_mlp": "lr"}  # fmt: skip
#: A draw fits friedman1's training rows at least this well (its defaults reach ~0.9; an
#: underfit by construction, learning rate 0.004 with 21 trees, reaches ~0.1).
MIN_TRAIN_R2 = 0.5


def _draws(model: str, n: int) -> list[dict]:
    return [get_config(model, c, dataset=f"d{c % 7}", split=c % 3) for c in range(1, n + 1)]


def test_the_raw_grinsztajn_space_is_mostly_underfits():
    rng = np.random.default_rng(0)
    raw = [_grinsztajn_gbt(rng) for _ in range(2000)]
    bad = np.mean([d["learning_rate"] * d["n_estimators"] < MIN_SHRINKAGE_SUM for d in raw])
    assert bad > 0.4  # what the conditioning removes


@pytest.mark.parametrize("model", sorted(BOOSTERS))
def test_booster_draws_take_enough_steps(model):
    lr, trees = BOOSTERS[model]
    for draw in _draws(model, 500):
        assert 0 < draw[lr] <= 1.0 and draw[lr] * draw[trees] >= MIN_SHRINKAGE_SUM, draw
    if model == "sklearn_gbt":  # the rest of the paper's space is kept
        draws = _draws(model, 500)
        depths = pd.Series([d["max_depth"] for d in draws]).value_counts(normalize=True,
                                                                         dropna=False)  # fmt: skip
        assert 0.45 < depths[3] < 0.75 and 0.03 < depths[np.nan] < 0.2
        assert all(11 <= d["n_estimators"] <= 1000 for d in draws)


@pytest.mark.parametrize("model", sorted(NETWORK_LR))
def test_network_learning_rates_start_at_the_sane_minimum(model):
    draws = _draws(model, 300)
    rates = np.array([d[NETWORK_LR[model]] for d in draws])
    assert rates.min() >= MIN_NETWORK_LR and rates.max() <= 1e-2
    assert np.median(np.log10(rates)) == pytest.approx(-3, abs=0.25)  # log-uniform


def test_the_papers_network_is_fixed_in_every_configuration():
    for config in range(4):
        params = get_config("paper_mlp", config, dataset="d", split=0)
        assert params["hidden_layer_sizes"] == (64, 64, 64) and params["batch_size"] == 128
        assert params["activation"] == "relu" and params["optimizer"] == "adam"


def _fit_scores(model: str, n_draws: int) -> list[float]:
    X, y = make_friedman1(n_samples=1000, noise=1.0, random_state=0)
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    scores = []
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # convergence warnings of short runs
        for params in _draws(model, n_draws):
            est = build_model(model, "regression", params, [], seed=0, n_threads=1).fit(X, y)
            scores.append(est.score(X, y))
    return scores


@pytest.mark.parametrize("model", ["hgb", "xgboost"])  # sklearn_gbt: in the slow test
def test_a_few_booster_draws_fit_small_data(model):
    if model not in available_models():
        pytest.skip(f"{model} is not installed")
    scores = _fit_scores(model, 4)
    assert min(scores) >= MIN_TRAIN_R2, scores


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_space_draws_models_that_fit_small_data(model):
    if model not in available_models() or model == "realmlp":  # realmlp: minutes per fit
        pytest.skip(f"{model} is not installed or too slow to fit 25 times here")
    scores = _fit_scores(model, 25)
    assert min(scores) >= MIN_TRAIN_R2, sorted(scores)[:5]
