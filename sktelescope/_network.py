"""Pure torch: the MLP module, its initialisation and functional helpers.

Nothing here knows about scikit-learn. Parameters travel as one flat vector per
checkpoint (``flatten_parameters``) so that a training run can be stored as a
``(n_checkpoints, n_params)`` tensor and evaluated in one batched call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, jvp, vmap

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


def build_mlp(
    n_inputs: int,
    hidden_layer_sizes: Sequence[int],
    n_outputs: int,
    activation: str = "relu",
    init_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """Build an MLP ``Linear -> act -> ... -> Linear`` initialised from ``generator``.

    Weights and biases are drawn like PyTorch's default ``nn.Linear`` initialisation
    (uniform on ``±1/sqrt(fan_in)``), but from the given generator so the global RNG
    is never touched, then multiplied by ``init_scale`` (the paper's ``α·θ_0``).

    Returns
    -------
    module : torch.nn.Sequential
        Alternating ``nn.Linear`` and activation modules, ending with a linear layer.

    Examples
    --------
    >>> import torch
    >>> net = build_mlp(3, (8,), 1, generator=torch.Generator().manual_seed(0))
    >>> net(torch.zeros(2, 3)).shape
    torch.Size([2, 1])
    """
    sizes = [n_inputs, *hidden_layer_sizes, n_outputs]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.utils.skip_init(nn.Linear, fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    module = nn.Sequential(*layers)
    _initialise(module, init_scale, generator)
    return module


@torch.no_grad()
def _initialise(module: nn.Module, scale: float, generator: torch.Generator | None) -> None:
    for layer in linear_layers(module):
        bound = 1.0 / max(layer.in_features, 1) ** 0.5
        layer.weight.uniform_(-bound, bound, generator=generator).mul_(scale)
        layer.bias.uniform_(-bound, bound, generator=generator).mul_(scale)


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    """Return the ``nn.Linear`` layers of ``module`` in forward order.

    Examples
    --------
    >>> len(linear_layers(build_mlp(3, (4, 4), 1)))
    3
    """
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def n_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module``.

    Examples
    --------
    >>> n_parameters(build_mlp(2, (), 1))
    3
    """
    return sum(p.numel() for p in module.parameters())


def flatten_parameters(module: nn.Module) -> torch.Tensor:
    """Concatenate all parameters of ``module`` into one detached 1-D tensor (a copy).

    Examples
    --------
    >>> flatten_parameters(build_mlp(2, (), 1)).shape
    torch.Size([3])
    """
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def unflatten_parameters(module: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split ``flat`` (``(..., n_params)``) into a name -> tensor dict for ``functional_call``.

    Leading batch dimensions are kept, so a stack of checkpoints becomes a dict of
    stacked parameters suitable for ``torch.func.vmap``.

    Examples
    --------
    >>> net = build_mlp(2, (), 1)
    >>> {k: tuple(v.shape) for k, v in unflatten_parameters(net, torch.zeros(3)).items()}
    {'0.weight': (1, 2), '0.bias': (1,)}
    """
    lead = flat.shape[:-1]
    out, offset = {}, 0
    for name, param in module.named_parameters():
        n = param.numel()
        out[name] = flat[..., offset : offset + n].reshape(*lead, *param.shape)
        offset += n
    return out


def forward_flat(module: nn.Module, flat: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Evaluate ``module`` at the flat parameter vector ``flat`` on inputs ``X``.

    Examples
    --------
    >>> net = build_mlp(2, (), 1)
    >>> forward_flat(net, torch.ones(3), torch.ones(4, 2)).flatten().tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    return functional_call(module, unflatten_parameters(module, flat), (X,))


def forward_stacked(
    module: nn.Module, flats: torch.Tensor, X: torch.Tensor, chunk_size: int = 64
) -> torch.Tensor:
    """Evaluate a stack of checkpoints ``flats`` (``(K, n_params)``) on ``X`` in batched calls.

    Uses ``torch.func.vmap`` over ``functional_call``; ``chunk_size`` bounds the
    activation memory (about ``chunk_size * len(X) * width`` floats).

    Returns
    -------
    outputs : torch.Tensor of shape (K, len(X), n_outputs)

    Examples
    --------
    >>> net = build_mlp(2, (), 1)
    >>> forward_stacked(net, torch.ones(5, 3), torch.ones(4, 2)).shape
    torch.Size([5, 4, 1])
    """

    def one(flat: torch.Tensor) -> torch.Tensor:
        return forward_flat(module, flat, X)

    batched = vmap(one, chunk_size=chunk_size)
    with torch.no_grad():
        return batched(flats)


def linearised_increment(
    module: nn.Module, flat: torch.Tensor, delta: torch.Tensor, X: torch.Tensor
) -> torch.Tensor:
    """First-order change ``∇f_θ(X) · Δθ`` as one forward-mode JVP (no Jacobian is formed).

    Examples
    --------
    >>> net = build_mlp(2, (), 1)
    >>> linearised_increment(net, torch.zeros(3), torch.ones(3), torch.ones(4, 2)).flatten()
    tensor([3., 3., 3., 3.])
    """

    def f(p: torch.Tensor) -> torch.Tensor:
        return forward_flat(module, p, X)

    with torch.no_grad():
        return jvp(f, (flat,), (delta,))[1]
