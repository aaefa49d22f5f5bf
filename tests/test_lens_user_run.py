"""The lens measures the run the user fitted: default fits (``random_state=None``, early
stopping), pipelines and searches; the same numbers as a monitor attached to the fit; and
a refusal, never a measurement of another run, for data that is not the fit's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor, lens

#: Every default except the size: a default network (256, 256) over 200 epochs makes the
#: smoother's channel replay cost minutes; what matters here (random_state=None, early
#: stopping "auto", Adam, batch 256) is the default.
SMALL = dict(hidden_layer_sizes=(16,), max_iter=8)


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=1200, n_features=5, noise=10.0, random_state=0)
    X = X * [1.0, 10.0, 100.0, 0.1, 3.0] + [0.0, 5.0, -50.0, 2.0, 1.0]  # raw units differ
    return X[:1000], y[:1000], X[1000:]


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:500], y[:500], X[500:]


def _quiet_fit(model, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y, **fit_params)


@pytest.fixture(scope="module")
def default_fit(regression):
    X, y, _ = regression
    return _quiet_fit(TelescopingMLPRegressor(**SMALL), X, y)


def test_a_default_fit_records_what_a_replay_needs(default_fit, regression):
    X, y, _ = regression
    run = default_fit.run_
    assert default_fit.random_state is None and isinstance(run.seed, int)
    (record,) = run.fits
    assert record.validation == "split" and record.n_train == 900
    assert record.last_step == default_fit.best_step_ == run.checkpoints.steps[-1]
    held_out = np.setdiff1d(np.arange(1000), record.train_rows)
    assert len(held_out) == 100
    assert not run.trained_on(X[held_out]).any() and run.trained_on(X[record.train_rows]).all()


def test_a_default_fit_replays_bit_for_bit(default_fit, regression):
    X, y, X_test = regression
    trace = lens.telescoping_trace(default_fit, X, y, X_test[:20])
    assert trace.steps[-1] == default_fit.best_step_  # the model it predicts, not the last step
    np.testing.assert_allclose(
        trace.exact[-1], default_fit.predict(X_test[:20]), rtol=1e-5, atol=1e-4
    )
    parts = default_fit.telescope(X_test)
    np.testing.assert_allclose(parts.sum(axis=1), default_fit.predict(X_test), rtol=1e-5)


def test_replays_equal_monitors_attached_to_the_fit(regression):
    """Each replaying lens function gives what a monitor on the original fit recorded, up to
    the kept step."""
    X, y, X_test = regression
    watch = [lens.TelescopingMonitor(X_test[:30]), lens.SmootherMonitor(X_eval=X_test[:30]),
             lens.KernelExtremityMonitor(X_test[:30] * 3, max_train_samples=None)]  # fmt: skip
    est = _quiet_fit(TelescopingMLPRegressor(**SMALL), X, y, monitors=watch)
    kept = watch[0].steps_ <= est.best_step_
    trace = lens.telescoping_trace(est, X, y, X_test[:30])
    np.testing.assert_array_equal(trace.steps, watch[0].steps_[kept])
    np.testing.assert_allclose(trace.exact, est.run_.outputs(watch[0].exact_[kept]), rtol=1e-12)
    ep = lens.effective_parameters(est, X, y, X_test[:30])
    k = len(ep.steps)
    np.testing.assert_array_equal(ep.steps, watch[1].steps_[:k])
    np.testing.assert_allclose(ep.p_train, watch[1].p_train_[:k], rtol=1e-12)
    np.testing.assert_allclose(ep.p_test, watch[1].p_test_[:k], rtol=1e-12)
    np.testing.assert_array_equal(ep.rows, est.run_.fits[0].train_rows)
    step = lens.kernel_extremity_ratio(est, X, y, X_test[:30] * 3, method="step",
                                       max_train_samples=None)  # fmt: skip
    n = len(step.test_max)
    assert n == est.best_step_
    np.testing.assert_allclose(step.test_max, watch[2].test_max_[:n, 0], rtol=1e-12)
    np.testing.assert_allclose(step.train_max, watch[2].train_max_[:n], rtol=1e-12)


def test_the_smoother_covers_the_rows_trained_on_and_reproduces_the_model(regression):
    X, y, X_test = regression
    est = _quiet_fit(TelescopingMLPRegressor(**SMALL, optimizer="sgd", momentum=0.0), X, y)
    tr = lens.smoother_trace(est, X, y, X_test[:10])
    assert tr.S.shape == (900, 900)
    np.testing.assert_array_equal(tr.rows, est.run_.fits[0].train_rows)
    np.testing.assert_allclose(tr.predict_train(), est.predict(X[tr.rows]), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(tr.predict_eval(), est.predict(X_test[:10]), rtol=1e-5, atol=1e-4)


def _wrappers(est, X, y):
    pipe = _quiet_fit(make_pipeline(StandardScaler(), est), X, y)
    search = GridSearchCV(make_pipeline(StandardScaler(), est), {"telescopingmlpregressor__tol":
                          [1e-4]} if isinstance(est, TelescopingMLPRegressor) else
                          {"telescopingmlpclassifier__tol": [1e-4]}, cv=2)  # fmt: skip
    search = _quiet_fit(search, X, y)
    return {"pipeline": pipe, "search": search, "best_estimator_": search.best_estimator_}


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_every_lens_function_takes_pipelines_and_searches(kind, regression, breast_cancer):
    if kind == "regressor":
        X, y, X_test = regression
        est = TelescopingMLPRegressor(**SMALL)
    else:
        X, y, X_test = breast_cancer
        est = TelescopingMLPClassifier(**SMALL, loss="squared_error")  # the smoother's loss
    wrapped = _wrappers(est, X, y)
    for name, model in wrapped.items():
        final = model.best_estimator_[-1] if name == "search" else model[-1]
        inputs = (model.best_estimator_ if name == "search" else model)[:-1].transform
        results = _every_measurement(model, X, y, X_test)
        again = _every_measurement(final, inputs(X), y, inputs(X_test))
        for key, value in results.items():
            np.testing.assert_allclose(value, again[key], rtol=1e-12, err_msg=f"{name} {key}")
        score = final.decision_function if kind == "classifier" else final.predict
        np.testing.assert_allclose(final.telescope(inputs(X_test)).sum(axis=1),
                                   score(inputs(X_test)), rtol=1e-5, atol=1e-6)  # fmt: skip


def _every_measurement(model, X, y, X_test) -> dict:
    """One number array per lens function (on the model as given)."""
    trace = lens.telescoping_trace(model, X, y, X_test[:10], every=5)
    ep = lens.effective_parameters(model, X, y, X_test[:10], every=5)
    tr = lens.smoother_trace(model, X, y, X_test[:10], every=5)
    stage = lens.kernel_extremity_ratio(model, X, y, X_test, max_train_samples=200)
    step = lens.kernel_extremity_ratio(model, X, y, X_test, method="step", max_train_samples=50)
    maxima = lens.max_row_norms(model, X[:100], y[:100], X_test)
    change = lens.gradient_change(model, X, y, X_test[:20])
    spawn = lens.spawn_children(model, X, y, spawn_step=3, n_children=1)
    theta = spawn.children[0]
    line = lens.interpolate(model, X_test, _labels_like(y, len(X_test)), theta, theta, n_points=3)
    loss, _ = lens.evaluate_parameters(model, X[:50], y[:50], theta)
    return {
        "trace": trace.exact, "p_train": ep.p_train, "p_test": ep.p_test, "S": tr.S,
        "stage": stage.ratio, "step": step.ratio, "maxima": maxima, "change": change.values,
        "spawn": theta.numpy(), "line": line.losses, "loss": loss,
    }  # fmt: skip


def _labels_like(y, n):
    return np.resize(y, n)


def test_a_default_classifier_runs_through_the_lens(breast_cancer):
    """Log-loss (the classifier's default): the smoother refuses by name, the rest runs."""
    X, y, X_test = breast_cancer
    clf = _quiet_fit(TelescopingMLPClassifier(**SMALL, early_stopping=True), X, y)
    assert clf.random_state is None and clf.run_.fits[0].validation == "split"
    trace = lens.telescoping_trace(clf, X, y, X_test)
    np.testing.assert_allclose(trace.exact[-1], clf.decision_function(X_test), rtol=1e-5, atol=1e-6)
    assert lens.kernel_extremity_ratio(clf, X, y, X_test, method="step").ratio > 0
    assert lens.gradient_change(clf, X, y, X_test).values.shape[0] == clf.n_stages_
    kids = lens.spawn_children(clf, X, y, spawn_step=2)
    assert kids.n_steps == clf.best_step_
    with pytest.raises(ValueError, match="squared-error loss only"):
        lens.effective_parameters(clf, X, y, X_test)


# --------------------------------------------------------------------------- refusals
def _replaying(model, X, y, X_test):
    return {
        "telescoping_trace": lambda: lens.telescoping_trace(model, X, y, X_test[:5]),
        "effective_parameters": lambda: lens.effective_parameters(model, X, y, X_test[:5]),
        "smoother_trace": lambda: lens.smoother_trace(model, X, y),
        "kernel_extremity_ratio step": lambda: lens.kernel_extremity_ratio(
            model, X, y, X_test, method="step"),
        "spawn_children": lambda: lens.spawn_children(model, X, y, spawn_step=1),
    }  # fmt: skip


def _checking(model, X, y, X_test):
    return {
        "kernel_extremity_ratio": lambda: lens.kernel_extremity_ratio(model, X, y, X_test),
        "max_row_norms": lambda: lens.max_row_norms(model, X, y, X_test),
        "gradient_change": lambda: lens.gradient_change(model, X, y, X_test),
    }


def _all_functions(model, X, y, X_test):
    return {**_replaying(model, X, y, X_test), **_checking(model, X, y, X_test)}


@pytest.fixture(scope="module")
def scaled_pipeline(regression):
    X, y, _ = regression
    return _quiet_fit(make_pipeline(StandardScaler(), TelescopingMLPRegressor(**SMALL)), X, y)


@pytest.mark.parametrize("function", sorted(_all_functions(None, 0, 0, 0)))
def test_raw_x_for_a_step_fitted_on_scaled_x_is_refused(function, scaled_pipeline, regression):
    X, y, X_test = regression
    step = scaled_pipeline[-1]
    with pytest.raises(ValueError, match="fitted on other data.*pass the pipeline"):
        _all_functions(step, X, y, X_test)[function]()


@pytest.mark.parametrize("function", sorted(_all_functions(None, 0, 0, 0)))
def test_scaled_x_for_a_model_fitted_on_raw_x_is_refused(function, default_fit, regression):
    X, y, X_test = regression
    Xs = StandardScaler().fit_transform(X)
    with pytest.raises(ValueError, match="fitted on other data"):
        _all_functions(default_fit, Xs, y, X_test)[function]()


@pytest.mark.parametrize("function", sorted(_all_functions(None, 0, 0, 0)))
def test_another_y_is_refused(function, default_fit, regression):
    X, y, X_test = regression
    with pytest.raises(ValueError, match="fitted on other data.*y"):
        _all_functions(default_fit, X, y + 1.0, X_test)[function]()


@pytest.mark.parametrize("function", sorted(_all_functions(None, 0, 0, 0)))
def test_a_refitted_estimator_is_refused_the_old_data(function, regression):
    X, y, X_test = regression
    est = _quiet_fit(TelescopingMLPRegressor(**SMALL), X, y)
    _quiet_fit(est, X[:600], y[:600] * 2)  # refitted on other data since
    with pytest.raises(ValueError, match="fitted on other data"):
        _all_functions(est, X, y, X_test)[function]()


def test_a_changed_parameter_after_fit_does_not_change_the_measurement(default_fit, regression):
    """The replay uses the settings the model was fitted with, not today's get_params."""
    X, y, X_test = regression
    before = lens.telescoping_trace(default_fit, X, y, X_test[:5])
    default_fit.set_params(learning_rate=0.5)
    try:
        after = lens.telescoping_trace(default_fit, X, y, X_test[:5])
    finally:
        default_fit.set_params(learning_rate=1e-3)
    np.testing.assert_array_equal(before.exact, after.exact)


def test_a_replay_that_does_not_reproduce_the_model_is_refused(regression):
    X, y, X_test = regression
    est = _quiet_fit(TelescopingMLPRegressor(**SMALL, random_state=0), X, y)
    with torch.no_grad():  # the model is no longer what its fit produced
        est.run_.final_parameters += 1e-3
    with pytest.raises(ValueError, match="did not reproduce this model's parameters"):
        lens.telescoping_trace(est, X, y, X_test[:5])


# ------------------------------------------------------------------ warm starts, weights
def test_warm_start_continuations_and_sample_weights_replay(regression):
    X, y, X_test = regression
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    est = TelescopingMLPRegressor(**SMALL, warm_start=True)
    _quiet_fit(est, X, y, sample_weight=w)
    _quiet_fit(est.set_params(max_iter=4, learning_rate=3e-3), X, y, sample_weight=w)
    assert len(est.run_.fits) == 2
    trace = lens.telescoping_trace(est, X, y, X_test[:10], sample_weight=w)
    assert trace.steps[-1] == est.best_step_
    np.testing.assert_allclose(trace.exact[-1], est.predict(X_test[:10]), rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="rows of sample_weight differ"):
        lens.telescoping_trace(est, X, y, X_test[:10])
    ep = lens.effective_parameters(est, X, y, X_test[:10], sample_weight=w, every=10)
    assert ep.steps[-1] == est.best_step_


def test_given_validation_data_is_asked_for_and_checked(regression):
    X, y, X_test = regression
    est = _quiet_fit(TelescopingMLPRegressor(**SMALL), X[:800], y[:800],
                     X_val=X[800:], y_val=y[800:])  # fmt: skip
    with pytest.raises(ValueError, match="fit_params"):
        lens.telescoping_trace(est, X[:800], y[:800], X_test[:5])
    with pytest.raises(ValueError, match="not the validation data"):
        lens.telescoping_trace(est, X[:800], y[:800], X_test[:5],
                               fit_params={"X_val": X[800:], "y_val": y[800:] + 1})  # fmt: skip
    trace = lens.telescoping_trace(est, X[:800], y[:800], X_test[:5],
                                   fit_params={"X_val": X[800:], "y_val": y[800:]})  # fmt: skip
    np.testing.assert_allclose(trace.exact[-1], est.predict(X_test[:5]), rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ the calling convention
def test_the_old_call_forms_work_with_a_future_warning(default_fit, regression):
    X, y, X_test = regression
    theta = default_fit.stages_[-1].end_parameters
    new = {
        "ratio": lens.kernel_extremity_ratio(default_fit, X, y, X_test).ratio,
        "maxima": lens.max_row_norms(default_fit, X, y, X_test[:7]),
        "change": lens.gradient_change(default_fit, X, y, X_test[:7]).values,
        "line": lens.interpolate(default_fit, X_test, y[:200], theta, theta, n_points=3).losses,
        "loss": lens.evaluate_parameters(default_fit, X_test, y[:200], theta)[0],
    }
    old = {
        "ratio": lambda: lens.kernel_extremity_ratio(default_fit, X, X_test, y_train=y).ratio,
        "maxima": lambda: lens.max_row_norms(default_fit, X_test[:7], X),
        "change": lambda: lens.gradient_change(default_fit, X_test[:7]).values,
        "line": lambda: (
            lens.interpolate(default_fit, theta, theta, X_test, y[:200], n_points=3).losses
        ),  # fmt: skip
        "loss": lambda: lens.evaluate_parameters(default_fit, theta, X_test, y[:200])[0],
    }
    for key, call in old.items():
        with pytest.warns(FutureWarning, match="is deprecated"):
            np.testing.assert_allclose(call(), new[key], rtol=1e-12, err_msg=key)
    sgd = TelescopingMLPRegressor((4,), optimizer="sgd", max_iter=2, random_state=0)
    with pytest.warns(FutureWarning, match="X_train"):
        lens.effective_parameters(sgd, X_train=X[:50], y_train=y[:50])


# --------------------------------------------------------------------------- cost shown
def test_lens_work_shows_its_cost_when_asked_and_is_quiet_otherwise(default_fit, regression,
                                                                  capsys):  # fmt: skip
    X, y, X_test = regression
    lens.effective_parameters(default_fit, X, y, X_test[:7], progress=True)
    shown = capsys.readouterr().err
    steps = default_fit.best_step_
    params = default_fit.run_.final_parameters.numel()
    assert f"effective_parameters: {steps} steps x 1,007 rows x {params} parameters" in shown
    lens.telescoping_trace(default_fit, X, y, X_test[:7])  # not a terminal: no bar
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_the_lens_on_a_model_fitted_with_every_default(regression):
    """``TelescopingMLPRegressor().fit(X, y)`` itself, through every lens function whose cost
    suits a test (the smoother of this 71,860-parameter network on 900 rows is a 2 GiB,
    150 GFLOP-a-step replay: the cost table in the lens guide)."""
    assert TelescopingMLPRegressor().get_params()["preset"] == "tabular"
    X, y, X_test = regression
    est = _quiet_fit(TelescopingMLPRegressor(), X, y)
    trace = lens.telescoping_trace(est, X, y, X_test[:20], every=10)
    np.testing.assert_allclose(trace.exact[-1], est.predict(X_test[:20]), rtol=1e-5, atol=1e-3)
    step = lens.kernel_extremity_ratio(est, X, y, X_test[:50], method="step",
                                       max_train_samples=100)  # fmt: skip
    stage = lens.kernel_extremity_ratio(est, X, y, X_test[:50], max_train_samples=100)
    assert len(step.test_max) == est.best_step_ and len(stage.test_max) == est.n_stages_
    change = lens.gradient_change(est, X, y, X_test[:50])
    assert change.values.shape == (est.n_stages_, 6)  # embedding (2), feature scale, 3 layers
    assert change.layers[0].startswith("embedding") and change.layers[2].startswith("feature")
    assert lens.spawn_children(est, X, y, spawn_step=5, n_children=1).n_steps == est.best_step_
    with pytest.raises(ValueError, match="max_bytes"):
        lens.effective_parameters(est, X, y, X_test[:20])
    np.testing.assert_allclose(est.telescope(X_test).sum(axis=1), est.predict(X_test),
                               rtol=1e-5, atol=1e-3)  # fmt: skip
