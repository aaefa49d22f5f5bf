"""Irregularity of inputs relative to a training set, and test sets with a chosen share of it.

See :ref:`math-irregularity`: standardise the inputs with the training statistics, fit a PCA
on the training inputs, and score each input by its distance to the training centroid in
the low-dimensional PCA space (main text) or by ``|projection on PC1 - median|``
(appendix). The 10% most irregular test points form the irregular pool; test sets mix
``p * size`` of them with ``(1 - p) * size`` regular points.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from sktelescope._checks import check_features, standardisation

__all__ = ["IrregularTestSet", "irregular_test_sets", "irregularity_score"]


def irregularity_score(X_train, X, n_components: int | float = 2, method: str = "centroid"):
    """Irregularity of each row of ``X`` relative to the training inputs ``X_train``.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
        Defines the standardisation (mean, standard deviation; constant features are
        left unscaled) and the PCA.
    X : array-like of shape (n_samples, n_features)
        Inputs to score.
    n_components : int or float, default=2
        PCA components for ``method="centroid"`` (a float in (0, 1) keeps the components
        explaining that share of the variance, as in :class:`~sklearn.decomposition.PCA`).
    method : {"centroid", "pc1"}, default="centroid"
        ``"centroid"``: Euclidean distance to the training centroid in PCA space (the
        paper's main text). ``"pc1"``: ``|x·PC1 - median over training of x·PC1|`` (the
        paper's appendix).

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Non-negative, in units of standardised-feature standard deviations; larger is
        more irregular.

    Examples
    --------
    >>> import numpy as np
    >>> X_train = np.random.default_rng(0).normal(size=(200, 3))
    >>> scores = irregularity_score(X_train, np.array([[0.0, 0, 0], [5.0, 5, 5]]))
    >>> bool(scores[1] > scores[0])
    True
    """
    if method not in ("centroid", "pc1"):
        raise ValueError(f"method must be 'centroid' or 'pc1', got {method!r}.")
    X_train, X = check_features(X_train, "X_train"), check_features(X, "X")
    if X.shape[1] != X_train.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features, but X_train has {X_train.shape[1]}; "
            "score inputs with the features the training set has."
        )
    _check_n_components(n_components, X_train.shape, method)
    mean, scale = standardisation(X_train, "X_train")
    with np.errstate(over="ignore", invalid="ignore"):
        train_std, X_std = (X_train - mean) / scale, (X - mean) / scale
        pca = PCA(n_components=1 if method == "pc1" else n_components).fit(train_std)
        projected = pca.transform(X_std)
        if method == "pc1":
            scores = np.abs(projected[:, 0] - np.median(pca.transform(train_std)[:, 0]))
        else:
            scores = _row_norms(projected)  # the training centroid maps to 0
    if not np.all(np.isfinite(scores)):
        raise ValueError(
            "X has values too far from X_train to score in float64: standardised with "
            "X_train's mean and scale they overflow. Check their units, or clip them."
        )
    return scores


def _check_n_components(n_components, shape: tuple[int, int], method: str) -> None:
    """An integer in [1, min(n_train, n_features)] or a share of variance in (0, 1)."""
    if method == "pc1":
        return
    most = min(shape)
    if isinstance(n_components, Integral) and not isinstance(n_components, bool):
        if 1 <= n_components <= most:
            return
    elif isinstance(n_components, Real) and 0 < n_components < 1:
        return
    raise ValueError(
        f"n_components must be an integer from 1 to {most} (the smaller of X_train's "
        f"{shape[0]} rows and {shape[1]} features) or a share of variance in (0, 1), got "
        f"{n_components!r}."
    )


def _row_norms(values: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows, through each row's largest magnitude (no overflow)."""
    largest = np.max(np.abs(values), axis=1, keepdims=True)
    largest[largest == 0] = 1.0
    return np.sqrt(((values / largest) ** 2).sum(axis=1)) * largest[:, 0]


@dataclass
class IrregularTestSet:
    """One test set with a chosen share of irregular points.

    Attributes
    ----------
    proportion : float
        Share of irregular points requested, ``p``.
    indices : ndarray of shape (size,)
        Rows of the test data that form the set (irregular ones first).
    is_irregular : ndarray of bool, shape (size,)
        Whether each row comes from the irregular pool.
    X : ndarray of shape (size, n_features)
    y : ndarray of shape (size,) or (size, n_outputs)
    """

    proportion: float
    indices: np.ndarray
    is_irregular: np.ndarray
    X: np.ndarray
    y: np.ndarray


def _check_proportions(proportions) -> np.ndarray:
    props = np.asarray(proportions, dtype=np.float64).reshape(-1)
    if props.size == 0 or np.any((props < 0) | (props > 1)) or not np.all(np.isfinite(props)):
        raise ValueError(f"proportions must be numbers in [0, 1], got {proportions!r}.")
    return props


def irregular_test_sets(
    X_test,
    y_test,
    scores,
    proportions=(0.0, 0.25, 0.5, 0.75, 1.0),
    size: int | None = None,
    random_state=None,
    irregular_fraction: float = 0.1,
) -> list[IrregularTestSet]:
    """Test sets mixing regular and irregular points in chosen proportions (the paper's Case 2).

    The ``irregular_fraction`` (10%) of test points with the highest ``scores`` form the
    irregular pool, the rest the regular pool. Each pool is shuffled once, and the set for
    proportion ``p`` takes the first ``round(p * size)`` irregular and the first
    ``size - round(p * size)`` regular points, so sets for different ``p`` are nested and
    differ only by the share of irregular points.

    Parameters
    ----------
    X_test : array-like of shape (n_test, n_features)
    y_test : array-like of shape (n_test,) or (n_test, n_outputs)
    scores : array-like of shape (n_test,)
        Irregularity of each test point, e.g. from :func:`irregularity_score`.
    proportions : sequence of float in [0, 1]
    size : int, optional
        Points per set; default the size of the irregular pool (so that ``p = 1`` fits).
        The paper uses 4000 from ~20,000-row datasets.
    random_state : int, RandomState instance or None
    irregular_fraction : float, default=0.1

    Returns
    -------
    sets : list of IrregularTestSet, one per proportion

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(100.0).reshape(-1, 1)
    >>> sets = irregular_test_sets(X, X[:, 0], scores=X[:, 0], proportions=[0, 0.5], size=10,
    ...                            random_state=0)
    >>> [int(s.is_irregular.sum()) for s in sets], bool(sets[1].X.min() >= 0)
    ([0, 5], True)
    """
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)  # only rows are picked from them
    scores = check_array(scores, ensure_2d=False, dtype=np.float64, input_name="scores")
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, one per test point; got shape {scores.shape}.")
    if not len(X_test) == len(y_test) == len(scores):
        raise ValueError(
            f"X_test, y_test and scores must have the same length, got {len(X_test)}, "
            f"{len(y_test)} and {len(scores)}."
        )
    if not isinstance(irregular_fraction, Real) or not 0 < irregular_fraction < 1:
        raise ValueError(f"irregular_fraction must be in (0, 1), got {irregular_fraction!r}.")
    props = _check_proportions(proportions)
    order = np.argsort(-scores, kind="stable")
    n_irregular = max(int(round(irregular_fraction * len(scores))), 1)
    irregular, regular = order[:n_irregular], order[n_irregular:]
    size = n_irregular if size is None else size
    _check_size(size, props, len(irregular), len(regular))
    rng = check_random_state(random_state)
    irregular, regular = rng.permutation(irregular), rng.permutation(regular)
    sets = []
    for p in props:
        k = int(round(p * size))
        idx = np.concatenate([irregular[:k], regular[: size - k]])
        flags = np.arange(size) < k
        sets.append(IrregularTestSet(float(p), idx, flags, X_test[idx], y_test[idx]))
    return sets


def _check_size(size, props, n_irregular: int, n_regular: int) -> None:
    if not isinstance(size, Integral) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}.")
    need_irr = int(round(props.max() * size))
    need_reg = size - int(round(props.min() * size))
    if need_irr > n_irregular or need_reg > n_regular:
        raise ValueError(
            f"size={size} with proportions up to {props.max():g} needs {need_irr} irregular "
            f"and {need_reg} regular test points, but the pools hold {n_irregular} and "
            f"{n_regular}. Lower size, or use a larger test set."
        )
