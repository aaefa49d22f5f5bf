"""What network stages and boosted-tree stages share: one protocol, one base, one result.

A *staged model* is an additive ensemble ``f = f_0 + Σ_k h_k``: a fitted
``TelescopingMLP*`` (stages are blocks of optimizer steps) or a
:class:`sktelescope.trees.TreeTelescope` (stages are boosting rounds). The lens measures
either through the :class:`StageLike` protocol below, never by checking classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = [
    "EffectiveParameters",
    "StageBase",
    "StageLike",
    "StagedModel",
    "check_training_rows",
    "row_fingerprints",
    "row_hashes",
]


@runtime_checkable
class StageLike(Protocol):
    """One stage of an additive model, seen as a kernel smoother.

    ``steps`` are the 1-based updates the stage covers (optimizer steps of a network,
    boosting rounds of a tree ensemble). ``predict(X)`` is the stage's contribution,
    ``kernel(X, Z)`` its kernel (a dense ``(len(X), len(Z))`` array; ``Z=None`` means
    ``Z = X``), and ``kernel_row_norms(X, Z)`` the norms ``||k(x, Z)||_2`` of the kernel's
    rows (``Z=None``: the points the stage was fitted on, where the stage knows them).
    """

    @property
    def steps(self) -> range: ...

    def predict(self, X, linear: bool = False) -> np.ndarray: ...

    def kernel(self, X, Z=None) -> np.ndarray: ...

    def kernel_row_norms(self, X, Z=None) -> np.ndarray: ...


@runtime_checkable
class StagedModel(Protocol):
    """A fitted model whose prediction is the sum of its ``telescope`` columns."""

    stages_: list
    n_stages_: int

    def telescope(self, X) -> np.ndarray: ...


class StageBase:
    """Position and extent of a stage: ``index`` in ``stages_`` and the ``steps`` it covers.

    Parameters
    ----------
    index : int
        Position of the stage in its model's ``stages_``.
    steps : range
        1-based updates the stage covers: ``range(first, last + 1)``.

    Examples
    --------
    >>> StageBase(0, range(1, 11))
    StageBase(index=0, steps=range(1, 11))
    """

    def __init__(self, index: int, steps: range) -> None:
        self.index = int(index)
        self._steps = steps

    @property
    def steps(self) -> range:
        """The 1-based updates (optimizer steps or boosting rounds) this stage covers."""
        return self._steps

    def __repr__(self) -> str:
        s = self.steps
        return f"{type(self).__name__}(index={self.index}, steps=range({s.start}, {s.stop}))"


@dataclass
class EffectiveParameters:
    """Effective parameters of a run or an ensemble over its recorded steps.

    ``p^train = ||S||_F²`` on the training inputs and ``p^test = n/|I| Σ_{x∈I} ||s(x)||²``
    on other inputs (Curth, Jeffares & van der Schaar 2023): larger means less smoothing.

    Attributes
    ----------
    steps : ndarray of shape (n_records,)
        Optimizer steps for networks, boosting rounds for trees (0 = initialisation).
    p_train : ndarray of shape (n_records,)
        ``‖S_t‖_F²`` on the training inputs (dimensionless).
    p_test : ndarray of shape (n_records,)
        ``n/|I| Σ_{x∈I} ‖s_t(x)‖²`` on the evaluation inputs (NaN without them).
    rows : ndarray of int or None
        The rows of the training data the smoother's columns are (a network's: the rows it
        trained on, without an early-stopping hold-out; trees': the rows the booster fitted).

    Examples
    --------
    >>> import numpy as np
    >>> EffectiveParameters(np.arange(2), np.array([0.0, 3.0]), np.full(2, np.nan)).p_train[-1]
    np.float64(3.0)
    """

    steps: np.ndarray
    p_train: np.ndarray
    p_test: np.ndarray
    rows: np.ndarray | None = None


# --------------------------------------------------------------------------- training rows


def row_hashes(values) -> np.ndarray:
    """One 64-bit hash per row of a 1-D or 2-D array (numbers or labels), in row order.

    ``-0.0`` and ``0.0`` hash alike, so do a float and the same integer value.

    Examples
    --------
    >>> h = row_hashes(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]]))
    >>> h.dtype, bool(h[0] == h[1]), bool(h[0] == h[2])
    (dtype('uint64'), True, False)
    """
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        values = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 and 0.0 hash alike
    frame = pd.DataFrame(values.reshape(len(values), -1))
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def row_fingerprints(X: np.ndarray) -> np.ndarray:
    """Sorted 64-bit hashes of the rows of a float64 array (for membership checks).

    Examples
    --------
    >>> fp = row_fingerprints(np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> fp.dtype, fp.shape
    (dtype('uint64'), (2,))
    """
    return np.sort(row_hashes(np.ascontiguousarray(X, dtype=np.float64)))


def check_training_rows(X: np.ndarray, fingerprints: np.ndarray, name: str) -> None:
    """Raise unless every row of ``X`` has one of the :func:`row_fingerprints` given.

    A model's kernels against points it was not fitted on do not describe its run, so the
    lens refuses them (a subset of the training rows, in any order, passes).

    Examples
    --------
    >>> X = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> check_training_rows(X[::-1], row_fingerprints(X), "X_train")
    >>> check_training_rows(X + 1, row_fingerprints(X), "X_train")
    Traceback (most recent call last):
    ...
    ValueError: X_train must be rows of the data the model was fitted on, but 2 of its 2 rows ...
    """
    missing = ~np.isin(row_fingerprints(X), fingerprints)
    if missing.any():
        raise ValueError(
            f"{name} must be rows of the data the model was fitted on, but "
            f"{int(missing.sum())} of its {len(X)} rows are not. Pass the training "
            "inputs (or a subset of them); kernels against other points do not describe "
            "this run."
        )
