"""Layer-structured tangent kernels checked against torch.func Jacobians.

The reference is ``J diag(P) Jᵀ`` with ``J`` from ``vmap(jacrev(...))`` over the flat
parameter vector; everything runs in float64 so tolerances stay tight.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import assert_stage_kernels_are_jacobian_products, reference_jacobian
from sklearn.datasets import make_regression

from sktelescope import TelescopingMLPRegressor
from sktelescope._core.kernels import (
    tangent_kernel,
    tangent_kernel_nbytes,
    tangent_kernel_row_norms,
)
from sktelescope._core.network import build_mlp, flatten_parameters
from sktelescope._core.optim import applied_preconditioner

RTOL = 1e-10


def _net(activation="relu", sizes=(7, 5), n_in=4, n_out=1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return build_mlp(n_in, sizes, n_out, activation, generator=gen).double()


def _inputs(n, d=4, seed=1):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "selu", "mish", "identity"])
def test_plain_kernel_matches_jacobian_product(activation):
    net = _net(activation)
    flat = flatten_parameters(net)
    X, Z = _inputs(9), _inputs(6, seed=2)
    expected = reference_jacobian(net, flat, X, 0) @ reference_jacobian(net, flat, Z, 0).T
    got = tangent_kernel(net, flat, X, Z)
    assert got.shape == (9, 6)
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=RTOL)


def test_kernel_with_z_none_is_symmetric_gram():
    net = _net("tanh")
    flat = flatten_parameters(net)
    X = _inputs(8)
    J = reference_jacobian(net, flat, X, 0)
    torch.testing.assert_close(tangent_kernel(net, flat, X), J @ J.T, rtol=RTOL, atol=RTOL)


def test_multi_output_kernels_match_each_output():
    net = _net("gelu", n_out=3)
    flat = flatten_parameters(net)
    X, Z = _inputs(5), _inputs(4, seed=3)
    all_outputs = tangent_kernel(net, flat, X, Z)
    assert all_outputs.shape == (3, 5, 4)
    for k in range(3):
        expected = reference_jacobian(net, flat, X, k) @ reference_jacobian(net, flat, Z, k).T
        torch.testing.assert_close(all_outputs[k], expected, rtol=RTOL, atol=RTOL)
        torch.testing.assert_close(tangent_kernel(net, flat, X, Z, output=k), expected)


def _adam_run(optimizer_cls, n_steps=5, **kwargs):
    """Train a small float64 net for a few steps; return it, the optimizer and a closure."""
    net = _net("relu")
    opt = optimizer_cls(net.parameters(), lr=1e-2, betas=(0.9, 0.99), **kwargs)
    X, y = _inputs(16), _inputs(16, d=1, seed=5)

    def step():
        opt.zero_grad()
        (0.5 * (net(X) - y).pow(2)).mean().backward()
        opt.step()

    for _ in range(n_steps):
        step()
    return net, opt, step


def _first_moment_hat(opt):
    parts = []
    for group in opt.param_groups:
        beta1 = group["betas"][0]
        for p in group["params"]:
            state = opt.state[p]
            parts.append((state["exp_avg"] / (1 - beta1 ** float(state["step"]))).reshape(-1))
    return torch.cat(parts)


@pytest.mark.parametrize(
    "optimizer_cls, weight_decay",
    [(torch.optim.Adam, 0.0), (torch.optim.AdamW, 0.1)],
)
def test_adam_update_is_minus_lr_preconditioner_times_first_moment(optimizer_cls, weight_decay):
    net, opt, step = _adam_run(optimizer_cls, weight_decay=weight_decay)
    before = flatten_parameters(net)
    step()
    delta = flatten_parameters(net) - before
    lr = opt.param_groups[0]["lr"]
    expected = -lr * applied_preconditioner(opt) * _first_moment_hat(opt)
    if optimizer_cls is torch.optim.AdamW:
        expected = expected - lr * weight_decay * before  # decoupled decay
    torch.testing.assert_close(delta, expected, rtol=1e-9, atol=1e-14)


def test_preconditioned_kernel_matches_jacobian_with_adam_state():
    net, opt, _ = _adam_run(torch.optim.Adam)
    flat = flatten_parameters(net)
    P = applied_preconditioner(opt)
    assert not torch.allclose(P, P.mean().expand_as(P))  # a real, non-constant preconditioner
    X, Z = _inputs(7), _inputs(5, seed=4)
    expected = (reference_jacobian(net, flat, X, 0) * P) @ reference_jacobian(net, flat, Z, 0).T
    for chunk in (3, 256):  # blocks over X and Z must not change the result
        got = tangent_kernel(net, flat, X, Z, preconditioner=P, chunk_size=chunk)
        torch.testing.assert_close(got, expected, rtol=RTOL, atol=RTOL)


def test_row_norms_match_full_kernel_norms():
    net = _net("tanh", n_out=2)
    flat = flatten_parameters(net)
    P = torch.rand(flat.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    X, Z = _inputs(11), _inputs(6, seed=7)
    for pre in (None, P):
        full = tangent_kernel(net, flat, X, Z, preconditioner=pre)
        expected = full.pow(2).sum(dim=(0, 2)).sqrt()
        got = tangent_kernel_row_norms(net, flat, X, Z, preconditioner=pre, chunk_size=4)
        torch.testing.assert_close(got, expected, rtol=RTOL, atol=RTOL)


def test_nbytes_grows_with_reference_set_and_preconditioner():
    net = build_mlp(20, (256, 256), 1)
    plain = tangent_kernel_nbytes(net, 2000, 256)
    # inputs and norms, signals of Z and of one chunk (hidden inputs + every layer's
    # backward signal), a chunk's construction and 4 kernel blocks (this chunk's 3 and the
    # previous chunk's rows); tests/test_memory.py pins such estimates to measured peaks
    signals, building = 256 + 256 + (256 + 256 + 1), 513 + 2 * 256
    blocks = 4 * 512 * 256
    assert plain == 4 * ((2000 + 256) * 21 + (256 + 512) * signals + 512 * building + blocks)
    assert tangent_kernel_nbytes(net, 2000, 512) > plain
    assert tangent_kernel_nbytes(net, 2000, 256, preconditioned=True) > plain


def _linear_estimator(optimizer="sgd"):
    X, y = make_regression(n_samples=60, n_features=3, noise=1.0, random_state=0)
    X = X * np.array([1.0, 10.0, 0.1]) + 5.0  # standardisation must matter
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(), optimizer=optimizer, batch_size=16, max_iter=3,
        n_iter_no_change=None, max_stages=3, early_stopping=False, random_state=0, preset="paper"
    ).fit(X, y)  # fmt: skip
    return est, X


def test_linear_stage_kernel_is_inner_product_plus_one_in_standardised_inputs():
    est, X = _linear_estimator()
    Xs = (X - X.mean(0)) / X.std(0)
    for stage in est.stages_:
        np.testing.assert_allclose(stage.kernel(X[:8], X[10:15]), Xs[:8] @ Xs[10:15].T + 1.0,
                                   rtol=1e-5, atol=1e-5)  # fmt: skip


def test_linear_stage_preconditioned_kernel_is_weighted_inner_product():
    est, X = _linear_estimator("adam")
    Xs = (X - X.mean(0)) / X.std(0)
    stage = est.stages_[1]
    P = stage.preconditioner.double().numpy()  # order: weight (1, 3), then bias
    expected = (Xs[:8] * P[:3]) @ Xs[10:15].T + P[3]
    np.testing.assert_allclose(stage.kernel(X[:8], X[10:15], preconditioned=True), expected,
                               rtol=1e-5)  # fmt: skip


def test_stage_kernel_of_hidden_network_matchesreference_jacobian():
    X, y = make_regression(n_samples=80, n_features=4, random_state=1)
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(16, 8), max_iter=4, batch_size=20, n_iter_no_change=None,
        max_stages=2, early_stopping=False, random_state=0, preset="paper"
    ).fit(X, y)  # fmt: skip
    stage = est.stages_[1]
    Xt = est.run_.inputs(X[:6])
    net = build_mlp(4, (16, 8), 1).double()
    assert_stage_kernels_are_jacobian_products(stage, net, X[:6], Xt)
