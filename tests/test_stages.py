"""Invariants of the run-as-stages view: the telescope sums, stages chain, kernels match."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits, make_regression

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor


@pytest.fixture(scope="module")
def regression_data():
    X, y = load_diabetes(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def fitted_regressor(regression_data):
    X, y = regression_data
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(32, 32),
        max_iter=40,
        batch_size=64,
        early_stopping=False,
        random_state=0,
        max_stages=20,
    )
    return est.fit(X, y)


def _relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_telescope_rows_sum_to_predict(fitted_regressor, regression_data):
    X, _ = regression_data
    parts = fitted_regressor.telescope(X)
    assert parts.shape == (len(X), 1 + fitted_regressor.n_stages_)
    assert _relative(parts.sum(axis=1), fitted_regressor.predict(X)) < 1e-10


def test_last_staged_predict_equals_predict(fitted_regressor, regression_data):
    X, _ = regression_data
    staged = list(fitted_regressor.staged_predict(X))
    assert len(staged) == fitted_regressor.n_stages_
    np.testing.assert_allclose(staged[-1], fitted_regressor.predict(X), rtol=0, atol=1e-10)


def test_stage_contributions_match_telescope_columns(fitted_regressor, regression_data):
    X, _ = regression_data
    parts = fitted_regressor.telescope(X[:50])
    for k in (0, 7, fitted_regressor.n_stages_ - 1):
        stage = fitted_regressor.stages_[k]
        np.testing.assert_allclose(stage.predict(X[:50]), parts[:, k + 1], atol=1e-10)


def test_stages_cover_every_step_once(fitted_regressor):
    steps = [s for stage in fitted_regressor.stages_ for s in stage.steps]
    assert steps == list(range(1, fitted_regressor.n_steps_ + 1))
    assert fitted_regressor.n_stages_ <= 20


def test_staged_predict_moves_towards_targets(fitted_regressor, regression_data):
    X, y = regression_data
    mse = [np.mean((p - y) ** 2) for p in fitted_regressor.staged_predict(X)]
    initial = np.mean((fitted_regressor.telescope(X)[:, 0] - y) ** 2)
    assert mse[-1] < 0.7 * initial


def test_linear_model_first_order_equals_exact():
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(),
        optimizer="sgd",
        learning_rate=0.05,
        max_iter=10,
        early_stopping=False,
        random_state=0,
        preset="paper",
    ).fit(X, y)
    for stage in est.stages_:
        np.testing.assert_allclose(stage.predict(X, linear=True), stage.predict(X), atol=1e-9)


def test_linear_model_kernel_is_analytic():
    X, y = make_regression(n_samples=60, n_features=4, random_state=1)
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(), max_iter=3, early_stopping=False, random_state=0, preset="paper"
    ).fit(X, y)
    Xs = (X - X.mean(0)) / X.std(0)
    expected = Xs[:10] @ Xs[20:35].T + 1.0
    np.testing.assert_allclose(est.stages_[1].kernel(X[:10], X[20:35]), expected, rtol=1e-10)


def test_mlp_first_order_is_close_for_small_steps(regression_data):
    X, y = regression_data
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(32,), optimizer="sgd", learning_rate=1e-3, max_iter=5,
        stage_every=1, early_stopping=False, random_state=0, preset="paper"
    ).fit(X, y)  # fmt: skip
    stage = est.stages_[3]
    exact, linear = stage.predict(X), stage.predict(X, linear=True)
    assert np.max(np.abs(exact - linear)) < 1e-2 * np.max(np.abs(exact))
    assert np.max(np.abs(exact - linear)) > 0  # a ReLU net is not linear in its parameters


def test_stage_kernel_matches_jacobian_product(fitted_regressor, regression_data):
    X, _ = regression_data
    stage = fitted_regressor.stages_[5]
    module = fitted_regressor.run_.module
    Xt = fitted_regressor.run_.inputs(X[:6])
    flat = stage.start_parameters.double()

    def f(p):
        from sktelescope._core.network import forward_flat

        return forward_flat(module, p, Xt)[:, 0]

    J = torch.autograd.functional.jacobian(f, flat)
    np.testing.assert_allclose(stage.kernel(X[:6]), (J @ J.T).numpy(), rtol=1e-9, atol=1e-12)


def test_early_stopping_ends_stages_at_best_step():
    X, y = make_regression(n_samples=600, n_features=6, noise=30.0, random_state=0)
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(64,), learning_rate=3e-2, max_iter=60, batch_size=32,
        early_stopping=True, n_iter_no_change=3, random_state=0,
    ).fit(X, y)  # fmt: skip
    assert est.n_iter_ < 60
    assert est.best_step_ < est.n_steps_
    assert est.stages_[-1].steps.stop - 1 == est.best_step_
    np.testing.assert_allclose(est.telescope(X).sum(1), est.predict(X), rtol=1e-10)
    best_epoch = int(np.argmax(est.validation_score_))
    assert est.best_step_ == (best_epoch + 1) * int(np.ceil(540 / 32))


def test_validation_data_passed_to_fit_enables_early_stopping(regression_data):
    X, y = regression_data
    est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    est.fit(X[:300], y[:300], X_val=X[300:], y_val=y[300:])
    assert len(est.validation_score_) == est.n_iter_


def test_multioutput_regression_telescope():
    X, y = make_regression(n_samples=120, n_features=5, n_targets=3, random_state=0)
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(16,), max_iter=10, early_stopping=False, random_state=0
    )
    est.fit(X, y)
    parts = est.telescope(X)
    assert parts.shape == (120, 1 + est.n_stages_, 3)
    np.testing.assert_allclose(parts.sum(axis=1), est.predict(X), rtol=1e-9, atol=1e-8)
    assert est.stages_[0].kernel(X[:4], X[:5]).shape == (3, 4, 5)
    assert est.stages_[0].kernel(X[:4], X[:5], output=1).shape == (4, 5)


@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_classifier_telescope_sums_to_decision_function(loss):
    X, y = load_digits(return_X_y=True)
    for mask in (np.isin(y, [3, 5]), np.ones(len(y), bool)):
        clf = TelescopingMLPClassifier(
            hidden_layer_sizes=(32,), loss=loss, max_iter=8, random_state=0
        ).fit(X[mask], y[mask])
        d = clf.decision_function(X[mask])
        np.testing.assert_allclose(clf.telescope(X[mask]).sum(axis=1), d, atol=1e-9)
        staged = list(clf.staged_decision_function(X[mask]))
        np.testing.assert_allclose(staged[-1], d, atol=1e-10)
        assert np.array_equal(list(clf.staged_predict(X[mask]))[-1], clf.predict(X[mask]))
        proba = list(clf.staged_predict_proba(X[mask]))[-1]
        np.testing.assert_allclose(proba, clf.predict_proba(X[mask]), atol=1e-12)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_adam_stage_exposes_preconditioned_kernel(fitted_regressor, regression_data):
    X, _ = regression_data
    stage = fitted_regressor.stages_[2]
    plain = stage.kernel(X[:5], X[:7])
    pre = stage.kernel(X[:5], X[:7], preconditioned=True)
    assert pre.shape == plain.shape
    assert not np.allclose(pre, plain)
    sgd = TelescopingMLPRegressor(
        (8,), optimizer="sgd", max_iter=2, early_stopping=False, random_state=0
    )
    sgd.fit(X, _)
    with pytest.raises(ValueError, match="no preconditioner"):
        sgd.stages_[0].kernel(X[:2], preconditioned=True)


def test_staged_predict_evaluates_stacked_checkpoints_in_one_call(
    fitted_regressor, regression_data, monkeypatch
):
    """All stages of a chunk are one batched call, not one module evaluation per stage."""
    from sktelescope._mlp import _run

    calls = []
    original = _run.forward_stacked

    def counting(module, flats, X, *args, **kwargs):
        calls.append(len(flats))
        return original(module, flats, X, *args, **kwargs)

    monkeypatch.setattr(_run, "forward_stacked", counting)
    X, _ = regression_data
    staged = list(fitted_regressor.staged_predict(X[:10]))
    assert len(staged) == fitted_regressor.n_stages_
    assert calls == [min(16, fitted_regressor.n_stages_ - k) for k in range(0, len(staged), 16)]
    store = fitted_regressor.run_.checkpoints
    assert store.nbytes() == (2 * len(store.flats) - 1) * store.flats[0].numel() * 4
