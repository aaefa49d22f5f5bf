"""The checkpoints of one training run: parameters at stage boundaries, and preconditioners.

The store keeps one flat parameter vector per stage boundary (float32, ``4 * n_params``
bytes each, on the CPU) and, for Adam-family optimizers, the diagonal preconditioner that
the first step *of each stage* applied (another ``4 * n_params`` bytes per stage), so that
``stage.kernel(..., preconditioned=True)`` is the kernel that step used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["CheckpointStore"]


@dataclass
class CheckpointStore:
    """Parameter checkpoints at the stage boundaries of one training run.

    ``steps[k]`` is the optimizer step after which ``flats[k]`` was taken (0: the initial
    parameters); stage ``k`` covers steps ``steps[k] + 1 .. steps[k + 1]``.
    ``preconditioners[k]`` is the preconditioner the step ``steps[k] + 1`` applied (``None``
    for SGD, and for the last boundary, which starts no stage).

    Examples
    --------
    >>> store = CheckpointStore()
    >>> store.record(0, torch.zeros(3)); store.record(5, torch.ones(3))
    >>> store.n_stages, store.steps
    (1, [0, 5])
    """

    steps: list[int] = field(default_factory=list)
    flats: list[torch.Tensor] = field(default_factory=list)
    preconditioners: list[torch.Tensor | None] = field(default_factory=list)

    @property
    def n_stages(self) -> int:
        """Number of stages (boundaries minus one)."""
        return max(len(self.flats) - 1, 0)

    def record(self, step: int, flat: torch.Tensor) -> None:
        """Append the parameters reached after optimizer step ``step`` (copied to the CPU)."""
        self.steps.append(int(step))
        self.flats.append(flat.detach().to("cpu", copy=True))
        self.preconditioners.append(None)

    def set_last_preconditioner(self, preconditioner: torch.Tensor | None) -> None:
        """Attach the preconditioner of the stage that starts at the last boundary."""
        if preconditioner is not None:
            preconditioner = preconditioner.detach().to("cpu", copy=True)
        self.preconditioners[-1] = preconditioner

    def thin(self) -> None:
        """Keep every other boundary (the first one included): half as many stages.

        Examples
        --------
        >>> store = CheckpointStore()
        >>> for s in range(5): store.record(s, torch.zeros(1))
        >>> store.thin(); store.steps
        [0, 2, 4]
        """
        self.steps, self.flats = self.steps[::2], self.flats[::2]
        self.preconditioners = self.preconditioners[::2]

    def merge_last_two_stages(self) -> None:
        """Drop the second-to-last boundary, so the last two stages become one."""
        for values in (self.steps, self.flats, self.preconditioners):
            del values[-2]

    def copy(self) -> CheckpointStore:
        """A shallow copy: new lists, the same (never modified) tensors."""
        return CheckpointStore(list(self.steps), list(self.flats), list(self.preconditioners))

    def stacked(self) -> torch.Tensor:
        """All checkpoints as one ``(n_stages + 1, n_params)`` tensor."""
        return torch.stack(self.flats)

    def nbytes(self) -> int:
        """Bytes held by the checkpoints and preconditioners."""
        tensors = self.flats + [p for p in self.preconditioners if p is not None]
        return sum(t.numel() * t.element_size() for t in tensors)
