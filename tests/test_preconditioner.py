"""The kernel of a stage is the kernel its step applied: the one-step telescoping identity.

For one-step stages of full-batch training with squared loss (and no momentum, β₁ = 0 for
Adam), the first-order contribution of a stage is exactly the kernel smoother of the
residuals before it: ``∇f(x)·Δθ = −γ/n · K(x, X_train) · (f(X_train) − y)``, with ``K`` the
plain tangent kernel for SGD and the preconditioned one for Adam/AdamW, plus the weight
decay term: ``−γ ∇f(x)·(P λ ⊙ θ)`` for coupled decay (SGD, Adam: ``λθ`` joins the gradient,
so the preconditioner ``P`` acts on it) and ``−γ ∇f(x)·(λ ⊙ θ)`` for AdamW's decoupled
decay, with ``λ`` per coordinate (0 on the biases with ``weight_decay_biases=False``).
The options that change the step's rate but not its form (schedules, β₂, input scaling)
must keep the identity too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression

from sktelescope import TelescopingMLPRegressor
from sktelescope._core.network import linearised_increment
from sktelescope._core.optim import learning_rate_factor

CASES = {
    "sgd": dict(optimizer="sgd", learning_rate=1e-2),
    "adam": dict(optimizer="adam", learning_rate=1e-3),
    "adamw": dict(optimizer="adamw", learning_rate=1e-3, weight_decay=0.1),
    # the optimisation options of issue 18
    "sgd-decay-weights-only": dict(optimizer="sgd", learning_rate=1e-2, weight_decay=0.5,
                                   weight_decay_biases=False),
    "adam-decay-weights-only": dict(optimizer="adam", learning_rate=1e-3, weight_decay=0.5,
                                    weight_decay_biases=False),
    "adamw-decay-weights-only": dict(optimizer="adamw", learning_rate=1e-3, weight_decay=0.1,
                                     weight_decay_biases=False),
    "adam-decay-all": dict(optimizer="adam", learning_rate=1e-3, weight_decay=0.5),
    "adam-coslog4-beta2": dict(optimizer="adam", learning_rate=1e-3, lr_schedule="coslog4",
                               beta_2=0.95),
    "adamw-flat-cosine-robust": dict(optimizer="adamw", learning_rate=1e-3, weight_decay=0.1,
                                     lr_schedule="flat_cosine", input_scaling="robust"),
    "sgd-quantile": dict(optimizer="sgd", learning_rate=1e-2, input_scaling="quantile"),
    # the default network (its dropout's masked step kernel: tests/test_network_options.py)
    "tabular-preset": dict(preset="tabular", learning_rate=1e-3, dropout=0.0),
}  # fmt: skip


def _one_step_run(params, X, y):
    return TelescopingMLPRegressor(
        (16,), momentum=0.0, beta_1=0.0, batch_size=None, max_iter=6, stage_every=1,
        max_stages=10, early_stopping=False, n_iter_no_change=None, random_state=0,
        **{"preset": "paper", **params},
    ).fit(X, y)  # fmt: skip


def _decay_per_coordinate(est) -> torch.Tensor:
    """``λ`` of every coordinate in flat order (0 on biases unless they are decayed)."""
    wd, keep = est.weight_decay, est.weight_decay_biases
    return torch.cat([
        torch.full((p.numel(),), 0.0 if name.endswith("bias") and not keep else wd)
        for name, p in est.module_.named_parameters()
    ]).double()  # fmt: skip


def _kernel_smoother_step(est, k, X, y, lr):
    """``−γ/n K (f − y)`` plus the decay term in prediction units, from stage ``k``'s kernel
    and preconditioner (``γ`` the step's scheduled rate)."""
    run, stage = est.run_, est.stages_[k]
    adaptive, decoupled = est.optimizer != "sgd", est.optimizer == "adamw"
    before = est.telescope(X)[:, : k + 1].sum(axis=1)
    t_scale = run.scaling.t_scale[0]
    residual = (before - y) / t_scale
    step = -lr / len(X) * stage.kernel(X, X, preconditioned=adaptive) @ residual
    if est.weight_decay:
        theta = stage.start_parameters.double()
        direction = _decay_per_coordinate(est) * theta
        if adaptive and not decoupled:
            direction = direction * stage.preconditioner.reshape(-1).double()
        decay = linearised_increment(run.module, theta, -lr * direction, run.inputs(X))
        step = step + decay[:, 0].numpy()
    return step * t_scale


@pytest.mark.parametrize("case", sorted(CASES))
def test_first_order_stage_is_the_kernel_smoother_the_step_applied(case):
    X, y = make_regression(n_samples=60, n_features=4, noise=5.0, random_state=0)
    X[:2] *= 30.0  # outliers, for the robust and quantile scalings to differ from standard
    params = CASES[case]
    est = _one_step_run(params, X, y)
    rates = [
        params["learning_rate"]
        * learning_rate_factor(s, est.n_steps_, est.resolved_params_["lr_schedule"])
        for s in range(1, est.n_steps_ + 1)
    ]
    for k, stage in enumerate(est.stages_):
        linear = stage.predict(X, linear=True)
        expected = _kernel_smoother_step(est, k, X, y, rates[k])
        np.testing.assert_allclose(expected, linear, rtol=0, atol=1e-4 * np.abs(linear).max())


def test_decay_of_the_biases_is_part_of_the_identity():
    """The same run with and without decaying the biases: the identity that leaves the
    biases' decay out fails on the run that had it (the check can fail)."""
    X, y = make_regression(n_samples=60, n_features=4, noise=5.0, random_state=0)
    params = dict(CASES["adamw-decay-weights-only"], weight_decay=2.0, learning_rate=1e-2)
    decayed = _one_step_run(dict(params, weight_decay_biases=True), X, y)
    decayed.weight_decay_biases = False  # the identity now leaves the biases' decay out
    gaps = []
    for k, stage in enumerate(decayed.stages_[:3]):
        linear = stage.predict(X, linear=True)
        expected = _kernel_smoother_step(decayed, k, X, y, params["learning_rate"])
        gaps.append(np.abs(expected - linear).max() / np.abs(linear).max())
    assert max(gaps) > 1e-2


def test_a_coordinate_never_moved_gets_no_weight():
    X, y = make_regression(n_samples=60, n_features=4, noise=5.0, random_state=0)
    X[:, 2] = 7.0  # constant: standardised to 0, so its first-layer weights get no gradient
    est = _one_step_run(CASES["adam"], X, y)
    pre = est.stages_[0].preconditioner.reshape(-1)
    weights_of_column = torch.arange(16) * 4 + 2  # first layer weight (16, 4), column 2
    assert torch.all(pre[weights_of_column] == 0)
    assert torch.all(torch.isfinite(pre)) and pre.max() < 1e6
