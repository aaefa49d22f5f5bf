"""Fit-time benchmark: TelescopingMLPRegressor against scikit-learn's MLPRegressor and skorch.

Same data (synthetic, 10,000 x 20 by default), same architecture (two hidden layers of 256,
ReLU), same optimizer (Adam, lr 1e-3), batch 256, a fixed number of epochs, no early stopping,
the same threads for every contender (``--threads``, default all torch threads: torch's for
ours and skorch, BLAS's for scikit-learn, through threadpoolctl); ours is also timed at its
default thread policy (``n_jobs=None``). Prints the median fit seconds of each contender over
``--repeats`` rounds, timed round-robin (one fit of each per round, so that a slow spell of a
shared machine falls on all alike), and the ratios the project targets:

- MLPRegressor / TelescopingMLP, same threads and at our default policy (target >= 1.5)
- skorch / TelescopingMLP (target >= 2)
- stage-recording overhead: TelescopingMLP with 50 stages vs one stage (target < 10%)

Two floors are timed too: a plain hand-written PyTorch loop (``torch.optim.Adam`` with its
defaults), and the bare step (the same network, batches sliced from resident tensors, the
fused Adam kernel called directly, no observers, no sample weights): what any loop with this
network and optimizer costs. ``--profile`` adds where our fit spends its time.

The network options (numerical embeddings, the feature scale, dropout) are timed in the
same rounds, each as the fit-time ratio against the plain network (``--no-options`` leaves
them out).

Run: ``python benchmarks/speed.py [--n-samples 10000] [--epochs 10] [--repeats 3]
[--threads N] [--profile] [--no-options]``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from sktelescope import TelescopingMLPRegressor
from sktelescope._core.fused_step import OptimizerStep

WIDTH, BATCH, LR = 256, 256, 1e-3


def make_data(n_samples: int, n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(np.float32)
    w = rng.normal(size=n_features)
    y = np.sin(X @ w) + 0.1 * X[:, 0] ** 2 + 0.05 * rng.normal(size=n_samples)
    return X, y.astype(np.float32)


def fit_telescoping(X, y, epochs, stages, n_jobs=-1, **options):
    """Ours; ``n_jobs=-1`` uses every torch thread, like the peers (the default policy,
    ``n_jobs=None``, gives a network this size one thread: ``benchmarks/threads.py``)."""
    extra = {"max_stages": stages} if stages > 1 else {"stage_every": 10**9}
    extra["n_jobs"] = n_jobs
    est = TelescopingMLPRegressor(
        hidden_layer_sizes=(WIDTH, WIDTH), learning_rate=LR, batch_size=BATCH, max_iter=epochs,
        early_stopping=False, n_iter_no_change=None, random_state=0, **extra,
        **{"preset": "paper", **options},
    )  # fmt: skip
    return est.fit(X, y)


#: Network and optimisation options timed against the plain network (the paper preset; their
#: defaults otherwise).
OPTIONS = {
    "tabular preset (the default)": dict(preset="tabular"),
    "pbld embedding": dict(numerical_embedding="pbld"),
    "plr embedding": dict(numerical_embedding="plr"),
    "ple embedding": dict(numerical_embedding="ple"),
    "feature scaling": dict(feature_scaling=True),
    "dropout 0.15": dict(dropout=0.15),
    "pbld + scaling + dropout": dict(
        numerical_embedding="pbld", feature_scaling=True, dropout=0.15
    ),
    "robust input scaling": dict(input_scaling="robust"),
    "quantile input scaling": dict(input_scaling="quantile"),
    "decay of weights only": dict(weight_decay=1e-4, weight_decay_biases=False),
    "coslog4 schedule": dict(lr_schedule="coslog4"),
}


def option_contenders(X, y, epochs) -> dict:
    """One fit per network option, with 50 stages like the plain contender."""
    return {
        f"option: {name}": (lambda o=options: fit_telescoping(X, y, epochs, 50, **o))
        for name, options in OPTIONS.items()
    }


def print_option_costs(seconds: dict, plain: float) -> None:
    """Each option's fit time over the plain network's, from the same rounds."""
    for name in OPTIONS:
        if f"option: {name}" in seconds:
            ratio = seconds[f"option: {name}"] / plain
            print(f"{name + ' / plain:':29s}{ratio:5.2f}x")


def fit_sklearn(X, y, epochs):
    est = MLPRegressor(
        hidden_layer_sizes=(WIDTH, WIDTH), learning_rate_init=LR, batch_size=BATCH,
        max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _torch_module(n_features):
    return torch.nn.Sequential(
        torch.nn.Linear(n_features, WIDTH), torch.nn.ReLU(),
        torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 1),
    )  # fmt: skip


def fit_skorch(X, y, epochs):
    from skorch import NeuralNetRegressor

    net = NeuralNetRegressor(
        _torch_module(X.shape[1]), max_epochs=epochs, batch_size=BATCH, lr=LR,
        optimizer=torch.optim.Adam, train_split=None, verbose=0,
        iterator_train__shuffle=True,
    )  # fmt: skip
    return net.fit(X, y.reshape(-1, 1))


def fit_plain_torch(X, y, epochs):
    torch.manual_seed(0)
    module = _torch_module(X.shape[1])
    opt = torch.optim.Adam(module.parameters(), lr=LR)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt))
        Xp, yp = Xt[perm], yt[perm]
        for start in range(0, len(Xt), BATCH):
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * (module(Xp[start : start + BATCH]) - yp[start : start + BATCH]).pow(2)
            loss.mean().backward()
            opt.step()
    return module


def fit_bare_step(X, y, epochs):
    """The floor: forward, loss, backward and the fused Adam kernel, nothing else."""
    torch.manual_seed(0)
    module = _torch_module(X.shape[1])
    step = OptimizerStep(torch.optim.Adam(module.parameters(), lr=LR, fused=True))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).reshape(-1, 1)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt))
        Xp, yp = Xt[perm], yt[perm]
        for start in range(0, len(Xt), BATCH):
            step.zero_grad()
            out = module(Xp[start : start + BATCH])
            (0.5 * (out - yp[start : start + BATCH]).pow(2)).mean().backward()
            step()
    return module


def median_seconds(contenders: dict, repeats: int) -> dict:
    """Median fit seconds of each contender, timed round-robin (one fit of each per round),
    so that a slow spell of a shared machine falls on every contender alike."""
    times: dict = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


#: Where a fit's time goes: the function whose cumulative time a category is (cProfile).
PROFILE_PARTS = {
    "forward (network)": ("torch/nn/modules/container.py", "forward"),
    "loss": ("sktelescope/_core/losses.py", "__call__"),
    "backward": ("torch/_tensor.py", "backward"),
    "optimizer step": ("sktelescope/_core/fused_step.py", "__call__"),
    "zero_grad": ("sktelescope/_core/fused_step.py", "zero_grad"),
    "observers (stages, early stopping)": ("sktelescope/_core/training.py", "_notify"),
    "end of epoch (observers)": ("sktelescope/_core/training.py", "_end_epoch"),
    "training loop in all": ("sktelescope/_core/training.py", "fit"),
    "fit in all": ("sktelescope/_mlp/_base.py", "fit"),
}


def profile_fit(X, y, epochs) -> None:
    """Print the cumulative time of each part of one fit of ours (50 stages) under cProfile
    (which slows Python more than torch's kernels: the Python parts read high)."""
    profiler = cProfile.Profile()
    profiler.enable()
    fit_telescoping(X, y, epochs, 50)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    cumulative = {}
    for (path, _, name), (_, _, _, cum, _) in stats.items():
        for part, (suffix, func) in PROFILE_PARTS.items():
            if path.endswith(suffix) and name == func:
                cumulative[part] = cumulative.get(part, 0.0) + cum
    total = cumulative.get("fit in all", float("nan"))
    print("where one fit (50 stages) spends its time, cProfile cumulative seconds:")
    for part in PROFILE_PARTS:
        seconds = cumulative.get(part, 0.0)
        print(f"  {part:36s} {seconds:7.3f} s  {100 * seconds / total:5.1f}%")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--n-features", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every contender (default: torch's default)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="also profile one of our fits")
    parser.add_argument("--no-options", action="store_true", help="skip the network options")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    X, y = make_data(args.n_samples, args.n_features)
    contenders = {
        "sktelescope (50 stages)": lambda: fit_telescoping(X, y, args.epochs, 50),
        "sktelescope (1 stage)": lambda: fit_telescoping(X, y, args.epochs, 1),
        "sktelescope (n_jobs=None)": lambda: fit_telescoping(X, y, args.epochs, 50, None),
        "sklearn MLPRegressor": lambda: fit_sklearn(X, y, args.epochs),
        "plain torch loop": lambda: fit_plain_torch(X, y, args.epochs),
        "bare fused step (floor)": lambda: fit_bare_step(X, y, args.epochs),
    }
    try:
        import skorch  # noqa: F401

        contenders["skorch NeuralNetRegressor"] = lambda: fit_skorch(X, y, args.epochs)
    except ImportError:
        print("skorch not installed: skipped")
    if not args.no_options:
        contenders.update(option_contenders(X, y, args.epochs))
    print(f"data {args.n_samples}x{args.n_features}, 2x{WIDTH} ReLU, Adam, batch {BATCH}, "
          f"{args.epochs} epochs, {threads} threads (torch and BLAS), "
          f"{args.repeats} round-robin rounds")  # fmt: skip
    with threadpool_limits(threads):
        seconds = median_seconds(contenders, args.repeats)
    for name, s in seconds.items():
        print(f"  {name:28s} {s:7.3f} s")
    ours, default = seconds["sktelescope (50 stages)"], seconds["sktelescope (n_jobs=None)"]
    sklearn = seconds["sklearn MLPRegressor"]
    print(f"MLPRegressor / sktelescope:  {sklearn / ours:5.2f}x  same threads (target >= 1.5)")
    print(f"MLPRegressor / sktelescope:  {sklearn / default:5.2f}x  our default thread policy")
    if "skorch NeuralNetRegressor" in seconds:
        skorch_ratio = seconds["skorch NeuralNetRegressor"] / ours
        print(f"skorch / sktelescope:        {skorch_ratio:5.2f}x  (target >= 2)")
    overhead = ours / seconds["sktelescope (1 stage)"] - 1
    print(f"stage recording overhead:    {100 * overhead:5.1f}%  (target < 10%)")
    print(f"plain torch / sktelescope:   {seconds['plain torch loop'] / ours:5.2f}x")
    print(f"bare step / sktelescope:     {seconds['bare fused step (floor)'] / ours:5.2f}x  "
          "(1.00 = at the floor)")  # fmt: skip
    if args.profile:
        profile_fit(X, y, args.epochs)
    print_option_costs(seconds, ours)


if __name__ == "__main__":
    main()
