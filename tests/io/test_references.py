"""Reference masks beside the scans: ingested when usable, refused with the reason when not."""

from __future__ import annotations

import numpy as np

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
