"""Integrity of fitted estimators and the lens: concurrent use, input validation, refusals.

Each test here pins one red-team finding: it failed on the code before its fix.
"""

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor

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
