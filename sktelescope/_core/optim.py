"""Optimizers, the learning-rate schedule, and Adam's preconditioner as a step applied it."""

from __future__ import annotations

import math

import torch

__all__ = ["applied_preconditioner", "learning_rate_factor", "make_optimizer"]


def make_optimizer(
    params,
    name: str = "adam",
    *,
    learning_rate: float = 1e-3,
    momentum: float = 0.9,
    nesterov: bool = False,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Build the torch optimizer called ``name`` ("sgd", "adam" or "adamw").

    The fused (single-kernel) implementation is used where this torch build has one for
    the device: on CPU it is an order of magnitude faster per step than the per-tensor
    loop for small networks, and it is the same algorithm.

    Examples
    --------
    >>> p = [torch.nn.Parameter(torch.zeros(2))]
    >>> type(make_optimizer(p, "sgd")).__name__
    'SGD'
    """
    if name == "sgd":
        kwargs = dict(
            lr=learning_rate, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
        return _fused_if_possible(torch.optim.SGD, params, kwargs)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        kwargs = dict(lr=learning_rate, betas=betas, weight_decay=weight_decay)
        return _fused_if_possible(cls, params, kwargs)
    raise ValueError(f"Unknown optimizer {name!r}; expected 'sgd', 'adam' or 'adamw'.")


def _fused_if_possible(cls, params, kwargs) -> torch.optim.Optimizer:
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, **kwargs)


def is_adaptive(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` preconditions its steps (Adam or AdamW).

    Examples
    --------
    >>> is_adaptive(make_optimizer([torch.nn.Parameter(torch.zeros(1))], "sgd"))
    False
    """
    return isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW)


def applied_preconditioner(optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
    """The diagonal preconditioner that Adam/AdamW's most recent step applied, flat.

    Call it right after ``optimizer.step()``: step ``t`` divides the bias-corrected first
    moment by ``sqrt(v_t / (1 - β2^t)) + ε``, where ``v_t`` already includes the step's own
    squared gradient, so this returns ``1 / (sqrt(v_t / (1 - β2^t)) + ε)`` (PyTorch's ε
    placement and bias correction). A coordinate whose second moment is still zero never
    received a gradient and was not moved: it gets 0, not ``1/ε``. Returns ``None`` for
    other optimizers and before the first step.

    Examples
    --------
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> opt = make_optimizer([p], "adam", learning_rate=0.1)
    >>> p.grad = torch.tensor([2.0, 0.0]); opt.step()
    >>> applied_preconditioner(opt)  # 1 / (|g| + eps) after one step; 0 where no gradient
    tensor([0.5000, 0.0000])
    """
    if not is_adaptive(optimizer):
        return None
    parts = []
    for group in optimizer.param_groups:
        beta2, eps = group["betas"][1], group["eps"]
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state:
                return None
            v = state["exp_avg_sq"]
            v_hat = v / (1 - beta2 ** float(state["step"]))
            inverse = torch.where(v > 0, 1.0 / (v_hat.sqrt() + eps), torch.zeros_like(v))
            parts.append(inverse.reshape(-1))
    return torch.cat(parts)


def learning_rate_factor(
    step: int, total_steps: int, schedule: str = "constant", warmup_steps: int = 0
) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (1-based).

    Linear warm-up over ``warmup_steps``, then constant, a linear decay to zero, or a
    cosine decay to zero over the remaining planned steps.

    Examples
    --------
    >>> learning_rate_factor(1, 100, warmup_steps=4)
    0.25
    >>> learning_rate_factor(100, 100, "linear")
    0.0
    """
    if step <= warmup_steps:
        return step / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))
