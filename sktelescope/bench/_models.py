"""The benchmark's model registry: pipelines with their preprocessing, and random-search spaces.

Every model is a scikit-learn :class:`~sklearn.pipeline.Pipeline` whose first step does the
preprocessing its family needs (one-hot categoricals and robust smooth-clip, quantile or
standard scaling for networks, robust by default; native categoricals for HistGradientBoosting;
one-hot for the other boosters). Its configuration 0 is the library's default (plus the
model's ``fixed`` parameters); configurations 1, 2, ... are random draws from its search space,
seeded by ``(seed, dataset, split, model, config)``: each dataset and split gets its own draws
(a search that is tuning, not one shared list of configurations), the same on every machine.

Every space draws only sane models: a booster's draw is redrawn while its learning rate times
its number of trees is below :data:`MIN_SHRINKAGE_SUM` (fewer, smaller steps cannot move the
predictions far from the mean: an underfit by construction) or its learning rate is above 1;
the networks' learning rates start at ``1e-4`` (with Adam, ``1e-5`` cannot fit a 1,000-row
problem in 200 epochs). ``tests/test_search_spaces.py`` fits draws of every space on small data.
"""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    StandardScaler,
)

from sktelescope._mlp import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope.bench._scalers import RobustSmoothClipScaler
from sktelescope.bench._skorch import SkorchMLPClassifier, SkorchMLPRegressor

__all__ = [
    "DEFAULT_NETWORK_SCALING",
    "MIN_NETWORK_LR",
    "MIN_SHRINKAGE_SUM",
    "MODELS",
    "NETWORK_SCALERS",
    "PAPER_NETWORK",
    "ModelSpec",
    "available_models",
    "build_model",
    "default_models",
    "derive_seed",
    "get_config",
    "get_model",
    "is_telescoping",
    "network_preprocessor",
]


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: how to build its pipeline and how to draw its configurations.

    Attributes
    ----------
    name : str
    family : {"network", "trees"}
    description : str
    build : callable
        ``build(task, params, categorical_columns, seed, n_threads) -> estimator``.
    sample : callable
        ``sample(rng) -> dict`` draws one configuration of the search space.
    fixed : dict
        Parameters of every configuration, the default included (the paper's network).
    quick : dict
        Parameter caps for the ``quick`` profile (tests and smoke runs).
    requires : tuple of str
        Modules that must be importable for the model to be available.
    in_default : bool, default=True
        Whether a run without ``models`` includes it when installed (False for a model too
        slow for the default run; ask for it by name).

    Examples
    --------
    >>> from sktelescope.bench._models import get_model
    >>> get_model("hgb").family
    'trees'
    """

    name: str
    family: str
    description: str
    build: Callable[..., Any]
    sample: Callable[[np.random.Generator], dict]
    quick: dict = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    in_default: bool = True
    fixed: dict = field(default_factory=dict)

    def is_available(self) -> bool:
        """Whether the modules this model needs can be imported."""
        return all(_importable(m) for m in self.requires)


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------- sampling helpers

#: A booster draw is redrawn while ``learning_rate * n_trees`` is below this: with fewer, smaller
#: steps the ensemble moves its predictions at most ~``1 - exp(-2)`` of the way from the mean
#: towards the targets, an underfit by construction whatever the data.
MIN_SHRINKAGE_SUM = 2.0
#: Lowest learning rate of the networks' spaces: with Adam, ``1e-5`` for at most 200 epochs
#: reaches a train R² of 0.27 on a 1,000-row friedman1 problem, ``1e-4`` 0.91.
MIN_NETWORK_LR = 1e-4
_MAX_REDRAWS = 1_000


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _loguniform_int(rng: np.random.Generator, low: float, high: float) -> int:
    return int(round(_loguniform(rng, low, high)))


def _choice(rng: np.random.Generator, options: list, p: list | None = None):
    return options[int(rng.choice(len(options), p=p))]


def _sane_booster(sample: Callable, lr: str, trees: str) -> Callable:
    """``sample`` redrawn until ``lr * trees >= MIN_SHRINKAGE_SUM`` and ``lr <= 1``: the space
    conditioned on draws that are not an underfit (or a divergence) by construction."""

    def draw(rng: np.random.Generator) -> dict:
        for _ in range(_MAX_REDRAWS):
            params = sample(rng)
            if params[lr] <= 1.0 and params[lr] * params[trees] >= MIN_SHRINKAGE_SUM:
                return params
        raise RuntimeError(f"{sample.__name__} drew no sane configuration in {_MAX_REDRAWS}.")

    draw.__name__, draw.__doc__ = sample.__name__, sample.__doc__
    return draw


# --------------------------------------------------------------------------- preprocessing


#: The numeric-column scalers a network pipeline can use (``scaling`` parameter).
NETWORK_SCALERS = ("standard", "quantile", "robust")

#: The scaler of every network's default configuration (config 0) and of the preprocessor when
#: ``scaling`` is not given. Chosen by ``benchmarks/preprocessing.py`` (20 core datasets, 3
#: splits, each network's default configuration): robust smooth-clip scaling had the best mean
#: rank and mean score for all three networks (telescoping 1.90 vs standard 2.05, quantile 2.05;
#: scikit-learn MLP 1.75 vs 2.00, 2.25; skorch 1.80 vs 2.20, 2.00), and unlike the quantile
#: transform it does not flatten ``reg_num/pol`` (R² 0.991 vs 0.845).
DEFAULT_NETWORK_SCALING = "robust"


def _numeric_scaler(scaling: str):
    if scaling == "quantile":
        return QuantileTransformer(output_distribution="normal", n_quantiles=1000, random_state=0)
    if scaling == "robust":
        return RobustSmoothClipScaler()
    if scaling == "standard":
        return StandardScaler()
    raise ValueError(f"scaling must be one of {list(NETWORK_SCALERS)}, got {scaling!r}.")


def network_preprocessor(
    categorical_columns: Sequence[str] = (), scaling: str = DEFAULT_NETWORK_SCALING
) -> ColumnTransformer:
    """The networks' preprocessing: one-hot categoricals, scaled numeric columns.

    Parameters
    ----------
    categorical_columns : sequence of str, default=()
        Columns to one-hot encode (unknown categories at predict time become all zeros).
    scaling : {"robust", "quantile", "standard"}, default="robust"
        The numeric columns' scaler (:data:`NETWORK_SCALERS`): RealMLP's robust scaling with
        smooth clipping, a quantile transform to a normal, or standardisation.

    Returns
    -------
    sklearn.compose.ColumnTransformer

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 30.0], "c": [0, 1, 0, 1]})
    >>> network_preprocessor(["c"]).fit_transform(X).shape
    (4, 3)
    """
    cats = list(categorical_columns)
    scaler = _numeric_scaler(scaling)
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer(
        [("cat", onehot, cats), ("num", scaler, _not(cats))], verbose_feature_names_out=False
    )


def _onehot_preprocessor(cats: list[str]) -> ColumnTransformer:
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer(
        [("cat", onehot, cats)], remainder="passthrough", verbose_feature_names_out=False
    )


def _not(cats: list[str]) -> Callable:
    """A column selector for every column not in ``cats`` (resolved at fit time)."""

    def select(X):
        return [c for c in X.columns if c not in set(cats)]

    return select


def _is_regression(task: str) -> bool:
    return task == "regression"


# --------------------------------------------------------------------------- networks


def _network_builder(regressor: type, classifier: type, scale_target: bool) -> Callable:
    """The build function of a network model: :func:`network_preprocessor` (its ``scaling``
    parameter) and the estimator, behind a target standardisation when ``scale_target``."""

    def build(task, params, cats, seed, n_threads):
        params = dict(params)
        scaling = params.pop("scaling", DEFAULT_NETWORK_SCALING)
        if "hidden_layer_sizes" in params:
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        if _is_regression(task):
            est = regressor(random_state=seed, **params)
            if scale_target:
                est = TransformedTargetRegressor(est, transformer=StandardScaler())
        else:
            est = classifier(random_state=seed, **params)
        return Pipeline([("prep", network_preprocessor(cats, scaling)), ("model", est)])

    return build


_WIDTHS = [[64, 64, 64], [128, 128], [256, 256], [512, 512]]


def _sample_telescoping(rng):
    decay = _choice(rng, [0.0, None])
    return {
        "hidden_layer_sizes": _choice(rng, _WIDTHS),
        "optimizer": _choice(rng, ["adam", "adamw"]),
        "learning_rate": _loguniform(rng, MIN_NETWORK_LR, 1e-2),
        "batch_size": _choice(rng, [128, 256, 512]),
        "weight_decay": decay if decay is not None else _loguniform(rng, 1e-6, 1e-2),
        "scaling": _choice(rng, list(NETWORK_SCALERS)),
    }


#: The paper's Case 2 network (every configuration, the default included): three hidden
#: layers of 64 ReLU units, batch 128, Adam (the paper does not name its optimizer), the
#: rest the paper preset's.
PAPER_NETWORK = {"preset": "paper", "hidden_layer_sizes": (64, 64, 64), "activation": "relu",
                 "batch_size": 128, "optimizer": "adam"}  # fmt: skip

#: The plain network: ``telescoping_mlp``'s space on the estimators' paper preset (no
#: embedding, constant learning rate, early stopping at patience 20).
PLAIN_NETWORK = {"preset": "paper"}

#: The embedded network's fixed options: the plain network with each numeric feature
#: through RealMLP's periodic (PBLD) embedding, then a learnable diagonal scale.
EMBEDDED_NETWORK = {**PLAIN_NETWORK, "numerical_embedding": "pbld", "feature_scaling": True}


def _sample_paper_mlp(rng):
    """The paper's network space, ``lr ~ LogUniform[1e-5, 1e-2]``, from ``1e-4`` on
    (:data:`MIN_NETWORK_LR`)."""
    return {"learning_rate": _loguniform(rng, MIN_NETWORK_LR, 1e-2)}


def _sample_sklearn_mlp(rng):
    return {
        "hidden_layer_sizes": _choice(rng, _WIDTHS),
        "learning_rate_init": _loguniform(rng, MIN_NETWORK_LR, 1e-2),
        "alpha": _loguniform(rng, 1e-6, 1e-2),
        "batch_size": _choice(rng, [128, 256, 512]),
        "early_stopping": True,
        "scaling": _choice(rng, list(NETWORK_SCALERS)),
    }


def _sample_skorch(rng):
    return {
        "hidden_layer_sizes": _choice(rng, _WIDTHS),
        "lr": _loguniform(rng, MIN_NETWORK_LR, 1e-2),
        "batch_size": _choice(rng, [128, 256, 512]),
        "weight_decay": _loguniform(rng, 1e-6, 1e-2),
        "scaling": _choice(rng, list(NETWORK_SCALERS)),
    }


# --------------------------------------------------------------------------- HistGradientBoosting


def _build_hgb(task, params, cats, seed, n_threads):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    prep = ColumnTransformer(
        [("cat", ordinal, cats)], remainder="passthrough", verbose_feature_names_out=False
    ).set_output(transform="pandas")
    cls = HistGradientBoostingRegressor if _is_regression(task) else HistGradientBoostingClassifier
    est = cls(random_state=seed, categorical_features=list(cats) or None, **params)
    return Pipeline([("prep", prep), ("model", est)])


def _grinsztajn_gbt(rng: np.random.Generator) -> dict:
    """One draw of Grinsztajn et al. 2022's GradientBoostingTree space, as the paper cites it
    (the paper's Case 2): ``learning_rate ~ LogNormal(log 0.01, log 10)``, ``n_estimators ~
    LogUniformInt[10.5, 1000.5]``, ``max_depth`` in {None, 2, 3, 4, 5} with probabilities
    {.1, .1, .6, .1, .1}."""
    return {
        "learning_rate": float(np.exp(rng.normal(np.log(0.01), np.log(10)))),
        "n_estimators": _loguniform_int(rng, 10.5, 1000.5),
        "max_depth": _choice(rng, [None, 2, 3, 4, 5], p=[0.1, 0.1, 0.6, 0.1, 0.1]),
    }


def _sample_hgb(rng):
    """The sane Grinsztajn draw of :func:`_sample_sklearn_gbt` plus a leaf-size draw."""
    draw = _sample_sklearn_gbt(rng)
    return {
        "learning_rate": draw["learning_rate"],
        "max_iter": draw["n_estimators"],
        "max_depth": draw["max_depth"],
        "min_samples_leaf": _loguniform_int(rng, 2, 100),
    }


# --------------------------------------------------------------------------- scikit-learn GBT


def _build_sklearn_gbt(task, params, cats, seed, n_threads):
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    cls = GradientBoostingRegressor if _is_regression(task) else GradientBoostingClassifier
    est = cls(random_state=seed, **params)
    return Pipeline([("prep", _onehot_preprocessor(cats)), ("model", est)])


@partial(_sane_booster, lr="learning_rate", trees="n_estimators")
def _sample_sklearn_gbt(rng):
    """The paper's trees (scikit-learn GradientBoosting) in the Grinsztajn space, conditioned
    on sane draws (``learning_rate <= 1`` and ``learning_rate * n_estimators >=``
    :data:`MIN_SHRINKAGE_SUM`): about 60% of the raw space's draws (median learning rate 0.01,
    median 100 trees) are underfits by construction.

    Cost: ``max_depth=None`` grows every tree until its leaves are pure (thousands of leaves
    on 10,000 rows): about 0.2 s per tree on 10,000 rows x 8 features on one core, so the
    largest draws (1,000 trees) take minutes, ten times longer on ~80 features. Such draws
    are rare (``P(max_depth=None) = 0.1``), and capping them would change the space the paper
    cites, so they run.
    """
    return _grinsztajn_gbt(rng)


# --------------------------------------------------------------------------- XGBoost


def _build_xgboost(task, params, cats, seed, n_threads):
    import xgboost as xgb

    cls = xgb.XGBRegressor if _is_regression(task) else xgb.XGBClassifier
    est = cls(tree_method="hist", random_state=seed, n_jobs=n_threads, verbosity=0, **params)
    return Pipeline([("prep", _onehot_preprocessor(cats)), ("model", est)])


@partial(_sane_booster, lr="learning_rate", trees="n_estimators")
def _sample_xgboost(rng):
    """Grinsztajn et al. 2022's XGBoost space (n_estimators capped at 1000), sane draws."""
    return {
        "max_depth": int(rng.integers(1, 12)),
        "n_estimators": _loguniform_int(rng, 50, 1000),
        "learning_rate": _loguniform(rng, 1e-3, 0.7),
        "subsample": float(rng.uniform(0.5, 1.0)),
        "colsample_bytree": float(rng.uniform(0.5, 1.0)),
        "colsample_bylevel": float(rng.uniform(0.5, 1.0)),
        "min_child_weight": _loguniform_int(rng, 1, 100),
        "reg_alpha": _loguniform(rng, 1e-8, 1e2),
        "reg_lambda": _loguniform(rng, 1, 4),
        "gamma": _loguniform(rng, 1e-8, 7),
    }


# --------------------------------------------------------------------------- LightGBM


def _build_lightgbm(task, params, cats, seed, n_threads):
    import lightgbm as lgb

    cls = lgb.LGBMRegressor if _is_regression(task) else lgb.LGBMClassifier
    est = cls(random_state=seed, n_jobs=n_threads, verbose=-1, **params)
    return Pipeline([("prep", _onehot_preprocessor(cats)), ("model", est)])


@partial(_sane_booster, lr="learning_rate", trees="n_estimators")
def _sample_lightgbm(rng):
    """A LightGBM space in the spirit of Grinsztajn et al.'s, sane draws."""
    return {
        "num_leaves": _loguniform_int(rng, 8, 256),
        "learning_rate": _loguniform(rng, 1e-3, 0.5),
        "n_estimators": _loguniform_int(rng, 50, 1000),
        "subsample": float(rng.uniform(0.5, 1.0)),
        "subsample_freq": 1,
        "colsample_bytree": float(rng.uniform(0.5, 1.0)),
        "min_child_samples": _loguniform_int(rng, 2, 100),
        "reg_lambda": _loguniform(rng, 1e-8, 10.0),
    }


# --------------------------------------------------------------------------- RealMLP (pytabkit)


class _AsCategorical(TransformerMixin, BaseEstimator):
    """Give the categorical columns a pandas ``category`` dtype with the categories seen in
    fit (unseen values become missing), so that RealMLP encodes them itself."""

    def __init__(self, columns: tuple = ()):
        self.columns = columns

    def fit(self, X, y=None):
        self.categories_ = {c: np.unique(X[c].dropna().to_numpy()) for c in self.columns}
        return self

    def transform(self, X):
        X = X.copy()
        for col, cats in self.categories_.items():
            X[col] = pd.Categorical(X[col], categories=cats)
        return X


def _build_realmlp(task, params, cats, seed, n_threads):
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    params = dict(params)
    if "hidden_sizes" in params:
        params["hidden_sizes"] = list(params["hidden_sizes"])
    cls = RealMLP_TD_Regressor if _is_regression(task) else RealMLP_TD_Classifier
    est = cls(device="cpu", random_state=seed, n_threads=n_threads, verbosity=0, **params)
    return Pipeline([("prep", _AsCategorical(tuple(cats))), ("model", est)])


def _sample_realmlp(rng):
    """pytabkit's documented RealMLP tuning space (``RealMLP_HPO``, space "default"; the
    classification-only label smoothing ``ls_eps`` is left at its RealMLP-TD default)."""
    return {
        "num_emb_type": _choice(rng, ["none", "pbld", "pl", "plr"]),
        "add_front_scale": _choice(rng, [True, False], p=[0.6, 0.4]),
        "lr": _loguniform(rng, 2e-2, 3e-1),
        "p_drop": _choice(rng, [0.0, 0.15, 0.3], p=[0.3, 0.5, 0.2]),
        "wd": _choice(rng, [0.0, 2e-2]),
        "plr_sigma": _loguniform(rng, 0.05, 0.5),
        "act": _choice(rng, ["relu", "selu", "mish"]),
        "hidden_sizes": _choice(rng, [[256] * 3, [64] * 5, [512]], p=[0.6, 0.2, 0.2]),
    }


# --------------------------------------------------------------------------- registry

_build_telescoping = _network_builder(TelescopingMLPRegressor, TelescopingMLPClassifier, False)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "telescoping_mlp",
            "network",
            "sktelescope's TelescopingMLP (this project) at its defaults: the tabular preset",
            _build_telescoping,
            _sample_telescoping,
            {"max_iter": 5},
            ("torch",),
        ),
        ModelSpec(
            "paper_mlp",
            "network",
            "TelescopingMLP as the paper's Case 2 network (3 x 64 ReLU, batch 128, Adam)",
            _build_telescoping,
            _sample_paper_mlp,
            {"max_iter": 5},
            ("torch",),
            # The paper protocol's network (--protocol paper), or when named.
            in_default=False,
            fixed=PAPER_NETWORK,
        ),
        ModelSpec(
            "plain_mlp",
            "network",
            "TelescopingMLP on the paper preset (the plain network)",
            _build_telescoping,
            _sample_telescoping,
            {"max_iter": 5},
            ("torch",),
            # The plain network beside the default one, when named (issue 18):
            # --models ...,plain_mlp,embedded_mlp --lens-network plain_mlp,embedded_mlp.
            in_default=False,
            fixed=PLAIN_NETWORK,
        ),
        ModelSpec(
            "embedded_mlp",
            "network",
            "TelescopingMLP, the plain network with RealMLP's PBLD embeddings and feature scaling",
            _build_telescoping,
            _sample_telescoping,
            {"max_iter": 5},
            ("torch",),
            # The plain network's space with the embeddings on (issue 18), when named:
            # --models ...,plain_mlp,embedded_mlp --lens-network plain_mlp,embedded_mlp.
            in_default=False,
            fixed=EMBEDDED_NETWORK,
        ),
        ModelSpec(
            "xgboost",
            "trees",
            "XGBoost, hist trees",
            _build_xgboost,
            _sample_xgboost,
            {"n_estimators": 20},
            ("xgboost",),
        ),
        ModelSpec(
            "hgb",
            "trees",
            "scikit-learn HistGradientBoosting",
            _build_hgb,
            _sample_hgb,
            {"max_iter": 20},
        ),
        ModelSpec(
            "sklearn_gbt",
            "trees",
            "scikit-learn GradientBoosting (the paper's trees)",
            _build_sklearn_gbt,
            _sample_sklearn_gbt,
            {"n_estimators": 20},
        ),
        ModelSpec(
            "sklearn_mlp",
            "network",
            "scikit-learn MLP",
            _network_builder(MLPRegressor, MLPClassifier, True),
            _sample_sklearn_mlp,
            {"max_iter": 5},
        ),
        ModelSpec(
            "lightgbm",
            "trees",
            "LightGBM (optional)",
            _build_lightgbm,
            _sample_lightgbm,
            {"n_estimators": 20},
            ("lightgbm",),
        ),
        ModelSpec(
            "realmlp",
            "network",
            "RealMLP-TD, pytabkit (optional)",
            _build_realmlp,
            _sample_realmlp,
            {"n_epochs": 3},
            ("pytabkit", "torch"),
            # ~6-7 min per default fit on 10,000 rows x 8 features on one core (256 epochs):
            # a run includes it when asked for by name (--models ...,realmlp).
            in_default=False,
        ),
        ModelSpec(
            "skorch_mlp",
            "network",
            "skorch MLP (optional)",
            _network_builder(SkorchMLPRegressor, SkorchMLPClassifier, True),
            _sample_skorch,
            {"max_epochs": 3},
            ("skorch", "torch"),
        ),
    ]
}


def get_model(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` called ``name``, with a clear error when unknown.

    Examples
    --------
    >>> get_model("xgboost").name
    'xgboost'
    """
    if name not in MODELS:
        raise ValueError(
            f"Unknown model {name!r}; expected one of {sorted(MODELS)}. "
            "Run `sktelescope bench --list` to see which are installed."
        )
    return MODELS[name]


def available_models() -> list[str]:
    """Names of the models whose libraries are installed, in registry order.

    Examples
    --------
    >>> "hgb" in available_models()
    True
    """
    return [name for name, spec in MODELS.items() if spec.is_available()]


def default_models() -> list[str]:
    """The models a run uses when none are named: the installed ones, less those too slow for
    a default run (``in_default=False``: ``realmlp``).

    Examples
    --------
    >>> "hgb" in default_models(), "realmlp" in default_models()
    (True, False)
    """
    return [name for name in available_models() if MODELS[name].in_default]


def derive_seed(*parts: object) -> int:
    """A deterministic 31-bit seed from any printable parts (stable across processes).

    Examples
    --------
    >>> derive_seed(0, "hgb", 3) == derive_seed(0, "hgb", 3)
    True
    """
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def get_config(
    model: str,
    config: int,
    seed: int = 0,
    quick: bool = False,
    *,
    dataset: str | None = None,
    split: int | None = None,
) -> dict:
    """The parameters of configuration ``config`` of ``model`` on ``dataset``'s ``split``.

    Configuration 0 is the model's default (its ``fixed`` parameters, else an empty dict: the
    library defaults); configuration ``k > 0`` is a draw from the search space (over the
    ``fixed`` parameters) seeded by ``(seed, dataset, split, model, k)``: every dataset and
    split gets its own draws. With ``quick``, the model's quick-profile caps (epochs, trees)
    are applied.

    Examples
    --------
    >>> get_config("hgb", 0)
    {}
    >>> get_config("hgb", 2, dataset="d", split=0) == get_config("hgb", 2, dataset="d", split=0)
    True
    >>> get_config("hgb", 2, dataset="d", split=0) == get_config("hgb", 2, dataset="e", split=0)
    False
    """
    spec = get_model(model)
    params = dict(spec.fixed)
    if config != 0:
        rng = np.random.default_rng(derive_seed(seed, dataset, split, model, config))
        params.update(spec.sample(rng))
    if quick:
        for key, cap in spec.quick.items():
            params[key] = min(params.get(key, cap), cap)
    return params


def is_telescoping(model: str) -> bool:
    """Whether ``model`` is a TelescopingMLP network of the registry (what the lens opens).

    Examples
    --------
    >>> is_telescoping("embedded_mlp"), is_telescoping("sklearn_mlp")
    (True, False)
    """
    return get_model(model).build is _build_telescoping


def build_model(
    model: str,
    task: str,
    params: dict,
    categorical_columns: list[str],
    seed: int,
    n_threads: int = 1,
):
    """Build the unfitted pipeline of ``model`` for ``task`` with ``params``.

    Examples
    --------
    >>> pipe = build_model("hgb", "regression", {}, [], seed=0)
    >>> [name for name, _ in pipe.steps]
    ['prep', 'model']
    """
    spec = get_model(model)
    if not spec.is_available():
        raise ImportError(
            f"Model {model!r} needs {list(spec.requires)}, which is not installed. Install it "
            "(e.g. `pip install sktelescope[bench]`) or choose other models with --models."
        )
    return spec.build(task, params, list(categorical_columns), seed, n_threads)
