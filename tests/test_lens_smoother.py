"""Smoother and effective parameters against closed forms and the network itself.

The smoother is kept in float64 while the estimator trains in float32, so agreements with
the network are bounded by the float32 round-off of the run: each of the ~20 steps rounds
θ (|θ| ≲ 1) to a relative 6e-8 and the network's float32 gradient differs from the
float64 channel gradient by a relative ~1e-7; the observed gaps are 1e-7 to 4e-7. We
allow 2e-6, five times the largest, while the second-order remainders that the checks
would expose if the bookkeeping were wrong are 3e-2 to 8e-2 here.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import gaussian_inputs, network_inputs, smooth_regression

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._core.network import flatten_parameters
from sktelescope.lens import (
    SmootherMonitor,
    TelescopingMonitor,
    effective_parameters,
    smoother_trace,
)

ROUND_OFF = 2e-6


def _data(n=40, d=3, seed=0):
    X, y = smooth_regression(n, d, seed)
    return X, y, gaussian_inputs(12, d, seed + 100)


def test_linear_full_batch_sgd_is_the_matrix_polynomial():
    X, y, X_eval = _data(n=30)
    gamma, T = 0.3, 25
    est = TelescopingMLPRegressor((), optimizer="sgd", momentum=0.0, learning_rate=gamma,
                                  batch_size=None, max_iter=T, n_iter_no_change=None,
                                  early_stopping=False, random_state=0, preset="paper")  # fmt: skip
    trace = smoother_trace(est, X, y, X_eval)
    Xa = np.column_stack([network_inputs(X), np.ones(len(X))])
    K = Xa @ Xa.T / len(X)
    decay = np.linalg.matrix_power(np.eye(len(X)) - gamma * K, T)
    # float64 on both sides with the same float32 inputs: agreement to ~1e-13
    np.testing.assert_allclose(trace.S, np.eye(len(X)) - decay, atol=1e-10)
    assert trace.p_train[-1] == pytest.approx(np.sum((np.eye(len(X)) - decay) ** 2))
    assert trace.steps.tolist() == list(range(T + 1)) and trace.p_train[0] == 0
    # linear in θ: the first-order smoother is the network (float32 run, see module doc)
    est.fit(X, y)
    np.testing.assert_allclose(trace.predict_train(first_order=True), est.predict(X),
                               atol=ROUND_OFF * np.std(y))  # fmt: skip
    np.testing.assert_allclose(trace.predict_eval(first_order=True), est.predict(X_eval),
                               atol=ROUND_OFF * np.std(y))  # fmt: skip


OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", momentum=0.0, learning_rate=0.1),
    "sgd-momentum-wd": dict(optimizer="sgd", momentum=0.9, weight_decay=0.01, learning_rate=0.05),
    "sgd-nesterov": dict(optimizer="sgd", momentum=0.9, nesterov=True, learning_rate=0.05),
    "adam-wd": dict(optimizer="adam", weight_decay=0.01, learning_rate=0.01),
    "adamw": dict(optimizer="adamw", weight_decay=0.1, learning_rate=0.01),
    # issue 18's options: two parameter groups (biases not decayed), schedules, β₂, scaling
    "sgd-momentum-decay-weights-only": dict(optimizer="sgd", momentum=0.9, weight_decay=0.05,
                                            weight_decay_biases=False, learning_rate=0.05),
    "sgd-decay-weights-only": dict(optimizer="sgd", momentum=0.0, weight_decay=0.05,
                                   weight_decay_biases=False, learning_rate=0.1),
    "adam-decay-weights-only": dict(optimizer="adam", weight_decay=0.05,
                                    weight_decay_biases=False, learning_rate=0.01),
    "adamw-decay-weights-only-coslog4": dict(optimizer="adamw", weight_decay=0.1,
                                             weight_decay_biases=False, learning_rate=0.01,
                                             lr_schedule="coslog4", beta_2=0.95),
    "adam-flat-cosine-robust": dict(optimizer="adam", learning_rate=0.01,
                                    lr_schedule="flat_cosine", input_scaling="robust"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_smoother_reproduces_parameters_network_and_telescoping_model(name):
    X, y, X_eval = _data()
    params = OPTIMIZERS[name]
    est = TelescopingMLPRegressor((8, 8), batch_size=10, max_iter=5, n_iter_no_change=None,
                                  early_stopping=False, random_state=1, **params)  # fmt: skip
    weights = np.linspace(0.5, 1.5, len(X))
    smon = SmootherMonitor(X, X_eval, sample_weight=weights, method="channels")
    tmon = TelescopingMonitor(X_eval)
    est.fit(X, y, sample_weight=weights, monitors=[smon, tmon])
    scaling = est.run_.scaling
    y_std = (y - scaling.t_mean[0]) / scaling.t_scale[0]
    theta = flatten_parameters(est.module_).double().numpy()
    chan = smon.channels_
    # 1. the channels replay the optimizer: D^S y + D^C is the trained θ
    np.testing.assert_allclose(chan.S.numpy() @ y_std + chan.C.numpy(), theta,
                               atol=ROUND_OFF * np.abs(theta).max())  # fmt: skip
    # 2. S y + c is the network, on training and other inputs
    raw = np.concatenate([est.predict(X), est.predict(X_eval)])
    raw = (raw - scaling.t_mean[0]) / scaling.t_scale[0]
    smooth = np.concatenate([smon.S_ @ y_std, smon.s_eval_ @ y_std]) + smon.c_
    np.testing.assert_allclose(smooth, raw, atol=ROUND_OFF)
    # 3. without remainders it is the telescoping model f̃ computed by JVPs
    f_tilde = tmon.exact_[-1, :, 0] + tmon.deviations_["first_order"][-1, :, 0]
    n = len(X)
    np.testing.assert_allclose(smon.s_eval_ @ y_std + smon.c_first_order_[n:], f_tilde,
                               atol=ROUND_OFF)  # fmt: skip
    assert np.all(smon.p_train_[1:] > 0) and np.all(np.isfinite(smon.p_test_))


def test_kernel_recursion_equals_channel_replay_for_plain_sgd():
    X, y, X_eval = _data()
    est = TelescopingMLPRegressor((8, 8), optimizer="sgd", momentum=0.0, learning_rate=0.1,
                                  batch_size=10, max_iter=3, n_iter_no_change=None,
                                  early_stopping=False, random_state=2)  # fmt: skip
    monitors = [SmootherMonitor(X, X_eval, method=m) for m in ("auto", "channels")]
    est.fit(X, y, monitors=monitors)
    kernel, channels = monitors
    assert kernel.channels_ is None and channels.channels_ is not None
    # two float64 computations of the same recursion, in different orders
    for name in ("S_", "s_eval_", "c_", "c_first_order_", "p_train_", "p_test_"):
        np.testing.assert_allclose(getattr(kernel, name), getattr(channels, name),
                                   rtol=1e-9, atol=1e-11)  # fmt: skip


def test_classifier_and_effective_parameters_api():
    X, y, X_eval = _data(n=48)
    labels = (y > np.median(y)).astype(int)
    clf = TelescopingMLPClassifier((16,), loss="squared_error", optimizer="sgd", momentum=0.9,
                                   learning_rate=0.02, batch_size=16, max_iter=6,
                                   n_iter_no_change=None, early_stopping=False,
                                   random_state=0, preset="paper")  # fmt: skip
    res = effective_parameters(clf, X, labels, X_eval, every=4)
    assert res.steps.tolist() == [0, 4, 8, 12, 16, 18]
    assert res.p_train.shape == res.p_test.shape == (6,)
    trace = smoother_trace(clf, X, labels)
    np.testing.assert_allclose(trace.y_network, 2.0 * labels - 1.0)
    np.testing.assert_allclose(trace.predict_train(), clf.fit(X, labels).decision_function(X),
                               atol=ROUND_OFF)  # fmt: skip
    np.testing.assert_allclose(trace.p_train[res.steps], res.p_train, rtol=1e-12)


@pytest.mark.parametrize("method", ["auto", "channels"])
def test_smoothed_squared_error_classifier_is_its_smoother(method):
    X, y, _ = _data(n=48)
    labels = (y > np.median(y)).astype(int)
    clf = TelescopingMLPClassifier((8,), loss="squared_error", label_smoothing=0.2,
                                   optimizer="sgd", momentum=0.0, learning_rate=0.05,
                                   weight_decay=0.01, weight_decay_biases=False, batch_size=16,
                                   max_iter=4, n_iter_no_change=None, early_stopping=False,
                                   random_state=0)  # fmt: skip
    trace = smoother_trace(clf, X, labels)
    np.testing.assert_allclose(trace.y_network, 0.8 * (2.0 * labels - 1.0))
    np.testing.assert_allclose(trace.predict_train(), clf.fit(X, labels).decision_function(X),
                               atol=ROUND_OFF)  # fmt: skip
    mon = SmootherMonitor(X, method=method)
    clf.fit(X, labels, monitors=[mon])
    assert mon.channels_ is not None  # decay on the weights only: the channel replay
    np.testing.assert_allclose(mon.S_, trace.S, rtol=0, atol=1e-12)


def test_refusals_speak_the_users_language():
    X, y, _ = _data()
    labels = (y > 0).astype(int)
    base = dict(max_iter=2, early_stopping=False, random_state=0)
    with pytest.raises(ValueError, match="squared-error"):
        smoother_trace(TelescopingMLPClassifier((4,), **base), X, labels)
    three = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    with pytest.raises(ValueError, match="one output"):
        smoother_trace(TelescopingMLPClassifier((4,), loss="squared_error", **base), X, three)
    with pytest.raises(ValueError, match=r"p=\d+ parameters x n=40 .*max_bytes"):
        smoother_trace(TelescopingMLPRegressor((64,), **base), X, y, max_bytes=100_000)
    plain_sgd = TelescopingMLPRegressor((64,), optimizer="sgd", momentum=0.0, **base)
    with pytest.raises(ValueError, match=r"n=40 training \+ 12 other inputs.*max_bytes"):
        smoother_trace(plain_sgd, X, y, X[:12], max_bytes=10_000)
