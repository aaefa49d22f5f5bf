"""What a fitted estimator's targets are: real values with a number of outputs, or classes.

A fitted run keeps one of these (``run.targets``) so that it turns labels or values into
what its loss object encodes without asking the estimator: the lens can then read any data
through the run alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ClassTargets", "ValueTargets"]


class ValueTargets:
    """Real-valued targets with ``n_outputs`` columns (regression).

    Examples
    --------
    >>> ValueTargets(1).indices([1.0, 2.0]).tolist()
    [1.0, 2.0]
    >>> ValueTargets(2, "MyModel").indices([1.0, 2.0], name="y_val")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: y_val has 1 targets, but MyModel was fitted with 2. ...
    """

    numeric = True
    classes = None

    def __init__(self, n_outputs: int, owner: str = "the model") -> None:
        self.n_outputs, self.owner = int(n_outputs), owner

    def indices(self, y, name: str = "y") -> np.ndarray:
        """``y`` as float64, checked to have the fitted number of outputs."""
        y = np.asarray(y, dtype=np.float64)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if n_outputs != self.n_outputs:
            raise ValueError(
                f"{name} has {n_outputs} targets, but {self.owner} was fitted with "
                f"{self.n_outputs}. Pass targets of the training shape."
            )
        return y


class ClassTargets:
    """Class labels, encoded as indices into the sorted ``classes`` (classification).

    Examples
    --------
    >>> ClassTargets(np.array(["a", "b"])).indices(["b", "a"]).tolist()
    [1, 0]
    >>> ClassTargets(np.array([0, 1])).indices([2])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: y contains labels not seen in the training labels: array([2]); ...
    """

    numeric = False

    def __init__(self, classes: np.ndarray) -> None:
        self.classes = np.asarray(classes)

    @property
    def n_outputs(self) -> int:
        """Network outputs: one for two classes, one per class otherwise."""
        return 1 if len(self.classes) == 2 else len(self.classes)

    def indices(self, y, name: str = "y") -> np.ndarray:
        """Index of each label of ``y`` in ``classes``; refuses unseen labels."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-dimensional class labels, got shape {y.shape}.")
        classes = self.classes
        idx = np.searchsorted(classes, y)
        unseen = (idx >= len(classes)) | (classes[np.minimum(idx, len(classes) - 1)] != y)
        if np.any(unseen):
            raise ValueError(
                f"{name} contains labels not seen in the training labels: "
                f"{np.unique(y[unseen])!r}; the classes are {classes!r}."
            )
        return idx
