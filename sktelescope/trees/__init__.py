"""Gradient-boosted trees through the telescoping lens.

A boosted ensemble is its initial prediction plus one tree per round. Each tree is a kernel
smoother of the pseudo-residuals ``r = -dl/df`` of the round (PAPER.md §2c): the contribution of
round k at ``x`` is ``sum_i w_k(x, x_i) r_ik`` with ``w_k(x, x_i) = eta * 1{same leaf} / D``,
where ``D`` is the leaf's hessian sum plus the L2 leaf penalty (the leaf size under squared
error). :class:`TreeTelescope` gives a fitted XGBoost, LightGBM or scikit-learn booster the same
surface as the telescoping networks: ``stages_``, ``staged_predict``, ``telescope`` and per-stage
kernels, plus smoother matrices and effective parameters under squared loss.

What is exact and what is not
-----------------------------
``telescope`` / ``staged_predict`` / ``stage.predict`` read the library's own leaf values, so
they are exact (float32 round-off for XGBoost). ``stage.weights(X) @ stage.pseudo_residuals``
equals ``stage.predict(X)`` exactly (float32 round-off for XGBoost, LightGBM and
HistGradientBoosting, which compute gradients in float32) unless the library did something a
smoother cannot express: row subsampling, L1 leaf penalties, ``max_delta_step`` clipping.
Those are listed in ``TreeTelescope.approximations_``; :meth:`TreeTelescope.reconstruction_errors`
measures the effect. Only squared error and binary log-loss are supported; only squared error
gives a linear smoother ``S y + c``.

Per library (D is the leaf normaliser, eta the learning rate):

* scikit-learn ``GradientBoosting*``: float64 throughout, exact. D = leaf size (squared error,
  the leaf mean of residuals) or hessian sum (log-loss, one Newton step). ``subsample < 1`` is
  approximate (in-bag rows are not stored). ``n_iter_no_change`` with an int ``random_state``:
  the internal validation split is re-drawn and its points get zero weight.
* scikit-learn ``HistGradientBoosting*``: read from private predictors (no public leaf API).
  D = hessian sum + ``l2_regularization`` + 1e-15; gradients in float32. The internal
  early-stopping split is re-drawn from ``_random_seed``; categorical features are refused.
* XGBoost: D = hessian sum + ``reg_lambda``; leaves and sums in float32. The telescope ends at
  ``best_iteration + 1`` after early stopping, as ``predict`` does. Approximate with
  ``subsample < 1``, ``reg_alpha > 0`` or ``max_delta_step > 0``.
* LightGBM: D = hessian sum + ``reg_lambda``; leaves float64, gradients float32. The initial
  score (``boost_from_average``) is folded by LightGBM into the first tree; it is recomputed
  from ``y_train`` and split back out into column 0. Approximate with bagging, GOSS,
  ``reg_alpha``, ``max_delta_step`` or ``path_smooth``.

Sample weights are not supported (the weights view would need them as inputs).
"""

from sktelescope.trees._smoother import TreeSmoother
from sktelescope.trees._stage import TreeStage
from sktelescope.trees._telescope import TreeTelescope

__all__ = ["TreeSmoother", "TreeStage", "TreeTelescope"]
