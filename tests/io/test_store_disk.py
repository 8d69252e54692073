"""The store on a full or read-only disk (a real tmpfs, see ``tests/conftest.py``): every write
fails with an error naming the location and the fix, and the manifest stays whole."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.errors import StoreError
from spineps_dask.geometry import Volume
from spineps_dask.io import CohortStore, Manifest, ingest


def _leftovers(store_dir):
    """Temporary files a failed write could have left behind."""
    return sorted(p.name for p in store_dir.rglob("*") if ".tmp" in p.name or "probe" in p.name)


def test_ingest_on_a_full_disk_fails_clearly_and_keeps_the_manifest(
    small_disk, bids, make_scan, make_data
):
    """The disk fills up before new scans arrive: ingest stops with a StoreError that names
    the store, says the disk is full and what to do; the manifest still reads as before, the
    new subject never counts as ingested, and after freeing space a re-run ingests it."""
    url = small_disk.path / "c.zarr"
    assert ingest(bids, url).ingested == ["sub-001", "sub-002_ses-1"]
    manifest = Manifest(url / "manifest.parquet")
    before = manifest.read()
    make_scan(bids, "003", make_data(3))
    small_disk.fill()
    with pytest.raises(StoreError, match=r"cannot write the manifest .*No space left on device"):
        ingest(bids, url)
    after = manifest.read()
    assert after.equals(before)
    assert not CohortStore(url, mode="r").has_volume("sub-003", "image")
    assert _leftovers(url) == []
    small_disk.free()
    assert ingest(bids, url).ingested == ["sub-003"]


def test_writes_on_a_full_disk_name_the_volume_and_the_fix(small_disk):
    store = CohortStore(small_disk.path / "c.zarr")
    vol = Volume(np.arange(4096, dtype=np.int16).reshape(16, 16, 16), np.eye(4))
    store.write_volume("sub-001", "image", vol)
    small_disk.fill()
    with pytest.raises(StoreError, match=r"semantic of sub-001 at .*c\.zarr: No space left .*free"):
        store.write_volume("sub-001", "semantic", vol.with_data(vol.data.astype(np.uint8)))
    assert store.volumes("sub-001") == ["image"]  # the half-written one does not count
    assert not (small_disk.path / "c.zarr/sub-001/semantic").exists()  # nor is it left behind
    with pytest.raises(StoreError, match=r"snapshot\.png of sub-001 .*No space left"):
        store.write_blob("sub-001", "snapshot.png", b"\x89PNG" + b"\0" * 200_000)
    assert _leftovers(store_dir := small_disk.path / "c.zarr") == [], store_dir


def test_a_read_only_store_is_refused_at_open_and_on_write(small_disk, bids):
    """Read-only disk (EROFS from the kernel): opening the store for writing refuses at once
    with the path; a store opened earlier fails its writes clearly; the manifest is intact."""
    url = small_disk.path / "c.zarr"
    ingest(bids, url)
    store = CohortStore(url)
    before = Manifest(url / "manifest.parquet").read()
    small_disk.read_only()
    try:
        with pytest.raises(StoreError, match=r"c\.zarr: Read-only file system; it is not writ"):
            ingest(bids, url)
        with pytest.raises(StoreError, match="Read-only file system"):
            store.write_volume("sub-001", "semantic", store.read_volume("sub-001", "image"))
        with pytest.raises(StoreError, match=r"the manifest \(1 new rows\) .*Read-only"):
            Manifest(url / "manifest.parquet").upsert([{"subject": "sub-9", "phase": "ingest"}])
        assert Manifest(url / "manifest.parquet").read().equals(before)
        assert CohortStore(url, mode="r").volumes("sub-001") == ["image"]  # reading still works
    finally:
        small_disk.read_only(False)
