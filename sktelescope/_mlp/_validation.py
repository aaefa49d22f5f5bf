"""Checks an estimator runs before it allocates or trains anything: its architecture, the
memory its network would need, the device, the monitors given to ``fit``. Generic input
checks are in :mod:`sktelescope._checks`."""

from __future__ import annotations

import numpy as np
import torch

from sktelescope._checks import physical_memory

__all__ = ["check_hidden_layer_sizes", "check_monitors", "check_network_memory", "resolve_device"]


def check_hidden_layer_sizes(sizes) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints, or a ValueError.

    Examples
    --------
    >>> check_hidden_layer_sizes([64, 32])
    (64, 32)
    """
    arr = np.asarray(sizes, dtype=object).reshape(-1)
    ok = all(isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1 for s in arr)
    if not ok:
        raise ValueError(
            f"hidden_layer_sizes must be a sequence of positive integers, got {sizes!r}."
        )
    return tuple(int(s) for s in arr)


def check_network_memory(n_params: int, n_checkpoints: int, adaptive: bool) -> int:
    """Bytes the fit will hold for the network; refuse what exceeds physical memory.

    Counts the parameters, their gradients and the optimizer's state (two moments for
    Adam/AdamW, one momentum buffer for SGD) in float32, and the kept checkpoints (one
    parameter vector each, two with Adam's preconditioner).

    Examples
    --------
    >>> check_network_memory(1000, n_checkpoints=51, adaptive=True)
    424000
    """
    per_param = 4 * (4 if adaptive else 3) + 4 * n_checkpoints * (2 if adaptive else 1)
    need = int(n_params) * per_param
    available = physical_memory()
    if available is not None and need > available:
        raise ValueError(
            f"This network has {n_params:,} parameters and would need about "
            f"{need / 2**30:,.1f} GiB (parameters, gradients, optimizer state and "
            f"{n_checkpoints} stage checkpoints), more than this machine's "
            f"{available / 2**30:,.1f} GiB. Use smaller hidden_layer_sizes or fewer "
            "max_stages."
        )
    return need


def resolve_device(device: str) -> torch.device:
    """The torch device for ``device`` ("auto", or any torch device string that works here).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
        torch.empty(1, device=resolved)
    except (RuntimeError, ValueError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"device={device!r} cannot be used here ({first}). Use 'cpu', 'auto' (CUDA when "
            "available), or a torch device this machine has, such as 'cuda:0'."
        ) from None
    if resolved.type == "meta":
        raise ValueError("device='meta' holds no data; use 'cpu' or a GPU device.")
    return resolved


def check_monitors(monitors) -> list:
    """``monitors`` (one observer or a sequence of them) as a list of observers, or a
    TypeError naming what is not one.

    Examples
    --------
    >>> check_monitors(None)
    []
    """
    if monitors is None:
        return []
    single = all(hasattr(monitors, hook) for hook in HOOKS)
    monitors = [monitors] if single else monitors
    try:
        monitors = list(monitors)
    except TypeError:
        monitors = [monitors]
    for m in monitors:
        if not all(hasattr(m, hook) for hook in HOOKS):
            raise TypeError(
                f"monitors must be training observers (subclasses of "
                f"sktelescope.lens.Observer) or a list of them, got {type(m).__name__}."
            )
    return monitors


#: The methods a training observer has.
HOOKS = ("on_train_begin", "on_step", "on_epoch_end", "on_train_end")
