"""Integrity of fitted estimators and the lens: concurrent use, input validation, refusals.

Each test here pins one red-team finding: it failed on the code before its fix.
"""

import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor, lens

N_THREADS = 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = X[:, 0] + np.sin(2 * X[:, 1])
    return X, y


def _fitted(kind: str, X, y):
    if kind == "regressor":
        est = TelescopingMLPRegressor((8, 8), max_iter=2, batch_size=32, max_stages=6)
        return est.set_params(random_state=0).fit(X, y)
    labels = np.digitize(y, [-0.5, 0.5])  # three classes
    est = TelescopingMLPClassifier((8,), activation="gelu", max_iter=2, batch_size=32)
    return est.set_params(max_stages=6, random_state=0).fit(X, labels)


def _evaluations(est, Z) -> dict:
    """Every read-only evaluation of a fitted estimator, as name -> callable(X)."""
    stage = est.stages_[1]
    calls = {
        "predict": est.predict,
        "telescope": est.telescope,
        "staged_predict": lambda X: np.stack(list(est.staged_predict(X))),
        "stage.predict": stage.predict,
        "stage.predict(linear=True)": lambda X: stage.predict(X, linear=True),
        "stage.kernel": lambda X: stage.kernel(X, Z),
        "stage.kernel(preconditioned=True)": lambda X: stage.kernel(X, Z, preconditioned=True),
    }
    if hasattr(est, "predict_proba"):
        calls["predict_proba"] = est.predict_proba
        calls["decision_function"] = est.decision_function
    return calls


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_one_fitted_estimator_evaluated_from_eight_threads(kind, data):
    """Found: 33 of 100 concurrent ``telescope`` calls came back wrong and pickling failed;
    later, ``torch.func.jvp`` (``stage.predict(linear=True)``, GELU slopes) raised "Trying
    to access a forward AD level with an invalid index" under threads."""
    X, y = data
    est = _fitted(kind, X, y)
    calls = _evaluations(est, X[:5])
    queries = [X[8 * i : 8 * i + 24] for i in range(N_THREADS)]
    expected = {(name, i): f(q) for name, f in calls.items() for i, q in enumerate(queries)}
    jobs = [(name, i) for _ in range(4) for name in calls for i in range(N_THREADS)]

    def run(job):
        name, i = job
        return job, calls[name](queries[i])

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(run, jobs))
    wrong = [job for job, got in results if not np.allclose(got, expected[job], rtol=1e-12)]
    assert not wrong, f"{len(wrong)} of {len(jobs)} concurrent results differ: {wrong[:5]}"
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.telescope(X[:10]), est.telescope(X[:10]))


# ------------------------------------------------------------- lens inputs are validated
@pytest.fixture(scope="module")
def sgd(data):
    """An SGD regressor the smoother can replay (squared loss, one output, no split)."""
    X, y = data
    est = TelescopingMLPRegressor((4,), optimizer="sgd", learning_rate=0.05, batch_size=40)
    return est.set_params(max_iter=2, early_stopping=False, random_state=0).fit(X, y)


def _bad_inputs(X):
    """Inputs a fitted 4-feature model must refuse, with what the message must say."""
    nan, inf = X[:5].copy(), X[:5].copy()
    nan[0, 1], inf[2, 0] = np.nan, np.inf
    return {
        "one column": (X[:5, :1], "has 1 features"),
        "NaN": (nan, "contains NaN"),
        "inf": (inf, "infinity"),
        "empty": (X[:0], "is empty"),
        "text": (np.array([["a", "b", "c", "d"]], dtype=object), "must be numeric"),
    }


TRACES = {
    "effective_parameters": lambda est, X, y, X_eval: lens.effective_parameters(est, X, y, X_eval),
    "smoother_trace": lambda est, X, y, X_eval: lens.smoother_trace(est, X, y, X_eval),
    "telescoping_trace": lambda est, X, y, X_eval: lens.telescoping_trace(est, X, y, X_eval),
}


@pytest.mark.parametrize("case", ["one column", "NaN", "inf", "empty", "text"])
@pytest.mark.parametrize("function", sorted(TRACES))
def test_replaying_lens_functions_refuse_bad_x_eval_by_name(function, case, sgd, data):
    """Found: a 1-column X_eval on a 3-feature model broadcast (p_test = 0.59) and a NaN
    X_eval returned NaN, in effective_parameters, smoother_trace and telescoping_trace."""
    X, y = data
    X_eval, message = _bad_inputs(X)[case]
    with pytest.raises(ValueError, match=message) as info:
        TRACES[function](sgd, X, y, X_eval)
    assert "X_eval" in str(info.value)


@pytest.mark.parametrize("function", ["effective_parameters", "smoother_trace"])
def test_smoother_functions_name_x_y_and_check_weights(function, sgd, data):
    X, y = data
    call = getattr(lens, function)
    nan = X.copy()
    nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        call(sgd, nan, y, X[:5])
    with pytest.raises(ValueError, match="X has 1 features"):
        call(sgd, X[:, :1], y, X[:5, :1])
    with pytest.raises(ValueError, match="y has 10 rows, but X has 120"):
        call(sgd, X, y[:10], X[:5])
    with pytest.raises(ValueError, match="Input y contains NaN"):
        call(sgd, X, np.r_[np.nan, y[1:]], X[:5])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        call(sgd, X, y, X[:5], sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="sample_weight has 3 values, but X has 120"):
        call(sgd, X, y, X[:5], sample_weight=np.ones(3))


def test_monitors_name_their_own_arguments(data):
    X, y = data
    est = TelescopingMLPRegressor((4,), max_iter=1, early_stopping=False, random_state=0)
    with pytest.raises(ValueError, match="X_eval has 2 features"):
        est.fit(X, y, monitors=[lens.TelescopingMonitor(X[:, :2])])
    with pytest.raises(ValueError, match="X_train has 2 features"):
        est.fit(X, y, monitors=[lens.SmootherMonitor(X[:, :2])])
    with pytest.raises(ValueError, match="Input X_eval contains infinity"):
        est.fit(X, y, monitors=[lens.SmootherMonitor(X, np.full((2, 4), np.inf))])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        est.fit(X, y, monitors=[lens.SmootherMonitor(X, sample_weight=-np.ones(len(X)))])
    with pytest.raises(ValueError, match="every must be a positive integer, got 1.5"):
        lens.TelescopingMonitor(X, every=1.5)


#: How predict words the same refusals (it names ``X``; the lens names its own argument).
PREDICT_WORDING = {"empty": "X is empty", "text": "X must be numeric features"}
EVAL_WORDING = {"empty": "X_eval is empty", "text": "X_eval must be numeric features"}


@pytest.mark.parametrize("case", ["one column", "NaN", "inf", "empty", "text"])
def test_fitted_model_lens_functions_refuse_bad_x_like_predict(case, sgd, data):
    X, y = data
    X_bad, message = _bad_inputs(X)[case]
    like_predict = PREDICT_WORDING.get(case, message)
    with pytest.raises(ValueError, match=like_predict):
        sgd.predict(X_bad)
    theta = sgd.stages_[-1].end_parameters
    with pytest.raises(ValueError, match=EVAL_WORDING.get(case, message)):
        lens.gradient_change(sgd, X, y, X_bad)
    with pytest.raises(ValueError, match=like_predict):
        lens.interpolate(sgd, X_bad, y[: len(X_bad)], theta, theta)
    with pytest.raises(ValueError, match=like_predict):
        lens.evaluate_parameters(sgd, X_bad, y[: len(X_bad)], theta)
    with pytest.raises(ValueError, match=message):
        lens.irregularity_score(X, X_bad)


def test_spawn_children_refuses_data_the_parent_was_not_fitted_on(sgd, data):
    """Found: spawn_children on 1-column X replayed a fresh 1-feature network and returned
    children of another architecture than the parent's."""
    X, y = data
    with pytest.raises(ValueError, match="X has 1 features, but TelescopingMLPRegressor"):
        lens.spawn_children(sgd, X[:, :1], y, spawn_step=1)
    with pytest.raises(ValueError, match="y has 5 rows, but X has 120"):
        lens.spawn_children(sgd, X, y[:5], spawn_step=1)
    with pytest.raises(ValueError, match="n_children must be a positive integer"):
        lens.spawn_children(sgd, X, y, spawn_step=1, n_children=1.5)


def test_spawn_children_does_not_warn_about_its_own_early_stop(sgd, data):
    """The replay stops at the spawn step by design; it used to warn that it did not
    reproduce the parent's final parameters."""
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = lens.spawn_children(sgd, X, y, spawn_step=1, n_children=1)
    assert result.children.shape == (1, sgd.run_.final_parameters.numel())


def test_weight_average_refuses_what_it_cannot_average():
    """Found: NaN vectors and NaN weights averaged to NaN; vectors of two sizes and an
    empty list raised torch's "stack expects ..." RuntimeError."""
    a, b = torch.zeros(3), torch.ones(3)
    with pytest.raises(ValueError, match="thetas contain NaN"):
        lens.weight_average([a, b * np.nan])
    with pytest.raises(
        ValueError, match=r"all of one network's size; got 2 vectors of sizes \[2, 3\]"
    ):
        lens.weight_average([a, b[:2]])
    with pytest.raises(ValueError, match="at least one flat parameter vector"):
        lens.weight_average([])
    with pytest.raises(ValueError, match="weights must be 2 finite non-negative"):
        lens.weight_average([a, b], weights=[np.nan, 1.0])
    assert lens.weight_average(torch.stack([a, b]), weights=[1, 3]).tolist() == [0.75] * 3


def test_irregular_test_sets_refuse_nan_scores_and_bad_shapes(data):
    """Found: NaN scores silently produced test sets (NaN sorts as most irregular)."""
    X, y = data
    with pytest.raises(ValueError, match="Input scores contains NaN"):
        lens.irregular_test_sets(X, y, np.full(len(X), np.nan))
    with pytest.raises(ValueError, match="scores must be 1-D"):
        lens.irregular_test_sets(X, y, np.ones((len(X), 2)))


def test_gradient_change_refuses_non_integer_lags_and_pairs(sgd, data):
    X, _ = data
    with pytest.raises(ValueError, match="lag must be an integer"):
        lens.gradient_change(sgd, X[:5], lag=1.5)
    with pytest.raises(ValueError, match="checkpoint_pairs must be"):
        lens.gradient_change(sgd, X[:5], checkpoint_pairs=[(0, "a")])
    pairs = np.array([[0, 1]])
    assert lens.gradient_change(sgd, X[:5], checkpoint_pairs=pairs).values.shape[0] == 1


# ---------------------------------------------------------- estimator red-team findings
def test_singleton_class_under_early_stopping_fits_without_stratifying():
    """Found: scikit-learn's "The least populated class in y has only 1 member" error."""
    X = np.random.default_rng(0).normal(size=(1200, 3))
    y = np.zeros(1200, dtype=int)
    y[0] = 1
    clf = TelescopingMLPClassifier((4,), max_iter=1, early_stopping=True, random_state=0)
    assert clf.fit(X, y).predict_proba(X[:2]).shape == (2, 2)


def test_negative_sample_weights_are_refused(data):
    """Found: all -1 weights fitted the unweighted model."""
    X, y = data
    with pytest.raises(ValueError, match="sample_weight must be non-negative; got 120 negative"):
        TelescopingMLPRegressor((4,), max_iter=1).fit(X, y, sample_weight=-np.ones(len(X)))


def test_validation_targets_of_another_shape_are_refused(data):
    """Found: a 3-column y_val for a 1-output regressor was accepted."""
    X, y = data
    with pytest.raises(ValueError, match="y_val has 3 targets, but TelescopingMLPRegressor"):
        TelescopingMLPRegressor((4,), max_iter=1).fit(X, y, X_val=X, y_val=np.ones((len(X), 3)))


@pytest.mark.parametrize("units", [1e300, 1e-300])
def test_data_in_extreme_units_fits_like_data_in_unit_scale(units, data):
    """Found: values around 1e300 gave "Training diverged ... lower learning_rate" (later
    "too large to standardise"); and a feature whose spread is tiny (1e-20, or 1e-300 whose
    square underflows) was taken for a constant, so the network saw zeros. Columns are
    standardised through their largest magnitude now, so units do not matter."""
    X, y = data
    est = TelescopingMLPRegressor((8,), max_iter=3, random_state=0)
    unit = est.fit(X, y).predict(X)
    np.testing.assert_allclose(est.fit(X * units, y).predict(X * units), unit, rtol=1e-4)
    scaled = est.fit(X, y * units).predict(X)
    np.testing.assert_allclose(scaled / units, unit, rtol=1e-4, atol=1e-9)
    parts = est.telescope(X[:5])
    np.testing.assert_allclose(parts.sum(axis=1), scaled[:5], rtol=1e-6)


def test_a_network_too_large_for_memory_is_refused_before_allocating(data):
    """hidden_layer_sizes=(10**9,) ran unbounded; the check runs on the parameter count."""
    X, y = data
    before = _peak_rss()
    with pytest.raises(ValueError, match=r"6,000,000,001 parameters and would need about"):
        TelescopingMLPRegressor((10**9,), max_iter=1, preset="paper").fit(X, y)
    assert _peak_rss() - before < 200 * 2**20  # one weight matrix alone is 16 GB


def _peak_rss() -> int:
    import resource  # POSIX; in bytes on Linux (kilobytes reported)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_inputs_whose_standardisation_overflows_are_refused(data):
    X, y = data
    est = TelescopingMLPRegressor((4,), max_iter=1, random_state=0).fit(X * 1e-150, y)
    with pytest.raises(ValueError, match="X has values too far from the training data"):
        est.predict(X[:3] * 1e160)  # 1e310 training standard deviations away


# ------------------------------------------------------- found by tests/test_fuzz.py
def test_far_away_inputs_are_refused_where_float64_overflows(sgd, data):
    """A row at 1e300 (finite, so predict's checks pass) made every gradient change NaN,
    its irregularity score inf and stage kernels +-inf."""
    X, y = data
    far = X[:4].copy()
    far[-1, 0] = 1e300
    with pytest.raises(ValueError, match="gradient change on X_eval overflows float64"):
        lens.gradient_change(sgd, X, y, far)
    with pytest.raises(ValueError, match="too far from X_train to score in float64"):
        lens.irregularity_score(X, np.vstack([X[:3], np.full(4, 1e308)]))
    assert np.isfinite(lens.irregularity_score(X, far)).all()  # 1e300 itself still scores
    with pytest.raises(ValueError, match="kernel overflowed on these inputs"):
        sgd.stages_[0].kernel(far)  # k(far, far) ~ 1e600
    with pytest.raises(ValueError, match=r"kernel row norms \(float32\) overflowed"):
        sgd.stages_[0].kernel_row_norms(X[:3] * 1e20, X[:5])


def test_missing_values_in_object_arrays_are_called_nan(sgd, data):
    """``DataFrame.to_numpy()`` of a nullable column gives pd.NA in an object array, which
    scikit-learn refuses with "float() argument must be ... not 'NAType'"."""
    X, y = data
    X_eval = X[:3].astype(object)
    X_eval[1, 2] = pd.NA
    with pytest.raises(ValueError, match=r"Input X_eval contains NaN \(None or pd.NA"):
        lens.telescoping_trace(sgd, X, y, X_eval)
