"""The network's options beyond the plain MLP: numerical embeddings, a feature scale, dropout.

:class:`Architecture` is the specification that :func:`~sktelescope._core.network.build_mlp`
reads. With every option off (the default) the network is exactly the plain
``Linear -> activation -> ... -> Linear`` of the paper, drawn from the generator in the
same order. Otherwise the layers are, input to output::

    [embedding] -> [feature scale] -> Linear -> act -> [dropout] -> ... -> Linear

The feature scale acts on the first linear layer's input (after the embedding, as
RealMLP's front scale does); dropout follows every hidden activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sktelescope._core.embeddings import PeriodicEmbedding, PiecewiseLinearEmbedding, quantile_edges
from sktelescope._core.layers import FeatureScale, SeededDropout, TangentLayer

__all__ = ["EMBEDDINGS", "Architecture", "initialise_extra_layers"]

#: Numerical embeddings and their default outputs per feature.
EMBEDDINGS = {"plr": 16, "pbld": 4, "ple": 16}


@dataclass(frozen=True)
class Architecture:
    """Which layers the network has besides its linear layers and activations.

    Parameters
    ----------
    embedding : {None, "plr", "pbld", "ple"}
        Numerical embedding per feature (:mod:`sktelescope._core.embeddings`).
    embedding_dim : int or None
        Outputs per feature; ``None``: 16 for "plr" and "ple", 4 for "pbld".
    n_frequencies, sigma : int, float
        Frequencies per feature and their initial standard deviation (periodic).
    n_bins : int
        Most quantile bins per feature ("ple").
    embedding_lr_scale, scaling_lr_scale : float
        Parameter scales ``α`` of the embedding and of the feature scale
        (:func:`~sktelescope._core.layers.lr_scale`).
    feature_scaling : bool
        A learnable diagonal scale before the first linear layer.
    dropout : float
        Dropout probability after every hidden activation.

    Examples
    --------
    >>> Architecture().is_plain, Architecture(embedding="pbld").first_fan_in(5)
    (True, 20)
    """

    embedding: str | None = None
    embedding_dim: int | None = None
    n_frequencies: int = 16
    sigma: float = 0.1
    n_bins: int = 48
    embedding_lr_scale: float = 1.0
    feature_scaling: bool = False
    scaling_lr_scale: float = 1.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.embedding is not None and self.embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {sorted(EMBEDDINGS)} or None.")
        if self.embedding == "pbld" and self.dim < 2:
            raise ValueError(
                f"embedding_dim={self.embedding_dim} is too small for the 'pbld' embedding, "
                "whose outputs per feature include the feature itself: use 2 or more."
            )

    @property
    def is_plain(self) -> bool:
        """Whether this is the plain MLP (no option on)."""
        return self.embedding is None and not self.feature_scaling and self.dropout == 0

    @property
    def dim(self) -> int:
        """Outputs per feature of the embedding (1 without one)."""
        if self.embedding is None:
            return 1
        return EMBEDDINGS[self.embedding] if self.embedding_dim is None else self.embedding_dim

    def first_fan_in(self, n_inputs: int) -> int:
        """Inputs of the first linear layer."""
        return int(n_inputs) * self.dim

    def count_parameters(self, n_inputs: int, hidden: Sequence[int], n_outputs: int) -> int:
        """Parameters of the network (an upper bound for "ple", whose features may have
        fewer bins than ``n_bins``), without building it.

        Examples
        --------
        >>> Architecture(feature_scaling=True).count_parameters(3, (4,), 1)
        24
        """
        sizes = [self.first_fan_in(n_inputs), *(int(s) for s in hidden), int(n_outputs)]
        count = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))
        n, k, d = int(n_inputs), self.n_frequencies, self.dim
        if self.embedding == "plr":
            count += n * k + n * d * (2 * k + 1)
        elif self.embedding == "pbld":
            count += 2 * n * k + n * (d - 1) * (k + 1)
        elif self.embedding == "ple":
            count += n * d * (self.n_bins + 1)
        return count + sizes[0] * int(self.feature_scaling)

    def front_layers(self, n_inputs: int, inputs: torch.Tensor | None) -> list[TangentLayer]:
        """The layers before the first linear layer (parameters not yet drawn).

        ``inputs`` are the training inputs in the network's input space; the "ple"
        embedding fits its bins on them.
        """
        layers: list[TangentLayer] = []
        # Drawn from a throwaway generator, not the global RNG: build_mlp initialises them
        # from the run's generator (initialise_extra_layers).
        placeholder = torch.Generator()
        if self.embedding in ("plr", "pbld"):
            layers.append(PeriodicEmbedding(
                n_inputs, self.n_frequencies, self.dim, self.sigma, self.embedding,
                self.embedding_lr_scale, generator=placeholder,
            ))  # fmt: skip
        elif self.embedding == "ple":
            if inputs is None:
                raise ValueError("The 'ple' embedding fits its bins on the training inputs.")
            edges = quantile_edges(np.asarray(inputs.detach().cpu(), np.float64), self.n_bins)
            layers.append(PiecewiseLinearEmbedding(
                edges, self.dim, self.embedding_lr_scale, generator=placeholder
            ))  # fmt: skip
        if self.feature_scaling:
            layers.append(FeatureScale(self.first_fan_in(n_inputs), self.scaling_lr_scale))
        return layers

    def dropout_layer(self) -> list[nn.Module]:
        """The layer after each hidden activation (its generator is seeded at build)."""
        return [SeededDropout(self.dropout, seed=0)] if self.dropout > 0 else []


@torch.no_grad()
def initialise_extra_layers(module: nn.Module, generator: torch.Generator | None) -> None:
    """Draw the parameters of the non-linear layers and the dropout seeds, after the linear
    layers' (so a network with a feature scale starts as the plain one).

    Examples
    --------
    >>> net = nn.Sequential(*Architecture(embedding="pbld").front_layers(2, None))
    >>> initialise_extra_layers(net, torch.Generator().manual_seed(0))
    >>> bool(net[0].frequencies.abs().max() > 0)
    True
    """
    for layer in module.children():
        if isinstance(layer, TangentLayer):
            layer.reset_parameters(generator)
    for layer in module.children():
        if isinstance(layer, SeededDropout):
            seed = torch.randint(0, 2**62, (1,), generator=generator)
            layer.generator.manual_seed(int(seed))
