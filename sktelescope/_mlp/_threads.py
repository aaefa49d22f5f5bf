"""How many torch threads a fit uses, and a context that sets them and puts them back.

torch's intra-op threads spin while they wait. A small network fitted with two threads
beside two busy processes on a 2-core machine ran 34 times slower than idle, with one
thread 1.6 times (4,000 x 20 rows, 2 x 256 units): a second thread gains little for
tabular-sized networks and costs a lot under load, inside ``GridSearchCV(n_jobs=...)``
or on a shared server. So the default is one thread below a per-step amount of work
where more threads pay, and never more than the limits the caller set
(``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits``, ``torch.set_num_threads``,
the CPU affinity mask).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ["PARALLEL_WORK", "resolve_threads", "thread_ceiling", "torch_threads"]

#: Multiply-adds per optimizer step (batch size x parameters) from which the default uses
#: every available thread. Below it one thread (see ``benchmarks/threads.py``).
PARALLEL_WORK = 2**27


def _openmp_limit() -> int | None:
    """The smallest thread limit threadpoolctl reports for an OpenMP runtime, if any."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return None
    limits = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "openmp"]
    return min(limits) if limits else None


def thread_ceiling() -> int:
    """Most threads this process may use: the minimum of every limit in force.

    Examples
    --------
    >>> thread_ceiling() >= 1
    True
    """
    limits = [torch.get_num_threads()]
    if hasattr(os, "sched_getaffinity"):
        limits.append(len(os.sched_getaffinity(0)))
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        limits.append(int(env))
    openmp = _openmp_limit()
    if openmp:
        limits.append(openmp)
    return max(min(limits), 1)


def resolve_threads(n_jobs: int | None, work_per_step: int) -> int:
    """Threads for a fit: ``n_jobs`` (scikit-learn convention) capped by the ceiling.

    ``None``: one thread below :data:`PARALLEL_WORK` multiply-adds per step, else all
    available; ``-1``: all available; ``-k``: all but ``k - 1``; ``k >= 1``: ``k``.

    Examples
    --------
    >>> resolve_threads(None, work_per_step=1000)
    1
    >>> resolve_threads(1, work_per_step=10**12)
    1
    """
    ceiling = thread_ceiling()
    if n_jobs is None:
        return 1 if work_per_step < PARALLEL_WORK else ceiling
    if n_jobs < 0:
        return max(ceiling + 1 + n_jobs, 1)
    return min(int(n_jobs), ceiling)


@contextlib.contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n_threads)``, restored afterwards.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    before = torch.get_num_threads()
    if n_threads == before:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
