"""Gradient stability: how much each layer's per-example gradients change between checkpoints.

See :ref:`math-gradient-stability`: for layer ``l`` and checkpoints ``t < t'``,

    Δ_l(t, t') = mean over inputs x and the layer's parameters of (∇_l f_t'(x) − ∇_l f_t(x))²

with ``f`` the raw network output (pre-softmax / pre-sigmoid). The paper compares steps one
epoch apart; here the comparison runs between the estimator's stored checkpoints (stage
boundaries, ``est.run_.checkpoints.steps``), so choose ``stage_every`` (or ``max_stages``)
to put them where you want them.

The per-example gradient of a linear layer is the outer product ``δ aᵀ`` (weight) and ``δ``
(bias) of its backward signal and input, so the squared difference needs no Jacobian:

    ||δ' a'ᵀ − δ aᵀ||² = |δ'|²|a'|² + |δ|²|a|² − 2 (δ'·δ)(a'·a),

computed in float64 (the cancellation costs nothing at that precision for these sizes).
The other blocks of parameters (an embedding's frequencies and per-feature linear layer, a
feature scale) are compared through their own gradient factors
(:mod:`sktelescope._core.factors`), one row each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from sktelescope._core.kernels import LayerSignals, layer_signals
from sktelescope._core.layers import TangentLayer
from sktelescope._core.network import n_outputs
from sktelescope.lens._calls import legacy_call
from sktelescope.lens._subject import resolve

__all__ = ["GradientChange", "gradient_change", "layer_gradient_change", "layer_names"]


def _squared_change(a: LayerSignals, b: LayerSignals) -> torch.Tensor:
    """Mean squared gradient difference of one output per block of parameters, shape
    (n_blocks,)."""
    return torch.stack([f0.squared_change(f1).mean() / f0.n_params
                        for f0, f1 in zip(a.factors, b.factors)])  # fmt: skip


def layer_names(module: nn.Sequential) -> list[str]:
    """One name per block of parameters (gradient factor), input to output.

    Linear layers are ``"layer k (in->out)"`` (``k`` counts linear layers); the others
    say what they are, e.g. ``"embedding frequencies (8 x 16)"``.

    Examples
    --------
    >>> from sktelescope._core.architecture import Architecture
    >>> from sktelescope._core.network import build_mlp
    >>> layer_names(build_mlp(2, (4,), 1, architecture=Architecture(feature_scaling=True)))
    ['feature scale (2)', 'layer 0 (2->4)', 'layer 1 (4->1)']
    """
    names, k = [], 0
    for layer in module.children():
        if isinstance(layer, nn.Linear):
            names.append(f"layer {k} ({layer.in_features}->{layer.out_features})")
            k += 1
        elif isinstance(layer, TangentLayer):
            names.extend(layer.factor_names())
    return names


def layer_gradient_change(
    module: nn.Sequential,
    flat_a: torch.Tensor,
    flat_b: torch.Tensor,
    X: torch.Tensor,
    output: int | None = None,
) -> torch.Tensor:
    """Mean squared change of each linear layer's per-example gradients, ``flat_a`` -> ``flat_b``.

    Parameters
    ----------
    module : torch.nn.Sequential
        As built by ``build_mlp`` (linear layers, activations, embeddings, a feature
        scale, dropout: the evaluation network, where dropout is the identity).
    flat_a, flat_b : torch.Tensor of shape (n_params,)
    X : torch.Tensor of shape (N, d)
        Inputs in the network's input space, same dtype as the parameters.
    output : int or None
        Network output whose gradients are compared; ``None`` averages over outputs.

    Returns
    -------
    change : torch.Tensor of shape (n_blocks,)
        One value per block of parameters (each linear layer's weight and bias, and each
        block of the other layers, named by :func:`layer_names`): the mean over inputs,
        the block's parameters and outputs of the squared difference, in squared output
        units per squared parameter unit.

    Examples
    --------
    >>> import torch
    >>> from sktelescope._core.network import build_mlp, flatten_parameters
    >>> net = build_mlp(3, (4,), 1).double()
    >>> flat = flatten_parameters(net)
    >>> layer_gradient_change(net, flat, flat, torch.randn(5, 3, dtype=torch.float64)).abs().max()
    tensor(0., dtype=torch.float64)
    """
    outputs = range(module[-1].out_features) if output is None else [output]
    total = None
    for k in outputs:
        change = _squared_change(
            layer_signals(module, flat_a, X, k), layer_signals(module, flat_b, X, k)
        )
        total = change if total is None else total + change
    return total / len(outputs)


@dataclass
class GradientChange:
    """Result of :func:`gradient_change`.

    Attributes
    ----------
    steps_from, steps_to : ndarray of int, shape (n_pairs,)
        Optimizer steps of the two checkpoints compared (0 is the initialisation).
    layers : list of str
        One name per block of parameters, input to output: ``"layer 0 (20->256)"`` for
        linear layers, e.g. ``"embedding frequencies (20 x 16)"`` for the others
        (:func:`layer_names`).
    values : ndarray of shape (n_pairs, n_layers)
        Mean squared gradient change, in standardised output units.
    """

    steps_from: np.ndarray
    steps_to: np.ndarray
    layers: list[str]
    values: np.ndarray


def gradient_change(
    est,
    X,
    y=None,
    X_eval=None,
    *,
    lag: int = 1,
    checkpoint_pairs: Sequence[tuple[int, int]] | None = None,
    output: int | None = None,
) -> GradientChange:
    """Per-layer gradient change between stored checkpoints of a fitted network.

    See :ref:`math-gradient-stability`. The checkpoints are the fitted model's own (no
    replay).

    Parameters
    ----------
    est : fitted TelescopingMLP* estimator, Pipeline ending in one, or a search over one
    X, y : array-like
        The data given to ``fit`` (or rows of it; raw data for a Pipeline): checked to be
        the model's, so that inputs in another space than the network's are refused.
    X_eval : array-like of shape (n_samples, n_features), optional
        Inputs over which the change is averaged (the paper uses 256 test inputs); default
        ``X``.
    lag : int, default=1
        Compare checkpoint ``i`` with checkpoint ``i + lag`` for every ``i`` (checkpoint
        ``i`` is the start of stage ``i``; the last one is the end of the run).
    checkpoint_pairs : sequence of (int, int), optional
        Explicit checkpoint index pairs instead of ``lag``.
    output : int, optional
        Output whose gradients are compared; default: average over outputs.

    Returns
    -------
    result : GradientChange

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sktelescope import TelescopingMLPRegressor
    >>> X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    >>> est = TelescopingMLPRegressor(hidden_layer_sizes=(8,), preset="paper", max_iter=4,
    ...                               max_stages=4, random_state=0).fit(X, y)
    >>> res = gradient_change(est, X, y, X[:16])
    >>> res.values.shape, res.layers
    ((4, 2), ['layer 0 (3->8)', 'layer 1 (8->1)'])
    """
    subject = resolve(est, "gradient_change", trees=False)
    check_is_fitted(subject.model, "run_")
    if y is None and X_eval is None:
        legacy_call("gradient_change", "(est, X, y, X_eval, ...)", "(est, X_eval, ...)")
        X_eval = X
    else:
        X_eval = X if X_eval is None else X_eval
        subject.training_inputs(X, y)
    run = subject.model.run_
    store = run.checkpoints
    pairs = _pairs(len(store.flats), lag, checkpoint_pairs)
    _check_output(output, n_outputs(run.module))
    Xt = run.inputs(subject.transform(X_eval), name="X_eval")
    values = _changes(run, pairs, Xt, output)
    layers = layer_names(run.module)
    steps = np.asarray(store.steps)
    first, second = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    return GradientChange(steps[first], steps[second], layers, values)


def _changes(run, pairs, Xt, output) -> np.ndarray:
    flats = [f.to(Xt) for f in run.checkpoints.flats]
    values = np.array([
        layer_gradient_change(run.module, flats[i], flats[j], Xt, output).cpu().numpy()
        for i, j in pairs
    ])  # fmt: skip
    if not np.all(np.isfinite(values)):
        raise ValueError(
            "The gradient change on X_eval overflows float64: it has rows up to "
            f"{float(Xt.abs().max()):.3g} training standard deviations from the training "
            "mean, where squared gradients exceed float64's range. Check their units, or "
            "clip them to the training range."
        )
    return values


def _is_index(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_output(output, n_out: int) -> None:
    if output is not None and not (_is_index(output) and 0 <= output < n_out):
        raise ValueError(f"output must be an integer in [0, {n_out}) or None, got {output!r}.")


def _pairs(n_checkpoints: int, lag: int, pairs) -> list[tuple[int, int]]:
    if pairs is None:
        if not (_is_index(lag) and 1 <= lag < n_checkpoints):
            raise ValueError(
                f"lag must be an integer between 1 and {n_checkpoints - 1} (the number of "
                f"stages), got {lag!r}."
            )
        return [(i, i + lag) for i in range(n_checkpoints - lag)]
    pairs = list(pairs)
    bad = [p for p in pairs if not _is_pair(p, n_checkpoints)]
    if bad or not pairs:
        raise ValueError(
            f"checkpoint_pairs must be non-empty index pairs in [0, {n_checkpoints - 1}]; "
            f"invalid: {bad}."
        )
    return [(int(i), int(j)) for i, j in pairs]


def _is_pair(pair, n_checkpoints: int) -> bool:
    if np.ndim(pair) != 1 or np.size(pair) != 2:
        return False
    return all(_is_index(k) and 0 <= k < n_checkpoints for k in pair)
