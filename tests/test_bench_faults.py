"""A lost worker loses one fit, not the run: on real local Ray and Dask clusters (started by the
project's code) a worker killed by its pid runs its job again, a job whose worker dies on every
try becomes a counted failure, and a cluster that does not start is one line and exit status 2.

Every kill goes to a process that this test process started (a descendant), by its pid."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from sktelescope.bench import run_benchmark
from sktelescope.bench._backends import WORKER_RETRIES, parallel_results
from sktelescope.bench._models import available_models
from sktelescope.cli import main

pytestmark = pytest.mark.slow
BACKENDS = [
    pytest.param("ray", marks=pytest.mark.skipif(
        not __import__("importlib").util.find_spec("ray"), reason="Ray is not installed")),
    pytest.param("dask", marks=pytest.mark.skipif(
        not __import__("importlib").util.find_spec("distributed"),
        reason="dask.distributed is not installed")),
]  # fmt: skip


def _descendants() -> set[int]:
    import psutil

    return {child.pid for child in psutil.Process().children(recursive=True)}


class Killer(threading.Thread):
    """Kill (SIGKILL, by pid) each new process that ``find()`` names, ``times`` at most; only
    descendants of this test process are ever killed."""

    def __init__(self, find, times: int):
        super().__init__(daemon=True)
        self.find, self.times, self.killed = find, times, []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and len(self.killed) < self.times:
            for pid in self.find():
                if pid not in self.killed and pid in _descendants():
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
                    break
            time.sleep(0.05)

    def __enter__(self) -> "Killer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()


def _marked_pids(folder: Path, item: int):
    """The pids that ran input ``item`` (each run leaves ``<item>.<pid>`` in ``folder``)."""
    return lambda: [int(p.suffix[1:]) for p in sorted(folder.glob(f"{item}.*"))]


def _job_that_hangs(folder: Path, hang_on: int, tries_to_hang: int):
    """A job that marks its pid; input ``hang_on`` hangs on its first ``tries_to_hang`` tries
    (until it is killed). Defined in a function, so the workers get it by value."""

    def job(item: int) -> int:
        (folder / f"{item}.{os.getpid()}").touch()
        if item == hang_on and len(list(folder.glob(f"{item}.*"))) <= tries_to_hang:
            time.sleep(60)
        return item

    return job


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_worker_runs_its_job_again(backend, tmp_path):
    job = _job_that_hangs(tmp_path, hang_on=0, tries_to_hang=1)
    with Killer(_marked_pids(tmp_path, 0), times=1) as killer:
        with parallel_results(job, list(range(4)), backend, 2, on_lost=None) as results:
            got = sorted(results)
    assert got == [0, 1, 2, 3] and len(killer.killed) == 1
    assert len(_marked_pids(tmp_path, 0)()) == 2  # killed once, then finished on its retry


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_job_whose_worker_dies_on_every_try_is_lost_alone(backend, tmp_path):
    job = _job_that_hangs(tmp_path, hang_on=0, tries_to_hang=99)
    with Killer(_marked_pids(tmp_path, 0), times=WORKER_RETRIES + 1) as killer:
        with parallel_results(
            job,
            list(range(4)),
            backend,
            2,
            on_lost=lambda item, exc: ("lost", item, type(exc).__name__),
        ) as got:
            results = list(got)  # fmt: skip
    lost = [r for r in results if isinstance(r, tuple)]
    assert sorted(r for r in results if not isinstance(r, tuple)) == [1, 2, 3]
    assert lost == [("lost", 0, "WorkerCrashedError" if backend == "ray" else "KilledWorker")]
    assert len(killer.killed) == WORKER_RETRIES + 1


def _busy_ray_workers() -> list[int]:
    import psutil

    pids = []
    for pid in _descendants():
        try:
            if psutil.Process(pid).cmdline()[:1] == ["ray::execute_job"]:
                pids.append(pid)
        except (psutil.Error, IndexError):
            continue
    return pids


def _busy_dask_workers() -> list[int]:
    """The pids of the workers of the run's Dask cluster that are running a job."""
    from distributed import default_client

    try:
        client = default_client()
        busy = [addr for addr, keys in client.processing().items() if keys]
        return list(client.run(os.getpid, workers=busy).values()) if busy else []
    except Exception:  # noqa: BLE001 - no client yet, or a worker that just went away
        return []


@pytest.mark.skipif("telescoping_mlp" not in available_models(), reason="needs torch")
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bench_run_with_a_worker_killed_mid_run_completes_with_a_summary(backend, tmp_path):
    find = _busy_ray_workers if backend == "ray" else _busy_dask_workers
    with Killer(find, times=1) as killer:
        res = run_benchmark(["sklearn:diabetes"], ["hgb", "telescoping_mlp"], budget=1,
                            n_splits=2, quick=True, max_train=100, progress=False, lens=False,
                            out=tmp_path, backend=backend, n_jobs=2)  # fmt: skip
    assert len(killer.killed) == 1
    assert res.n_run == res.n_jobs_total == 4
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 4  # one row per job: the killed one ran again (or is a failure)
    assert sum(",ok," in line for line in lines) + res.n_failed == 4
    assert "| sklearn:diabetes | r2 |" in (tmp_path / "summary.md").read_text()


def test_a_dask_cluster_whose_worker_dies_while_starting_is_one_line_and_exit_2(tmp_path, capsys):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    preload = tmp_path / "die.py"
    preload.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    argv = ["bench", "--datasets", "sklearn:diabetes", "--models", "hgb", "--budget", "1",
            "--splits", "1", "--quick", "--no-lens", "--no-progress", "--backend", "dask",
            "--n-jobs", "2", "--out", str(tmp_path / "out")]  # fmt: skip
    with dask.config.set({"distributed.worker.preload": [str(preload)]}):
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "sktelescope bench: error: The local Dask cluster of 2 workers did not start "
        "(RuntimeError: Nanny failed to start.). A worker process died or could not start "
        "(killed, out of memory, a broken worker setup): rerun, with a smaller --n-jobs, or "
        "use --backend loky."
    ]


def test_ray_that_cannot_start_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "a_file" / "ray"))  # cannot be a folder
    argv = ["bench", "--datasets", "sklearn:diabetes", "--models", "hgb", "--budget", "1",
            "--splits", "1", "--quick", "--no-lens", "--no-progress", "--backend", "ray",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith(
        "sktelescope bench: error: Cannot start or reach Ray locally (NotADirectoryError:"
    )
