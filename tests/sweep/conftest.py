"""The sweep tests' cluster: one in-process worker with the model resource."""

from __future__ import annotations

import pytest

from spineps_dask.distributed import model_cache
from tests.clusters import in_process_client


@pytest.fixture(scope="module")
def client():
    """One in-process worker: the sweep's tasks and the test share the model cache."""
    model_cache.set_threads(1)
    with in_process_client() as c:
        yield c
