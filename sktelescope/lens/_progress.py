"""Lens work that shows its cost: an estimate up front and a progress bar with an ETA.

A replay's cost is set before it starts: its optimizer steps (known from the fit's record),
the rows each step touches and the network's parameters. :class:`Progress` is an observer
that shows that work as a `tqdm` bar over the steps (with tqdm's rate and ETA); like the
benchmark's bars it is off when the output is not a terminal, unless asked for.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from sktelescope._core.network import n_parameters
from sktelescope._core.observers import Observer

__all__ = ["Progress"]


class Progress(Observer):
    """A progress bar over the optimizer steps of a lens replay.

    Parameters
    ----------
    what : str
        The lens function, shown before the bar.
    rows : int
        Rows each step's measurement touches (training rows plus evaluation inputs), shown
        with the steps and the parameters as the work estimate.
    enabled : bool or None, default=None
        ``None``: a bar when the output is a terminal (tqdm's ``disable=None``).

    Examples
    --------
    >>> Progress("effective_parameters", rows=100, enabled=False).describe(50, 1000)
    'effective_parameters: 50 steps x 100 rows x 1,000 parameters'
    """

    def __init__(self, what: str, rows: int, enabled: bool | None = None) -> None:
        self.what, self.rows, self.enabled = what, int(rows), enabled
        self._bar = None

    def describe(self, steps: int, parameters: int) -> str:
        """The work of the replay, in the units its cost grows with."""
        return f"{self.what}: {steps:,} steps x {self.rows:,} rows x {parameters:,} parameters"

    def on_train_begin(self, trainer) -> None:
        steps = max(int(trainer.total_steps) - int(trainer.step), 0)
        disable = None if self.enabled is None else not self.enabled
        self._bar = tqdm(
            total=steps, desc=self.describe(steps, n_parameters(trainer.module)),
            unit="step", disable=disable, leave=False,
        )  # fmt: skip

    def on_step(self, step) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def on_train_end(self, trainer, result) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
