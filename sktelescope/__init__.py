"""sktelescope: scikit-learn MLPs seen through the telescoping lens (arXiv 2411.00247).

A trained network is its initial function plus one small update per optimizer step;
sktelescope exposes that run as a boosting-like ensemble of stages.
"""

from sktelescope._mlp import TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._stages import Stage

__version__ = "0.1.0.dev0"

__all__ = ["Stage", "TelescopingMLPClassifier", "TelescopingMLPRegressor", "__version__"]
