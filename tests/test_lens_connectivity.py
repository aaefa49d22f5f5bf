"""Gradient change between checkpoints, interpolation barriers, spawning and weight averaging."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from torch.func import functional_call, jacrev, vmap

from sktelescope import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._core.network import flatten_parameters, forward_flat, unflatten_parameters
from sktelescope.lens import (
    evaluate_parameters,
    gradient_change,
    interpolate,
    layer_gradient_change,
    spawn_children,
    weight_average,
)
from sktelescope.lens._connectivity import _replay_to, _train_child
from sktelescope.lens._subject import resolve


def _regressor(hidden=(16, 8), n=96, **kw):
    X, y = make_regression(n_samples=n, n_features=4, noise=2.0, random_state=0)
    params = dict(
        hidden_layer_sizes=hidden,
        optimizer="sgd",
        learning_rate=0.05,
        momentum=0.9,
        batch_size=16,
        max_iter=5,
        n_iter_no_change=None,
        max_stages=5,
        early_stopping=False,
        random_state=0,
    )
    params.update(kw)  # fmt: skip
    return TelescopingMLPRegressor(**params, preset="paper").fit(X, y), X, y


def _classifier(**kw):
    X, y = make_classification(n_samples=120, n_features=5, n_informative=3, n_classes=3,
                               random_state=0)  # fmt: skip
    params = dict(
        hidden_layer_sizes=(16,),
        optimizer="adam",
        learning_rate=1e-2,
        batch_size=32,
        max_iter=6,
        n_iter_no_change=None,
        max_stages=3,
        random_state=0,
    )
    params.update(kw)  # fmt: skip
    return TelescopingMLPClassifier(**params, preset="paper").fit(X, y), X, y


# ------------------------------------------------------------ gradient change
def _per_layer_reference(module, flat_a, flat_b, X, output):
    """Per-example gradients from torch.func; per-layer mean squared difference."""

    def f(params, x):
        return functional_call(module, params, (x[None],))[0, output]

    grads = [vmap(jacrev(f), in_dims=(None, 0))(unflatten_parameters(module, fl), X)
             for fl in (flat_a, flat_b)]  # fmt: skip
    out = []
    for name, layer in module.named_children():
        if isinstance(layer, torch.nn.Linear):
            diff = [(grads[1][f"{name}.{p}"] - grads[0][f"{name}.{p}"]).reshape(len(X), -1)
                    for p in ("weight", "bias")]  # fmt: skip
            out.append(torch.cat(diff, dim=1).pow(2).mean())
    return torch.stack(out)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_layer_gradient_change_matches_torch_func(activation):
    gen = torch.Generator().manual_seed(0)
    from sktelescope._core.network import build_mlp

    net = build_mlp(4, (9, 7), 2, activation, generator=gen).double()
    a = flatten_parameters(net)
    b = a + 0.3 * torch.randn(a.shape, generator=gen, dtype=torch.float64)
    X = torch.randn(13, 4, generator=gen, dtype=torch.float64)
    both = torch.stack([_per_layer_reference(net, a, b, X, k) for k in range(2)])
    for k in range(2):
        torch.testing.assert_close(layer_gradient_change(net, a, b, X, output=k), both[k],
                                   rtol=1e-9, atol=1e-14)  # fmt: skip
    torch.testing.assert_close(layer_gradient_change(net, a, b, X), both.mean(0), rtol=1e-9,
                               atol=1e-14)  # fmt: skip


def test_gradient_change_of_fitted_estimator_uses_its_checkpoints():
    est, X, _ = _regressor()
    res = gradient_change(est, X[:20], lag=2)
    store, module = est.run_.checkpoints, copy.deepcopy(est.run_.module).double()
    assert res.values.shape == (len(store.flats) - 2, 3)
    np.testing.assert_array_equal(res.steps_from, store.steps[:-2])
    np.testing.assert_array_equal(res.steps_to, store.steps[2:])
    Xs = torch.as_tensor((X[:20] - X.mean(0)) / X.std(0))
    for row, i in zip(res.values, range(len(store.flats) - 2)):
        ref = _per_layer_reference(module, store.flats[i].double(),
                                   store.flats[i + 2].double(), Xs, 0)  # fmt: skip
        np.testing.assert_allclose(row, ref.numpy(), rtol=1e-7)
    assert np.all(res.values > 0)
    pairs = gradient_change(est, X[:20], checkpoint_pairs=[(0, 0), (1, 3)])
    np.testing.assert_array_equal(pairs.values[0], 0.0)
    np.testing.assert_allclose(pairs.values[1], res.values[1])
    with pytest.raises(ValueError, match="lag"):
        gradient_change(est, X, lag=len(store.flats))


# -------------------------------------------------------------- interpolation
def test_barrier_of_identical_endpoints_is_zero_and_endpoints_are_own_losses():
    est, X, y = _classifier()
    theta_a = est.run_.checkpoints.flats[-1]
    theta_b = est.run_.checkpoints.flats[1]
    res = interpolate(est, X, y, theta_a, theta_a, n_points=7)
    assert res.barrier == 0.0
    np.testing.assert_array_equal(res.losses, res.losses[0])
    res = interpolate(est, X, y, theta_a, theta_b)
    assert res.alphas.shape == res.losses.shape == (30,)
    loss_a, acc_a = evaluate_parameters(est, X, y, theta_a)
    loss_b, acc_b = evaluate_parameters(est, X, y, theta_b)
    assert res.losses[-1] == pytest.approx(loss_a, rel=1e-12)  # alpha = 1 is theta_a
    assert res.losses[0] == pytest.approx(loss_b, rel=1e-12)
    assert acc_a == est.score(X, y)  # the final checkpoint is the fitted model
    assert (res.accuracies[-1], res.accuracies[0]) == (acc_a, acc_b)


def test_loss_along_the_line_matches_estimator_loss_for_multiclass_log_loss():
    est, X, y = _classifier()
    proba = est.predict_proba(X)
    log_loss = -np.mean(np.log(proba[np.arange(len(y)), np.searchsorted(est.classes_, y)]))
    loss, _ = evaluate_parameters(est, X, y, est.run_.checkpoints.flats[-1])
    assert loss == pytest.approx(log_loss, rel=1e-6)


def test_linear_model_squared_loss_is_convex_along_the_line_closed_form():
    est, X, y = _regressor(hidden=())
    flats = est.run_.checkpoints.flats
    theta_a, theta_b = flats[-1].double(), flats[0].double()
    res = interpolate(est, X, y, theta_a, theta_b, n_points=11)
    Xs = torch.as_tensor((X - X.mean(0)) / X.std(0))
    module = copy.deepcopy(est.run_.module).double()
    fa, fb = forward_flat(module, theta_a, Xs), forward_flat(module, theta_b, Xs)
    half_msd = 0.5 * float((fa - fb).pow(2).mean())
    a = res.alphas
    np.testing.assert_allclose(res.losses - res.losses_avg, -a * (1 - a) * half_msd,
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    assert res.barrier <= 1e-12 and res.accuracies is None
    y_std = (y - y.mean()) / y.std()
    assert res.losses[0] == pytest.approx(0.5 * np.mean((fb.numpy()[:, 0] - y_std) ** 2))


def test_weight_average_and_errors():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, 6.0])
    torch.testing.assert_close(weight_average([a, b]), torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(weight_average(torch.stack([a, b]), [3, 1]),
                               torch.tensor([1.0, 3.0]))  # fmt: skip
    with pytest.raises(ValueError, match="non-negative"):
        weight_average([a, b], [1, -1])
    est, X, y = _regressor()
    with pytest.raises(ValueError, match="parameters"):
        interpolate(est, X, y, a, b)


# ------------------------------------------------------------------- spawning
def _point(est, X, y, step):
    """The parent's trainer replayed up to ``step``."""
    return _replay_to(resolve(est), X, y, step, None, None)


def test_replay_is_bit_identical_to_the_parent_run():
    est, X, y = _regressor()
    k = 2  # a stage boundary: the parent stored its parameters there
    point = _point(est, X, y, est.run_.checkpoints.steps[k])
    assert torch.equal(flatten_parameters(point.module), est.run_.checkpoints.flats[k])


def test_child_with_parents_batch_order_retraces_the_parent():
    est, X, y = _regressor(optimizer="adam", lr_schedule="cosine", warmup_steps=3)
    steps_per_epoch = 6  # 96 samples, batches of 16
    point = _point(est, X, y, 2 * steps_per_epoch)  # an epoch boundary
    gen = torch.Generator()
    gen.set_state(point.generator.get_state())  # the parent's own data order from here on
    final = _train_child(point, est.n_steps_, gen)
    assert torch.equal(final, est.run_.checkpoints.flats[-1])


def test_spawned_children_differ_only_by_data_order():
    est, X, y = _regressor(max_iter=4)
    res = spawn_children(est, X, y, spawn_step=7, n_children=3, seeds=[5, 6, 5])
    assert res.spawn_step == 7 and res.n_steps == est.n_steps_ == 24
    assert res.children.shape == (3, res.spawn_parameters.numel())
    assert torch.equal(res.children[0], res.children[2])  # same seed, same child
    assert torch.equal(res.spawn_parameters, flatten_parameters(_point(est, X, y, 7).module))
    assert not torch.equal(res.children[0], res.children[1])
    avg = weight_average(res.children[:2])
    line = interpolate(est, X, y, res.children[0], res.children[1])
    mid = evaluate_parameters(est, X, y, avg)[0]
    assert line.losses.min() <= mid <= line.losses.max()


@pytest.mark.parametrize("step", [1, 8])  # not a checkpoint, and one
def test_spawn_refuses_other_data_at_any_spawn_step(step):
    est, X, y = _regressor(max_stages=3)
    assert (step in est.run_.checkpoints.steps) == (step == 8)
    for bad_X, bad_y in [(X + 1e-3, y), (X, y[::-1].copy())]:
        with pytest.raises(ValueError, match="fitted on other data"):
            spawn_children(est, bad_X, bad_y, spawn_step=step, n_children=1)


def test_spawn_from_a_default_fit_with_early_stopping():
    est, X, y = _regressor(random_state=None, early_stopping=True, n_iter_no_change=2)
    res = spawn_children(est, X, y, spawn_step=1)
    assert res.n_steps == est.best_step_ < est.n_steps_ or res.n_steps == est.n_steps_
    k = 1
    point = _point(est, X, y, est.run_.checkpoints.steps[k])
    assert torch.equal(flatten_parameters(point.module), est.run_.checkpoints.flats[k])


def test_spawn_after_an_epoch_that_early_stopping_does_not_keep():
    """When the replay ends, early stopping restores its best epoch into the trainer: the
    spawn point must still be the parent at the spawn step (seed 1: the best epoch before
    step 8 ended at step 6, and children used to start from there)."""
    est, X, y = _regressor(random_state=1, early_stopping=True, n_iter_no_change=2)
    k = est.run_.checkpoints.steps.index(8)
    point = _point(est, X, y, 8)
    assert point.step == 8 and point.module.training
    assert torch.equal(flatten_parameters(point.module), est.run_.checkpoints.flats[k])
    res = spawn_children(est, X, y, spawn_step=8)
    assert torch.equal(res.spawn_parameters, est.run_.checkpoints.flats[k])


def test_spawn_refuses_what_it_cannot_replay():
    est, X, y = _regressor()
    with pytest.raises(ValueError, match="spawn_step"):
        spawn_children(est, X, y, spawn_step=est.best_step_)
    with pytest.raises(ValueError, match="max_bytes"):
        spawn_children(est, X, y, spawn_step=1, n_children=10**9)
    est.set_params(warm_start=True, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="one fit"):
        spawn_children(est, X, y, spawn_step=1)
