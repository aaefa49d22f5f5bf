"""Fit-time benchmark: TelescopingMLPRegressor against scikit-learn's MLPRegressor and skorch.

Same data (synthetic, 10,000 x 20 by default), same architecture (two hidden layers of 256,
ReLU), same optimizer (Adam, lr 1e-3), batch 256, a fixed number of epochs, no early stopping,
the same torch threads (ours with ``n_jobs=-1``; its default policy is timed too). Prints the
median fit seconds of each contender over ``--repeats`` runs and the ratios the project targets:

- MLPRegressor / TelescopingMLP (target >= 1.5)
- skorch / TelescopingMLP (target >= 2)
- stage-recording overhead: TelescopingMLP with 50 stages vs one stage (target < 10%)

A plain hand-written PyTorch loop is timed too, as the floor. The network options (numerical
embeddings, the feature scale, dropout) are timed in the same rounds, each as the fit-time
ratio against the plain network (``--no-options`` leaves them out).

Run: ``python benchmarks/speed.py [--n-samples 10000] [--epochs 10] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from sktelescope import TelescopingMLPRegressor

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
        early_stopping=False, n_iter_no_change=None, random_state=0, **extra, **options,
    )  # fmt: skip
    return est.fit(X, y)


#: Network options timed against the plain network (their defaults otherwise).
OPTIONS = {
    "pbld embedding": dict(numerical_embedding="pbld"),
    "plr embedding": dict(numerical_embedding="plr"),
    "ple embedding": dict(numerical_embedding="ple"),
    "feature scaling": dict(feature_scaling=True),
    "dropout 0.15": dict(dropout=0.15),
    "pbld + scaling + dropout": dict(
        numerical_embedding="pbld", feature_scaling=True, dropout=0.15
    ),
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--n-features", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-options", action="store_true", help="skip the network options")
    args = parser.parse_args(argv)
    X, y = make_data(args.n_samples, args.n_features)
    contenders = {
        "sktelescope (50 stages)": lambda: fit_telescoping(X, y, args.epochs, 50),
        "sktelescope (1 stage)": lambda: fit_telescoping(X, y, args.epochs, 1),
        "sktelescope (n_jobs=None)": lambda: fit_telescoping(X, y, args.epochs, 50, None),
        "sklearn MLPRegressor": lambda: fit_sklearn(X, y, args.epochs),
        "plain torch loop": lambda: fit_plain_torch(X, y, args.epochs),
    }
    try:
        import skorch  # noqa: F401

        contenders["skorch NeuralNetRegressor"] = lambda: fit_skorch(X, y, args.epochs)
    except ImportError:
        print("skorch not installed: skipped")
    if not args.no_options:
        contenders.update(option_contenders(X, y, args.epochs))
    print(f"data {args.n_samples}x{args.n_features}, 2x{WIDTH} ReLU, Adam, batch {BATCH}, "
          f"{args.epochs} epochs, torch threads {torch.get_num_threads()}")  # fmt: skip
    seconds = median_seconds(contenders, args.repeats)
    for name, s in seconds.items():
        print(f"  {name:28s} {s:7.3f} s")
    ours = seconds["sktelescope (50 stages)"]
    sk_ratio = seconds["sklearn MLPRegressor"] / ours
    print(f"MLPRegressor / sktelescope:  {sk_ratio:5.2f}x  (target >= 1.5)")
    if "skorch NeuralNetRegressor" in seconds:
        skorch_ratio = seconds["skorch NeuralNetRegressor"] / ours
        print(f"skorch / sktelescope:        {skorch_ratio:5.2f}x  (target >= 2)")
    overhead = ours / seconds["sktelescope (1 stage)"] - 1
    print(f"stage recording overhead:    {100 * overhead:5.1f}%  (target < 10%)")
    print(f"plain torch / sktelescope:   {seconds['plain torch loop'] / ours:5.2f}x")
    print_option_costs(seconds, ours)


if __name__ == "__main__":
    main()
