"""Reference masks beside the scans: ingested when usable, refused with the reason when not."""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest

from spineps_dask.geometry import Volume
from spineps_dask.io import CohortStore, ingest
from spineps_dask.io.nifti import save_volume
from spineps_dask.io.references import ingest_references
from tests.io.conftest import SAGITTAL


def _write_refs(root, sub, sem, inst):
    anat = root / f"sub-{sub}" / "anat"
    save_volume(Volume(sem, SAGITTAL), anat / f"sub-{sub}_mod-T2w_seg-spine_msk.nii.gz")
    save_volume(Volume(inst, SAGITTAL), anat / f"sub-{sub}_mod-T2w_seg-vert_msk.nii.gz")


def test_references_with_labels_outside_the_scheme_are_refused(tmp_path, make_scan, make_data):
    """sub-002's instance reference holds label 77 (not a SPINEPS id): refused with the label
    named, and neither of its masks is stored, so the run segments it without scoring it;
    sub-001's references are ingested."""
    bids, refs = tmp_path / "bids", tmp_path / "refs"
    for sub in ("001", "002"):
        make_scan(bids, sub, make_data(int(sub)))
    ingest(bids, tmp_path / "c.zarr")
    sem = np.zeros((24, 20, 6), np.uint8)
    sem[4:10, 5:15, 1:4] = 49  # vertebra body
    inst = np.where(sem > 0, 20, 0).astype(np.uint8)  # L1
    _write_refs(refs, "001", sem, inst)
    _write_refs(refs, "002", sem, np.where(inst > 0, 77, 0).astype(np.uint8))
    store = CohortStore(tmp_path / "c.zarr")
    out = ingest_references(refs, store)
    assert out["ingested"] == ["sub-001"]
    assert "labels [77] outside the SPINEPS scheme" in out["failed"]["sub-002"]
    assert "sub-002_mod-T2w_seg-vert_msk.nii.gz" in out["failed"]["sub-002"]
    assert store.volumes("sub-002") == ["image"]
    assert store.volumes("sub-001") == ["image", "ref_instance", "ref_semantic"]


@pytest.mark.timeout(30)
def test_oversized_or_odd_references_are_refused_from_the_header_at_once(
    tmp_path, make_scan, make_data, bad_header
):
    """Two small reference files whose headers claim 1500 x 1700 x 1000 voxels (7.7 GB of
    uint8 if read) are refused from the header, before any voxel is read, naming the shapes;
    a reference that is a FIFO is refused from ``stat`` without opening it. Both in seconds;
    the subjects keep their scans (segmented, just not scored)."""
    bids, refs = tmp_path / "bids", tmp_path / "refs"
    for sub in ("001", "002"):
        make_scan(bids, sub, make_data(int(sub)))
    ingest(bids, tmp_path / "c.zarr")
    sem = np.zeros((24, 20, 6), np.uint8)
    sem[4:10, 5:15, 1:4] = 49
    _write_refs(refs, "001", sem, np.where(sem > 0, 20, 0).astype(np.uint8))
    anat = refs / "sub-001" / "anat"
    for path in anat.glob("*.nii.gz"):
        bad_header(path, shape=(1500, 1700, 1000))
    fifo_anat = refs / "sub-002" / "anat"
    _write_refs(refs, "002", sem, np.where(sem > 0, 20, 0).astype(np.uint8))
    vert = fifo_anat / "sub-002_mod-T2w_seg-vert_msk.nii.gz"
    vert.unlink()
    os.mkfifo(vert)
    store = CohortStore(tmp_path / "c.zarr")
    start = time.perf_counter()
    out = ingest_references(refs, store)
    assert time.perf_counter() - start < 5.0  # a blocked read would never return
    assert out["ingested"] == []
    assert re.search(
        r"has shape \(1500, 1700, 1000\) in its header, its scan \(24, 20, 6\).*refused before "
        r"reading",
        out["failed"]["sub-001"],
    ), out["failed"]["sub-001"]
    assert "is a FIFO (named pipe), not a regular file" in out["failed"]["sub-002"]
    assert store.volumes("sub-001") == ["image"] and store.volumes("sub-002") == ["image"]


@pytest.mark.parametrize("how", ["deleted", "flipped"])
def test_damaged_references_are_written_again_and_not_scored_meanwhile(
    tmp_path, make_scan, make_data, how
):
    """Issue 21 skips unchanged references at ingest; issue 18 mends damaged ones by ingesting
    them again. Both hold: an intact, unchanged reference is left alone, a damaged stored
    copy (a deleted chunk, or one flipped bit that only a voxel check finds) is written
    again. Meanwhile a run does not score against it (`to_score` leaves it out, failing no
    row); once written again it is scored."""
    from spineps_dask.config import RunConfig
    from spineps_dask.distributed.resume import to_score
    from tests.io.damage import damage_chunk

    bids, refs, url = tmp_path / "bids", tmp_path / "refs", tmp_path / "c.zarr"
    make_scan(bids, "001", make_data(1))
    ingest(bids, url)
    sem = np.zeros((24, 20, 6), np.uint8)
    sem[4:10, 5:15, 1:4] = 49
    _write_refs(refs, "001", sem, np.where(sem > 0, 20, 0).astype(np.uint8))
    store = CohortStore(url)
    assert ingest_references(refs, store)["ingested"] == ["sub-001"]
    assert ingest_references(refs, store)["unchanged"] == ["sub-001"]
    cfg = RunConfig()
    assert list(to_score(store, store.manifest, cfg, ["sub-001"])) == ["sub-001"]

    damage_chunk(url, "sub-001", "ref_semantic", how)
    assert to_score(store, store.manifest, cfg, ["sub-001"], verify=True) == {}
    assert store.manifest.rows(phase="score") == {}
    again = ingest_references(refs, store)
    assert again["ingested"] == ["sub-001"] and again["unchanged"] == []
    assert store.verify_volume("sub-001", "ref_semantic", full=True)
    assert list(to_score(store, store.manifest, cfg, ["sub-001"], verify=True)) == ["sub-001"]
