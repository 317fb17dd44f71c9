"""Fixtures of the exploration tests: one LocalCluster (two single-threaded worker processes on
127.0.0.1) shared by the tests that need workers, and a kernel/schedule cache shared by them."""

from __future__ import annotations

import logging

import pytest
from explore_helpers import SMALL


@pytest.fixture(scope="session")
def cluster():
    """Address of a LocalCluster with processes on the loopback interface (closed at the end)."""
    distributed = pytest.importorskip("distributed")
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address=None, silence_logs=logging.ERROR)
    try:
        yield c.scheduler_address
    finally:
        c.close(timeout=20)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("explore-cache")


@pytest.fixture(scope="session")
def small_runs(cluster, cache, tmp_path_factory):
    """The small space explored twice on the cluster: simulating every point, and screened."""
    from flexspec.explore import explore

    base = tmp_path_factory.mktemp("small")
    full = explore(SMALL, base / "all", scheduler=cluster, screen=False, cache_dir=cache, progress=False)
    screened = explore(SMALL, base / "screened", scheduler=cluster, screen=True, cache_dir=cache, progress=False)
    return full, screened
