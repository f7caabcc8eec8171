from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster with two worker processes, for one test module."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=2,
        dashboard_address=None,
        silence_logs=50,
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()
