"""Warnings and errors that sktelescope raises besides scikit-learn's own."""

from __future__ import annotations

__all__ = ["FitInterruptedWarning"]


class FitInterruptedWarning(UserWarning):
    """A fit was interrupted (Ctrl-C) and keeps the parameters of the steps it finished.

    Code that must not mistake a half-trained model for a finished one (the benchmark,
    a scheduler) can turn it into an error::

        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error", FitInterruptedWarning)
            est.fit(X, y)   # raises FitInterruptedWarning on Ctrl-C

    Examples
    --------
    >>> issubclass(FitInterruptedWarning, UserWarning)
    True
    """
