"""Cost of one tangent-kernel block: layer structure vs torch.func Jacobians.

Times ``K(X, Z)`` for ``len(X) = 2000`` and ``len(Z) = 256`` inputs of a 20-256-256-1 ReLU
network (71,937 parameters), computed two ways in the same run:

- ``sktelescope._core.kernels.tangent_kernel``: per-layer Gram products of the layer inputs
  and backward signals, ``Σ_l (δ_X δ_Zᵀ) ⊙ (a_X a_Zᵀ + 1)``;
- torch.func: per-example Jacobians ``vmap(jacrev(f))`` of shape ``(N, p)`` and ``J_X J_Zᵀ``.

Prints the median wall time of each in milliseconds and their ratio. Run::

    python benchmarks/kernel_cost.py            # 2,000 x 256, 20-256-256-1
    python benchmarks/kernel_cost.py --fast     # smaller, for CI smoke runs
    python benchmarks/kernel_cost.py --threads 1

On a shared machine, OpenMP threads fighting other processes can make both timings several
times slower; ``--threads 1`` gives steadier figures there.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.func import jacrev, vmap

from sktelescope._core.kernels import tangent_kernel
from sktelescope._core.network import build_mlp, flatten_parameters, forward_flat


def jacobian_kernel(module, flat, X, Z):
    """Reference: ``J_X J_Zᵀ`` from torch.func per-example Jacobians."""

    def f(p, x):
        return forward_flat(module, p, x[None])[0, 0]

    jac = vmap(jacrev(f), in_dims=(None, 0))
    return jac(flat, X) @ jac(flat, Z).T


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small sizes, for CI")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    n_x, n_z, width = (400, 64, 64) if args.fast else (2000, 256, 256)
    gen = torch.Generator().manual_seed(0)
    module = build_mlp(20, (width, width), 1, generator=gen)
    flat = flatten_parameters(module)
    X, Z = torch.randn(n_x, 20, generator=gen), torch.randn(n_z, 20, generator=gen)
    with torch.no_grad():
        k_layer = tangent_kernel(module, flat, X, Z)
        k_jac = jacobian_kernel(module, flat, X, Z)
    scale = k_jac.abs().max()
    rel_err = float((k_layer - k_jac).abs().max() / scale)
    layer_ms = median_ms(lambda: tangent_kernel(module, flat, X, Z), args.repeats)
    jac_ms = median_ms(lambda: jacobian_kernel(module, flat, X, Z), max(args.repeats // 2, 1))
    print(f"kernel block {n_x} x {n_z}, 20-{width}-{width}-1 ({flat.numel():,} parameters), "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    print(f"  layer structure : {layer_ms:8.1f} ms")
    print(f"  torch.func      : {jac_ms:8.1f} ms")
    print(
        f"  ratio           : {jac_ms / layer_ms:8.1f}x   (max relative difference {rel_err:.1e})"
    )
    return {"layer_ms": layer_ms, "jacobian_ms": jac_ms, "max_rel_diff": rel_err}


if __name__ == "__main__":
    main()
