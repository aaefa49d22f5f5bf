"""Robust scaling with smooth clipping, RealMLP's input preprocessing (Holzmüller et al. 2024),
as a scikit-learn transformer for the benchmark's pipelines.

The math is the estimators' own ``input_scaling="robust"`` (``sktelescope._mlp``):
each column is centred by its median and divided by its interquartile range (half its range
where the IQR is zero; constant columns become 0), then squashed smoothly by
``x / sqrt(1 + (x / 3)**2)``, the identity near 0 tending to ±3 for outliers.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from sktelescope._mlp import robust_center_scale, smooth_clip

__all__ = ["RobustSmoothClipScaler"]


class RobustSmoothClipScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Median / IQR scaling followed by the smooth clip ``x / sqrt(1 + (x / 3)²)``.

    Attributes
    ----------
    center_ : ndarray of shape (n_features,)
        Column medians.
    scale_ : ndarray of shape (n_features,)
        Multiplier of each centred column: ``1 / IQR`` (``2 / range`` where the IQR is zero,
        0 for constant columns).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [100.0]])
    >>> RobustSmoothClipScaler().fit_transform(X).ravel().round(3).tolist()
    [-0.949, -0.493, 0.0, 0.493, 2.994]
    """

    def fit(self, X, y=None):
        """Learn the medians and scales of ``X``'s columns."""
        X = validate_data(self, X, dtype=np.float64)
        self.center_, self.scale_ = robust_center_scale(X)
        return self

    def transform(self, X):
        """Scale and smoothly clip ``X``."""
        check_is_fitted(self, "scale_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return smooth_clip((X - self.center_) * self.scale_)
