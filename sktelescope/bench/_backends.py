"""Where the benchmark's jobs run: thread limits, the joblib backends (loky, Dask) and Ray.

loky and Dask run through joblib (``return_as="generator_unordered"``). Ray's joblib backend
(``ray.util.joblib``) returns nothing before every job has finished (it supports no generator
``return_as``), so under Ray the jobs are Ray tasks collected with ``ray.wait`` as they finish.

Thread budget: every job gets its share of the cores this process may use
(:func:`~sktelescope._cores.available_cores`: the affinity mask, capped by a cgroup quota),
``cores // jobs at once`` and at least 1, for every library at once: torch
(``torch.set_num_threads``), the OpenMP and BLAS pools (``threadpoolctl``, which is how
HistGradientBoosting is limited) and the boosters' own thread parameter (``n_jobs``). One job
alone gets every core, never the libraries' unlimited defaults, and two jobs at once on two
cores get one thread each: an OpenMP booster that starts one thread per core beside other
busy processes waits on its slowest thread at every barrier (HistGradientBoosting on 266
rows of a 2-core machine that other jobs were using: 2.8 s with ``OMP_NUM_THREADS=1``, 72 s
without; issue 20). Jobs on a remote Dask or Ray cluster get one thread each (Ray schedules
them one CPU each; a Dask worker runs one job per worker thread).

This module knows nothing about what a job is: it runs a function over a list of inputs.
"""

from __future__ import annotations

import contextlib
import importlib
import numbers
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sktelescope._cores import available_cores
from sktelescope.exceptions import FitInterruptedWarning

__all__ = [
    "BACKENDS",
    "backend_context",
    "job_environment",
    "parallel_jobs",
    "parallel_results",
    "thread_limit",
    "threads_per_job",
]

BACKENDS = ("loky", "dask", "ray")

#: Modules whose thread pools (scipy's OpenBLAS, scikit-learn's OpenMP runtime) are loaded
#: before the limits are set: threadpoolctl limits only the pools already loaded, and a fresh
#: worker may load them only when the job imports its estimator.
_POOL_MODULES = ("scipy.linalg", "sklearn.utils._openmp_helpers")


def parallel_jobs(n_jobs: int, cores: int | None = None) -> int:
    """How many jobs run at once on this machine for joblib's ``n_jobs``: ``n_jobs`` itself
    when positive, ``cores + 1 + n_jobs`` when negative (-1: every core), at least 1.

    Examples
    --------
    >>> parallel_jobs(3, cores=8), parallel_jobs(-1, cores=8), parallel_jobs(-2, cores=8)
    (3, 8, 7)
    """
    cores = available_cores() if cores is None else cores
    return max(n_jobs if n_jobs > 0 else cores + 1 + n_jobs, 1)


def threads_per_job(
    backend: str, n_jobs: int, address: str | None = None, cores: int | None = None
) -> int:
    """Threads each job may use: its share of this machine's ``cores`` (default: the cores
    this process may use), ``cores // jobs at once`` and at least 1; one on a remote cluster
    (``address`` given to ``dask`` or ``ray``), where each job is scheduled one CPU.

    Examples
    --------
    >>> threads_per_job("loky", 1, cores=8), threads_per_job("loky", 3, cores=8)
    (8, 2)
    >>> threads_per_job("dask", -1, cores=8), threads_per_job("ray", 1, "ray://head:10001")
    (1, 1)
    """
    if address and backend != "loky":
        return 1
    cores = available_cores() if cores is None else cores
    return max(cores // parallel_jobs(n_jobs, cores), 1)


@contextlib.contextmanager
def thread_limit(n_threads: int) -> Iterator[None]:
    """Limit torch's threads and every BLAS/OpenMP pool to ``n_threads`` (at least 1).

    scipy's and scikit-learn's pools are loaded first, so that an estimator imported inside
    the block (HistGradientBoosting reads OpenMP's thread count) is limited too.

    Examples
    --------
    >>> from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    >>> with thread_limit(1):
    ...     _openmp_effective_n_threads()
    1
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ValueError(f"n_threads must be an integer of at least 1; got {n_threads!r}.")
    from threadpoolctl import threadpool_limits

    for module in _POOL_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    torch_threads = None
    with contextlib.suppress(ImportError):
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(int(n_threads))
    try:
        with threadpool_limits(limits=int(n_threads)):
            yield
    finally:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)


#: How scikit-learn's MLP says it caught Ctrl-C and kept the epochs it had finished.
SKLEARN_INTERRUPTED = "Training interrupted by user"


@contextlib.contextmanager
def job_environment(n_threads: int) -> Iterator[None]:
    """Where one fit runs: ``n_threads`` threads, library warnings silenced, and a fit that was
    interrupted (Ctrl-C) raised as :class:`KeyboardInterrupt` instead of returning half trained.

    Estimators that catch Ctrl-C themselves and keep the steps they finished say so with a
    warning: :class:`~sktelescope.exceptions.FitInterruptedWarning` (ours and the skorch
    peer) or scikit-learn's ``"Training interrupted by user."``; PyTorch Lightning (RealMLP)
    calls ``sys.exit`` instead. Here each becomes an interruption, so no caller can mistake
    such a fit for a finished one.

    Examples
    --------
    >>> import warnings
    >>> from sktelescope.exceptions import FitInterruptedWarning
    >>> try:
    ...     with job_environment(1):
    ...         warnings.warn("stopped at step 3", FitInterruptedWarning)
    ... except KeyboardInterrupt as exc:
    ...     print(exc)
    stopped at step 3
    """
    with thread_limit(n_threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", FitInterruptedWarning)
        warnings.filterwarnings("error", message=SKLEARN_INTERRUPTED, category=UserWarning)
        try:
            yield
        except UserWarning as exc:  # only the two above are raised; the rest are ignored
            raise KeyboardInterrupt(str(exc)) from None
        except SystemExit as exc:
            raise KeyboardInterrupt(f"the fit called sys.exit({exc.code!r})") from None


@contextlib.contextmanager
def backend_context(backend: str, n_jobs: int, address: str | None = None) -> Iterator[int]:
    """Activate a joblib backend; yields the ``n_jobs`` to give ``Parallel``.

    ``loky`` runs on this machine; ``dask`` connects to the scheduler at ``address`` (or starts
    a local cluster with ``n_jobs`` single-threaded workers); ``ray`` connects to ``address``
    (or starts Ray locally).

    Examples
    --------
    >>> with backend_context("loky", 2) as n_jobs:
    ...     n_jobs
    2
    """
    from joblib import parallel_config

    if backend == "loky":
        n_jobs = parallel_jobs(n_jobs)  # the cores this process may use, as threads_per_job
        with parallel_config("loky", n_jobs=n_jobs):
            yield n_jobs
    elif backend == "dask":
        with _dask_client(n_jobs, address), parallel_config("dask", n_jobs=-1):
            yield -1
    elif backend == "ray":
        with _ray_session(address, n_jobs), parallel_config("ray", n_jobs=n_jobs):
            yield n_jobs
    else:
        raise ValueError(f"Unknown backend {backend!r}; expected one of {list(BACKENDS)}.")


@contextlib.contextmanager
def parallel_results(
    func: Callable[[Any], Any],
    inputs: Sequence,
    backend: str,
    n_jobs: int,
    address: str | None = None,
) -> Iterator[Iterator]:
    """Run ``func`` on every input on the backend; yields an iterator of the results in the
    order they finish.

    Examples
    --------
    >>> with parallel_results(abs, [-1, -2], "loky", 1) as results:
    ...     sorted(results)
    [1, 2]
    """
    from joblib import Parallel, delayed

    with backend_context(backend, n_jobs, address) as parallel_jobs:
        if backend == "ray":
            yield _ray_results(func, inputs, n_jobs)
        else:
            parallel = Parallel(n_jobs=parallel_jobs, return_as="generator_unordered")
            yield parallel(delayed(func)(item) for item in inputs)


@contextlib.contextmanager
def _dask_client(n_jobs: int, address: str | None):
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError(
            "--backend dask needs dask.distributed: `pip install 'dask[distributed]'`."
        ) from exc
    if address:
        with Client(address) as client:
            yield client
        return
    n_workers = parallel_jobs(n_jobs)
    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextlib.contextmanager
def _ray_session(address: str | None, n_jobs: int = -1):
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError as exc:
        raise ImportError("--backend ray needs Ray: `pip install 'ray[default]'`.") from exc
    register_ray()  # joblib code inside jobs may use parallel_config("ray") too
    started = not ray.is_initialized()
    if started:
        local = {} if address else {"num_cpus": parallel_jobs(n_jobs)}
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            **local,
        )
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _ray_results(func: Callable, inputs: Sequence, n_jobs: int) -> Iterator:
    """Run ``func`` as Ray tasks (one CPU each), yielding results as they finish.

    At most ``n_jobs`` tasks are in flight (all of them when ``n_jobs < 1``: Ray schedules
    them on the cluster's CPUs).
    """
    import ray

    remote = ray.remote(num_cpus=1, max_retries=0)(func)
    limit = n_jobs if n_jobs > 0 else len(inputs)
    queue, pending = list(reversed(inputs)), []
    while queue or pending:
        while queue and len(pending) < limit:
            pending.append(remote.remote(queue.pop()))
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
