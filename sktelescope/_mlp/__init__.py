"""The scikit-learn layer: the two estimators, their stages, and their fitted run."""

from sktelescope._mlp._classifier import TelescopingMLPClassifier
from sktelescope._mlp._regressor import TelescopingMLPRegressor
from sktelescope._mlp._run import TrainingRun
from sktelescope._mlp._stages import Stage

__all__ = ["Stage", "TelescopingMLPClassifier", "TelescopingMLPRegressor", "TrainingRun"]
