"""The estimators' network options (embeddings, feature scale, dropout) -> an Architecture.

Kept apart from ``_base.py`` so that the estimator only names the options: their
constraints, their translation into :class:`~sktelescope._core.architecture.Architecture`
(learning-rate factors become parameter scales for the chosen optimizer) and the inputs
the piecewise-linear embedding fits its bins on live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from sktelescope._core.architecture import Architecture
from sktelescope._core.layers import lr_scale
from sktelescope._core.optim import OPTIMIZERS
from sktelescope._mlp._presets import AUTO, AUTO_OPTION
from sktelescope._mlp._scaling import InputScaling

__all__ = ["NETWORK_OPTION_CONSTRAINTS", "embedding_inputs", "network_architecture"]

NETWORK_OPTION_CONSTRAINTS: dict = {
    "numerical_embedding": [StrOptions({"plr", "pbld", "ple", AUTO}), None],
    "embedding_dim": [Interval(Integral, 1, None, closed="left"), None],
    "embedding_frequencies": [Interval(Integral, 1, None, closed="left")],
    "embedding_sigma": [Interval(Real, 0, None, closed="neither")],
    "embedding_bins": [Interval(Integral, 1, None, closed="left")],
    "embedding_lr_factor": [Interval(Real, 0, None, closed="neither")],
    "feature_scaling": ["boolean", AUTO_OPTION],
    "feature_scaling_lr_factor": [Interval(Real, 0, None, closed="neither")],
    "dropout": [Interval(Real, 0, 1, closed="left"), AUTO_OPTION],
}


def network_architecture(params: Mapping) -> Architecture:
    """The :class:`Architecture` an estimator's resolved parameters ask for (its
    ``get_params()`` with the preset's ``"auto"`` values filled in).

    Examples
    --------
    >>> from sktelescope import TelescopingMLPRegressor
    >>> paper = TelescopingMLPRegressor(preset="paper").get_resolved_params()
    >>> network_architecture(paper).is_plain, network_architecture(paper).dropout
    (True, 0.0)
    >>> sgd = TelescopingMLPRegressor(optimizer="sgd", feature_scaling=True,
    ...                               feature_scaling_lr_factor=4.0)
    >>> network_architecture(sgd.get_resolved_params()).scaling_lr_scale  # SGD: α² as far
    2.0
    """
    adaptive = OPTIMIZERS[params["optimizer"]].adaptive
    return Architecture(
        embedding=params["numerical_embedding"],
        embedding_dim=params["embedding_dim"],
        n_frequencies=params["embedding_frequencies"],
        sigma=params["embedding_sigma"],
        n_bins=params["embedding_bins"],
        embedding_lr_scale=lr_scale(params["embedding_lr_factor"], adaptive),
        feature_scaling=bool(params["feature_scaling"]),
        scaling_lr_scale=lr_scale(params["feature_scaling_lr_factor"], adaptive),
        dropout=float(params["dropout"]),
    )


def embedding_inputs(architecture: Architecture, X, scaling: InputScaling) -> torch.Tensor | None:
    """The training inputs as the network sees them (scaled by ``scaling``, the run's input
    scaling, float32), when the embedding needs them ("ple" fits its bins on them); else
    ``None``.

    Examples
    --------
    >>> from sktelescope._mlp._scaling import StandardScaling
    >>> X, scaling = np.array([[1.0], [3.0]]), StandardScaling(np.array([2.0]), np.array([1.0]))
    >>> embedding_inputs(Architecture(embedding="ple"), X, scaling)
    tensor([[-1.],
            [ 1.]])
    """
    if architecture.embedding != "ple":
        return None
    return torch.as_tensor(np.asarray(scaling.transform(X)), dtype=torch.float32)
