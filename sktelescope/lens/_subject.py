"""What a lens function measures: the telescoping model inside whatever the user passes.

Every lens function takes the model as the user has it: a fitted ``TelescopingMLP*``, a
:class:`~sklearn.pipeline.Pipeline` whose last step is one (its other steps are applied to
every input, as ``predict`` applies them), a fitted ``GridSearchCV``/``RandomizedSearchCV``
(its ``best_estimator_``), or a :class:`~sktelescope.trees.TreeTelescope` where the
measurement applies to trees. :func:`resolve` finds the model and the input transform;
:class:`Subject` carries both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from sktelescope._checks import check_targets
from sktelescope._mlp import BaseTelescopingMLP

__all__ = ["Subject", "resolve"]


@dataclass
class Subject:
    """The model a lens function measures, and how raw inputs reach it.

    Attributes
    ----------
    model : TelescopingMLP* estimator or TreeTelescope
        The telescoping model (a Pipeline's last step, a search's best estimator).
    steps : list of (name, transformer)
        The fitted transformers in front of it (empty for a bare model).
    source : str
        What the user passed, for messages ("Pipeline", "GridSearchCV", ...).
    """

    model: object
    steps: list = field(default_factory=list)
    source: str = ""

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

    def transform(self, X):
        """Raw inputs -> the model's inputs (the pipeline's transformers, in order)."""
        if X is None:
            return None
        for _, step in self.steps:
            X = step.transform(X)
        return X

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
    subject = _unwrap(model, what, [], "")
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


def _unwrap(model, what: str, steps: list, source: str) -> Subject:
    if isinstance(model, BaseTelescopingMLP):
        return Subject(model, steps, source)
    if isinstance(model, Pipeline):
        if not model.steps:
            raise TypeError(f"{what} got an empty Pipeline.")
        front = [(n, step) for n, step in model.steps[:-1] if step not in (None, "passthrough")]
        return _unwrap(model.steps[-1][1], what, steps + front, source or "Pipeline")
    if hasattr(model, "cv_results_") or hasattr(model, "param_distributions"):
        return _unwrap_search(model, what, steps, source)
    if hasattr(model, "stages_"):  # a TreeTelescope, or any model of the stage protocol
        return Subject(model, steps, source)
    raise TypeError(
        f"{what} needs a TelescopingMLPRegressor or TelescopingMLPClassifier, a Pipeline "
        "ending in one, a fitted GridSearchCV/RandomizedSearchCV over one, or a "
        f"sktelescope.trees.TreeTelescope (a model with stages_); got {type(model).__name__}."
    )


def _unwrap_search(search, what: str, steps: list, source: str) -> Subject:
    name = type(search).__name__
    if not hasattr(search, "cv_results_"):
        raise NotFittedError(f"This {name} is not fitted yet: fit it, then pass it to {what}.")
    if not hasattr(search, "best_estimator_"):
        raise ValueError(
            f"This {name} was fitted with refit=False, so it has no best_estimator_ to "
            f"measure; fit it with refit=True, or pass the estimator you refitted."
        )
    return _unwrap(search.best_estimator_, what, steps, source or name)
