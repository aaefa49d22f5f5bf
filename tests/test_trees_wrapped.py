"""TreeTelescope takes the booster as the user has it: in a Pipeline, or a fitted search."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktelescope import lens
from sktelescope.trees import TreeTelescope


@pytest.fixture(scope="module")
def data():
    X, y = load_diabetes(return_X_y=True)
    X = X * np.arange(1, 11) * 100.0  # raw units the scaler changes
    return X[:300], y[:300], X[300:]


def _gbt():
    return GradientBoostingRegressor(n_estimators=15, max_depth=2, random_state=0)


def test_a_pipeline_is_measured_on_raw_data_as_its_predict_sees_it(data):
    X, y, X_test = data
    pipe = make_pipeline(StandardScaler(), _gbt()).fit(X, y)
    scaler = pipe[0]
    bare = _gbt().fit(scaler.transform(X), y)
    wrapped, plain = TreeTelescope(pipe, X, y), TreeTelescope(bare, scaler.transform(X), y)
    np.testing.assert_allclose(wrapped.telescope(X_test).sum(axis=1), pipe.predict(X_test))
    np.testing.assert_array_equal(
        wrapped.telescope(X_test), plain.telescope(scaler.transform(X_test))
    )
    got, expected = (
        wrapped.effective_parameters(X_test),
        plain.effective_parameters(scaler.transform(X_test)),
    )
    np.testing.assert_array_equal(got.p_test, expected.p_test)
    stage = wrapped.stages_[4]
    np.testing.assert_allclose(
        stage.weights(X_test) @ stage.pseudo_residuals, stage.predict(X_test)
    )
    assert wrapped.reconstruction_errors(X_test)["weights"].max() < 1e-9
    ratio = lens.kernel_extremity_ratio(wrapped, X, y, X_test).ratio
    assert ratio == lens.kernel_extremity_ratio(plain, scaler.transform(X), y,
                                                scaler.transform(X_test)).ratio  # fmt: skip
    with pytest.raises(ValueError, match="must be rows of the data the model was fitted on"):
        wrapped.check_training_inputs(scaler.transform(X))  # scaled data for a raw pipeline


def test_a_fitted_search_is_its_best_estimator(data):
    X, y, X_test = data
    grid = {"gradientboostingregressor__max_depth": [1, 2]}
    search = GridSearchCV(make_pipeline(StandardScaler(), _gbt()), grid, cv=2).fit(X, y)
    tel = TreeTelescope(search, X, y)
    np.testing.assert_allclose(tel.telescope(X_test).sum(axis=1), search.predict(X_test))
    with pytest.raises(ValueError, match="refit=False"):
        TreeTelescope(GridSearchCV(_gbt(), {"max_depth": [2]}, cv=2, refit=False).fit(X, y), X, y)
