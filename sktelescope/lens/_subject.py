"""What a lens function measures: the telescoping model inside whatever the user passes.

Every lens function takes the model as the user has it: a fitted ``TelescopingMLP*``, a
:class:`~sklearn.pipeline.Pipeline` whose last step is one (its other steps are applied to
every input, as ``predict`` applies them), a fitted ``GridSearchCV``/``RandomizedSearchCV``
(its ``best_estimator_``), or a :class:`~sktelescope.trees.TreeTelescope` where the
measurement applies to trees. :func:`resolve` finds the model and the input transform;
:class:`Subject` carries both.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError

from sktelescope._checks import check_targets
from sktelescope._mlp import BaseTelescopingMLP
from sktelescope._wrapped import Wrapped, unwrap

__all__ = ["Subject", "resolve"]


class Subject(Wrapped):
    """The model a lens function measures, and how raw inputs reach it.

    A :class:`~sktelescope._wrapped.Wrapped` (``model``, ``steps``, ``source``,
    ``transform``) with the lens's checks of the data given to it.
    """

    @property
    def is_network(self) -> bool:
        """Whether the model is a telescoping MLP (not a tree telescope)."""
        return isinstance(self.model, BaseTelescopingMLP)

    @property
    def is_fitted(self) -> bool:
        """Whether the network has been fitted (trees always are)."""
        return not self.is_network or hasattr(self.model, "run_")

    @property
    def wrapped(self) -> bool:
        """Whether the model was inside a Pipeline or a search."""
        return bool(self.source)

    def training_inputs(self, X, y=None, name: str = "X"):
        """``X`` (transformed for a Pipeline), refused unless its rows are rows of the data the
        model was fitted on; ``y``, when given, checked to have one target per row."""
        Xt = self.transform(X)
        if not self.is_fitted:
            raise NotFittedError(
                f"This {type(self.model).__name__} instance is not fitted yet: fit it first."
            )
        run = getattr(self.model, "run_", None)
        checker = run if run is not None else self.model
        if not hasattr(checker, "check_training_inputs"):
            return Xt  # a model of the stage protocol that keeps no training rows
        try:
            if run is not None:
                run.check_training_inputs(Xt, name, y)
                return Xt
            checked = checker.check_training_inputs(Xt, name)
        except ValueError as exc:
            if "must be rows of the data" not in str(exc) and "other targets" not in str(exc):
                raise
            raise ValueError(f"This model was fitted on other data: {exc} {self.hint()}.") from None
        if y is not None:
            check_targets(y, len(checked), (name, "y"), numeric=False)
        return Xt

    def eval_inputs(self, X_eval, name: str = "X_eval"):
        """``X_eval`` transformed for a Pipeline (checked later, where it is measured); an
        empty one is refused by its name."""
        if X_eval is None or np.shape(X_eval)[:1] == (0,):
            raise ValueError(f"{name} has 0 rows; pass at least one input.")
        return self.transform(X_eval)

    def hint(self) -> str:
        """How to pass data for this subject (for refusals), a sentence without its stop."""
        if self.steps:
            return (
                f"Pass the raw data given to the {self.source}'s fit (its transformers are "
                "applied here, as predict applies them)"
            )
        return "Pass the X given to fit; for a model in a Pipeline, pass the pipeline"


def resolve(model, what: str = "This measurement", *, trees: bool = True) -> Subject:
    """The :class:`Subject` inside ``model``, or a ``TypeError`` that says what is accepted.

    Parameters
    ----------
    model : estimator, Pipeline, search or TreeTelescope
    what : str
        The lens function's name, for messages.
    trees : bool, default=True
        Whether a :class:`~sktelescope.trees.TreeTelescope` (anything with ``stages_`` that
        is not a network) is accepted.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sktelescope import TelescopingMLPRegressor
    >>> pipe = make_pipeline(StandardScaler(), TelescopingMLPRegressor((4,), max_iter=2))
    >>> resolve(pipe.fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])).source
    'Pipeline'
    >>> resolve(StandardScaler(), "kernels")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: kernels needs a TelescopingMLPRegressor or ... got StandardScaler.
    """
    inner = unwrap(model, what)
    if not isinstance(inner.model, BaseTelescopingMLP) and not hasattr(inner.model, "stages_"):
        raise TypeError(
            f"{what} needs a TelescopingMLPRegressor or TelescopingMLPClassifier, a Pipeline "
            "ending in one, a fitted GridSearchCV/RandomizedSearchCV over one, or a "
            f"sktelescope.trees.TreeTelescope (a model with stages_); got "
            f"{type(inner.model).__name__}."
        )
    subject = Subject(inner.model, inner.steps, inner.source)
    if not subject.is_network and not trees:
        raise TypeError(
            f"{what} needs a TelescopingMLPRegressor or TelescopingMLPClassifier (trees have "
            f"no optimizer steps), got {type(subject.model).__name__}."
        )
    if subject.wrapped and not subject.is_fitted:
        raise NotFittedError(
            f"This {subject.source} is not fitted yet: fit it, then pass it to {what}."
        )
    return subject
