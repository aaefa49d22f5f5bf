"""The optimizer's own affine update applied to the y-channel and constant channel of θ.

Under squared loss the parameters stay affine in the (standardised) training targets
along the first-order dynamics: ``θ_t = D^S_t y + D^C_t`` with ``D^S`` of shape (p, n) and
``D^C`` of shape (p,). Every optimizer state is kept the same way (momentum buffers,
Adam's first moment), and each step applies exactly the update PyTorch applies, with
Adam's second moment frozen at its actual value (see the docs' :ref:`math-smoother`).
"""

from __future__ import annotations

import torch

from sktelescope._core.optim import applied_preconditioner, is_adaptive


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
        if is_adaptive(optimizer):
            return 1
        if isinstance(optimizer, torch.optim.SGD):
            return int(optimizer.param_groups[0]["momentum"] != 0)
        raise ValueError(
            f"The smoother supports torch.optim.SGD, Adam and AdamW, got "
            f"{type(optimizer).__name__}."
        )

    def step(self, optimizer, grad_S: torch.Tensor, grad_C: torch.Tensor):
        """Apply one optimizer step to the channels; return ``(ΔD^S, ΔD^C)``.

        ``grad_S`` (p, n) and ``grad_C`` (p,) are the y-channel and constant channel of the
        batch gradient; call after ``optimizer.step()`` so Adam's state is the one it used.
        """
        group = optimizer.param_groups[0]
        if isinstance(optimizer, torch.optim.AdamW):
            delta = self._adam(optimizer, group, grad_S, grad_C)
            decay = -group["lr"] * group["weight_decay"]
            delta = (delta[0] + decay * self.S, delta[1] + decay * self.C)
        elif isinstance(optimizer, torch.optim.Adam):
            grads = self._with_decay(group, grad_S, grad_C)
            delta = self._adam(optimizer, group, *grads)
        else:
            delta = self._sgd(group, *self._with_decay(group, grad_S, grad_C))
        self.S += delta[0]
        self.C += delta[1]
        return delta

    def _with_decay(self, group, grad_S, grad_C):
        wd = group["weight_decay"]
        if wd == 0:
            return grad_S, grad_C
        return grad_S + wd * self.S, grad_C + wd * self.C

    def _sgd(self, group, d_S, d_C):
        mu, lr = group["momentum"], group["lr"]
        if mu != 0:
            if self.buffers is None:
                self.buffers = (d_S.clone(), d_C.clone())
            else:
                damp = 1.0 - group["dampening"]
                self.buffers[0].mul_(mu).add_(d_S, alpha=damp)
                self.buffers[1].mul_(mu).add_(d_C, alpha=damp)
            if group["nesterov"]:
                d_S, d_C = d_S + mu * self.buffers[0], d_C + mu * self.buffers[1]
            else:
                d_S, d_C = self.buffers
        return -lr * d_S, -lr * d_C

    def _adam(self, optimizer, group, g_S, g_C):
        beta1 = group["betas"][0]
        if self.buffers is None:
            self.buffers = (torch.zeros_like(g_S), torch.zeros_like(g_C))
        self.buffers[0].mul_(beta1).add_(g_S, alpha=1 - beta1)
        self.buffers[1].mul_(beta1).add_(g_C, alpha=1 - beta1)
        first = next(iter(optimizer.state.values()))
        scale = -group["lr"] / (1 - beta1 ** float(first["step"]))
        precond = applied_preconditioner(optimizer).to(g_S)
        return (scale * precond[:, None]) * self.buffers[0], scale * precond * self.buffers[1]
