"""Ingest on the cluster (issue 19): the workers read the scans and write the store, the driver
only lists, plans and records; the rows, the failed rows and the stored scans are those of
the driver's own ingest, a re-ingest skips unchanged scans, and a lost task fails its scans.
Reference masks likewise: the summary and the stored masks are the driver's own."""

from __future__ import annotations

import numpy as np
import pytest
from distributed import Client, LocalCluster

from spineps_dask.distributed.ingest import (
    _reference_result,
    _result,
    ingest_on_cluster,
    ingest_references_on_cluster,
)
from spineps_dask.io.cohort import Scan, ingest
from spineps_dask.io.references import ingest_references
from spineps_dask.io.store import CohortStore
from tests.io.conftest import scan_data, write_scan
from tests.io.test_references import _write_refs

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
    """Five good scans, a flat one (2D), and two files of one scan key (the same entities, as
    ``.nii.gz`` and ``.nii``: refused together)."""
    root = tmp_path / "bids"
    for i in range(5):
        write_scan(root, f"{i:03d}", scan_data(i))
    write_scan(root, "flat", np.ones((24, 20), np.int16))
    write_scan(root, "dup", scan_data(7))
    write_scan(root, "dup", scan_data(8), name="sub-dup_T2w.nii")
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


def test_the_cluster_ingest_keeps_recorded_keys_and_copies_participants(client, tmp_path):
    """Issue 21 beside issue 19: the cluster's ingest copies ``participants.tsv`` into the
    store, and a scan recorded under an older, shorter key keeps it (its unchanged scan is
    skipped, not ingested a second time under the full key)."""
    root = tmp_path / "bids"
    write_scan(root, "001", scan_data(1), name="sub-001_acq-sag_T2w.nii.gz")
    (root / "participants.tsv").write_text("participant_id\tage\nsub-001\t50\n")
    store = CohortStore(tmp_path / "c.zarr")
    first = ingest_on_cluster(client, root, store)
    assert first.ingested == ["sub-001_acq-sag"]
    assert store.read_root_file("participants.tsv") == (root / "participants.tsv").read_bytes()
    rows = store.manifest.read()
    rows.loc[rows.subject == "sub-001_acq-sag", "subject"] = "sub-001"  # an older store's key
    store.manifest.compact()
    rows.to_parquet(store.manifest_url, index=False)
    store.write_volume("sub-001", "image", store.read_volume("sub-001_acq-sag", "image"))
    store.delete_subject("sub-001_acq-sag")
    again = ingest_on_cluster(client, root, store)
    assert again.skipped == ["sub-001"] and not again.ingested


def test_the_cluster_ingests_references_as_the_driver_would(cohort, client, tmp_path):
    """sub-000's references are good, sub-001's hold a label outside the scheme (refused with
    the reason), the other subjects have none: the summary, the stored masks and their
    attributes are those of the driver's reference ingest; again, they are unchanged."""
    refs = (tmp_path / "refs").absolute()
    sem = np.zeros((24, 20, 6), np.uint8)
    sem[4:10, 5:15, 1:4] = 49  # a vertebra body
    inst = np.where(sem > 0, 20, 0).astype(np.uint8)  # L1
    _write_refs(refs, "000", sem, inst)
    _write_refs(refs, "001", sem, np.where(inst > 0, 77, 0).astype(np.uint8))
    here, there = CohortStore(tmp_path / "here.zarr"), CohortStore(tmp_path / "there.zarr")
    ingest(cohort, here)
    ingest(cohort, there)
    a = ingest_references(refs, here)
    b = ingest_references_on_cluster(client, refs, there, batch=2)
    assert a == b
    assert b["ingested"] == ["sub-000"] and b["missing"] == ["sub-002", "sub-003", "sub-004"]
    assert "labels [77] outside the SPINEPS scheme" in b["failed"]["sub-001"]
    for name in ("ref_semantic", "ref_instance"):
        assert here.read_attrs("sub-000", name) == there.read_attrs("sub-000", name)
        np.testing.assert_array_equal(
            here.read_volume("sub-000", name).data, there.read_volume("sub-000", name).data
        )
    assert there.volumes("sub-001") == ["image"]
    again = ingest_references_on_cluster(client, refs, there)
    assert again["unchanged"] == ["sub-000"] and not again["ingested"]


def test_a_lost_reference_task_fails_its_subjects_references():
    class Lost:
        def result(self):
            raise RuntimeError("worker died")

    out = _reference_result(Lost(), ["sub-001", "sub-002"])
    assert [(s, what) for s, what, _ in out] == [("sub-001", "failed"), ("sub-002", "failed")]
    assert "reference ingest task was lost (RuntimeError: worker died)" in out[0][2]
