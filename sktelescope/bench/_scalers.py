"""Robust scaling with smooth clipping, RealMLP's input preprocessing (Holzmüller et al. 2024).

Each column is centred by its median and divided by its interquartile range (half its range
where the IQR is zero, e.g. a mostly-constant or binary column; constant columns become 0),
then squashed smoothly: ``x / sqrt(1 + (x / 3)**2)``, which is the identity near 0 and tends
to ±3 for outliers. Unlike a quantile transform it keeps the order *and* the spacing of the
bulk of the data, and unlike standardisation a single outlier cannot compress everything else.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

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
        self.center_ = np.median(X, axis=0)
        spread = np.quantile(X, 0.75, axis=0) - np.quantile(X, 0.25, axis=0)
        half_range = 0.5 * (X.max(axis=0) - X.min(axis=0))
        spread = np.where(spread == 0.0, half_range, spread)
        self.scale_ = np.divide(1.0, spread, out=np.zeros_like(spread), where=spread > 0)
        return self

    def transform(self, X):
        """Scale and smoothly clip ``X``."""
        check_is_fitted(self, "scale_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        scaled = (X - self.center_) * self.scale_
        return scaled / np.sqrt(1.0 + (scaled / 3.0) ** 2)
