"""What one call of ``fit`` trained on: enough to replay it bit for bit and to recognise its data.

A fitted run keeps one :class:`FitRecord` per ``fit`` call (one, or more after ``warm_start``
continuations): the integer seed every random draw of the fit came from, the estimator's
parameters at the time, digests of the data, the rows of ``X`` the network trained on (the rest
were the early-stopping hold-out) and the optimizer steps the fit's kept model covers. The lens
replays a fitted model from these records and refuses data that is not the data of the fit.

Digests are 64-bit row hashes (:func:`sktelescope._staged.row_hashes`): rows can be compared
one by one, so a refusal can say how many rows differ, and a subset of the rows can be
recognised.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from sktelescope._staged import row_hashes

__all__ = ["DataDigest", "FitRecord"]


def _digest(hashes: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(hashes).tobytes(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class DataDigest:
    """Row hashes of the features, targets and weights of one fit, in row order.

    Examples
    --------
    >>> d = DataDigest.of(np.eye(3), np.arange(3), np.ones(3))
    >>> d.n_rows, d.differences(DataDigest.of(np.eye(3), np.arange(3) + 1, np.ones(3)))
    (3, {'y': 3})
    """

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, X, y, weights) -> DataDigest:
        """The digest of validated features ``X``, targets ``y`` and weights."""
        return cls(row_hashes(X), row_hashes(y), row_hashes(weights))

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.X)

    def differences(self, other: DataDigest) -> dict[str, int]:
        """Rows that differ, per part (``"X"``, ``"y"``, ``"weights"``); empty when equal."""
        if other.n_rows != self.n_rows:
            return {"rows": abs(other.n_rows - self.n_rows)}
        parts = {"X": (self.X, other.X), "y": (self.y, other.y)}
        parts["weights"] = (self.weights, other.weights)
        counts = {k: int(np.sum(a != b)) for k, (a, b) in parts.items()}
        return {k: v for k, v in counts.items() if v}

    @property
    def key(self) -> str:
        """One string for the whole data (equal data, equal key)."""
        return _digest(np.concatenate([self.X, self.y, self.weights]))


@dataclass(frozen=True)
class FitRecord:
    """One ``fit`` call of a run.

    Attributes
    ----------
    seed : int
        The integer all of the fit's random draws came from (initialisation, validation
        split, batch order): the estimator's ``random_state`` when it is an integer, else
        drawn from it once per new run (continuations reuse it, as
        ``HistGradientBoosting*``'s ``warm_start`` does).
    params : dict
        ``get_params(deep=False)`` of the estimator when it was fitted.
    data : DataDigest
        Row hashes of the ``X``, ``y`` and ``sample_weight`` passed to ``fit``.
    train_rows : ndarray of int
        Rows of that ``X`` the network trained on, in the order of its training tensors
        (every row without early stopping; the rest were the validation hold-out).
    validation : {"none", "split", "given"}
        No validation data, a split of ``X`` (``train_rows`` excludes it), or ``X_val``.
    validation_key : str or None
        Digest key of ``(X_val, y_val)`` when they were given.
    first_step, last_step : int
        Optimizer steps before the fit, and the step of the model it kept (the restored
        best epoch under early stopping).
    """

    seed: int
    params: dict
    data: DataDigest
    train_rows: np.ndarray
    validation: str = "none"
    validation_key: str | None = None
    first_step: int = 0
    last_step: int = 0

    @property
    def n_train(self) -> int:
        """Number of rows the network trained on."""
        return len(self.train_rows)
