"""The benchmark's thread budget: every job gets its share of the cores this process may use,
for every library, at any ``n_jobs`` and on every backend; never the libraries' defaults."""

from __future__ import annotations

import os

import pytest
from helpers import run_python

from sktelescope._cores import available_cores, cgroup_cpu_limit
from sktelescope.bench._backends import job_environment, parallel_jobs, threads_per_job
from sktelescope.bench._jobs import make_jobs
from sktelescope.bench._models import build_model
from sktelescope.bench._protocol import Protocol
from sktelescope.datasets import load_sklearn_dataset

AFFINITY = len(os.sched_getaffinity(0))


def _cgroup(tmp_path, files: dict[str, str], proc: str = "0::/\n"):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "proc-cgroup").write_text(proc)
    return tmp_path, tmp_path / "proc-cgroup"


@pytest.mark.parametrize(
    ("files", "proc", "expected"),
    [
        ({"cpu.max": "200000 100000\n"}, "0::/\n", 2.0),  # cgroup v2 at the root
        ({"cpu.max": "max 100000\n"}, "0::/\n", None),  # v2, no quota
        ({"job/cpu.max": "150000 100000\n", "cpu.max": "max 100000\n"}, "0::/job\n", 1.5),
        (  # cgroup v1: quota / period of the process's own cpu cgroup
            {"cpu/x/cpu.cfs_quota_us": "300000\n", "cpu/x/cpu.cfs_period_us": "100000\n"},
            "4:memory:/y\n1:cpu,cpuacct:/x\n",
            3.0,
        ),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "", None),
        ({}, "", None),  # no cgroup file system at all
        ({"cpu.max": "garbage\n"}, "0::/\n", None),
    ],
)
def test_cgroup_cpu_limit_reads_v1_and_v2_quotas(tmp_path, files, proc, expected):
    root, proc_file = _cgroup(tmp_path, files, proc)
    assert cgroup_cpu_limit(root, str(proc_file)) == expected


def test_available_cores_is_the_affinity_capped_by_the_quota_rounded_down(tmp_path):
    assert available_cores(tmp_path / "none") == AFFINITY  # no cgroup: the affinity mask
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: still one core
    assert available_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{(AFFINITY + 5) * 100000} 100000\n")
    assert available_cores(tmp_path) == AFFINITY  # a quota above the mask changes nothing


def test_every_job_gets_its_share_of_the_cores_and_one_job_gets_all():
    assert threads_per_job("loky", 1, cores=8) == 8  # alone: every core, never "unlimited"
    assert threads_per_job("loky", 2, cores=8) == 4
    assert threads_per_job("loky", 3, cores=8) == 2
    assert threads_per_job("loky", -1, cores=8) == 1
    assert threads_per_job("loky", 16, cores=8) == 1  # more jobs than cores: one each
    assert threads_per_job("dask", 2, cores=8) == threads_per_job("ray", 2, cores=8) == 4
    assert threads_per_job("dask", 2, "tcp://h:8786", cores=8) == 1  # remote: 1 CPU per job
    assert threads_per_job("ray", 1, "ray://h:10001", cores=8) == 1
    assert threads_per_job("loky", 1) == available_cores()
    assert parallel_jobs(-2, cores=4) == 3 and parallel_jobs(-9, cores=4) == 1


def test_jobs_carry_the_budget_to_every_library_parameter():
    ds = load_sklearn_dataset("diabetes")
    (job,) = make_jobs([ds], ["xgboost"], 1, Protocol(n_splits=1), n_threads=3)
    assert job.n_threads == 3
    pytest.importorskip("xgboost")
    pytest.importorskip("lightgbm")
    assert build_model("xgboost", "regression", {}, [], 0, job.n_threads)[-1].n_jobs == 3
    assert build_model("lightgbm", "regression", {}, [], 0, job.n_threads)[-1].n_jobs == 3


def test_job_environment_limits_torch_and_every_thread_pool():
    from threadpoolctl import threadpool_info

    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with job_environment(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads must be an integer of at least 1"):
        with job_environment(None):
            pass


def test_an_openmp_pool_loaded_inside_the_job_is_limited_too():
    # A fresh worker imports HistGradientBoosting (scikit-learn's OpenMP runtime) only when
    # the job builds its estimator, inside the limits: threadpoolctl limits only the pools
    # loaded when its context starts, so the budget loads them first.
    code = (
        "from sktelescope.bench._backends import thread_limit\n"
        "with thread_limit(1):\n"
        "    from sklearn.ensemble import HistGradientBoostingRegressor\n"
        "    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads\n"
        "    print(_openmp_effective_n_threads())\n"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
