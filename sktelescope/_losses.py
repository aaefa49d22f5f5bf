"""Training losses as ``(outputs, targets, weights) -> scalar`` with per-sample weights.

Weights are normalised by the estimator to mean one over the training set, so a
batch loss is the plain mean of weighted per-sample losses and unit weights give
exactly the unweighted loss.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def squared_error(outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
    """Half squared error summed over outputs, weighted mean over samples.

    Examples
    --------
    >>> import torch
    >>> float(squared_error(torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2)))
    0.5
    """
    return (weights * 0.5 * (outputs - targets).pow(2).sum(dim=1)).mean()


def binary_log_loss(outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
    """Logistic loss of one logit column against 0/1 targets, weighted mean.

    Examples
    --------
    >>> import torch
    >>> round(float(binary_log_loss(torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2))), 4)
    0.6931
    """
    per_sample = F.binary_cross_entropy_with_logits(outputs, targets, reduction="none")
    return (weights * per_sample.sum(dim=1)).mean()


def multiclass_log_loss(outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
    """Softmax cross-entropy against integer class targets, weighted mean.

    Examples
    --------
    >>> import torch
    >>> t = torch.tensor([0, 1])
    >>> round(float(multiclass_log_loss(torch.zeros(2, 3), t, torch.ones(2))), 4)
    1.0986
    """
    return (weights * F.cross_entropy(outputs, targets, reduction="none")).mean()
