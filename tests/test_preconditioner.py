"""The kernel of a stage is the kernel its step applied: the one-step telescoping identity.

For one-step stages of full-batch training with squared loss (and no momentum, β₁ = 0 for
Adam), the first-order contribution of a stage is exactly the kernel smoother of the
residuals before it: ``∇f(x)·Δθ = −γ/n · K(x, X_train) · (f(X_train) − y)``, with ``K`` the
plain tangent kernel for SGD and the preconditioned one for Adam/AdamW (plus the decoupled
decay term ``−γλ ∇f(x)·θ`` for AdamW).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression

from sktelescope import TelescopingMLPRegressor
from sktelescope._core.network import linearised_increment

CASES = [("sgd", 1e-2, 0.0), ("adam", 1e-3, 0.0), ("adamw", 1e-3, 0.1)]


def _one_step_run(optimizer, lr, weight_decay, X, y):
    return TelescopingMLPRegressor(
        (16,), optimizer=optimizer, learning_rate=lr, momentum=0.0, beta_1=0.0,
        weight_decay=weight_decay, batch_size=None, max_iter=6, stage_every=1, max_stages=10,
        early_stopping=False, n_iter_no_change=None, random_state=0,
    ).fit(X, y)  # fmt: skip


def _kernel_smoother_step(est, k, X, y, lr, weight_decay, adaptive):
    """``−γ/n K (f − y)`` (+ AdamW's decay term) in prediction units, from stage ``k``'s kernel."""
    run, stage = est.run_, est.stages_[k]
    before = est.telescope(X)[:, : k + 1].sum(axis=1)
    t_scale = run.scaling.t_scale[0]
    residual = (before - y) / t_scale
    step = -lr / len(X) * stage.kernel(X, X, preconditioned=adaptive) @ residual
    if weight_decay:
        theta = stage.start_parameters.double()
        decay = linearised_increment(run.module, theta, -lr * weight_decay * theta, run.inputs(X))
        step = step + decay[:, 0].numpy()
    return step * t_scale


@pytest.mark.parametrize(("optimizer", "lr", "weight_decay"), CASES)
def test_first_order_stage_is_the_kernel_smoother_the_step_applied(optimizer, lr, weight_decay):
    X, y = make_regression(n_samples=60, n_features=4, noise=5.0, random_state=0)
    est = _one_step_run(optimizer, lr, weight_decay, X, y)
    adaptive = optimizer != "sgd"
    for k, stage in enumerate(est.stages_):
        linear = stage.predict(X, linear=True)
        expected = _kernel_smoother_step(est, k, X, y, lr, weight_decay, adaptive)
        np.testing.assert_allclose(expected, linear, rtol=0, atol=1e-4 * np.abs(linear).max())


def test_a_coordinate_never_moved_gets_no_weight():
    X, y = make_regression(n_samples=60, n_features=4, noise=5.0, random_state=0)
    X[:, 2] = 7.0  # constant: standardised to 0, so its first-layer weights get no gradient
    est = _one_step_run("adam", 1e-3, 0.0, X, y)
    pre = est.stages_[0].preconditioner.reshape(-1)
    weights_of_column = torch.arange(16) * 4 + 2  # first layer weight (16, 4), column 2
    assert torch.all(pre[weights_of_column] == 0)
    assert torch.all(torch.isfinite(pre)) and pre.max() < 1e6
