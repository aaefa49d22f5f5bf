"""Per-example gradient factors: what one block of parameters contributes to a tangent kernel.

Every parametric layer of the network is linear in its parameters given its input, so the
per-example gradient of an output ``f`` with respect to one block of parameters is a cheap
function of quantities one forward and one backward pass already hold. Two forms cover
every layer in :mod:`sktelescope._core.layers`:

- :class:`Outer`: the block is the weight (and bias) of ``z = a Wᵀ + b``, optionally one
  such map per group (a per-feature linear layer is ``G`` independent small ones). Its
  gradient is the outer product ``δ aᵀ`` (and ``δ``), with ``δ = ∂f/∂z``, so the kernel
  between two inputs is ``Σ_g (δ_g(x)·δ_g(z)) (a_g(x)·a_g(z) + 1)`` without ever forming
  the gradient.
- :class:`Dense`: the gradient itself, ``(N, n_params)``, for small blocks whose gradient
  is an element-wise product (learnable frequencies, a diagonal scale).

A factor knows its kernel block (``gram``), its per-example gradients in the order of the
flat parameter vector (``jacobian``, for preconditioned kernels and the smoother) and the
squared change of its gradients between two parameter points (``squared_change``, for
gradient stability). A new layer only has to say which factors it yields.
"""

from __future__ import annotations

import torch

__all__ = ["Dense", "GradientFactor", "Outer"]


class GradientFactor:
    """Per-example gradients of one block of parameters, for ``N`` inputs.

    ``name`` labels the block (e.g. in :func:`sktelescope.lens.gradient_change`);
    ``n_params`` is its number of parameters, a contiguous slice of the flat vector.
    """

    name: str = ""

    @property
    def n_rows(self) -> int:
        """Number of inputs ``N``."""
        return len(self.tensor)

    @property
    def tensor(self) -> torch.Tensor:
        """A tensor of the factor (for its dtype and device)."""
        raise NotImplementedError

    @property
    def n_params(self) -> int:
        """Parameters in the block."""
        raise NotImplementedError

    def gram(self, other: GradientFactor) -> torch.Tensor:
        """``∇_block f(x_i) · ∇_block f(z_j)`` for every pair, shape ``(N, M)``."""
        raise NotImplementedError

    def jacobian(self, rows: slice = slice(None)) -> torch.Tensor:
        """Per-example gradients of ``rows``, shape ``(n_rows, n_params)``, flat order."""
        raise NotImplementedError

    def squared_change(self, other: GradientFactor) -> torch.Tensor:
        """``||∇f_other(x_i) − ∇f_self(x_i)||²`` per input (same inputs), shape ``(N,)``."""
        raise NotImplementedError


class Outer(GradientFactor):
    """Gradient factor of ``z = a Wᵀ (+ b)``: the outer products ``δ aᵀ`` (and ``δ``).

    Parameters
    ----------
    a : torch.Tensor of shape (N, in) or (N, G, in)
        The map's input; three dimensions mean ``G`` independent maps (weights
        ``(G, out, in)``, biases ``(G, out)``).
    d : torch.Tensor of shape (N, out) or (N, G, out)
        ``∂f/∂z``, already multiplied by any parameter scale the layer applies.
    bias : bool, default=True
        Whether the block ends with a bias (flat order: all weights, then all biases).
    name : str

    Examples
    --------
    >>> a, d = torch.randn(4, 3), torch.randn(4, 2)
    >>> f = Outer(a, d)
    >>> f.n_params, bool(torch.allclose(f.gram(f), f.jacobian() @ f.jacobian().T))
    (8, True)
    """

    def __init__(self, a: torch.Tensor, d: torch.Tensor, bias: bool = True, name: str = ""):
        self.a, self.d, self.bias, self.name = a, d, bias, name

    @property
    def tensor(self) -> torch.Tensor:
        return self.d

    @property
    def n_params(self) -> int:
        groups = self.a.shape[1] if self.a.dim() == 3 else 1
        return groups * self.d.shape[-1] * (self.a.shape[-1] + int(self.bias))

    def gram(self, other: Outer) -> torch.Tensor:
        if self.a.dim() == 2:
            return self._block(self.a, self.d, other.a, other.d)
        kernel = None
        for g in range(self.a.shape[1]):  # one small block per group: memory N x M
            block = self._block(self.a[:, g], self.d[:, g], other.a[:, g], other.d[:, g])
            kernel = block if kernel is None else kernel.add_(block)
        return kernel

    def _block(self, ax, dx, az, dz) -> torch.Tensor:
        if self.bias:
            block = torch.addmm(torch.ones((), dtype=ax.dtype, device=ax.device), ax, az.T)
        else:
            block = ax @ az.T
        return block.mul_(dx @ dz.T)

    def jacobian(self, rows: slice = slice(None)) -> torch.Tensor:
        a, d = self.a[rows], self.d[rows]
        weight = (d[..., :, None] * a[..., None, :]).reshape(len(a), -1)
        return torch.cat([weight, d.reshape(len(d), -1)], dim=1) if self.bias else weight

    def squared_change(self, other: Outer) -> torch.Tensor:
        a0, d0, a1, d1 = self.a, self.d, other.a, other.d
        n0, n1 = d0.pow(2).sum(-1), d1.pow(2).sum(-1)
        weight = n1 * a1.pow(2).sum(-1) + n0 * a0.pow(2).sum(-1)
        weight = weight - 2 * (d1 * d0).sum(-1) * (a1 * a0).sum(-1)
        change = weight + (d1 - d0).pow(2).sum(-1) if self.bias else weight
        return change if change.dim() == 1 else change.sum(1)


class Dense(GradientFactor):
    """Gradient factor given by the per-example gradients themselves, ``(N, n_params)``.

    Examples
    --------
    >>> g = torch.randn(3, 5)
    >>> Dense(g).gram(Dense(g)).shape
    torch.Size([3, 3])
    """

    def __init__(self, g: torch.Tensor, name: str = ""):
        self.g, self.name = g.reshape(len(g), -1), name

    @property
    def tensor(self) -> torch.Tensor:
        return self.g

    @property
    def n_params(self) -> int:
        return self.g.shape[1]

    def gram(self, other: Dense) -> torch.Tensor:
        return self.g @ other.g.T

    def jacobian(self, rows: slice = slice(None)) -> torch.Tensor:
        return self.g[rows]

    def squared_change(self, other: Dense) -> torch.Tensor:
        return (other.g - self.g).pow(2).sum(1)
