"""Shared test setup."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per xdist worker: `pytest -n 2` on 2 cores would otherwise run
    # four busy threads on two cores, several times slower for these small networks.
    torch.set_num_threads(1)
