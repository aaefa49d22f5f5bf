"""sktelescope: scikit-learn MLPs seen through the telescoping lens (arXiv 2411.00247).

A trained network is its initial function plus one small update per optimizer step;
sktelescope exposes that run as a boosting-like ensemble of stages.
"""

from sktelescope._mlp import Stage, TelescopingMLPClassifier, TelescopingMLPRegressor
from sktelescope._version import __version__

__all__ = ["Stage", "TelescopingMLPClassifier", "TelescopingMLPRegressor", "__version__"]
