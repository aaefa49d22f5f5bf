"""The checkpoints of one training run: parameters at stage boundaries, and preconditioners.

The store keeps one flat parameter vector per stage boundary (float32, ``4 * n_params``
bytes each, on the CPU) and, for Adam-family optimizers, the diagonal preconditioner that
the first step *of each stage* applied (another ``4 * n_params`` bytes per stage), so that
``stage.kernel(..., preconditioned=True)`` is the kernel that step used. A preconditioner
may be stored as a record of the optimizer's second moment
(:class:`~sktelescope._core.optim.PreconditionerRecord`) and computed when first read
(:meth:`CheckpointStore.preconditioner`): recording a stage then costs copies only.
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
    ``preconditioner(k)`` is the preconditioner the step ``steps[k] + 1`` applied (``None``
    for SGD, and for the last boundary, which starts no stage); ``preconditioners[k]``
    holds it or the record it is computed from.

    Examples
    --------
    >>> store = CheckpointStore()
    >>> store.record(0, torch.zeros(3)); store.record(5, torch.ones(3))
    >>> store.n_stages, store.steps
    (1, [0, 5])
    """

    steps: list[int] = field(default_factory=list)
    flats: list[torch.Tensor] = field(default_factory=list)
    preconditioners: list = field(default_factory=list)

    @property
    def n_stages(self) -> int:
        """Number of stages (boundaries minus one)."""
        return max(len(self.flats) - 1, 0)

    def record(self, step: int, flat: torch.Tensor, *, owned: bool = False) -> None:
        """Append the parameters reached after optimizer step ``step`` (copied to the CPU;
        ``owned=True`` for a tensor nothing else holds, e.g. a fresh ``flatten_parameters``,
        which is then kept without a copy when already on the CPU)."""
        self.steps.append(int(step))
        self.flats.append(flat.detach().to("cpu", copy=not owned))
        self.preconditioners.append(None)

    def set_last_preconditioner(self, preconditioner) -> None:
        """Attach the preconditioner of the stage that starts at the last boundary: a
        tensor (copied to the CPU), a record to compute it from (see the module doc), or
        ``None``."""
        if isinstance(preconditioner, torch.Tensor):
            preconditioner = preconditioner.detach().to("cpu", copy=True)
        elif preconditioner is not None:
            preconditioner = preconditioner.cpu()
        self.preconditioners[-1] = preconditioner

    def preconditioner(self, k: int) -> torch.Tensor | None:
        """The preconditioner of stage ``k`` (computed from its record on first read).

        Examples
        --------
        >>> store = CheckpointStore()
        >>> store.record(0, torch.zeros(2)); store.set_last_preconditioner(torch.ones(2))
        >>> store.preconditioner(0)
        tensor([1., 1.])
        """
        value = self.preconditioners[k]
        if value is not None and not isinstance(value, torch.Tensor):
            value = self.preconditioners[k] = value.value()
        return value

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
        held = sum(t.numel() * t.element_size() for t in self.flats)
        for p in self.preconditioners:
            if isinstance(p, torch.Tensor):
                held += p.numel() * p.element_size()
            elif p is not None:
                held += p.nbytes
        return held
