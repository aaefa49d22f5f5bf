"""The fitted booster that the one-line docstring examples of ``sktelescope.trees`` share."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor

from sktelescope.trees._telescope import TreeTelescope


def diabetes_telescope() -> tuple[TreeTelescope, np.ndarray, np.ndarray]:
    """``GradientBoostingRegressor(n_estimators=10, max_depth=2)`` on diabetes, telescoped.

    Returns
    -------
    telescope : TreeTelescope
        Built on all 442 rows the model was fitted on (10 stages, squared error).
    X : ndarray of shape (442, 10)
    y : ndarray of shape (442,)

    Examples
    --------
    >>> tel, X, y = diabetes_telescope()
    >>> tel.n_stages_, X.shape
    (10, (442, 10))
    """
    X, y = load_diabetes(return_X_y=True)
    model = GradientBoostingRegressor(n_estimators=10, max_depth=2, random_state=0).fit(X, y)
    return TreeTelescope(model, X, y), X, y
