"""One boosting round as a kernel smoother: :class:`TreeStage`, on the shared stage protocol."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse

from sktelescope._staged import StageBase
from sktelescope.trees._spec import BoosterSpec, leaf_indicator

#: ``leaves_of(X, name) -> ndarray (n_samples, n_stages)``: validated leaf ids of every round.
LeafFinder = Callable[[object, str], np.ndarray]


class TreeStage(StageBase):
    """One boosting round seen as a kernel smoother of that round's pseudo-residuals.

    Created by :class:`~sktelescope.trees.TreeTelescope` (``tel.stages_[k]``); not meant to be
    built directly. It follows the stage protocol that network stages follow
    (:class:`sktelescope._staged.StageLike`): ``steps``, ``predict(X, linear=...)``,
    ``kernel(X, Z=None)`` (a dense array) and ``kernel_row_norms(X, Z=None)``.

    Attributes
    ----------
    index : int
        ``k``, the position of this stage in ``stages_``.
    steps : range
        ``range(k + 1, k + 2)``: the 1-based boosting round this stage covers (network
        stages count optimizer steps from 1 the same way).
    pseudo_residuals : ndarray of shape (n_train,)
        ``-dl/df`` at the raw training predictions before this round (read-only).
    hessians : ndarray of shape (n_train,)
        ``d2l/df2`` at the same predictions, 1 under squared error (read-only).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> from sktelescope.trees import TreeTelescope
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = GradientBoostingRegressor(n_estimators=5, max_depth=2).fit(X, y)
    >>> stage = TreeTelescope(model, X, y).stages_[2]
    >>> stage
    TreeStage(index=2, steps=range(3, 4))
    >>> K = stage.kernel(X[:3], X)  # leaf co-membership over leaf size: rows sum to 1
    >>> K.shape, bool(np.allclose(K.sum(axis=1), 1.0))
    ((3, 442), True)
    >>> contribution = stage.weights(X[:3]) @ stage.pseudo_residuals
    >>> bool(np.allclose(contribution, stage.predict(X[:3])))
    True
    """

    def __init__(
        self,
        index: int,
        pseudo_residuals: np.ndarray,
        hessians: np.ndarray,
        leaves_train: np.ndarray,
        *,
        spec: BoosterSpec,
        fit_mask: np.ndarray,
        leaves_of: LeafFinder,
    ) -> None:
        super().__init__(index, range(index + 1, index + 2))
        self.pseudo_residuals = _read_only(pseudo_residuals)
        self.hessians = _read_only(hessians)
        self._leaves_of = leaves_of
        self._values = spec.leaf_values[index]
        self._learning_rate = spec.learning_rate
        n_leaves = max(self._values.shape[0], int(leaves_train.max()) + 1)
        self._train_indicator = leaf_indicator(leaves_train, n_leaves, fit_mask)
        self._leaf_count = np.asarray(self._train_indicator.sum(axis=0)).ravel()
        denominator = self._train_indicator.T @ hessians + spec.reg_lambda
        safe = np.where(denominator > 0, denominator, 1.0)
        self._inv_denominator = np.where(denominator > 0, 1.0 / safe, 0.0)

    def _leaves(self, X, name: str) -> np.ndarray:
        return self._leaves_of(X, name)[:, self.index]

    def _indicator(self, X, name: str) -> sparse.csr_array:
        return leaf_indicator(self._leaves(X, name), self._train_indicator.shape[1])

    def predict(self, X, linear: bool = False) -> np.ndarray:
        """Contribution of this round to the raw prediction (learning rate included).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        linear : bool, default=False
            Accepted for the stage protocol. A tree's contribution is already linear in its
            pseudo-residuals (``weights(X) @ pseudo_residuals``), so ``linear=True`` returns
            the same array.

        Returns
        -------
        contribution : ndarray of shape (n_samples,)
            This round's column of :meth:`TreeTelescope.telescope`, in raw-prediction units.

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> bool(np.array_equal(tel.stages_[1].predict(X, linear=True), tel.telescope(X)[:, 2]))
        True
        """
        return self._values[self._leaves(X, "X")]

    def kernel(self, X, Z=None, *, sparse_output: bool = False) -> np.ndarray | sparse.csr_array:
        """Leaf co-membership kernel ``1{leaf(x) = leaf(z)} / D(leaf(x))``.

        ``D`` is the hessian sum of the leaf's training points plus the L2 leaf penalty, i.e.
        the leaf size under squared error without penalty, so that ``kernel(X, X_fit)`` over
        the points the trees were fitted on is the paper's ``K_h`` (rows summing to 1). The
        learning rate is not included (see :meth:`weights`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Z : array-like of shape (n_columns, n_features), default=None
            The kernel's columns; ``None`` means ``Z = X``.
        sparse_output : bool, default=False
            Return a ``scipy.sparse.csr_array`` (one non-zero block per leaf) instead of a
            dense array, as network stages return.

        Returns
        -------
        K : ndarray or scipy.sparse.csr_array of shape (n_samples, n_columns)

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> tel.stages_[0].kernel(X[:3]).shape, tel.stages_[0].kernel(X[:3], X).shape
        ((3, 3), (3, 442))
        """
        left = self._indicator(X, "X")
        right = left if Z is None else self._indicator(Z, "Z")
        K = sparse.csr_array(left @ sparse.diags_array(self._inv_denominator) @ right.T)
        return K if sparse_output else K.toarray()

    def weights(self, X) -> sparse.csr_array:
        """Weights on the training points: ``weights(X) @ pseudo_residuals == predict(X)``.

        ``w(x, x_i) = learning_rate * 1{same leaf} / D``, with the library's normalisation ``D``
        (leaf size; hessian sum plus ``reg_lambda`` / ``l2_regularization``); zero for training
        points the trees were not fitted on (internal early-stopping split).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        W : scipy.sparse.csr_array of shape (n_samples, n_train)

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> stage = tel.stages_[4]
        >>> bool(np.allclose(stage.weights(X) @ stage.pseudo_residuals, stage.predict(X)))
        True
        """
        return self.weights_of_leaves(self._leaves(X, "X"))

    def weights_of_leaves(self, leaves: np.ndarray) -> sparse.csr_array:
        """:meth:`weights` of inputs that fall in the leaves ``leaves`` of this round's tree
        (their leaf ids, already validated; the telescope's own bookkeeping)."""
        indicator = leaf_indicator(leaves, self._train_indicator.shape[1])
        scaled = indicator @ sparse.diags_array(self._learning_rate * self._inv_denominator)
        return sparse.csr_array(scaled @ self._train_indicator.T)

    def kernel_row_norms(self, X, Z=None) -> np.ndarray:
        """Norms ``||k(x, .)||_2`` of the kernel's rows, without building the kernel.

        With ``Z=None`` the columns are the training points the trees were fitted on; this is
        what the kernel-extremity ratio of the lens compares across inputs. Under squared
        error without leaf penalty it is ``1 / sqrt(n_leaf(x))``, between ``1/sqrt(n)`` and 1
        (:ref:`math-gbt-smoother`); a penalty ``lambda`` gives
        ``sqrt(n_leaf) / (n_leaf + lambda)``. Under log-loss ``D`` is a hessian sum and
        the norm is not bounded by 1. With ``Z`` given, the norms of the rows of
        ``kernel(X, Z)``: ``sqrt(#Z in leaf(x)) / D(leaf(x))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Z : array-like of shape (n_columns, n_features), default=None

        Returns
        -------
        norms : ndarray of shape (n_samples,)
            Weight per unit pseudo-residual, before the learning rate.

        Examples
        --------
        >>> from sktelescope.trees._examples import diabetes_telescope
        >>> tel, X, y = diabetes_telescope()
        >>> float(tel.stages_[3].kernel_row_norms(X[:1])[0]) <= 1.0
        True
        """
        leaves = self._leaves(X, "X")
        if Z is None:
            counts = self._leaf_count
        else:
            counts = np.bincount(self._leaves(Z, "Z"), minlength=self._leaf_count.shape[0])
        return np.sqrt(counts[leaves]) * self._inv_denominator[leaves]


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array
