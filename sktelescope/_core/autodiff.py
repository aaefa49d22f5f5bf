"""Forward mode for ``nn.Sequential`` MLPs, split into a cached primal and a tangent pass.

``torch.func.jvp`` recomputes the primal every time it is called. Per-step telescoping
needs ``∇f_{t-1}(X)·Δθ_t`` right after the forward pass at ``θ_{t-1}`` was already done
(to get ``f_{t-1}``), so the primal pass here keeps what the tangent pass needs: the input
of every linear layer and the derivative of the activation that follows it. The tangent
pass is then the exact forward-mode derivative::

    dz_l = a_l dW_lᵀ + db_l + da_l W_lᵀ,    da_{l+1} = σ'(z_l) ⊙ dz_l

two matrix products per layer (one for the first, whose input has no tangent) and no
Jacobian. Other parametric layers (:class:`~sktelescope._core.layers.TangentLayer`: the
embeddings, the feature scale) bring their own primal cache and tangent; dropout is the
identity (the evaluation network). Both passes hold no global state, so threads can
share a module. Modules with other layers fall back to ``torch.func.jvp`` and
``functional_call``, which do not allow that (process-wide forward-AD levels; parameters
swapped in the module).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, jvp

from sktelescope._core.layers import SeededDropout, TangentLayer, layer_parameters

_ELEMENTWISE = (
    nn.ReLU, nn.Tanh, nn.GELU, nn.SELU, nn.Mish, nn.Identity, nn.Sigmoid, nn.LeakyReLU, nn.ELU
)  # fmt: skip


@dataclass
class PrimalCache:
    """What one forward pass leaves for tangent passes at the same parameters.

    ``inputs[l]`` is the input of the l-th parametric layer (N, in_l) when it is linear,
    else that layer's own primal cache; ``slopes[l]`` the derivative of the activations
    after it (N, out_l), ``None`` for the output layer (or an identity) and
    ``("relu", output)`` for a lone ReLU, whose slope is read from its output (the next
    layer's input, not a copy). ``params`` are the parameters the pass was run at.
    """

    params: dict[str, torch.Tensor]
    inputs: list[torch.Tensor]
    slopes: list[torch.Tensor | str | None]
    output: torch.Tensor


def cache_floats(module: nn.Sequential) -> tuple[int, int]:
    """Floats per input that a :func:`primal` cache of ``module`` holds, and the floats per
    input its construction needs on top (pre-activations, derivative temporaries).

    Held: each hidden layer's output, its activation slope unless that is a lone ReLU or
    an identity, and the network's output; the input itself is the caller's.

    Examples
    --------
    >>> from sktelescope._core.network import build_mlp
    >>> cache_floats(build_mlp(3, (8, 4), 1)), cache_floats(build_mlp(3, (8,), 1, "tanh"))
    ((13, 12), (17, 16))
    """
    held, building, width = 0, 0, 0
    for layer in module.children():
        if isinstance(layer, nn.Linear):
            width = layer.out_features
            held += width
        elif isinstance(layer, TangentLayer):
            width, floats = layer.out_features, layer.floats()
            held += width + floats["cache"]
            building += floats["building"]
        elif not isinstance(layer, nn.Identity | SeededDropout):
            building += width
            if not isinstance(layer, nn.ReLU):
                held += width
                building += width
    return held, building


def is_plain_mlp(module: nn.Module) -> bool:
    """Whether ``module`` is a Sequential of Linear layers and element-wise activations."""
    return _is_sequential_of(module, (nn.Linear, *_ELEMENTWISE))


def has_layerwise_forward(module: nn.Module) -> bool:
    """Whether :func:`primal` and :func:`tangent` handle ``module``: a Sequential of Linear
    layers, element-wise activations, tangent layers and dropout."""
    return _is_sequential_of(module, (nn.Linear, TangentLayer, SeededDropout, *_ELEMENTWISE))


def _is_sequential_of(module: nn.Module, kinds: tuple) -> bool:
    if not isinstance(module, nn.Sequential):
        return False
    children = list(module.children())
    return bool(children) and all(isinstance(m, kinds) for m in children)


def _parametric(module: nn.Sequential) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in module.named_children() if isinstance(m, nn.Linear | TangentLayer)]


def _slope(layer: nn.Module, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor | None:
    if isinstance(layer, nn.Identity):
        return None
    if isinstance(layer, nn.ReLU):
        return (z > 0).to(z.dtype)
    if isinstance(layer, nn.Tanh):
        return 1.0 - h * h
    return _elementwise_derivative(layer, z)


def _elementwise_derivative(layer: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``σ'(z)`` of an element-wise activation by reverse mode, which keeps no global state
    (``torch.func.jvp``'s forward-AD levels are process-wide and break under threads)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        (slope,) = torch.autograd.grad(layer(z).sum(), z)
    return slope


@torch.no_grad()
def primal(module: nn.Sequential, params: dict[str, torch.Tensor], X: torch.Tensor) -> PrimalCache:
    """Forward pass of ``module`` at ``params`` on ``X``, caching what tangents need.

    A lone ReLU between two linear layers stores no slope: its output is the next layer's
    input, and ``relu'(z) = 1{relu(z) > 0}`` is applied from it in the tangent pass.

    Returns
    -------
    cache : PrimalCache
        ``cache.output`` is ``f(X)`` of shape (N, n_outputs).
    """
    inputs: list = []
    gaps: list[list[tuple[nn.Module, torch.Tensor, torch.Tensor]]] = []
    h = X
    for name, layer in module.named_children():
        if isinstance(layer, nn.Linear):
            inputs.append(h)
            gaps.append([])
            h = nn.functional.linear(h, params[f"{name}.weight"], params[f"{name}.bias"])
        elif isinstance(layer, TangentLayer):
            h, cache = layer.primal(layer_parameters(params, name, layer), h)
            inputs.append(cache)
            gaps.append([])
        elif not isinstance(layer, SeededDropout):  # dropout: the identity when evaluating
            z, h = h, layer(h)
            gaps[-1].append((layer, z, h))
    return PrimalCache(params, inputs, [_gap_slope(gap) for gap in gaps], h)


_RELU = "relu"


def _gap_slope(gap) -> torch.Tensor | tuple | None:
    """Derivative of the activations after a layer (``("relu", output)``: from the output)."""
    if len(gap) == 1 and isinstance(gap[0][0], nn.ReLU):
        return (_RELU, gap[0][2])
    slope = None
    for layer, z, h in gap:
        part = _slope(layer, z, h)
        if part is not None:
            slope = part if slope is None else slope * part
    return slope


@torch.no_grad()
def tangent(module: nn.Sequential, cache: PrimalCache, delta: dict[str, torch.Tensor]):
    """Directional derivative ``∇_θ f(X)·Δθ`` at the cache's parameters, shape (N, n_out).

    Examples
    --------
    >>> import torch
    >>> from sktelescope._core.network import build_mlp
    >>> net = build_mlp(3, (4,), 1)
    >>> params = dict(net.named_parameters())
    >>> delta = {k: torch.ones_like(v) for k, v in params.items()}
    >>> tangent(net, primal(net, params, torch.randn(5, 3)), delta).shape
    torch.Size([5, 1])
    """
    dh = None
    for i, (name, layer) in enumerate(_parametric(module)):
        if isinstance(layer, nn.Linear):
            dW, db = delta[f"{name}.weight"], delta[f"{name}.bias"]
            dz = torch.addmm(db, cache.inputs[i], dW.T)
            if dh is not None:
                dz.addmm_(dh, cache.params[f"{name}.weight"].T)
        else:
            local = layer_parameters(cache.params, name, layer)
            dz = layer.tangent(local, layer_parameters(delta, name, layer), cache.inputs[i], dh)
        slope = cache.slopes[i]
        if slope is None:
            dh = dz
        elif isinstance(slope, tuple):
            dh = torch.ops.aten.threshold_backward(dz, slope[1], 0)
        else:
            dh = dz.mul_(slope)
    return dh


class TangentEngine:
    """Primal and tangent passes of ``module`` on fixed inputs ``X``.

    Uses the cached layer-wise forward mode above for the networks ``build_mlp`` makes
    and ``torch.func.jvp`` (which recomputes the primal) for any other module.

    Examples
    --------
    >>> import torch
    >>> from sktelescope._core.network import build_mlp
    >>> net = build_mlp(3, (4,), 1)
    >>> engine = TangentEngine(net, torch.randn(5, 3))
    >>> params = {k: v.detach() for k, v in net.named_parameters()}
    >>> cache = engine.primal(params)
    >>> engine.tangent(cache, {k: torch.zeros_like(v) for k, v in params.items()}).abs().max()
    tensor(0.)
    """

    def __init__(self, module: nn.Module, X: torch.Tensor) -> None:
        self.module, self.X = module, X
        self.plain = has_layerwise_forward(module)

    def primal(self, params: dict[str, torch.Tensor]) -> PrimalCache:
        """Forward pass at ``params``; ``.output`` is ``f(X)``."""
        if self.plain:
            return primal(self.module, params, self.X)
        with torch.no_grad():
            out = functional_call(self.module, params, (self.X,))
        return PrimalCache(params, [], [], out)

    def tangent(self, cache: PrimalCache, delta: dict[str, torch.Tensor]) -> torch.Tensor:
        """``∇f(X)·Δθ`` at the parameters of ``cache``."""
        if self.plain:
            return tangent(self.module, cache, delta)

        def f(p):
            return functional_call(self.module, p, (self.X,))

        with torch.no_grad():
            return jvp(f, (cache.params,), (delta,))[1]
