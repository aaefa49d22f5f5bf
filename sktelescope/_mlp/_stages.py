"""A stage of a fitted network: a block of consecutive optimizer steps, seen as boosting."""

from __future__ import annotations

import numpy as np
import torch

from sktelescope._core.kernels import (
    tangent_kernel,
    tangent_kernel_nbytes,
    tangent_kernel_row_norms,
)
from sktelescope._core.network import forward_stacked, linearised_increment
from sktelescope._staged import StageBase

__all__ = ["Stage"]

#: Default working-memory budget of one kernel-row computation: 2 GiB.
DEFAULT_MAX_MEMORY_BYTES = 2 * 1024**3


class Stage(StageBase):
    """One block of optimizer steps of a fitted network, seen as a boosting stage.

    ``predict(X)`` is the exact contribution ``f_k(X) - f_{k-1}(X)`` in prediction units
    (regression targets un-standardised; classifiers in decision-function units).
    Obtain stages from a fitted estimator's ``stages_``; do not build them directly.

    Attributes
    ----------
    steps : range
        The optimizer steps the stage covers (1-based counts, like ``n_steps_``).
    index : int
        Position of the stage in ``stages_``.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=64, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), max_iter=3,
    ...                               random_state=0).fit(X, y)
    >>> stage = est.stages_[0]
    >>> stage.predict(X[:2]).shape, stage.kernel(X[:2], X[:5]).shape
    ((2,), (2, 5))
    """

    def __init__(self, run, index: int) -> None:
        store = run.checkpoints
        super().__init__(index, range(store.steps[index] + 1, store.steps[index + 1] + 1))
        self._run = run

    @property
    def start_parameters(self) -> torch.Tensor:
        """Flat parameters at the start of the stage, shape (n_params,)."""
        return self._run.checkpoints.flats[self.index]

    @property
    def end_parameters(self) -> torch.Tensor:
        """Flat parameters at the end of the stage, shape (n_params,)."""
        return self._run.checkpoints.flats[self.index + 1]

    @property
    def preconditioner(self) -> torch.Tensor | None:
        """The diagonal preconditioner the stage's first optimizer step applied.

        Adam/AdamW divide each coordinate's step by ``sqrt(v̂) + ε``; this is
        ``1 / (sqrt(v̂) + ε)`` exactly as step ``steps[0]`` used it (its own gradient and
        bias correction included), 0 for coordinates that had never received a gradient.
        ``None`` for SGD. Later steps of a multi-step stage apply slightly different
        diagonals: use one-step stages (``stage_every=1``) where that matters.
        """
        return self._run.checkpoints.preconditioner(self.index)

    def predict(self, X, linear: bool = False) -> np.ndarray:
        """Contribution of this stage to the prediction on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        linear : bool, default=False
            If True, the first-order contribution ``∇f_{k-1}(X) · Δθ_k`` (one JVP)
            instead of the exact difference ``f_k(X) - f_{k-1}(X)``.

        Returns
        -------
        contribution : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        Xt = self._run.inputs(X)
        start, end = self.start_parameters.to(Xt), self.end_parameters.to(Xt)
        module = self._run.module
        if linear:
            delta = linearised_increment(module, start, end - start, Xt)
        else:
            both = forward_stacked(module, torch.stack([start, end]), Xt)
            delta = both[1] - both[0]
        return self._run.outputs(delta, shift=False)

    def _preconditioner_or_raise(self, preconditioned: bool) -> torch.Tensor | None:
        if not preconditioned:
            return None
        if self.preconditioner is None:
            raise ValueError(
                f"Stage {self.index} has no preconditioner: the run used SGD, which applies "
                "none. Use preconditioned=False."
            )
        return self.preconditioner

    def kernel(self, X, Z=None, output: int | None = None, preconditioned: bool = False):
        """Tangent kernel ``∇f(X)·∇f(Z)`` at the start of the stage.

        The kernel of the evaluation network (with dropout: no masks, on either side); a
        training step with dropout smooths with ``∇f(X)·∇f_mask(Z)`` instead, its own masks
        on its batch (:func:`sktelescope.lens.dropout_masks`).

        Parameters
        ----------
        X, Z : array-like of shape (n, n_features) and (m, n_features); ``Z=None`` uses X.
        output : int, optional
            Network output (multi-output models); default all outputs.
        preconditioned : bool, default=False
            Insert the diagonal preconditioner the stage's first step applied
            (Adam/AdamW; see :attr:`preconditioner`); SGD has none and raises.

        Returns
        -------
        kernel : ndarray of shape (n, m), or (n_outputs, n, m) for several outputs
        """
        pre = self._preconditioner_or_raise(preconditioned)
        Xt = self._run.inputs(X)
        Zt = None if Z is None else self._run.inputs(Z, name="Z")
        pre = None if pre is None else pre.to(Xt)
        k = tangent_kernel(self._run.module, self.start_parameters.to(Xt), Xt, Zt, output, pre)
        return _finite(k.detach(), "kernel")

    def kernel_row_norms(
        self,
        X,
        Z=None,
        *,
        preconditioned: bool = False,
        chunk_size: int = 512,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    ) -> np.ndarray:
        """``||k(x, Z)||_2`` for each row of ``X``, without forming ``kernel(X, Z)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Z : array-like of shape (n_z, n_features)
            The kernel's columns: rows of the data the model was fitted on (others are
            refused; use :meth:`kernel` for a kernel between any points). A network stage
            does not keep its training inputs, so ``Z`` is required.
        preconditioned : bool, default=False
            Include the preconditioner the stage's first step applied.
        chunk_size : int, default=512
            Rows of ``X`` per block.
        max_memory_bytes : int, default=2 GiB
            Refuse (``ValueError``) a computation whose working memory would exceed this.

        Returns
        -------
        norms : ndarray of shape (n_samples,)
            In squared standardised-output units (several outputs: the Frobenius norm).
        """
        if Z is None:
            raise ValueError(
                "Network stages need Z, the kernel's columns (normally the training inputs): "
                "a fitted network does not keep its training data."
            )
        pre = self._preconditioner_or_raise(preconditioned)
        flat = self.start_parameters  # float32: the parameters' own precision, for speed
        Xt = self._run.inputs(X, flat.dtype).to(flat)
        Zt = self._run.scaled(self._run.check_training_inputs(Z, "Z"), flat.dtype, "Z").to(flat)
        _check_memory(self._run.module, len(Xt), len(Zt), pre is not None, chunk_size,
                      max_memory_bytes)  # fmt: skip
        pre = None if pre is None else pre.to(flat)
        with torch.no_grad():
            norms = tangent_kernel_row_norms(self._run.module, flat, Xt, Zt, pre, chunk_size)
        return _finite(norms.double(), "kernel row norms (float32)")


def _finite(values: torch.Tensor, what: str) -> np.ndarray:
    """``values`` as a CPU array, or a ValueError when they overflowed."""
    if not torch.isfinite(values).all():
        raise ValueError(
            f"The stage's {what} overflowed on these inputs: some lie too far outside the "
            "training data (their squared activations exceed the floating-point range). "
            "Check their units, or clip them to the training range."
        )
    return values.cpu().numpy()


def _check_memory(module, n_x, n_z, preconditioned, chunk_size, budget) -> None:
    need = tangent_kernel_nbytes(module, n_x, n_z, preconditioned, chunk_size)
    if need > budget:
        raise ValueError(
            f"Kernel rows against {n_z} points need about {need / 2**20:,.0f} MiB of working "
            f"memory, over max_memory_bytes={budget / 2**20:,.0f} MiB. Lower chunk_size, use "
            "fewer columns (a subsample of the training inputs), or raise max_memory_bytes."
        )
