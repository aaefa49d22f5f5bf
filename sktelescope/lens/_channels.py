"""The optimizer's own affine update applied to the y-channel and constant channel of θ.

Under squared loss the parameters stay affine in the (standardised) training targets
along the first-order dynamics: ``θ_t = D^S_t y + D^C_t`` with ``D^S`` of shape (p, n) and
``D^C`` of shape (p,). Every optimizer state is kept the same way (momentum buffers,
Adam's first moment), and each step applies exactly the update PyTorch applies, with
Adam's second moment frozen at its actual value (see the docs' :ref:`math-smoother`).
Parameter groups may differ in learning rate and weight decay (e.g. biases without decay):
both then act per coordinate, read from the optimizer's groups
(:func:`~sktelescope._core.optim.coordinate_values`).
"""

from __future__ import annotations

import torch

from sktelescope._core.optim import (
    applied_preconditioner,
    coordinate_values,
    optimizer_spec,
    shared_value,
)


def _rows(values: float | torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``values`` (a float or one value per row) times each row of ``matrix``."""
    if isinstance(values, torch.Tensor):
        values = values.to(matrix).reshape(-1, *([1] * (matrix.dim() - 1)))
    return values * matrix


def _is_zero(values: float | torch.Tensor) -> bool:
    return not bool(torch.as_tensor(values).any())


class ChannelOptimizer:
    """Replays ``torch.optim.SGD`` / ``Adam`` / ``AdamW`` on ``(y-channel, constant)`` pairs.

    Parameters
    ----------
    theta0 : torch.Tensor of shape (p,)
        Initial parameters (float64); ``D^S_0 = 0`` and ``D^C_0 = θ_0``.
    n : int
        Number of training targets (columns of the y-channel).

    Examples
    --------
    >>> import torch
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> opt = torch.optim.SGD([p], lr=0.1)
    >>> chan = ChannelOptimizer(torch.zeros(2, dtype=torch.float64), n=3)
    >>> dS, dC = chan.step(opt, torch.ones(2, 3, dtype=torch.float64),
    ...                    torch.zeros(2, dtype=torch.float64))
    >>> dS[0].tolist()
    [-0.1, -0.1, -0.1]
    """

    def __init__(self, theta0: torch.Tensor, n: int) -> None:
        self.S = theta0.new_zeros(len(theta0), n)
        self.C = theta0.clone()
        self.buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def n_buffers(optimizer: torch.optim.Optimizer) -> int:
        """Number of (p, n) y-channel buffers the optimizer needs besides ``D^S``."""
        try:
            spec = optimizer_spec(optimizer)
        except ValueError:
            raise ValueError(
                f"The smoother supports torch.optim.SGD, Adam and AdamW, got "
                f"{type(optimizer).__name__}."
            ) from None
        if spec.adaptive:
            return 1
        return int(shared_value(optimizer, "momentum", 0.0) != 0)

    def step(self, optimizer, grad_S: torch.Tensor, grad_C: torch.Tensor, parameters=None):
        """Apply one optimizer step to the channels; return ``(ΔD^S, ΔD^C)``.

        ``grad_S`` (p, n) and ``grad_C`` (p,) are the y-channel and constant channel of the
        batch gradient; call after ``optimizer.step()`` so Adam's state is the one it used.
        ``parameters`` are the network's in flat order (needed when the optimizer has more
        than one parameter group; default the optimizer's own order).
        """
        spec = optimizer_spec(optimizer)
        parameters = None if parameters is None else list(parameters)
        lr = coordinate_values(optimizer, "lr", parameters)
        wd = coordinate_values(optimizer, "weight_decay", parameters, default=0.0)
        if spec.adaptive and spec.decoupled_decay:
            delta = self._adam(optimizer, lr, grad_S, grad_C, parameters)
            if not _is_zero(wd):
                decay = -lr * wd
                delta = (delta[0] + _rows(decay, self.S), delta[1] + _rows(decay, self.C))
        elif spec.adaptive:
            delta = self._adam(optimizer, lr, *self._with_decay(wd, grad_S, grad_C), parameters)
        else:
            delta = self._sgd(optimizer, lr, *self._with_decay(wd, grad_S, grad_C))
        self.S += delta[0]
        self.C += delta[1]
        return delta

    def _with_decay(self, wd, grad_S, grad_C):
        if _is_zero(wd):
            return grad_S, grad_C
        return grad_S + _rows(wd, self.S), grad_C + _rows(wd, self.C)

    def _sgd(self, optimizer, lr, d_S, d_C):
        mu = shared_value(optimizer, "momentum", 0.0)
        if mu != 0:
            if self.buffers is None:
                self.buffers = (d_S.clone(), d_C.clone())
            else:
                damp = 1.0 - shared_value(optimizer, "dampening", 0.0)
                self.buffers[0].mul_(mu).add_(d_S, alpha=damp)
                self.buffers[1].mul_(mu).add_(d_C, alpha=damp)
            if shared_value(optimizer, "nesterov", False):
                d_S, d_C = d_S + mu * self.buffers[0], d_C + mu * self.buffers[1]
            else:
                d_S, d_C = self.buffers
        return _rows(-lr, d_S), _rows(-lr, d_C)

    def _adam(self, optimizer, lr, g_S, g_C, parameters):
        beta1 = shared_value(optimizer, "betas")[0]
        if self.buffers is None:
            self.buffers = (torch.zeros_like(g_S), torch.zeros_like(g_C))
        self.buffers[0].mul_(beta1).add_(g_S, alpha=1 - beta1)
        self.buffers[1].mul_(beta1).add_(g_C, alpha=1 - beta1)
        first = next(iter(optimizer.state.values()))
        inverse = applied_preconditioner(optimizer, parameters)
        scale = _rows(-lr / (1 - beta1 ** float(first["step"])), inverse.to(g_S))
        return scale[:, None] * self.buffers[0], scale * self.buffers[1]
