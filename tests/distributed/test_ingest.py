"""Ingest on the cluster (issue 19): the workers read the scans and write the store, the driver
only lists, plans and records; the rows, the failed rows and the stored scans are those of
the driver's own ingest, a re-ingest skips unchanged scans, and a lost task fails its scans."""

from __future__ import annotations

import numpy as np
import pytest
from distributed import Client, LocalCluster

from spineps_dask.distributed.ingest import _result, ingest_on_cluster
from spineps_dask.io.cohort import Scan, ingest
from spineps_dask.io.store import CohortStore
from tests.io.conftest import scan_data, write_scan

COLUMNS = ["subject", "status", "sha256", "orientation", "dtype", "error", "step", "source"]


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    with cluster, Client(cluster) as c:
        yield c


@pytest.fixture
def cohort(tmp_path):
    """Five good scans, a flat one (2D), and two scans mapping to one subject key."""
    root = tmp_path / "bids"
    for i in range(5):
        write_scan(root, f"{i:03d}", scan_data(i))
    write_scan(root, "flat", np.ones((24, 20), np.int16))
    write_scan(root, "dup", scan_data(7))
    write_scan(root, "dup", scan_data(8), name="sub-dup_acq-b_T2w.nii.gz")
    return root


def test_the_cluster_ingests_what_the_driver_would_with_the_same_failed_rows(
    cohort, client, tmp_path
):
    here = ingest(cohort, tmp_path / "here.zarr")
    there = ingest_on_cluster(client, cohort, CohortStore(tmp_path / "there.zarr"), batch=2)
    assert there.ingested == here.ingested == [f"sub-{i:03d}" for i in range(5)]
    assert there.failed == here.failed and set(there.failed) == {"sub-dup", "sub-flat"}
    a = CohortStore(tmp_path / "here.zarr").manifest.read()[COLUMNS]
    b = CohortStore(tmp_path / "there.zarr").manifest.read()[COLUMNS]
    assert a.equals(b)
    store = CohortStore(tmp_path / "there.zarr", mode="r")
    np.testing.assert_array_equal(
        store.read_volume("sub-003", "image").data,
        CohortStore(tmp_path / "here.zarr", mode="r").read_volume("sub-003", "image").data,
    )


def test_a_reingest_on_the_cluster_skips_unchanged_scans_and_redoes_changed(
    cohort, client, tmp_path
):
    store = CohortStore(tmp_path / "c.zarr")
    ingest_on_cluster(client, cohort, store)
    write_scan(cohort, "002", scan_data(42))
    again = ingest_on_cluster(client, cohort, store, batch=3)
    assert again.ingested == ["sub-002"]
    assert again.skipped == ["sub-000", "sub-001", "sub-003", "sub-004"]


def test_a_lost_task_becomes_failed_rows_for_its_scans(tmp_path):
    class Lost:
        def result(self):
            raise RuntimeError("worker died")

    part = [Scan("sub-001", tmp_path / "a.nii.gz"), Scan("sub-002", tmp_path / "b.nii.gz")]
    rows = _result(Lost(), part)
    assert [r["subject"] for r in rows] == ["sub-001", "sub-002"]
    assert {r["status"] for r in rows} == {"failed"}
    assert "ingest task was lost (RuntimeError: worker died)" in rows[0]["error"]
