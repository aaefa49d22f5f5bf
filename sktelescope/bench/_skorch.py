"""A plain skorch MLP as a scikit-learn estimator, the benchmark's skorch peer.

skorch needs the input width when it builds the module; these thin estimators read it from the
data at fit time, so they can sit at the end of a preprocessing pipeline.

skorch catches Ctrl-C during ``fit`` and returns the net as trained so far; like the project's
estimators, these then warn with :class:`~sktelescope.exceptions.FitInterruptedWarning`, so the
benchmark does not mistake the half-trained net for a finished one.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from sktelescope.exceptions import FitInterruptedWarning

__all__ = ["SkorchMLPClassifier", "SkorchMLPRegressor"]


def _make_module(n_in: int, hidden: tuple[int, ...], n_out: int):
    import torch

    layers, width = [], n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


class _SkorchMLP(BaseEstimator):
    def __init__(
        self,
        hidden_layer_sizes=(256, 256),
        lr=1e-3,
        batch_size=256,
        max_epochs=50,
        weight_decay=0.0,
        random_state=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.weight_decay = weight_decay
        self.random_state = random_state

    def _net(self, net_cls, n_in: int, n_out: int, criterion):
        import torch

        if self.random_state is not None:
            torch.manual_seed(self.random_state)
        module = _make_module(n_in, tuple(self.hidden_layer_sizes), n_out)
        return net_cls(
            module,
            criterion=criterion,
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            train_split=None,
            verbose=0,
        )

    def _fit_net(self, X, y) -> None:
        """Fit ``net_``; warn when skorch stopped early because of Ctrl-C."""
        self.net_.fit(X, y)
        n_epochs = len(self.net_.history)
        if n_epochs < self.max_epochs:  # no early stopping here: only Ctrl-C ends a fit early
            warnings.warn(
                f"Training interrupted after {n_epochs} of {self.max_epochs} epochs; the net "
                "keeps the parameters reached so far.",
                FitInterruptedWarning,
                stacklevel=3,
            )


class SkorchMLPRegressor(RegressorMixin, _SkorchMLP):
    """skorch ``NeuralNetRegressor`` over a ReLU MLP; the input width is read at fit time.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(64, 3))
    >>> SkorchMLPRegressor(max_epochs=2).fit(X, X[:, 0]).predict(X).shape
    (64,)
    """

    def fit(self, X, y):
        import torch
        from skorch import NeuralNetRegressor

        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32).reshape(-1, 1)
        self.net_ = self._net(NeuralNetRegressor, X.shape[1], 1, torch.nn.MSELoss)
        self._fit_net(X, y)
        return self

    def predict(self, X):
        return self.net_.predict(np.asarray(X, dtype=np.float32)).ravel()


class SkorchMLPClassifier(ClassifierMixin, _SkorchMLP):
    """skorch ``NeuralNetClassifier`` over a ReLU MLP with cross-entropy loss.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(64, 3))
    >>> SkorchMLPClassifier(max_epochs=2).fit(X, X[:, 0] > 0).predict_proba(X).shape
    (64, 2)
    """

    def fit(self, X, y):
        import torch
        from skorch import NeuralNetClassifier

        X = np.asarray(X, dtype=np.float32)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.net_ = self._net(
            NeuralNetClassifier, X.shape[1], len(self.classes_), torch.nn.CrossEntropyLoss
        )
        self._fit_net(X, codes.astype(np.int64))
        return self

    def predict_proba(self, X):
        return self.net_.predict_proba(np.asarray(X, dtype=np.float32))

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
