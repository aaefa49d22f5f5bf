"""One boosting round as a kernel smoother: the :class:`TreeStage` of ``sktelescope.trees``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from sktelescope.trees._spec import leaf_indicator

if TYPE_CHECKING:
    from sktelescope.trees import TreeTelescope


class TreeStage:
    """One boosting round seen as a kernel smoother of that round's pseudo-residuals.

    Created by :class:`TreeTelescope`; not meant to be built directly.

    Attributes
    ----------
    steps : range
        ``range(k, k + 1)``: the 0-based boosting round this stage covers.
    pseudo_residuals : ndarray of shape (n_train,)
        ``-dl/df`` at the raw training predictions before this round.
    hessians : ndarray of shape (n_train,)
        ``d2l/df2`` at the same predictions (1 under squared error).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> from sktelescope.trees import TreeTelescope
    >>> tel = TreeTelescope(GradientBoostingRegressor(n_estimators=5).fit(X, y), X, y)
    >>> stage = tel.stages_[2]
    >>> bool(np.allclose(stage.weights(X[:3]) @ stage.pseudo_residuals, stage.predict(X[:3])))
    True
    """

    def __init__(
        self,
        telescope: TreeTelescope,
        k: int,
        residuals: np.ndarray,
        hessians: np.ndarray,
        leaves_train: np.ndarray,
    ) -> None:
        self._tel = telescope
        self._k = k
        self.steps = range(k, k + 1)
        self.pseudo_residuals = residuals
        self.hessians = hessians
        spec = telescope._spec
        self._values = spec.leaf_values[k]
        n_leaves = max(self._values.shape[0], int(leaves_train.max()) + 1)
        self._train_indicator = leaf_indicator(leaves_train, n_leaves, spec.fit_mask)
        self._leaf_count = np.asarray(self._train_indicator.sum(axis=0)).ravel()
        hess_sum = self._train_indicator.T @ hessians
        denom = hess_sum + spec.reg_lambda
        with np.errstate(divide="ignore"):
            self._inv_denominator = np.where(denom > 0, 1.0 / np.where(denom > 0, denom, 1), 0.0)

    def __repr__(self) -> str:
        return f"TreeStage(round={self._k})"

    def _leaves(self, X) -> np.ndarray:
        return self._tel._leaves(X)[:, self._k]

    def predict(self, X) -> np.ndarray:
        """Contribution of this round to the raw prediction (learning rate included).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> from sktelescope.trees import TreeTelescope
        >>> model = GradientBoostingRegressor(n_estimators=2).fit(X, y)
        >>> stage = TreeTelescope(model, X, y).stages_[1]
        >>> stage.predict(X[:2]).shape
        (2,)
        """
        return self._values[self._leaves(X)]

    def _indicator(self, X) -> sparse.csr_array:
        return leaf_indicator(self._leaves(X), self._train_indicator.shape[1])

    def kernel(self, X, Z) -> sparse.csr_array:
        """Leaf co-membership kernel ``1{leaf(x) = leaf(z)} / D(leaf(x))``, sparse.

        ``D`` is the hessian sum of the leaf's training points plus the L2 leaf penalty, i.e.
        the leaf size under squared error without penalty, so that ``kernel(X, X_fit)`` over the
        points the trees were fitted on is the paper's ``K_h`` (rows summing to 1). The learning
        rate is not included (see :meth:`weights`).

        Returns
        -------
        scipy.sparse.csr_array of shape (len(X), len(Z))
            Use ``.toarray()`` for a dense matrix.
        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> from sktelescope.trees import TreeTelescope
        >>> model = GradientBoostingRegressor(n_estimators=2).fit(X, y)
        >>> stage = TreeTelescope(model, X, y).stages_[1]
        >>> K = stage.kernel(X[:3], X)
        >>> K.shape, bool(np.allclose(K.sum(axis=1), 1.0))
        ((3, 442), True)
        """
        scaled = self._indicator(X) @ sparse.diags_array(self._inv_denominator)
        return sparse.csr_array(scaled @ self._indicator(Z).T)

    def weights(self, X) -> sparse.csr_array:
        """Weights on the training points: ``weights(X) @ pseudo_residuals == predict(X)``.

        ``w(x, x_i) = learning_rate * 1{same leaf} / D``, with the library's normalisation ``D``
        (leaf size; hessian sum plus ``reg_lambda`` / ``l2_regularization``); zero for training
        points the trees were not fitted on (internal early-stopping split).

        Returns
        -------
        scipy.sparse.csr_array of shape (len(X), n_train)
        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> from sktelescope.trees import TreeTelescope
        >>> model = GradientBoostingRegressor(n_estimators=2).fit(X, y)
        >>> stage = TreeTelescope(model, X, y).stages_[1]
        >>> W = stage.weights(X[:3])
        >>> bool(np.allclose(W @ stage.pseudo_residuals, stage.predict(X[:3])))
        True
        """
        scale = self._tel._spec.learning_rate * self._inv_denominator
        scaled = self._indicator(X) @ sparse.diags_array(scale)
        return sparse.csr_array(scaled @ self._train_indicator.T)

    def kernel_row_norms(self, X) -> np.ndarray:
        """``||k(x)||_2`` over the training points the trees were fitted on.

        This is what the kernel-extremity ratio of the lens compares across inputs.

        Under squared error without leaf penalty this is ``1 / sqrt(n_leaf(x))``, between
        ``1/sqrt(n)`` and 1 (PAPER.md §2c); a penalty ``lambda`` gives
        ``sqrt(n_leaf) / (n_leaf + lambda)``. Under log-loss ``D`` is a hessian sum and the
        norm is not bounded by 1.

        Returns
        -------
        ndarray of shape (len(X),)
        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from sklearn.ensemble import GradientBoostingRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> from sktelescope.trees import TreeTelescope
        >>> model = GradientBoostingRegressor(n_estimators=2).fit(X, y)
        >>> stage = TreeTelescope(model, X, y).stages_[1]
        >>> norms = stage.kernel_row_norms(X[:3])
        >>> bool(np.all((norms >= 1 / np.sqrt(len(X))) & (norms <= 1)))
        True
        """
        leaves = self._leaves(X)
        return np.sqrt(self._leaf_count[leaves]) * self._inv_denominator[leaves]
