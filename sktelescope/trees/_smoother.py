"""The smoother recursion of a squared-error tree ensemble (:ref:`math-gbt-smoother`).

With ``W_t`` the weights of round t (``learning_rate * K_t``), the training smoother and offset
follow ``S_t = S_{t-1} + W_t (I - S_{t-1})`` and ``c_t = (I - W_t) c_{t-1}``; an evaluation row
follows ``s_t(x) = s_{t-1}(x) + w_t(x) (I - S_{t-1})`` and ``c_t(x) = c_{t-1}(x) - w_t(x) c_{t-1}``.
``W_t`` is sparse (one leaf per row), ``S`` is dense: this module refuses blocks larger than a
given number of entries rather than exhausting memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class TreeSmoother:
    """Smoother of a squared-error ensemble: ``prediction = S @ y_train + c``.

    Returned by :meth:`TreeTelescope.smoother`; unpacks as ``S, s, c, c_eval``.

    Attributes
    ----------
    S_train : ndarray of shape (n_train, n_train)
        Weights of the training targets in the training predictions.
    s_eval : ndarray of shape (n_eval, n_train) or None
        Weights of the training targets in the predictions on ``X_eval`` (if given).
    c_train : ndarray of shape (n_train,)
        The part of the training predictions that does not depend on ``y_train``.
    c_eval : ndarray of shape (n_eval,) or None
        The same on ``X_eval``.

    Examples
    --------
    >>> from sktelescope.trees._examples import diabetes_telescope
    >>> tel, X, y = diabetes_telescope()
    >>> S, s, c, c_eval = tel.smoother(X[:4])
    >>> bool(np.allclose(s @ y + c_eval, tel.model.predict(X[:4])))
    True
    """

    S_train: np.ndarray
    s_eval: np.ndarray | None
    c_train: np.ndarray
    c_eval: np.ndarray | None

    def __iter__(self) -> Iterator[np.ndarray | None]:
        return iter((self.S_train, self.s_eval, self.c_train, self.c_eval))


def check_size(n_rows: int, n_train: int, max_entries: int, what: str) -> None:
    """Refuse a dense (n_rows, n_train) float64 block above ``max_entries`` entries."""
    entries = n_rows * n_train
    if entries > max_entries:
        raise ValueError(
            f"The {what} smoother is a dense ({n_rows}, {n_train}) float64 matrix "
            f"({entries * 8 / 1e6:.0f} MB), above max_entries={max_entries} "
            f"({max_entries * 8 / 1e6:.0f} MB). Pass fewer evaluation rows or a training "
            "subsample, or raise max_entries if the memory is there."
        )


def initial_smoother(
    init_train: np.ndarray, init_eval: np.ndarray | None, y: np.ndarray, fit_mask: np.ndarray
) -> tuple:
    """``S_0, s_0, c_0, c_0(x)``: the mean of the fitted targets if that is the initial value.

    A library initialising at the mean target (scikit-learn's default, LightGBM's and XGBoost's
    ``boost_from_average``) gives ``S_0 = 1 1^T / n`` (p = 1); any other constant gives
    ``S_0 = 0`` and ``c_0 = init``. The offset absorbs the difference, including float32
    rounding of a stored base score, so ``S y + c`` is exact either way.
    """
    n = y.shape[0]
    n_fit = int(fit_mask.sum())
    mean = float(np.mean(y[fit_mask]))
    constant = np.ptp(init_train) == 0 and (init_eval is None or np.all(init_eval == init_train[0]))
    is_mean = constant and abs(init_train[0] - mean) <= 1e-6 * (1.0 + abs(mean))
    row = np.where(fit_mask, 1.0 / n_fit, 0.0) if is_mean else np.zeros(n)
    S = np.tile(row, (n, 1))
    c = init_train - S @ y
    if init_eval is None:
        return S, None, c, None
    s_eval = np.tile(row, (init_eval.shape[0], 1))
    return S, s_eval, c, init_eval - s_eval @ y


def run_recursion(weights_train, weights_eval, start) -> Iterator[tuple]:
    """Yield ``(S, s_eval, c, c_eval)`` after the initial state and after every round.

    Parameters
    ----------
    weights_train, weights_eval : iterables of sparse matrices
        ``W_t`` on the training rows and on the evaluation rows (``None`` entries if no eval).
    start : tuple
        The output of :func:`initial_smoother`.
    """
    S, s_eval, c, c_eval = start
    yield S, s_eval, c, c_eval
    for W, W_eval in zip(weights_train, weights_eval):
        if s_eval is not None:
            s_eval = s_eval + W_eval.toarray() - W_eval @ S
            c_eval = c_eval - W_eval @ c
        S = S + W.toarray() - W @ S
        c = c - W @ c
        yield S, s_eval, c, c_eval


def effective_parameters(states, fit_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``p^train`` (squared Frobenius norm over fitted rows) and ``p^test`` per state."""
    n_fit = int(fit_mask.sum())
    p_train, p_test = [], []
    for S, s_eval, _, _ in states:
        p_train.append(float(np.sum(S[fit_mask] ** 2)))
        if s_eval is not None:
            p_test.append(n_fit / s_eval.shape[0] * float(np.sum(s_eval**2)))
    return np.array(p_train), (np.array(p_test) if p_test else None)
