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

The other layers of :mod:`sktelescope._core.layers` (embeddings, a feature scale) enter
the same sums through their gradient factors (:mod:`sktelescope._core.factors`): a
per-feature linear layer is one outer product per feature, frequencies and scales have
element-wise gradients. Dropout is the identity (the evaluation network) unless a step's
masks are given for the batch side of a kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sktelescope._core.factors import GradientFactor, Outer
from sktelescope._core.layers import SeededDropout, TangentLayer, layer_parameters, tap
from sktelescope._core.network import n_inputs, unflatten_parameters


@dataclass
class LayerSignals:
    """The gradient factors of one output at some inputs, one per block of parameters.

    ``factors[l]`` covers the l-th contiguous slice of the flat parameter vector
    (:mod:`sktelescope._core.factors`): an :class:`~sktelescope._core.factors.Outer` for
    every linear layer (its input ``a`` (N, in) and backward signal ``delta`` (N, out)),
    and whatever the other layers yield.
    """

    factors: list[GradientFactor]

    @property
    def inputs(self) -> list[torch.Tensor]:
        """Inputs ``a`` (N, in) of the linear layers."""
        return [f.a for f in self.factors if _is_linear_factor(f)]

    @property
    def deltas(self) -> list[torch.Tensor]:
        """Backward signals ``delta`` (N, out) of the linear layers."""
        return [f.d for f in self.factors if _is_linear_factor(f)]


def _is_linear_factor(factor: GradientFactor) -> bool:
    return isinstance(factor, Outer) and factor.a.dim() == 2


def layer_signals(
    module: nn.Sequential,
    flat: torch.Tensor,
    X: torch.Tensor,
    output: int,
    masks: dict[str, torch.Tensor] | None = None,
) -> LayerSignals:
    """Gradient factors of output ``output`` at parameters ``flat``: one backward pass.

    Parameters
    ----------
    module, flat, X
        As for :func:`tangent_kernel`.
    output : int
    masks : dict of str -> torch.Tensor, optional
        Dropout masks for the rows of ``X`` (the network a training step used); default
        the evaluation network, where dropout is the identity.

    Returns
    -------
    signals : LayerSignals
        For a plain MLP, ``signals.inputs[l]`` is the input of the l-th linear layer
        (N, in_l) and ``signals.deltas[l]`` the gradient of ``f_output`` w.r.t. its
        pre-activation (N, out_l).

    Examples
    --------
    >>> import torch
    >>> from sktelescope._core.network import build_mlp, flatten_parameters
    >>> net = build_mlp(3, (5,), 1)
    >>> s = layer_signals(net, flatten_parameters(net), torch.randn(4, 3), 0)
    >>> [tuple(d.shape) for d in s.deltas]
    [(4, 5), (4, 1)]
    """
    params = unflatten_parameters(module, flat)
    taps, builders = [], []
    h = X
    with torch.enable_grad():
        for name, layer in module.named_children():
            if isinstance(layer, nn.Linear):
                builders.append(_linear_builder(h.detach(), len(taps)))
                h = tap(nn.functional.linear(h, params[f"{name}.weight"], params[f"{name}.bias"]))
                taps.append(h)
            elif isinstance(layer, TangentLayer):
                h, points, to_factors = layer.traced(layer_parameters(params, name, layer), h)
                builders.append(_layer_builder(to_factors, len(taps), len(points)))
                taps.extend(points)
            elif isinstance(layer, SeededDropout):
                h = h if masks is None else h * masks[name]
            else:
                h = layer(h)
        grads = torch.autograd.grad(h[:, output].sum(), taps, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g.detach() for g, t in zip(grads, taps)]
    return LayerSignals([f for build in builders for f in build(grads)])


def _linear_builder(a: torch.Tensor, index: int):
    return lambda grads: [Outer(a, grads[index])]


def _layer_builder(to_factors, start: int, count: int):
    return lambda grads: to_factors(grads[start : start + count])


def _plain_kernel(sx: LayerSignals, sz: LayerSignals) -> torch.Tensor:
    kernel = None
    for fx, fz in zip(sx.factors, sz.factors):
        block = fx.gram(fz)
        kernel = block if kernel is None else kernel.add_(block)
    return kernel


def per_example_gradients(
    module: nn.Sequential,
    flat: torch.Tensor,
    X: torch.Tensor,
    output: int = 0,
    masks: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Gradients of output ``output`` for each row of ``X``, shape ``(len(X), n_params)``.

    Built from the layers' gradient factors (no autograd per example), in the order of
    ``flatten_parameters``; ``masks`` as for :func:`layer_signals`.

    Examples
    --------
    >>> from sktelescope._core.network import build_mlp, flatten_parameters
    >>> net = build_mlp(3, (4,), 1)
    >>> per_example_gradients(net, flatten_parameters(net), torch.randn(5, 3)).shape
    torch.Size([5, 21])
    """
    signals = layer_signals(module, flat, X, output, masks)
    return torch.cat([f.jacobian() for f in signals.factors], dim=1)


def _preconditioned_kernel(
    sx: LayerSignals, sz: LayerSignals, layer_precond: list[torch.Tensor], chunk: int
) -> torch.Tensor:
    """Per-layer per-example gradients in ``chunk``-row blocks of X and of Z (bounded memory)."""
    n, m = sx.factors[0].n_rows, sz.factors[0].n_rows
    kernel = sx.factors[0].tensor.new_zeros(n, m)
    for fx, fz, p in zip(sx.factors, sz.factors, layer_precond):
        for zs in range(0, m, chunk):
            jz = fz.jacobian(slice(zs, zs + chunk)) * p
            for xs in range(0, n, chunk):
                jx = fx.jacobian(slice(xs, xs + chunk))
                kernel[xs : xs + chunk, zs : zs + chunk] += jx @ jz.T
    return kernel


def factor_sizes(module: nn.Sequential) -> list[int]:
    """Parameters of each gradient factor of ``module``, in the flat vector's order.

    Examples
    --------
    >>> from sktelescope._core.network import build_mlp
    >>> factor_sizes(build_mlp(3, (4,), 1))
    [16, 5]
    """
    sizes = []
    for layer in module.children():
        if isinstance(layer, nn.Linear):
            sizes.append(layer.out_features * (layer.in_features + 1))
        elif isinstance(layer, TangentLayer):
            sizes.extend(layer.factor_sizes())
    return sizes


def _split_by_layer(module: nn.Sequential, flat_vector: torch.Tensor) -> list[torch.Tensor]:
    """Split a flat per-parameter vector into one slice per gradient factor."""
    return list(torch.split(flat_vector, factor_sizes(module)))


def tangent_kernel(
    module: nn.Sequential,
    flat: torch.Tensor,
    X: torch.Tensor,
    Z: torch.Tensor | None = None,
    output: int | None = None,
    preconditioner: torch.Tensor | None = None,
    chunk_size: int = 256,
    dropout_masks: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Empirical tangent kernel ``∇f(X) diag(P) ∇f(Z)ᵀ`` of an MLP at parameters ``flat``.

    Parameters
    ----------
    module : torch.nn.Sequential
        As built by ``build_mlp``: linear layers, element-wise activations and the
        layers of :mod:`sktelescope._core.layers` (embeddings, feature scale, dropout).
    flat : torch.Tensor of shape (n_params,)
        Parameters at which the gradients are taken.
    X, Z : torch.Tensor of shape (N, d) and (M, d)
        Inputs (already in the network's input space). ``Z=None`` means ``Z = X``.
    output : int or None
        Which network output; ``None`` gives every output's kernel.
    preconditioner : torch.Tensor of shape (n_params,), optional
        Diagonal preconditioner ``P`` (e.g. ``1/(sqrt(v̂)+ε)`` for Adam). ``None`` is plain.
    chunk_size : int
        Rows of ``X`` and of ``Z`` per block when a preconditioner forces per-example
        gradients (memory ``2 * chunk_size * largest layer's n_params`` floats).
    dropout_masks : dict of str -> torch.Tensor, optional
        Dropout masks for the rows of ``Z``: the kernel of a training step with dropout,
        ``∇f(X) diag(P) ∇f_mask(Z)ᵀ``, whose ``Z`` side is the network the step's
        gradient came from and whose ``X`` side the evaluation network the step changes
        (see :func:`~sktelescope._core.layers.dropout_masks`). Default: both sides the
        evaluation network.

    Returns
    -------
    kernel : torch.Tensor
        ``(N, M)`` for one output, else ``(n_outputs, N, M)``.

    Examples
    --------
    >>> import torch
    >>> from sktelescope._core.network import build_mlp, flatten_parameters
    >>> net = build_mlp(3, (5,), 1)
    >>> tangent_kernel(net, flatten_parameters(net), torch.randn(4, 3)).shape
    torch.Size([4, 4])
    """
    same = Z is None and dropout_masks is None
    Z = X if Z is None else Z
    n_outputs = module[-1].out_features
    outputs = range(n_outputs) if output is None else [output]
    layer_precond = None
    if preconditioner is not None:
        layer_precond = _split_by_layer(module, preconditioner)
    blocks = []
    for k in outputs:
        sx = layer_signals(module, flat, X, k)
        sz = sx if same else layer_signals(module, flat, Z, k, dropout_masks)
        if layer_precond is None:
            blocks.append(_plain_kernel(sx, sz))
        else:
            blocks.append(_preconditioned_kernel(sx, sz, layer_precond, chunk_size))
    if output is not None or n_outputs == 1:
        return blocks[0]
    return torch.stack(blocks)


def _signal_floats(module: nn.Sequential) -> tuple[int, int]:
    """Floats per input that :func:`layer_signals` returns (the linear layers' inputs but the
    network's own, every linear layer's backward signal, the other layers' factors), and
    the floats per input computing them needs on top (pre-activations and two gradient
    buffers)."""
    held, outs, widest, extra = 0, 0, 0, 0
    for i, layer in enumerate(m for m in module.children() if hasattr(m, "out_features")):
        widest = max(widest, layer.out_features)
        if isinstance(layer, nn.Linear):
            held += layer.out_features + (layer.in_features if i else 0)
            outs += layer.out_features
        else:
            floats = layer.floats()
            held += floats["signals"]
            extra += floats["building"] + layer.out_features
    return held, outs + 2 * widest + extra


def tangent_kernel_nbytes(
    module: nn.Sequential,
    n_x: int,
    n_z: int,
    preconditioned: bool = False,
    chunk_size: int = 512,
    element_size: int = 4,
) -> int:
    """Peak working memory of :func:`tangent_kernel_row_norms`, in bytes.

    Counts every copy alive at once: the inputs and the norms; the layer signals of all
    ``n_z`` reference inputs (twice while the next output's are computed) and, while
    they are computed, their pre-activations and gradient buffers; the signals of one
    chunk of ``chunk_size`` rows of X; the ``(chunk, n_z)`` kernel rows of the chunk
    (the previous chunk's are still held while the next are computed) and either two
    more such blocks (a layer's block and its product factor) or, with a preconditioner,
    the per-example gradient blocks of the largest layer (up to three for a chunk of Z,
    or one for Z and three for X while one is built) and the preconditioner split by
    layer.

    Examples
    --------
    >>> from sktelescope._core.network import build_mlp
    >>> tangent_kernel_nbytes(build_mlp(2, (), 1), n_x=10, n_z=100)  # 3 blocks of 10 x 100
    13880
    """
    held, building = _signal_floats(module)
    cx, cz = min(chunk_size, n_x), min(chunk_size, n_z)
    rows = cx * n_z * (2 if n_x > cx else 1)  # this chunk's kernel rows and the previous
    z_copies = 2 if module[-1].out_features > 1 else 1
    floats = (n_x + n_z) * (n_inputs(module) + 1) + (z_copies * n_z + cx) * held
    if preconditioned:
        sizes = factor_sizes(module)
        blocks = max(3 * cz, cz + 3 * cx) * max(sizes) + cx * cz
        work = max(blocks + rows, 2 * cx * n_z) + 2 * sum(sizes)
    else:
        work = rows + 2 * cx * n_z
    floats += max(n_z * building, cx * building + work)
    return int(floats * element_size)


def tangent_kernel_row_norms(
    module: nn.Sequential,
    flat: torch.Tensor,
    X: torch.Tensor,
    Z: torch.Tensor,
    preconditioner: torch.Tensor | None = None,
    chunk_size: int = 512,
) -> torch.Tensor:
    """Euclidean norms of the tangent-kernel rows ``||K(x, Z)||_2`` without forming ``K(X, Z)``.

    The layer signals of ``Z`` are computed once; ``X`` is processed in blocks of
    ``chunk_size`` rows, so memory is :func:`tangent_kernel_nbytes`, not ``N * M``.
    For several outputs the norm runs over all outputs' kernels (Frobenius norm of the
    ``(n_outputs, M)`` row block).

    Parameters
    ----------
    module, flat, preconditioner
        As for :func:`tangent_kernel`.
    X : torch.Tensor of shape (N, d)
    Z : torch.Tensor of shape (M, d)
    chunk_size : int
        Rows of ``X`` per block.

    Returns
    -------
    norms : torch.Tensor of shape (N,)
        In the kernel's units (squared network outputs per unit of parameter change):
        ``norms[i] = sqrt(sum_o sum_j K_o(X[i], Z[j])**2)``.

    Examples
    --------
    >>> import torch
    >>> from sktelescope._core.network import build_mlp, flatten_parameters
    >>> net = build_mlp(3, (5,), 1)
    >>> X, Z = torch.randn(4, 3), torch.randn(6, 3)
    >>> norms = tangent_kernel_row_norms(net, flatten_parameters(net), X, Z)
    >>> k = tangent_kernel(net, flatten_parameters(net), X, Z)
    >>> bool(torch.allclose(norms, k.norm(dim=1)))
    True
    """
    layer_precond = None if preconditioner is None else _split_by_layer(module, preconditioner)
    squared = X.new_zeros(len(X))
    for k in range(module[-1].out_features):
        sz = layer_signals(module, flat, Z, k)
        for start in range(0, len(X), chunk_size):
            sx = layer_signals(module, flat, X[start : start + chunk_size], k)
            if layer_precond is None:
                block = _plain_kernel(sx, sz)
            else:
                block = _preconditioned_kernel(sx, sz, layer_precond, chunk_size)
            squared[start : start + chunk_size] += block.pow(2).sum(dim=1)
    return squared.sqrt()
