"""Memory estimates against measured peaks: each estimate within a factor of 1.5.

The lens refuses work whose estimate exceeds ``max_bytes``, so an estimate must count
every copy a function makes. Found: ``telescoping_trace`` estimated 0.6 GB under a 1 GiB
budget while its peak grew 2.4 GB (the float32 records were copied at the end of the run
and twice more into the float64 trace).

How it is measured: ``tracemalloc`` does not see torch's allocator and torch keeps no
CPU allocator statistics, so the cases run in a fresh interpreter that resets the
kernel's peak resident-set counter (``/proc/self/clear_refs``) before each call and reads
``VmHWM`` after it. ``MALLOC_MMAP_THRESHOLD_`` makes glibc give every block above 4 MiB
its own mapping, returned on free, so that the resident set follows the live arrays
rather than the heap's history. Each case is sized so that the state the estimate counts
is 100 MiB or more (what the interpreter, torch and the data add is a few MiB).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak counters"
)

MiB = 2**20

PRELUDE = """
import gc, json, re, warnings
import numpy as np
import torch
warnings.simplefilter("ignore")
torch.set_num_threads(1)
from sktelescope import TelescopingMLPRegressor
from sktelescope import lens

def _status(key):
    text = open("/proc/self/status").read()
    return int(re.search(key + r":\\s+(\\d+)", text).group(1)) * 1024

def measure(case, call):
    call(small=True)  # load every code path first
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set to the current one
    before = _status("VmRSS")
    estimate = call(small=False)
    peak = {"estimate": int(estimate), "measured": _status("VmHWM") - before}
    print(json.dumps({case: peak}), flush=True)

rng = np.random.default_rng(0)
"""

CASES = {
    "telescoping_trace": """
        X, X_eval = rng.normal(size=(200, 5)), rng.normal(size=(20_000, 5))
        est = TelescopingMLPRegressor((16,), batch_size=10, max_iter=20, n_iter_no_change=None,
                                      early_stopping=False, random_state=0)
        def call(small):
            trace = lens.telescoping_trace(est, X, X[:, 0], X_eval[:50] if small else X_eval)
            return trace.memory_bytes
    """,
    "TelescopingMonitor": """
        X, X_eval = rng.normal(size=(200, 5)), rng.normal(size=(20_000, 5))
        est = TelescopingMLPRegressor((16,), batch_size=10, max_iter=20, n_iter_no_change=None,
                                      early_stopping=False, random_state=0)
        def call(small):
            monitor = lens.TelescopingMonitor(X_eval[:50] if small else X_eval)
            est.fit(X, X[:, 0], monitors=[monitor])
            return monitor.memory_bytes_
    """,
    "SmootherMonitor (kernel recursion)": """
        def call(small):
            n = 200 if small else 4000
            X, X_eval = rng.normal(size=(n, 5)), rng.normal(size=(n // 4, 5))
            est = TelescopingMLPRegressor((16,), optimizer="sgd", learning_rate=0.01,
                                          batch_size=n // 4, max_iter=1, n_iter_no_change=None,
                                          early_stopping=False, random_state=0)
            monitor = lens.SmootherMonitor(X, X_eval, max_bytes=2**40)
            est.fit(X, X[:, 0], monitors=[monitor])
            return monitor.memory_bytes_
    """,
    "SmootherMonitor (channel replay)": """
        def call(small):
            n = 200 if small else 3000
            X = rng.normal(size=(n, 5))
            est = TelescopingMLPRegressor((200,), optimizer="adamw", weight_decay=0.1,
                                          learning_rate=0.01, batch_size=n // 2, max_iter=1,
                                          n_iter_no_change=None, early_stopping=False,
                                          random_state=0)
            monitor = lens.SmootherMonitor(X, max_bytes=2**40)
            est.fit(X, X[:, 0], monitors=[monitor])
            return monitor.memory_bytes_
    """,
    "tangent_kernel_nbytes": """
        X = rng.normal(size=(20_000, 20))
        est = TelescopingMLPRegressor((256, 256), max_iter=1, batch_size=None, max_stages=2,
                                      random_state=0)  # the kernel's columns: training rows
        stage = est.fit(X, X[:, 0]).stages_[0]
        def call(small):
            n_x, n_z = (20, 20) if small else (2000, 20_000)
            stage.kernel_row_norms(X[:n_x], X[:n_z], chunk_size=512, max_memory_bytes=2**40)
            return lens.tangent_kernel_nbytes(est.module_, n_x, n_z, False, 512)
    """,
    "tangent_kernel_nbytes (embeddings)": """
        X = rng.normal(size=(6000, 20))
        # the embedding on the plain network, as written (the default network's kernel:
        # the case above; here it once measured 0.66 of the estimate, in 0.85-0.87 reruns)
        est = TelescopingMLPRegressor((256, 256), numerical_embedding="ple", max_iter=1,
                                      batch_size=None, max_stages=2, random_state=0,
                                      preset="paper")
        stage = est.fit(X, X[:, 0]).stages_[0]  # the kernel's columns: training rows
        def call(small):
            n = 20 if small else 6000
            stage.kernel_row_norms(X[:n], X[:n], chunk_size=512, max_memory_bytes=2**40)
            return lens.tangent_kernel_nbytes(est.module_, n, n, False, 512)
    """,
    "tangent_kernel_nbytes (preconditioned)": """
        X = rng.normal(size=(2048, 20))
        est = TelescopingMLPRegressor((256,), max_iter=1, batch_size=None, max_stages=2,
                                      random_state=0)
        stage = est.fit(X, X[:, 0]).stages_[0]
        def call(small):
            n = 20 if small else 2048
            stage.kernel_row_norms(X[:n], X[:n], preconditioned=True, chunk_size=1024,
                                   max_memory_bytes=2**40)
            return lens.tangent_kernel_nbytes(est.module_, n, n, True, 1024)
    """,
}


@pytest.fixture(scope="module")
def peaks() -> dict:
    """Every case measured in one fresh interpreter (one import of torch for all)."""
    code = PRELUDE + "".join(
        textwrap.dedent(body) + f"measure({case!r}, call)\n" for case, body in CASES.items()
    )
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(4 * MiB), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {k: v for line in done.stdout.splitlines() for k, v in json.loads(line).items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_memory_estimate_is_within_a_factor_of_1_5_of_the_measured_peak(case, peaks):
    estimate, measured = peaks[case]["estimate"], peaks[case]["measured"]
    assert measured > 90 * MiB, f"too small to measure the state: {measured / MiB:.0f} MiB"
    ratio = measured / estimate
    assert 1 / 1.5 <= ratio <= 1.5, (
        f"{case}: estimated {estimate / MiB:.0f} MiB, measured {measured / MiB:.0f} MiB"
    )
