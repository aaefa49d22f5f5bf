"""A fit is a transaction, and warm_start continues this model or refuses (issue 19).

Every case here was found wrong by a hostile round and failed on the code before its fix.
"""

from __future__ import annotations

import pickle
import threading
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification, make_regression

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor, lens
from sktelescope._core.network import flatten_parameters

TINY = dict(hidden_layer_sizes=(8,), max_iter=4, batch_size=16, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_regression(n_samples=120, n_features=4, noise=5.0, random_state=0)
    return X, y


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args, **kwargs)


def _state(est) -> dict:
    """Every fitted attribute, comparable bit for bit (tensors and arrays as bytes)."""
    out = {}
    for name, value in vars(est).items():
        if name.endswith("_") and not name.startswith("__"):
            out[name] = _comparable(value)
    return out


def _comparable(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().tobytes()
    if isinstance(value, np.ndarray):
        return value.tobytes()
    if isinstance(value, torch.nn.Module):
        return flatten_parameters(value).numpy().tobytes()
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if hasattr(value, "checkpoints"):  # the run: its parameters and boundaries
        store = value.checkpoints
        return (store.steps, [f.numpy().tobytes() for f in store.flats], len(value.fits))
    if hasattr(value, "steps") and hasattr(value, "index"):  # a stage
        return (value.index, value.steps)
    return value


class _Raises(lens.Observer):
    """An observer that raises at optimizer step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step(self, step) -> None:
        if step.step >= self.at:
            raise RuntimeError("observer failed")


# ------------------------------------------------------------------ a fit is a transaction
@pytest.mark.parametrize("warm", [False, True])
def test_an_observer_that_raises_leaves_the_estimator_as_it_was(warm, data):
    """Found: a raising observer in a warm fit left telescope != predict by 0.10 and 47
    staged predictions for n_stages_ = 35."""
    X, y = data
    est = _fit(TelescopingMLPRegressor(**TINY, warm_start=warm), X, y)
    before, predicted = _state(est), est.predict(X)
    with pytest.raises(RuntimeError, match="observer failed"):
        est.fit(X, y, monitors=[_Raises((est.best_step_ if warm else 0) + 3)])
    assert _state(est) == before
    np.testing.assert_array_equal(est.predict(X), predicted)
    np.testing.assert_allclose(est.telescope(X).sum(axis=1), predicted, rtol=1e-5, atol=1e-4)
    assert len(list(est.staged_predict(X))) == est.n_stages_


def test_a_fresh_fit_that_fails_leaves_an_unfitted_estimator_unfitted(data):
    X, y = data
    est = TelescopingMLPRegressor(**TINY)
    with pytest.raises(RuntimeError):
        est.fit(X, y, monitors=[_Raises(2)])
    assert not hasattr(est, "run_") and not hasattr(est, "n_features_in_")


def test_a_failed_refit_keeps_the_classes_of_the_fitted_model():
    """Found: a refit that diverged left classes_ {1, 2} on a {0, 1} network."""
    X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    clf = _fit(TelescopingMLPClassifier(**TINY), X, y)
    before = clf.predict(X)
    with pytest.raises(RuntimeError):
        clf.fit(X[:, :3], y + 1, monitors=[_Raises(1)])
    assert list(clf.classes_) == [0, 1] and clf.n_features_in_ == 4
    np.testing.assert_array_equal(clf.predict(X), before)


def test_an_observer_edit_at_the_last_step_is_what_predict_uses(data):
    """Found: module_ and predict differed by 7e-4 after an edit at the last step."""
    X, y = data

    class Nudge(lens.Observer):
        def on_step(self, step):
            with torch.no_grad():
                for p in step.module.parameters():
                    p.add_(1e-3)

    est = _fit(TelescopingMLPRegressor(**TINY, early_stopping=False), X, y, monitors=[Nudge()])
    assert torch.equal(flatten_parameters(est.module_), est.run_.final_parameters)
    assert torch.equal(est.run_.checkpoints.flats[-1], est.run_.final_parameters)
    np.testing.assert_allclose(est.telescope(X).sum(axis=1), est.predict(X), rtol=1e-5)


def test_predictions_during_a_warm_fit_are_the_old_model_whole(data):
    """Found: predictions read from another thread during a warm fit were torn."""
    X, y = data
    est = _fit(TelescopingMLPRegressor(**TINY, warm_start=True, early_stopping=False), X, y)
    before = est.predict(X)
    seen = []

    def read():
        seen.append(
            (est.predict(X), est.telescope(X).sum(axis=1), len(list(est.staged_predict(X))))
        )

    class Peek(lens.Observer):
        def on_step(self, step):
            reader = threading.Thread(target=read)
            reader.start()
            reader.join()

    n_stages = est.n_stages_
    _fit(est, X, y, monitors=[Peek()])
    assert seen
    for predicted, telescoped, staged in seen:
        np.testing.assert_array_equal(predicted, before)
        np.testing.assert_allclose(telescoped, before, rtol=1e-5, atol=1e-4)
        assert staged == n_stages
    assert not np.array_equal(est.predict(X), before)


# ------------------------------------------------------------------ warm_start continues
@pytest.mark.parametrize(
    "change, moved",
    [({"learning_rate": 1e-9}, lambda d: d < 1e-5), ({"learning_rate": 1e-1}, lambda d: d > 1e-2)],
)
def test_a_continuation_applies_changed_optimizer_settings(change, moved, data):
    """Found: set_params(learning_rate=1e-9) then a warm fit moved the parameters as far
    as the old rate (the restored optimizer state still held lr=0.01)."""
    X, y = data
    est = _fit(TelescopingMLPRegressor(**TINY, learning_rate=1e-2, warm_start=True,
                                       early_stopping=False), X, y)  # fmt: skip
    start = est.run_.final_parameters.clone()
    _fit(est.set_params(max_iter=2, **change), X, y)
    assert moved(float((est.run_.final_parameters - start).abs().max()))


@pytest.mark.parametrize("name, value", [("weight_decay", 0.5), ("beta_1", 0.0)])
def test_a_continuation_applies_weight_decay_and_betas(name, value, data):
    X, y = data
    base = TelescopingMLPRegressor(**TINY, warm_start=True, early_stopping=False)
    plain = _fit(base, X, y)
    changed = _fit(pickle.loads(pickle.dumps(plain)).set_params(max_iter=2, **{name: value}), X, y)
    same = _fit(pickle.loads(pickle.dumps(plain)).set_params(max_iter=2), X, y)
    assert not torch.equal(changed.run_.final_parameters, same.run_.final_parameters)


@pytest.mark.parametrize(
    "name, value",
    [("hidden_layer_sizes", (9,)), ("activation", "tanh"), ("optimizer", "sgd"),
     ("init_scale", 2.0)],
)  # fmt: skip
def test_a_continuation_refuses_changes_the_network_cannot_honour(name, value, data):
    """Found: a changed hidden_layer_sizes kept the old network silently; adam -> sgd raised
    KeyError: 'momentum'."""
    X, y = data
    est = _fit(TelescopingMLPRegressor(**TINY, warm_start=True), X, y)
    before = _state(est)
    with pytest.raises(ValueError, match=rf"{name} changed from .* Set warm_start=False"):
        est.set_params(**{name: value}).fit(X, y)
    assert _state(est) == before


def test_a_classifier_continuation_refuses_a_changed_loss():
    X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    clf = _fit(TelescopingMLPClassifier(**TINY, warm_start=True), X, y)
    with pytest.raises(ValueError, match="loss changed from 'auto' to 'squared_error'"):
        clf.set_params(loss="squared_error").fit(X, y)


def test_histories_agree_after_warm_fits(data):
    """Found: validation_score_ and loss_curve_ lengths disagreed after warm fits."""
    X, y = data
    est = _fit(TelescopingMLPRegressor(**TINY, warm_start=True, early_stopping=True), X, y)
    _fit(est.set_params(early_stopping=False, max_iter=3), X, y)
    _fit(est.set_params(early_stopping=True, max_iter=2), X, y)
    assert len(est.loss_curve_) == len(est.validation_score_) == est.n_iter_ == 9
    assert np.isnan(est.validation_score_[4:7]).all()
    assert (
        np.isfinite(est.validation_score_[:4]).all()
        and np.isfinite(est.validation_score_[7:]).all()
    )


@pytest.mark.parametrize("early_stopping, max_stages", [(True, 2), (True, 5), (False, 2)])
def test_a_lowered_max_stages_holds_after_a_continuation(early_stopping, max_stages, data):
    """Found: n_stages_ could exceed a lowered max_stages (6 stages for max_stages=2)."""
    X, y = data
    est = _fit(TelescopingMLPRegressor(**{**TINY, "max_iter": 6}, warm_start=True, max_stages=40,
                                       early_stopping=early_stopping), X, y)  # fmt: skip
    assert est.n_stages_ > 10
    _fit(est.set_params(max_stages=max_stages, max_iter=1, learning_rate=1e-5), X, y)
    assert est.n_stages_ <= max_stages
    np.testing.assert_allclose(est.telescope(X).sum(axis=1), est.predict(X), rtol=1e-5, atol=1e-4)


def test_stages_kept_from_before_a_continuation_keep_their_meaning(data):
    """A saved stages_[k] describes the model it came from, whatever a later warm fit does."""
    X, y = data
    est = _fit(TelescopingMLPRegressor(**TINY, warm_start=True, early_stopping=False), X, y)
    saved = est.stages_[3]
    steps, contribution = saved.steps, saved.predict(X)
    _fit(est.set_params(max_iter=40), X, y)
    assert saved.steps == steps
    np.testing.assert_array_equal(saved.predict(X), contribution)


# ------------------------------------------------------------------ arguments refused early
def test_one_monitor_need_not_be_in_a_list(data):
    """Found: monitors=TelescopingMonitor(X) raised 'object is not iterable'."""
    X, y = data
    monitor = lens.TelescopingMonitor(X[:5])
    _fit(TelescopingMLPRegressor(**TINY), X, y, monitors=monitor)
    assert monitor.exact_.shape[1] == 5
    with pytest.raises(TypeError, match="training observers"):
        TelescopingMLPRegressor(**TINY).fit(X, y, monitors=[monitor, "not an observer"])


def test_n_jobs_zero_is_refused_by_validation(data):
    """Found: n_jobs=0 passed validation, then torch raised."""
    X, y = data
    with pytest.raises(ValueError, match="'n_jobs' parameter"):
        TelescopingMLPRegressor(**TINY, n_jobs=0).fit(X, y)


def test_weights_all_in_the_held_out_split_are_named(data):
    """Found: 'Training diverged ... lower learning_rate'."""
    X, y = data
    est = TelescopingMLPRegressor(**TINY, early_stopping=True, validation_fraction=0.5)
    probe = _fit(
        TelescopingMLPRegressor(**TINY, early_stopping=True, validation_fraction=0.5), X, y
    )  # fmt: skip  (the same seed draws the same split)
    held_out = np.setdiff1d(np.arange(len(X)), probe.run_.fits[0].train_rows)
    w = np.zeros(len(X))
    w[held_out] = 1.0
    with pytest.raises(ValueError, match="fell into the early-stopping validation split"):
        est.fit(X, y, sample_weight=w)


def test_the_lens_refuses_sizes_before_working(data):
    """Found: interpolate(n_points=10**9), spawn_children(n_children=10**9) raised
    MemoryError; irregularity_score(n_components=1.5) raised scikit-learn's PCA error."""
    X, y = data
    est = _fit(TelescopingMLPRegressor(**TINY), X, y)
    theta = est.run_.final_parameters
    with pytest.raises(ValueError, match="n_points=1,000,000,000 would need"):
        lens.interpolate(est, X, y, theta, theta, n_points=10**9)
    with pytest.raises(ValueError, match="1,000,000,000 children"):
        lens.spawn_children(est, X, y, spawn_step=1, n_children=10**9)
    for bad in (1.5, 0, 5, True):
        with pytest.raises(ValueError, match="n_components must be an integer from 1 to 4"):
            lens.irregularity_score(X, X, n_components=bad)


def test_row_norms_refuse_columns_the_model_was_not_fitted_on(data):
    X, y = data
    est = _fit(TelescopingMLPRegressor(**TINY), X, y)
    with pytest.raises(ValueError, match="Z must be rows of the data"):
        lens.kernel_row_norms(est.stages_[0], X[:3], X + 1.0)
    with pytest.raises(ValueError, match="X must be rows of the data"):
        lens.max_row_norms(est, X + 1.0, X_eval=X[:3])
    with pytest.raises(ValueError, match="X_test has 0 rows"):
        lens.kernel_extremity_ratio(est, X, y, X[:0])


# ------------------------------------------------------------------ generated warm starts
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.integers(1, 3),
    second=st.integers(1, 3),
    lr=st.sampled_from([1e-4, 1e-3, 1e-2]),
    early_stopping=st.booleans(),
    max_stages=st.integers(2, 12),
    fail_at=st.one_of(st.none(), st.integers(1, 30)),
)
def test_generated_warm_starts_keep_every_identity(first, second, lr, early_stopping, max_stages,
                                                   fail_at, data):  # fmt: skip
    """Any sequence fit -> set_params -> warm fit (that may fail): the telescope sums to
    predict, staged_predict has n_stages_ items ending at predict, the histories agree, and a
    failed continuation changes nothing."""
    X, y = data
    params = dict(max_iter=first, batch_size=32, warm_start=True, early_stopping=early_stopping)
    est = _fit(TelescopingMLPRegressor((6,), **params, random_state=1), X, y)
    before = _state(est)
    est.set_params(max_iter=second, learning_rate=lr, max_stages=max_stages)
    monitors = [] if fail_at is None else [_Raises(est.best_step_ + fail_at)]
    try:
        _fit(est, X, y, monitors=monitors)
        assert est.n_stages_ <= max_stages
    except RuntimeError:
        assert _state(est) == before
    predicted = est.predict(X)
    np.testing.assert_allclose(est.telescope(X).sum(axis=1), predicted, rtol=1e-5, atol=1e-3)
    staged = list(est.staged_predict(X))
    assert len(staged) == est.n_stages_
    np.testing.assert_allclose(staged[-1], predicted, rtol=1e-6, atol=1e-6)
    assert len(est.loss_curve_) == est.n_iter_
    if hasattr(est, "validation_score_"):
        assert len(est.validation_score_) == est.n_iter_
