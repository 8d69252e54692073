"""An in-process Dask cluster for tests: one worker, its threads, the model slots.

In process (``processes=False``), so tasks and the test share module state (the model cache,
monkeypatched task functions) and nothing is pickled to a worker process; for real worker
processes use the ``model_workers`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from distributed import Client, LocalCluster

from spineps_dask.distributed.cluster import MODEL_RESOURCE


@contextlib.contextmanager
def in_process_client(*, threads: int = 1, model_slots: int = 1) -> Iterator[Client]:
    """``with in_process_client() as client``: one in-process worker with ``threads`` threads
    and ``model_slots`` of the model resource the runner's model tasks ask for."""
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=threads,
            processes=False,
            resources={MODEL_RESOURCE: model_slots},
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
