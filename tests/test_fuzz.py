"""Property tests over what users pass the estimators and the lens.

Whatever the input (shapes, dtypes, NaN/inf, extreme or tiny magnitudes, pandas nullable
and categorical columns, text, one row, constant columns), the outcome is one of two:

- a ``ValueError`` or ``TypeError`` raised by this package or scikit-learn's checks (not
  from inside torch), whose message names no private attribute; or
- a finite result, and for a fitted model a telescope whose rows sum to the prediction.

Networks are tiny (one hidden layer of 4 units, 2 epochs) and every property draws a
fixed, derandomised set of examples, so the file runs in about a minute.
"""

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor, lens

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")
TINY = dict(hidden_layer_sizes=(4,), max_iter=2, batch_size=8, random_state=0)
TORCH_DIR = str(Path(torch.__file__).parent)
PRIVATE_NAME = re.compile(r"(?<![\w.])_[a-z]\w*|\._[a-z]")

# ------------------------------------------------------------------ strategies
#: Finite values of every magnitude float64 has (extremes, tiny, subnormal, zero).
MAGNITUDES = [0.0, 1.0, -1.0, 0.5, 3.0, 1e-300, -1e-300, 5e-324, 1e300, -1e300, 1.7e308]
values = st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from(MAGNITUDES))
#: At most one defect per table, so that most examples are valid and reach the model.
DEFECTS = [None, None, None, np.nan, np.inf, -np.inf]

#: Column kinds, numeric ones more often; "text" and "object" hold strings and None.
KINDS = ["float64"] * 4 + ["float32", "int", "bool", "Int64", "Float64", "category",
                           "constant", "scaled", "text", "object"]  # fmt: skip


def _column(kind: str, arr: np.ndarray, rng: np.random.Generator) -> pd.Series:
    """One column of ``kind`` built from float values ``arr`` (possibly NaN/inf)."""
    whole = np.round(np.nan_to_num(arr, nan=0, posinf=7, neginf=-7).clip(-1e9, 1e9))
    missing = np.isnan(arr)
    if kind == "float32":
        with np.errstate(over="ignore"):
            return pd.Series(arr.astype(np.float32))
    if kind == "int":
        return pd.Series(whole.astype(np.int64))
    if kind == "bool":
        return pd.Series(arr > 0)
    if kind in ("Int64", "Float64"):  # nullable: NaN becomes <NA>
        column = pd.array(whole.astype(np.int64) if kind == "Int64" else arr, dtype=kind)
        column[missing] = pd.NA
        return pd.Series(column)
    if kind == "category":
        return pd.Series(pd.Categorical(whole % 3))
    if kind == "constant":
        return pd.Series(np.where(missing, arr, arr[0] if np.isfinite(arr[0]) else 1.0))
    if kind == "scaled":  # one feature in huge or tiny units
        with np.errstate(over="ignore"):
            return pd.Series(arr * rng.choice([1e-200, 1e200]))
    if kind == "text":
        return pd.Series(rng.choice(["a", "b", "c"], size=len(arr)), dtype=object)
    if kind == "object":  # numbers and None in an object column
        return pd.Series([None if m else v for m, v in zip(missing, arr)], dtype=object)
    return pd.Series(arr)


@st.composite
def tables(draw, n_rows=st.integers(1, 12), n_cols=st.integers(1, 4)):
    """A DataFrame or an ndarray of mixed column kinds, awkward values and at most one
    NaN or infinite cell."""
    n, d = draw(n_rows), draw(n_cols)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    cells = np.array(draw(st.lists(values, min_size=n * d, max_size=n * d))).reshape(n, d)
    defect = draw(st.sampled_from(DEFECTS))
    if defect is not None:
        cells[draw(st.integers(0, n - 1)), draw(st.integers(0, d - 1))] = defect
    frame = pd.DataFrame(
        {f"x{j}": _column(draw(st.sampled_from(KINDS)), cells[:, j], rng) for j in range(d)}
    )
    return frame if draw(st.booleans()) else frame.to_numpy()


@st.composite
def targets(draw, n: int, classifier: bool):
    if classifier:
        labels = draw(st.sampled_from([[0, 1], [0, 1, 2], ["a", "b"], [1], [True, False]]))
        return np.asarray(draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)))
    y = np.array(draw(st.lists(values, min_size=n, max_size=n)))
    y[0] = draw(st.sampled_from([y[0], y[0], y[0], np.nan, np.inf]))
    return np.c_[y, -y] if draw(st.booleans()) else y


weights = st.one_of(
    st.none(),
    st.none(),
    st.lists(st.one_of(st.floats(0, 10), st.sampled_from([0.0, -1.0, 1e308, 5e-324, np.nan])),
             min_size=1, max_size=12),
)  # fmt: skip


# ------------------------------------------------------------------ the properties
def outcome(call):
    """The result of ``call()``, or ``None`` after checking that it failed clearly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = call()
        except (ValueError, TypeError) as exc:
            _assert_clear(exc)
            event(f"refused: {str(exc)[:40]}")
            return None
    event("accepted")
    return result


def _assert_clear(exc: Exception) -> None:
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} without a message"
    assert not PRIVATE_NAME.search(message), f"message names a private attribute: {message}"
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename
    assert not where.startswith(TORCH_DIR), f"raised inside torch ({where}): {message}"


def _assert_telescope_sums(est, X) -> None:
    output = est.decision_function(X) if hasattr(est, "classes_") else est.predict(X)
    parts = est.telescope(X)
    assert np.all(np.isfinite(output)) and np.all(np.isfinite(parts))
    scale = np.abs(parts).sum(axis=1).max()
    np.testing.assert_allclose(parts.sum(axis=1), output, rtol=1e-6, atol=1e-9 * scale)


@FUZZ
@given(data=st.data(), classifier=st.booleans())
def test_fit_either_refuses_clearly_or_telescopes_to_predict(data, classifier):
    X = data.draw(tables())
    y = data.draw(targets(len(X), classifier))
    sample_weight = data.draw(weights)
    Estimator = TelescopingMLPClassifier if classifier else TelescopingMLPRegressor
    est = outcome(lambda: Estimator(**TINY).fit(X, y, sample_weight=sample_weight))
    if est is not None:
        _assert_telescope_sums(est, X)


def _draw_inputs(data, columns, **table_options):
    """A fuzzed table for a model fitted on ``columns``: DataFrames of that width mostly get
    the fitted names, so that their values are what is tested (else the names mismatch)."""
    X = data.draw(tables(**table_options))
    if isinstance(X, pd.DataFrame) and X.shape[1] == len(columns) and data.draw(st.booleans()):
        X.columns = columns
    return X


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    y = X["a"].to_numpy() + 0.1 * rng.normal(size=40)
    regressor = TelescopingMLPRegressor(**TINY, optimizer="sgd", early_stopping=False)
    classifier = TelescopingMLPClassifier(**TINY).fit(X, y > 0)
    return X, y, regressor.fit(X, y), classifier


@FUZZ
@given(data=st.data())
def test_prediction_inputs_are_refused_clearly_or_telescope(data, fitted):
    X_fit, _, regressor, classifier = fitted
    X = _draw_inputs(data, X_fit.columns, n_cols=st.sampled_from([1, 3, 3, 3, 5]))
    for est in (regressor, classifier):
        if outcome(lambda est=est: est.predict(X)) is not None:
            _assert_telescope_sums(est, X)
            stage = est.stages_[0]
            for call in (lambda: stage.predict(X, linear=True), lambda: stage.kernel(X, X_fit[:5])):
                result = outcome(call)  # far-away inputs may overflow: a clear refusal
                assert result is None or np.all(np.isfinite(result))


@FUZZ
@given(data=st.data())
def test_replaying_lens_functions_refuse_clearly_or_return_finite_values(data, fitted):
    X_fit, y, regressor, _ = fitted
    X_eval = _draw_inputs(data, X_fit.columns, n_cols=st.sampled_from([1, 3, 3]))
    trace = outcome(lambda: lens.telescoping_trace(regressor, X_fit, y, X_eval, every=4))
    if trace is not None:
        assert all(np.all(np.isfinite(v)) for v in (trace.exact, *trace.models().values()))
    result = outcome(lambda: lens.effective_parameters(regressor, X_fit, y, X_eval, every=4))
    if result is not None:
        assert np.all(np.isfinite(result.p_test)) and np.all(np.isfinite(result.p_train))


@FUZZ
@given(data=st.data())
def test_replays_refuse_bad_training_data_clearly_or_reproduce_the_network(data, fitted):
    X_fit, _, regressor, _ = fitted
    X = _draw_inputs(
        data, X_fit.columns, n_rows=st.integers(2, 12), n_cols=st.sampled_from([1, 3, 3, 3])
    )
    y = data.draw(targets(len(X), classifier=False))
    sample_weight = data.draw(weights)
    trace = outcome(lambda: lens.smoother_trace(regressor, X, y, sample_weight=sample_weight))
    if trace is not None:
        assert np.all(np.isfinite(trace.S)) and np.all(np.isfinite(trace.predict_train()))


@FUZZ
@given(data=st.data())
def test_fitted_model_lens_functions_refuse_clearly_or_return_finite_values(data, fitted):
    X_fit, y, regressor, classifier = fitted
    X = _draw_inputs(data, X_fit.columns, n_cols=st.sampled_from([1, 3, 3]))
    change = outcome(lambda: lens.gradient_change(regressor, X))
    if change is not None:
        assert np.all(np.isfinite(change.values))
    theta = classifier.stages_[-1].end_parameters
    labels = data.draw(st.lists(st.sampled_from([True, False]), min_size=len(X), max_size=len(X)))
    result = outcome(lambda: lens.interpolate(classifier, theta, theta * 0.5, X, labels, 3))
    if result is not None:
        assert np.all(np.isfinite(result.losses))
    scores = outcome(lambda: lens.irregularity_score(X_fit, X, n_components=1))
    if scores is not None:
        assert np.all(np.isfinite(scores)) and np.all(scores >= 0)


@FUZZ
@given(X_train=tables(n_rows=st.integers(1, 8)), X=tables(n_rows=st.integers(1, 8)))
def test_irregularity_score_refuses_clearly_or_scores_finitely(X_train, X):
    scores = outcome(lambda: lens.irregularity_score(X_train, X, n_components=1))
    if scores is not None:
        assert np.all(np.isfinite(scores)) and np.all(scores >= 0)


@st.composite
def parameter_vectors(draw):
    """K flat vectors, usually of one length, sometimes with NaN/inf or a stray length."""
    n_params = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.sampled_from([n_params] * 4 + [n_params + 1]), max_size=3))
    thetas = [np.array(draw(st.lists(values, min_size=k, max_size=k))) for k in sizes]
    if thetas and draw(st.booleans()):
        thetas[0][0] = draw(st.sampled_from(DEFECTS))
    return thetas if draw(st.booleans()) else [torch.as_tensor(t) for t in thetas]


@FUZZ
@given(
    thetas=parameter_vectors(),
    weight_values=st.one_of(st.none(), st.lists(values, min_size=0, max_size=4)),
    scores=st.lists(st.one_of(values, st.sampled_from(DEFECTS[3:])), min_size=1, max_size=12),
)
def test_averages_and_test_sets_refuse_clearly_or_are_finite(thetas, weight_values, scores):
    average = outcome(lambda: lens.weight_average(thetas, weights=weight_values))
    if average is not None:
        assert torch.isfinite(average).all()
    X = np.arange(len(scores) * 2.0).reshape(-1, 2)
    sets = outcome(lambda: lens.irregular_test_sets(X, X[:, 0], scores, size=1, random_state=0))
    if sets is not None:
        assert all(np.all(np.isfinite(s.X)) for s in sets)
