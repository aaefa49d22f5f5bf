"""The network options as layers of the tangent kernel, checked against torch.func.

Every option (periodic embeddings "plr" and "pbld", the piecewise-linear "ple", the
diagonal feature scale, dropout, all at once) is built in float64, its parameters moved
off their initial values, and each layer-structured quantity compared with the same
quantity from ``vmap(jacrev(...))`` / ``jvp`` over the flat parameter vector: kernels
(plain, preconditioned, row norms, several outputs), per-example gradients, the
forward-mode increment, the stacked evaluation of checkpoints and the per-layer gradient
change. With dropout the kernel of a step is ``∇f(X)·∇f_mask(Z)``: the evaluation network
on the X side, the network the step's masks made on the Z side.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from helpers import reference_jacobian
from torch.func import jacrev, jvp, vmap

from sktelescope._core.architecture import Architecture
from sktelescope._core.autodiff import TangentEngine
from sktelescope._core.embeddings import (
    PeriodicEmbedding,
    PiecewiseLinearEmbedding,
    quantile_edges,
)
from sktelescope._core.kernels import (
    factor_sizes,
    layer_signals,
    per_example_gradients,
    tangent_kernel,
    tangent_kernel_row_norms,
)
from sktelescope._core.layers import FeatureScale, SeededDropout, dropout_masks, lr_scale
from sktelescope._core.network import (
    build_mlp,
    flatten_parameters,
    forward_flat,
    forward_stacked,
    linearised_increment,
    n_parameters,
)
from sktelescope.lens import layer_gradient_change

RTOL = 1e-10
D = 4

ARCHITECTURES = {
    "plr": Architecture(embedding="plr", n_frequencies=3, embedding_dim=2, sigma=0.5,
                        embedding_lr_scale=0.5),
    "pbld": Architecture(embedding="pbld", n_frequencies=3, embedding_dim=3, sigma=0.5,
                         embedding_lr_scale=0.5),
    "ple": Architecture(embedding="ple", n_bins=5, embedding_dim=2, embedding_lr_scale=0.5),
    "scale": Architecture(feature_scaling=True, scaling_lr_scale=3.0),
    "dropout": Architecture(dropout=0.3),
    "all": Architecture(embedding="pbld", n_frequencies=2, embedding_dim=3, sigma=0.5,
                        embedding_lr_scale=0.5, feature_scaling=True, scaling_lr_scale=2.0,
                        dropout=0.3),
}  # fmt: skip


def _inputs(n, seed=1, spread=1.0):
    gen = torch.Generator().manual_seed(seed)
    return spread * torch.randn(n, D, generator=gen, dtype=torch.float64)


def _net(name, n_out=1, activation="tanh"):
    """A float64 network with the option, its parameters moved off their initial values."""
    gen = torch.Generator().manual_seed(0)
    arch, train = ARCHITECTURES[name], _inputs(60, seed=9)
    net = build_mlp(D, (6, 5), n_out, activation, 1.0, gen, architecture=arch, inputs=train)
    net = net.double()
    flat = flatten_parameters(net)
    noise = torch.randn(flat.shape, generator=gen, dtype=torch.float64)
    return net, flat + 0.1 * noise * flat.abs().clamp_min(0.1)


def _masks(net, n, seed=3):
    """Random dropout masks (scaled like a training step's) for ``n`` rows, or None."""
    gen, masks = torch.Generator().manual_seed(seed), {}
    for name, layer in net.named_children():
        width = None
        for prev_name, prev in net.named_children():
            if prev_name == name:
                break
            width = getattr(prev, "out_features", width)
        if isinstance(layer, SeededDropout):
            keep = torch.rand(n, width, generator=gen) >= layer.p
            masks[name] = keep.double() / (1 - layer.p)
    return masks or None


def _masked_jacobian(net, flat, X, masks, output=0):
    """Per-example gradients of the network with row ``i`` of every mask, from torch.func."""

    def f(p, x, m):
        return forward_flat(net, p, x[None], {k: v[None] for k, v in m.items()})[0, output]

    return vmap(jacrev(f), in_dims=(None, 0, 0))(flat, X, masks)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_kernel_and_gradients_match_jacobians(name):
    net, flat = _net(name)
    X, Z = _inputs(9, spread=1.5), _inputs(6, seed=2, spread=1.5)  # ple: beyond its bins too
    JX, JZ = reference_jacobian(net, flat, X), reference_jacobian(net, flat, Z)
    assert JX.shape[1] == n_parameters(net) == sum(factor_sizes(net))
    torch.testing.assert_close(per_example_gradients(net, flat, X), JX, rtol=RTOL, atol=RTOL)
    torch.testing.assert_close(tangent_kernel(net, flat, X, Z), JX @ JZ.T, rtol=RTOL, atol=RTOL)
    P = torch.rand(flat.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = (JX * P) @ JZ.T
    for chunk in (2, 256):
        got = tangent_kernel(net, flat, X, Z, preconditioner=P, chunk_size=chunk)
        torch.testing.assert_close(got, expected, rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("name", ["pbld", "ple", "all"])
def test_multi_output_kernels_and_row_norms(name):
    net, flat = _net(name, n_out=2, activation="gelu")
    X, Z = _inputs(7), _inputs(5, seed=2)
    P = torch.rand(flat.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for pre in (None, P):
        full = tangent_kernel(net, flat, X, Z, preconditioner=pre)
        for k in range(2):
            JX, JZ = reference_jacobian(net, flat, X, k), reference_jacobian(net, flat, Z, k)
            ref = (JX if pre is None else JX * pre) @ JZ.T
            torch.testing.assert_close(full[k], ref, rtol=RTOL, atol=RTOL)
        norms = tangent_kernel_row_norms(net, flat, X, Z, preconditioner=pre, chunk_size=3)
        torch.testing.assert_close(norms, full.pow(2).sum(dim=(0, 2)).sqrt(), rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("name", ["dropout", "all"])
def test_step_kernel_under_dropout_uses_the_masks_on_the_batch_side_only(name):
    net, flat = _net(name)
    X, Z = _inputs(8), _inputs(5, seed=2)
    masks = _masks(net, len(Z))
    JX, JZ = reference_jacobian(net, flat, X), _masked_jacobian(net, flat, Z, masks)
    assert not torch.allclose(JZ, reference_jacobian(net, flat, Z))  # the masks matter
    got = per_example_gradients(net, flat, Z, masks=masks)
    torch.testing.assert_close(got, JZ, rtol=RTOL, atol=RTOL)
    torch.testing.assert_close(tangent_kernel(net, flat, X, Z, dropout_masks=masks), JX @ JZ.T,
                               rtol=RTOL, atol=RTOL)  # fmt: skip
    P = torch.rand(flat.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    got = tangent_kernel(net, flat, X, Z, preconditioner=P, dropout_masks=masks, chunk_size=3)
    torch.testing.assert_close(got, (JX * P) @ JZ.T, rtol=RTOL, atol=RTOL)
    # Z=None with masks: the eval network on X against the masked network on the same rows
    masks_x = _masks(net, len(X), seed=7)
    expected = JX @ _masked_jacobian(net, flat, X, masks_x).T
    torch.testing.assert_close(tangent_kernel(net, flat, X, dropout_masks=masks_x), expected,
                               rtol=RTOL, atol=RTOL)  # fmt: skip


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_forward_mode_and_stacked_checkpoints_match_torch_func(name):
    net, flat = _net(name)
    X = _inputs(7, spread=1.5)
    delta = 1e-2 * torch.randn(flat.shape, generator=torch.Generator().manual_seed(8),
                               dtype=torch.float64)  # fmt: skip
    with torch.no_grad():
        reference = jvp(lambda p: forward_flat(net, p, X), (flat,), (delta,))[1]
    assert TangentEngine(net, X).plain  # the cached layer-wise path, not torch.func
    torch.testing.assert_close(linearised_increment(net, flat, delta, X), reference,
                               rtol=RTOL, atol=RTOL)  # fmt: skip
    flats = torch.stack([flat, flat + delta, flat - 2 * delta])
    stacked = forward_stacked(net, flats, X, chunk_size=2)
    loop = torch.stack([forward_flat(net, f, X) for f in flats])
    torch.testing.assert_close(stacked, loop, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # the module's own forward (training) is the functional one
        torch.nn.utils.vector_to_parameters(flat, net.parameters())
        torch.testing.assert_close(net(X), forward_flat(net, flat, X), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_gradient_change_per_block_matches_jacobians(name):
    net, flat_a = _net(name)
    flat_b = flat_a + 0.05 * torch.randn(flat_a.shape, generator=torch.Generator().manual_seed(9),
                                         dtype=torch.float64)  # fmt: skip
    X = _inputs(10)
    change = layer_gradient_change(net, flat_a, flat_b, X)
    diff = (reference_jacobian(net, flat_b, X) - reference_jacobian(net, flat_a, X)).pow(2)
    blocks = torch.split(diff, factor_sizes(net), dim=1)
    expected = torch.stack([b.mean() for b in blocks])
    torch.testing.assert_close(change, expected, rtol=1e-8, atol=1e-14)


def test_plain_architecture_is_the_plain_network_and_a_feature_scale_starts_as_it():
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    plain = build_mlp(D, (6, 5), 1, generator=gen())
    same = build_mlp(D, (6, 5), 1, generator=gen(), architecture=Architecture())
    assert torch.equal(flatten_parameters(plain), flatten_parameters(same))
    assert [type(m) for m in plain] == [type(m) for m in same]
    arch = Architecture(feature_scaling=True, scaling_lr_scale=6.0)
    scaled = build_mlp(D, (6, 5), 1, generator=gen(), architecture=arch)
    X = _inputs(5).float()
    # the linear layers are drawn first, in the same order: the same function at init
    assert torch.equal(flatten_parameters(scaled)[D:], flatten_parameters(plain))
    with torch.no_grad():
        assert torch.equal(scaled(X), plain(X))


def test_signals_of_a_plain_network_keep_their_linear_inputs_and_deltas():
    net, flat = _net("scale")
    signals = layer_signals(net, flat, _inputs(3), 0)
    assert [tuple(a.shape) for a in signals.inputs] == [(3, 4), (3, 6), (3, 5)]
    assert [tuple(d.shape) for d in signals.deltas] == [(3, 6), (3, 5), (3, 1)]
    assert len(signals.factors) == 4  # the scale's block first


@pytest.mark.parametrize("adaptive", [True, False])
def test_lr_scale_multiplies_the_step_of_the_scaled_parameter_by_the_factor(adaptive):
    """One optimizer step on ``φ`` with ``θ = α φ`` moves ``θ`` by ``factor`` times the step
    of an unscaled parameter (Adam: up to its ε; SGD: exactly)."""
    factor = 0.1
    X = _inputs(16)
    steps = []
    for alpha in (1.0, lr_scale(factor, adaptive)):
        layer = FeatureScale(D, lr_scale=alpha).double()
        opt = (torch.optim.Adam if adaptive else torch.optim.SGD)(layer.parameters(), lr=1e-2)
        before = alpha * layer.scale.detach().clone()
        layer(X).pow(2).sum().backward()
        opt.step()
        steps.append(alpha * layer.scale.detach() - before)
    torch.testing.assert_close(steps[1], factor * steps[0], rtol=1e-6, atol=0)


def test_dropout_masks_only_in_the_training_forward_and_replay_from_the_generator():
    drop = SeededDropout(0.5, seed=3)
    h = torch.ones(6, 10, requires_grad=True)
    with torch.no_grad():
        assert torch.equal(drop(h), h)  # an evaluation under no_grad
    assert dropout_masks(torch.nn.Sequential(drop)) is None
    twin = copy.deepcopy(drop)
    out = drop(h)
    mask = drop.last_mask
    assert set(mask.unique().tolist()) == {0.0, 2.0} and torch.equal(out, h * mask)
    assert torch.equal(twin(h), out)  # a copy carries the generator's state
    restored = pickle.loads(pickle.dumps(drop))
    assert restored.last_mask is None  # masks are not pickled, the stream is
    assert torch.equal(restored(h), drop(h))
    assert not torch.equal(drop.last_mask, mask)  # the next step draws a new mask
    drop.eval()
    assert torch.equal(drop(h), h)


def test_piecewise_linear_encoding_over_quantile_bins():
    X = np.column_stack([np.arange(11.0), np.full(11, 3.0)])  # a constant column too
    edges = quantile_edges(X, 4)
    assert edges[0].tolist() == [0.0, 2.5, 5.0, 7.5, 10.0] and edges[1].tolist() == [3.0, 4.0]
    emb = PiecewiseLinearEmbedding(edges, embedding_dim=1).double()
    x = torch.tensor([[-2.5, 3.0], [6.25, 5.0], [12.5, 3.5]], dtype=torch.float64)
    u = emb._encode(emb._pre_encoding(x))
    # [open left, 1 or 0 ..., open right]: -1 below the first edge, linear past the last
    # (float32 buffers: slopes such as 1/2.5 are rounded to 6e-8)
    expected = [[-1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.5, 0.0], [1.0, 1.0, 1.0, 2.0]]
    np.testing.assert_allclose(u[:, 0].numpy(), expected, atol=1e-6)
    # the constant column: one unclamped bin, its last component; padding stays zero
    expected = [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.5]]
    np.testing.assert_allclose(u[:, 1].numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("embedding", ["plr", "pbld", "ple"])
def test_an_embedding_after_another_layer_carries_input_tangents_and_gradients(embedding):
    """``build_mlp`` puts embeddings first, where the input has no tangent; the layers'
    input-tangent and input-gradient paths are checked behind a feature scale."""
    gen = torch.Generator().manual_seed(0)
    if embedding == "ple":
        layer = PiecewiseLinearEmbedding(quantile_edges(_inputs(60, seed=9).numpy(), 5), 2)
    else:
        layer = PeriodicEmbedding(D, 3, 3, sigma=0.5, variant=embedding, lr_scale=0.5)
    net = torch.nn.Sequential(FeatureScale(D, 2.0), layer, torch.nn.Tanh(),
                              torch.nn.Linear(layer.out_features, 1)).double()  # fmt: skip
    flat = flatten_parameters(net)
    flat = flat + 0.1 * torch.randn(flat.shape, generator=gen, dtype=torch.float64)
    X, Z = _inputs(7, spread=1.5), _inputs(5, seed=2)
    delta = 1e-2 * torch.randn(flat.shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        reference = jvp(lambda p: forward_flat(net, p, X), (flat,), (delta,))[1]
    torch.testing.assert_close(linearised_increment(net, flat, delta, X), reference,
                               rtol=RTOL, atol=RTOL)  # fmt: skip
    JX, JZ = reference_jacobian(net, flat, X), reference_jacobian(net, flat, Z)
    torch.testing.assert_close(tangent_kernel(net, flat, X, Z), JX @ JZ.T, rtol=RTOL, atol=RTOL)
