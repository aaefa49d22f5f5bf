"""Loss objects: target encoding, output count, the training loss and the inverse link.

Each estimator holds one loss object (scikit-learn's ``_loss`` idea, as in
HistGradientBoosting) instead of branching on ``loss`` and on the number of classes:

- :class:`SquaredError`: regression, one output per target, standardised targets;
- :class:`BinaryLogLoss`: one logit, 0/1 targets, sigmoid link;
- :class:`MulticlassLogLoss`: one logit per class, integer targets, softmax link;
- :class:`BinarySquaredError`: one output regressed on ±1 (the paper's classification loss);
- :class:`MulticlassSquaredError`: one output per class regressed on one-hot targets.

A loss call is ``loss(outputs, targets, weights)``: the weighted mean over samples of the
per-sample loss, with weights normalised to mean one by the estimator (unit weights give
exactly the unweighted loss). Classification losses receive class *indices* ``0..K-1``
in :meth:`Loss.encode`; the estimator maps labels to indices.

Label smoothing (``label_smoothing=ε``) trains a classifier on ``(1 - ε)`` times its
one-hot target plus ``ε/K`` on every class. The squared-error losses smooth the encoded
targets themselves (±1 becomes ±(1 - ε)), so the run stays a regression on fixed targets
(the lens's smoother needs that) and ``predict_proba`` undoes the map before clipping; the
log-losses smooth inside the loss, and their probabilities stay the sigmoid/softmax of the
model (pulled towards uniform by ε: use ε = 0 where calibrated probabilities matter).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

__all__ = [
    "BinaryLogLoss",
    "BinarySquaredError",
    "Loss",
    "MulticlassLogLoss",
    "MulticlassSquaredError",
    "SquaredError",
    "classification_loss",
    "half_squared_error",
]


def half_squared_error(outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
    """Weighted mean over samples of half the squared error summed over outputs.

    Examples
    --------
    >>> float(half_squared_error(torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2)))
    0.5
    """
    return (weights * 0.5 * (outputs - targets).pow(2).sum(dim=1)).mean()


class Loss:
    """Base class: what an estimator needs to know about its training loss.

    Attributes
    ----------
    n_outputs : int
        Number of network outputs.
    target_dtype : torch.dtype
        dtype of the encoded targets.
    is_squared_error : bool
        Whether the loss is half the squared error of the outputs (the smoother form of
        the lens exists only then).
    """

    n_outputs: int = 1
    target_dtype: torch.dtype = torch.float32
    is_squared_error: bool = False

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Targets as the network is trained on them (before any scaling)."""
        raise NotImplementedError

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_outputs={self.n_outputs})"


class SquaredError(Loss):
    """Half squared error summed over outputs (regression).

    Examples
    --------
    >>> import torch
    >>> float(SquaredError()(torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2)))
    0.5
    """

    is_squared_error = True

    def __init__(self, n_outputs: int = 1) -> None:
        self.n_outputs = int(n_outputs)

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Float targets of shape (n, n_outputs)."""
        return np.asarray(y, dtype=np.float64).reshape(len(y), -1)

    def __call__(self, outputs, targets, weights):
        return half_squared_error(outputs, targets, weights)


class _Classification(Loss):
    """Common part of the classification losses: class indices in, probabilities out."""

    def __init__(self, n_classes: int, label_smoothing: float = 0.0) -> None:
        self.n_classes = int(n_classes)
        self.label_smoothing = float(label_smoothing)

    def __repr__(self) -> str:
        smoothing = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return f"{type(self).__name__}(n_outputs={self.n_outputs}{smoothing})"

    def class_index(self, raw: np.ndarray) -> np.ndarray:
        """Predicted class index from raw outputs (shape (n,) or (n, n_outputs))."""
        if raw.ndim == 1:
            return (raw > 0).astype(np.int64)
        return raw.argmax(axis=1)

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, n_classes)."""
        raise NotImplementedError


class BinaryLogLoss(_Classification):
    """Logistic loss of one logit column against 0/1 targets.

    Examples
    --------
    >>> import torch
    >>> loss = BinaryLogLoss()
    >>> round(float(loss(torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2))), 4)
    0.6931
    >>> loss.predict_proba(np.array([0.0])).tolist()
    [[0.5, 0.5]]
    >>> BinaryLogLoss(label_smoothing=0.2).encode(np.array([0, 1])).ravel().tolist()
    [0.1, 0.9]
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__(2, label_smoothing)

    def encode(self, y):
        targets = np.asarray(y, dtype=np.float64).reshape(-1, 1)
        if self.label_smoothing:
            targets = (1.0 - self.label_smoothing) * targets + 0.5 * self.label_smoothing
        return targets

    def __call__(self, outputs, targets, weights):
        per_sample = F.binary_cross_entropy_with_logits(outputs, targets, reduction="none")
        return (weights * per_sample.sum(dim=1)).mean()

    def predict_proba(self, raw):
        p1 = 1.0 / (1.0 + np.exp(-raw))
        return np.column_stack([1.0 - p1, p1])


class MulticlassLogLoss(_Classification):
    """Softmax cross-entropy against integer class targets.

    Examples
    --------
    >>> import torch
    >>> loss = MulticlassLogLoss(3)
    >>> round(float(loss(torch.zeros(2, 3), torch.tensor([0, 1]), torch.ones(2))), 4)
    1.0986
    """

    target_dtype = torch.int64

    def __init__(self, n_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__(n_classes, label_smoothing)
        self.n_outputs = self.n_classes

    def encode(self, y):
        """Class indices (smoothing, if any, acts inside the loss)."""
        return np.asarray(y, dtype=np.int64)

    def __call__(self, outputs, targets, weights):
        per_sample = F.cross_entropy(
            outputs, targets, reduction="none", label_smoothing=self.label_smoothing
        )
        return (weights * per_sample).mean()

    def predict_proba(self, raw):
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


class BinarySquaredError(_Classification):
    """Half squared error of one output against ±1 targets; probabilities are clipped.

    Examples
    --------
    >>> BinarySquaredError().encode(np.array([0, 1])).ravel().tolist()
    [-1.0, 1.0]
    >>> smooth = BinarySquaredError(label_smoothing=0.2)
    >>> smooth.encode(np.array([0, 1])).ravel().tolist(), smooth.predict_proba(np.array([0.8]))
    ([-0.8, 0.8], array([[0., 1.]]))
    """

    is_squared_error = True

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__(2, label_smoothing)

    def encode(self, y):
        targets = (2.0 * np.asarray(y, dtype=np.float64) - 1.0).reshape(-1, 1)
        if self.label_smoothing:
            targets = (1.0 - self.label_smoothing) * targets
        return targets

    def __call__(self, outputs, targets, weights):
        return half_squared_error(outputs, targets, weights)

    def predict_proba(self, raw):
        if self.label_smoothing:
            raw = raw / (1.0 - self.label_smoothing)
        p1 = np.clip((raw + 1.0) / 2.0, 0.0, 1.0)
        return np.column_stack([1.0 - p1, p1])


class MulticlassSquaredError(_Classification):
    """Half squared error of one output per class against one-hot targets.

    Probabilities are the outputs clipped at zero and normalised (uniform when all are
    zero); they are not calibrated.

    Examples
    --------
    >>> MulticlassSquaredError(3).encode(np.array([2])).tolist()
    [[0.0, 0.0, 1.0]]
    >>> MulticlassSquaredError(4, label_smoothing=0.2).encode(np.array([2])).round(3).tolist()
    [[0.05, 0.05, 0.85, 0.05]]
    """

    is_squared_error = True

    def __init__(self, n_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__(n_classes, label_smoothing)
        self.n_outputs = self.n_classes

    def encode(self, y):
        targets = np.eye(self.n_classes)[np.asarray(y, dtype=np.int64)]
        if self.label_smoothing:
            eps = self.label_smoothing
            targets = (1.0 - eps) * targets + eps / self.n_classes
        return targets

    def __call__(self, outputs, targets, weights):
        return half_squared_error(outputs, targets, weights)

    def predict_proba(self, raw):
        if self.label_smoothing:
            eps = self.label_smoothing
            raw = (raw - eps / self.n_classes) / (1.0 - eps)
        clipped = np.clip(raw, 0.0, None)
        total = clipped.sum(axis=1, keepdims=True)
        uniform = np.full_like(clipped, 1.0 / clipped.shape[1])
        return np.where(total > 0, clipped / np.where(total > 0, total, 1.0), uniform)


def classification_loss(name: str, n_classes: int, label_smoothing: float = 0.0) -> _Classification:
    """The loss object for ``loss=name`` on ``n_classes`` classes.

    Examples
    --------
    >>> classification_loss("log_loss", 3)
    MulticlassLogLoss(n_outputs=3)
    >>> classification_loss("squared_error", 2, label_smoothing=0.1)
    BinarySquaredError(n_outputs=1, label_smoothing=0.1)
    """
    binary, eps = n_classes == 2, label_smoothing
    if name == "log_loss":
        return BinaryLogLoss(eps) if binary else MulticlassLogLoss(n_classes, eps)
    if name == "squared_error":
        return BinarySquaredError(eps) if binary else MulticlassSquaredError(n_classes, eps)
    raise ValueError(f"Unknown loss {name!r}; expected 'log_loss' or 'squared_error'.")
