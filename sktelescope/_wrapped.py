"""A model as the user has it: on its own, as a Pipeline's last step, or inside a fitted search.

The lens and :class:`~sktelescope.trees.TreeTelescope` measure the model at the end of a
:class:`~sklearn.pipeline.Pipeline` (after its transformers, as ``predict`` applies them) or
the ``best_estimator_`` of a fitted ``GridSearchCV``/``RandomizedSearchCV``. :func:`unwrap`
finds that model and the transformers in front of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

__all__ = ["Wrapped", "unwrap"]


@dataclass
class Wrapped:
    """The model inside what was passed, and what stands in front of it.

    Attributes
    ----------
    model : estimator
        The innermost model (a Pipeline's last step, a search's best estimator).
    steps : list of (name, transformer)
        The fitted transformers applied before it, in order (empty for a bare model).
    source : str
        The class name of what wrapped it ("Pipeline", "GridSearchCV", ...), "" when bare.
    """

    model: object
    steps: list = field(default_factory=list)
    source: str = ""

    def transform(self, X):
        """Raw inputs -> the model's inputs (the transformers, in order); ``None`` stays."""
        if X is None:
            return None
        for _, step in self.steps:
            X = step.transform(X)
        return X


def unwrap(model, what: str = "This measurement") -> Wrapped:
    """The model at the end of Pipelines and fitted searches, and the transformers before it.

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> inner = unwrap(make_pipeline(StandardScaler(), Ridge()))
    >>> type(inner.model).__name__, [name for name, _ in inner.steps], inner.source
    ('Ridge', ['standardscaler'], 'Pipeline')
    """
    return _unwrap(model, what, [], "")


def _unwrap(model, what: str, steps: list, source: str) -> Wrapped:
    if isinstance(model, Pipeline):
        if not model.steps:
            raise TypeError(f"{what} got an empty Pipeline.")
        front = [(n, step) for n, step in model.steps[:-1] if step not in (None, "passthrough")]
        return _unwrap(model.steps[-1][1], what, steps + front, source or "Pipeline")
    if hasattr(model, "cv_results_") or hasattr(model, "param_distributions"):
        name = type(model).__name__
        if not hasattr(model, "cv_results_"):
            raise NotFittedError(f"This {name} is not fitted yet: fit it, then pass it to {what}.")
        if not hasattr(model, "best_estimator_"):
            raise ValueError(
                f"This {name} was fitted with refit=False, so it has no best_estimator_ to "
                "measure; fit it with refit=True, or pass the estimator you refitted."
            )
        return _unwrap(model.best_estimator_, what, steps, source or name)
    return Wrapped(model, steps, source)
