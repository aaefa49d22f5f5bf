"""The presets behind the ``"auto"`` settings: "tabular" (the default) and "paper"."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._mlp._presets import PRESET_PARAMETERS, PRESETS, resolve_params

ESTIMATORS = [TelescopingMLPRegressor, TelescopingMLPClassifier]

#: The estimators' defaults until 2026-12-07, spelt out: the paper preset must be them.
PLAIN_DEFAULTS = {
    "hidden_layer_sizes": (256, 256), "activation": "relu", "numerical_embedding": None,
    "feature_scaling": False, "beta_2": 0.999, "lr_schedule": "constant", "dropout": 0.0,
    "max_iter": 200, "n_iter_no_change": 20,
}  # fmt: skip
#: The measured default (benchmarks/defaults.py's td-64-clf-selu-3x256), spelt out.
TABULAR = {
    "hidden_layer_sizes": (256, 256), "activation": "relu", "numerical_embedding": "pbld",
    "feature_scaling": True, "beta_2": 0.95, "lr_schedule": "flat_cosine", "dropout": 0.15,
    "max_iter": 64, "n_iter_no_change": None,
}  # fmt: skip
TABULAR_CLASSIFIER = {
    **TABULAR, "hidden_layer_sizes": (256, 256, 256), "activation": "selu",
    "label_smoothing": 0.1,
}  # fmt: skip


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X[:200], y[:200]


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:200], y[:200]


def _fit(cls, data, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(random_state=0, **params).fit(*data)


def test_every_preset_setting_defaults_to_auto_in_both_signatures():
    for cls in ESTIMATORS:
        defaults = {n: p.default for n, p in inspect.signature(cls).parameters.items()}
        assert defaults["preset"] == "tabular"
        names = [n for n in PRESET_PARAMETERS if n in defaults]
        assert all(defaults[n] == "auto" for n in names)
    assert "label_smoothing" in inspect.signature(TelescopingMLPClassifier).parameters


def test_the_presets_are_the_old_defaults_and_the_measured_candidate():
    assert PRESETS["paper"]["regression"] == {**PLAIN_DEFAULTS, "early_stopping_min_samples": 20}
    assert PRESETS["paper"]["classification"] == {
        **PLAIN_DEFAULTS, "label_smoothing": 0.0, "early_stopping_min_samples": 1000,
    }  # fmt: skip
    assert TelescopingMLPRegressor().get_resolved_params().items() >= TABULAR.items()
    assert TelescopingMLPClassifier().get_resolved_params().items() >= TABULAR_CLASSIFIER.items()


@pytest.mark.parametrize(("preset", "n", "expected"), [
    ("tabular", 19, False), ("tabular", 20, True), ("paper", 999, False), ("paper", 1000, True),
])  # fmt: skip
def test_get_resolved_params_resolves_early_stopping_at_a_number_of_rows(preset, n, expected):
    clf = TelescopingMLPClassifier(preset=preset)
    assert clf.get_resolved_params(n_samples=n)["early_stopping"] is expected
    assert clf.get_resolved_params()["early_stopping"] == "auto"
    assert (
        TelescopingMLPClassifier(early_stopping=False).get_resolved_params(10**6)["early_stopping"]
        is False
    )


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "100"])
def test_get_resolved_params_validates_its_argument_and_the_parameters(bad):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        TelescopingMLPRegressor().get_resolved_params(n_samples=bad)
    with pytest.raises(ValueError, match="'preset' parameter"):
        TelescopingMLPRegressor(preset="fast").get_resolved_params()


@pytest.mark.parametrize("preset", ["paper", "tabular"])
def test_a_preset_trains_exactly_like_its_values_set_by_hand(diabetes, cancer, preset):
    """``"auto"`` is resolved before anything is built: the same network, bit for bit (with
    early stopping set, whose ``"auto"`` threshold is the preset's too)."""
    for cls, data in [(TelescopingMLPRegressor, diabetes), (TelescopingMLPClassifier, cancer)]:
        explicit = {n: v for n, v in PRESETS[preset][cls._task].items() if n in cls().get_params()}
        small = dict(max_iter=3, hidden_layer_sizes=(16,), early_stopping=True)
        explicit.update(small)
        auto = _fit(cls, data, preset=preset, **small)
        spelt = _fit(cls, data, preset="tabular" if preset == "paper" else "paper", **explicit)
        assert torch.equal(auto.run_.final_parameters, spelt.run_.final_parameters)
        assert auto.resolved_params_ == spelt.resolved_params_


def test_a_value_set_explicitly_wins_over_the_preset(diabetes):
    est = _fit(TelescopingMLPRegressor, diabetes, hidden_layer_sizes=(8,), max_iter=3,
               dropout=0.0, numerical_embedding=None)  # fmt: skip
    assert est.resolved_params_["dropout"] == 0.0
    assert est.resolved_params_["numerical_embedding"] is None
    assert est.resolved_params_["feature_scaling"] is True  # still the preset's
    assert est.get_params()["dropout"] == 0.0 and est.get_params()["beta_2"] == "auto"
    assert est.n_iter_ == 3


def test_auto_survives_clone_and_get_params():
    est = TelescopingMLPClassifier(preset="paper", dropout=0.1)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert twin.get_params()["activation"] == "auto" and twin.get_params()["dropout"] == 0.1


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"preset": "realmlp"}, "'preset' parameter of TelescopingMLPRegressor must be a str"),
        ({"activation": "swish"}, "'activation' parameter"),
        ({"max_iter": "many"}, "'max_iter' parameter"),
        ({"hidden_layer_sizes": "wide"}, "'hidden_layer_sizes' parameter"),
        ({"dropout": "auto "}, "'dropout' parameter"),
    ],
)
def test_bad_presets_and_settings_are_refused_like_any_parameter(diabetes, params, match):
    with pytest.raises(ValueError, match=match):
        TelescopingMLPRegressor(**params).fit(*diabetes)


def test_warm_start_refuses_a_network_the_changed_preset_would_build(diabetes):
    est = _fit(TelescopingMLPRegressor, diabetes, hidden_layer_sizes=(8,), max_iter=2,
               warm_start=True)  # fmt: skip
    before = est.run_.final_parameters.clone()
    est.set_params(preset="paper")
    with pytest.raises(ValueError, match=r'numerical_embedding changed .* \(from preset="paper"\)'):
        est.fit(*diabetes)
    assert torch.equal(est.run_.final_parameters, before)  # the fitted model is kept
    est.set_params(preset="tabular", max_iter=1)
    est.fit(*diabetes)  # the same preset continues
    assert est.n_iter_ == 3


@pytest.mark.parametrize("embedding", ["pbld", "plr", "ple"])
def test_no_embedding_touches_the_global_torch_rng(diabetes, embedding):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    _fit(TelescopingMLPRegressor, diabetes, hidden_layer_sizes=(8,), max_iter=2,
         numerical_embedding=embedding)  # fmt: skip
    assert torch.equal(torch.get_rng_state(), before)


def test_resolve_params_reads_fits_recorded_without_a_preset_as_paper():
    old = {"hidden_layer_sizes": (256, 256), "max_iter": 200}  # no "preset" key
    assert resolve_params({**old, "dropout": "auto"}, "regression")["dropout"] == 0.0


def test_the_default_classifier_telescopes_and_stages_to_its_predictions(cancer):
    clf = _fit(TelescopingMLPClassifier, cancer, max_iter=4)
    X = cancer[0][:20]
    np.testing.assert_allclose(
        clf.telescope(X).sum(axis=1), clf.decision_function(X), rtol=1e-4, atol=1e-4
    )
    *_, last = clf.staged_decision_function(X)
    np.testing.assert_allclose(last, clf.decision_function(X), rtol=1e-12)
    assert clf.resolved_params_["activation"] == "selu"
