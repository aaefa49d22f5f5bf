"""The estimators as scikit-learn users use them: pipelines, search, pickling, pandas, faults."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope.exceptions import FitInterruptedWarning

FAST = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.mark.slow
def test_pipeline_gridsearch_and_parallel_cross_validate(diabetes):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), TelescopingMLPRegressor(**FAST))
    grid = GridSearchCV(pipe, {"telescopingmlpregressor__learning_rate": [1e-3, 1e-2]}, cv=2)
    grid.fit(X, y)
    key = "telescopingmlpregressor__learning_rate"
    manual = [cross_val_score(clone(pipe).set_params(**{key: lr}), X, y, cv=2).mean()
              for lr in (1e-3, 1e-2)]  # fmt: skip
    assert grid.best_score_ == pytest.approx(max(manual), rel=1e-12)
    assert grid.best_params_[key] == (1e-3, 1e-2)[int(np.argmax(manual))]
    refit = clone(pipe).set_params(**{key: grid.best_params_[key]}).fit(X, y)
    np.testing.assert_array_equal(grid.predict(X), refit.predict(X))
    scores = cross_validate(pipe, X, y, cv=3, n_jobs=2)
    assert scores["test_score"].shape == (3,)
    assert np.all(np.isfinite(scores["test_score"]))


def test_clone_keeps_params_and_drops_fit(diabetes):
    X, y = diabetes
    est = TelescopingMLPRegressor(**FAST).fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(X)


def test_pickle_round_trip_keeps_stages(diabetes):
    X, y = diabetes
    est = TelescopingMLPRegressor(**FAST).fit(X, y)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_array_equal(loaded.telescope(X[:20]), est.telescope(X[:20]))
    np.testing.assert_array_equal(loaded.stages_[2].kernel(X[:3]), est.stages_[2].kernel(X[:3]))


def test_pandas_input_records_feature_names():
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.map({0: "malignant", 1: "benign"})
    clf = TelescopingMLPClassifier(**FAST).fit(X, y)
    assert list(clf.feature_names_in_) == list(X.columns)
    assert set(clf.predict(X)) <= {"malignant", "benign"}
    assert clf.score(X, y) > 0.8


def test_same_random_state_gives_identical_predictions_without_global_rng(diabetes):
    X, y = diabetes
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = TelescopingMLPRegressor(**FAST).fit(X, y).predict(X)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(999)
    b = TelescopingMLPRegressor(**FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    c = TelescopingMLPRegressor(**{**FAST, "random_state": 1}).fit(X, y).predict(X)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "X_bad, match",
    [
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "infinity"),
        (np.empty((0, 2)), "0 sample"),
        (np.array([[1 + 2j, 1.0], [2.0, 3.0]]), "Complex"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), "could not convert"),
    ],
)
def test_bad_inputs_raise_clear_errors(X_bad, match):
    y = np.arange(len(X_bad), dtype=float)
    with pytest.raises(ValueError, match=match):
        TelescopingMLPRegressor(**FAST).fit(X_bad, y)


def test_sparse_input_is_refused_with_a_type_error():
    X = sp.random(20, 3, density=0.5, format="csr", random_state=0)
    with pytest.raises(TypeError, match="dense data is required"):
        TelescopingMLPRegressor(**FAST).fit(X, np.arange(20.0))


def test_nan_target_and_single_class():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="NaN"):
        TelescopingMLPRegressor(**FAST).fit(X, np.r_[np.nan, np.ones(9)])
    with pytest.raises(ValueError, match="only one class"):
        TelescopingMLPClassifier(**FAST).fit(X, np.ones(10))


def test_one_sample_fits_without_early_stopping():
    est = TelescopingMLPRegressor(**FAST).fit([[1.0, 2.0]], [3.0])
    assert np.isfinite(est.predict([[1.0, 2.0]])).all()


def test_wrong_feature_count_at_predict(diabetes):
    X, y = diabetes
    est = TelescopingMLPRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :3])


def test_invalid_parameters_are_named():
    X, y = np.ones((5, 2)), np.arange(5.0)
    with pytest.raises(ValueError, match="more than max_stages=3"):
        TelescopingMLPRegressor(stage_every=1, max_stages=3, batch_size=1, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="optimizer"):
        TelescopingMLPRegressor(optimizer="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        TelescopingMLPRegressor(hidden_layer_sizes=(0,)).fit(X, y)


def test_divergence_names_learning_rate_and_leaves_no_fitted_state(diabetes):
    X, y = diabetes
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(64, 64), optimizer="sgd", learning_rate=50.0, max_iter=20,
        random_state=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="learning_rate=50.0"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert not hasattr(est, "stages_")


def test_keyboard_interrupt_keeps_a_usable_model(diabetes, monkeypatch):
    X, y = diabetes
    from sktelescope._core import training

    original = training.Trainer._train_step

    def interrupting(self, *args):
        if self.step == 7:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(training.Trainer, "_train_step", interrupting)
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(8,), max_iter=50, early_stopping=False, random_state=0
    )
    with pytest.warns(FitInterruptedWarning, match="interrupted after 7"):
        est.fit(X, y)
    assert est.n_steps_ == 7 and est.stages_[-1].steps.stop - 1 == 7
    np.testing.assert_allclose(est.telescope(X).sum(1), est.predict(X), rtol=1e-10)


def test_convergence_warning_only_when_not_converged(diabetes):
    X, y = diabetes
    paper = dict(hidden_layer_sizes=(8,), preset="paper", random_state=0)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        TelescopingMLPRegressor(**paper, max_iter=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        TelescopingMLPRegressor(**paper, max_iter=500, learning_rate=1e-2).fit(X, y)


def test_tabular_preset_runs_its_whole_schedule_without_a_convergence_warning(diabetes):
    """The default trains its 64 planned epochs (the flat-then-cosine schedule ends at 0) and
    keeps the best validation epoch: reaching max_iter is the plan, not a failure."""
    X, y = diabetes
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    assert est.n_iter_ == 64 and len(est.validation_score_) == 64
    scores = est.validation_score_  # kept: the last epoch that beat every earlier one by tol
    best = max(i for i in range(64) if i == 0 or scores[i] > scores[:i].max() + est.tol)
    assert est.best_step_ == (best + 1) * (est.n_steps_ // 64)
    assert est.resolved_params_["n_iter_no_change"] is None


@pytest.mark.parametrize(("preset", "classifier_from"), [("paper", 1000), ("tabular", 20)])
def test_auto_early_stopping_switches_on_from_20_rows_for_regression(preset, classifier_from):
    """From 20 rows for the regressor; for the classifier from 1,000 (paper) or 20 (tabular,
    whose schedule is measured with the best validation epoch kept)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1_000, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=len(X))
    fast = {**FAST, "preset": preset}
    est = TelescopingMLPRegressor(**fast).fit(X[:20], y[:20])
    assert len(est.validation_score_) == est.n_iter_
    assert not hasattr(TelescopingMLPRegressor(**fast).fit(X[:19], y[:19]), "validation_score_")
    labels = (y > 0).astype(int)
    clf = TelescopingMLPClassifier(**fast).fit(X[:classifier_from], labels[:classifier_from])
    assert len(clf.validation_score_) == clf.n_iter_
    n = classifier_from - 1
    small = TelescopingMLPClassifier(**fast).fit(X[:n], labels[:n])
    assert not hasattr(small, "validation_score_")


def test_verbose_shows_progress(diabetes, capsys):
    X, y = diabetes
    TelescopingMLPRegressor(**{**FAST, "verbose": 1}).fit(X, y)
    err = capsys.readouterr().err
    assert "epochs" in err and "loss=" in err


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_optimizers_and_schedules_learn(diabetes, optimizer, schedule):
    X, y = diabetes
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(32,), optimizer=optimizer, learning_rate=1e-2 if optimizer != "sgd"
        else 1e-2, lr_schedule=schedule, warmup_steps=5, weight_decay=1e-4, max_iter=60,
        batch_size=32, random_state=0,
    ).fit(X, y)  # fmt: skip
    assert est.score(X, y) > 0.4


def test_init_scale_multiplies_initial_parameters(diabetes):
    """Of the linear layers: the plain network has no others (the embedding and the feature
    scale keep their own initialisation)."""
    X, y = diabetes
    a = TelescopingMLPRegressor(**FAST, preset="paper").fit(X, y)
    b = TelescopingMLPRegressor(**{**FAST, "init_scale": 3.0}, preset="paper").fit(X, y)
    np.testing.assert_allclose(
        3.0 * a.run_.checkpoints.flats[0], b.run_.checkpoints.flats[0], rtol=1e-6
    )


def test_full_batch_and_activations(diabetes):
    X, y = diabetes
    for activation in ("relu", "gelu", "tanh", "selu", "mish", "identity"):
        est = TelescopingMLPRegressor(
            hidden_layer_sizes=(8,), activation=activation, batch_size=None, max_iter=4,
            random_state=0,
        ).fit(X, y)  # fmt: skip
        assert est.n_steps_ == 4


def test_classifier_probabilities_and_labels():
    X, y = load_breast_cancer(return_X_y=True)
    clf = TelescopingMLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))
    assert clf.score(X, y) > 0.9


def test_pandas_regression_with_dataframe_and_series(diabetes):
    X, y = diabetes
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = TelescopingMLPRegressor(**FAST).fit(df, pd.Series(y))
    np.testing.assert_array_equal(est.predict(df), est.predict(df.to_numpy()))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_a_gpu_says_so(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="cannot be used here"):
        TelescopingMLPRegressor(**{**FAST, "device": "cuda"}).fit(X, y)
    est = TelescopingMLPRegressor(**{**FAST, "device": "auto"}).fit(X, y)
    assert next(est.module_.parameters()).device.type == "cpu"
