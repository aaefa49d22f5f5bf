"""Shared test setup."""

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per xdist worker: `pytest -n 2` on 2 cores would otherwise run
    # four busy threads on two cores, several times slower for these small networks.
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_openmp_thread():
    """OpenMP libraries (XGBoost, LightGBM, HGB) on one thread: the test models are tiny, and
    more threads only cost time, badly so on a loaded machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
