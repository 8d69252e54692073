"""The runner on an object store: phantoms ingested into ``s3://`` (a moto server on
127.0.0.1, ``tests/conftest.py``) and run on real worker processes with the shipped models."""

from __future__ import annotations

import logging

import pytest
from distributed import Client, LocalCluster

from spineps_dask.config import RunConfig
from spineps_dask.distributed.cluster import MODEL_RESOURCE
from spineps_dask.distributed.model_cache import WorkerSetup
from spineps_dask.distributed.resume import run_store
from spineps_dask.io.cohort import ingest
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.store import CohortStore
from spineps_dask.phantom.cohort import write_bids_cohort
from tests.conftest import S3_SECRET

CFG = RunConfig(n4=False, cutouts_per_task=4, snapshot=True, metrics=False)
URL = "s3://cohort/run.zarr"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_on_s3_store_completes_without_leaking_credentials(s3_options, tmp_path, caplog):
    """A phantom in s3://cohort/run.zarr: segmented, outputs complete, work arrays gone,
    manifest rows ok; the secret key appears in no stored object, no driver log line
    and no worker log line."""
    import s3fs

    bids = tmp_path / "bids"
    write_bids_cohort(
        bids, subjects=1, seed=920, region="cervical", orientation=("P", "I", "R"),
        spacing=(1.2, 1.2, 4.0),
    )  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="spineps_dask")
    assert ingest(bids, URL, storage_options=s3_options).ingested == ["sub-001"]
    store = CohortStore(URL, storage_options=s3_options)
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        resources={MODEL_RESOURCE: 1},
        dashboard_address=":0",
        host="127.0.0.1",
    )
    try:
        with Client(cluster) as client:
            client.register_plugin(WorkerSetup(threads=1))
            summary = run_store(client, store, CFG)
            worker_logs = client.get_worker_logs()
    finally:
        cluster.close()

    assert [o.subject for o in summary.done] == ["sub-001"], summary.failed
    again = CohortStore(URL, mode="r", storage_options=s3_options)
    assert again.volumes("sub-001") == ["image", "instance", "semantic"]  # work arrays gone
    assert again.read_volume("sub-001", "instance").data.max() > 0
    assert again.read_blob("sub-001", "snapshot.png")[:4] == b"\x89PNG"
    rows = Manifest(store.manifest_url, storage_options=s3_options).read()
    segment = rows[rows["phase"] == "segment"]
    assert list(segment["subject"]) == ["sub-001"]
    assert set(segment["status"]) == {"ok"}

    fs = s3fs.S3FileSystem(**s3_options)
    objects = fs.find(URL)
    assert any(o.endswith("manifest.parquet") for o in objects)
    for obj in objects:
        assert S3_SECRET.encode() not in fs.cat_file(obj), obj
    assert S3_SECRET not in caplog.text
    for worker, lines in worker_logs.items():
        assert not [msg for _, msg in lines if S3_SECRET in msg], worker
