"""Kernel extremity: how far test kernel weights exceed anything seen in training.

PAPER.md §2d: with ``k_t(x)`` the row of stage ``t``'s kernel against the training inputs,

    R = [(1/T) Σ_t max_{x ∈ X_test} ||k_t(x)||₂] / [(1/T) Σ_t max_{x ∈ X_train} ||k_t(x)||₂].

``R > 1`` means some test input receives larger kernel weights than any training input
did. The same function serves networks (``TelescopingMLPRegressor/Classifier``) and boosted
trees (``sktelescope.trees.TreeTelescope``): anything with ``stages_``.

Which network kernel
--------------------
For a network stage the row is the plain tangent kernel at the stage's start against all
training inputs, ``k(x) = [∇f(x)·∇f(x_1), ..., ∇f(x)·∇f(x_n)]`` (in the network's
standardised units), without the batch mask, ``1/|B|`` or learning rate of the per-step
kernel ``K^θ_t``: a stage spans many steps whose batches together cover the training set,
and ``1/|B|`` and ``γ`` are constants that cancel in ``R``. ``preconditioned=True`` inserts
Adam's diagonal preconditioner at the stage start. Tree stages use their own normalised
leaf kernel (``TreeStage.kernel_row_norms``), bounded by 1 under squared error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state

from sktelescope.lens.kernels import tangent_kernel_nbytes, tangent_kernel_row_norms

__all__ = ["KernelExtremity", "kernel_extremity_ratio", "kernel_row_norms", "max_row_norms"]

#: Default working-memory budget of one network kernel-row computation: 2 GiB.
DEFAULT_MAX_MEMORY_BYTES = 2 * 1024**3


def kernel_row_norms(
    stage,
    X,
    X_train=None,
    *,
    preconditioned: bool = False,
    chunk_size: int = 512,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
) -> np.ndarray:
    """``||k(x)||₂``: norm of each input's kernel row against the training inputs.

    Parameters
    ----------
    stage : Stage or tree stage
        A network stage (``est.stages_[k]``) or any object with ``kernel_row_norms(X)``
        (``TreeTelescope.stages_[k]``), to which the call is delegated.
    X : array-like of shape (n_samples, n_features)
    X_train : array-like of shape (n_train, n_features)
        The kernel's columns, required for network stages; tree stages use the points
        their telescope was built on and ignore it.
    preconditioned : bool, default=False
        Network stages only: include Adam's preconditioner at the stage start.
    chunk_size : int, default=512
        Rows of ``X`` per block.
    max_memory_bytes : int, default=2 GiB
        Refuse (``ValueError``) a network computation whose working memory, estimated by
        :func:`~sktelescope.lens.kernels.tangent_kernel_nbytes`, exceeds this.

    Returns
    -------
    norms : ndarray of shape (n_samples,)
        Network stages: in squared standardised-output units; trees: weights per unit
        pseudo-residual. Only ratios within one model family are meaningful.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=2,
    ...                               random_state=0).fit(X, y)
    >>> kernel_row_norms(est.stages_[0], X[:4], X).shape
    (4,)
    """
    from sktelescope._stages import Stage  # here: _stages itself imports lens.kernels

    if not isinstance(stage, Stage):
        if not hasattr(stage, "kernel_row_norms"):
            raise TypeError(
                f"{type(stage).__name__} is neither a network Stage nor a stage with "
                "kernel_row_norms(X) (as TreeTelescope's stages have)."
            )
        return np.asarray(stage.kernel_row_norms(X), dtype=np.float64)
    if X_train is None:
        raise ValueError("Network stages need X_train: the kernel rows run over training inputs.")
    pre = stage.preconditioner if preconditioned else None
    if preconditioned and pre is None:
        raise ValueError(
            f"Stage {stage.index} has no Adam preconditioner (SGD run, or the stage starts "
            "before the first step). Use preconditioned=False."
        )
    flat = stage.start_parameters  # float32: the parameters' own precision, for speed
    Xt, Zt = stage._to_network(X).to(flat), stage._to_network(X_train).to(flat)
    module = stage._store.module
    _check_memory(module, len(Xt), len(Zt), pre is not None, chunk_size, max_memory_bytes)
    pre = None if pre is None else pre.to(flat)
    with torch.no_grad():
        norms = tangent_kernel_row_norms(module, flat, Xt, Zt, pre, chunk_size)
    return norms.double().cpu().numpy()


def _check_memory(module, n_x, n_z, preconditioned, chunk_size, budget) -> None:
    need = tangent_kernel_nbytes(module, n_x, n_z, preconditioned, chunk_size)
    if need > budget:
        raise ValueError(
            f"Kernel rows against {n_z} training inputs need about {need / 2**20:,.0f} MiB of "
            f"working memory, over max_memory_bytes={budget / 2**20:,.0f} MiB. Lower "
            "chunk_size, subsample the training inputs (max_train_samples=), or raise "
            "max_memory_bytes."
        )


def max_row_norms(model, X, X_train=None, **kwargs) -> np.ndarray:
    """Largest kernel-row norm over ``X`` at each stage of ``model``.

    Parameters
    ----------
    model : fitted TelescopingMLP* estimator or TreeTelescope (anything with ``stages_``)
    X : array-like of shape (n_samples, n_features)
    X_train : array-like, optional
        Kernel columns (networks; see :func:`kernel_row_norms`).
    **kwargs
        Passed to :func:`kernel_row_norms`.

    Returns
    -------
    maxima : ndarray of shape (n_stages,)

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> stage = SimpleNamespace(kernel_row_norms=lambda X: np.abs(X[:, 0]))
    >>> max_row_norms(SimpleNamespace(stages_=[stage]), np.array([[1.0], [-3.0]]))
    array([3.])
    """
    return np.array([kernel_row_norms(s, X, X_train, **kwargs).max() for s in _stages(model)])


def _stages(model) -> list:
    stages = getattr(model, "stages_", None)
    if stages is None:
        if hasattr(model, "fit"):
            raise NotFittedError(
                f"This {type(model).__name__} instance has no stages_: fit it first, or wrap "
                "a fitted booster in sktelescope.trees.TreeTelescope."
            )
        raise TypeError(f"Expected a model with stages_, got {type(model).__name__}.")
    if len(stages) == 0:
        raise ValueError("The model has no stages; train it for at least one step.")
    return list(stages)


@dataclass
class KernelExtremity:
    """Result of :func:`kernel_extremity_ratio`.

    Attributes
    ----------
    ratio : float
        ``R = mean(test_max) / mean(train_max)``.
    test_max, train_max : ndarray of shape (n_stages,)
        Largest kernel-row norm over the test and the training inputs at each stage.
    """

    ratio: float
    test_max: np.ndarray
    train_max: np.ndarray


def kernel_extremity_ratio(
    model,
    X_train,
    X_test,
    *,
    max_train_samples: int | None = None,
    random_state=None,
    **kwargs,
) -> KernelExtremity:
    """Kernel-extremity ratio ``R`` of ``model`` on ``X_test`` (PAPER.md §2d).

    Parameters
    ----------
    model : fitted TelescopingMLP* estimator or TreeTelescope (anything with ``stages_``)
    X_train : array-like of shape (n_train, n_features)
        The training inputs (the kernel's columns for networks, and the points whose
        largest row norm forms the denominator).
    X_test : array-like of shape (n_test, n_features)
    max_train_samples : int, optional
        Use a random subset of this many training inputs, both as kernel columns
        (networks) and for the denominator's maximum. Cost of a network stage is
        ``O((n_test + n_train) * n_train * width)``; subsampling keeps large datasets
        tractable at the price of an approximate maximum.
    random_state : int, RandomState instance or None
        Draws the subset.
    **kwargs
        ``preconditioned``, ``chunk_size``, ``max_memory_bytes`` of :func:`kernel_row_norms`.

    Returns
    -------
    result : KernelExtremity

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=80, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=3,
    ...                               random_state=0).fit(X[:60], y[:60])
    >>> res = kernel_extremity_ratio(est, X[:60], X[60:])
    >>> res.train_max.shape == (est.n_stages_,), res.ratio > 0
    (True, True)
    """
    X_train = np.asarray(X_train)
    if max_train_samples is not None and max_train_samples < len(X_train):
        rows = check_random_state(random_state).choice(len(X_train), max_train_samples, False)
        X_train = X_train[np.sort(rows)]
    test_max = max_row_norms(model, X_test, X_train, **kwargs)
    train_max = max_row_norms(model, X_train, X_train, **kwargs)
    return KernelExtremity(float(test_max.mean() / train_max.mean()), test_max, train_max)
