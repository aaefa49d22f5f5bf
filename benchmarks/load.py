"""The main job under load: ``sktelescope bench`` idle, then beside busy processes.

Runs the README's main job (``sktelescope bench`` with its defaults: the embedded datasets,
``--n-jobs`` = the cores this process may use, the lens step) twice, each time in a fresh
results folder so that nothing resumes: first as the machine is, then beside ``--busy``
processes that this script starts (each spins one core in pure Python) and stops when the
run ends. Prints both wall times, the load average around each run and the ratio
``loaded / idle``; the target is at most 2x. On a machine that others share, "idle" means
without this script's busy processes: the load averages printed say what else was running.

What to expect: on an idle 2-core machine the fits (one job per core, one thread each) get
half the CPU beside two spinning processes, 2x, and the phases where one process runs alone
(the last lens jobs, the report) 2/3 of a core, 1.5x. When other processes already saturate
the machine and this script runs under ``nice`` (as a shared machine asks), the job and the
busy processes share one fixed slice of the CPU: a phase with k of the job's processes
running then slows by about ``(k + busy) / k``, 3x for a phase of one process, and the ratio ends
above 2x although no thread waits on another.

Before issue 20 a job alone got the libraries' unlimited thread defaults, and an OpenMP
booster with one thread per core beside two busy processes waited on its slowest thread at
every barrier: the main job took about 36 minutes instead of 4 on 2 cores. Now every job gets
``cores // n_jobs`` threads for every library (``sktelescope.bench._backends``).

Run::

    python benchmarks/load.py                    # the main job, idle then beside 2 busy
    python benchmarks/load.py --busy 4
    python benchmarks/load.py --fast             # a smoke run: --quick, 1 split, budget 1

Each run's output goes to ``OUT/<phase>/bench.log`` (default ``OUT``: a new temporary
folder); the timings to ``OUT/load.json`` as each phase finishes. Then it prints the ratio of
the summed fit seconds (is the excess in the fits or around them?) and a floor: the same kind
of fits (scikit-learn's GradientBoosting, a default TelescopingMLP; one thread) in one warm
process per core outside the bench, idle and beside the same busy processes (``--no-floor``
skips it): what the machine itself gives such fits.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sktelescope._cores import available_cores

#: What each busy process runs: one core's worth of pure-Python spinning.
SPIN = "while True: pass"


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, or "n/a" where the OS has none."""
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "n/a"


@contextlib.contextmanager
def busy_processes(n: int):
    """``n`` processes spinning one core each, stopped (and reaped) when the block ends."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
    try:
        time.sleep(1.0)  # let them reach the scheduler before the timed run starts
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_main_job(out: Path, extra: list[str]) -> dict:
    """Run ``sktelescope bench`` into the fresh folder ``out``; its wall time and last lines."""
    out.mkdir(parents=True, exist_ok=False)
    command = [sys.executable, "-m", "sktelescope", "bench", "--out", str(out / "results")]
    command += ["--no-progress", *extra]
    before = load_average()
    start = time.perf_counter()
    with open(out / "bench.log", "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    lines = (out / "bench.log").read_text().splitlines()
    counts = [line for line in lines if " run, " in line]
    return {"seconds": round(seconds, 1), "exit_status": done.returncode,
            "load_before": before, "load_after": load_average(), "counts": counts,
            "command": " ".join(["sktelescope", *command[3:]])}  # fmt: skip


#: The floor's worker: warm up (imports, one fit), say so, wait for a line on stdin, then time
#: the same fits the main job makes (one thread each) and print their seconds.
FLOOR_WORKER = """
import sys, time, warnings
warnings.simplefilter("ignore")
import torch
from threadpoolctl import threadpool_limits
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sktelescope import TelescopingMLPRegressor
torch.set_num_threads(1)
threadpool_limits(1)
X, y = load_diabetes(return_X_y=True)
def fits():
    for seed in range(2):
        GradientBoostingRegressor(n_estimators=300, random_state=seed).fit(X, y)
        TelescopingMLPRegressor(random_state=seed, n_jobs=1).fit(X, y)
fits()
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
fits()
print(time.perf_counter() - start, flush=True)
"""


def fit_seconds(results: Path) -> float:
    """The summed fit and predict seconds of a bench results folder's ``results.csv``."""
    with open(results / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return sum(float(r["fit_seconds"] or 0) + float(r["predict_seconds"] or 0) for r in rows)


def floor_seconds(n_workers: int) -> float:
    """Mean seconds of the floor's fits in ``n_workers`` processes started together."""
    procs = [
        subprocess.Popen([sys.executable, "-c", FLOOR_WORKER], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(n_workers)
    ]  # fmt: skip
    for proc in procs:  # every worker warmed up and waiting before any starts
        proc.stdout.readline()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return sum(float(proc.communicate()[0]) for proc in procs) / n_workers


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--busy", type=int, default=2, help="busy processes in the second run")
    parser.add_argument("--out", type=Path, default=None, help="folder for both runs (new)")
    parser.add_argument(
        "--fast", action="store_true", help="smoke run: --quick --splits 1 --budget 1"
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the floor (the same fits outside the bench)"
    )
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="sktelescope-load-"))
    extra = ["--quick", "--splits", "1", "--budget", "1"] if args.fast else []
    print(f"{available_cores()} cores for this process; results in {out}", flush=True)
    phases = {}

    def record(name: str, result: dict) -> None:
        phases[name] = result
        (out / "load.json").write_text(json.dumps(phases, indent=1))
        print(f"{name:>8}: {minutes(result['seconds'])} (exit {result['exit_status']}; load "
              f"average {result['load_before']} before, {result['load_after']} after)",
              flush=True)  # fmt: skip
        for line in result["counts"]:
            print(f"          {line}")

    record("idle", run_main_job(out / "idle", extra))
    with busy_processes(args.busy) as pids:
        print(f"started {args.busy} busy processes: {pids}", flush=True)
        record(f"{args.busy} busy", run_main_job(out / "busy", extra))
    print(f"stopped the busy processes; load average {load_average()}")
    ratio = phases[f"{args.busy} busy"]["seconds"] / phases["idle"]["seconds"]
    verdict = "met" if ratio <= 2.0 else "NOT met"
    print(f"ratio {args.busy} busy / idle: {ratio:.2f}x (target <= 2x: {verdict})")
    fits = fit_seconds(out / "busy" / "results") / fit_seconds(out / "idle" / "results")
    print(f"summed fit seconds, {args.busy} busy / idle: {fits:.2f}x (the rest of the wall time: "
          "start-up, dispatch, lens, report)")  # fmt: skip
    if not args.no_floor:
        cores = available_cores()
        idle = floor_seconds(cores)
        with busy_processes(args.busy):
            busy = floor_seconds(cores)
        phases["floor"] = {"idle": round(idle, 2), "busy": round(busy, 2)}
        (out / "load.json").write_text(json.dumps(phases, indent=1))
        print(f"floor: the same kind of fits (GradientBoosting, TelescopingMLP; one thread) in "
              f"{cores} warm processes outside the bench: {idle:.1f} s idle, {busy:.1f} s beside "
              f"{args.busy} busy, {busy / idle:.2f}x")  # fmt: skip
    print(f"command: {phases['idle']['command']}")
    return phases


if __name__ == "__main__":
    main()
