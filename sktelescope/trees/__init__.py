"""Gradient-boosted trees through the telescoping lens.

A boosted ensemble is its initial prediction plus one tree per round. Each tree is a kernel
smoother of the pseudo-residuals ``r = -dl/df`` of the round (:ref:`math-gbt-smoother`):
the contribution of round k at ``x`` is ``sum_i w_k(x, x_i) r_ik`` with
``w_k(x, x_i) = eta * 1{same leaf} / D``,
where ``D`` is the leaf's hessian sum plus the L2 leaf penalty (the leaf size under squared
error). :class:`TreeTelescope` gives a fitted XGBoost, LightGBM or scikit-learn booster the same
surface as the telescoping networks: ``stages_``, ``staged_predict``, ``telescope`` and per-stage
kernels on the shared stage protocol (:class:`TreeStage`: 1-based ``steps``,
``predict(X, linear=...)``, dense ``kernel(X, Z=None)``, ``kernel_row_norms(X, Z=None)``), plus
smoother matrices (:class:`TreeSmoother`) and effective parameters under squared loss.

What is checked
---------------
A booster does not keep its training data, so :class:`TreeTelescope` checks the ``X_train``
and ``y_train`` it is given against what the booster keeps: the pseudo-residuals of
``y_train`` on ``X_train`` must rebuild the library's initial prediction, its leaf sizes (where
stored) and every leaf value, with the library's own leaf formula (L1 soft-thresholding,
``max_delta_step`` clipping, LightGBM path smoothing included), to the library's float
precision; otherwise it raises ``ValueError`` saying what did not match. Where the trees saw
unstored random subsets of the rows, the check is approximate and ``approximations_`` says so.
Every ``X``, ``Z`` or ``X_eval`` is checked against the model's feature count (and column
names, for a DataFrame); NaN and infinity are accepted where the library's own prediction
accepts them (XGBoost, LightGBM, HistGradientBoosting) and refused where it does not
(GradientBoosting). ``X_train`` and ``y_train`` are copied.

What is exact and what is not
-----------------------------
``telescope`` / ``staged_predict`` / ``stage.predict`` read the library's own leaf values, so
they are exact (float32 round-off for XGBoost). ``stage.weights(X) @ stage.pseudo_residuals``
equals ``stage.predict(X)`` exactly (float32 round-off for XGBoost, LightGBM and
HistGradientBoosting, which compute gradients in float32) unless the library did something a
smoother cannot express: row subsampling, L1 leaf penalties, ``max_delta_step`` clipping,
path smoothing. Those are listed in ``TreeTelescope.approximations_`` (with a warning);
:meth:`TreeTelescope.reconstruction_errors` measures the effect. Only squared error and binary
log-loss are supported; only squared error gives a linear smoother ``S y + c``.

Per library (D is the leaf normaliser, eta the learning rate):

* scikit-learn ``GradientBoosting*``: float64 throughout, exact. D = leaf size (squared error,
  the leaf mean of residuals) or hessian sum (log-loss, one Newton step). ``subsample < 1`` is
  approximate (in-bag rows are not stored). ``n_iter_no_change`` with an int ``random_state``:
  the internal validation split is re-drawn and its points get zero weight; without one the
  split cannot be re-drawn, which is approximate.
* scikit-learn ``HistGradientBoosting*``: read from private predictors (no public leaf API).
  D = hessian sum + ``l2_regularization`` + 1e-15; gradients in float32. The internal
  early-stopping split is re-drawn from ``_random_seed``.
* XGBoost: D = hessian sum + ``reg_lambda``; leaves, training scores and labels in float32
  (the pseudo-residuals are recomputed the same way). The telescope ends at
  ``best_iteration + 1`` after early stopping, as ``predict`` does. Approximate with
  ``subsample < 1``, ``reg_alpha > 0`` or ``max_delta_step > 0``.
* LightGBM: D = hessian sum + ``reg_lambda``; leaves float64, labels and gradients float32.
  The initial score (``boost_from_average``) is folded by LightGBM into the first tree; it is
  recomputed from ``y_train`` and split back out into column 0. Approximate with bagging,
  GOSS, ``reg_alpha``, ``max_delta_step`` or ``path_smooth``.

What is refused
---------------
Configurations whose leaf values are not a (documented approximately) weighted sum of the
pseudo-residuals of ``y_train``, each with a ``ValueError`` (``TypeError`` for unsupported
model classes or XGBoost boosters) that names the parameter:

* every library: losses other than squared error and binary log-loss, multi-class and
  multi-target models, categorical features, models fitted with ``sample_weight`` (or
  XGBoost ``base_margin``, LightGBM ``init_score``: they fail the data check);
* XGBoost: ``scale_pos_weight != 1``, ``booster`` other than ``"gbtree"`` (``dart`` rescales
  trees), ``num_parallel_tree > 1``, ``monotone_constraints`` (leaves clipped to bounds);
* LightGBM: ``boosting_type`` ``"dart"`` or ``"rf"``, ``reg_sqrt=True``, ``is_unbalance``,
  ``scale_pos_weight != 1``, ``sigmoid != 1``, ``linear_tree``, ``monotone_constraints``,
  ``use_quantized_grad`` without ``quant_train_renew_leaf``;
* HistGradientBoosting: ``monotonic_cst``, ``class_weight``.
"""

from sktelescope.trees._smoother import TreeSmoother
from sktelescope.trees._stage import TreeStage
from sktelescope.trees._telescope import TreeTelescope

__all__ = ["TreeSmoother", "TreeStage", "TreeTelescope"]
