"""Tangent kernels of MLPs from the layer structure, plain and preconditioned.

For a linear layer ``z = W a + b`` the per-example gradient of an output ``f`` is the
outer product ``δ aᵀ`` of the backward signal ``δ = ∂f/∂z`` and the layer input ``a``.
The tangent kernel between two sets of inputs is therefore a sum over layers of
products of two small Gram matrices::

    K(x, z) = Σ_l (δ_l(x)·δ_l(z)) (a_l(x)·a_l(z) + 1)

which costs ``O(N M Σ_l (out_l + in_l))`` instead of the ``O(N M p)`` of a Jacobian
product. A diagonal preconditioner (Adam's ``1/(sqrt(v̂)+ε)``) breaks that factorisation;
then the per-layer per-example gradients are formed from the same outer products, in
chunks, and multiplied.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sktelescope._network import unflatten_parameters


@dataclass
class LayerSignals:
    """Per-layer inputs ``a`` (N, in) and backward signals ``delta`` (N, out) of one output."""

    inputs: list[torch.Tensor]
    deltas: list[torch.Tensor]


def layer_signals(
    module: nn.Sequential, flat: torch.Tensor, X: torch.Tensor, output: int
) -> LayerSignals:
    """Layer inputs and backward signals of output ``output`` at parameters ``flat``.

    Returns
    -------
    signals : LayerSignals
        ``signals.inputs[l]`` is the input of the l-th linear layer (N, in_l) and
        ``signals.deltas[l]`` the gradient of ``f_output`` w.r.t. its pre-activation (N, out_l).

    Examples
    --------
    >>> import torch
    >>> from sktelescope._network import build_mlp, flatten_parameters
    >>> net = build_mlp(3, (5,), 1)
    >>> s = layer_signals(net, flatten_parameters(net), torch.randn(4, 3), 0)
    >>> [tuple(d.shape) for d in s.deltas]
    [(4, 5), (4, 1)]
    """
    params = unflatten_parameters(module, flat)
    inputs, pre_acts = [], []
    h = X
    with torch.enable_grad():
        for name, layer in module.named_children():
            if isinstance(layer, nn.Linear):
                inputs.append(h.detach())
                h = nn.functional.linear(h, params[f"{name}.weight"], params[f"{name}.bias"])
                if not h.requires_grad:
                    h = h.detach().requires_grad_(True)
                pre_acts.append(h)
            else:
                h = layer(h)
        deltas = torch.autograd.grad(h[:, output].sum(), pre_acts, allow_unused=True)
    deltas = [torch.zeros_like(z) if d is None else d.detach() for d, z in zip(deltas, pre_acts)]
    return LayerSignals(inputs, deltas)


def _plain_kernel(sx: LayerSignals, sz: LayerSignals) -> torch.Tensor:
    kernel = None
    for ax, dx, az, dz in zip(sx.inputs, sx.deltas, sz.inputs, sz.deltas):
        block = (dx @ dz.T) * (ax @ az.T + 1.0)
        kernel = block if kernel is None else kernel + block
    return kernel


def _layer_jacobian(a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Per-example gradients of one linear layer, ordered like ``weight`` then ``bias``."""
    weight = (d[:, :, None] * a[:, None, :]).reshape(len(a), -1)
    return torch.cat([weight, d], dim=1)


def _preconditioned_kernel(
    sx: LayerSignals, sz: LayerSignals, layer_precond: list[torch.Tensor], chunk: int
) -> torch.Tensor:
    n, m = len(sx.inputs[0]), len(sz.inputs[0])
    kernel = sx.inputs[0].new_zeros(n, m)
    for ax, dx, az, dz, p in zip(sx.inputs, sx.deltas, sz.inputs, sz.deltas, layer_precond):
        jz = _layer_jacobian(az, dz) * p
        for start in range(0, n, chunk):
            stop = start + chunk
            kernel[start:stop] += _layer_jacobian(ax[start:stop], dx[start:stop]) @ jz.T
    return kernel


def _split_by_layer(module: nn.Sequential, flat_vector: torch.Tensor) -> list[torch.Tensor]:
    """Split a flat per-parameter vector into one (weight, bias)-ordered slice per layer."""
    parts = unflatten_parameters(module, flat_vector)
    out = []
    for name, layer in module.named_children():
        if isinstance(layer, nn.Linear):
            out.append(torch.cat([parts[f"{name}.weight"].reshape(-1), parts[f"{name}.bias"]]))
    return out


def tangent_kernel(
    module: nn.Sequential,
    flat: torch.Tensor,
    X: torch.Tensor,
    Z: torch.Tensor | None = None,
    output: int | None = None,
    preconditioner: torch.Tensor | None = None,
    chunk_size: int = 256,
) -> torch.Tensor:
    """Empirical tangent kernel ``∇f(X) diag(P) ∇f(Z)ᵀ`` of an MLP at parameters ``flat``.

    Parameters
    ----------
    module : torch.nn.Sequential
        Linear layers and element-wise activations (as built by ``build_mlp``).
    flat : torch.Tensor of shape (n_params,)
        Parameters at which the gradients are taken.
    X, Z : torch.Tensor of shape (N, d) and (M, d)
        Inputs (already in the network's input space). ``Z=None`` means ``Z = X``.
    output : int or None
        Which network output; ``None`` gives every output's kernel.
    preconditioner : torch.Tensor of shape (n_params,), optional
        Diagonal preconditioner ``P`` (e.g. ``1/(sqrt(v̂)+ε)`` for Adam). ``None`` is plain.
    chunk_size : int
        Rows of ``X`` per block when a preconditioner forces per-example gradients.

    Returns
    -------
    kernel : torch.Tensor
        ``(N, M)`` for one output, else ``(n_outputs, N, M)``.

    Examples
    --------
    >>> import torch
    >>> from sktelescope._network import build_mlp, flatten_parameters
    >>> net = build_mlp(3, (5,), 1)
    >>> tangent_kernel(net, flatten_parameters(net), torch.randn(4, 3)).shape
    torch.Size([4, 4])
    """
    Z = X if Z is None else Z
    n_outputs = module[-1].out_features
    outputs = range(n_outputs) if output is None else [output]
    layer_precond = None
    if preconditioner is not None:
        layer_precond = _split_by_layer(module, preconditioner)
    blocks = []
    for k in outputs:
        sx = layer_signals(module, flat, X, k)
        sz = sx if Z is X else layer_signals(module, flat, Z, k)
        if layer_precond is None:
            blocks.append(_plain_kernel(sx, sz))
        else:
            blocks.append(_preconditioned_kernel(sx, sz, layer_precond, chunk_size))
    if output is not None or n_outputs == 1:
        return blocks[0]
    return torch.stack(blocks)
