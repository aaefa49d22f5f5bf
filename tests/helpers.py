"""Helpers shared by the test modules (``import helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch.func import jacrev, vmap

from sktelescope._core.network import forward_flat

ROOT = Path(__file__).resolve().parents[1]


def gaussian_inputs(n: int = 120, d: int = 4, seed: int = 0) -> np.ndarray:
    """Standard normal inputs, shape (n, d)."""
    return np.random.default_rng(seed).normal(size=(n, d))


def smooth_regression(n: int = 96, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs and a smooth non-linear target with a little noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.tanh(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    return X, y


def network_inputs(X: np.ndarray) -> np.ndarray:
    """``X`` standardised as the estimators do it, through float32 as the network sees it."""
    Xs = (X - X.mean(0)) / X.std(0)
    return Xs.astype(np.float32).astype(np.float64)


def reference_jacobian(module, flat: torch.Tensor, X: torch.Tensor, output: int = 0):
    """Per-example gradients of one output w.r.t. the flat parameters from torch.func, (N, p)."""

    def f(p, x):
        return forward_flat(module, p, x[None])[0, output]

    return vmap(jacrev(f), in_dims=(None, 0))(flat, X)


def assert_stage_kernels_are_jacobian_products(stage, net, X, Xt) -> None:
    """``stage.kernel`` on ``X`` (network inputs ``Xt``), plain and preconditioned, equals
    the torch.func Jacobian products of ``net`` at the stage's start parameters."""
    J = reference_jacobian(net, stage.start_parameters.double(), Xt, 0)
    np.testing.assert_allclose(stage.kernel(X), (J @ J.T).numpy(), rtol=1e-4, atol=1e-5)
    P = stage.preconditioner.double()
    np.testing.assert_allclose(stage.kernel(X, preconditioned=True),
                               ((J * P) @ J.T).numpy(), rtol=1e-4, atol=1e-4)  # fmt: skip


def run_python(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """A fresh interpreter on this checkout (nothing imported yet), in the repository root."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
