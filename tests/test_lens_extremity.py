"""Irregularity scores, irregular test sets and the kernel-extremity ratio."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from helpers import gaussian_inputs
from sklearn.datasets import make_regression
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.exceptions import NotFittedError

from sktelescope import TelescopingMLPRegressor
from sktelescope.lens import (
    irregular_test_sets,
    irregularity_score,
    kernel_extremity_ratio,
    kernel_row_norms,
    max_row_norms,
)


def test_centroid_score_is_norm_of_pca_scores_of_standardisedgaussian_inputs():
    X_train, X = gaussian_inputs(), gaussian_inputs(30, seed=1)
    mu, sd = X_train.mean(0), X_train.std(0)
    T = (X_train - mu) / sd
    _, _, Vt = np.linalg.svd(T - T.mean(0), full_matrices=False)
    expected = np.linalg.norm(((X - mu) / sd - T.mean(0)) @ Vt[:2].T, axis=1)
    np.testing.assert_allclose(irregularity_score(X_train, X, n_components=2), expected,
                               rtol=1e-10)  # fmt: skip
    # all components: plain distance to the centroid in standardised space
    full = np.linalg.norm((X - mu) / sd, axis=1)
    np.testing.assert_allclose(irregularity_score(X_train, X, n_components=4), full, rtol=1e-10)


def test_pc1_score_is_distance_to_training_median_projection():
    X_train, X = gaussian_inputs(), gaussian_inputs(30, seed=1)
    mu, sd = X_train.mean(0), X_train.std(0)
    T = (X_train - mu) / sd
    _, _, Vt = np.linalg.svd(T - T.mean(0), full_matrices=False)
    proj_train, proj = T @ Vt[0], ((X - mu) / sd) @ Vt[0]
    expected = np.abs(proj - np.median(proj_train))  # sign of PC1 cancels in |.|
    np.testing.assert_allclose(irregularity_score(X_train, X, method="pc1"), expected, rtol=1e-9)


def test_scores_do_not_depend_on_feature_units():
    X_train, X = gaussian_inputs(), gaussian_inputs(30, seed=1)
    scale, shift = np.array([1e3, 1e-2, 7.0, 1.0]), np.array([5.0, -1.0, 0.0, 2.0])
    np.testing.assert_allclose(
        irregularity_score(X_train * scale + shift, X * scale + shift),
        irregularity_score(X_train, X), rtol=1e-8,
    )  # fmt: skip


def test_score_rejects_bad_method_and_feature_mismatch():
    with pytest.raises(ValueError, match="method"):
        irregularity_score(gaussian_inputs(), gaussian_inputs(), method="mahalanobis")
    with pytest.raises(ValueError, match="features"):
        irregularity_score(gaussian_inputs(), gaussian_inputs(d=3))


def test_irregular_test_sets_have_requested_shares_and_are_nested():
    X = np.arange(1000.0).reshape(-1, 1)
    y = -X[:, 0]
    sets = irregular_test_sets(X, y, X[:, 0], [0.0, 0.3, 1.0], size=100, random_state=0)
    top = set(range(900, 1000))  # the 10% highest scores
    previous = set()
    for s, p in zip(sets, [0.0, 0.3, 1.0]):
        assert len(s.indices) == 100 and len(set(s.indices)) == 100
        assert s.is_irregular.sum() == round(100 * p)
        assert set(s.indices[s.is_irregular]) <= top
        assert not set(s.indices[~s.is_irregular]) & top
        np.testing.assert_array_equal(s.y, -s.X[:, 0])
        irregular = set(s.indices[s.is_irregular])
        assert previous <= irregular  # nested: larger p adds irregular points
        previous = irregular


def test_irregular_test_sets_refuse_sizes_the_pools_cannot_fill():
    X = np.arange(100.0).reshape(-1, 1)
    with pytest.raises(ValueError, match="pools hold 10 and 90"):
        irregular_test_sets(X, X[:, 0], X[:, 0], [0.0, 1.0], size=20)
    with pytest.raises(ValueError, match="proportions"):
        irregular_test_sets(X, X[:, 0], X[:, 0], [1.5], size=5)


# ------------------------------------------------------------- kernel extremity
def _linear_model(X, y):
    return TelescopingMLPRegressor(
        hidden_layer_sizes=(), optimizer="sgd", learning_rate=1e-2, batch_size=32,
        max_iter=4, n_iter_no_change=None, max_stages=4, early_stopping=False, random_state=0,
        preset="paper",
    ).fit(X, y)  # fmt: skip


def test_linear_network_ratio_matches_closed_form():
    X_train, X_test = gaussian_inputs(), gaussian_inputs(40, seed=2) * 1.5
    y = X_train @ np.array([1.0, -2.0, 0.5, 0.0])
    est = _linear_model(X_train, y)
    mu, sd = X_train.mean(0), X_train.std(0)
    T, S = (X_train - mu) / sd, (X_test - mu) / sd
    # K(x, z) = x·z + 1 in standardised inputs, the same at every stage
    test_norms = np.linalg.norm(S @ T.T + 1.0, axis=1)
    train_norms = np.linalg.norm(T @ T.T + 1.0, axis=1)
    np.testing.assert_allclose(kernel_row_norms(est.stages_[2], X_test, X_train), test_norms,
                               rtol=1e-5)  # fmt: skip
    res = kernel_extremity_ratio(est, X_train, y, X_test)
    assert res.test_max.shape == res.train_max.shape == (est.n_stages_,)
    np.testing.assert_allclose(res.ratio, test_norms.max() / train_norms.max(), rtol=1e-5)


def test_network_ratio_with_preconditioner_and_chunks_matches_full_kernel():
    X, y = make_regression(n_samples=90, n_features=3, random_state=0)
    est = TelescopingMLPRegressor(hidden_layer_sizes=(12,), max_iter=3, batch_size=30,
                                  n_iter_no_change=None, early_stopping=False,
                                  random_state=0).fit(X, y)  # fmt: skip
    stage = est.stages_[2]
    for pre in (False, True):
        full = stage.kernel(X[:7], X, preconditioned=pre)
        got = kernel_row_norms(stage, X[:7], X, preconditioned=pre, chunk_size=3)
        np.testing.assert_allclose(got, np.linalg.norm(full, axis=1), rtol=1e-4)


def test_network_row_norms_refuse_what_would_not_fit():
    X_train = gaussian_inputs()
    est = _linear_model(X_train, X_train[:, 0])
    with pytest.raises(ValueError, match=r"MiB of working memory"):
        kernel_row_norms(est.stages_[0], X_train, X_train, max_memory_bytes=1000)
    with pytest.raises(ValueError, match="no preconditioner"):
        kernel_row_norms(est.stages_[0], X_train, X_train, preconditioned=True)
    with pytest.raises(ValueError, match="need Z"):
        kernel_row_norms(est.stages_[0], X_train)


class _FakeStage:
    """A stage of the shared protocol whose row norms are a power of one column."""

    steps = range(1, 2)

    def __init__(self, column, power):
        self.column, self.power = column, power

    def predict(self, X, linear=False):
        return np.zeros(len(X))

    def kernel(self, X, Z=None):
        return np.zeros((len(X), len(X if Z is None else Z)))

    def kernel_row_norms(self, X, Z=None):
        return np.abs(X[:, self.column]) ** self.power


def _fake_stage(column, power):
    return _FakeStage(column, power)


def test_tree_like_stages_are_delegated_and_averaged_over_stages():
    model = SimpleNamespace(stages_=[_fake_stage(0, 1), _fake_stage(1, 2)])
    X_train = np.array([[1.0, 2.0], [-3.0, 0.5]])
    X_test = np.array([[6.0, 1.0], [0.0, -4.0]])
    res = kernel_extremity_ratio(model, X_train, X_test=X_test)
    np.testing.assert_array_equal(res.test_max, [6.0, 16.0])
    np.testing.assert_array_equal(res.train_max, [3.0, 4.0])
    assert res.ratio == pytest.approx((6.0 + 16.0) / (3.0 + 4.0))


def test_tree_telescope_row_norms_equal_norms_of_its_kernel_rows():
    trees = pytest.importorskip("sktelescope.trees")
    X, y = make_regression(n_samples=150, n_features=3, noise=5.0, random_state=0)
    gbr = GradientBoostingRegressor(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
    tel = trees.TreeTelescope(gbr, X, y)
    X_test = gaussian_inputs(20, d=3, seed=4)
    for stage in tel.stages_:
        rows = stage.kernel(X_test, X)
        np.testing.assert_allclose(kernel_row_norms(stage, X_test), np.linalg.norm(rows, axis=1))
    res = kernel_extremity_ratio(tel, X, y, X_test)
    assert np.all(res.test_max <= 1.0) and np.all(res.train_max >= 1 / np.sqrt(len(X)))


def test_subsampled_training_set_and_errors():
    X_train = gaussian_inputs()
    est = _linear_model(X_train, X_train[:, 0])
    full = max_row_norms(est, X_train, X_train[:, 0], X_train[:5])
    sub = kernel_extremity_ratio(est, X_train, X_test=X_train[:5], max_train_samples=30,
                                 random_state=0)  # fmt: skip
    assert sub.train_max.shape == full.shape
    assert np.all(sub.test_max < full)  # fewer kernel columns, smaller rows
    with pytest.raises(NotFittedError):
        kernel_extremity_ratio(TelescopingMLPRegressor(), X_train, X_test=X_train)
    with pytest.raises(TypeError, match="stages_"):
        kernel_extremity_ratio(object(), X_train, X_test=X_train)


def _full_batch_run(X, y, schedule):
    return TelescopingMLPRegressor(
        (16,), optimizer="sgd", learning_rate=0.05, momentum=0.0, batch_size=None,
        lr_schedule=schedule, max_iter=8, stage_every=1, max_stages=10, early_stopping=False,
        n_iter_no_change=None, random_state=0, preset="paper"
    ).fit(X, y)  # fmt: skip


def test_per_step_ratio_equals_per_stage_ratio_for_one_step_full_batch_stages():
    X, y = make_regression(n_samples=80, n_features=3, noise=5.0, random_state=1)
    X_train, y_train, X_test = X[:60], y[:60], X[60:] * 2.0
    est = _full_batch_run(X_train, y_train, "constant")
    stage = kernel_extremity_ratio(est, X_train, y_train, X_test)
    step = kernel_extremity_ratio(est, X_train, y_train, X_test, method="step")
    assert step.method == "step" and len(step.test_max) == est.n_steps_ == est.n_stages_
    assert step.ratio == pytest.approx(stage.ratio, rel=1e-5)


def test_per_step_ratio_weights_each_step_by_its_learning_rate():
    X, y = make_regression(n_samples=80, n_features=3, noise=5.0, random_state=1)
    X_train, y_train, X_test = X[:60], y[:60], X[60:] * 2.0
    est = _full_batch_run(X_train, y_train, "linear")
    stage = kernel_extremity_ratio(est, X_train, y_train, X_test)
    step = kernel_extremity_ratio(est, X_train, y_train, X_test, method="step")
    lr = 0.05 * (1 - np.arange(1, 9) / 8)  # linear decay over the 8 planned steps
    weighted = (lr * stage.test_max).sum() / (lr * stage.train_max).sum()
    assert step.ratio == pytest.approx(weighted, rel=1e-5)
    # and not the unweighted per-stage mean, which the schedule moves away from
    assert abs(step.ratio - weighted) < 0.01 * abs(step.ratio - stage.ratio)


def test_kernel_extremity_refuses_inputs_that_are_not_training_rows():
    X, y = make_regression(n_samples=80, n_features=3, noise=5.0, random_state=1)
    est = _full_batch_run(X[:60], y[:60], "constant")
    with pytest.raises(ValueError, match="fitted on other data: X must be rows of the data"):
        kernel_extremity_ratio(est, X[20:], X_test=X[60:])
    res = kernel_extremity_ratio(est, X[:60][::-1], X_test=X[60:], max_train_samples=30)
    assert res.n_train_used == 30


def test_kernel_extremity_refuses_rows_a_tree_ensemble_was_not_fitted_on():
    X, y = make_regression(n_samples=80, n_features=3, noise=5.0, random_state=1)
    trees = pytest.importorskip("sktelescope.trees")
    gbt = GradientBoostingRegressor(n_estimators=5, max_depth=2, random_state=0)
    tel = trees.TreeTelescope(gbt.fit(X[:60], y[:60]), X[:60], y[:60])
    with pytest.raises(ValueError, match="X must be rows of the data the model was fitted"):
        kernel_extremity_ratio(tel, X[20:], X_test=X[60:])  # 20 of these 60 rows are foreign
    exact = kernel_extremity_ratio(tel, X[:60], X_test=X[60:]).ratio
    assert kernel_extremity_ratio(tel, X[:60][::-1], X_test=X[60:]).ratio == pytest.approx(exact)
