"""Where the benchmark's jobs run: thread limits, the joblib backends (loky, Dask) and Ray.

loky runs through joblib (``return_as="generator_unordered"``). On Dask and Ray the jobs are
futures and tasks collected as they finish (``as_completed``, ``ray.wait``): Ray's joblib backend
returns nothing before every job has finished, and neither joblib backend can tell one lost job
from a lost run. A job whose worker process dies runs again, a bounded number of times
(:data:`WORKER_RETRIES`); after that its result is whatever the caller makes of the loss (the
benchmark: a failed row), and the other jobs go on. A cluster that does not start is one
:class:`ClusterError`. joblib's ``dask`` or ``ray`` backend is still active inside the run, for
joblib code that the jobs call.

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
    "WORKER_RETRIES",
    "ClusterError",
    "backend_context",
    "job_environment",
    "parallel_jobs",
    "parallel_results",
    "thread_limit",
    "threads_per_job",
]

BACKENDS = ("loky", "dask", "ray")
#: How many times a job runs again on Dask or Ray when its worker process dies.
WORKER_RETRIES = 2


class ClusterError(OSError):
    """The Dask or Ray cluster cannot be started or reached; the message says what to do.

    Examples
    --------
    >>> isinstance(ClusterError("Cannot start Ray locally."), OSError)
    True
    """


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
    on_lost: Callable[[Any, BaseException], Any] | None = None,
) -> Iterator[Iterator]:
    """Run ``func`` on every input on the backend; yields an iterator of the results in the
    order they finish.

    On Dask and Ray an input whose worker process dies (killed, out of memory) runs again on
    another worker, :data:`WORKER_RETRIES` times at most (a Dask scheduler given by
    ``address`` counts by its own ``distributed.scheduler.allowed-failures``); when it died on
    every try, its result is ``on_lost(input, exception)``, or, without ``on_lost``, the
    exception is raised. The other inputs are not affected.

    Raises
    ------
    ClusterError
        When the Dask or Ray cluster cannot be started or reached.

    Examples
    --------
    >>> with parallel_results(abs, [-1, -2], "loky", 1) as results:
    ...     sorted(results)
    [1, 2]
    """
    from joblib import Parallel, delayed

    with backend_context(backend, n_jobs, address) as parallel_jobs:
        if backend == "ray":
            yield _ray_results(func, inputs, n_jobs, on_lost)
        elif backend == "dask":
            yield _dask_results(func, inputs, on_lost)
        else:
            parallel = Parallel(n_jobs=parallel_jobs, return_as="generator_unordered")
            yield parallel(delayed(func)(item) for item in inputs)


def _start_failed(what: str, exc: BaseException, advice: str) -> ClusterError:
    message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    return ClusterError(f"{what} ({message}). {advice}")


@contextlib.contextmanager
def _dask_client(n_jobs: int, address: str | None):
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError(
            "--backend dask needs dask.distributed: `pip install 'dask[distributed]'`."
        ) from exc
    with contextlib.ExitStack() as stack:
        try:
            if address:
                client = stack.enter_context(Client(address))
            else:
                n_workers = parallel_jobs(n_jobs)
                with dask.config.set({"distributed.scheduler.allowed-failures": WORKER_RETRIES}):
                    cluster = stack.enter_context(
                        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True)
                    )
                client = stack.enter_context(Client(cluster))
        except Exception as exc:  # noqa: BLE001 - any start failure is one line, not a traceback
            stack.close()
            if address:
                raise _start_failed(
                    f"Cannot reach the Dask scheduler --scheduler {address!r}", exc,
                    "Check the address and that the scheduler runs, or leave --scheduler out "
                    "to start a local cluster.",
                ) from None  # fmt: skip
            raise _start_failed(
                f"The local Dask cluster of {n_workers} workers did not start", exc,
                "A worker process died or could not start (killed, out of memory, a broken "
                "worker setup): rerun, with a smaller --n-jobs, or use --backend loky.",
            ) from None  # fmt: skip
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
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **local)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - any start failure is one line, not a traceback
            ray.shutdown()
            where = f"the Ray cluster --ray-address {address!r}" if address else "Ray locally"
            raise _start_failed(
                f"Cannot start or reach {where}", exc,
                "Check the address (or leave --ray-address out), Ray's temporary folder "
                "(RAY_TMPDIR) and free memory, or use --backend loky.",
            ) from None  # fmt: skip
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _ray_results(
    func: Callable, inputs: Sequence, n_jobs: int, on_lost: Callable | None = None
) -> Iterator:
    """Run ``func`` as Ray tasks (one CPU each), yielding results as they finish.

    At most ``n_jobs`` tasks are in flight (all of them when ``n_jobs < 1``: Ray schedules
    them on the cluster's CPUs). A task whose worker dies runs again, :data:`WORKER_RETRIES`
    times at most; then its result is ``on_lost(input, exception)`` (see
    :func:`parallel_results`).
    """
    import ray
    from ray import exceptions

    lost = (exceptions.WorkerCrashedError, exceptions.NodeDiedError,
            exceptions.OutOfMemoryError, exceptions.ObjectLostError)  # fmt: skip
    remote = ray.remote(num_cpus=1, max_retries=WORKER_RETRIES)(func)
    limit = n_jobs if n_jobs > 0 else len(inputs)
    queue, pending = list(reversed(inputs)), {}
    while queue or pending:
        while queue and len(pending) < limit:
            item = queue.pop()
            pending[remote.remote(item)] = item
        (done,), _ = ray.wait(list(pending), num_returns=1)
        item = pending.pop(done)
        try:
            result = ray.get(done)
        except lost as exc:
            if on_lost is None:
                raise
            result = on_lost(item, exc)
        yield result


def _dask_results(func: Callable, inputs: Sequence, on_lost: Callable | None = None) -> Iterator:
    """Run ``func`` as Dask futures on the current client, yielding results as they finish.

    As many inputs are in flight as the cluster has threads (counted again at each
    submission, for clusters that grow): none waits on a worker behind another, where the
    scheduler would count that worker's death against it too. A finished future is released
    at once, so that a worker dying later does not run it again. A future whose workers all
    died (``KilledWorker``) gives ``on_lost(input, exception)`` (see :func:`parallel_results`).
    """
    from distributed import KilledWorker, as_completed, default_client

    client = default_client()
    queue, items, running = list(reversed(inputs)), {}, as_completed()

    def fill() -> None:
        while queue and len(items) < max(1, sum(client.nthreads().values())):
            item = queue.pop()
            future = client.submit(func, item, pure=False)
            items[future.key] = item
            running.add(future)

    fill()
    for future in running:
        item = items.pop(future.key)
        try:
            result = future.result()
        except KilledWorker as exc:
            if on_lost is None:
                raise
            result = on_lost(item, exc)
        finally:
            future.release()
            del future
        fill()
        yield result
