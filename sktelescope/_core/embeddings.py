"""Numerical embeddings per feature: periodic (PLR, PBLD) and piecewise-linear (PLE).

Each input feature ``x_j`` is mapped to a small vector of its own before the first linear
layer (Gorishniy, Rubachev & Babenko 2022, "On Embeddings for Numerical Features in
Tabular Deep Learning"; Holzmüller et al. 2024, RealMLP):

- ``"plr"``: ``ReLU(W_j [cos(2π c_j x_j), sin(2π c_j x_j)] + b_j)``, learnable frequencies
  ``c_j`` (``k`` per feature, initialised ``N(0, σ²)``) and a per-feature linear layer;
- ``"pbld"`` (RealMLP's default): ``W_j cos(2π c_j x_j + φ_j) + b_j`` with learnable phases
  ``φ_j`` (initialised uniform on ``[−π, π]``), no activation, and ``x_j`` itself appended
  ("densenet"), so each feature gives ``embedding_dim − 1`` learned values and ``x_j``;
- ``"ple"``: the piecewise-linear encoding of ``x_j`` over quantile bins fitted on the
  training inputs (``[1, …, 1, (x − e_k)/(e_{k+1} − e_k), 0, …, 0]``, open at both ends),
  then a per-feature linear layer (rtdl-num-embeddings' layout, version "A").

Both are :class:`~sktelescope._core.layers.TangentLayer`: the frequencies (and phases)
have element-wise per-example gradients (:class:`~sktelescope._core.factors.Dense`), the
per-feature linear layer has one outer product per feature (grouped
:class:`~sktelescope._core.factors.Outer`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from sktelescope._core.factors import Dense, Outer
from sktelescope._core.layers import TangentLayer, Traced, batched_parameter, tap

__all__ = ["PeriodicEmbedding", "PiecewiseLinearEmbedding", "quantile_edges"]


def per_feature_linear(u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """``u_j W_jᵀ + b_j`` for every feature ``j``: ``u`` is ``(..., N, G, in)``, ``weight``
    ``(G, out, in)`` (or ``(K, G, out, in)`` with ``u`` ``(K, N, G, in)``); one batched
    matrix product over the features (and checkpoints).

    Examples
    --------
    >>> per_feature_linear(torch.ones(5, 3, 4), torch.ones(3, 2, 4), torch.zeros(3, 2)).shape
    torch.Size([5, 3, 2])
    """
    if u.dim() == 3 and weight.dim() == 3:  # one network: bmm is the fastest (training)
        out = torch.bmm(u.transpose(0, 1), weight.transpose(1, 2)).transpose(0, 1)
    else:
        out = (u.transpose(-2, -3) @ weight.transpose(-1, -2)).transpose(-2, -3)
    if bias is not None:
        out = out + (bias.unsqueeze(1) if weight.dim() == 4 else bias)
    return out


class _PerFeatureLayer(TangentLayer):
    """What both embeddings share: a per-feature linear map ``weight`` (n, d, m), ``bias``
    (n, d) and the parameter scale ``α``."""

    def _scaled(self, p: torch.Tensor) -> torch.Tensor:
        return p if self.lr_scale == 1.0 else self.lr_scale * p

    def _linear(self, params, u):
        return per_feature_linear(u, self._scaled(params["weight"]), self._scaled(params["bias"]))

    def _linear_tangent(self, params, dparams, u, du):
        out = self._linear(dparams, u)
        if du is not None:
            out = out + per_feature_linear(du, self._scaled(params["weight"]), None)
        return out

    @torch.no_grad()
    def _reset_linear(self, generator) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[-1]) / self.lr_scale
        self.weight.uniform_(-bound, bound, generator=generator)
        self.bias.uniform_(-bound, bound, generator=generator)

    def _linear_factor(self, u, de) -> Outer:
        name = self.factor_names()[-1]
        return Outer(u.detach(), self.lr_scale * de, bias=True, name=name)

    def _linear_name(self) -> str:
        n, d, m = self.weight.shape
        return f"embedding linear ({n} x {m}->{d})"


class PeriodicEmbedding(_PerFeatureLayer):
    """Periodic embedding of each feature: ``"plr"`` or ``"pbld"`` (see the module docstring).

    Parameters
    ----------
    n_features : int
    n_frequencies : int, default=16
        Frequencies ``k`` per feature.
    embedding_dim : int, default=4
        Outputs per feature (``"pbld"``: including the appended ``x_j``, so at least 2).
    sigma : float, default=0.1
        Standard deviation of the initial frequencies (in cycles per standardised unit).
    variant : {"pbld", "plr"}, default="pbld"
    lr_scale : float, default=1.0
        ``α`` of the parametrisation ``θ = α φ`` of all its parameters.
    generator : torch.Generator, optional
        Draws the initial parameters (``None``: the global RNG, as ``nn.Linear``).

    Examples
    --------
    >>> emb = PeriodicEmbedding(3, n_frequencies=8, embedding_dim=4)
    >>> emb(torch.randn(5, 3)).shape
    torch.Size([5, 12])
    """

    def __init__(
        self, n_features: int, n_frequencies: int = 16, embedding_dim: int = 4,
        sigma: float = 0.1, variant: str = "pbld", lr_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        if variant not in ("pbld", "plr"):
            raise ValueError(f"variant must be 'pbld' or 'plr', got {variant!r}.")
        self.variant, self.sigma, self.lr_scale = variant, float(sigma), float(lr_scale)
        self.densenet = variant == "pbld"
        n, k = int(n_features), int(n_frequencies)
        learned = int(embedding_dim) - int(self.densenet)
        if learned < 1:
            raise ValueError(f"embedding_dim must be at least 2 for 'pbld', got {embedding_dim}.")
        self.in_features, self.out_features = n, n * int(embedding_dim)
        self.frequencies = nn.Parameter(torch.empty(n, k))
        if self.densenet:
            self.phases = nn.Parameter(torch.empty(n, k))
        self.weight = nn.Parameter(torch.empty(n, learned, k if self.densenet else 2 * k))
        self.bias = nn.Parameter(torch.empty(n, learned))
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        a = self.lr_scale
        self.frequencies.normal_(0.0, self.sigma / a, generator=generator)
        if self.densenet:
            self.phases.uniform_(-math.pi / a, math.pi / a, generator=generator)
        self._reset_linear(generator)

    def _angle(self, params, x, dx=None):
        """``2π α c x (+ α φ)``, or its tangent when ``params`` are a direction and ``dx`` the
        input's tangent."""
        c = batched_parameter(params["frequencies"], x, 2)
        z = (2 * math.pi * self.lr_scale) * c * x[..., None]
        if self.densenet:
            z = z + self.lr_scale * batched_parameter(params["phases"], x, 2)
        return z

    def _features(self, z):
        return torch.cos(z) if self.densenet else torch.cat([torch.cos(z), torch.sin(z)], -1)

    def _output(self, e, x):
        e = e if self.densenet else torch.relu(e)
        out = e.flatten(-2)
        return torch.cat([out, x], -1) if self.densenet else out

    def evaluate(self, params, h):
        z = self._angle(params, h)
        return self._output(self._linear(params, self._features(z)), h)

    def primal(self, params, h):
        z = self._angle(params, h)
        u = self._features(z)
        e = self._linear(params, u)
        return self._output(e, h), (h, z, u, e)

    def tangent(self, params, dparams, cache, dh):
        x, z, u, e = cache
        dz = self._angle(dparams, x)
        if dh is not None:
            c = (2 * math.pi * self.lr_scale) * params["frequencies"]
            dz = dz + c * dh[..., None]
        if self.densenet:
            du = -torch.sin(z) * dz
        else:
            du = torch.cat([-torch.sin(z) * dz, torch.cos(z) * dz], -1)
        de = self._linear_tangent(params, dparams, u, du)
        if self.densenet:
            return torch.cat([de.flatten(-2), torch.zeros_like(x) if dh is None else dh], -1)
        return (de * (e > 0)).flatten(-2)

    def traced(self, params, h) -> Traced:
        z = tap(self._angle(params, h))
        u = self._features(z)
        e = tap(self._linear(params, u))
        x = h.detach()

        def to_factors(grads):
            dz, de = grads
            g = [(2 * math.pi) * dz * x[..., None]]
            if self.densenet:
                g.append(dz)
            g = torch.cat([part.flatten(1) for part in g], 1)
            periodic = Dense(self.lr_scale * g, self.factor_names()[0])
            return [periodic, self._linear_factor(u, de)]

        return self._output(e, h), [z, e], to_factors

    def factor_sizes(self) -> list[int]:
        n, k = self.frequencies.shape
        n, d, m = self.weight.shape
        return [n * k * (1 + int(self.densenet)), n * d * (m + 1)]

    def factor_names(self) -> list[str]:
        n, k = self.frequencies.shape
        what = "frequencies and phases" if self.densenet else "frequencies"
        return [f"embedding {what} ({n} x {k})", self._linear_name()]

    def floats(self) -> dict[str, int]:
        n, k = self.frequencies.shape
        n, d, m = self.weight.shape
        signals = n * k * (1 + int(self.densenet)) + n * m + n * d
        cache = n * k + n * m + n * d
        return {
            "signals": signals,
            "cache": cache,
            "building": 2 * n * k + n * m + self.out_features,
        }

    def extra_repr(self) -> str:
        n, k = self.frequencies.shape
        return f"{self.variant}, {n} features x {k} frequencies -> {self.out_features // n}"


def quantile_edges(X: np.ndarray, n_bins: int) -> list[torch.Tensor]:
    """Bin edges per column of ``X``: the ``n_bins + 1`` quantiles, duplicates removed.

    A column with a single distinct value gets one bin ``[v, v + 1]`` (a linear encoding).

    Examples
    --------
    >>> [e.tolist() for e in quantile_edges(np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]]), 2)]
    [[0.0, 1.0, 2.0], [5.0, 6.0]]
    """
    X = np.asarray(X, dtype=np.float64)
    quantiles = np.quantile(X, np.linspace(0.0, 1.0, int(n_bins) + 1), axis=0)
    edges = []
    for column in quantiles.T:
        e = np.unique(column)
        edges.append(torch.as_tensor(e if len(e) > 1 else np.array([e[0], e[0] + 1.0])))
    return edges


class PiecewiseLinearEmbedding(_PerFeatureLayer):
    """Piecewise-linear encoding of each feature over fixed bins, then a per-feature linear.

    Parameters
    ----------
    edges : list of torch.Tensor
        Sorted bin edges per feature (at least two each), e.g. :func:`quantile_edges` of
        the training inputs.
    embedding_dim : int, default=16
    lr_scale : float, default=1.0
    generator : torch.Generator, optional
        Draws the initial parameters (``None``: the global RNG, as ``nn.Linear``).

    Examples
    --------
    >>> emb = PiecewiseLinearEmbedding(quantile_edges(np.random.default_rng(0).normal(
    ...     size=(50, 2)), 4), embedding_dim=3)
    >>> emb(torch.zeros(5, 2)).shape
    torch.Size([5, 6])
    """

    def __init__(
        self, edges: list[torch.Tensor], embedding_dim: int = 16, lr_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        n, n_bins = len(edges), max(len(e) - 1 for e in edges)
        self.in_features, self.out_features = n, n * int(embedding_dim)
        self.lr_scale = float(lr_scale)
        for name, value in zip(("enc_weight", "enc_bias", "lower", "upper"), _encoding(edges)):
            self.register_buffer(name, value.to(torch.get_default_dtype()))
        self.weight = nn.Parameter(torch.empty(n, int(embedding_dim), n_bins))
        self.bias = nn.Parameter(torch.empty(n, int(embedding_dim)))
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        self._reset_linear(generator)

    def _pre_encoding(self, x):
        return torch.addcmul(self.enc_bias, self.enc_weight, x[..., None])

    def _encode(self, lin):
        return torch.maximum(torch.minimum(lin, self.upper), self.lower)

    def evaluate(self, params, h):
        return self._linear(params, self._encode(self._pre_encoding(h))).flatten(-2)

    def primal(self, params, h):
        lin = self._pre_encoding(h)
        u = self._encode(lin)
        return self._linear(params, u).flatten(-2), (lin, u)

    def tangent(self, params, dparams, cache, dh):
        lin, u = cache
        du = None
        if dh is not None:
            inside = (lin > self.lower) & (lin < self.upper)
            du = self.enc_weight * inside * dh[..., None]
        return self._linear_tangent(params, dparams, u, du).flatten(-2)

    def traced(self, params, h) -> Traced:
        u = self._encode(self._pre_encoding(h))
        e = tap(self._linear(params, u))
        return e.flatten(-2), [e], lambda grads: [self._linear_factor(u, grads[0])]

    def factor_sizes(self) -> list[int]:
        n, d, m = self.weight.shape
        return [n * d * (m + 1)]

    def factor_names(self) -> list[str]:
        return [self._linear_name()]

    def floats(self) -> dict[str, int]:
        n, d, m = self.weight.shape
        return {"signals": n * m + n * d, "cache": 2 * n * m, "building": 2 * n * m + n * d}

    def extra_repr(self) -> str:
        n, d, m = self.weight.shape
        return f"{n} features x {m} bins -> {d}"


def _encoding(edges: list[torch.Tensor]):
    """Slopes, offsets and clamping bounds of the encoding, ``(n_features, max_bins)`` each.

    Feature ``j`` with ``b`` bins puts its first ``b − 1`` components first and its last
    component last (padding, all zero, in between): the first is open to the left, the
    last open to the right, a single bin is not clamped at all.
    """
    n, width = len(edges), max(len(e) - 1 for e in edges)
    slope, offset = (
        torch.zeros(n, width, dtype=torch.float64),
        torch.zeros(n, width, dtype=torch.float64),
    )
    lower, upper = (
        torch.zeros(n, width, dtype=torch.float64),
        torch.ones(n, width, dtype=torch.float64),
    )
    for j, e in enumerate(edges):
        e = torch.as_tensor(e, dtype=torch.float64)
        w = 1.0 / e.diff()
        b = -e[:-1] * w
        positions = [*range(len(w) - 1), width - 1]
        slope[j, positions], offset[j, positions] = w, b
        lower[j, positions[0]] = -math.inf
        upper[j, width - 1] = math.inf
        if len(w) > 1:
            upper[j, positions[0]] = 1.0
            lower[j, width - 1] = 0.0
    return slope, offset, lower, upper
