"""Per-step cost of the lens monitors, and approximation errors on digits 3 vs 5.

Part 1 times training steps of a 20-256-256-1 ReLU network (Adam, batch 256, 10,000 x 20
synthetic data) with each monitor watching 2,000 inputs, as a ratio to a plain step in
the same run (configurations are interleaved and the median of ``--repeats`` is kept):

- exact: the network on the monitored inputs (one forward pass per step);
- first-order: exact + ``∇f_{t-1}·Δθ_t`` (one tangent pass re-using the last forward);
- first+trapezoid: also ``∇f_t·Δθ_t``; all: also the lazy model ``∇f_0·(θ_t − θ_0)``;
- reference floor: what a forward pass plus one ``torch.func.jvp`` per step cost.

The smoother's cost is timed on a smaller run (its state is ``8·p·n`` bytes per buffer:
the big run would need ~23 GB and is refused, as shown).

Part 2 fits an MLP (hidden 200-200, squared loss on ±1 labels, batch 64) on scikit-learn's
8x8 digits, classes 3 vs 5 (half for training, half monitored), with SGD and Adam at two
learning rates each, and prints the final mean |f − model| of the first-order, trapezoid
and lazy models and the test accuracy of each. Run::

    python benchmarks/lens_cost.py            # full
    python benchmarks/lens_cost.py --fast     # small, for CI smoke runs
    python benchmarks/lens_cost.py --threads 1 --clock cpu   # on a busy, shared machine

On a machine shared with other jobs, wall-clock ratios swing with the load; process CPU
time with one thread measures the work itself.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sktelescope import TelescopingMLPClassifier
from sktelescope._core.losses import SquaredError
from sktelescope._core.network import (
    build_mlp,
    flatten_parameters,
    forward_flat,
    linearised_increment,
)
from sktelescope._core.training import TrainConfig, Trainer
from sktelescope.lens import Observer, SmootherMonitor, TelescopingMonitor, telescoping_trace

MONITORS = {
    "plain": None,
    "exact": dict(linear=False, trapezoid=False, lazy=False),
    "first-order": dict(linear=True, trapezoid=False, lazy=False),
    "first+trapezoid": dict(linear=True, trapezoid=True, lazy=False),
    "all (first, trapezoid, lazy)": dict(linear=True, trapezoid=True, lazy=True),
}
CLOCK = [time.perf_counter]
REFERENCE = "reference floor: forward + torch.func.jvp"
MONITORS[REFERENCE] = {}


class NaiveFirstOrder(Observer):
    """Reference floor: a plain forward pass plus one ``torch.func.jvp`` per step."""

    wants_previous_params = True

    def __init__(self, X_eval):
        self.X_eval = X_eval

    def on_step(self, step):
        new = flatten_parameters(step.module)
        forward_flat(step.module, new, self.X_eval).detach()
        linearised_increment(step.module, step.params_before, new - step.params_before, self.X_eval)


def seconds_per_step(
    make_observer, X, Y, hidden, batch, epochs, optimizer="adam", momentum=0.9
) -> float:
    """Wall time per optimizer step of ``epochs`` epochs with the observer attached."""
    gen = torch.Generator().manual_seed(0)
    net = build_mlp(X.shape[1], hidden, 1, generator=gen)
    observers = [] if make_observer is None else [make_observer()]
    cfg = TrainConfig(optimizer=optimizer, learning_rate=1e-3, batch_size=batch,
                      max_iter=epochs, momentum=momentum)  # fmt: skip
    trainer = Trainer(net, SquaredError(), cfg, gen, observers)
    start = CLOCK[0]()
    result = trainer.fit(X, Y, torch.ones(len(X)))
    return (CLOCK[0]() - start) / result.n_steps


def monitor_costs(n, n_eval, epochs, repeats) -> dict[str, float]:
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(n, 20, generator=gen)
    Y = torch.sin(X[:, :1]) + X[:, 1:2] * X[:, 2:3]
    X_eval = torch.randn(n_eval, 20, generator=gen)
    times: dict[str, list[float]] = {k: [] for k in MONITORS}
    for _ in range(repeats + 1):  # the first round is a warm-up
        for name, opts in MONITORS.items():
            make = None if opts is None else (lambda o=opts: TelescopingMonitor(X_eval, **o))
            if name == REFERENCE:
                make = lambda: NaiveFirstOrder(X_eval)  # noqa: E731
            times[name].append(seconds_per_step(make, X, Y, (256, 256), 256, epochs))
    plain = statistics.median(times["plain"][1:])
    return {k: statistics.median(v[1:]) / plain for k, v in times.items()} | {"_plain_ms": plain}


def smoother_costs(n, n_eval, hidden, epochs) -> dict[str, float]:
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(n, 20, generator=gen)
    Y = torch.sin(X[:, :1])
    X_eval = torch.randn(n_eval, 20, generator=gen)
    out = {}
    runs = {"sgd (kernel recursion)": ("sgd", 0.0), "sgd momentum 0.9 (channels)": ("sgd", 0.9),
            "adam (channels)": ("adam", 0.9)}  # fmt: skip
    for name, (opt, mu) in runs.items():
        plain = seconds_per_step(None, X, Y, hidden, 50, epochs, opt, mu)
        watched = seconds_per_step(
            lambda: SmootherMonitor(X, X_eval), X, Y, hidden, 50, epochs, opt, mu
        )
        out[name] = watched / plain
    return out


def smoother_refusal(n: int) -> str:
    X = torch.randn(n, 20)
    net = build_mlp(20, (256, 256), 1)
    trainer = Trainer(net, SquaredError(), TrainConfig(), torch.Generator())
    trainer.train_data = (X, torch.zeros(n, 1), torch.ones(n))  # as fit sets them
    try:
        SmootherMonitor(X).on_train_begin(trainer)
    except ValueError as exc:
        return str(exc)
    return "(not refused)"


def digits_errors(epochs: int, hidden=(200, 200)) -> list[dict]:
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, [3, 5])
    X_tr, X_te, y_tr, y_te = train_test_split(X[keep], y[keep], test_size=0.5, random_state=0)
    rows = []
    for opt, lrs in (("sgd", (0.01, 0.05)), ("adam", (1e-4, 1e-3))):
        for lr in lrs:
            est = TelescopingMLPClassifier(hidden, preset="paper", loss="squared_error",
                                           optimizer=opt, learning_rate=lr, momentum=0.0,
                                           batch_size=64,
                                           max_iter=epochs, n_iter_no_change=None,
                                           early_stopping=False, random_state=0)  # fmt: skip
            trace = telescoping_trace(est, X_tr, y_tr, X_te, every=10)
            acc = {k: v[-1] for k, v in trace.accuracy(y_te).items()}
            rows.append(dict(optimizer=opt, lr=lr, steps=int(trace.steps[-1]),
                             mean_abs_f=float(np.abs(trace.exact[-1]).mean()),
                             **{f"err_{k}": v for k, v in trace.final_errors().items()},
                             **{f"acc_{k}": v for k, v in acc.items()}))  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small sizes, for CI")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    help_clock = "cpu: process CPU time, steadier on a busy machine with --threads 1"
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help=help_clock)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    warnings.simplefilter("ignore")
    fast = args.fast
    costs = monitor_costs(2_000 if fast else 10_000, 200 if fast else 2_000, 1,
                          1 if fast else args.repeats)  # fmt: skip
    print(f"## Monitor cost per step (plain step: {1000 * costs.pop('_plain_ms'):.2f} ms)\n")
    print_table([{"monitor": k, "ratio_to_plain_step": v} for k, v in costs.items()])
    ratios = smoother_costs(200 if fast else 500, 100 if fast else 500, (32,), 2)
    print("\n## Smoother monitor (20-32-1, n=500, 500 eval, batch 50)\n")
    print_table([{"optimizer": k, "ratio_to_plain_step": v} for k, v in ratios.items()])
    print("\nBig run: " + smoother_refusal(10_000))
    print("\n## Digits 3 vs 5: final approximation error and accuracy\n")
    print_table(digits_errors(20 if fast else 300))


if __name__ == "__main__":
    main()
