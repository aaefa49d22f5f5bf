"""The benchmark protocol: train / validation / test splits, and the metrics.

Splits follow Grinsztajn et al. 2022's "medium" setting: the training set is capped at 10,000
rows; a validation split (at most 2,000 rows, as in the paper's Case 2) selects the
configuration; a held-out test split (at most 10,000 rows) scores it. Rows are shuffled first
(some datasets are time ordered). Every split is determined by ``(seed, dataset, split)``.
:class:`SplitData` holds one split's arrays; the fit jobs and the lens jobs of that split share it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn import metrics

from sktelescope.bench._models import derive_seed
from sktelescope.datasets import Dataset

__all__ = [
    "METRICS",
    "PRIMARY",
    "Protocol",
    "SplitData",
    "make_split",
    "score_model",
    "split_data",
]

#: Every metric column, per task (the others are NaN).
METRICS = {
    "regression": ("r2", "rmse"),
    "classification": ("accuracy", "log_loss", "roc_auc"),
}
#: The metric that selects configurations and fills the summary table (higher is better).
PRIMARY = {"regression": "r2", "binary": "accuracy", "multiclass": "accuracy"}
ALL_METRICS = METRICS["regression"] + METRICS["classification"]


@dataclass(frozen=True)
class Protocol:
    """How each dataset is split.

    Parameters
    ----------
    n_splits : int, default=3
        Number of splits: repeated random splits, or the K of K-fold when ``kfold``.
    kfold : bool, default=False
        Test sets are the K folds of one shuffled permutation instead of random draws.
    max_train, max_val, max_test : int
        Caps on the split sizes (10,000 / 2,000 / 10,000).
    val_fraction, test_fraction : float
        Fractions of the rows given to validation and (repeated splits) test, before the caps.
    seed : int, default=0
        Base seed of every split and every model.
    name : {"suite", "paper"}, default="suite"
        The protocol the splits belong to (:mod:`sktelescope.bench._scope`); recorded with
        the results, so that one folder holds one protocol.

    Examples
    --------
    >>> Protocol(n_splits=5, kfold=True).describe()
    '5-fold, train <= 10000, val <= 2000, test <= 10000, seed 0'
    """

    n_splits: int = 3
    kfold: bool = False
    max_train: int = 10_000
    max_val: int = 2_000
    max_test: int = 10_000
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    name: str = "suite"

    def __post_init__(self) -> None:
        if self.name not in ("suite", "paper"):
            raise ValueError(f"protocol must be 'suite' or 'paper'; got {self.name!r}.")

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict."""
        return asdict(self)

    def describe(self) -> str:
        """A one-line description."""
        scheme = f"{self.n_splits}-fold" if self.kfold else f"{self.n_splits} random splits"
        return (
            f"{scheme}, train <= {self.max_train}, val <= {self.max_val}, "
            f"test <= {self.max_test}, seed {self.seed}"
        )


def make_split(n_rows: int, dataset: str, split: int, protocol: Protocol):
    """Row indices ``(train, val, test)`` of split number ``split`` of a dataset.

    Examples
    --------
    >>> train, val, test = make_split(1000, "toy", 0, Protocol())
    >>> len(train), len(val), len(test)
    (600, 200, 200)
    """
    if not 0 <= split < protocol.n_splits:
        raise ValueError(f"split must be in [0, {protocol.n_splits}); got {split}.")
    if protocol.kfold:
        perm = np.random.default_rng(derive_seed(protocol.seed, dataset, "kfold")).permutation(
            n_rows
        )
        folds = np.array_split(perm, protocol.n_splits)
        test = folds[split][: protocol.max_test]
        rest = np.concatenate([f for i, f in enumerate(folds) if i != split])
    else:
        rng = np.random.default_rng(derive_seed(protocol.seed, dataset, split))
        perm = rng.permutation(n_rows)
        n_test = min(int(round(protocol.test_fraction * n_rows)), protocol.max_test)
        test, rest = perm[:n_test], perm[n_test:]
    n_val = min(int(round(protocol.val_fraction * n_rows)), protocol.max_val, len(rest) // 2)
    val, train = rest[:n_val], rest[n_val:][: protocol.max_train]
    return train, val, test


@dataclass
class SplitData:
    """The arrays of one (dataset, split): shared by that split's fit and lens jobs.

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> data = split_data(load_sklearn_dataset("iris"), 0, Protocol(n_splits=1))
    >>> data.task, data.n_classes, len(data.y_train) + len(data.y_val) + len(data.y_test)
    ('multiclass', 3, 150)
    """

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    task: str
    n_classes: int
    categorical_columns: list[str]


def split_data(ds: Dataset, split: int, protocol: Protocol) -> SplitData:
    """The train, validation and test rows of split ``split`` of a loaded dataset.

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> data = split_data(load_sklearn_dataset("diabetes"), 1, Protocol(n_splits=2))
    >>> data.X_train.shape, data.n_classes
    ((266, 10), 0)
    """
    train, val, test = make_split(ds.n_rows, ds.name, split, protocol)
    n_classes = 0 if ds.task == "regression" else int(ds.y.max()) + 1
    take = ds.X.iloc
    return SplitData(
        take[train].reset_index(drop=True),
        ds.y[train],
        take[val].reset_index(drop=True),
        ds.y[val],
        take[test].reset_index(drop=True),
        ds.y[test],
        ds.task,
        n_classes,
        list(ds.categorical_columns),
    )


def _full_proba(estimator, X, n_classes: int) -> np.ndarray:
    """``predict_proba`` with one column per class of the dataset, in class-index order."""
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    classes = np.asarray(estimator.classes_).astype(int)
    full = np.zeros((len(proba), n_classes))
    full[:, classes] = proba
    return full


def score_model(estimator, X, y: np.ndarray, task: str, n_classes: int = 2) -> dict:
    """Predict once and compute the task's metrics, plus the prediction time in seconds.

    Returns
    -------
    dict
        ``r2`` and ``rmse`` for regression; ``accuracy``, ``log_loss`` and ``roc_auc`` for
        classification (ROC AUC one-vs-rest when multiclass); ``predict_seconds``.

    Examples
    --------
    >>> from sklearn.dummy import DummyRegressor
    >>> import numpy as np
    >>> X, y = np.zeros((4, 1)), np.array([1.0, 2.0, 3.0, 4.0])
    >>> score_model(DummyRegressor().fit(X, y), X, y, "regression")["r2"]
    0.0
    """
    start = time.perf_counter()
    if task == "regression":
        pred = np.asarray(estimator.predict(X), dtype=np.float64).ravel()
        seconds = time.perf_counter() - start
        scores = {
            "r2": float(metrics.r2_score(y, pred)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
        }
    else:
        proba = _full_proba(estimator, X, n_classes)
        seconds = time.perf_counter() - start
        scores = _classification_scores(y, proba, n_classes)
    scores["predict_seconds"] = seconds
    return scores


def _classification_scores(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict:
    labels = list(range(n_classes))
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    try:
        if n_classes == 2:
            auc = metrics.roc_auc_score(y, proba[:, 1])
        else:
            auc = metrics.roc_auc_score(y, clipped, multi_class="ovr", labels=labels)
    except ValueError:  # a single class in y
        auc = float("nan")
    return {
        "accuracy": float(metrics.accuracy_score(y, proba.argmax(axis=1))),
        "log_loss": float(metrics.log_loss(y, clipped, labels=labels)),
        "roc_auc": float(auc),
    }
