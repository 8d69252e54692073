"""The sweep tests' cluster: one in-process worker with the model resource."""

from __future__ import annotations

import pytest
from distributed import Client, LocalCluster

from spineps_dask.distributed import model_cache
from spineps_dask.distributed.cluster import MODEL_RESOURCE


@pytest.fixture(scope="module")
def client():
    """One in-process worker: the sweep's tasks and the test share the model cache."""
    model_cache.set_threads(1)
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            resources={MODEL_RESOURCE: 1},
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c
