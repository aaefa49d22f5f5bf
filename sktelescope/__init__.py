"""sktelescope: scikit-learn MLPs seen through the telescoping lens (arXiv 2411.00247).

A trained network is its initial function plus one small update per optimizer step;
sktelescope exposes that run as a boosting-like ensemble of stages.

Public names resolve on first use (PEP 562), so ``import sktelescope`` and the
``sktelescope`` command stay fast and do not import torch until a network is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sktelescope._version import __version__

if TYPE_CHECKING:  # what static type checkers and IDEs see
    from sktelescope import bench, datasets, exceptions, lens, trees
    from sktelescope._mlp import (
        Stage,
        TelescopingMLPClassifier,
        TelescopingMLPRegressor,
        TrainingRun,
    )

# Public name -> module that defines it, imported on first attribute access.
_LAZY_NAMES: dict[str, str] = {
    "TelescopingMLPRegressor": "sktelescope._mlp",
    "TelescopingMLPClassifier": "sktelescope._mlp",
    "Stage": "sktelescope._mlp",
    "TrainingRun": "sktelescope._mlp",
}
_SUBMODULES: tuple[str, ...] = ("bench", "datasets", "exceptions", "lens", "trees")

__all__ = [
    "Stage",
    "TelescopingMLPClassifier",
    "TelescopingMLPRegressor",
    "TrainingRun",
    "__version__",
    "bench",
    "datasets",
    "exceptions",
    "lens",
    "trees",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access and cache the name here."""
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"sktelescope.{name}")
    else:
        raise AttributeError(f"module 'sktelescope' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, including those not imported yet (tab completion sees them)."""
    return sorted(__all__)
