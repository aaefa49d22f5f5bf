"""The estimators' network options keep every identity of the lens.

For each option (numerical embeddings "plr", "pbld", "ple"; the feature scale; dropout):
the telescope sums to the prediction, the last ``staged_predict`` is ``predict``, the stage
kernel is the evaluation network's Jacobian product, the preconditioned one-step
identity holds to the plain network's tolerance (tests/test_preconditioner.py), the fit
replays bit for bit, pickling round-trips (and a warm start after it continues the same
run), and the lens monitors hold their invariants.

Dropout: a step's gradient is the gradient of the network its masks made, so the kernel of
that step is ``∇f(x)·∇f_mask(x_i)`` (the evaluation network at the point it changes, the
masked network at the batch rows), and the one-step identity reads
``∇f(x)·Δθ = −γ/n K_mask(x, X) (f_mask(X) − y)``. The stage kernel (``Stage.kernel``) is the
evaluation network's, on both sides.
"""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from helpers import (
    assert_stage_kernels_are_jacobian_products,
    smooth_regression,
)
from sklearn.datasets import make_classification
from sklearn.utils._param_validation import InvalidParameterError

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._core.layers import SeededDropout, TangentLayer, dropout_masks
from sktelescope._core.network import forward_flat, linearised_increment
from sktelescope.lens import (
    KernelExtremityMonitor,
    Observer,
    SmootherMonitor,
    TelescopingMonitor,
    gradient_change,
    kernel_extremity_ratio,
    spawn_children,
    tangent_kernel,
    telescoping_trace,
)
from sktelescope.lens._connectivity import _replay_to, _train_child
from sktelescope.lens._replay import replay
from sktelescope.lens._subject import resolve

OPTIONS = {
    "plr": dict(numerical_embedding="plr", embedding_frequencies=4, embedding_dim=3),
    "pbld": dict(numerical_embedding="pbld", embedding_frequencies=4),
    "ple": dict(numerical_embedding="ple", embedding_bins=6, embedding_dim=3),
    "feature_scaling": dict(feature_scaling=True),
    "dropout": dict(dropout=0.2),
    # the default network: PBLD, the feature scale and dropout (at the dropout option's rate)
    # with beta_2 0.95 and a flat-then-cosine schedule, whose last planned step has rate 0
    "tabular": dict(preset="tabular", embedding_frequencies=4, dropout=0.2),
}
NAMES = sorted(OPTIONS)


def _regressor(name, **kwargs):
    params = dict(hidden_layer_sizes=(8,), batch_size=16, max_iter=3, early_stopping=False,
                  n_iter_no_change=None, max_stages=6, random_state=0)  # fmt: skip
    return TelescopingMLPRegressor(**{"preset": "paper", **params, **OPTIONS[name], **kwargs})


class _MaskRecorder(Observer):
    """Each step's batch and dropout masks (what the step's gradient was taken with)."""

    def on_train_begin(self, trainer):
        self.batches, self.masks, self.rates = [], [], []

    def on_step(self, step):
        self.rates.append(step.learning_rate)
        self.batches.append(step.batch.clone())
        masks = dropout_masks(step.module)
        self.masks.append(None if masks is None else {k: v.clone() for k, v in masks.items()})


def test_the_paper_preset_builds_the_plain_network_and_the_default_its_options():
    X, y = smooth_regression(40)
    est = TelescopingMLPRegressor((8,), preset="paper", max_iter=2, random_state=0).fit(X, y)
    assert [type(m).__name__ for m in est.module_] == ["Linear", "ReLU", "Linear"]
    default = TelescopingMLPRegressor((8,), max_iter=2, random_state=0).fit(X, y)
    assert [type(m).__name__ for m in default.module_] == [
        "PeriodicEmbedding", "FeatureScale", "Linear", "ReLU", "SeededDropout", "Linear",
    ]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_the_option_is_in_the_network(name):
    X, y = smooth_regression(40)
    est = _regressor(name).fit(X, y)
    kinds = {type(m).__name__ for m in est.module_}
    expected = {"plr": "PeriodicEmbedding", "pbld": "PeriodicEmbedding",
                "ple": "PiecewiseLinearEmbedding", "feature_scaling": "FeatureScale",
                "dropout": "SeededDropout", "tabular": "PeriodicEmbedding"}[name]  # fmt: skip
    assert expected in kinds


@pytest.mark.parametrize("name", NAMES)
def test_telescope_sums_to_predict_and_last_stage_is_predict(name):
    X, y = smooth_regression(64)
    est = _regressor(name).fit(X, y)
    parts, pred = est.telescope(X), est.predict(X)
    assert parts.shape == (len(X), 1 + est.n_stages_)
    # float64 evaluation of float32 parameters, as for the plain network (tests/test_stages.py)
    np.testing.assert_allclose(parts.sum(axis=1), pred, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(list(est.staged_predict(X))[-1], pred, rtol=0, atol=1e-10)
    for k, stage in enumerate(est.stages_):
        np.testing.assert_allclose(stage.predict(X), parts[:, k + 1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_classifier_telescope_sums_to_decision_function(name):
    X, y = make_classification(80, 5, n_informative=3, n_classes=3, random_state=0)
    params = dict(hidden_layer_sizes=(8,), batch_size=16, max_iter=3, early_stopping=False,
                  n_iter_no_change=None, max_stages=6, random_state=0)  # fmt: skip
    est = TelescopingMLPClassifier(**{"preset": "paper", **params, **OPTIONS[name]}).fit(X, y)
    parts = est.telescope(X)
    np.testing.assert_allclose(parts.sum(axis=1), est.decision_function(X), atol=1e-5)
    assert est.stages_[0].kernel(X[:4], X[:6]).shape == (3, 4, 6)


@pytest.mark.parametrize("name", NAMES)
def test_stage_kernel_is_the_evaluation_networks_jacobian_product(name):
    X, y = smooth_regression(48)
    est = _regressor(name).fit(X, y)
    stage = est.stages_[1]
    net, Xt = copy.deepcopy(est.run_.module).double(), est.run_.inputs(X[:6])
    assert_stage_kernels_are_jacobian_products(stage, net, X[:6], Xt)
    norms = stage.kernel_row_norms(X[:6], X[:10])
    np.testing.assert_allclose(norms, np.linalg.norm(stage.kernel(X[:6], X[:10]), axis=1),
                               rtol=1e-4)  # fmt: skip


CASES = [("sgd", 1e-2, 0.0), ("adam", 1e-3, 0.0), ("adamw", 1e-3, 0.1)]


def _one_step_step(est, recorder, k, X, y, lr, weight_decay, adaptive):
    """``−γ/n K_step (f_step − y)`` (+ AdamW's decay term) in prediction units: the kernel and
    the residuals of the network stage ``k``'s single step trained (its dropout masks on the
    batch side; without dropout, ``Stage.kernel``)."""
    run, stage = est.run_, est.stages_[k]
    Xt = run.inputs(X)
    theta = stage.start_parameters.double()
    pre = stage.preconditioner.double() if adaptive else None
    batch, masks = recorder.batches[k], recorder.masks[k]
    masks = None if masks is None else {m: v.double() for m, v in masks.items()}
    t_scale = run.scaling.t_scale[0]
    y_net = torch.as_tensor((y[batch.numpy()] - run.scaling.t_mean[0]) / t_scale)
    with torch.no_grad():
        residual = forward_flat(run.module, theta, Xt[batch], masks)[:, 0] - y_net
        kernel = tangent_kernel(run.module, theta, Xt, Xt[batch], 0, pre, dropout_masks=masks)
    if masks is None:  # the stage kernel is that step's kernel
        np.testing.assert_allclose(stage.kernel(X, X[batch.numpy()], preconditioned=adaptive),
                                   kernel.numpy(), rtol=1e-4, atol=1e-6)  # fmt: skip
    step = -lr / len(X) * (kernel @ residual)
    if weight_decay:
        step = step + linearised_increment(run.module, theta, -lr * weight_decay * theta, Xt)[:, 0]
    return step.numpy() * t_scale


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("optimizer", "lr", "weight_decay"), CASES)
def test_first_order_stage_is_the_kernel_smoother_the_step_applied(
    name, optimizer, lr, weight_decay
):
    X, y = smooth_regression(60)
    y = 10 * y
    recorder = _MaskRecorder()
    est = _regressor(name, optimizer=optimizer, learning_rate=lr, momentum=0.0, beta_1=0.0,
                     weight_decay=weight_decay, batch_size=None, max_iter=6, stage_every=1,
                     max_stages=10).fit(X, y, monitors=[recorder])  # fmt: skip
    assert (recorder.masks[0] is not None) == (name in ("dropout", "tabular"))
    for k, stage in enumerate(est.stages_):
        linear = stage.predict(X, linear=True)
        rate = recorder.rates[k]  # the step's scheduled rate (flat then cosine for "tabular")
        expected = _one_step_step(est, recorder, k, X, y, rate, weight_decay, optimizer != "sgd")
        np.testing.assert_allclose(expected, linear, rtol=0, atol=1e-4 * np.abs(linear).max())


def test_dropout_step_is_not_the_evaluation_kernels_smoother():
    """The identity above needs the step's masks: the evaluation kernel with the evaluation
    residuals misses the step's change by far more than the tolerance."""
    X, y = smooth_regression(60)
    est = _regressor("dropout", optimizer="sgd", learning_rate=1e-2, momentum=0.0,
                     batch_size=None, max_iter=2, stage_every=1).fit(X, 10 * y)  # fmt: skip
    run, stage = est.run_, est.stages_[1]
    residual = (est.telescope(X)[:, :2].sum(axis=1) - 10 * y) / run.scaling.t_scale[0]
    wrong = -1e-2 / len(X) * stage.kernel(X, X) @ residual * run.scaling.t_scale[0]
    linear = stage.predict(X, linear=True)
    assert np.abs(wrong - linear).max() > 1e-2 * np.abs(linear).max()


@pytest.mark.parametrize("name", NAMES)
def test_replay_is_bit_exact(name):
    X, y = smooth_regression(48)
    est = _regressor(name).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a replay that differs warns
        twin = replay(resolve(est), X, y, [])
        trace = telescoping_trace(est, X, y, X[:7])
    assert torch.equal(twin.run_.final_parameters, est.run_.final_parameters)
    np.testing.assert_array_equal(twin.predict(X), est.predict(X))
    np.testing.assert_allclose(trace.exact[-1], est.predict(X[:7]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_and_warm_start_after_it(name):
    X, y = smooth_regression(48)
    est = _regressor(name).fit(X, y)
    twin = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(twin.predict(X), est.predict(X))
    np.testing.assert_array_equal(twin.stages_[1].kernel(X[:5]), est.stages_[1].kernel(X[:5]))
    for model in (est, twin):  # the optimizer's and the dropout generators' states travel
        model.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert torch.equal(twin.run_.final_parameters, est.run_.final_parameters)


def test_a_warm_start_trains_with_dropout_again():
    """A fitted network is left in evaluation mode; continuing its fit must train it again."""
    X, y = smooth_regression(48)
    est = _regressor("dropout").fit(X, y)
    recorder = _MaskRecorder()
    est.set_params(warm_start=True, max_iter=1).fit(X, y, monitors=[recorder])
    masks = [m["2"] for m in recorder.masks]  # Linear, ReLU, dropout, Linear
    assert len(masks) == 3 and all(not torch.equal(a, b) for a, b in zip(masks, masks[1:]))


def test_dropout_draws_from_its_own_generators_and_evaluates_without_masks():
    X, y = smooth_regression(48)
    state = torch.get_rng_state()
    a, b = _regressor("dropout").fit(X, y), _regressor("dropout").fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.run_.final_parameters, b.run_.final_parameters)
    other = _regressor("dropout", random_state=1).fit(X, y)
    drops = [m for m in other.module_ if isinstance(m, SeededDropout)]
    assert drops and not other.module_.training
    np.testing.assert_array_equal(a.predict(X), a.predict(X))  # no mask at predict
    with torch.no_grad():
        out = a.module_.train()(a.run_.inputs(X, torch.float32))  # no_grad: no mask either
    scaling = a.run_.scaling  # a float32 forward against predict's float64 evaluation
    np.testing.assert_allclose(out[:, 0].numpy() * scaling.t_scale[0] + scaling.t_mean[0],
                               a.predict(X), rtol=0, atol=1e-6 * np.std(y))  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_telescoping_and_smoother_monitors_keep_their_invariants(name):
    X, y = smooth_regression(40)
    X_eval = X[:6] + 0.3
    smoother = SmootherMonitor(X, X_eval, method="channels")
    telescoping = TelescopingMonitor(X_eval)
    est = _regressor(name, batch_size=10, max_iter=2, learning_rate=1e-2)
    est.fit(X, y, monitors=[smoother, telescoping])
    scaling = est.run_.scaling
    y_std = (y - scaling.t_mean[0]) / scaling.t_scale[0]
    theta = est.run_.final_parameters.double().numpy()
    chan = smoother.channels_
    # the channels are the parameters (with dropout: the masked gradients and residuals)
    np.testing.assert_allclose(chan.S.numpy() @ y_std + chan.C.numpy(), theta,
                               atol=2e-6 * np.abs(theta).max())  # fmt: skip
    raw = np.concatenate([est.predict(X), est.predict(X_eval)]) - scaling.t_mean[0]
    smooth = np.concatenate([smoother.S_ @ y_std, smoother.s_eval_ @ y_std]) + smoother.c_
    np.testing.assert_allclose(smooth, raw / scaling.t_scale[0], atol=2e-6)
    f_tilde = telescoping.exact_[-1, :, 0] + telescoping.deviations_["first_order"][-1, :, 0]
    np.testing.assert_allclose(smoother.s_eval_ @ y_std + smoother.c_first_order_[len(X):],
                               f_tilde, atol=2e-6)  # fmt: skip
    np.testing.assert_allclose(telescoping.exact_[-1, :, 0], raw[len(X):] / scaling.t_scale[0],
                               rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("name", ["dropout", "pbld"])
def test_kernel_recursion_of_plain_sgd_equals_the_channel_replay(name):
    X, y = smooth_regression(40)
    monitors = [SmootherMonitor(X, X[:5] + 0.2, method=m) for m in ("auto", "channels")]
    _regressor(name, optimizer="sgd", momentum=0.0, learning_rate=0.05, batch_size=10,
               max_iter=2).fit(X, y, monitors=monitors)  # fmt: skip
    kernel, channels = monitors
    assert kernel.channels_ is None
    for attr in ("S_", "s_eval_", "c_", "c_first_order_"):
        np.testing.assert_allclose(getattr(kernel, attr), getattr(channels, attr),
                                   rtol=1e-9, atol=1e-11)  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_kernel_extremity_monitor_takes_each_steps_kernel(name):
    X, y = smooth_regression(40)
    X_test = 2 * X[:5]
    monitor = KernelExtremityMonitor(X_test, max_train_samples=None, preconditioned=True)
    recorder = _MaskRecorder()
    est = _regressor(name, batch_size=10, max_iter=1).fit(X, y, monitors=[recorder, monitor])
    assert len(monitor.steps_) == 4 and np.all(np.isfinite(monitor.test_max_))
    # the last step by hand: its kernel against its batch, its masks on the batch side
    run, k = est.run_, len(recorder.batches) - 1
    replay = _regressor(name, batch_size=10, max_iter=1)  # parameters before the last step
    replay.set_params(max_stages=8, stage_every=1).fit(X, y)
    theta = replay.run_.checkpoints.flats[k]
    Xt, batch, masks = run.inputs(X, torch.float32), recorder.batches[k], recorder.masks[k]
    pre = replay.stages_[k].preconditioner
    with torch.no_grad():
        K = tangent_kernel(run.module, theta, run.inputs(X_test, torch.float32), Xt[batch], 0,
                           pre, dropout_masks=masks)  # fmt: skip
    expected = (K * (recorder.rates[k] / len(batch))).pow(2).sum(1).sqrt().max()
    np.testing.assert_allclose(monitor.test_max_[-1, 0], float(expected), rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_change_names_every_block(name):
    X, y = smooth_regression(40)
    est = _regressor(name).fit(X, y)
    res = gradient_change(est, X, y, X[:16])
    extra = sum(len(m.factor_names()) for m in est.module_ if isinstance(m, TangentLayer))
    assert len(res.layers) == 2 + extra and res.values.shape == (est.n_stages_, len(res.layers))
    fan_in = next(m for m in est.module_ if isinstance(m, torch.nn.Linear)).in_features
    assert res.layers[-2:] == [f"layer 0 ({fan_in}->8)", "layer 1 (8->1)"]
    flats = est.run_.checkpoints.flats  # a stage whose steps had rate 0 (a schedule's end)
    moved = np.array([not torch.equal(flats[k], flats[k + 1]) for k in range(est.n_stages_)])
    assert np.all(np.isfinite(res.values)) and moved.any()
    assert np.all(res.values[moved] > 0) and np.all(res.values[~moved] == 0)


def test_option_parameters_are_validated():
    X, y = smooth_regression(20)
    with pytest.raises(InvalidParameterError, match="numerical_embedding"):
        TelescopingMLPRegressor(numerical_embedding="fourier").fit(X, y)
    with pytest.raises(InvalidParameterError, match="dropout"):
        TelescopingMLPRegressor(dropout=1.0).fit(X, y)
    with pytest.raises(ValueError, match="embedding_dim=1 is too small for the 'pbld'"):
        TelescopingMLPRegressor(numerical_embedding="pbld", embedding_dim=1).fit(X, y)


@pytest.mark.parametrize("name", ["dropout", "pbld"])
def test_a_child_with_the_parents_data_order_retraces_the_parent(name):
    """Spawned children copy the parent's state at the spawn step, dropout generators
    included: with the parent's batch order a child is the parent, bit for bit."""
    X, y = smooth_regression(64)
    est = _regressor(name, max_iter=3).fit(X, y)
    point = _replay_to(resolve(est), X, y, 4, None, None)  # an epoch boundary (4 x 16 rows)
    generator = torch.Generator()
    generator.set_state(point.generator.get_state())
    assert torch.equal(_train_child(point, est.n_steps_, generator), est.run_.final_parameters)
    res = spawn_children(est, X, y, spawn_step=4, n_children=2, seeds=[1, 2])
    assert not torch.equal(res.children[0], res.children[1])


@pytest.mark.parametrize("name", NAMES)
def test_kernel_extremity_ratio_by_stage_and_by_step(name):
    X, y = smooth_regression(48)
    est = _regressor(name).fit(X, y)
    for method in ("stage", "step"):
        res = kernel_extremity_ratio(est, X, y, 3 * X[:8], method=method)
        assert np.isfinite(res.ratio) and res.ratio > 0


def test_early_stopping_keeps_the_dropout_streams_of_its_best_epoch():
    """A continuation goes on from the best epoch (parameters, optimizer, batch order): its
    dropout masks too, so that the replay of both fits is the fitted run."""
    X, y = smooth_regression(120)
    est = _regressor("dropout", early_stopping=True, n_iter_no_change=2, max_iter=60,
                     learning_rate=0.05, max_stages=20).fit(X, y)  # fmt: skip
    assert est.best_step_ < est.n_steps_  # it ran past its best epoch
    est.set_params(warm_start=True, max_iter=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin = replay(resolve(est), X, y, [])  # refuses a replay that is not the run
    assert torch.equal(twin.run_.final_parameters, est.run_.final_parameters)
