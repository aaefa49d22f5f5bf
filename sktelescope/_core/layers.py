"""Layers beyond ``nn.Linear`` that the lens sees through: the protocol, a diagonal feature
scale, and dropout whose masks a step's kernel can use.

A :class:`TangentLayer` is a parametric layer of the network (an ``nn.Sequential`` child)
that offers, besides its ``forward`` for training, everything the pure-torch machinery
needs to stay exact and fast without ``torch.func``:

- ``evaluate(params, h)``: the forward pass at the given parameters (a dict of its own
  parameter names), also for a stack of ``K`` checkpoints (parameters with a leading
  ``K``, inputs ``(K, N, d)``), so that ``forward_stacked`` stays one batched call per layer;
- ``primal(params, h)`` and ``tangent(params, dparams, cache, dh)``: forward mode, with the
  primal pass caching what the tangent pass needs;
- ``traced(params, h)``: the forward pass with the tensors whose gradients it needs
  (``taps``) and a function that turns those gradients into
  :mod:`~sktelescope._core.factors` (the per-example gradients of its parameters).

Adding a layer means writing one such class; the kernels, forward mode, per-example
gradients, preconditioner split and gradient change all read the protocol.

Learning-rate factors are a parametrisation: a layer stores ``φ`` and computes with
``θ = α φ`` (``lr_scale = α``). Gradient steps on ``φ`` then move ``θ`` ``α`` times as
far under Adam (whose steps do not depend on the gradient's scale, up to its ``ε``) and
``α²`` times as far under SGD, while the optimizer keeps one learning rate. The stored
parameters are the optimizer's coordinates, so every kernel, preconditioner and smoother
replay of the lens is taken in those coordinates and stays exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from sktelescope._core.factors import Dense

__all__ = [
    "FeatureScale",
    "SeededDropout",
    "TangentLayer",
    "dropout_masks",
    "layer_generator_states",
    "layer_parameters",
    "set_layer_generator_states",
    "lr_scale",
]

Traced = tuple[torch.Tensor, list[torch.Tensor], Callable[[list[torch.Tensor]], list]]


def lr_scale(factor: float, adaptive: bool) -> float:
    """The parameter scale ``α`` that multiplies a layer's learning rate by ``factor``.

    Adam-family steps do not depend on the gradient's scale, so ``θ = α φ`` moves ``α``
    times as far: ``α = factor``. SGD's step on ``φ`` is ``α`` times the gradient of ``θ``
    and moves ``θ`` by ``α²`` times the step: ``α = sqrt(factor)``.

    Examples
    --------
    >>> lr_scale(0.1, adaptive=True), lr_scale(4.0, adaptive=False)
    (0.1, 2.0)
    """
    return float(factor) if adaptive else math.sqrt(factor)


def batched_parameter(p: torch.Tensor, h: torch.Tensor, n_dims: int) -> torch.Tensor:
    """``p`` ready to broadcast against ``h``: for a stack of checkpoints (``p`` has one more
    dimension than its ``n_dims``), a row axis is inserted after the checkpoint axis.

    Examples
    --------
    >>> batched_parameter(torch.ones(5, 3), torch.ones(5, 7, 3), 1).shape  # 5 checkpoints
    torch.Size([5, 1, 3])
    """
    return p.unsqueeze(1) if p.dim() > n_dims and h.dim() > 2 else p


def layer_parameters(params: dict[str, torch.Tensor], name: str, layer: TangentLayer) -> dict:
    """The entries of ``params`` (the network's full names) of child ``name``, by local name.

    Examples
    --------
    >>> layer = FeatureScale(2)
    >>> list(layer_parameters({"0.scale": torch.ones(2), "1.weight": None}, "0", layer))
    ['scale']
    """
    return {p: params[f"{name}.{p}"] for p in layer.parameter_names}


def tap(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a point whose gradient autograd can return (a leaf if nothing before it
    needed a gradient).

    Examples
    --------
    >>> tap(torch.ones(2)).requires_grad
    True
    """
    return t if t.requires_grad else t.detach().requires_grad_(True)


class TangentLayer(nn.Module):
    """Base class of the network's parametric layers other than ``nn.Linear``.

    Subclasses set ``in_features``, ``out_features`` and ``lr_scale`` and implement
    ``evaluate``, ``primal``, ``tangent``, ``traced``, ``factor_sizes``, ``factor_names``,
    ``floats`` and ``reset_parameters``; ``forward`` is ``evaluate`` at the layer's own
    parameters.

    Examples
    --------
    >>> layer = FeatureScale(3)  # the smallest tangent layer
    >>> out, taps, to_factors = layer.traced(dict(layer.named_parameters()), torch.ones(2, 3))
    >>> [f.n_params for f in to_factors([torch.ones(2, 3)])] == layer.factor_sizes()
    True
    """

    in_features: int
    out_features: int
    lr_scale: float = 1.0

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the layer's own parameters, in the flat vector's order."""
        return tuple(name for name, _ in self.named_parameters())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.evaluate(dict(self.named_parameters()), h)

    def evaluate(self, params: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        """Output at ``params`` (batched over checkpoints when they have a leading axis)."""
        raise NotImplementedError

    def primal(self, params, h) -> tuple[torch.Tensor, object]:
        """Output and what :meth:`tangent` needs at the same parameters."""
        raise NotImplementedError

    def tangent(self, params, dparams, cache, dh: torch.Tensor | None) -> torch.Tensor:
        """Directional derivative of the output along ``dparams`` and input tangent ``dh``
        (``None``: the input has none)."""
        raise NotImplementedError

    def traced(self, params, h) -> Traced:
        """``(output, taps, to_factors)``: ``to_factors(grads of the taps)`` returns the
        layer's gradient factors in the flat vector's order."""
        raise NotImplementedError

    def factor_sizes(self) -> list[int]:
        """Parameters of each gradient factor, in order (they tile the layer's slice)."""
        raise NotImplementedError

    def factor_names(self) -> list[str]:
        """A name for each gradient factor, e.g. ``"feature scale (20)"``."""
        raise NotImplementedError

    def floats(self) -> dict[str, int]:
        """Floats per input: ``signals`` held by ``traced``'s factors, ``cache`` held by a
        primal cache, ``building`` the temporaries of either."""
        raise NotImplementedError

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the initial parameters from ``generator``."""
        raise NotImplementedError


class FeatureScale(TangentLayer):
    """A learnable diagonal scale ``h -> s ⊙ h`` (RealMLP's front "scale" layer), ``s = 1``
    at initialisation.

    Parameters
    ----------
    n_features : int
    lr_scale : float, default=1.0
        ``α`` of the parametrisation ``s = α φ`` (see the module docstring).

    Examples
    --------
    >>> layer = FeatureScale(3)
    >>> layer(torch.ones(2, 3)).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, n_features: int, lr_scale: float = 1.0) -> None:
        super().__init__()
        self.in_features = self.out_features = int(n_features)
        self.lr_scale = float(lr_scale)
        self.scale = nn.Parameter(torch.empty(self.in_features))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        self.scale.fill_(1.0 / self.lr_scale)

    def _s(self, params, h) -> torch.Tensor:
        return self.lr_scale * batched_parameter(params["scale"], h, 1)

    def evaluate(self, params, h):
        return h * self._s(params, h)

    def primal(self, params, h):
        return self.evaluate(params, h), h

    def tangent(self, params, dparams, cache, dh):
        out = cache * self._s(dparams, cache)
        return out if dh is None else out.add_(dh * self._s(params, cache))

    def traced(self, params, h) -> Traced:
        out = tap(self.evaluate(params, h))
        a, (name,) = h.detach(), self.factor_names()
        return out, [out], lambda grads: [Dense(self.lr_scale * grads[0] * a, name)]

    def factor_sizes(self) -> list[int]:
        return [self.in_features]

    def factor_names(self) -> list[str]:
        return [f"feature scale ({self.in_features})"]

    def floats(self) -> dict[str, int]:
        n = self.in_features
        return {"signals": n, "cache": 0, "building": 2 * n}

    def extra_repr(self) -> str:
        return f"{self.in_features}, lr_scale={self.lr_scale:g}"


class SeededDropout(nn.Module):
    """Inverted dropout whose masks come from the layer's own generator.

    A mask is drawn only in the training forward pass (training mode *and* autograd on),
    which is the optimizer step's forward; every other evaluation (``eval()`` mode,
    ``torch.no_grad()``, the functional evaluation of ``forward_flat``) sees the
    evaluation network, where dropout is the identity. The mask of the latest step stays
    in ``last_mask`` (scaled by ``1/(1 − p)``) so that observers can take that step's
    kernel with it (:func:`dropout_masks`). Masks are drawn on the CPU from ``generator``
    (its state travels with pickling and copies), so a fit replays bit for bit and draws
    the same masks on any device.

    Parameters
    ----------
    p : float
        Probability of zeroing an activation.
    seed : int
        Seed of the layer's generator.

    Examples
    --------
    >>> drop = SeededDropout(0.5, seed=0)
    >>> h = torch.ones(2, 4, requires_grad=True)
    >>> drop(h).detach().tolist() == (drop.last_mask).tolist()
    True
    >>> with torch.no_grad():
    ...     drop(h).tolist()
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, p: float, seed: int) -> None:
        super().__init__()
        self.p = float(p)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.last_mask: torch.Tensor | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled()) or self.p == 0.0:
            return h
        keep = torch.rand(h.shape, generator=self.generator) >= self.p
        mask = keep.to(h.dtype).div_(1.0 - self.p).to(h.device)
        self.last_mask = mask
        return h * mask

    def __getstate__(self):
        state = self.__dict__.copy()
        state["generator"] = self.generator.get_state()
        state["last_mask"] = None
        return state

    def __setstate__(self, state):
        generator = torch.Generator()
        generator.set_state(state["generator"])
        self.__dict__.update({**state, "generator": generator})

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


def dropout_masks(
    module: nn.Module, like: torch.Tensor | None = None
) -> dict[str, torch.Tensor] | None:
    """The masks the latest training forward pass of ``module`` drew, by child name.

    ``None`` when the network has no dropout (or has not drawn a mask yet). Pass them as
    ``masks`` to :func:`~sktelescope._core.network.forward_flat` or as ``dropout_masks`` to
    the kernels to evaluate the network that step trained (rows in the batch's order).
    ``like``: a tensor whose dtype and device the masks take (their values stay the ones
    the step applied).

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 3), SeededDropout(0.5, seed=0))
    >>> dropout_masks(net) is None
    True
    >>> _ = net(torch.ones(4, 2))
    >>> dropout_masks(net)["1"].shape
    torch.Size([4, 3])
    """
    masks = {
        name: layer.last_mask if like is None else layer.last_mask.to(like)
        for name, layer in module.named_children()
        if isinstance(layer, SeededDropout) and layer.last_mask is not None
    }
    return masks or None


def layer_generator_states(module: nn.Module) -> dict[str, torch.Tensor]:
    """The states of the generators ``module``'s layers draw from (its dropout masks), by
    child name; empty without dropout.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 3), SeededDropout(0.5, seed=0))
    >>> list(layer_generator_states(net))
    ['1']
    """
    return {
        name: layer.generator.get_state()
        for name, layer in module.named_children()
        if isinstance(layer, SeededDropout)
    }


def set_layer_generator_states(module: nn.Module, states: dict[str, torch.Tensor]) -> None:
    """Put back states from :func:`layer_generator_states` (a run continued from an earlier
    point draws the masks it would have drawn from there).

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 3), SeededDropout(0.5, seed=0))
    >>> states = layer_generator_states(net)
    >>> first = net(torch.ones(4, 2)).detach()
    >>> set_layer_generator_states(net, states)
    >>> bool(torch.equal(net(torch.ones(4, 2)).detach(), first))
    True
    """
    children = dict(module.named_children())
    for name, state in states.items():
        children[name].generator.set_state(state)
