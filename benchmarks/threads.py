"""Fit time idle and beside busy processes, for each thread policy, as ratios.

torch's intra-op threads spin while they wait for each other, so a fit that uses every
core collapses when other processes want them too (on a shared server, inside
``GridSearchCV(n_jobs=...)``). This script fits the same network (4,000 x 20 rows, two
hidden layers of 256, 20 epochs, no early stopping) with ``n_jobs=None`` (the default
policy), ``n_jobs=1`` and ``n_jobs=-1`` (every core: torch's own default), first on an idle
machine, then with ``--busy`` processes spinning beside it, and prints each time as a ratio
to the idle single-thread fit. Target: the default, loaded, within 2x of idle.

Run it on an otherwise quiet machine::

    python benchmarks/threads.py --repeats 3 --busy 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
import warnings

import numpy as np


def _spin(stop) -> None:  # pragma: no cover - runs in a child process
    x = 0
    while not stop.is_set():
        for _ in range(10_000):
            x += 1


def _fit_seconds(n_jobs, repeats: int) -> float:
    from sktelescope import TelescopingMLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 20))
    y = X[:, 0] - 2 * X[:, 1] ** 2 + rng.normal(size=4000)
    times = []
    for _ in range(repeats):
        est = TelescopingMLPRegressor(
            preset="paper",
            max_iter=20,
            early_stopping=False,
            n_iter_no_change=None,
            n_jobs=n_jobs,
            random_state=0,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measure(policies: dict, repeats: int, n_busy: int) -> dict:
    stop = mp.Event()
    workers = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(n_busy)]
    for w in workers:
        w.start()
    try:
        time.sleep(0.5 if n_busy else 0.0)
        return {name: _fit_seconds(n_jobs, repeats) for name, n_jobs in policies.items()}
    finally:
        stop.set()
        for w in workers:
            w.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the fit")
    args = parser.parse_args()
    policies = {"default (n_jobs=None)": None, "n_jobs=1": 1, "n_jobs=-1 (all cores)": -1}
    idle = _measure(policies, args.repeats, 0)
    loaded = _measure(policies, args.repeats, args.busy)
    base = idle["n_jobs=1"]
    print(f"{os.cpu_count()} cores; {args.busy} busy processes; median of {args.repeats} fits")
    print(f"idle single-thread fit: {base:.2f} s\n")
    print("| policy | idle s | loaded s | idle / idle 1-thread | loaded / idle 1-thread |")
    print("|---|---|---|---|---|")
    for name in policies:
        print(f"| {name} | {idle[name]:.2f} | {loaded[name]:.2f} | {idle[name] / base:.2f}x "
              f"| {loaded[name] / base:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
