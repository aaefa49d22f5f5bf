"""Optimizers and learning-rate schedules: the one table the package reads them from.

:data:`OPTIMIZERS` names every optimizer an estimator accepts, with what the lens needs to
know about it (does it precondition its steps, is its weight decay decoupled); the
estimators' parameter constraints, the trainer (:func:`make_optimizer`) and the lens's
preconditioner and channel replay all read it. :data:`SCHEDULES` does the same for
``lr_schedule``.

With ``weight_decay_biases=False`` the biases form an optimizer parameter group without
weight decay (:func:`parameter_groups`); otherwise, and whenever there is no decay, the
network is one group, exactly as torch builds it from a parameter list. Everything the lens
reads per coordinate (:func:`coordinate_values`, :func:`applied_preconditioner`) is laid
out in the network's flat parameter order, whatever the grouping. (Layers that learn at
their own rate are a parametrisation, not a group: :mod:`sktelescope._core.layers`.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import torch
from torch import nn

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "OptimizerSpec",
    "PreconditionerRecord",
    "applied_preconditioner",
    "coordinate_values",
    "is_adaptive",
    "learning_rate_factor",
    "load_optimizer_state",
    "make_optimizer",
    "optimizer_spec",
    "parameter_groups",
    "record_preconditioner",
    "save_optimizer_state",
    "shared_value",
]


@dataclass(frozen=True)
class OptimizerSpec:
    """What the package knows about one optimizer.

    Attributes
    ----------
    torch_class : type
        The ``torch.optim`` class.
    options : callable
        ``settings -> dict`` of the class's keyword arguments besides ``lr`` and
        ``weight_decay``, read from the estimator's own parameter names (``momentum``,
        ``nesterov``, ``beta_1``, ``beta_2``).
    adaptive : bool
        Whether a step is preconditioned by Adam's second moment.
    decoupled_decay : bool
        Whether weight decay shrinks the parameters directly (AdamW) instead of adding
        ``λθ`` to the gradient (SGD, Adam).
    """

    torch_class: type
    options: Callable[[object], dict]
    adaptive: bool
    decoupled_decay: bool


def _sgd_options(settings) -> dict:
    return dict(momentum=settings.momentum, nesterov=settings.nesterov)


def _adam_options(settings) -> dict:
    return dict(betas=(settings.beta_1, settings.beta_2))


#: The optimizers an estimator accepts (``optimizer=``), by name.
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(torch.optim.SGD, _sgd_options, adaptive=False, decoupled_decay=False),
    "adam": OptimizerSpec(torch.optim.Adam, _adam_options, adaptive=True, decoupled_decay=False),
    "adamw": OptimizerSpec(torch.optim.AdamW, _adam_options, adaptive=True, decoupled_decay=True),
}


def optimizer_spec(optimizer: torch.optim.Optimizer) -> OptimizerSpec:
    """The :data:`OPTIMIZERS` entry of a torch optimizer (AdamW before Adam: in recent
    torch AdamW subclasses Adam).

    Raises ``ValueError`` for an optimizer the table does not know.

    Examples
    --------
    >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    >>> optimizer_spec(opt).decoupled_decay
    True
    """
    by_specificity = sorted(OPTIMIZERS.values(), key=lambda s: -len(s.torch_class.__mro__))
    for spec in by_specificity:
        if isinstance(optimizer, spec.torch_class):
            return spec
    known = ", ".join(s.torch_class.__name__ for s in OPTIMIZERS.values())
    raise ValueError(f"Unsupported optimizer {type(optimizer).__name__}; expected {known}.")


def is_adaptive(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` preconditions its steps (Adam or AdamW).

    Examples
    --------
    >>> is_adaptive(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    False
    """
    return optimizer_spec(optimizer).adaptive


# ----------------------------------------------------------------------------- groups


def parameter_groups(module: nn.Module, settings) -> list[dict] | list[nn.Parameter]:
    """The module's parameters as optimizer groups: with ``settings.weight_decay > 0`` and
    ``settings.weight_decay_biases=False``, one group of the weights and one of the
    parameters named ``bias`` (decay 0), in the order they first appear; else the plain
    parameter list (one group, as torch builds it).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> groups = parameter_groups(net, SimpleNamespace(weight_decay=0.1, weight_decay_biases=False))
    >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
    [(2, 0.1), (2, 0.0)]
    """
    if settings.weight_decay == 0 or getattr(settings, "weight_decay_biases", True):
        return list(module.parameters())
    decayed, biases = [], []
    for name, p in module.named_parameters():
        (biases if name.rsplit(".", 1)[-1] == "bias" else decayed).append(p)
    groups = [
        {"params": decayed, "weight_decay": settings.weight_decay},
        {"params": biases, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(module: nn.Module, settings) -> torch.optim.Optimizer:
    """The torch optimizer ``settings.optimizer`` over ``module``'s parameter groups.

    ``settings`` holds the estimator's parameters under their own names (a
    :class:`~sktelescope._core.training.TrainConfig`): ``optimizer``, ``learning_rate``,
    ``weight_decay``, ``weight_decay_biases`` and those the optimizer reads (see
    :class:`OptimizerSpec`). The fused (single-kernel) implementation is used where this
    torch build has one for the device: on CPU it is an order of magnitude faster per step
    than the per-tensor loop for small networks, and it is the same algorithm.

    Examples
    --------
    >>> from sktelescope._core.training import TrainConfig
    >>> type(make_optimizer(torch.nn.Linear(2, 1), TrainConfig(optimizer="sgd"))).__name__
    'SGD'
    """
    if settings.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer {settings.optimizer!r}; expected one of {sorted(OPTIMIZERS)}."
        )
    spec = OPTIMIZERS[settings.optimizer]
    kwargs = dict(
        lr=settings.learning_rate, weight_decay=settings.weight_decay, **spec.options(settings)
    )
    groups = parameter_groups(module, settings)
    try:
        return spec.torch_class(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return spec.torch_class(groups, **kwargs)


def save_optimizer_state(optimizer: torch.optim.Optimizer, parameters: Iterable) -> dict:
    """``optimizer.state_dict()`` with each parameter numbered by its position in
    ``parameters`` (the network's flat order) instead of its place among the groups.

    So numbered, the state loads into an optimizer of the same network that groups its
    parameters otherwise (:func:`load_optimizer_state`); with one group both numberings
    agree.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.SGD([{"params": [net.bias]}, {"params": [net.weight]}], lr=0.1)
    >>> [g["params"] for g in save_optimizer_state(opt, net.parameters())["param_groups"]]
    [[1], [0]]
    """
    state = optimizer.state_dict()
    position = {id(p): k for k, p in enumerate(parameters)}
    own = [p for group in optimizer.param_groups for p in group["params"]]
    renumber = {i: position[id(p)] for i, p in enumerate(own)}
    return {
        "state": {renumber[i]: value for i, value in state["state"].items()},
        "param_groups": [
            dict(group, params=[renumber[i] for i in group["params"]])
            for group in state["param_groups"]
        ],
    }


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, state: Mapping, parameters: Iterable
) -> None:
    """Load a state saved by :func:`save_optimizer_state`, whatever the grouping of either.

    Per-parameter state (momentum, Adam's moments and step counts) moves over parameter by
    parameter; the groups' hyperparameters stay those ``optimizer`` was built with (a
    continued fit takes its new settings).

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.Adam(net.parameters())
    >>> net(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> saved = save_optimizer_state(opt, net.parameters())
    >>> again = torch.optim.Adam([{"params": [net.bias]}, {"params": [net.weight]}])
    >>> load_optimizer_state(again, saved, net.parameters())
    >>> torch.equal(again.state[net.bias]["exp_avg"], opt.state[net.bias]["exp_avg"])
    True
    """
    params = list(parameters)
    n_saved = sum(len(group["params"]) for group in state["param_groups"])
    own = [p for group in optimizer.param_groups for p in group["params"]]
    if n_saved != len(own) or len(own) != len(params):
        raise ValueError(
            f"The saved optimizer state holds {n_saved} parameter tensors, this optimizer "
            f"{len(own)}: they are not states of the same network."
        )
    position = {id(p): k for k, p in enumerate(params)}
    saved = state["state"]
    mine = {i: saved[position[id(p)]] for i, p in enumerate(own) if position[id(p)] in saved}
    optimizer.load_state_dict(
        {"state": mine, "param_groups": optimizer.state_dict()["param_groups"]}
    )


# ----------------------------------------------------------------------------- per coordinate


def _flat_groups(optimizer: torch.optim.Optimizer, parameters: Iterable | None):
    """``(parameter, group)`` pairs in the flat order of ``parameters`` (default: the
    optimizer's own order, which is the network's when there is one group)."""
    groups = optimizer.param_groups
    if parameters is None:
        return [(p, g) for g in groups for p in g["params"]]
    if len(groups) == 1:
        return [(p, groups[0]) for p in parameters]
    group_of = {id(p): g for g in groups for p in g["params"]}
    return [(p, group_of[id(p)]) for p in parameters]


def shared_value(optimizer: torch.optim.Optimizer, key: str, default=None):
    """A hyperparameter every parameter group has the same value of (``betas``, ``eps``,
    ``momentum``, ...); ``ValueError`` when the groups differ.

    Examples
    --------
    >>> shared_value(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), "lr")
    0.1
    """
    values = {repr(g.get(key, default)): g.get(key, default) for g in optimizer.param_groups}
    if len(values) > 1:
        raise ValueError(
            f"The optimizer's parameter groups differ in {key!r} ({sorted(values)}); the lens "
            f"replays groups that differ only in learning rate and weight decay."
        )
    return next(iter(values.values()))


def coordinate_values(
    optimizer: torch.optim.Optimizer, key: str, parameters: Iterable | None = None,
    default: float = 1.0,
) -> float | torch.Tensor:  # fmt: skip
    """Hyperparameter ``key`` of every coordinate: a float when all groups agree, else a
    flat float64 tensor in the order of ``parameters`` (e.g. ``module.parameters()``).

    Examples
    --------
    >>> w, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    >>> opt = torch.optim.SGD([{"params": [w]}, {"params": [b], "weight_decay": 0.0}],
    ...                       lr=0.1, weight_decay=0.5)
    >>> coordinate_values(opt, "weight_decay", [w, b]).tolist(), coordinate_values(opt, "lr")
    ([0.5, 0.5, 0.0], 0.1)
    """
    pairs = _flat_groups(optimizer, parameters)
    values = [float(g.get(key, default)) for _, g in pairs]
    if len(set(values)) <= 1:
        return values[0] if values else float(default)
    return torch.cat(
        [torch.full((p.numel(),), v, dtype=torch.float64) for (p, _), v in zip(pairs, values)]
    )


@dataclass
class PreconditionerRecord:
    """What Adam's most recent step leaves to compute its preconditioner from, later.

    A flat copy of the second moment ``v_t``, the step count, β₂ and ε: :meth:`value` is
    :func:`applied_preconditioner` of that step, to
    the bit. Recording costs one copy of ``v`` (``4 p`` bytes) and defers the arithmetic
    (a square root and a division per coordinate) to the first time it is read, which most
    runs never do (the stage recorder takes one at every stage).

    Examples
    --------
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> opt = torch.optim.Adam([p], lr=0.1)
    >>> p.grad = torch.tensor([2.0, 0.0]); opt.step()
    >>> torch.equal(record_preconditioner(opt).value(), applied_preconditioner(opt))
    True
    """

    exp_avg_sq: torch.Tensor
    step: float
    beta2: float
    eps: float

    def value(self) -> torch.Tensor:
        """``1 / (sqrt(v / (1 - β2^step)) + ε)``, 0 where ``v`` is 0."""
        v = self.exp_avg_sq
        v_hat = v / (1 - self.beta2**self.step)
        return torch.where(v > 0, 1.0 / (v_hat.sqrt() + self.eps), torch.zeros_like(v))

    @property
    def nbytes(self) -> int:
        """Bytes held (the copy of the second moment)."""
        return self.exp_avg_sq.numel() * self.exp_avg_sq.element_size()

    def cpu(self) -> PreconditionerRecord:
        """This record with its tensors on the CPU (itself when they are there)."""
        if self.exp_avg_sq.device.type == "cpu":
            return self
        return replace(self, exp_avg_sq=self.exp_avg_sq.cpu())


def record_preconditioner(
    optimizer: torch.optim.Optimizer, parameters: Iterable | None = None
) -> PreconditionerRecord | None:
    """What :func:`applied_preconditioner` returns, without its arithmetic yet: for
    Adam/AdamW a :class:`PreconditionerRecord` (``None`` before the first step), for SGD
    ``None``. Arguments as for :func:`applied_preconditioner`.

    Examples
    --------
    >>> record_preconditioner(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    """
    if not is_adaptive(optimizer):
        return None
    pairs = _flat_groups(optimizer, parameters)
    states = [optimizer.state.get(p) for p, _ in pairs]
    if not pairs or not all(states):
        return None
    v = torch.cat([state["exp_avg_sq"].reshape(-1) for state in states])  # a copy
    return PreconditionerRecord(
        v, float(states[0]["step"]), shared_value(optimizer, "betas")[1],
        shared_value(optimizer, "eps"),
    )  # fmt: skip


def applied_preconditioner(
    optimizer: torch.optim.Optimizer, parameters: Iterable | None = None
) -> torch.Tensor | None:
    """The diagonal preconditioner the optimizer's most recent step applied, flat.

    Call it right after ``optimizer.step()``, with the network's parameters (their order
    is the flat order; default the optimizer's own, which is the network's for one group).
    Adam/AdamW's step ``t`` divides the bias-corrected first moment by
    ``sqrt(v_t / (1 - β2^t)) + ε``, where ``v_t`` already includes the step's own squared
    gradient, so this returns ``1 / (sqrt(v_t / (1 - β2^t)) + ε)`` (PyTorch's ε placement
    and bias correction). A coordinate whose second moment is still zero never received a
    gradient and was not moved: it gets 0, not ``1/ε``. Returns ``None`` for other
    optimizers and before the first step.

    Examples
    --------
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> opt = torch.optim.Adam([p], lr=0.1)
    >>> p.grad = torch.tensor([2.0, 0.0]); opt.step()
    >>> applied_preconditioner(opt)  # 1 / (|g| + eps) after one step; 0 where no gradient
    tensor([0.5000, 0.0000])
    """
    record = record_preconditioner(optimizer, parameters)
    return None if record is None else record.value()


# ----------------------------------------------------------------------------- schedules


def _constant(progress: float) -> float:
    return 1.0


def _linear(progress: float) -> float:
    return 1.0 - progress


def _cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _flat_cosine(progress: float) -> float:
    """RealMLP's "flat_cos": flat for the first half, a cosine to zero over the second."""
    return 1.0 if progress <= 0.5 else _cosine(2.0 * progress - 1.0)


def _coslog4(progress: float) -> float:
    """RealMLP's "coslog4": four cosine cycles of lengths 1, 2, 4, 8 (in fifteenths of the
    run), each rising from 0 to 1 and back: ``(1 - cos(2π log2(1 + 15 t))) / 2``."""
    return 0.5 * (1.0 - math.cos(2.0 * math.pi * math.log2(1.0 + 15.0 * progress)))


#: Learning-rate schedules (``lr_schedule=``): the factor of the base rate as a function of
#: the progress ``t`` in ``[0, 1]`` through the steps after warm-up.
SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": _constant,
    "linear": _linear,
    "cosine": _cosine,
    "flat_cosine": _flat_cosine,
    "coslog4": _coslog4,
}


def learning_rate_factor(
    step: int, total_steps: int, schedule: str = "constant", warmup_steps: int = 0
) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (1-based).

    Linear warm-up over ``warmup_steps``, then the :data:`SCHEDULES` entry ``schedule``
    over the remaining planned steps (progress ``t = (step - warmup) / remaining``, so the
    last planned step has ``t = 1``).

    Examples
    --------
    >>> learning_rate_factor(1, 100, warmup_steps=4)
    0.25
    >>> learning_rate_factor(100, 100, "linear")
    0.0
    >>> learning_rate_factor(25, 100, "flat_cosine"), learning_rate_factor(100, 100, "coslog4")
    (1.0, 0.0)
    """
    if step <= warmup_steps:
        return step / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return SCHEDULES[schedule](progress)
