"""The optimizer step of the training loop, with torch's fused Adam kernel called directly.

torch's ``Adam.step`` wraps one fused kernel in Python (step hooks, profiler records,
regrouping the tensors by device) that costs about as much as the kernel itself for a
network of a few hundred units (``benchmarks/speed.py --profile``). :class:`OptimizerStep`
calls the same kernels on the same tensors, so a step is bit-identical to
``optimizer.step()``, and falls back to it wherever the two could differ.
"""

from __future__ import annotations

import torch
from torch.optim import optimizer as torch_optimizer

from sktelescope._core.optim import optimizer_spec

__all__ = ["OptimizerStep"]


class OptimizerStep:
    """``optimizer.step()`` and ``zero_grad()``, with the fused Adam/AdamW kernel called
    directly once every parameter has state.

    torch's ``Adam.step`` wraps one fused kernel in Python (step hooks, profiler records,
    regrouping the tensors by device) that costs about as much as the kernel itself for a
    network of a few hundred units (``benchmarks/speed.py --profile``). This calls the same
    kernels (``torch._foreach_add_`` on the step counts, then ``torch._fused_adam_`` /
    ``_fused_adamw_``) on the same tensors with each group's current hyperparameters, so
    the result is bit-identical (``tests/test_training_options.py``). It falls back to
    ``optimizer.step()`` for the first step (which creates the state), for SGD and
    non-fused, amsgrad, maximize, capturable or differentiable groups, when a step hook is
    registered, when a parameter has no gradient, when the state was replaced
    (``load_state_dict``), and for good if this torch's kernels take other arguments.

    Examples
    --------
    >>> p, q = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    >>> ours, torchs = torch.optim.Adam([p], fused=True), torch.optim.Adam([q], fused=True)
    >>> step = OptimizerStep(ours)
    >>> for _ in range(3):
    ...     step.zero_grad(); (p**3).sum().backward(); step()
    ...     torchs.zero_grad(); (q**3).sum().backward(); torchs.step()
    >>> step.direct, torch.equal(p, q)
    (True, True)
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self._kernel = _direct_kernel(optimizer)
        self.direct = self._kernel is not None
        self._state: list | None = None

    def zero_grad(self) -> None:
        """``optimizer.zero_grad(set_to_none=True)``."""
        for p in self.params:
            p.grad = None

    def __call__(self) -> None:
        """One optimizer step."""
        if not (self.direct and self._can_call_directly()):
            self.optimizer.step()
            self._state = None
            return
        kernel = self._kernel
        for group, (params, exp_avgs, exp_avg_sqs, steps) in zip(
            self.optimizer.param_groups, self._state
        ):
            torch._foreach_add_(steps, 1)
            try:
                kernel(
                    params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps,
                    amsgrad=False, lr=group["lr"], beta1=group["betas"][0],
                    beta2=group["betas"][1], weight_decay=group["weight_decay"],
                    eps=group["eps"], maximize=False, grad_scale=None, found_inf=None,
                )  # fmt: skip
            except TypeError:  # this torch's kernel takes other arguments: use its step
                torch._foreach_sub_(steps, 1)
                self.direct = False
                self.optimizer.step()
                return

    def _can_call_directly(self) -> bool:
        state = self.optimizer.state
        if any(p.grad is None or p not in state for p in self.params) or _step_hooks(
            self.optimizer
        ):
            return False
        first = state[self.params[0]]["exp_avg"]
        if self._state is None or self._state[0][1][0] is not first:
            self._state = [
                (
                    list(group["params"]),
                    [state[p]["exp_avg"] for p in group["params"]],
                    [state[p]["exp_avg_sq"] for p in group["params"]],
                    [state[p]["step"] for p in group["params"]],
                )
                for group in self.optimizer.param_groups
            ]
        return True


def _direct_kernel(optimizer: torch.optim.Optimizer):
    """The fused kernel ``optimizer.step()`` would call, or ``None`` when it is not one
    kernel with these plain settings."""
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        return None
    plain = all(
        g.get("fused") and not (g["amsgrad"] or g["maximize"] or g["capturable"])
        and not g["differentiable"] and not isinstance(g["lr"], torch.Tensor)
        for g in optimizer.param_groups
    )  # fmt: skip
    if not plain or not hasattr(torch, "_fused_adam_"):
        return None
    decoupled = optimizer_spec(optimizer).decoupled_decay
    if any(g.get("decoupled_weight_decay", decoupled) != decoupled for g in optimizer.param_groups):
        return None
    return torch._fused_adamw_ if decoupled else torch._fused_adam_


def _step_hooks(optimizer: torch.optim.Optimizer) -> bool:
    return bool(
        optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
        or torch_optimizer._global_optimizer_pre_hooks
        or torch_optimizer._global_optimizer_post_hooks
    )  # fmt: skip
