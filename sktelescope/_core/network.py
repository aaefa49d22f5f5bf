"""Pure torch: the MLP module, its initialisation and functional evaluation.

Nothing here knows about scikit-learn. Parameters travel as one flat vector per
checkpoint (``flatten_parameters``) so that a training run can be stored as a
``(n_checkpoints, n_params)`` tensor and evaluated in one batched call.

Evaluation never writes to a module: ``forward_flat`` and ``forward_stacked`` read the
layer structure of ``module`` and apply ``torch.nn.functional.linear`` (or a batched
``baddbmm`` for a stack of checkpoints) to the given parameters, and each other layer's
own functional ``evaluate`` (:mod:`sktelescope._core.layers`). Several threads can
therefore evaluate one fitted network at once; ``torch.func.functional_call``, which
swaps a module's parameters for the duration of the call, cannot.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sktelescope._core.architecture import Architecture, initialise_extra_layers
from sktelescope._core.autodiff import primal, tangent
from sktelescope._core.layers import SeededDropout, TangentLayer, layer_parameters

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "selu": nn.SELU,
    "mish": nn.Mish,
    "identity": nn.Identity,
}


def build_mlp(
    n_inputs: int,
    hidden_layer_sizes: Sequence[int],
    n_outputs: int,
    activation: str = "relu",
    init_scale: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    architecture: Architecture | None = None,
    inputs: torch.Tensor | None = None,
) -> nn.Sequential:
    """Build an MLP ``Linear -> act -> ... -> Linear`` initialised from ``generator``.

    Weights and biases are drawn like PyTorch's default ``nn.Linear`` initialisation
    (uniform on ``±1/sqrt(fan_in)``), but from the given generator so the global RNG
    is never touched, then multiplied by ``init_scale`` (the paper's ``α·θ_0``).

    ``architecture`` adds layers (:class:`~sktelescope._core.architecture.Architecture`:
    a numerical embedding and a feature scale before the first linear layer, dropout
    after every hidden activation); their parameters are drawn after the linear layers'
    and are not multiplied by ``init_scale``. ``inputs`` (training inputs in the network's
    input space) are needed by the piecewise-linear embedding, which fits its bins on them.
    Without ``architecture`` the network is the plain one.

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
    arch = Architecture() if architecture is None else architecture
    sizes = [arch.first_fan_in(n_inputs), *hidden_layer_sizes, n_outputs]
    layers: list[nn.Module] = arch.front_layers(n_inputs, inputs)
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.utils.skip_init(nn.Linear, fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            layers.extend(arch.dropout_layer())
    module = nn.Sequential(*layers)
    _initialise(module, init_scale, generator)
    initialise_extra_layers(module, generator)
    return module


def count_mlp_parameters(
    n_inputs: int,
    hidden_layer_sizes: Sequence[int],
    n_outputs: int,
    architecture: Architecture | None = None,
) -> int:
    """Number of parameters ``build_mlp`` would create, computed without allocating them.

    Examples
    --------
    >>> count_mlp_parameters(20, (256, 256), 1)
    71425
    """
    arch = Architecture() if architecture is None else architecture
    return arch.count_parameters(n_inputs, hidden_layer_sizes, n_outputs)


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


def n_inputs(module: nn.Module) -> int:
    """Number of inputs of an MLP (its first layer's ``in_features``).

    Examples
    --------
    >>> n_inputs(build_mlp(3, (4,), 2, architecture=Architecture(embedding="pbld")))
    3
    """
    return next(m for m in module.children() if hasattr(m, "in_features")).in_features


def widest_layer(module: nn.Module) -> int:
    """Largest ``out_features`` of ``module``'s layers (linear or not).

    Examples
    --------
    >>> widest_layer(build_mlp(3, (8, 4), 1))
    8
    """
    return max(m.out_features for m in module.children() if hasattr(m, "out_features"))


def n_outputs(module: nn.Module) -> int:
    """Number of outputs of an MLP (its last linear layer's ``out_features``).

    Examples
    --------
    >>> n_outputs(build_mlp(3, (4,), 2))
    2
    """
    return linear_layers(module)[-1].out_features


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
    """Split ``flat`` (``(..., n_params)``) into a name -> tensor dict of views.

    Leading batch dimensions are kept, so a stack of checkpoints becomes a dict of
    stacked parameters.

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


def _apply(module: nn.Sequential, params: dict[str, torch.Tensor], X: torch.Tensor, masks=None):
    """The forward pass of ``module``'s structure with ``params``; ``X`` may be batched.

    Dropout is the identity unless ``masks`` (child name -> mask) are given."""
    h = X
    for name, layer in module.named_children():
        if isinstance(layer, nn.Linear):
            weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]
            if weight.dim() == 2:
                h = nn.functional.linear(h, weight, bias)
            else:  # a stack of checkpoints: (K, out, in) weights
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        elif isinstance(layer, TangentLayer):
            h = layer.evaluate(layer_parameters(params, name, layer), h)
        elif isinstance(layer, SeededDropout):
            h = h if masks is None else h * masks[name]
        else:
            h = layer(h)
    return h


def forward_flat(
    module: nn.Module, flat: torch.Tensor, X: torch.Tensor, masks: dict | None = None
) -> torch.Tensor:
    """Evaluate ``module``'s architecture at the flat parameters ``flat`` on inputs ``X``.

    The module itself is only read (its layer structure), never modified. Dropout layers
    are the identity (the evaluation network) unless ``masks`` gives each one's mask for
    the rows of ``X`` (the network a training step used; see
    :func:`~sktelescope._core.layers.dropout_masks`).

    Examples
    --------
    >>> net = build_mlp(2, (), 1)
    >>> forward_flat(net, torch.ones(3), torch.ones(4, 2)).flatten().tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    return _apply(module, unflatten_parameters(module, flat), X, masks)


def forward_stacked(
    module: nn.Module, flats: torch.Tensor, X: torch.Tensor, chunk_size: int = 64
) -> torch.Tensor:
    """Evaluate a stack of checkpoints ``flats`` (``(K, n_params)``) on ``X`` in batched calls.

    Each chunk of ``chunk_size`` checkpoints is one batched matrix product per layer
    (``torch.baddbmm``); ``chunk_size`` bounds the activation memory (about
    ``chunk_size * len(X) * width`` floats).

    Returns
    -------
    outputs : torch.Tensor of shape (K, len(X), n_outputs)

    Examples
    --------
    >>> net = build_mlp(2, (), 1)
    >>> forward_stacked(net, torch.ones(5, 3), torch.ones(4, 2)).shape
    torch.Size([5, 4, 1])
    """
    blocks = []
    with torch.no_grad():
        for start in range(0, len(flats), chunk_size):
            chunk = flats[start : start + chunk_size]
            inputs = X.expand(len(chunk), *X.shape)
            blocks.append(_apply(module, unflatten_parameters(module, chunk), inputs))
    return torch.cat(blocks) if blocks else X.new_empty(0, len(X), n_outputs(module))


def linearised_increment(
    module: nn.Module, flat: torch.Tensor, delta: torch.Tensor, X: torch.Tensor
) -> torch.Tensor:
    """First-order change ``∇f_θ(X) · Δθ`` as one forward-mode pass (no Jacobian is formed).

    The layer-wise tangent pass of :mod:`sktelescope._core.autodiff`: it holds no global
    state, so several threads can call it at once (``torch.func.jvp`` keeps its forward-AD
    levels process-wide and fails under threads).

    Examples
    --------
    >>> net = build_mlp(2, (), 1)
    >>> linearised_increment(net, torch.zeros(3), torch.ones(3), torch.ones(4, 2)).flatten()
    tensor([3., 3., 3., 3.])
    """
    cache = primal(module, unflatten_parameters(module, flat), X)
    return tangent(module, cache, unflatten_parameters(module, delta))
