"""The effective-parameters result shared by networks (``lens.smoother``) and trees."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EffectiveParameters:
    """Effective parameters of a run or an ensemble over its recorded steps (PAPER.md §2b).

    Attributes
    ----------
    steps : ndarray of shape (n_records,)
        Optimizer steps for networks, boosting rounds for trees (0 = initialisation).
    p_train : ndarray of shape (n_records,)
        ``‖S_t‖_F²`` on the training inputs (dimensionless).
    p_test : ndarray of shape (n_records,)
        ``n/|I| Σ_{x∈I} ‖s_t(x)‖²`` on the evaluation inputs (NaN without them).

    Examples
    --------
    >>> import numpy as np
    >>> EffectiveParameters(np.arange(2), np.array([0.0, 3.0]), np.full(2, np.nan)).p_train[-1]
    np.float64(3.0)
    """

    steps: np.ndarray
    p_train: np.ndarray
    p_test: np.ndarray
