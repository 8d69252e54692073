"""Faults in a run with real worker processes and the shipped models: out of memory in one
subject (a MemoryError inside a task, a worker killed by its nanny for its memory limit) and a
full disk under the store. The rest of the cohort completes; the manifest says what happened.
"""

from __future__ import annotations

import time

import dask
import numpy as np
import pytest
from distributed.diagnostics.plugin import WorkerPlugin

from spineps_dask.config import RunConfig
from spineps_dask.distributed.resume import run_store
from spineps_dask.errors import StoreError
from spineps_dask.io.cohort import ingest
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.store import CohortStore
from spineps_dask.phantom.cohort import write_bids_cohort

CFG = RunConfig(n4=False, cutouts_per_task=4, snapshot=False, metrics=False)
PIR = ("P", "I", "R")
MEMORY_LIMIT = 4 << 30  # a lumbar phantom takes ~1.6 GiB in a worker (torch included)


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    """Three small cervical phantoms on a coarse grid (~20 s each through the models here)."""
    root = tmp_path_factory.mktemp("faults") / "bids"
    write_bids_cohort(
        root, subjects=3, seed=910, region="cervical", orientation=PIR, spacing=(1.2, 1.2, 4.0)
    )
    return root


@pytest.fixture(scope="module")
def client(model_workers):
    """Two worker processes with a 4 GiB memory limit; a task that kills two workers fails."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        model_workers(2, memory_limit=MEMORY_LIMIT) as client,
    ):
        yield client


def _allocate_beyond_the_limit() -> None:
    """Really use more resident memory than the worker's limit (the nanny kills it at 95 %)."""
    from distributed import get_worker

    limit = get_worker().memory_manager.memory_limit
    blocks = []
    while len(blocks) < 30:  # 1.5 x the limit at most, should the nanny not act
        blocks.append(np.ones(limit // 20, np.uint8))  # np.ones touches every page
        time.sleep(0.02)
    time.sleep(20)
    raise RuntimeError("the nanny did not stop a worker over its memory limit")


class OutOfMemoryInjection(WorkerPlugin):
    """Test-only fault injection at the step boundary: the ``prepare`` step of chosen subjects
    runs out of memory, either with numpy's own MemoryError (a 4 TiB array refused by the
    kernel) or by really outgrowing the worker's memory limit. Re-applied to restarted workers.
    """

    name = "test-out-of-memory"

    def __init__(self, *, memory_error: str, over_limit: str) -> None:
        self.memory_error, self.over_limit = memory_error, over_limit

    def setup(self, worker) -> None:
        from spineps_dask.distributed import steps

        original = self.original = steps.prepare_image

        def prepare_image(image, *, subject, **kwargs):
            if subject == self.memory_error:
                np.empty(1 << 40, np.float32)  # MemoryError: Unable to allocate 4.00 TiB
            if subject == self.over_limit:
                _allocate_beyond_the_limit()
            return original(image, subject=subject, **kwargs)

        steps.prepare_image = prepare_image

    def teardown(self, worker) -> None:
        from spineps_dask.distributed import steps

        steps.prepare_image = self.original


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_out_of_memory_fails_that_subject_and_the_others_continue(bids, client, tmp_path):
    """sub-001 hits a MemoryError, sub-002 pushes two workers over their memory limit (the
    nanny restarts them; KilledWorker); both get a failed row saying "out of memory" and the
    step; sub-003 is segmented as usual on the restarted workers."""
    ingest(bids, tmp_path / "store.zarr")
    store = CohortStore(tmp_path / "store.zarr")
    client.register_plugin(OutOfMemoryInjection(memory_error="sub-001", over_limit="sub-002"))
    try:
        # One subject at a time: a dying worker takes only the guilty subject's tasks with it.
        summary = run_store(client, store, CFG, max_in_flight=1)
    finally:
        client.unregister_worker_plugin(OutOfMemoryInjection.name)
    rows = Manifest(store.manifest_url).rows(phase="segment")
    assert {s: r["status"] for s, r in rows.items()} == {
        "sub-001": "failed",
        "sub-002": "failed",
        "sub-003": "ok",
    }
    assert rows["sub-001"]["step"] == "prepare"
    assert (
        "out of memory in prepare (MemoryError: Unable to allocate 4.00 TiB"
        in (rows["sub-001"]["error"])
    )
    assert rows["sub-002"]["step"] == "prepare"
    assert (
        "out of memory in prepare: the workers running it went over their memory limit"
        in (rows["sub-002"]["error"])
    )
    assert "memory_limit" in rows["sub-002"]["error"]
    prepare_rows = Manifest(store.manifest_url).rows(phase="prepare")
    assert prepare_rows["sub-001"]["status"] == "failed"
    assert [o.subject for o in summary.done] == ["sub-003"]
    assert store.has_volume("sub-003", "instance") and not store.has_volume("sub-002", "instance")
    client.wait_for_workers(2, timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_full_disk_stops_the_run_clearly_and_keeps_the_manifest(bids, client, small_disk):
    """The store's disk is full: the subject fails writing its first work array, the run ends
    with a StoreError naming the manifest and the fix, the manifest on disk is the one from
    before (ingest rows only, readable) and no output counts as done. (That the same command
    then resumes is test_runner's resume test.)"""
    url = small_disk.path / "store.zarr"
    ingest(bids, url)
    store = CohortStore(url)
    manifest = Manifest(store.manifest_url)
    before = manifest.read()
    small_disk.fill()
    with pytest.raises(StoreError, match=r"cannot write the manifest .*No space left.*free space"):
        run_store(client, store, CFG, subjects=["sub-001"])
    assert manifest.read().equals(before)
    assert not store.has_volume("sub-001", "semantic")
    assert not [p for p in url.rglob("*") if ".tmp" in p.name]
