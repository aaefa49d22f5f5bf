"""The scikit-learn layer: the two estimators, their stages, and their fitted run.

This package's face is what the lens and the benchmark read: the estimators, their base
class, the fitted :class:`TrainingRun` (``est.run_``) with its :class:`FitRecord` s,
:class:`Stage`, and the input scaling's math (which the benchmark's robust scaler reuses).
"""

from sktelescope._mlp._base import BaseTelescopingMLP
from sktelescope._mlp._classifier import TelescopingMLPClassifier
from sktelescope._mlp._fits import DataDigest, FitRecord
from sktelescope._mlp._regressor import TelescopingMLPRegressor
from sktelescope._mlp._run import TrainingRun
from sktelescope._mlp._scaling import robust_center_scale, smooth_clip
from sktelescope._mlp._stages import Stage

__all__ = [
    "BaseTelescopingMLP",
    "DataDigest",
    "FitRecord",
    "Stage",
    "TelescopingMLPClassifier",
    "TelescopingMLPRegressor",
    "TrainingRun",
    "robust_center_scale",
    "smooth_clip",
]
