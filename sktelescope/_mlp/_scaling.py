"""Input scaling of the estimators (``input_scaling``): standard, robust, quantile.

Learnt once on the training inputs of the first fit, then applied to every input the run
sees (``TrainingRun.inputs``), so the network, its stages and the lens all work in the same
scaled units:

- ``"standard"``: ``(X - mean) / std`` (a constant column keeps scale 1);
- ``"robust"``: RealMLP's preprocessing (Holzmüller et al. 2024): each column centred by
  its median and divided by its interquartile range (half its range where the IQR is
  zero, e.g. a mostly-constant or binary column; constant columns become 0), then squashed
  smoothly by ``x / sqrt(1 + (x / 3)²)``, the identity near 0 tending to ±3 for outliers.
  It keeps the order *and* the spacing of the bulk of the data, and a single outlier cannot
  compress everything else;
- ``"quantile"``: each column mapped through its empirical quantiles to a standard normal
  (scikit-learn's ``QuantileTransformer``, up to 1,000 quantiles); constant columns
  become 0.

The benchmark's :class:`~sktelescope.bench._scalers.RobustSmoothClipScaler` is the same
robust math as a scikit-learn transformer (:func:`robust_center_scale`, :func:`smooth_clip`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import QuantileTransformer

from sktelescope._checks import standardisation

__all__ = [
    "INPUT_SCALINGS",
    "InputScaling",
    "fit_input_scaling",
    "robust_center_scale",
    "smooth_clip",
]

#: The values of the estimators' ``input_scaling`` parameter.
INPUT_SCALINGS = ("standard", "robust", "quantile")

# Beyond this magnitude x / sqrt(1 + (x/3)²) is ±3 to float64 precision, and (x/3)² could
# overflow: the clip is written as its limit there.
_CLIP_LIMIT = 1e100


def robust_center_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column medians and the multipliers ``1 / IQR`` of the centred columns.

    Where the IQR is zero the multiplier is ``2 / range``; for constant columns it is 0.

    Examples
    --------
    >>> robust_center_scale(np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]))
    (array([1.5, 5. ]), array([0.66666667, 0.        ]))
    """
    center = np.median(X, axis=0)
    spread = np.quantile(X, 0.75, axis=0) - np.quantile(X, 0.25, axis=0)
    half_range = 0.5 * (X.max(axis=0) - X.min(axis=0))
    spread = np.where(spread == 0.0, half_range, spread)
    scale = np.divide(1.0, spread, out=np.zeros_like(spread), where=spread > 0)
    return center, scale


def smooth_clip(x: np.ndarray) -> np.ndarray:
    """``x / sqrt(1 + (x / 3)²)``: the identity near 0, tending to ±3.

    Examples
    --------
    >>> smooth_clip(np.array([0.0, 3.0, 1e300])).round(4).tolist()
    [0.0, 2.1213, 3.0]
    """
    with np.errstate(over="ignore"):
        clipped = x / np.sqrt(1.0 + (x / 3.0) ** 2)
    return np.where(np.abs(x) > _CLIP_LIMIT, 3.0 * np.sign(x), clipped)


class InputScaling:
    """Base class: a scaling of the raw features learnt at fit time.

    ``transform`` maps float64 features to float64 network inputs; it may produce
    non-finite values for inputs far outside the training data (the run's ``inputs``
    refuses them).
    """

    method: str = ""

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled copy of the float64 array ``X``."""
        raise NotImplementedError


@dataclass
class StandardScaling(InputScaling):
    """``(X - mean) / scale``.

    Examples
    --------
    >>> StandardScaling(np.array([1.0]), np.array([2.0])).transform(np.array([[5.0]]))
    array([[2.]])
    """

    mean: np.ndarray
    scale: np.ndarray
    method = "standard"

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale


@dataclass
class RobustScaling(InputScaling):
    """``smooth_clip((X - center) * scale)`` (see :func:`robust_center_scale`).

    Examples
    --------
    >>> RobustScaling(np.array([0.0]), np.array([1.0])).transform(np.array([[3.0]])).round(4)
    array([[2.1213]])
    """

    center: np.ndarray
    scale: np.ndarray
    method = "robust"

    def transform(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return smooth_clip((X - self.center) * self.scale)


class QuantileScaling(InputScaling):
    """Empirical quantiles to a standard normal; constant training columns map to 0.

    Examples
    --------
    >>> X = np.column_stack([np.arange(5.0), np.ones(5)])
    >>> QuantileScaling(X).transform(X)[2].tolist()
    [0.0, 0.0]
    """

    method = "quantile"

    def __init__(self, X: np.ndarray) -> None:
        self.transformer = QuantileTransformer(
            output_distribution="normal", n_quantiles=min(1000, len(X)), random_state=0
        ).fit(X)
        quantiles = self.transformer.quantiles_
        self.constant = quantiles[0] == quantiles[-1]

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = self.transformer.transform(X)
        out[:, self.constant] = 0.0
        return out


def fit_input_scaling(X: np.ndarray, method: str = "standard") -> InputScaling:
    """The ``input_scaling=method`` scaling learnt on the training inputs ``X`` (float64).

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [100.0]])
    >>> fit_input_scaling(X, "robust").transform(X).ravel().round(3).tolist()
    [-0.949, -0.493, 0.0, 0.493, 2.994]
    """
    if method == "standard":
        return StandardScaling(*standardisation(X, "X"))
    if method == "robust":
        return RobustScaling(*robust_center_scale(X))
    if method == "quantile":
        return QuantileScaling(X)
    raise ValueError(f"input_scaling must be one of {list(INPUT_SCALINGS)}, got {method!r}.")
