"""Optimisation options (schedules, β₂, weight decay without biases, input scaling, label
smoothing) keep every identity of the lens, and each does what it says.

Every option is run through the same invariants as the plain network: the telescope sums
to the prediction, the last stage is ``predict``, the stages' first-order parts are the
per-stage linearisation, a replay is bit-identical, a pickle round trip predicts the same.
The one-step preconditioned identity and the smoother identity ``S y + c`` are in
``test_preconditioner.py`` and ``test_lens_smoother.py``, parametrised over the same
options.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from helpers import smooth_regression
from sklearn.datasets import make_classification
from sklearn.preprocessing import QuantileTransformer

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._core.fused_step import OptimizerStep
from sktelescope._core.network import flatten_parameters
from sktelescope._core.optim import (
    OPTIMIZERS,
    SCHEDULES,
    applied_preconditioner,
    coordinate_values,
    learning_rate_factor,
    load_optimizer_state,
    make_optimizer,
    save_optimizer_state,
)
from sktelescope._core.training import TrainConfig
from sktelescope.bench._scalers import RobustSmoothClipScaler
from sktelescope.lens._replay import replay
from sktelescope.lens._subject import resolve

BASE = dict(hidden_layer_sizes=(8, 8), batch_size=16, max_iter=3, n_iter_no_change=None,
            early_stopping=False, random_state=0)  # fmt: skip

REGRESSOR_OPTIONS = {
    "flat_cosine": dict(lr_schedule="flat_cosine"),
    "coslog4": dict(lr_schedule="coslog4", warmup_steps=2),
    "beta_2=0.95": dict(beta_2=0.95),
    "adam-decay-weights-only": dict(weight_decay=0.05, weight_decay_biases=False),
    "adamw-decay-weights-only": dict(optimizer="adamw", weight_decay=0.1,
                                     weight_decay_biases=False),
    "sgd-decay-weights-only": dict(optimizer="sgd", learning_rate=0.02, weight_decay=0.05,
                                   weight_decay_biases=False),
    "robust-scaling": dict(input_scaling="robust"),
    "quantile-scaling": dict(input_scaling="quantile"),
}  # fmt: skip

CLASSIFIER_OPTIONS = {
    "log-loss-smoothed": dict(label_smoothing=0.1),
    "squared-smoothed": dict(loss="squared_error", label_smoothing=0.2),
    "smoothed-robust-decay": dict(label_smoothing=0.1, input_scaling="robust",
                                  weight_decay=0.05, weight_decay_biases=False,
                                  lr_schedule="coslog4"),
}  # fmt: skip


def _regression():
    X, y = smooth_regression(64, 3, seed=1)
    X[:3, 0] *= 40.0  # outliers, so that robust and quantile scaling differ from standard
    return X, y


def _classification(n_classes):
    X, y = make_classification(n_samples=64, n_features=4, n_informative=3, n_redundant=0,
                               n_classes=n_classes, random_state=0)  # fmt: skip
    return X, y


def _cases():
    for name, params in REGRESSOR_OPTIONS.items():
        yield pytest.param(TelescopingMLPRegressor, params, None, id=f"reg-{name}")
    for name, params in CLASSIFIER_OPTIONS.items():
        for k in (2, 3):
            yield pytest.param(TelescopingMLPClassifier, params, k, id=f"clf{k}-{name}")


def _fit(cls, params, n_classes):
    X, y = _regression() if n_classes is None else _classification(n_classes)
    return cls(**BASE, **params).fit(X, y), X, y


def _raw(est, X):
    return est.predict(X) if isinstance(est, TelescopingMLPRegressor) else est.decision_function(X)


@pytest.mark.parametrize(("cls", "params", "n_classes"), list(_cases()))
def test_every_option_keeps_the_run_a_telescope(cls, params, n_classes):
    est, X, y = _fit(cls, params, n_classes)
    raw = _raw(est, X)
    parts = est.telescope(X)
    np.testing.assert_allclose(parts.sum(axis=1), raw, rtol=1e-9, atol=1e-9 * np.abs(raw).max())
    staged = list(est.staged_decision_function(X) if n_classes else est.staged_predict(X))
    np.testing.assert_allclose(staged[-1], raw, rtol=0, atol=1e-10 * np.abs(raw).max())
    if n_classes:
        assert (list(est.staged_predict(X))[-1] == est.predict(X)).all()
    for k in (0, est.n_stages_ - 1):
        stage = est.stages_[k]
        np.testing.assert_allclose(stage.predict(X), parts[:, k + 1], atol=1e-10)
        kernel = stage.kernel(X[:5], X[:7])
        assert np.all(np.isfinite(kernel)) and kernel.shape[-2:] == (5, 7)


@pytest.mark.parametrize(("cls", "params", "n_classes"), list(_cases()))
def test_every_option_replays_bit_for_bit_and_pickles(cls, params, n_classes):
    est, X, y = _fit(cls, params, n_classes)
    twin = replay(resolve(est), X, y, [])  # refuses a replay that is not bit-identical
    assert torch.equal(twin.run_.checkpoints.stacked(), est.run_.checkpoints.stacked())
    for k in range(est.n_stages_):
        a, b = twin.run_.checkpoints.preconditioner(k), est.run_.checkpoints.preconditioner(k)
        assert (a is None and b is None) or torch.equal(a, b)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(_raw(again, X), _raw(est, X))
    np.testing.assert_array_equal(again.telescope(X), est.telescope(X))


# ------------------------------------------------------------------ schedules
def _coslog4_reference(t):
    """pytabkit's CoslogFunc(4) (models/training/scheduling.py)."""
    return 0.5 * (1 - np.cos(2 * np.pi * np.log2(1 + (2**4 - 1) * t)))


def test_schedules_have_their_published_shapes():
    t = np.linspace(0, 1, 301)
    coslog4 = np.array([SCHEDULES["coslog4"](v) for v in t])
    np.testing.assert_allclose(coslog4, _coslog4_reference(t), atol=1e-12)
    for end in (1 / 15, 3 / 15, 7 / 15, 1.0):  # each cycle ends at 0 ...
        assert SCHEDULES["coslog4"](end) == pytest.approx(0.0, abs=1e-12)
    for k in range(4):  # ... and peaks at 1 halfway through it (in log time)
        assert SCHEDULES["coslog4"]((2 ** (k + 0.5) - 1) / 15) == pytest.approx(1.0)
    flat = [SCHEDULES["flat_cosine"](v) for v in t]
    assert all(f == 1.0 for f, v in zip(flat, t) if v <= 0.5)
    assert SCHEDULES["flat_cosine"](0.75) == pytest.approx(0.5) and flat[-1] == 0.0
    assert np.all(np.diff(flat) <= 0)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_trainer_applies_the_schedule_it_was_given(schedule):
    X, y = _regression()
    rates = []

    class Rates:
        wants_previous_params = False

        def on_train_begin(self, trainer):
            pass

        def on_step(self, step):
            rates.append((step.learning_rate, [g["lr"] for g in step.optimizer.param_groups]))

        def on_epoch_end(self, epoch):
            pass

        def on_train_end(self, trainer, result):
            pass

    params = dict(BASE, lr_schedule=schedule, warmup_steps=3, learning_rate=0.01,
                  weight_decay=0.1, weight_decay_biases=False)  # fmt: skip
    est = TelescopingMLPRegressor(**params).fit(X, y, monitors=[Rates()])
    total = est.n_steps_
    expected = [0.01 * learning_rate_factor(s, total, schedule, 3) for s in range(1, total + 1)]
    assert [r for r, _ in rates] == expected
    assert all(groups == [r, r] for r, groups in rates)  # two groups, one rate
    if schedule != "constant":
        assert rates[-1][0] == pytest.approx(0.0, abs=1e-15)


# ------------------------------------------------------------------ weight decay
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_biases_are_not_decayed_with_weight_decay_biases_false(optimizer):
    """One full-batch step from the same start: with and without decay of the biases, the
    biases' update must not see ``λ b`` in the first case and must in the second."""
    X, y = _regression()
    lam, lr = 0.5, 0.01
    params = dict(BASE, optimizer=optimizer, learning_rate=lr, weight_decay=lam, momentum=0.0,
                  batch_size=None, max_iter=1)  # fmt: skip
    skip = TelescopingMLPRegressor(**params, weight_decay_biases=False, preset="paper").fit(X, y)
    both = TelescopingMLPRegressor(**params, weight_decay_biases=True, preset="paper").fit(X, y)
    plain = TelescopingMLPRegressor(**dict(params, weight_decay=0.0), preset="paper").fit(X, y)
    theta0 = skip.run_.checkpoints.flats[0]
    assert torch.equal(theta0, plain.run_.checkpoints.flats[0])
    biases = _bias_mask(skip.module_)
    move = {k: e.run_.final_parameters - theta0 for k, e in
            {"skip": skip, "both": both, "plain": plain}.items()}  # fmt: skip
    # the biases of "skip" move exactly as without any decay, its weights as with decay
    torch.testing.assert_close(move["skip"][biases], move["plain"][biases], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(move["skip"][~biases], move["both"][~biases], rtol=1e-6, atol=1e-9)
    assert not torch.allclose(move["both"][biases], move["plain"][biases], rtol=1e-3, atol=0)


def _bias_mask(module) -> torch.Tensor:
    return torch.cat(
        [torch.full((p.numel(),), name.endswith("bias")) for name, p in module.named_parameters()]
    )


def test_per_coordinate_values_follow_the_networks_flat_order():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    biases = _bias_mask(net)
    named = list(net.named_parameters())
    groups = [  # biases first: the optimizer's own order is not the network's
        {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
        {"params": [p for n, p in named if not n.endswith("bias")]},
    ]
    opt = torch.optim.Adam(groups, weight_decay=0.1)
    decay = coordinate_values(opt, "weight_decay", net.parameters())
    torch.testing.assert_close(decay, torch.where(biases, 0.0, 0.1).double())
    for p in net.parameters():  # |gradient| 2 on biases, 1 on weights
        p.data.zero_()
        p.grad = torch.full_like(p, 2.0 if p.dim() == 1 else 1.0)
    opt.step()
    pre = applied_preconditioner(opt, net.parameters())  # 1 / (|g| + eps) after one step
    torch.testing.assert_close(pre, torch.where(biases, 0.5, 1.0), rtol=1e-6, atol=0)


def test_warm_start_continues_across_a_change_of_parameter_groups():
    X, y = _regression()
    est = TelescopingMLPRegressor(**BASE, weight_decay=0.1, warm_start=True).fit(X, y)
    steps = est.n_steps_
    est.set_params(weight_decay_biases=False, max_iter=1).fit(X, y)
    assert est.n_steps_ == steps + 4  # 64 rows, batches of 16
    np.testing.assert_allclose(est.telescope(X).sum(1), est.predict(X), rtol=1e-9)


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [(TelescopingMLPRegressor, "input_scaling", "robust"),
     (TelescopingMLPClassifier, "label_smoothing", 0.1)],
)  # fmt: skip
def test_warm_start_refuses_a_new_input_scaling_or_label_smoothing(cls, name, value):
    """The run keeps the first fit's scaling and loss: a change would be silently ignored."""
    X, y = _regression() if cls is TelescopingMLPRegressor else _classification(2)
    est = cls(**BASE, preset="paper", warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match=f"{name} changed"):
        est.set_params(**{name: value}).fit(X, y)


def test_loaded_state_keeps_the_moments_and_takes_the_new_settings():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    old = torch.optim.Adam(net.parameters(), lr=0.1, weight_decay=0.3)
    net(torch.ones(4, 3)).sum().backward()
    old.step()
    saved = save_optimizer_state(old, net.parameters())
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    weights = [p for n, p in net.named_parameters() if not n.endswith("bias")]
    new = torch.optim.Adam([{"params": biases, "weight_decay": 0.0}, {"params": weights}],
                           lr=0.1, weight_decay=0.3)  # fmt: skip
    load_optimizer_state(new, saved, net.parameters())
    for p in net.parameters():
        assert torch.equal(new.state[p]["exp_avg_sq"], old.state[p]["exp_avg_sq"])
    assert [g["weight_decay"] for g in new.param_groups] == [0.0, 0.3]
    back = torch.optim.Adam(net.parameters())
    load_optimizer_state(back, save_optimizer_state(new, net.parameters()), net.parameters())
    assert all(torch.equal(back.state[p]["exp_avg"], old.state[p]["exp_avg"]) for p in weights)
    with pytest.raises(ValueError, match="not states of the same network"):
        load_optimizer_state(torch.optim.Adam(weights), saved, weights)


# ------------------------------------------------------------------ input scaling
def test_robust_scaling_is_the_benchmarks_scaler_and_bounded():
    X, y = _regression()
    est = TelescopingMLPRegressor(**BASE, input_scaling="robust").fit(X, y)
    inputs = est.run_.inputs(X).numpy()
    np.testing.assert_array_equal(inputs, RobustSmoothClipScaler().fit_transform(X))
    far = est.run_.inputs(np.full((1, 3), 1e300)).numpy()
    assert np.all(np.abs(inputs) < 3) and np.allclose(far, 3.0)
    median_row = np.median(X, axis=0, keepdims=True)
    np.testing.assert_allclose(est.run_.inputs(median_row).numpy(), 0.0, atol=1e-12)


def test_quantile_scaling_maps_to_normal_scores_and_constants_to_zero():
    X, y = _regression()
    X = np.column_stack([X, np.full(len(X), 7.0)])
    est = TelescopingMLPRegressor(**BASE, input_scaling="quantile").fit(X, y)
    inputs = est.run_.inputs(X).numpy()
    reference = QuantileTransformer(output_distribution="normal", n_quantiles=len(X),
                                    random_state=0).fit_transform(X)  # fmt: skip
    np.testing.assert_allclose(inputs[:, :3], reference[:, :3], atol=1e-12)
    assert np.all(inputs[:, 3] == 0.0)
    assert np.argsort(inputs[:, 0]).tolist() == np.argsort(X[:, 0], kind="stable").tolist()


def test_standard_scaling_is_the_default():
    X, y = _regression()
    est = TelescopingMLPRegressor(**BASE).fit(X, y)
    assert est.input_scaling == "standard"
    np.testing.assert_allclose(est.run_.inputs(X).numpy(), (X - X.mean(0)) / X.std(0),
                               rtol=1e-12, atol=1e-12)  # fmt: skip


# ------------------------------------------------------------------ label smoothing
@pytest.mark.parametrize("n_classes", [2, 3])
def test_label_smoothing_trains_on_smoothed_one_hot_targets(n_classes):
    X, y = _classification(n_classes)
    eps = 0.2
    clf = TelescopingMLPClassifier(**BASE, label_smoothing=eps).fit(X, y)
    loss = clf.run_.loss
    z = torch.randn(5, loss.n_outputs, dtype=torch.float64)
    idx = torch.tensor([0, 1, 1, 0, 1])
    soft = (1 - eps) * torch.eye(n_classes, dtype=torch.float64)[idx] + eps / n_classes
    if n_classes == 2:  # one logit: the cross-entropy of [1 - p, p] against the soft target
        log_p = torch.nn.functional.logsigmoid(torch.cat([-z, z], dim=1))
    else:
        log_p = torch.log_softmax(z, dim=1)
    expected = -(soft * log_p).sum(1).mean()
    targets = torch.as_tensor(loss.encode(idx.numpy()))
    got = loss(z, targets if n_classes == 2 else idx, torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(got, expected)


def test_smoothed_squared_error_links_back_to_probabilities():
    X, y = _classification(2)
    clf = TelescopingMLPClassifier(**BASE, loss="squared_error", label_smoothing=0.2).fit(X, y)
    np.testing.assert_allclose(clf.run_.network_targets(y)[:, 0], 0.8 * (2 * y - 1))
    np.testing.assert_allclose(clf.run_.loss.predict_proba(np.array([-0.8, 0.0, 0.8])),
                               [[1, 0], [0.5, 0.5], [0, 1]])  # fmt: skip
    X3, y3 = _classification(3)
    clf3 = TelescopingMLPClassifier(**BASE, loss="squared_error", label_smoothing=0.3)
    encoded = clf3.fit(X3, y3).run_.network_targets(y3)
    np.testing.assert_allclose(encoded.sum(1), 1.0)
    np.testing.assert_allclose(clf3.run_.loss.predict_proba(encoded), np.eye(3)[y3], atol=1e-12)


def test_label_smoothing_zero_is_the_plain_classifier_bit_for_bit():
    X, y = _classification(3)
    plain = TelescopingMLPClassifier(**BASE, preset="paper").fit(X, y)  # "auto": 0.0
    zero = TelescopingMLPClassifier(**BASE, preset="paper", label_smoothing=0.0).fit(X, y)
    assert torch.equal(plain.run_.final_parameters, zero.run_.final_parameters)
    with pytest.raises(ValueError, match="label_smoothing"):
        TelescopingMLPClassifier(label_smoothing=1.0).fit(X, y)
    assert "label_smoothing" not in TelescopingMLPRegressor().get_params()


# ------------------------------------------------------------------ one table
def test_the_estimator_hands_its_settings_over_under_their_own_names():
    est = TelescopingMLPRegressor(optimizer="sgd", beta_2=0.95, max_iter=7, momentum=0.5,
                                  weight_decay_biases=False, lr_schedule="coslog4")  # fmt: skip
    resolved = est.get_resolved_params()  # max_iter 7 set, beta_2 set, the rest from the preset
    config = TrainConfig.from_params(resolved)
    names = {f for f in TrainConfig.__dataclass_fields__}
    assert names <= set(est.get_params())  # every setting is an estimator parameter
    assert all(getattr(config, n) == resolved[n] for n in names)
    assert (config.max_iter, config.beta_2, config.lr_schedule) == (7, 0.95, "coslog4")


def test_the_tables_are_what_the_estimators_accept():
    X, y = _regression()
    constraints = TelescopingMLPRegressor._parameter_constraints
    assert constraints["optimizer"][0].options == set(OPTIMIZERS)
    assert constraints["lr_schedule"][0].options == {*SCHEDULES, "auto"}  # "auto": the preset's
    with pytest.raises(ValueError, match="lr_schedule"):
        TelescopingMLPRegressor(lr_schedule="step").fit(X, y)
    assert math.isclose(learning_rate_factor(50, 100, "coslog4"), _coslog4_reference(0.5))
    assert flatten_parameters(TelescopingMLPRegressor(**BASE).fit(X, y).module_).numel() > 0


# ------------------------------------------------------------------ the direct fused step
def _twin_networks(seed=0):
    def net():
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

    return net(), net()


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_direct_fused_step_is_torchs_step_to_the_bit(name):
    ours_net, torch_net = _twin_networks()
    config = TrainConfig(optimizer=name, learning_rate=0.01, weight_decay=0.1,
                         weight_decay_biases=False, beta_2=0.95)  # fmt: skip
    ours, theirs = make_optimizer(ours_net, config), make_optimizer(torch_net, config)
    calls = []
    ours.step = lambda *a, **k: (calls.append(1), type(ours).step(ours, *a, **k))[1]
    step = OptimizerStep(ours)
    gen = torch.Generator().manual_seed(0)
    for t in range(12):
        x = torch.randn(16, 4, generator=gen)
        for group_a, group_b in zip(ours.param_groups, theirs.param_groups):
            group_a["lr"] = group_b["lr"] = 0.01 * (1 + t) / 12
        step.zero_grad()
        ours_net(x).pow(2).mean().backward()
        step()
        theirs.zero_grad()
        torch_net(x).pow(2).mean().backward()
        theirs.step()
        assert all(torch.equal(a, b) for a, b in zip(ours_net.parameters(), torch_net.parameters()))
    assert len(ours.param_groups) == 2 and step.direct
    assert len(calls) == 1  # only the first step (which creates the state) went through torch


def test_direct_step_falls_back_where_it_would_differ():
    net, _ = _twin_networks()
    opt = torch.optim.Adam(net.parameters(), fused=True)
    step = OptimizerStep(opt)
    net(torch.ones(2, 4)).sum().backward()
    step()
    assert step._can_call_directly()
    net[2].bias.grad = None  # a parameter without gradient: torch skips it, so must we
    assert not step._can_call_directly()
    net(torch.ones(2, 4)).sum().backward()
    handle = opt.register_step_pre_hook(lambda *args: None)
    assert not step._can_call_directly()
    handle.remove()
    opt.load_state_dict(opt.state_dict())  # new state tensors: the direct step follows them
    assert step._can_call_directly() and step._state[0][1][0] is opt.state[net[0].weight]["exp_avg"]
    assert not OptimizerStep(torch.optim.Adam(net.parameters(), amsgrad=True, fused=True)).direct
    assert not OptimizerStep(torch.optim.SGD(net.parameters(), lr=0.1)).direct
