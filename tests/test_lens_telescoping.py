"""Per-step telescoping monitor, checked against torch.func and finite differences.

The estimator trains in float32; tests that need tight agreement drive a float64 network
through the bare ``Trainer``. Tolerances are stated against the precision of the path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import smooth_regression
from torch.func import functional_call, jvp

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._core.autodiff import primal, tangent
from sktelescope._core.losses import SquaredError
from sktelescope._core.network import build_mlp, flatten_parameters, unflatten_parameters
from sktelescope._core.training import TrainConfig, Trainer
from sktelescope.lens import Observer, TelescopingMonitor, telescoping_trace


class _ParamRecorder(Observer):
    def on_train_begin(self, trainer):
        self.flats = [flatten_parameters(trainer.module)]

    def on_step(self, step):
        self.flats.append(flatten_parameters(step.module))


def _float64_run(optimizer="sgd", lr=0.05, steps_epochs=3, hidden=(6, 5)):
    torch.manual_seed(0)
    X = torch.randn(40, 3, dtype=torch.float64)
    Y = torch.sin(X[:, :1]) + X[:, 1:2]
    net = build_mlp(3, hidden, 1, generator=torch.Generator().manual_seed(1)).double()
    X_eval = torch.randn(7, 3, dtype=torch.float64)
    mon, rec = TelescopingMonitor(X_eval), _ParamRecorder()
    cfg = TrainConfig(optimizer=optimizer, learning_rate=lr, batch_size=10,
                      max_iter=steps_epochs)  # fmt: skip
    Trainer(net, SquaredError(), cfg, torch.Generator().manual_seed(2), [mon, rec]).fit(
        X, Y, torch.ones(40, dtype=torch.float64)
    )
    return net, X_eval, mon, rec.flats


def test_increments_match_torch_func_jvp_on_tiny_mlp():
    net, X_eval, mon, flats = _float64_run()

    def f(flat):
        return functional_call(net, unflatten_parameters(net, flat), (X_eval,))

    first, trap = [f(flats[0])], [f(flats[0])]
    for prev, new in zip(flats[:-1], flats[1:]):
        with torch.no_grad():
            a = jvp(f, (prev,), (new - prev,))[1]
            b = jvp(f, (new,), (new - prev,))[1]
        first.append(first[-1] + a)
        trap.append(trap[-1] + 0.5 * (a + b))
    with torch.no_grad():
        lazy = [f(flats[0]) + jvp(f, (flats[0],), (fl - flats[0],))[1] for fl in flats]
    assert list(mon.steps_) == list(range(len(flats)))
    exact = torch.stack([f(fl) for fl in flats]).detach().numpy()
    # exact_ is stored in float32 (relative 6e-8); deviations are float32 of float64 sums
    np.testing.assert_allclose(mon.exact_, exact, rtol=1e-6, atol=1e-6)
    for name, ref in [("first_order", first), ("trapezoid", trap), ("lazy", lazy)]:
        ref_dev = torch.stack(ref).detach().numpy() - exact
        np.testing.assert_allclose(mon.deviations_[name], ref_dev, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("kind", ["tanh", "gelu", "relu-then-tanh"])
def test_tangent_pass_matches_central_finite_differences(kind):
    if kind == "relu-then-tanh":  # two activations in a row: slopes are multiplied
        layers = [torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Tanh(), torch.nn.Linear(8, 2)]
        net = torch.nn.Sequential(*layers).double()
    else:
        net = build_mlp(3, (8, 8), 2, activation=kind).double()
    params = {k: v.detach() for k, v in net.named_parameters()}
    delta = {k: torch.randn_like(v) for k, v in params.items()}
    X = torch.randn(5, 3, dtype=torch.float64)
    eps = 1e-5

    def at(sign):
        shifted = {k: params[k] + sign * eps * delta[k] for k in params}
        return functional_call(net, shifted, (X,)).detach()

    fd = (at(1.0) - at(-1.0)) / (2 * eps)
    # central differences have O(eps^2) ≈ 1e-10 truncation error in float64
    torch.testing.assert_close(tangent(net, primal(net, params, X), delta), fd, atol=1e-8, rtol=0)


def test_linear_model_first_order_is_exact():
    X, y = smooth_regression()
    est = TelescopingMLPRegressor((), optimizer="sgd", momentum=0.0, learning_rate=0.05,
                                  batch_size=16, max_iter=5, n_iter_no_change=None,
                                  random_state=0, preset="paper")  # fmt: skip
    trace = telescoping_trace(est, X, y, X[:30])
    # f is linear in θ: every model equals the network up to float32 round-off of the
    # forward passes (|f| ~ 1, 30 steps of increments each exact to ~1e-7)
    for model in ("first_order", "trapezoid", "lazy"):
        assert trace.approximation_error(model).max() < 1e-5


def test_trapezoid_beats_first_order_and_lazy_matches_at_step_one():
    X, y = smooth_regression(n=128)
    est = TelescopingMLPRegressor((32, 32), optimizer="sgd", learning_rate=0.05, momentum=0.0,
                                  batch_size=32, max_iter=10, n_iter_no_change=None,
                                  random_state=0)  # fmt: skip
    trace = telescoping_trace(est, X, y, X[:50])
    err = trace.final_errors()
    assert err["trapezoid"] < 0.5 * err["first_order"] < err["lazy"]
    np.testing.assert_allclose(trace.lazy[1], trace.first_order[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.exact[-1], est.fit(X, y).predict(X[:50]), atol=1e-5)


def test_classifier_accuracy_and_exact_only_mode():
    X, y = smooth_regression(n=80)
    labels = np.where(y > np.median(y), "b", "a")
    clf = TelescopingMLPClassifier((16,), loss="squared_error", optimizer="adam", batch_size=16,
                                   max_iter=4, n_iter_no_change=None, random_state=3)  # fmt: skip
    trace = telescoping_trace(clf, X, labels, X, every=3)
    assert trace.steps[0] == 0 and trace.steps[-1] == 20 and np.all(np.diff(trace.steps) > 0)
    acc = trace.accuracy(labels)
    clf.fit(X, labels)
    assert acc["network"][-1] == pytest.approx(np.mean(clf.predict(X) == labels))
    only = telescoping_trace(clf, X, labels, X, linear=False, trapezoid=False, lazy=False)
    assert only.first_order is None and only.models() == {}
    np.testing.assert_array_equal(only.exact[trace.steps], trace.exact)


def test_refuses_what_would_not_fit():
    X, y = smooth_regression(n=64)
    est = TelescopingMLPRegressor((8,), max_iter=50, batch_size=8, random_state=0)
    with pytest.raises(ValueError, match=r"max_bytes=.*every="):
        telescoping_trace(est, X, y, X, max_bytes=10_000)
    with pytest.raises(ValueError, match="every"):
        TelescopingMonitor(X, every=0)
